//! Crash isolation: engines run in worker processes, so a panic, abort,
//! signal or hang kills a worker, not the campaign.
//!
//! The parent loads a case into the worker, then asks for one configuration
//! at a time. It therefore always knows which case and which configuration a
//! dead worker was running. A worker that dies is replaced on next use.
//!
//! Protocol: length-prefixed frames on a private pipe (the worker's original
//! stdout; its fd 1 is pointed at stderr so stray prints cannot corrupt the
//! protocol). Requests are JSON; a `Load` is followed by a raw module frame.

use crate::case::{Plan, TestCase};
use crate::engine::{self, Engine, fatal};
use crate::outcome::{CrashInfo, Outcome};
use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::io::{BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Creates engines by configuration name inside a worker.
pub type Factory = fn(&str) -> Option<Box<dyn Engine>>;

#[derive(Serialize, Deserialize)]
enum Request {
    /// Followed by one frame with the module bytes.
    Load {
        plan: Plan,
    },
    Run {
        config: String,
    },
}

#[derive(Serialize, Deserialize)]
enum Response {
    Outcome(Outcome),
    Unsupported,
    UnknownConfig,
    /// Sent by the panic hook just before the worker aborts.
    Panic {
        message: String,
        location: Option<String>,
        frames: Vec<String>,
        #[serde(default)]
        wasm: Option<String>,
    },
}

/// What running one configuration in a worker came to.
#[derive(Debug)]
pub enum RunResult {
    Outcome(Outcome),
    /// The configuration cannot run this case (feature check).
    Unsupported,
    Crashed(CrashInfo),
    TimedOut,
}

/// Runs configurations on a case; in a worker process or in this process.
pub trait Executor {
    fn run(&mut self, case: &TestCase, config: &str) -> Result<RunResult>;
    /// Drops every engine (and the worker process, if any): the next run
    /// starts fresh, with no history of earlier cases.
    fn restart(&mut self);
}

/// In-process execution: for the libFuzzer targets and for tests. A panic
/// that unwinds is caught and reported as a crash, with its message,
/// location and frames, as a worker would report it (so a known bug's
/// signature can be recognized and passed over), and the engine it hit is
/// dropped; an abort still ends the process.
pub struct InProcess {
    factory: Factory,
    engines: HashMap<String, Box<dyn Engine>>,
}

impl InProcess {
    pub fn new(factory: Factory) -> InProcess {
        InProcess { factory, engines: HashMap::new() }
    }
}

impl Executor for InProcess {
    fn run(&mut self, case: &TestCase, config: &str) -> Result<RunResult> {
        if !self.engines.contains_key(config) {
            let engine = (self.factory)(config).ok_or_else(|| anyhow!("unknown configuration {config:?}"))?;
            self.engines.insert(config.to_string(), engine);
        }
        let engine = self.engines.get_mut(config).expect("just inserted");
        let run = catch_panic(|| engine::execute(engine.as_mut(), case));
        Ok(match run {
            Ok(Some(outcome)) => RunResult::Outcome(outcome),
            Ok(None) => RunResult::Unsupported,
            Err(Caught { message, location, frames, wasm }) => {
                // What the panic left behind in the engine is not to be trusted.
                self.engines.remove(config);
                RunResult::Crashed(CrashInfo {
                    config: config.to_string(),
                    message,
                    location,
                    signal: None,
                    exit_code: None,
                    frames,
                    wasm,
                })
            }
        })
    }

    fn restart(&mut self) {
        self.engines.clear();
    }
}

impl InProcess {
    /// Engines built so far (a test's view of `restart`).
    pub fn engines(&self) -> usize {
        self.engines.len()
    }
}

/// What a panic hook learns of a panic.
struct Caught {
    message: String,
    location: Option<String>,
    frames: Vec<String>,
    /// Where in Wasm: the operator at the fault for a failure compiled code
    /// detected, else the one that called out into the panicking code.
    wasm: Option<String>,
}

fn caught(info: &std::panic::PanicHookInfo) -> Caught {
    let message = match info.payload().downcast_ref::<&str>() {
        Some(s) => s.to_string(),
        None => info.payload().downcast_ref::<String>().cloned().unwrap_or_else(|| "<non-string panic>".into()),
    };
    let location = info.location().map(|l| format!("{}:{}", l.file(), l.line()));
    let frames = backtrace_frames(&std::backtrace::Backtrace::force_capture().to_string());
    use crate::engine::wasmtime::locate;
    // A failure compiled code detected: the operator at the fault; any other
    // panic under Wasm frames: the operator that called out.
    let wasm = match message.contains("in compiled code") {
        true => locate::faulting_operator(),
        false => locate::calling_operator(&crate::engine::fatal::call_sites()),
    };
    Caught { message, location, frames, wasm }
}

thread_local! {
    /// Set while `catch_panic` runs on this thread: the hook records the
    /// panic here instead of printing it.
    static CAUGHT: std::cell::RefCell<Option<Option<Caught>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f`, turning a panic into its message, location and frames.
fn catch_panic<T>(f: impl FnOnce() -> T) -> std::result::Result<T, Caught> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let capturing = CAUGHT.with(|c| c.borrow().is_some());
            if !capturing {
                return previous(info);
            }
            let report = caught(info);
            CAUGHT.with(|c| *c.borrow_mut() = Some(Some(report)));
        }));
    });
    CAUGHT.with(|c| *c.borrow_mut() = Some(None));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let caught = CAUGHT.with(|c| c.borrow_mut().take()).flatten();
    result.map_err(|_| {
        caught.unwrap_or_else(|| Caught {
            message: "<panic not recorded>".into(),
            location: None,
            frames: vec![],
            wasm: None,
        })
    })
}

fn write_frame(w: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(&(bytes.len() as u32).to_le_bytes())?;
    w.write_all(bytes)?;
    w.flush()
}

fn read_frame(r: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut buf = vec![0u8; u32::from_le_bytes(len) as usize];
    r.read_exact(&mut buf)?;
    Ok(Some(buf))
}

/// The protocol pipe, shared with the panic hook.
static PROTOCOL: Mutex<Option<std::fs::File>> = Mutex::new(None);

fn send(response: &Response) {
    let bytes = serde_json::to_vec(response).expect("response serializes");
    let mut guard = PROTOCOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(pipe) = guard.as_mut() {
        // The parent reads a missing reply as a crash, which it then is.
        let _ = write_frame(pipe, &bytes);
    }
}

/// Caps the process's writable private memory (`RLIMIT_DATA`). Wasmtime's
/// reservations are inaccessible mappings and do not count; what it makes
/// accessible, and every heap allocation, does. Past the limit an allocation
/// fails and the process aborts with "memory allocation of N bytes failed".
fn limit_memory(megabytes: u64) -> Result<()> {
    let bytes = megabytes.saturating_mul(1 << 20) as libc::rlim_t;
    let limit = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
    // SAFETY: setrlimit reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_DATA, &limit) } != 0 {
        bail!("worker: cannot set the memory limit: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// The worker side: serve requests on stdin until it closes, optionally
/// under a memory limit.
pub fn serve(factory: Factory, memory_limit_mb: Option<u64>) -> Result<()> {
    use std::os::fd::FromRawFd;
    if let Some(mb) = memory_limit_mb {
        limit_memory(mb)?;
    }
    // Before any engine: Wasmtime's handlers, installed later, go first.
    fatal::install();
    // Move the protocol off fd 1: anything else that prints to stdout lands
    // on stderr instead of in the middle of a frame.
    // SAFETY: plain fd duplication on descriptors this process owns.
    let pipe = unsafe {
        let fd = libc::dup(1);
        if fd < 0 || libc::dup2(2, 1) < 0 {
            bail!("worker: cannot set up protocol pipe");
        }
        std::fs::File::from_raw_fd(fd)
    };
    *PROTOCOL.lock().unwrap() = Some(pipe);
    std::panic::set_hook(Box::new(|info| {
        let Caught { message, location, frames, wasm } = caught(info);
        eprintln!("worker panicked at {}: {message}", location.as_deref().unwrap_or("?"));
        send(&Response::Panic { message, location, frames, wasm });
        std::process::abort();
    }));

    let mut stdin = BufReader::new(std::io::stdin().lock());
    let mut engines: HashMap<String, Box<dyn Engine>> = HashMap::new();
    let mut case: Option<TestCase> = None;
    while let Some(frame) = read_frame(&mut stdin)? {
        match serde_json::from_slice(&frame).context("worker: bad request")? {
            Request::Load { plan } => {
                let wasm = read_frame(&mut stdin)?.ok_or_else(|| anyhow!("worker: module frame missing"))?;
                case = Some(TestCase { wasm, plan });
            }
            Request::Run { config } => {
                let case = case.as_ref().ok_or_else(|| anyhow!("worker: run before load"))?;
                if !engines.contains_key(&config) {
                    match factory(&config) {
                        Some(engine) => {
                            engines.insert(config.clone(), engine);
                        }
                        None => {
                            send(&Response::UnknownConfig);
                            continue;
                        }
                    }
                }
                let engine = engines.get_mut(&config).expect("just inserted");
                send(&match engine::execute(engine.as_mut(), case) {
                    Some(outcome) => Response::Outcome(outcome),
                    None => Response::Unsupported,
                });
            }
        }
    }
    Ok(())
}

/// Function names from a `std::backtrace::Backtrace` rendering.
pub fn backtrace_frames(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let (num, rest) = line.trim_start().split_once(": ")?;
            num.chars().all(|c| c.is_ascii_digit()).then(|| rest.trim().to_string())
        })
        .collect()
}

/// How to start a worker: a program and its arguments.
#[derive(Clone, Debug)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl WorkerCommand {
    /// This executable's own `worker` subcommand.
    pub fn current_exe() -> Result<WorkerCommand> {
        Ok(WorkerCommand { program: std::env::current_exe()?, args: vec!["worker".into()] })
    }

    /// Workers started with this command run under a memory limit.
    pub fn memory_limit_mb(mut self, megabytes: u64) -> WorkerCommand {
        self.args.push("--memory-limit-mb".into());
        self.args.push(megabytes.to_string());
        self
    }
}

enum Frame {
    Data(Vec<u8>),
    Eof,
}

struct Process {
    child: Child,
    stdin: ChildStdin,
    frames: Receiver<Frame>,
    stderr_tail: Arc<Mutex<VecDeque<u8>>>,
    stderr_reader: std::thread::JoinHandle<()>,
}

/// Keeps this much of a worker's stderr, for crashes that print their reason.
const STDERR_TAIL: usize = 16 * 1024;

/// The parent side: one worker process, restarted after each death.
pub struct Worker {
    command: WorkerCommand,
    timeout: Duration,
    process: Option<Process>,
    /// The case the live process has loaded (by identity of its bytes).
    loaded: Option<(Vec<u8>, Plan)>,
    /// Workers started, including the first.
    pub spawned: u64,
    /// The worker executable's symbols, read at its first fatal signal.
    symbols: std::cell::OnceCell<fatal::Symbols>,
}

impl Worker {
    pub fn new(command: WorkerCommand, timeout: Duration) -> Worker {
        Worker { command, timeout, process: None, loaded: None, spawned: 0, symbols: std::cell::OnceCell::new() }
    }

    fn spawn(&mut self) -> Result<&mut Process> {
        if self.process.is_none() {
            let mut cmd = Command::new(&self.command.program);
            cmd.args(&self.command.args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
            // Own process group: a Ctrl-C at the terminal stops the campaign,
            // which then stops its workers; it must not look like a crash.
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
            let mut child =
                cmd.spawn().with_context(|| format!("starting worker {}", self.command.program.display()))?;
            let stdin = child.stdin.take().expect("piped");
            let mut stdout = child.stdout.take().expect("piped");
            let mut stderr = child.stderr.take().expect("piped");
            let (tx, frames) = channel();
            std::thread::spawn(move || {
                while let Ok(Some(frame)) = read_frame(&mut stdout) {
                    if tx.send(Frame::Data(frame)).is_err() {
                        return;
                    }
                }
                let _ = tx.send(Frame::Eof);
            });
            let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
            let tail = stderr_tail.clone();
            let stderr_reader = std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = stderr.read(&mut buf) {
                    let mut tail = tail.lock().unwrap();
                    tail.extend(&buf[..n]);
                    let excess = tail.len().saturating_sub(STDERR_TAIL);
                    tail.drain(..excess);
                }
            });
            self.spawned += 1;
            self.loaded = None;
            self.process = Some(Process { child, stdin, frames, stderr_tail, stderr_reader });
        }
        Ok(self.process.as_mut().expect("just spawned"))
    }

    /// The live worker process, if there is one: cases run by the same
    /// process share its engines' history.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.child.id())
    }

    fn kill(&mut self) -> Option<std::process::ExitStatus> {
        let mut process = self.process.take()?;
        let _ = process.child.kill();
        process.child.wait().ok()
    }

    /// Runs `config` on `case` in the worker with the given time limit.
    pub fn run_with_timeout(&mut self, case: &TestCase, config: &str, timeout: Duration) -> Result<RunResult> {
        self.spawn()?;
        // A fresh worker (after a crash) has nothing loaded.
        let needs_load = self.loaded.as_ref().is_none_or(|(wasm, plan)| *wasm != case.wasm || *plan != case.plan);
        let process = self.process.as_mut().expect("just spawned");
        let send = |process: &mut Process| -> std::io::Result<()> {
            if needs_load {
                let load = serde_json::to_vec(&Request::Load { plan: case.plan.clone() })?;
                write_frame(&mut process.stdin, &load)?;
                write_frame(&mut process.stdin, &case.wasm)?;
            }
            write_frame(&mut process.stdin, &serde_json::to_vec(&Request::Run { config: config.to_string() })?)
        };
        // A write error means the worker is already dead; the read below
        // then sees end-of-stream and reports how it died.
        let _ = send(process);
        if needs_load {
            self.loaded = Some((case.wasm.clone(), case.plan.clone()));
        }
        let process = self.process.as_mut().expect("spawned above");
        let response = match process.frames.recv_timeout(timeout) {
            Ok(Frame::Data(bytes)) => Some(serde_json::from_slice::<Response>(&bytes).context("worker: bad response")?),
            Ok(Frame::Eof) | Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => {
                self.kill();
                return Ok(RunResult::TimedOut);
            }
        };
        match response {
            Some(Response::Outcome(o)) => Ok(RunResult::Outcome(o)),
            Some(Response::Unsupported) => Ok(RunResult::Unsupported),
            Some(Response::UnknownConfig) => bail!("worker does not know configuration {config:?}"),
            Some(Response::Panic { message, location, frames, wasm }) => {
                let status = self.wait_for_exit();
                Ok(RunResult::Crashed(CrashInfo {
                    config: config.into(),
                    message,
                    location,
                    signal: status.and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s)),
                    exit_code: status.and_then(|s| s.code()),
                    frames,
                    wasm,
                }))
            }
            None => {
                let tail = self.process.as_ref().expect("spawned above").stderr_tail.clone();
                let status = self.wait_for_exit();
                let stderr = String::from_utf8_lossy(tail.lock().unwrap().make_contiguous()).into_owned();
                Ok(RunResult::Crashed(self.died(config, case, &stderr, status)))
            }
        }
    }

    /// What a worker that died without a panic report left to tell: its
    /// last lines on stderr and, after a fatal signal, the frames of the
    /// fault (`fatal`).
    fn died(&self, config: &str, case: &TestCase, stderr: &str, status: Option<std::process::ExitStatus>) -> CrashInfo {
        let (report, rest) = fatal::parse(stderr);
        let message = last_lines(&rest, 5);
        let mut crash = CrashInfo {
            config: config.into(),
            message: if message.is_empty() { "worker died without a message".into() } else { message.clone() },
            location: None,
            signal: status.and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s)),
            exit_code: status.and_then(|s| s.code()),
            frames: vec![],
            wasm: None,
        };
        match report {
            // Killed from outside: where it was says nothing about a bug.
            Some(r) if r.sent_by.is_some() => {
                crash.message = format!("killed by signal {} sent by process {}", r.signal, r.sent_by.unwrap_or(0));
            }
            Some(r) => {
                if message.is_empty() {
                    crash.message = format!("fatal signal {}", fatal::signal_name(r.signal));
                }
                // For a person triaging it (a null page, a guard region);
                // not part of the signature, which keys on the first line.
                if let Some(addr) = r.addr {
                    crash.message.push_str(&format!("\nfault address {addr:#x}"));
                }
                let symbols = self.symbols.get_or_init(|| fatal::Symbols::read(&self.command.program));
                let at_fault = r.from_fault();
                crash.frames = fatal::frame_names(&at_fault, symbols, &case.wasm);
                crash.wasm = crash.frames.first().and_then(|f| f.strip_prefix("wasm ")).map(str::to_owned);
            }
            None => {}
        }
        crash
    }

    /// Waits briefly for a dying worker to exit, reaps it, and lets its
    /// stderr reader drain what it wrote last.
    fn wait_for_exit(&mut self) -> Option<std::process::ExitStatus> {
        let mut process = self.process.take()?;
        let mut status = None;
        for _ in 0..200 {
            if let Ok(Some(s)) = process.child.try_wait() {
                status = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if status.is_none() {
            let _ = process.child.kill();
            status = process.child.wait().ok();
        }
        drop(process.stdin);
        let _ = process.stderr_reader.join();
        status
    }
}

impl Executor for Worker {
    fn run(&mut self, case: &TestCase, config: &str) -> Result<RunResult> {
        self.run_with_timeout(case, config, self.timeout)
    }

    fn restart(&mut self) {
        self.kill();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `n` non-empty lines of `text`, joined by newlines.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello").unwrap();
        write_frame(&mut buf, b"").unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r).unwrap().unwrap(), b"hello");
        assert_eq!(read_frame(&mut r).unwrap().unwrap(), b"");
        assert!(read_frame(&mut r).unwrap().is_none());
    }

    #[test]
    fn backtrace_lines_are_parsed() {
        let text = "   0: std::backtrace::Backtrace::create\n             at /rustc/x/library/std/src/backtrace.rs:331:13\n   1: wasmtime::foo::bar\n";
        assert_eq!(backtrace_frames(text), vec!["std::backtrace::Backtrace::create", "wasmtime::foo::bar"]);
    }
}
