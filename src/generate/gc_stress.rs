//! The rooting generator (`gc_stress`): whole programs aimed only at rooting,
//! with a Rust model that computes the expected result, so a case is its own
//! oracle (in the spirit of Wasmtime's `gc_ops`, as a single program).
//!
//! The program keeps linked nodes in locals, a global, a table, an array,
//! a struct of `anyref`s mixing i31 and nodes, passes them through calls,
//! recursion with tail calls, exceptions (`throw` / `try_table`) and the
//! host (`gc_any`), allocates with references on the operand stack, and
//! forces a collection between every two steps. At the end it folds
//! everything reachable into an `i64` checksum; the model folds its own heap
//! the same way, and the plan expects that value.

use crate::case::{Call, ModuleInfo, Plan, Profile};
use crate::line::{self, Cap};
use crate::outcome::Value;
use arbitrary::{Result, Unstructured};
use std::fmt::Write;

/// Node registers (locals) of the generated `run` function.
const REGS: usize = 4;
/// Table and array length.
const SLOTS: usize = 4;
/// How far `$sum` follows `next` links (lists may be cyclic).
const SUM_DEPTH: usize = 16;
const DATA: [u8; 8] = [3, 1, 4, 1, 5, 9, 2, 6];

/// A value of the model: what a register, slot or field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum V {
    Null,
    Node(usize),
    I31(i32),
}

#[derive(Clone, Debug)]
struct Node {
    val: i32,
    next: V,
}

#[derive(Default)]
struct Model {
    nodes: Vec<Node>,
    regs: [Option<usize>; REGS],
    global: Option<usize>,
    table: [Option<V>; SLOTS],
    array: Option<[Option<usize>; SLOTS]>,
    pair: Option<(V, V)>,
    bytes: bool,
}

impl Model {
    fn new_node(&mut self, val: i32, next: Option<usize>) -> usize {
        self.nodes.push(Node { val, next: next.map_or(V::Null, V::Node) });
        self.nodes.len() - 1
    }

    /// `$sum`: follows `next` up to `SUM_DEPTH` nodes: acc = acc * 7 + val.
    fn sum(&self, mut n: Option<usize>) -> i64 {
        let mut acc: i64 = 0;
        for _ in 0..SUM_DEPTH {
            let Some(i) = n else { break };
            acc = acc.wrapping_mul(7).wrapping_add(self.nodes[i].val as i64);
            n = match self.nodes[i].next {
                V::Node(j) => Some(j),
                _ => None,
            };
        }
        acc
    }

    /// `$sum_any`: null 0, i31 its value, node its sum.
    fn sum_any(&self, v: V) -> i64 {
        match v {
            V::Null => 0,
            V::I31(k) => k as i64,
            V::Node(i) => self.sum(Some(i)),
        }
    }

    /// The checksum `run` returns.
    fn checksum(&self) -> i64 {
        let mut acc: i64 = 0;
        let mut fold = |x: i64| acc = acc.wrapping_mul(31).wrapping_add(x);
        for r in self.regs {
            fold(self.sum(r));
        }
        fold(self.sum(self.global));
        for slot in self.table {
            fold(self.sum_any(slot.unwrap_or(V::Null)));
        }
        match &self.array {
            Some(a) => a.iter().for_each(|e| fold(self.sum(*e))),
            None => fold(-1),
        }
        match self.pair {
            Some((a, b)) => {
                fold(self.sum_any(a));
                fold(self.sum_any(b));
            }
            None => fold(-2),
        }
        fold(if self.bytes { DATA[..4].iter().map(|b| *b as i64).sum() } else { -3 });
        acc
    }
}

fn reg(u: &mut Unstructured) -> Result<usize> {
    u.int_in_range(0..=REGS - 1)
}

fn slot(u: &mut Unstructured) -> Result<usize> {
    u.int_in_range(0..=SLOTS - 1)
}

/// A node register's value as a model value.
fn node(r: Option<usize>) -> V {
    r.map_or(V::Null, V::Node)
}

/// Generates a program and its expected checksum.
pub fn program(u: &mut Unstructured) -> Result<(String, i64)> {
    let mut m = Model::default();
    let mut body = String::new();
    let steps = u.int_in_range(8..=60)?;
    for _ in 0..steps {
        step(u, &mut m, &mut body)?;
        // A collection between every two steps.
        body.push_str("    (call $gc)\n");
    }
    Ok((module_text(&body), m.checksum()))
}

