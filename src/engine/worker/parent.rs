//! The campaign's side of a worker: starts the process, loads cases, asks
//! for one configuration at a time, and reads what a dead worker left.
//!
//! A crash costs a worker. From a worker's first death on, a spare process
//! is started ahead with the engines of the configurations run so far
//! built (`Request::Warm`), and takes over at the next start: on a line
//! with many crashes the job does not wait for a cold start each time. A
//! spare has run nothing, so it is as fresh as a cold start for
//! confirmation.

use super::executor::{Executor, RunResult};
use super::protocol::{Request, Response, read_frame, write_frame};
use crate::case::{Plan, TestCase};
use crate::engine::fatal;
use crate::outcome::CrashInfo;
use anyhow::{Context, Result, bail};
use std::collections::{BTreeSet, VecDeque};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Keeps this much of a worker's stderr, for crashes that print their
/// reason and for the samples of a hang (four of up to 160 frames).
const STDERR_TAIL: usize = 64 * 1024;
/// How many samples of a hung worker's stack are taken, 20 ms apart: a
/// loop that calls out is caught in its own frame by one of them, nearly
/// always.
const HANG_SAMPLES: usize = 4;

impl Process {
    fn start(command: &WorkerCommand) -> Result<Process> {
        let mut cmd = Command::new(&command.program);
        cmd.args(&command.args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // Own process group: a Ctrl-C at the terminal stops the campaign,
        // which then stops its workers; it must not look like a crash.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        // Every Wasm trap is an error; none needs a Rust backtrace.
        let (name, value) = crate::engine::NO_ERROR_BACKTRACES;
        cmd.env(name, value);
        let mut child = cmd.spawn().with_context(|| format!("starting worker {}", command.program.display()))?;
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
        Ok(Process { child, stdin, frames, stderr_tail, stderr_reader })
    }

    /// Not exited (an exited one is reaped).
    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn kill(mut self) -> Option<std::process::ExitStatus> {
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

/// The parent side: one worker process, restarted after each death.
pub struct Worker {
    command: WorkerCommand,
    timeout: Duration,
    process: Option<Process>,
    /// Started ahead to replace `process` (see the file's header).
    spare: Option<Process>,
    /// The configurations this worker has run: what a spare builds ahead.
    configs: BTreeSet<String>,
    /// The case the live process has loaded (by identity of its bytes).
    loaded: Option<(Vec<u8>, Plan)>,
    /// Workers started, including the first, and how many of them were
    /// spares started ahead.
    pub spawned: u64,
    pub warm_starts: u64,
    /// The worker executable's symbols, read at its first fatal signal.
    symbols: std::cell::OnceCell<fatal::Symbols>,
}

impl Worker {
    pub fn new(command: WorkerCommand, timeout: Duration) -> Worker {
        Worker {
            command,
            timeout,
            process: None,
            spare: None,
            configs: BTreeSet::new(),
            loaded: None,
            spawned: 0,
            warm_starts: 0,
            symbols: std::cell::OnceCell::new(),
        }
    }

    /// A live process: the one there is, else a spare, else a new one. A
    /// restart (any start but the first) leaves a new spare behind.
    fn spawn(&mut self) -> Result<&mut Process> {
        if self.process.is_none() {
            let spare = self.spare.take().and_then(|mut p| p.alive().then_some(p));
            let process = match spare {
                Some(p) => {
                    self.warm_starts += 1;
                    p
                }
                None => Process::start(&self.command)?,
            };
            let restart = self.spawned > 0;
            self.spawned += 1;
            self.loaded = None;
            self.process = Some(process);
            if restart {
                self.start_spare();
            }
        }
        Ok(self.process.as_mut().expect("just spawned"))
    }

    /// Starts a spare, if there is none, and has it build the engines of
    /// the configurations run so far. A spare that cannot start is not an
    /// error here: the next cold start reports it.
    fn start_spare(&mut self) {
        if self.spare.is_some() {
            return;
        }
        let Ok(mut spare) = Process::start(&self.command) else { return };
        let warm = Request::Warm { configs: self.configs.iter().cloned().collect() };
        let _ = write_frame(&mut spare.stdin, &serde_json::to_vec(&warm).expect("request serializes"));
        self.spare = Some(spare);
    }

    /// Starts after the first: the restarts so far.
    pub fn restarts(&self) -> u64 {
        self.spawned.saturating_sub(1)
    }

    /// The live worker process, if there is one: cases run by the same
    /// process share its engines' history.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.child.id())
    }

    fn kill(&mut self) -> Option<std::process::ExitStatus> {
        self.process.take()?.kill()
    }

    /// Runs `config` on `case` in the worker with the given time limit.
    pub fn run_with_timeout(&mut self, case: &TestCase, config: &str, timeout: Duration) -> Result<RunResult> {
        if !self.configs.contains(config) {
            self.configs.insert(config.to_string());
        }
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
                let frames = self.sample_hang(case);
                self.kill();
                self.start_spare();
                return Ok(RunResult::TimedOut { frames });
            }
        };
        match response {
            Some(Response::Outcome(o)) => Ok(RunResult::Outcome(o)),
            Some(Response::Unsupported) => Ok(RunResult::Unsupported),
            Some(Response::UnknownConfig) => bail!("worker does not know configuration {config:?}"),
            Some(Response::Panic { message, location, frames, wasm }) => {
                let status = self.wait_for_exit();
                let frames = self.symbols().names(&frames);
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
                let stderr = stderr_text(&tail);
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
                let symbols = self.symbols();
                let at_fault = r.from_fault();
                crash.frames = fatal::frame_names(&at_fault, symbols, &case.modules().unwrap_or_default());
                crash.wasm = crash.frames.first().and_then(|f| f.strip_prefix("wasm ")).map(str::to_owned);
            }
            None => {}
        }
        crash
    }

