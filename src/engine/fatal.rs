//! Fatal signals in a worker. A worker that dies of SIGSEGV, SIGBUS, SIGILL
//! or SIGFPE leaves no panic message, so without more every such death in
//! one engine would share one identity. Before it dies, a handler on an
//! alternate stack writes a raw report to stderr: the signal, who sent it,
//! the faulting pc and the return addresses the unwinder finds, each as an
//! offset into the executable, a Wasm byte offset (compiled Wasm code of the
//! running module), or an absolute address (anything else). Only
//! async-signal-safe work happens first (fixed buffers, `write(2)`, atomic
//! loads); the unwinder runs last, so a report cut short still has the pc.
//!
//! The handler is installed before any Wasmtime engine exists: Wasmtime's
//! own handlers, installed later, see every signal first, handle their
//! traps, and pass the rest on to this one. After writing, it hands the
//! signal to whatever handler it replaced (Rust's stack-overflow reporter),
//! or restores the default action, so the process dies of the same signal.
//!
//! The parent ([`parse`], [`Symbols`]) turns the report into frames: symbol
//! names from the worker executable's symbol table, `wasm <Operator>` for
//! Wasm code, so a crash signature names where the fault happened.
//!
//! In process (a libFuzzer target, whose stderr fork mode throws away) the
//! same report also goes to a file named ahead of time ([`report_file`]),
//! opened by the handler itself (`open(2)` is async-signal-safe).

use std::ffi::{c_int, c_void};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

const SIGNALS: [c_int; 4] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE];
/// What every report line starts with.
const TAG: &str = "gcfuzz-fatal:";
const MAX_FRAMES: usize = 48;

static PREVIOUS: OnceLock<[libc::sigaction; 4]> = OnceLock::new();
/// The executable's load address and the end of its mapped image.
static EXE_BASE: AtomicUsize = AtomicUsize::new(0);
static EXE_END: AtomicUsize = AtomicUsize::new(0);

/// The file the handler also writes its report to, as a NUL-terminated
/// path, valid while `REPORT_ARMED` is set; `REPORT_FD` is the handler's
/// open descriptor for it (-1 outside the handler).
struct ReportPath(std::cell::UnsafeCell<[u8; 1024]>);
// SAFETY: written only by `report_file` while disarmed, read only by the
// handler while armed (one thread arms it, the one whose fault is reported).
unsafe impl Sync for ReportPath {}
static REPORT_PATH: ReportPath = ReportPath(std::cell::UnsafeCell::new([0; 1024]));
static REPORT_ARMED: AtomicBool = AtomicBool::new(false);
static REPORT_FD: AtomicI32 = AtomicI32::new(-1);

/// Sends the report of a fatal signal that arrives from now on to `path` as
/// well as stderr (created when the signal arrives); `None` stops that. A
/// path too long for the handler's buffer is ignored.
pub fn report_file(path: Option<&Path>) {
    use std::os::unix::ffi::OsStrExt;
    REPORT_ARMED.store(false, Ordering::SeqCst);
    let Some(bytes) = path.map(|p| p.as_os_str().as_bytes()) else { return };
    // SAFETY: disarmed, so the handler does not read the buffer meanwhile.
    let buf = unsafe { &mut *REPORT_PATH.0.get() };
    if bytes.len() >= buf.len() || bytes.contains(&0) {
        return;
    }
    buf[..bytes.len()].copy_from_slice(bytes);
    buf[bytes.len()] = 0;
    REPORT_ARMED.store(true, Ordering::SeqCst);
}

