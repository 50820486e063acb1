//! The Cranelift stack-map verifier: random CLIF programs whose "GC
//! references" are tagged integers declared as needing stack maps, compiled
//! with cranelift-jit (the Cranelift of the Wasmtime under test), run, and
//! checked at every safepoint against a model of which references are live.
//!
//! At a safepoint the generated code calls a trampoline with its own stack
//! and frame pointers; the trampoline adds its return address and calls the
//! host, which walks the frame-pointer chain through every generated frame,
//! finds each call site's user stack map, and checks:
//!
//! - every reference the model says is live across the call is in a slot the
//!   map lists (missing: **unregistered root**);
//! - every listed slot holds a tagged reference (garbage: **stale slot**);
//!
//! then, as a moving collector would, rewrites every listed slot to the
//! reference's new location (`relocate`). The model relocates its live
//! references too; the values the program observes and returns must match
//! the model's (a value not reloaded from its slot: **missed relocation**).
//!
//! References never point anywhere: a wrong stack map cannot corrupt memory,
//! so programs run in this process.

mod campaign;
mod check;
mod compile;
mod generate;
mod model;
mod program;
mod record;
mod runtime;
mod shrink;

pub use campaign::*;
pub use check::*;
pub use compile::*;
pub use generate::*;
pub use model::*;
pub use program::*;
pub use record::*;
pub use shrink::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::seeded_input;
    use crate::oracle::Problem;
    use arbitrary::Unstructured;

    fn program(seed: u64, i: u64) -> Program {
        generate(&mut Unstructured::new(&seeded_input(seed, i))).unwrap()
    }

    #[test]
    fn a_hand_written_program_passes_and_the_model_tracks_it() {
        // r2 = new; safepoint (r2 and r0 live across); observe r2; return r0.
        let p = Program {
            funcs: vec![Func { body: vec![Stmt::New(2, 7), Stmt::Safepoint, Stmt::Observe(2)], tail: Tail::Return }],
        };
        let e = expected(&p, true);
        assert_eq!(e.safepoints, vec![vec![[TAG | 1, TAG | 7].into()]]);
        assert_eq!(e.observed, vec![relocate(TAG | 7)]);
        assert_eq!(e.result, relocate(TAG | 1));
        for config in CONFIGS {
            assert_eq!(check(&p, *config, Plant::default()).unwrap(), vec![], "{config}");
        }
    }

    /// Random programs pass on every configuration, and in the same sweep
    /// a planted missing stack-map declaration is caught as an unregistered
    /// root: the sweep's checks are live.
    #[test]
    fn random_programs_pass_on_every_configuration_and_a_planted_bug_does_not() {
        let plant = Plant { undeclared_var: Some(2) };
        let mut caught = 0;
        for i in 0..500 {
            let p = program(1, i);
            for config in CONFIGS {
                let problems = check(&p, *config, Plant::default()).unwrap();
                assert!(problems.is_empty(), "program {i} on {config}: {problems:#?}\n{p:#?}");
            }
            let problems = check(&p, CONFIGS[1], plant).unwrap();
            caught += problems.iter().any(|x| x.kind == "unregistered-root") as usize;
        }
        eprintln!("planted missing declaration caught in {caught} of 500 programs");
        // Seeded: 137 of 500 (a program without a live reference across a
        // safepoint has nothing to lose).
        assert!(caught >= 100, "caught {caught} of 500");
    }

    #[test]
    fn findings_are_stored_once_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let p = program(1, 0);
        let problems = vec![Problem { kind: "unregistered-root".into(), detail: "planted".into() }];
        let (path, new) = store(dir.path(), &p, CONFIGS[4], &problems, Some(1), Some(0)).unwrap();
        assert!(new);
        assert_eq!(path.file_name().unwrap(), "stackmap-unregistered-root-speed-single-pass");
        assert!(std::fs::read_to_string(path.join("program.clif")).unwrap().contains("function u0:"));
        let back: Program = serde_json::from_str(&std::fs::read_to_string(path.join("program.json")).unwrap()).unwrap();
        assert_eq!(back, p);
        let (_, new) = store(dir.path(), &p, CONFIGS[4], &problems, Some(1), Some(5)).unwrap();
        assert!(!new);
        let record = crate::report::record::read_record(&path).unwrap();
        let crate::report::record::Body::Clif(body) = &record.body else { panic!("not a CLIF record") };
        assert_eq!((record.hits, body.index), (2, Some(0)));
    }

    #[test]
    fn the_shrinker_reduces_a_planted_finding_to_a_handful_of_statements() {
        let plant = Plant { undeclared_var: Some(2) };
        let (i, p) = (0..200)
            .map(|i| (i, program(3, i)))
            .find(|(_, p)| {
                size(p) > 15 && check(p, CONFIGS[1], plant).unwrap().iter().any(|x| x.kind == "unregistered-root")
            })
            .expect("a planted finding");
        let small = shrink(&p, CONFIGS[1], plant, "unregistered-root");
        assert!(check(&small, CONFIGS[1], plant).unwrap().iter().any(|x| x.kind == "unregistered-root"));
        // A handful: functions count one each, as do statements.
        assert!(
            size(&small) <= 8 && size(&small) * 3 < size(&p),
            "program {i}: {} -> {} statements: {small:#?}",
            size(&p),
            size(&small)
        );
    }
}
