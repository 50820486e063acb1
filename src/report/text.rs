//! What `gcfuzz repro` prints for a person: each configuration's outcome,
//! then the findings or the verdict.

use crate::oracle::CaseReport;
use crate::outcome::Outcome;
use std::fmt::Write;

/// One configuration's outcome: instantiation, each call, exported state.
pub fn outcome(o: &Outcome) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "== {} ({:.1} ms)", o.config, o.micros as f64 / 1000.0);
    let _ = writeln!(s, "  instantiate: {}", o.instantiate);
    for (i, call) in o.calls.iter().enumerate() {
        let _ = writeln!(s, "  call[{i}] {}: {}", call.export, call.status);
    }
    match &o.state {
        Some(state) => {
            for (name, v) in &state.globals {
                let _ = writeln!(s, "  global {name} = {v}");
            }
            for (name, m) in &state.memories {
                let _ = writeln!(s, "  memory {name}: {} bytes, hash {:016x}", m.size, m.hash);
            }
            for (name, t) in &state.tables {
                let elems: Vec<String> = t.elems.iter().map(|r| r.to_string()).collect();
                let _ = writeln!(s, "  table {name}[{}] = [{}]", t.size, elems.join(", "));
            }
        }
        None => s.push_str("  state: not compared (run cut short)\n"),
    }
    s
}

/// A checked case: every outcome, then the findings or the verdict.
pub fn case_report(report: &CaseReport) -> String {
    let mut s: String = report.outcomes.iter().map(outcome).collect();
    for f in &report.findings {
        let _ = writeln!(s, "FINDING {}: {}", f.signature, f.summary);
    }
    if report.findings.is_empty() {
        let verdict = match &report.inconclusive {
            Some(why) => format!("agree up to an inconclusive point ({why})"),
            None => "agree".into(),
        };
        let _ = writeln!(s, "{} configurations {verdict}", report.outcomes.len());
    }
    s
}