/// Installs the handler for this process (a worker, at start).
pub fn install() {
    if PREVIOUS.get().is_some() {
        return;
    }
    find_image();
    // SAFETY: plain libc calls on memory this function owns; the alternate
    // stack is never unmapped (it must outlive every signal).
    unsafe {
        const STACK: usize = 256 << 10;
        // Mapped, not allocated: LeakSanitizer (in ASan builds of the
        // libFuzzer targets) would report a heap block only the kernel
        // points to.
        let stack = libc::mmap(
            std::ptr::null_mut(),
            STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if stack == libc::MAP_FAILED {
            return;
        }
        let ss = libc::stack_t { ss_sp: stack, ss_flags: 0, ss_size: STACK };
        libc::sigaltstack(&ss, std::ptr::null_mut());
        let mut previous: [libc::sigaction; 4] = std::mem::zeroed();
        for (sig, prev) in SIGNALS.iter().zip(previous.iter_mut()) {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(*sig, &action, prev);
        }
        let _ = PREVIOUS.set(previous);
    }
}

/// Finds where the executable is mapped (`EXE_BASE`, `EXE_END`), once.
fn find_image() {
    static FOUND: std::sync::Once = std::sync::Once::new();
    // SAFETY: `main_image` reads what the loader passes and stores two words.
    FOUND.call_once(|| unsafe {
        libc::dl_iterate_phdr(Some(main_image), std::ptr::null_mut());
    });
}

/// The image offsets of `sites` (`call_sites`) that fall in this
/// executable; `None` for the others (shared libraries, compiled Wasm).
/// A worker's panic hook sends these rather than names: naming a frame in a
/// fresh process means reading the executable's symbols (and std's
/// backtrace reads the detached debug info of every library on the stack
/// too), which made a panicking worker take ~60 ms to report; the parent
/// names them with the [`Symbols`] it read once.
pub fn exe_offsets(sites: &[usize]) -> Vec<Option<u64>> {
    find_image();
    let (base, end) = (EXE_BASE.load(Ordering::Relaxed), EXE_END.load(Ordering::Relaxed));
    sites.iter().map(|&pc| (base..end).contains(&pc).then(|| (pc - base) as u64)).collect()
}

/// `dl_iterate_phdr` callback: the first object is the executable.
unsafe extern "C" fn main_image(info: *mut libc::dl_phdr_info, _size: usize, _data: *mut c_void) -> c_int {
    // SAFETY: the loader passes a valid `dl_phdr_info` with `dlpi_phnum`
    // program headers.
    unsafe {
        let info = &*info;
        let base = info.dlpi_addr as usize;
        let headers = std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize);
        let end = headers
            .iter()
            .filter(|h| h.p_type == libc::PT_LOAD)
            .map(|h| base + (h.p_vaddr + h.p_memsz) as usize)
            .max()
            .unwrap_or(base);
        EXE_BASE.store(base, Ordering::Relaxed);
        EXE_END.store(end, Ordering::Relaxed);
    }
    1
}

/// A line buffer on the stack: no allocation in a signal handler.
struct Line {
    buf: [u8; 160],
    len: usize,
}

