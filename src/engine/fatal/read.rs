//! The parent's side of a fatal-signal report or a hang's samples: parsed
//! from a worker's stderr and named (executable symbols, Wasm operators).

use std::path::Path;

/// What every report line starts with.
pub(super) const TAG: &str = "gcfuzz-fatal:";
/// The line that closes a sample (`SAMPLE`): the parent counts these.
pub const SAMPLE_END: &str = "gcfuzz-fatal: end\n";

/// `SIGSEGV` for 11, and so on; the number for other signals.
pub fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGBUS => "SIGBUS".into(),
        libc::SIGILL => "SIGILL".into(),
        libc::SIGFPE => "SIGFPE".into(),
        n => n.to_string(),
    }
}

/// Where one reported address is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    /// An offset into the worker executable's image.
    Exe(u64),
    /// A Wasm byte offset in one of the running case's modules (index in
    /// `TestCase::modules` order: linked ones first, the main one last).
    Wasm {
        module: u32,
        offset: u64,
    },
    Other(u64),
}

/// A fatal-signal report read back from a dead worker's stderr.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub signal: i32,
    /// The pid that sent the signal, for a signal sent from outside.
    pub sent_by: Option<i32>,
    /// The address a fault touched (`si_addr`).
    pub addr: Option<u64>,
    pub pc: Option<Addr>,
    /// Return addresses from the handler outwards (the handler's own frames
    /// and the signal trampoline included).
    pub frames: Vec<Addr>,
}

impl Report {
    /// The frames from the faulting one outwards (what is above it is the
    /// signal handling).
    pub fn from_fault(&self) -> Vec<Addr> {
        from_pc(self.pc.as_ref(), &self.frames)
    }
}

/// `frames` from the interrupted `pc` outwards: what is above it is the
/// signal handling.
fn from_pc(pc: Option<&Addr>, frames: &[Addr]) -> Vec<Addr> {
    match pc.and_then(|pc| frames.iter().position(|f| f == pc)) {
        Some(i) => frames[i..].to_vec(),
        None => pc.into_iter().cloned().collect(),
    }
}

/// The samples a hung worker wrote (`SAMPLE`), each from the pc it was
/// interrupted at outwards, then the running host function's Wasm call
/// site where the worker recorded one (Pulley); a sample cut short (no end
/// line) is left out.
pub fn samples(stderr: &str) -> Vec<Vec<Addr>> {
    let mut done = Vec::new();
    let mut open: Option<(Option<Addr>, Vec<Addr>)> = None;
    let mut host: Option<Addr> = None;
    for body in stderr.lines().filter_map(|l| l.strip_prefix(TAG)) {
        match body.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["sample", rest @ ..] => {
                let pc = match rest {
                    ["pc", addr @ ..] => parse_addr(addr),
                    _ => None,
                };
                open = Some((pc, vec![]));
            }
            ["frame", addr @ ..] => {
                if let (Some((_, frames)), Some(a)) = (open.as_mut(), parse_addr(addr)) {
                    frames.push(a);
                }
            }
            ["host-call", addr @ ..] => host = parse_addr(addr),
            ["end"] => {
                if let Some((pc, frames)) = open.take() {
                    done.push(from_pc(pc.as_ref(), &frames).into_iter().chain(host.take()).collect());
                }
            }
            _ => {}
        }
    }
    done
}

/// Where a hang is: the frames every sample shares, from the innermost
/// shared one outwards. A loop's own frame is in each sample and what it
/// calls is in some, so one sample alone would name whichever callee it
/// happened to catch. Samples are lined up from their outer ends; one cut
/// short by the frame limit lines up where eight frames in a row agree.
pub fn held_in_common(samples: &[Vec<String>]) -> Vec<String> {
    let Some((first, rest)) = samples.split_first() else { return vec![] };
    rest.iter().fold(first.clone(), |held, other| {
        for i in 0..held.len() {
            for j in 0..other.len() {
                let m = (held.len() - i).min(other.len() - j);
                let to_both_ends = i + m == held.len() && j + m == other.len();
                if (to_both_ends || m >= 8) && held[i..i + m] == other[j..j + m] {
                    return held[i..].to_vec();
                }
            }
        }
        vec![]
    })
}

