//! Confirmation: before a finding is stored, its case is run again in a
//! fresh worker process with fresh engines, from the bytes that would be
//! stored (plan section and all), exactly as `gcfuzz repro` runs the file.
//! What gives the same signature again is a finding; what does not is
//! *unreproducible* (a worker killed from outside, a bug that needs the
//! history of a long-lived engine) and never becomes a signature of its own.

use crate::case::TestCase;
use crate::engine::worker::{Worker, WorkerCommand};
use crate::oracle::check_case;
use anyhow::Result;
use std::time::Duration;

/// Whether `case`, re-read from its reproducer bytes and run on `configs`
/// in a new `worker` process, gives a finding with `signature` again.
pub fn reproduces(
    case: &TestCase,
    configs: &[String],
    signature: &str,
    worker: &WorkerCommand,
    timeout: Duration,
) -> Result<bool> {
    let replayed = TestCase::from_module_bytes(&case.to_module_bytes())?;
    let mut fresh = Worker::new(worker.clone(), timeout);
    let report = check_case(&replayed, configs, &mut fresh)?;
    Ok(report.findings.iter().any(|f| f.signature == signature))
}
