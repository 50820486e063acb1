//! Shared code of the stable replay binaries.

use std::path::Path;

/// Runs `target` on every file named on the command line (directories are
/// walked one level deep). Exits 2 with a one-line message on unreadable
/// input; a finding panics inside `target`, as under libFuzzer.
pub fn replay_main(target: fn(&[u8])) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprintln!("usage: {} FILE_OR_DIR...", std::env::args().next().unwrap_or_default());
        std::process::exit(2);
    }
    let mut count = 0;
    for arg in &args {
        let path = Path::new(arg);
        let files: Vec<_> = if path.is_dir() {
            match std::fs::read_dir(path) {
                Ok(entries) => {
                    let mut files: Vec<_> =
                        entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
                    files.sort();
                    files
                }
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", path.display());
                    std::process::exit(2);
                }
            }
        } else {
            vec![path.to_path_buf()]
        };
        for file in files {
            match std::fs::read(&file) {
                Ok(data) => {
                    target(&data);
                    count += 1;
                }
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", file.display());
                    std::process::exit(2);
                }
            }
        }
    }
    eprintln!("replayed {count} inputs without a finding");
}