impl Line {
    fn new() -> Line {
        let mut line = Line { buf: [0; 160], len: 0 };
        line.str(TAG);
        line
    }
    fn str(&mut self, s: &str) -> &mut Line {
        for &b in s.as_bytes() {
            if self.len < self.buf.len() - 1 {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        self
    }
    fn num(&mut self, mut n: u64, radix: u64) -> &mut Line {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b"0123456789abcdef"[(n % radix) as usize];
            n /= radix;
            if n == 0 {
                break;
            }
        }
        if radix == 16 {
            self.str("0x");
        }
        // SAFETY: the digits are ASCII.
        self.str(unsafe { std::str::from_utf8_unchecked(&digits[i..]) })
    }
    /// An address, classified: `exe+0x…`, `wasm 0x…` or `0x…`.
    fn addr(&mut self, pc: usize) -> &mut Line {
        let (base, end) = (EXE_BASE.load(Ordering::Relaxed), EXE_END.load(Ordering::Relaxed));
        if let Some(at) = super::wasmtime::locate::wasm_offset_at(pc) {
            self.str("wasm m").num(at.module as u64, 10).str(" ").num(at.offset as u64, 16)
        } else if (base..end).contains(&pc) {
            self.str("exe+").num((pc - base) as u64, 16)
        } else {
            self.num(pc as u64, 16)
        }
    }
    fn write(&mut self) {
        self.str("\n");
        // SAFETY: write(2) of our own buffer to stderr and the report file.
        unsafe {
            libc::write(2, self.buf.as_ptr().cast(), self.len);
            let fd = REPORT_FD.load(Ordering::Relaxed);
            if fd >= 0 {
                libc::write(fd, self.buf.as_ptr().cast(), self.len);
            }
        }
    }
}

unsafe extern "C" {
    fn _Unwind_Backtrace(trace: unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int, arg: *mut c_void) -> c_int;
    fn _Unwind_GetIPInfo(ctx: *mut c_void, ip_before_insn: *mut c_int) -> usize;
}

unsafe extern "C" fn frame(ctx: *mut c_void, count: *mut c_void) -> c_int {
    // SAFETY: `count` is the `usize` `handler` passes; `ctx` is the
    // unwinder's.
    unsafe {
        let count = &mut *(count as *mut usize);
        *count += 1;
        // A return address is one past its call: report the call itself,
        // except for the signal frame, whose address is the faulting pc.
        let mut exact: c_int = 0;
        let ip = _Unwind_GetIPInfo(ctx, &mut exact);
        Line::new().str(" frame ").addr(if exact != 0 { ip } else { ip.saturating_sub(1) }).write();
        if *count >= MAX_FRAMES { 1 } else { 0 }
    }
}

/// How many call sites [`call_sites`] reports at most: a collector panic
/// sits under panic machinery and the collector's own frames.
const MAX_CALL_SITES: usize = 160;

unsafe extern "C" fn collect(ctx: *mut c_void, sites: *mut c_void) -> c_int {
    // SAFETY: `sites` is the `Vec` `call_sites` passes; `ctx` is the
    // unwinder's.
    unsafe {
        let sites = &mut *(sites as *mut Vec<usize>);
        let mut exact: c_int = 0;
        let ip = _Unwind_GetIPInfo(ctx, &mut exact);
        sites.push(if exact != 0 { ip } else { ip.saturating_sub(1) });
        if sites.len() >= MAX_CALL_SITES { 1 } else { 0 }
    }
}

/// The call sites on this thread's stack, innermost first (each return
/// address less one, so it falls in its call instruction). For a panic
/// hook, which may allocate; the signal handler writes its own.
pub fn call_sites() -> Vec<usize> {
    let mut sites: Vec<usize> = Vec::with_capacity(MAX_CALL_SITES);
    // SAFETY: `collect` only pushes onto `sites`, which outlives the walk.
    unsafe { _Unwind_Backtrace(collect, (&mut sites as *mut Vec<usize>).cast()) };
    sites
}

unsafe extern "C" fn handler(sig: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo and ucontext to an
    // SA_SIGINFO handler.
    unsafe {
        if REPORT_ARMED.load(Ordering::SeqCst) {
            let path = (*REPORT_PATH.0.get()).as_ptr().cast();
            REPORT_FD.store(libc::open(path, libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC, 0o644), Ordering::Relaxed);
        }
        let code = (*info).si_code;
        let mut line = Line::new();
        line.str(" signal ").num(sig as u64, 10).str(" code ");
        if code < 0 {
            line.str("-");
        }
        line.num(code.unsigned_abs() as u64, 10);
        // SI_USER, SI_TKILL, SI_QUEUE: sent by a process, not raised by a
        // fault.
        if code <= 0 {
            line.str(" sent-by ").num((*info).si_pid() as u64, 10);
        } else {
            line.str(" addr ").num((*info).si_addr() as u64, 16);
        }
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        if !context.is_null() {
            let uc = context as *const libc::ucontext_t;
            line.str(" pc ").addr((*uc).uc_mcontext.gregs[libc::REG_RIP as usize] as usize);
        }
        line.write();
        let mut count = 0usize;
        _Unwind_Backtrace(frame, (&mut count as *mut usize).cast());
        let fd = REPORT_FD.swap(-1, Ordering::Relaxed);
        if fd >= 0 {
            libc::close(fd);
        }
        // A signal sent from outside is delivered again, with the default
        // action, once this handler returns.
        if code <= 0 {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
            return;
        }
        // A fault: hand it to the handler this one replaced, or restore the
        // default action and let the fault happen again.
        let i = SIGNALS.iter().position(|s| *s == sig).unwrap_or(0);
        let previous = PREVIOUS.get().map(|p| p[i].sa_sigaction).unwrap_or(libc::SIG_DFL);
        if previous != libc::SIG_DFL && previous != libc::SIG_IGN {
            let flags = PREVIOUS.get().map_or(0, |p| p[i].sa_flags);
            if flags & libc::SA_SIGINFO != 0 {
                let f: unsafe extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) = std::mem::transmute(previous);
                return f(sig, info, context);
            }
            let f: unsafe extern "C" fn(c_int) = std::mem::transmute(previous);
            return f(sig);
        }
        libc::signal(sig, libc::SIG_DFL);
    }
}

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
        match self.pc.as_ref().and_then(|pc| self.frames.iter().position(|f| f == pc)) {
            Some(i) => self.frames[i..].to_vec(),
            None => self.pc.iter().cloned().collect(),
        }
    }
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
    for line in stderr.lines() {
        let Some(body) = line.strip_prefix(TAG) else {
            rest.push_str(line);
            rest.push('\n');
            continue;
        };
        let words: Vec<&str> = body.split_whitespace().collect();
        match words.as_slice() {
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
                .and_then(|wasm| super::wasmtime::locate::operator_at(wasm, *offset as usize))
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
    fn lines_format_numbers_without_allocating() {
        let mut line = Line::new();
        line.str(" x ").num(0, 10).str(" ").num(255, 16).str(" ").num(1234567, 10);
        assert_eq!(std::str::from_utf8(&line.buf[..line.len]).unwrap(), "gcfuzz-fatal: x 0 0xff 1234567");
    }

    #[test]
    fn this_executable_names_its_own_functions() {
        install();
        let symbols = Symbols::read(&std::env::current_exe().unwrap());
        let here = reports_are_parsed_and_start_at_the_fault as *const () as usize;
        let offset = (here - EXE_BASE.load(Ordering::Relaxed)) as u64;
        let name = symbols.name(offset + 4).unwrap();
        assert!(name.contains("reports_are_parsed_and_start_at_the_fault"), "{name}");
    }
}