fn step(u: &mut Unstructured, m: &mut Model, w: &mut String) -> Result<()> {
    let val = u.int_in_range(-100..=100)?;
    match u.int_in_range(0..=17)? {
        0 => {
            let d = reg(u)?;
            m.regs[d] = Some(m.new_node(val, None));
            let _ = writeln!(w, "    (local.set $r{d} (struct.new $node (i32.const {val}) (ref.null $node)))");
        }
        1 => {
            // Allocation with the source reference on the operand stack.
            let (d, s) = (reg(u)?, reg(u)?);
            m.regs[d] = Some(m.new_node(val, m.regs[s]));
            let _ = writeln!(w, "    (local.set $r{d} (struct.new $node (i32.const {val}) (local.get $r{s})))");
        }
        2 => {
            let (a, b) = (reg(u)?, reg(u)?);
            if let Some(i) = m.regs[a] {
                m.nodes[i].next = node(m.regs[b]);
                let _ = writeln!(w, "    (struct.set $node 1 (local.get $r{a}) (local.get $r{b}))");
            }
        }
        3 => {
            let a = reg(u)?;
            if let Some(i) = m.regs[a] {
                m.nodes[i].val = val;
                let _ = writeln!(w, "    (struct.set $node 0 (local.get $r{a}) (i32.const {val}))");
            }
        }
        4 => {
            let (d, s) = (reg(u)?, reg(u)?);
            if let Some(i) = m.regs[s] {
                m.regs[d] = match m.nodes[i].next {
                    V::Node(j) => Some(j),
                    _ => None,
                };
                let _ = writeln!(w, "    (local.set $r{d} (struct.get $node 1 (local.get $r{s})))");
            }
        }
        5 => {
            let (d, s) = (reg(u)?, reg(u)?);
            m.regs[d] = m.regs[s];
            let _ = writeln!(w, "    (local.set $r{d} (local.get $r{s}))");
        }
        6 => {
            let s = reg(u)?;
            m.global = m.regs[s];
            let _ = writeln!(w, "    (global.set $g (local.get $r{s}))");
        }
        7 => {
            let d = reg(u)?;
            m.regs[d] = m.global;
            let _ = writeln!(w, "    (local.set $r{d} (global.get $g))");
        }
        8 => {
            let (i, s) = (slot(u)?, reg(u)?);
            if u.ratio(1, 3)? {
                m.table[i] = Some(V::I31(val));
                let _ = writeln!(w, "    (table.set $t (i32.const {i}) (ref.i31 (i32.const {val})))");
            } else {
                m.table[i] = Some(node(m.regs[s]));
                let _ = writeln!(w, "    (table.set $t (i32.const {i}) (local.get $r{s}))");
            }
        }
        9 => {
            let (d, i) = (reg(u)?, slot(u)?);
            // Only slots that hold a node or null can be cast to a node.
            if let V::Null | V::Node(_) = m.table[i].unwrap_or(V::Null) {
                m.regs[d] = match m.table[i].unwrap_or(V::Null) {
                    V::Node(j) => Some(j),
                    _ => None,
                };
                let _ = writeln!(w, "    (local.set $r{d} (ref.cast (ref null $node) (table.get $t (i32.const {i}))))");
            }
        }
        10 => {
            // An array made from all registers: four references live on
            // the operand stack across the allocation.
            m.array = Some(m.regs);
            let _ = writeln!(
                w,
                "    (local.set $a (array.new_fixed $vec 4 (local.get $r0) (local.get $r1) (local.get $r2) (local.get $r3)))"
            );
        }
        11 => {
            let (i, s) = (slot(u)?, reg(u)?);
            if let Some(a) = &mut m.array {
                a[i] = m.regs[s];
                let _ = writeln!(w, "    (array.set $vec (local.get $a) (i32.const {i}) (local.get $r{s}))");
            }
        }
        12 => {
            let (d, i) = (reg(u)?, slot(u)?);
            if let Some(a) = &m.array {
                m.regs[d] = a[i];
                let _ = writeln!(w, "    (local.set $r{d} (array.get $vec (local.get $a) (i32.const {i})))");
            }
        }
        13 => {
            // A pair of anyrefs: a node and an i31.
            let s = reg(u)?;
            let nodes_first = u.arbitrary::<bool>()?;
            let (a, b, ta, tb) = if nodes_first {
                (node(m.regs[s]), V::I31(val), format!("(local.get $r{s})"), format!("(ref.i31 (i32.const {val}))"))
            } else {
                (V::I31(val), node(m.regs[s]), format!("(ref.i31 (i32.const {val}))"), format!("(local.get $r{s})"))
            };
            m.pair = Some((a, b));
            let _ = writeln!(w, "    (local.set $p (struct.new $pair {ta} {tb}))");
        }
        14 => {
            let d = reg(u)?;
            if let Some((a, b)) = m.pair {
                let (field, v) = if matches!(a, V::Node(_) | V::Null) { (0, a) } else { (1, b) };
                if let V::Null | V::Node(_) = v {
                    m.regs[d] = match v {
                        V::Node(j) => Some(j),
                        _ => None,
                    };
                    let _ = writeln!(
                        w,
                        "    (local.set $r{d} (ref.cast (ref null $node) (struct.get $pair {field} (local.get $p))))"
                    );
                }
            }
        }
        15 => {
            // Recursion through tail calls: `depth` new nodes pushed on the
            // front of the list, a collection in every frame.
            let (d, s) = (reg(u)?, reg(u)?);
            let depth = u.int_in_range(0..=5)?;
            let mut head = m.regs[s];
            for k in (1..=depth).rev() {
                head = Some(m.new_node(k * 7, head));
            }
            m.regs[d] = head;
            let _ = writeln!(w, "    (local.set $r{d} (call $chain (local.get $r{s}) (i32.const {depth})))");
        }
        16 if line::has(Cap::Exceptions) => {
            // Through an exception: thrown after a collection, caught here.
            let (d, s) = (reg(u)?, reg(u)?);
            m.regs[d] = m.regs[s];
            let _ = writeln!(
                w,
                "    (local.set $r{d} (block $h{d} (result (ref null $node)) (try_table (catch $e $h{d}) (call $thrower (local.get $r{s}))) (ref.null $node)))"
            );
        }
        _ => {
            // Through the host, which collects while holding it.
            let (d, s) = (reg(u)?, reg(u)?);
            if u.ratio(1, 4)? {
                m.bytes = true;
                let _ = writeln!(w, "    (local.set $b (array.new_data $bytes $data (i32.const 0) (i32.const 4)))");
            } else if u.arbitrary::<bool>()? {
                m.regs[d] = m.regs[s];
                let _ =
                    writeln!(w, "    (local.set $r{d} (ref.cast (ref null $node) (call $gc_any (local.get $r{s}))))");
            } else {
                let (a, b, c) = (reg(u)?, reg(u)?, u.arbitrary::<bool>()?);
                m.regs[d] = if c { m.regs[a] } else { m.regs[b] };
                let _ = writeln!(
                    w,
                    "    (local.set $r{d} (select (result (ref null $node)) (local.get $r{a}) (local.get $r{b}) (i32.const {})))",
                    c as i32
                );
            }
        }
    }
    Ok(())
}