fn parse_addr(words: &[&str]) -> Option<Addr> {
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    match words {
        ["wasm", module, off, ..] => {
            Some(Addr::Wasm { module: module.strip_prefix('m')?.parse().ok()?, offset: hex(off)? })
        }
        [w, ..] => match w.strip_prefix("exe+") {
            Some(off) => Some(Addr::Exe(hex(off)?)),
            None => Some(Addr::Other(hex(w)?)),
        },
        [] => None,
    }
}

/// The report in `stderr`, if the worker wrote one, and the other lines.
pub fn parse(stderr: &str) -> (Option<Report>, String) {
    let mut report: Option<Report> = None;
    let mut rest = String::new();
    // Frames between a sample line and its end are the sample's.
    let mut sampling = false;
    for line in stderr.lines() {
        let Some(body) = line.strip_prefix(TAG) else {
            rest.push_str(line);
            rest.push('\n');
            continue;
        };
        let words: Vec<&str> = body.split_whitespace().collect();
        match words.as_slice() {
            ["sample", ..] => sampling = true,
            ["end"] => sampling = false,
            _ if sampling => {}
            ["signal", sig, "code", _code, more @ ..] => {
                let mut r = Report { signal: sig.parse().unwrap_or(0), ..Report::default() };
                let mut more = more;
                if let ["sent-by", pid, tail @ ..] = more {
                    r.sent_by = pid.parse().ok();
                    more = tail;
                }
                if let ["addr", addr, tail @ ..] = more {
                    r.addr = u64::from_str_radix(addr.trim_start_matches("0x"), 16).ok();
                    more = tail;
                }
                if let ["pc", addr @ ..] = more {
                    r.pc = parse_addr(addr);
                }
                report = Some(r);
            }
            ["frame", addr @ ..] => {
                if let (Some(r), Some(a)) = (report.as_mut(), parse_addr(addr)) {
                    r.frames.push(a);
                }
            }
            _ => {}
        }
    }
    (report, rest)
}

/// Function symbols of a worker executable, for naming `Addr::Exe` offsets.
#[derive(Default)]
pub struct Symbols {
    /// (start, name), sorted by start.
    functions: Vec<(u64, String)>,
}

impl Symbols {
    /// Reads the symbol table of `program`; empty when it has none.
    pub fn read(program: &Path) -> Symbols {
        use object::{Object, ObjectSymbol, SymbolKind};
        let mut functions: Vec<(u64, String)> = std::fs::read(program)
            .ok()
            .and_then(|data| {
                let file = object::File::parse(&*data).ok()?;
                Some(
                    file.symbols()
                        .filter(|s| s.kind() == SymbolKind::Text && s.address() != 0)
                        .filter_map(|s| Some((s.address(), format!("{:#}", rustc_demangle::demangle(s.name().ok()?)))))
                        .collect(),
                )
            })
            .unwrap_or_default();
        functions.sort();
        Symbols { functions }
    }

    /// This process's own executable's, read once.
    pub fn own() -> &'static Symbols {
        static OWN: std::sync::OnceLock<Symbols> = std::sync::OnceLock::new();
        OWN.get_or_init(|| std::env::current_exe().map(|exe| Symbols::read(&exe)).unwrap_or_default())
    }

    /// Names for [`exe_offsets`]: `<unknown>` outside the executable, as
    /// std's backtrace names them.
    pub fn names(&self, offsets: &[Option<u64>]) -> Vec<String> {
        offsets.iter().map(|o| o.and_then(|o| self.name(o)).unwrap_or("<unknown>").to_string()).collect()
    }

    /// The function containing image offset `offset` (reports give the
    /// call instruction for return addresses, so no adjustment here).
    pub fn name(&self, offset: u64) -> Option<&str> {
        let i = self.functions.partition_point(|(start, _)| *start <= offset).checked_sub(1)?;
        Some(&self.functions[i].1)
    }
}

