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
//! The parent ([`parse`], [`Symbols`], in `read`) turns the report into
//! frames: symbol names from the worker executable's symbol table,
//! `wasm <Operator>` for Wasm code, so a crash signature names where the
//! fault happened.
//!
//! A hang has no signal of its own: the parent sends [`SAMPLE`] to a worker
//! past its time limit, and the same kind of report (a sample) comes back
//! while the worker runs on; the frames several samples share are where it
//! hangs ([`held_in_common`]).
//!
//! In process (a libFuzzer target, whose stderr fork mode throws away) the
//! same report also goes to a file named ahead of time ([`report_file`]),
//! opened by the handler itself (`open(2)` is async-signal-safe).

use std::ffi::{c_int, c_void};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

mod read;
pub use read::*;

const SIGNALS: [c_int; 4] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE];
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

/// The signal the parent sends a worker whose case overran its time limit:
/// the case's thread writes where it is (a sample: its pc and return
/// addresses, as a fatal report does) and runs on. Workers only: libFuzzer
/// keeps SIGUSR2 for itself.
pub const SAMPLE: c_int = libc::SIGUSR2;
/// The thread that runs cases (the worker's main thread), which a sample
/// request delivered to another thread is passed on to.
static CASE_THREAD: AtomicI32 = AtomicI32::new(0);
/// Return addresses a sample writes at most: a hang's place is found by
/// lining up samples from their outer ends, so they must reach past the
/// Wasm frames of a deep call chain.
const MAX_SAMPLE_FRAMES: usize = 160;

/// Answers [`SAMPLE`] from now on, for the calling thread (a worker's main
/// thread, after [`install`], whose alternate stack the handler uses).
pub fn answer_samples() {
    // SAFETY: plain libc calls; the action is fully initialized.
    unsafe {
        CASE_THREAD.store(libc::syscall(libc::SYS_gettid) as i32, Ordering::SeqCst);
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = sample as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(SAMPLE, &action, std::ptr::null_mut());
    }
}

/// The pc a signal interrupted, from the `ucontext_t` an `SA_SIGINFO`
/// handler receives (x86-64 Linux; `None` elsewhere).
///
/// # Safety
/// `context` is null or the handler's third argument.
unsafe fn interrupted_pc(context: *mut c_void) -> Option<usize> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    if !context.is_null() {
        // SAFETY: the kernel's ucontext for this signal (the caller's contract).
        let uc = unsafe { &*(context as *const libc::ucontext_t) };
        return Some(uc.uc_mcontext.gregs[libc::REG_RIP as usize] as usize);
    }
    let _ = context;
    None
}

unsafe extern "C" fn sample(sig: c_int, _info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: async-signal-safe calls only (gettid, tgkill, write, the
    // unwinder); errno is restored for the code this interrupted.
    unsafe {
        let errno = *libc::__errno_location();
        let case = CASE_THREAD.load(Ordering::SeqCst);
        if case != 0 && libc::syscall(libc::SYS_gettid) as i32 != case {
            libc::syscall(libc::SYS_tgkill, libc::getpid(), case, sig);
        } else {
            let mut line = Line::new();
            line.str(" sample");
            if let Some(pc) = interrupted_pc(context) {
                line.str(" pc ").addr(pc);
            }
            line.write();
            let mut walk = [0usize, MAX_SAMPLE_FRAMES];
            _Unwind_Backtrace(frame, (&mut walk as *mut [usize; 2]).cast());
            // On Pulley a host function's Wasm caller is not on the native
            // stack; where it was recorded, it ends the sample.
            if let Some(at) = crate::engine::wasmtime::locate::host_site() {
                Line::new()
                    .str(" host-call wasm m")
                    .num(at.module as u64, 10)
                    .str(" ")
                    .num(at.offset as u64, 16)
                    .write();
            }
            Line::new().str(" end").write();
        }
        *libc::__errno_location() = errno;
    }
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
        if let Some(at) = crate::engine::wasmtime::locate::wasm_offset_at(pc) {
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

/// Writes one frame line; `walk` is `[frames so far, the most to write]`.
unsafe extern "C" fn frame(ctx: *mut c_void, walk: *mut c_void) -> c_int {
    // SAFETY: `walk` is the `[usize; 2]` the handlers pass; `ctx` is the
    // unwinder's.
    unsafe {
        let [count, limit] = &mut *(walk as *mut [usize; 2]);
        *count += 1;
        // A return address is one past its call: report the call itself,
        // except for the signal frame, whose address is the faulting pc.
        let mut exact: c_int = 0;
        let ip = _Unwind_GetIPInfo(ctx, &mut exact);
        Line::new().str(" frame ").addr(if exact != 0 { ip } else { ip.saturating_sub(1) }).write();
        if *count >= *limit { 1 } else { 0 }
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
        if let Some(pc) = interrupted_pc(context) {
            line.str(" pc ").addr(pc);
        }
        line.write();
        let mut walk = [0usize, MAX_FRAMES];
        _Unwind_Backtrace(frame, (&mut walk as *mut [usize; 2]).cast());
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let here = lines_format_numbers_without_allocating as *const () as usize;
        let offset = (here - EXE_BASE.load(Ordering::Relaxed)) as u64;
        let name = symbols.name(offset + 4).unwrap();
        assert!(name.contains("lines_format_numbers_without_allocating"), "{name}");
    }
}