fn module_text(body: &str) -> String {
    let mut sum = String::new();
    for i in 0..REGS {
        let _ = writeln!(
            sum,
            "    (local.set $acc (i64.add (i64.mul (local.get $acc) (i64.const 31)) (call $sum (local.get $r{i}))))"
        );
    }
    let _ = writeln!(
        sum,
        "    (local.set $acc (i64.add (i64.mul (local.get $acc) (i64.const 31)) (call $sum (global.get $g))))"
    );
    for i in 0..SLOTS {
        let _ = writeln!(
            sum,
            "    (local.set $acc (i64.add (i64.mul (local.get $acc) (i64.const 31)) (call $sum_any (table.get $t (i32.const {i})))))"
        );
    }
    let mut array = String::new();
    for i in 0..SLOTS {
        let _ = writeln!(
            array,
            "        (local.set $acc (i64.add (i64.mul (local.get $acc) (i64.const 31)) (call $sum (array.get $vec (local.get $a) (i32.const {i})))))"
        );
    }
    let text = format!(
        r#"(module
  (type $node (struct (field (mut i32)) (field (mut (ref null $node)))))
  (type $vec (array (mut (ref null $node))))
  (type $bytes (array (mut i8)))
  (type $pair (struct (field (mut anyref)) (field (mut anyref))))
  (import "host" "gc" (func $gc))
  (import "host" "gc_any" (func $gc_any (param anyref) (result anyref)))
  (tag $e (param (ref null $node)))
  (global $g (mut (ref null $node)) (ref.null $node))
  (table $t {SLOTS} anyref)
  (data $data "{data}")

  ;; Pushes `depth` nodes (values depth*7 ... 7) onto the front of `n`.
  (func $chain (param $n (ref null $node)) (param $depth i32) (result (ref null $node))
    (local $m (ref null $node))
    (if (i32.eqz (local.get $depth)) (then (return (local.get $n))))
    (local.set $m (struct.new $node (i32.mul (local.get $depth) (i32.const 7)) (local.get $n)))
    (call $gc)
    (return_call $chain (local.get $m) (i32.sub (local.get $depth) (i32.const 1))))

  (func $thrower (param $n (ref null $node))
    (call $gc)
    (throw $e (local.get $n)))

  ;; acc = acc * 7 + val over at most {SUM_DEPTH} nodes.
  (func $sum (param $n (ref null $node)) (result i64)
    (local $acc i64) (local $k i32)
    (block $done
      (loop $next
        (br_if $done (ref.is_null (local.get $n)))
        (br_if $done (i32.ge_u (local.get $k) (i32.const {SUM_DEPTH})))
        (local.set $acc (i64.add (i64.mul (local.get $acc) (i64.const 7))
                                 (i64.extend_i32_s (struct.get $node 0 (local.get $n)))))
        (local.set $n (struct.get $node 1 (local.get $n)))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $next)))
    (local.get $acc))

  (func $sum_any (param $x anyref) (result i64)
    (if (ref.is_null (local.get $x)) (then (return (i64.const 0))))
    (if (ref.test (ref i31) (local.get $x))
      (then (return (i64.extend_i32_s (i31.get_s (ref.cast (ref i31) (local.get $x)))))))
    (call $sum (ref.cast (ref null $node) (local.get $x))))

  (func (export "run") (result i64)
    (local $r0 (ref null $node)) (local $r1 (ref null $node))
    (local $r2 (ref null $node)) (local $r3 (ref null $node))
    (local $a (ref null $vec)) (local $p (ref null $pair)) (local $b (ref null $bytes))
    (local $acc i64)
{body}
{sum}    (if (ref.is_null (local.get $a))
      (then (local.set $acc (i64.add (i64.mul (local.get $acc) (i64.const 31)) (i64.const -1))))
      (else
{array}      ))
    (if (ref.is_null (local.get $p))
      (then (local.set $acc (i64.add (i64.mul (local.get $acc) (i64.const 31)) (i64.const -2))))
      (else
        (local.set $acc (i64.add (i64.mul (local.get $acc) (i64.const 31)) (call $sum_any (struct.get $pair 0 (local.get $p)))))
        (local.set $acc (i64.add (i64.mul (local.get $acc) (i64.const 31)) (call $sum_any (struct.get $pair 1 (local.get $p)))))))
    (local.set $acc (i64.add (i64.mul (local.get $acc) (i64.const 31))
      (if (result i64) (ref.is_null (local.get $b))
        (then (i64.const -3))
        (else (i64.add (i64.add (i64.extend_i32_u (array.get_u $bytes (local.get $b) (i32.const 0)))
                                (i64.extend_i32_u (array.get_u $bytes (local.get $b) (i32.const 1))))
                       (i64.add (i64.extend_i32_u (array.get_u $bytes (local.get $b) (i32.const 2)))
                                (i64.extend_i32_u (array.get_u $bytes (local.get $b) (i32.const 3)))))))))
    (local.get $acc))
)"#,
        data = DATA.iter().map(|b| format!("\\{b:02x}")).collect::<String>(),
    );
    if line::has(Cap::Exceptions) {
        return text;
    }
    // A Wasmtime line without exceptions: no tag, no thrower (`step` does
    // not use them then).
    text.replace("  (tag $e (param (ref null $node)))\n", "")
        .replace("  (func $thrower (param $n (ref null $node))\n    (call $gc)\n    (throw $e (local.get $n)))\n", "")
}

