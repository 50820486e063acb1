//! The programs: functions of statements over reference variables, with
//! calls, loops, branches and safepoints; and the compile configurations.

use serde::{Deserialize, Serialize};

/// Reference variables per function.
pub const REFS: u8 = 6;
pub(super) const TAG: u64 = 0xa5 << 56;
/// Relocation: the next "address" of an object.
pub fn relocate(v: u64) -> u64 {
    v.wrapping_add(1 << 32)
}
pub(super) fn is_tagged(v: u64) -> bool {
    v >> 56 == 0xa5
}

/// A statement of a generated function. Reference variables are `r0..r5`;
/// `c` is an integer counter that conditions and loops read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stmt {
    /// `r[d] = tag(id)`.
    New(u8, u32),
    /// `r[d] = r[s]`.
    Copy(u8, u8),
    /// `r[d] = select(c & 1, r[a], r[b])`.
    Select(u8, u8, u8),
    /// A collection: call the trampoline with SP and FP.
    Safepoint,
    /// A collection with `n` integer values live across it (register
    /// pressure), folded into `c` afterwards.
    Pressure(u8),
    /// `observe(r[v])`: a host call that records the value.
    Observe(u8),
    /// `r[d] = f[callee](r[a], r[b])`.
    Call(u8, u8, u8, u8),
    /// `if c & 1 { .. } else { .. }`.
    If(Vec<Stmt>, Vec<Stmt>),
    /// `n` iterations; each adds one to `c`.
    Loop(u8, Vec<Stmt>),
}

/// How a function ends: return `r0`, or tail-call `f[callee](r[a], r[b])`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tail {
    Return,
    Call(u8, u8, u8),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Func {
    pub body: Vec<Stmt>,
    pub tail: Tail,
}

/// Functions `f0..`: each takes `(r0, r1)` and returns a reference; `fi`
/// calls only `fj` with `j > i`, so programs terminate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    pub funcs: Vec<Func>,
}

/// Cranelift settings a program is compiled under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CompileConfig {
    pub opt_level: &'static str,
    pub regalloc: &'static str,
}

pub const CONFIGS: &[CompileConfig] = &[
    CompileConfig { opt_level: "none", regalloc: "backtracking" },
    CompileConfig { opt_level: "speed", regalloc: "backtracking" },
    CompileConfig { opt_level: "speed_and_size", regalloc: "backtracking" },
    CompileConfig { opt_level: "none", regalloc: "single_pass" },
    CompileConfig { opt_level: "speed", regalloc: "single_pass" },
    CompileConfig { opt_level: "speed_and_size", regalloc: "single_pass" },
];

impl std::fmt::Display for CompileConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.opt_level, self.regalloc)
    }
}

// ---------------------------------------------------------------- generation

/// Counts statements, for reporting shrink results.
pub fn size(p: &Program) -> usize {
    fn count(stmts: &[Stmt]) -> usize {
        stmts
            .iter()
            .map(|s| match s {
                Stmt::If(t, e) => 1 + count(t) + count(e),
                Stmt::Loop(_, b) => 1 + count(b),
                _ => 1,
            })
            .sum()
    }
    p.funcs.iter().map(|f| 1 + count(&f.body)).sum()
}
