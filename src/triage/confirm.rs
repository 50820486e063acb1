//! Confirmation: before a finding is stored, its case is run again in a
//! fresh worker process with fresh engines, from the bytes that would be
//! stored (plan section and all), exactly as `gcfuzz repro` runs the file.
//! What gives the same signature again is a finding; what does not is
//! *unreproducible* (a worker killed from outside, a bug that needs the
//! history of a long-lived engine) and never becomes a signature of its own.
//! (A campaign counts a fresh run that gives a known bug's signature as that
//! known bug: the first worker's report of it was degraded, e.g. a backtrace
//! it could not symbolize.)

use crate::case::TestCase;
use crate::engine::worker::{Executor, Worker, WorkerCommand};
use crate::oracle::{CaseReport, check_case};
use anyhow::Result;
use std::time::Duration;

/// What `case` gives when it is re-read from its reproducer bytes and run
/// on `configs` with `exec` restarted first (no engine or process left from
/// earlier cases).
pub fn fresh_report(case: &TestCase, configs: &[String], exec: &mut dyn Executor) -> Result<CaseReport> {
    let replayed = TestCase::from_module_bytes(&case.to_module_bytes())?;
    exec.restart();
    check_case(&replayed, configs, exec)
}

/// The signatures of [`fresh_report`]: a finding is confirmed when its own
/// signature is among them.
pub fn rerun(case: &TestCase, configs: &[String], exec: &mut dyn Executor) -> Result<Vec<String>> {
    Ok(fresh_report(case, configs, exec)?.findings.into_iter().map(|f| f.signature).collect())
}

/// Whether a new `worker` process gives a finding with `signature` again.
pub fn reproduces(
    case: &TestCase,
    configs: &[String],
    signature: &str,
    worker: &WorkerCommand,
    timeout: Duration,
) -> Result<bool> {
    let mut fresh = Worker::new(worker.clone(), timeout);
    Ok(rerun(case, configs, &mut fresh)?.iter().any(|s| s == signature))
}
