//! libFuzzer entry points. The targets under `fuzz/fuzz_targets/` are thin
//! shims over these functions, so the same code runs under cargo-fuzz, in the
//! stable replay binaries and in `cargo test`. [`seed_corpus`] writes their
//! seed corpora.

use crate::case::{Profile, allocates, seeded_input};
use crate::engine::real_engine;
use crate::engine::worker::InProcess;
use crate::generate::{self, Generator};
use crate::oracle::check_case;
use crate::report::record::known_signatures;
use anyhow::{Context, Result};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

thread_local! {
    /// Engines live across inputs: creating them per input would dominate.
    static ENGINES: RefCell<InProcess> = RefCell::new(InProcess::new(real_engine));
}

/// The `differential` target: generate a case from `data` (the default
/// `rooted` generator), run it on its configurations in this process, and
/// panic on any finding that is not a known bug (that is how libFuzzer
/// learns of it). Engine panics propagate as they are.
pub fn differential(data: &[u8]) {
    run(Generator::Rooted, data)
}

/// The `gc_stress` target: the rooting generator, judged by its model as
/// well as by the other configurations.
pub fn gc_stress(data: &[u8]) {
    run(Generator::GcStress, data)
}

fn run(generator: Generator, data: &[u8]) {
    let Ok(case) = generate::case(generator, data) else {
        return;
    };
    let configs: Vec<String> = case.plan.configs.iter().map(|c| c.name().to_string()).collect();
    let report = ENGINES.with(|e| check_case(&case, &configs, &mut *e.borrow_mut())).expect("real engines exist");
    for f in &report.findings {
        if known().contains(&f.signature) {
            // Counted, not a crash: a known bug must not stop the run.
            let hits = KNOWN_HITS.fetch_add(1, Ordering::Relaxed) + 1;
            if hits.is_power_of_two() {
                eprintln!("gcfuzz: known bug {} ({hits} hits so far)", f.signature);
            }
        } else {
            panic!("gcfuzz finding {}: {}", f.signature, f.summary);
        }
    }
}

/// Findings of known bugs the targets went past in this process.
pub static KNOWN_HITS: AtomicU64 = AtomicU64::new(0);

/// The known bugs of this build: `crashes/` entries whose `expected_on`
/// names it, from the directory `GCFUZZ_KNOWN` names (this checkout's
/// `crashes/` by default; none where neither exists, as on OSS-Fuzz).
pub fn known() -> &'static BTreeSet<String> {
    static KNOWN: OnceLock<BTreeSet<String>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let dir = std::env::var_os("GCFUZZ_KNOWN")
            .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("crashes"), Into::into);
        known_signatures(&dir)
    })
}

/// The `stackmaps` target: a random CLIF program checked at every safepoint
/// on every Cranelift configuration; any problem is the crash.
pub fn stackmaps(data: &[u8]) {
    let Ok(prog) = crate::stackmaps::generate(&mut arbitrary::Unstructured::new(data)) else {
        return;
    };
    for config in crate::stackmaps::CONFIGS {
        let problems = crate::stackmaps::check(&prog, *config, Default::default()).expect("programs compile");
        if let Some(p) = problems.first() {
            panic!("gcfuzz stack-map finding on {config}: {}: {}", p.kind, p.detail);
        }
    }
}

/// Writes `count` seeded inputs of `generator` to `dir` as a seed corpus: a
/// quarter inside wasmi's subset, the rest allocating GC modules (every
/// input, for `gc-stress`). Returns how many were written.
pub fn seed_corpus(dir: &Path, generator: Generator, count: u64, seed: u64) -> Result<u64> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (mut written, mut reftypes) = (0, 0);
    let mut index = 0;
    while written < count {
        let input = seeded_input(seed, index);
        index += 1;
        let Ok(case) = generate::case(generator, &input) else { continue };
        let wanted = if generator == Generator::GcStress {
            true
        } else if reftypes * 4 < count {
            case.plan.profile == Profile::RefTypes
        } else {
            allocates(&case.wasm)
        };
        if !wanted {
            continue;
        }
        reftypes += (case.plan.profile == Profile::RefTypes) as u64;
        let name = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&input));
        std::fs::write(dir.join(name), &input)?;
        written += 1;
    }
    Ok(written)
}
