//! Crash isolation: engines run in worker processes, so a panic, abort,
//! signal or hang kills a worker, not the campaign.
//!
//! The parent loads a case into the worker, then asks for one configuration
//! at a time. It therefore always knows which case and which configuration a
//! dead worker was running. A worker that dies is replaced on next use.
//!
//! Protocol: length-prefixed frames on a private pipe (the worker's original
//! stdout; its fd 1 is pointed at stderr so stray prints cannot corrupt the
//! protocol). Requests are JSON; a `Load` is followed by a raw module frame
//! (`protocol`). This file is the worker's side and `InProcess`; `parent`
//! is the campaign's, with a spare process ready after a worker's first
//! death; `executor` is the seam both serve.

mod executor;
mod parent;
mod protocol;

use crate::case::TestCase;
use crate::engine::{self, Engine, fatal};
use crate::outcome::CrashInfo;
use anyhow::{Context, Result, anyhow, bail};
pub use executor::{Executor, RunResult};
pub use parent::{Worker, WorkerCommand};
use protocol::{Request, Response, read_frame, write_frame};
use std::collections::HashMap;
use std::io::BufReader;
use std::sync::Mutex;

/// Creates engines by configuration name inside a worker.
pub type Factory = fn(&str) -> Option<Box<dyn Engine>>;

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
                    frames: fatal::Symbols::own().names(&frames),
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
    /// Its call sites as offsets in this executable (`fatal::exe_offsets`).
    frames: Vec<Option<u64>>,
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
    let sites = fatal::call_sites();
    let frames = fatal::exe_offsets(&sites);
    use crate::engine::wasmtime::locate;
    // A failure compiled code detected: the operator at the fault; any other
    // panic under Wasm frames: the operator that called out (on Pulley, the
    // running host function's call site).
    let wasm = match crate::outcome::detected_in_compiled_code(&message) {
        true => locate::faulting_operator(),
        false => locate::calling_operator(&sites).or_else(locate::host_call_operator),
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
    // A crashing worker writes no core file: where core dumps are on, each
    // crash would otherwise dump a process with gigabytes reserved.
    let no_core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: setrlimit reads the struct we pass.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
    // Before any engine: Wasmtime's handlers, installed later, go first.
    fatal::install();
    fatal::answer_samples();
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
            Request::Warm { configs } => {
                for config in configs {
                    if engines.contains_key(&config) {
                        continue;
                    }
                    if let Some(engine) = factory(&config) {
                        engines.insert(config, engine);
                    }
                }
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
