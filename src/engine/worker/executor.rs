//! The seam between the oracle and where engines run: a worker process
//! (`parent`) or this process (`InProcess`).

use crate::case::TestCase;
use crate::outcome::{CrashInfo, Outcome};
use anyhow::Result;

/// What running one configuration in a worker came to.
#[derive(Debug)]
pub enum RunResult {
    Outcome(Outcome),
    /// The configuration cannot run this case (feature check).
    Unsupported,
    Crashed(CrashInfo),
    /// Past the time limit; `frames` say where it hung (`fatal::SAMPLE`),
    /// named as a crash's are, or are empty.
    TimedOut {
        frames: Vec<String>,
    },
}

/// Runs configurations on a case; in a worker process or in this process.
pub trait Executor {
    fn run(&mut self, case: &TestCase, config: &str) -> Result<RunResult>;
    /// Drops every engine (and the worker process, if any): the next run
    /// starts fresh, with no history of earlier cases.
    fn restart(&mut self);
}