/// A `gc_stress` case: the program, and a plan that calls `run` once and
/// expects the model's checksum. Engine settings are drawn as for other
/// cases, from `plan_u`.
pub fn case(u: &mut Unstructured, plan_u: &mut Unstructured) -> anyhow::Result<(Vec<u8>, Plan)> {
    let (text, expected) = program(u)?;
    let wasm = wat::parse_str(&text)?;
    let mut plan = super::plan::draw(Profile::Gc, &ModuleInfo::parse(&wasm)?, plan_u)?;
    plan.calls = vec![Call {
        export: "run".into(),
        args: vec![],
        collect_before: false,
        expect: Some(vec![Value::I64(expected)]),
        module: None,
    }];
    plan.configs.retain(|c| c.is_wasmtime());
    Ok((wasm, plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_valid_and_deterministic() {
        for i in 0..200 {
            let data = crate::case::seeded_input(5, i);
            let (a, ea) = program(&mut Unstructured::new(&data)).unwrap();
            let (b, eb) = program(&mut Unstructured::new(&data)).unwrap();
            assert_eq!((&a, ea), (&b, eb));
            let wasm = wat::parse_str(&a).unwrap_or_else(|e| panic!("{e}\n{a}"));
            Profile::Gc.validate(&wasm).unwrap_or_else(|e| panic!("{e}\n{a}"));
        }
    }

    #[test]
    fn the_model_sums_like_the_program() {
        let mut m = Model::default();
        let a = m.new_node(2, None);
        let b = m.new_node(3, Some(a));
        m.regs[0] = Some(b);
        // 3 * 7 + 2 = 23
        assert_eq!(m.sum(Some(b)), 23);
        // A cycle is followed SUM_DEPTH steps, not forever.
        m.nodes[a].next = V::Node(b);
        let expected = (0..SUM_DEPTH).fold(0i64, |acc, k| acc * 7 + if k % 2 == 0 { 3 } else { 2 });
        assert_eq!(m.sum(Some(b)), expected);
    }
}