    /// Where the live worker hangs: it is asked for [`HANG_SAMPLES`]
    /// samples of its case thread's stack (`fatal::SAMPLE`), and the frames
    /// they share are named. Empty when it does not answer (a hang holding
    /// the unwinder's lock) or is gone.
    fn sample_hang(&self, case: &TestCase) -> Vec<String> {
        let Some(process) = self.process.as_ref() else { return vec![] };
        let ends = || stderr_text(&process.stderr_tail).matches(fatal::SAMPLE_END).count();
        let before = ends();
        for n in 1..=HANG_SAMPLES {
            // SAFETY: a signal to our own child, which is still ours to reap.
            unsafe { libc::kill(process.child.id() as i32, fatal::SAMPLE) };
            let deadline = Instant::now() + Duration::from_millis(500);
            while ends() < before + n && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let modules = case.modules().unwrap_or_default();
        let named: Vec<Vec<String>> = fatal::samples(&stderr_text(&process.stderr_tail))
            .iter()
            .map(|sample| fatal::frame_names(sample, self.symbols(), &modules))
            .collect();
        fatal::held_in_common(&named)
    }

    /// The worker executable's symbols, read at the first crash.
    fn symbols(&self) -> &fatal::Symbols {
        self.symbols.get_or_init(|| fatal::Symbols::read(&self.command.program))
    }

    /// Waits briefly for a dying worker to exit, reaps it, lets its stderr
    /// reader drain what it wrote last, and starts a spare to replace it.
    fn wait_for_exit(&mut self) -> Option<std::process::ExitStatus> {
        let mut process = self.process.take()?;
        let mut status = None;
        // A dying worker is gone within a millisecond or a few (tearing
        // down its reservations): poll finely first, then back off, for
        // about two seconds. A fixed 10 ms pause cost every crash 10 ms.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut pause = Duration::from_micros(50);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = process.child.try_wait() {
                status = Some(s);
                break;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
        if status.is_none() {
            let _ = process.child.kill();
            status = process.child.wait().ok();
        }
        drop(process.stdin);
        let _ = process.stderr_reader.join();
        self.start_spare();
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
        if let Some(spare) = self.spare.take() {
            spare.kill();
        }
    }
}

/// What a worker wrote to stderr last (`STDERR_TAIL` at most).
fn stderr_text(tail: &Mutex<VecDeque<u8>>) -> String {
    String::from_utf8_lossy(tail.lock().unwrap().make_contiguous()).into_owned()
}

/// The last `n` non-empty lines of `text`, joined by newlines.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
