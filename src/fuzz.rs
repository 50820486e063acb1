//! libFuzzer entry points. The targets under `fuzz/fuzz_targets/` are thin
//! shims over these functions, so the same code runs under cargo-fuzz, in the
//! stable replay binaries and in `cargo test`.

use crate::case::TestCase;
use crate::differential::check_case;
use crate::engine::real_engine;
use crate::generate::Generator;
use crate::worker::InProcess;
use std::cell::RefCell;

thread_local! {
    /// Engines live across inputs: creating them per input would dominate.
    static ENGINES: RefCell<InProcess> = RefCell::new(InProcess::new(real_engine));
}

/// The `differential` target: generate a case from `data` (the default
/// `rooted` generator), run it on its configurations in this process, and
/// panic on any finding (that is how libFuzzer learns of it). Engine panics
/// propagate as they are.
pub fn differential(data: &[u8]) {
    run(Generator::Rooted, data)
}

/// The `gc_stress` target: the rooting generator, judged by its model as
/// well as by the other configurations.
pub fn gc_stress(data: &[u8]) {
    run(Generator::GcStress, data)
}

fn run(generator: Generator, data: &[u8]) {
    let Ok(case) = TestCase::generate(generator, data) else {
        return;
    };
    let configs: Vec<String> = case.plan.configs.iter().map(|c| c.name().to_string()).collect();
    let report = ENGINES.with(|e| check_case(&case, &configs, &mut *e.borrow_mut())).expect("real engines exist");
    if let Some(f) = report.findings.first() {
        panic!("gcfuzz finding {}: {}", f.signature, f.summary);
    }
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
