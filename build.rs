//! Emits one `cfg` per capability of the Wasmtime line the features select
//! (the table is `src/line.rs`, shared with the library), declares every such
//! cfg to `rustc-check-cfg`, and names the line for `line::current()`.

#[allow(dead_code)]
#[path = "src/line.rs"]
mod line;

fn main() {
    println!("cargo::rerun-if-changed=src/line.rs");
    println!("cargo::rerun-if-env-changed=GCFUZZ_WASMTIME_VERSION");
    for cap in line::Cap::ALL {
        println!("cargo::rustc-check-cfg=cfg({})", cap.cfg());
    }
    let enabled = |l: &&line::Line| {
        std::env::var_os(format!("CARGO_FEATURE_{}", l.feature.to_uppercase().replace('-', "_"))).is_some()
    };
    let chosen: Vec<&line::Line> = line::LINES.iter().filter(enabled).collect();
    let names = || line::LINES.iter().map(|l| l.feature).collect::<Vec<_>>().join(", ");
    let line = match chosen.as_slice() {
        [one] => one,
        [] => panic!("choose the Wasmtime under test: one of the features {}", names()),
        _ => panic!("the Wasmtime features are exclusive ({}): add --no-default-features", names()),
    };
    println!("cargo::rustc-env=GCFUZZ_WASMTIME_LINE={}", line.feature);
    for cap in line.caps {
        println!("cargo::rustc-cfg={}", cap.cfg());
    }
}
