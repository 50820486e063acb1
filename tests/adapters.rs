//! The shared adapter test: every engine configuration the build has renders
//! the same outcome (values, traps, heap shapes, exported state, in the one
//! vocabulary of `outcome::vocab`) for the same hand-written modules. An
//! adapter that words a type, numbers an object or bounds a walk its own
//! way fails here before it can cause a false mismatch in a campaign. The
//! last test checks that the code an adapter keeps across cases runs them
//! as fresh code would.

use gcfuzz::case::{Arg, ConfigId, TestCase};
use gcfuzz::engine::wasmtime::{Compiles, WasmtimeEngine};
use gcfuzz::engine::{execute, real_engine};
use gcfuzz::line::{self, Cap};
use gcfuzz::outcome::{Outcome, Status, Value};

/// GC heaps: aliasing, packed and mutable fields, i31, host externrefs seen
/// through `any.convert_extern`, a long array (walk bound), exceptions,
/// funcrefs in a table, and an exported GC global.
const GC_MODULE: &str = r#"(module
  (type $s (struct (field (mut i32)) (field i8) (field (mut (ref null $s)))))
  (type $a (array (mut anyref)))
  (type $f (func (param i32) (result i32)))
  (import "host" "extern_new" (func $new (param i32) (result externref)))
  (import "host" "gc" (func $gc))
  (tag $t (param i32 anyref))
  (table (export "t") 3 funcref)
  (elem (i32.const 1) func $id)
  (global $g (export "g") (mut (ref null $s)) (ref.null $s))
  (func $id (type $f) (local.get 0))
  (func (export "heap") (result anyref anyref)
    (local $x (ref $s))
    (local.set $x (struct.new $s (i32.const 7) (i32.const -1) (ref.null $s)))
    (struct.set $s 2 (local.get $x) (local.get $x))
    (global.set $g (local.get $x))
    (call $gc)
    (local.get $x)
    (array.new_fixed $a 4 (local.get $x) (ref.i31 (i32.const -3))
      (any.convert_extern (call $new (i32.const 9)))
      (array.new_default $a (i32.const 40))))
  (func (export "ext") (result externref)
    (extern.convert_any (struct.new $s (i32.const 1) (i32.const 2) (ref.null $s))))
  (func (export "trap") (result i32)
    (struct.get $s 0 (ref.null $s)))
  (func (export "throws")
    (throw $t (i32.const 5) (ref.i31 (i32.const 6)))))"#;

/// Inside wasmi's subset: funcref and externref tables, globals, memory.
const REFTYPES_MODULE: &str = r#"(module
  (import "host" "extern_new" (func $new (param i32) (result externref)))
  (import "host" "extern_id" (func $id (param externref) (result i32)))
  (memory (export "m") 1)
  (table $ft (export "ft") 2 funcref)
  (table $et (export "et") 2 externref)
  (global (export "g") (mut externref) (ref.null extern))
  (elem (i32.const 0) func $f)
  (func $f (param i64) (result f32) (f32.const 1.5))
  (func (export "run") (param i32) (result i32 externref funcref)
    (table.set $et (i32.const 1) (call $new (local.get 0)))
    (i32.store (i32.const 8) (local.get 0))
    (call $id (table.get $et (i32.const 1)))
    (table.get $et (i32.const 1))
    (table.get $ft (i32.const 0)))
  (func (export "oob") (result i32) (i32.load (i32.const 65536))))"#;

/// The outcome without what may differ: the configuration's name and time,
/// and what only some engines record (fuel is held to its own rule below).
fn comparable(o: &Outcome) -> String {
    let mut o = o.clone();
    o.config.clear();
    o.micros = 0;
    o.gc_heap_bytes = None;
    o.producers = Default::default();
    for c in &mut o.calls {
        c.fuel = None;
    }
    serde_json::to_string_pretty(&o).unwrap()
}

fn run_everywhere(wat: &str) -> Vec<Outcome> {
    let case = TestCase::from_module_bytes(wat.as_bytes()).unwrap();
    let mut outcomes = Vec::new();
    for id in ConfigId::ALL.iter().filter(|c| c.on_line()) {
        let mut engine = real_engine(id.name()).unwrap();
        if let Some(outcome) = execute(engine.as_mut(), &case) {
            outcomes.push(outcome);
        }
    }
    outcomes
}

fn assert_all_render_alike(outcomes: &[Outcome]) {
    let reference = comparable(&outcomes[0]);
    for o in &outcomes[1..] {
        assert_eq!(comparable(o), reference, "{} renders differently from {}", o.config, outcomes[0].config);
    }
    // Every configuration that counts fuel counts it alike (what trap
    // signatures rely on to tell which run got further).
    let fuel = |o: &Outcome| o.calls.iter().map(|c| c.fuel).collect::<Vec<_>>();
    let counting: Vec<&Outcome> = outcomes.iter().filter(|o| o.calls.iter().any(|c| c.fuel.is_some())).collect();
    assert!(counting.len() >= 2, "Wasmtime configurations count fuel");
    for o in &counting[1..] {
        assert_eq!(fuel(o), fuel(counting[0]), "{} counts fuel unlike {}", o.config, counting[0].config);
    }
}

