//! The nightly job's human reports: `report.md`, and `report.html`, which is
//! self-contained (inline SVG charts, inline CSS, no scripts or fetches) so
//! it can be attached to a mail or a CI run as one file.

use serde::Serialize;
use std::fmt::Write;
use std::path::PathBuf;

/// One point of a target's progress, from libFuzzer's status lines.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Point {
    pub secs: f64,
    pub execs: u64,
    /// Coverage: edges (`cov`) and features (`ft`).
    pub cov: u64,
    pub ft: u64,
    pub corpus: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct TargetReport {
    pub name: String,
    pub seconds: f64,
    pub execs: u64,
    pub execs_per_sec: f64,
    pub final_cov: u64,
    pub final_ft: u64,
    pub corpus_before: usize,
    pub corpus_after: usize,
    pub artifacts: usize,
    pub series: Vec<Point>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SignatureRow {
    pub signature: String,
    pub kind: String,
    pub files: usize,
    pub new: bool,
    pub path: PathBuf,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub started: String,
    pub seconds: f64,
    pub engine: String,
    pub targets: Vec<TargetReport>,
    pub signatures: Vec<SignatureRow>,
    /// Artifacts that could not be bucketed (do not reproduce, corrupt).
    pub triage_failures: Vec<String>,
    /// Findings of the artifacts that a fresh worker did not give again
    /// (not stored; their artifacts are among the failures when nothing
    /// of theirs was stored).
    pub unreproducible: usize,
    /// 0 nothing new, 1 new signatures, 2 infrastructure failure.
    pub exit_code: u8,
}

fn status(report: &Report) -> &'static str {
    match report.exit_code {
        0 => "no new signature",
        1 => "NEW SIGNATURES",
        _ => "INFRASTRUCTURE FAILURE",
    }
}

pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# gcfuzz nightly — {}\n", status(r));
    let _ = writeln!(s, "Started {}, {:.0} s, {}.\n", r.started, r.seconds, r.engine);
    let _ = writeln!(
        s,
        "| target | seconds | execs | execs/s | coverage (edges) | features | corpus before → after | artifacts | error |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for t in &r.targets {
        let _ = writeln!(
            s,
            "| {} | {:.0} | {} | {:.1} | {} | {} | {} → {} | {} | {} |",
            t.name,
            t.seconds,
            t.execs,
            t.execs_per_sec,
            t.final_cov,
            t.final_ft,
            t.corpus_before,
            t.corpus_after,
            t.artifacts,
            t.error.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(s, "\n## Signatures\n");
    if r.signatures.is_empty() {
        let _ = writeln!(s, "None.");
    } else {
        let _ = writeln!(s, "| signature | kind | inputs | status |\n|---|---|---|---|");
        for sig in &r.signatures {
            let _ = writeln!(
                s,
                "| [{}]({}) | {} | {} | {} |",
                sig.signature,
                sig.path.display(),
                sig.kind,
                sig.files,
                if sig.new { "new" } else { "known" }
            );
        }
    }
    let _ = writeln!(s, "\nUnreproducible findings (not stored): {}", r.unreproducible);
    if !r.triage_failures.is_empty() {
        let _ = writeln!(s, "\n## Artifacts that did not triage\n");
        for f in &r.triage_failures {
            let _ = writeln!(s, "- {f}");
        }
    }
    s
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A line chart of `y` over time as an inline SVG, with its axis range
/// labelled.
fn chart(title: &str, points: &[Point], y: impl Fn(&Point) -> u64) -> String {
    const W: f64 = 520.0;
    const H: f64 = 200.0;
    const PAD: f64 = 40.0;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{}" role="img" aria-label="{}"><text x="{PAD}" y="16" class="t">{}</text>"#,
        H + 30.0,
        escape(title),
        escape(title)
    );
    if points.is_empty() {
        svg.push_str(r#"<text x="40" y="100">no data</text></svg>"#);
        return svg;
    }
    let max_x = points.iter().map(|p| p.secs).fold(1.0f64, f64::max);
    let min_y = points.iter().map(&y).min().unwrap_or(0) as f64;
    let max_y = (points.iter().map(&y).max().unwrap_or(1) as f64).max(min_y + 1.0);
    let sx = |x: f64| PAD + x / max_x * (W - 2.0 * PAD);
    let sy = |v: f64| 20.0 + (1.0 - (v - min_y) / (max_y - min_y)) * (H - 20.0);
    let path: Vec<String> = points.iter().map(|p| format!("{:.1},{:.1}", sx(p.secs), sy(y(p) as f64))).collect();
    let _ = write!(
        svg,
        r#"<rect x="{PAD}" y="20" width="{}" height="{}" class="f"/><polyline points="{}" class="l"/><text x="2" y="28" class="a">{}</text><text x="2" y="{H}" class="a">{}</text><text x="{PAD}" y="{}" class="a">0 s</text><text x="{}" y="{}" class="a" text-anchor="end">{:.0} s</text></svg>"#,
        W - 2.0 * PAD,
        H - 20.0,
        path.join(" "),
        max_y as u64,
        min_y as u64,
        H + 16.0,
        W - PAD,
        H + 16.0,
        max_x
    );
    svg
}

pub fn html(r: &Report) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>gcfuzz nightly</title><style>
body{{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}} h1 .s{{color:{}}}
table{{border-collapse:collapse;margin:1em 0}} td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}
.t{{font-weight:600}} .a{{font-size:11px;fill:#555}} .f{{fill:#fafafa;stroke:#ddd}} .l{{fill:none;stroke:#2266cc;stroke-width:2}}
.charts{{display:flex;flex-wrap:wrap;gap:1em}} .new{{color:#b00;font-weight:600}}
</style></head><body>"#,
        if r.exit_code == 0 { "#080" } else { "#b00" }
    );
    let _ = write!(
        s,
        "<h1>gcfuzz nightly — <span class=\"s\">{}</span></h1><p>Started {}, {:.0} s, {}.</p>",
        status(r),
        escape(&r.started),
        r.seconds,
        escape(&r.engine)
    );
    s.push_str("<table><tr><th>target</th><th>seconds</th><th>execs</th><th>execs/s</th><th>coverage (edges)</th><th>features</th><th>corpus before → after</th><th>artifacts</th><th>error</th></tr>");
    for t in &r.targets {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{:.0}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{} → {}</td><td>{}</td><td>{}</td></tr>",
            escape(&t.name),
            t.seconds,
            t.execs,
            t.execs_per_sec,
            t.final_cov,
            t.final_ft,
            t.corpus_before,
            t.corpus_after,
            t.artifacts,
            escape(t.error.as_deref().unwrap_or(""))
        );
    }
    s.push_str("</table>");
    for t in &r.targets {
        let _ = write!(s, "<h2>{}</h2><div class=\"charts\">", escape(&t.name));
        s.push_str(&chart(&format!("{}: coverage (edges)", t.name), &t.series, |p| p.cov));
        s.push_str(&chart(&format!("{}: features", t.name), &t.series, |p| p.ft));
        s.push_str(&chart(&format!("{}: executions", t.name), &t.series, |p| p.execs));
        s.push_str("</div>");
    }
    s.push_str("<h2>Signatures</h2>");
    if r.signatures.is_empty() {
        s.push_str("<p>None.</p>");
    } else {
        s.push_str("<table><tr><th>signature</th><th>kind</th><th>inputs</th><th>status</th></tr>");
        for sig in &r.signatures {
            let path = escape(&sig.path.display().to_string());
            let _ = write!(
                s,
                "<tr><td><a href=\"{path}\">{}</a></td><td>{}</td><td>{}</td><td{}>{}</td></tr>",
                escape(&sig.signature),
                escape(&sig.kind),
                sig.files,
                if sig.new { " class=\"new\"" } else { "" },
                if sig.new { "new" } else { "known" }
            );
        }
        s.push_str("</table>");
    }
    let _ = write!(s, "<p>Unreproducible findings (not stored): {}</p>", r.unreproducible);
    if !r.triage_failures.is_empty() {
        s.push_str("<h2>Artifacts that did not triage</h2><ul>");
        for f in &r.triage_failures {
            let _ = write!(s, "<li>{}</li>", escape(f));
        }
        s.push_str("</ul>");
    }
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            started: "2026-11-26T03:00:00Z".into(),
            seconds: 600.0,
            engine: "wasmtime 48.0.8".into(),
            targets: vec![TargetReport {
                name: "differential".into(),
                execs: 1200,
                final_cov: 90000,
                series: vec![
                    Point { secs: 10.0, execs: 100, cov: 80000, ft: 1, corpus: 16 },
                    Point { secs: 300.0, execs: 1200, cov: 90000, ft: 2, corpus: 40 },
                ],
                ..Default::default()
            }],
            signatures: vec![SignatureRow {
                signature: "crash-<x>-1".into(),
                kind: "crash".into(),
                files: 2,
                new: true,
                path: "crashes/crash-x-1".into(),
            }],
            triage_failures: vec![],
            unreproducible: 3,
            exit_code: 1,
        }
    }

    #[test]
    fn html_is_self_contained_with_charts_and_table() {
        let h = html(&report());
        assert_eq!(h.matches("<svg").count(), 3);
        assert!(h.contains("<polyline points=\""));
        assert!(h.contains("crash-&lt;x&gt;-1") && h.contains("class=\"new\""));
        assert!(!h.contains("<script") && !h.contains("src=\"http"));
    }

    #[test]
    fn markdown_lists_targets_and_signatures() {
        let m = markdown(&report());
        assert!(m.starts_with("# gcfuzz nightly — NEW SIGNATURES"));
        assert!(m.contains("| differential | 0 | 1200 |"));
        assert!(m.contains("[crash-<x>-1](crashes/crash-x-1) | crash | 2 | new |"));
        assert!(m.contains("Unreproducible findings (not stored): 3"));
    }
}