/// Names for `frames`: symbols for the executable's, `wasm <Operator>` for
/// Wasm code (decoded from `modules`, the case's modules in
/// `TestCase::modules` order), `<unknown>` otherwise.
pub fn frame_names(frames: &[Addr], symbols: &Symbols, modules: &[Vec<u8>]) -> Vec<String> {
    frames
        .iter()
        .map(|f| match f {
            Addr::Exe(off) => symbols.name(*off).unwrap_or("<unknown>").to_string(),
            Addr::Wasm { module, offset } => match modules
                .get(*module as usize)
                .and_then(|wasm| crate::engine::wasmtime::locate::operator_at(wasm, *offset as usize))
            {
                Some(op) => format!("wasm {op}"),
                None => "<unknown>".into(),
            },
            Addr::Other(_) => "<unknown>".into(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_parsed_and_start_at_the_fault() {
        let stderr = "some output\n\
            gcfuzz-fatal: signal 11 code 1 addr 0x8 pc exe+0x40\n\
            gcfuzz-fatal: frame exe+0x900\n\
            gcfuzz-fatal: frame 0x7f0000001000\n\
            gcfuzz-fatal: frame exe+0x40\n\
            gcfuzz-fatal: frame wasm m1 0x1c\n";
        let (report, rest) = parse(stderr);
        let report = report.unwrap();
        assert_eq!((report.signal, report.sent_by, report.addr), (11, None, Some(8)));
        assert_eq!(report.from_fault(), [Addr::Exe(0x40), Addr::Wasm { module: 1, offset: 0x1c }]);
        assert_eq!(rest, "some output\n");
        let (sent, _) = parse("gcfuzz-fatal: signal 11 code 0 sent-by 4242 pc exe+0x10\n");
        assert_eq!(sent.unwrap().sent_by, Some(4242));
        assert_eq!(parse("no report\n").0, None);
    }

    #[test]
    fn samples_are_parsed_apart_from_fault_reports() {
        let stderr = "gcfuzz-fatal: sample pc exe+0x20\n\
            gcfuzz-fatal: frame exe+0x900\n\
            gcfuzz-fatal: frame exe+0x20\n\
            gcfuzz-fatal: frame wasm m0 0x1c\n\
            gcfuzz-fatal: host-call wasm m1 0x2a\n\
            gcfuzz-fatal: end\n\
            gcfuzz-fatal: sample pc exe+0x30\n\
            gcfuzz-fatal: frame exe+0x30\n";
        // The second sample has no end: cut short, left out.
        let wasm = |module, offset| Addr::Wasm { module, offset };
        assert_eq!(samples(stderr), [vec![Addr::Exe(0x20), wasm(0, 0x1c), wasm(1, 0x2a)]]);
        // A sample's frames are no fault report's.
        assert_eq!(parse(stderr).0, None);
    }

    #[test]
    fn a_hang_is_where_its_samples_agree() {
        let owned = |frames: &[&str]| frames.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let outer = ["collect_increment", "gc", "wasm Call", "wasm Call", "call", "main"];
        let with = |inner: &[&str]| owned(&[inner, &outer[..]].concat());
        // One sample caught the loop in a callee, one in the loop itself.
        let held = held_in_common(&[with(&["dealloc"]), with(&[]), with(&["trace", "dealloc"])]);
        assert_eq!(held, owned(&outer));
        // Samples cut short at different depths line up on eight frames.
        let deep: Vec<String> = (0..20).map(|i| format!("f{i}")).collect();
        let cut = |from: usize, to: usize| deep[from..to].to_vec();
        assert_eq!(held_in_common(&[cut(0, 12), cut(2, 15)]), cut(2, 12));
        // Nothing in common, nothing held; one sample is its own place.
        assert!(held_in_common(&[owned(&["a", "main"]), owned(&["b", "start"])]).is_empty());
        assert_eq!(held_in_common(&[with(&["dealloc"])]), with(&["dealloc"]));
    }
}
