//! The live progress line of a campaign: an indicatif
//! spinner on a terminal, a plain line every ten seconds in logs.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The live progress line: an indicatif spinner on a terminal, a plain line
/// every ten seconds otherwise (logs of nightly jobs).
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last_plain: Mutex<Instant>,
}

impl Progress {
    pub fn new() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}").expect("valid template"),
            );
            bar
        });
        Progress { bar, last_plain: Mutex::new(Instant::now()) }
    }

    /// Shows `line()`, the campaign's state `start.elapsed()` into it.
    pub fn update(&self, start: Instant, line: impl FnOnce() -> String) {
        match &self.bar {
            Some(bar) => bar.set_message(line()),
            None => {
                let mut last = self.last_plain.lock().unwrap();
                if last.elapsed() >= Duration::from_secs(10) {
                    *last = Instant::now();
                    eprintln!("[{:>6.0}s] {}", start.elapsed().as_secs_f64(), line());
                }
            }
        }
    }

    /// Prints a line above the progress line.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