#[test]
fn every_gc_engine_renders_gc_heaps_alike() {
    let outcomes = run_everywhere(GC_MODULE);
    let engines: Vec<&str> = outcomes.iter().map(|o| o.config.as_str()).collect();
    // Every Wasmtime configuration of the line and the interpreter ran it.
    let expected = ConfigId::ALL.iter().filter(|c| c.on_line() && **c != ConfigId::Wasmi).count();
    assert_eq!(engines.len(), expected, "{engines:?}");
    assert!(engines.contains(&"interp") && !engines.contains(&"wasmi"), "{engines:?}");
    assert_all_render_alike(&outcomes);
    let calls: Vec<String> = outcomes[0].calls.iter().map(|c| c.status.to_string()).collect();
    // The walk records 32 of the long array's 40 elements.
    let walked = format!("[40]{{{}}}", vec!["null"; 32].join(" "));
    assert!(calls[0].contains(&walked), "array walk bound: {}", calls[0]);
    assert!(calls[0].starts_with("ok(#0=struct(mut i32 i8 mut ref null $struct){i32:7 i32:255 #0} "), "{}", calls[0]);
    assert!(calls[0].contains("i31:-3 extern:9 #2=array(mut ref null any)[40]"), "{}", calls[0]);
    assert_eq!(calls[1], "ok(extern(#0=struct(mut i32 i8 mut ref null $struct){i32:1 i32:2 null}))");
    assert!(calls[2].contains("NullReference"), "{}", calls[2]);
    if gcfuzz::line::has(gcfuzz::line::Cap::Exceptions) {
        assert_eq!(calls[3], "uncaught #0=exn(i32 ref null any)->(){i32:5 i31:6}");
    }
    let state = outcomes[0].state.as_ref().unwrap();
    assert_eq!(state.tables[0].1.elems[1].to_string(), "func(i32)->(i32)");
    assert!(state.globals[0].1.to_string().starts_with("#0=struct("), "{:?}", state.globals);
}

#[test]
fn every_engine_renders_reference_types_alike() {
    let outcomes = run_everywhere(REFTYPES_MODULE);
    let engines: Vec<&str> = outcomes.iter().map(|o| o.config.as_str()).collect();
    assert_eq!(engines.len(), ConfigId::ALL.iter().filter(|c| c.on_line()).count(), "{engines:?}");
    assert_all_render_alike(&outcomes);
    let calls: Vec<String> = outcomes[0].calls.iter().map(|c| c.status.to_string()).collect();
    assert_eq!(calls, ["ok(i32:0 extern:0 func(i64)->(f32))", "trap MemoryOutOfBounds"]);
}

const REUSED_MODULE: &str = r#"(module
  (type $s (struct (field (mut i32)) (field (mut (ref null $s)))))
  (global (export "g") (mut (ref null $s)) (ref.null $s))
  (func (export "f") (param i32) (result i32)
    (local $x (ref $s))
    (local.set $x (struct.new $s (local.get 0) (ref.null $s)))
    (struct.set $s 1 (local.get $x) (struct.new $s (i32.const 5) (local.get $x)))
    (struct.get $s 0 (struct.get $s 1 (local.get $x)))))"#;

fn reused_plan(arg: i32, zeal: Option<u32>, heap: Option<u64>) -> TestCase {
    let mut case = TestCase::from_module_bytes(REUSED_MODULE.as_bytes()).unwrap();
    case.plan.calls.truncate(1);
    case.plan.calls[0].args = vec![Arg::I32(arg)];
    case.plan.zeal = zeal;
    case.plan.gc_heap_initial = heap;
    case
}

/// Plans of one module compile it once per set of compilation settings,
/// and each runs as it does on a configuration that never saw the others.
#[test]
fn plans_of_one_module_reuse_its_code_and_run_as_on_a_fresh_engine() {
    let mut kept = WasmtimeEngine::new(ConfigId::Drc);
    let plans = [
        reused_plan(1, Some(1), None),
        reused_plan(2, Some(3), None),
        reused_plan(3, None, None),
        reused_plan(4, Some(1), None),
        reused_plan(5, Some(1), Some(64 << 10)),
    ];
    for case in &plans {
        let mut again = execute(&mut kept, case).unwrap();
        let mut fresh = execute(&mut WasmtimeEngine::new(ConfigId::Drc), case).unwrap();
        (again.micros, fresh.micros) = (0, 0);
        assert_eq!(again, fresh);
        assert_eq!(again.calls[0].status, Status::Returned(vec![Value::I32(5)]));
    }
    let expected = match line::has(Cap::Zeal) {
        // The zeal counter is a runtime setting; the heap size is not.
        true => Compiles { compiled: 2, moved: 2, kept: 1 },
        // Lines without zeal take neither setting: one engine.
        false => Compiles { compiled: 1, moved: 0, kept: 4 },
    };
    assert_eq!(kept.compiled.counts, expected);
}
