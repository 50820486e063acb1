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

use anyhow::{Context, Result};
use arbitrary::Unstructured;
use cranelift_codegen::ir::{self, AbiParam, InstBuilder, UserFuncName, condcodes::IntCC, types::I64};
use cranelift_codegen::isa::CallConv;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_module::{FuncId, Linkage, Module};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeSet;

/// Reference variables per function.
pub const REFS: u8 = 6;
const TAG: u64 = 0xa5 << 56;
/// Relocation: the next "address" of an object.
pub fn relocate(v: u64) -> u64 {
    v.wrapping_add(1 << 32)
}
fn is_tagged(v: u64) -> bool {
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

struct Gen<'a, 'b> {
    u: &'a mut Unstructured<'b>,
    next_id: u32,
    budget: usize,
}

impl Gen<'_, '_> {
    fn var(&mut self) -> arbitrary::Result<u8> {
        self.u.int_in_range(0..=REFS - 1)
    }

    fn block(&mut self, func: usize, funcs: usize, depth: u32) -> arbitrary::Result<Vec<Stmt>> {
        let mut out = Vec::new();
        let len = self.u.int_in_range(1..=8)?;
        for _ in 0..len {
            if self.budget == 0 {
                break;
            }
            self.budget -= 1;
            let can_call = func + 1 < funcs;
            out.push(match self.u.int_in_range(0..=12)? {
                0 | 1 => {
                    self.next_id += 1;
                    Stmt::New(self.var()?, self.next_id)
                }
                2 => Stmt::Copy(self.var()?, self.var()?),
                3 => Stmt::Select(self.var()?, self.var()?, self.var()?),
                4 | 5 => Stmt::Safepoint,
                6 => Stmt::Pressure(self.u.int_in_range(4..=16)?),
                7 => Stmt::Observe(self.var()?),
                8 if can_call => {
                    let callee = self.u.int_in_range(func as u8 + 1..=funcs as u8 - 1)?;
                    Stmt::Call(self.var()?, callee, self.var()?, self.var()?)
                }
                9 if depth < 3 => Stmt::If(self.block(func, funcs, depth + 1)?, self.block(func, funcs, depth + 1)?),
                10 if depth < 3 => Stmt::Loop(self.u.int_in_range(1..=3)?, self.block(func, funcs, depth + 1)?),
                _ => Stmt::Observe(self.var()?),
            });
        }
        Ok(out)
    }
}

/// A random program from `u`.
pub fn generate(u: &mut Unstructured) -> arbitrary::Result<Program> {
    let n = u.int_in_range(1..=3)?;
    let mut g = Gen { u, next_id: 100, budget: 60 };
    let mut funcs = Vec::new();
    for i in 0..n {
        let body = g.block(i, n, 0)?;
        let tail = if i + 1 < n && g.u.ratio(1, 3)? {
            let callee = g.u.int_in_range(i as u8 + 1..=n as u8 - 1)?;
            Tail::Call(callee, g.var()?, g.var()?)
        } else {
            Tail::Return
        };
        funcs.push(Func { body, tail });
    }
    Ok(Program { funcs })
}

// ---------------------------------------------------------------- liveness

type Live = BTreeSet<u8>;

fn live_in(stmts: &[Stmt], out: &Live) -> Live {
    stmts.iter().rev().fold(out.clone(), |live, s| live_in_stmt(s, &live))
}

fn live_in_stmt(s: &Stmt, out: &Live) -> Live {
    let mut l = out.clone();
    match s {
        Stmt::New(d, _) => {
            l.remove(d);
        }
        // A copy is no instruction: `r[a]`'s value is live through it only
        // if `r[d]` is.
        Stmt::Copy(d, a) => {
            if l.remove(d) {
                l.insert(*a);
            }
        }
        Stmt::Select(d, a, b) => {
            l.remove(d);
            l.insert(*a);
            l.insert(*b);
        }
        Stmt::Safepoint | Stmt::Pressure(_) => {}
        Stmt::Observe(v) => {
            l.insert(*v);
        }
        Stmt::Call(d, _, a, b) => {
            l.remove(d);
            l.insert(*a);
            l.insert(*b);
        }
        Stmt::If(t, e) => {
            l = live_in(t, out);
            l.extend(live_in(e, out));
        }
        Stmt::Loop(_, body) => l = loop_header_live(body, out),
    }
    l
}

/// Live at a loop's header: what the exit needs plus what the body needs,
/// to a fixed point (the body runs again after itself).
fn loop_header_live(body: &[Stmt], out: &Live) -> Live {
    let mut header = out.clone();
    loop {
        let mut next = out.clone();
        next.extend(live_in(body, &header));
        if next == header {
            return header;
        }
        header = next;
    }
}

fn tail_live(t: &Tail) -> Live {
    match t {
        Tail::Return => [0].into(),
        Tail::Call(_, a, b) => [*a, *b].into(),
    }
}

// ---------------------------------------------------------------- the model

/// What a correct compiler's program does: the values it observes, what it
/// returns, and at each safepoint the references live in each frame
/// (innermost first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    pub safepoints: Vec<Vec<BTreeSet<u64>>>,
    pub observed: Vec<u64>,
    pub result: u64,
}

struct Frame {
    vars: [u64; REFS as usize],
    /// The function's counter `c` (each function has its own, from 0).
    counter: i64,
    /// Variables live across the call this frame is making.
    pending: Live,
}

struct Model<'a> {
    prog: &'a Program,
    moving: bool,
    frames: Vec<Frame>,
    out: Expected,
}

impl Model<'_> {
    fn safepoint(&mut self, live: &Live) {
        let top = self.frames.len() - 1;
        let mut event = Vec::new();
        for (k, frame) in self.frames.iter_mut().enumerate().rev() {
            let vars = if k == top { live } else { &frame.pending };
            event.push(vars.iter().map(|v| frame.vars[*v as usize]).collect());
            if self.moving {
                for v in vars {
                    frame.vars[*v as usize] = relocate(frame.vars[*v as usize]);
                }
            }
        }
        self.out.safepoints.push(event);
    }

    fn var(&self, v: u8) -> u64 {
        self.frames.last().expect("a frame").vars[v as usize]
    }

    fn counter(&mut self) -> &mut i64 {
        &mut self.frames.last_mut().expect("a frame").counter
    }

    fn set(&mut self, v: u8, x: u64) {
        self.frames.last_mut().expect("a frame").vars[v as usize] = x;
    }

    fn block(&mut self, stmts: &[Stmt], out: &Live) {
        for (i, s) in stmts.iter().enumerate() {
            let after = live_in(&stmts[i + 1..], out);
            self.stmt(s, &after);
        }
    }

    fn stmt(&mut self, s: &Stmt, after: &Live) {
        match s {
            Stmt::New(d, id) => self.set(*d, TAG | *id as u64),
            Stmt::Copy(d, a) => self.set(*d, self.var(*a)),
            Stmt::Select(d, a, b) => {
                let x = if *self.counter() & 1 != 0 { self.var(*a) } else { self.var(*b) };
                self.set(*d, x);
            }
            Stmt::Safepoint => self.safepoint(after),
            Stmt::Pressure(n) => {
                self.safepoint(after);
                // c += sum(c + i) for i in 0..n
                let c = *self.counter();
                *self.counter() = (0..*n as i64).fold(c, |acc, i| acc.wrapping_add(c.wrapping_add(i)));
            }
            Stmt::Observe(v) => self.out.observed.push(self.var(*v)),
            Stmt::Call(d, callee, a, b) => {
                let (x, y) = (self.var(*a), self.var(*b));
                let mut pending = after.clone();
                pending.remove(d);
                self.frames.last_mut().expect("a frame").pending = pending;
                let r = self.call(*callee, x, y);
                self.set(*d, r);
            }
            Stmt::If(t, e) => {
                let branch = if *self.counter() & 1 != 0 { t } else { e };
                self.block(branch, after);
            }
            Stmt::Loop(n, body) => {
                let header = loop_header_live(body, after);
                for _ in 0..*n {
                    self.block(body, &header);
                    *self.counter() = self.counter().wrapping_add(1);
                }
            }
        }
    }

    fn call(&mut self, f: u8, a: u64, b: u64) -> u64 {
        let mut vars = [TAG; REFS as usize];
        vars[0] = a;
        vars[1] = b;
        self.frames.push(Frame { vars, counter: 0, pending: Live::new() });
        let func = &self.prog.funcs[f as usize];
        self.block(&func.body, &tail_live(&func.tail));
        let r = match func.tail {
            Tail::Return => self.var(0),
            Tail::Call(g, x, y) => {
                let (x, y) = (self.var(x), self.var(y));
                self.frames.pop();
                return self.call(g, x, y);
            }
        };
        self.frames.pop();
        r
    }
}

/// Runs the model. Counters start at 0; `f0` gets `tag(1)`, `tag(2)`;
/// unset reference variables hold `tag(0)`.
pub fn expected(prog: &Program, moving: bool) -> Expected {
    let mut m = Model { prog, moving, frames: Vec::new(), out: Expected::default() };
    m.out.result = m.call(0, TAG | 1, TAG | 2);
    m.out
}

// ---------------------------------------------------------------- compiling

/// A compiled function's code range and stack maps (by return address).
#[derive(Clone)]
struct CodeInfo {
    start: usize,
    size: usize,
    program: bool,
    /// (return-address offset, SP offsets of the listed slots).
    maps: Vec<(u32, Vec<u32>)>,
}

/// What the host sees while a program runs.
#[derive(Default)]
struct Runtime {
    code: Vec<CodeInfo>,
    expected: Vec<Vec<BTreeSet<u64>>>,
    moving: bool,
    next: usize,
    observed: Vec<u64>,
    problems: Vec<Problem>,
}

thread_local! {
    static RUNTIME: RefCell<Runtime> = RefCell::new(Runtime::default());
}

/// A verifier finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// `unregistered-root`, `stale-slot`, `missed-relocation`, `wrong-result`,
    /// `safepoint-count`.
    pub kind: String,
    pub detail: String,
}

extern "C" fn host_safepoint(sp: u64, fp: u64, ra: u64) {
    RUNTIME.with(|rt| rt.borrow_mut().safepoint(sp, fp, ra));
}

extern "C" fn host_observe(v: u64) {
    RUNTIME.with(|rt| rt.borrow_mut().observed.push(v));
}

impl Runtime {
    /// Walks the frames of generated program functions, innermost first:
    /// (function index, SP at its call site, return-address offset).
    fn frames(&self, sp: u64, fp: u64, ra: u64) -> Vec<(usize, u64, u32)> {
        let mut out = Vec::new();
        let (mut sp, mut fp, mut ra) = (sp, fp, ra);
        while let Some((i, c)) =
            self.code.iter().enumerate().find(|(_, c)| (c.start..c.start + c.size).contains(&(ra as usize)))
        {
            if !c.program {
                break;
            }
            out.push((i, sp, (ra as usize - c.start) as u32));
            // SAFETY: `fp` is a frame pointer of a generated function, whose
            // prologue saved the caller's FP at [fp] and the return address
            // at [fp + 8] (preserve_frame_pointers is on).
            unsafe {
                ra = *((fp + 8) as *const u64);
                sp = fp + 16;
                fp = *(fp as *const u64);
            }
        }
        out
    }

    fn safepoint(&mut self, sp: u64, fp: u64, ra: u64) {
        let frames = self.frames(sp, fp, ra);
        let Some(expected) = self.expected.get(self.next).cloned() else {
            self.problems.push(Problem {
                kind: "safepoint-count".into(),
                detail: format!("unexpected safepoint #{}", self.next),
            });
            self.next += 1;
            return;
        };
        self.next += 1;
        if frames.len() != expected.len() {
            self.problems.push(Problem {
                kind: "safepoint-count".into(),
                detail: format!(
                    "safepoint #{}: {} frames walked, model has {}",
                    self.next - 1,
                    frames.len(),
                    expected.len()
                ),
            });
            return;
        }
        for ((func, sp, offset), live) in frames.into_iter().zip(expected) {
            let slots: Vec<u32> = self.code[func]
                .maps
                .iter()
                .find(|(o, _)| *o == offset)
                .map(|(_, slots)| slots.clone())
                .unwrap_or_default();
            let mut found = BTreeSet::new();
            for slot in &slots {
                // SAFETY: the slot is inside the live frame whose SP is `sp`,
                // as Cranelift's stack map for this call site says.
                let value = unsafe { *((sp + *slot as u64) as *const u64) };
                if !is_tagged(value) {
                    self.problems.push(Problem {
                        kind: "stale-slot".into(),
                        detail: format!("f{func} at +{offset:#x}: slot sp+{slot} holds {value:#x}, not a reference"),
                    });
                    continue;
                }
                found.insert(value);
            }
            for v in live.difference(&found) {
                self.problems.push(Problem {
                    kind: "unregistered-root".into(),
                    detail: format!("f{func} at +{offset:#x}: live reference {v:#x} is in no stack-map slot"),
                });
            }
            if self.moving {
                for slot in &slots {
                    let p = (sp + *slot as u64) as *mut u64;
                    // SAFETY: as above; moving a reference as a collector would.
                    unsafe {
                        if is_tagged(*p) {
                            *p = relocate(*p);
                        }
                    }
                }
            }
        }
    }
}

fn isa(config: CompileConfig) -> Result<cranelift_codegen::isa::OwnedTargetIsa> {
    let mut flags = settings::builder();
    flags.set("opt_level", config.opt_level)?;
    flags.set("regalloc_algorithm", config.regalloc)?;
    flags.set("preserve_frame_pointers", "true")?;
    flags.set("enable_verifier", "true")?;
    let builder = cranelift_native::builder().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(builder.finish(settings::Flags::new(flags))?)
}

/// Options of [`compile`] for tests of the verifier itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct Plant {
    /// Leave `r[var]` out of the stack maps (skip its
    /// `declare_var_needs_stack_map`): a frontend bug the verifier must see.
    pub undeclared_var: Option<u8>,
}

/// A compiled program: its JIT module, entry point and CLIF text.
pub struct Compiled {
    module: cranelift_jit::JITModule,
    entry: FuncId,
    code: Vec<CodeInfo>,
    pub clif: String,
}

/// Compiles `prog` under `config`.
pub fn compile(prog: &Program, config: CompileConfig, plant: Plant) -> Result<Compiled> {
    let mut builder = cranelift_jit::JITBuilder::with_isa(isa(config)?, cranelift_module::default_libcall_names());
    builder.symbol("host_safepoint", host_safepoint as *const u8);
    builder.symbol("host_observe", host_observe as *const u8);
    let mut module = cranelift_jit::JITModule::new(builder);
    let ptr = module.target_config().pointer_type();
    let frontend = module.target_config();

    let sig = |module: &cranelift_jit::JITModule, cc: CallConv, params: usize, ret: bool| {
        let mut s = module.make_signature();
        s.call_conv = cc;
        s.params.extend((0..params).map(|_| AbiParam::new(I64)));
        if ret {
            s.returns.push(AbiParam::new(I64));
        }
        s
    };
    let host_sp =
        module.declare_function("host_safepoint", Linkage::Import, &sig(&module, CallConv::SystemV, 3, false))?;
    let host_obs =
        module.declare_function("host_observe", Linkage::Import, &sig(&module, CallConv::SystemV, 1, false))?;
    let tramp = module.declare_function("tramp", Linkage::Local, &sig(&module, CallConv::SystemV, 2, false))?;
    let fn_sig = sig(&module, CallConv::Tail, 2, true);
    let mut funcs: Vec<FuncId> = Vec::new();
    for i in 0..prog.funcs.len() {
        funcs.push(module.declare_function(&format!("f{i}"), Linkage::Local, &fn_sig)?);
    }
    let entry = module.declare_function("entry", Linkage::Local, &sig(&module, CallConv::SystemV, 2, true))?;

    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    // (function, is a program function, code size, stack maps)
    type Done = (FuncId, bool, u32, Vec<(u32, Vec<u32>)>);
    let mut code: Vec<Done> = Vec::new();
    let mut clif = String::new();
    let mut define = |module: &mut cranelift_jit::JITModule,
                      ctx: &mut cranelift_codegen::Context,
                      id: FuncId,
                      program: bool,
                      clif: &mut String|
     -> Result<()> {
        clif.push_str(&ctx.func.display().to_string());
        module.define_function(id, ctx).with_context(|| format!("compiling {}", ctx.func.name))?;
        let compiled = ctx.compiled_code().expect("just compiled");
        let maps = compiled
            .buffer
            .user_stack_maps()
            .iter()
            .map(|(offset, _, map)| (*offset, map.entries().map(|(_, o)| o).collect()))
            .collect();
        code.push((id, program, compiled.code_info().total_size, maps));
        module.clear_context(ctx);
        Ok(())
    };

    // The trampoline: adds its return address and calls the host.
    ctx.func.signature = sig(&module, CallConv::SystemV, 2, false);
    ctx.func.name = UserFuncName::user(0, tramp.as_u32());
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        let (sp, fp) = (b.block_params(block)[0], b.block_params(block)[1]);
        let ra = b.ins().get_return_address(ptr);
        let host = module.declare_func_in_func(host_sp, b.func);
        b.ins().call(host, &[sp, fp, ra]);
        b.ins().return_(&[]);
        b.seal_all_blocks();
        b.finalize(frontend);
    }
    define(&mut module, &mut ctx, tramp, false, &mut clif)?;

    for (i, f) in prog.funcs.iter().enumerate() {
        ctx.func.signature = fn_sig.clone();
        ctx.func.name = UserFuncName::user(0, funcs[i].as_u32());
        {
            let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
            let refs: Vec<Variable> = (0..REFS).map(|_| b.declare_var(I64)).collect();
            for (k, v) in refs.iter().enumerate() {
                if plant.undeclared_var != Some(k as u8) {
                    b.declare_var_needs_stack_map(*v);
                }
            }
            let counter = b.declare_var(I64);
            let entry_block = b.create_block();
            b.append_block_params_for_function_params(entry_block);
            b.switch_to_block(entry_block);
            let (a0, a1) = (b.block_params(entry_block)[0], b.block_params(entry_block)[1]);
            b.def_var(refs[0], a0);
            b.def_var(refs[1], a1);
            for r in &refs[2..] {
                let t = b.ins().iconst(I64, TAG as i64);
                b.def_var(*r, t);
            }
            let zero = b.ins().iconst(I64, 0);
            b.def_var(counter, zero);
            let mut e = Emit {
                b: &mut b,
                module: &mut module,
                refs: &refs,
                counter,
                tramp,
                observe: host_obs,
                funcs: &funcs,
                ptr,
            };
            e.block(&f.body);
            match f.tail {
                Tail::Return => {
                    let r = e.b.use_var(refs[0]);
                    e.b.ins().return_(&[r]);
                }
                Tail::Call(g, x, y) => {
                    let callee = e.module.declare_func_in_func(funcs[g as usize], e.b.func);
                    let (x, y) = (e.b.use_var(refs[x as usize]), e.b.use_var(refs[y as usize]));
                    e.b.ins().return_call(callee, &[x, y]);
                }
            }
            b.seal_all_blocks();
            b.finalize(frontend);
        }
        define(&mut module, &mut ctx, funcs[i], true, &mut clif)?;
    }

    // The entry point, callable from Rust.
    ctx.func.signature = sig(&module, CallConv::SystemV, 2, true);
    ctx.func.name = UserFuncName::user(0, entry.as_u32());
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        let args = b.block_params(block).to_vec();
        let f0 = module.declare_func_in_func(funcs[0], b.func);
        let call = b.ins().call(f0, &args);
        let r = b.inst_results(call)[0];
        b.ins().return_(&[r]);
        b.seal_all_blocks();
        b.finalize(frontend);
    }
    define(&mut module, &mut ctx, entry, false, &mut clif)?;
    module.finalize_definitions()?;
    let code = code
        .into_iter()
        .map(|(id, program, size, maps)| CodeInfo {
            start: module.get_finalized_function(id) as usize,
            size: size as usize,
            program,
            maps,
        })
        .collect();
    Ok(Compiled { module, entry, code, clif })
}

/// Lowers statements with a function builder.
struct Emit<'a, 'b> {
    b: &'a mut FunctionBuilder<'b>,
    module: &'a mut cranelift_jit::JITModule,
    refs: &'a [Variable],
    counter: Variable,
    tramp: FuncId,
    observe: FuncId,
    funcs: &'a [FuncId],
    ptr: ir::Type,
}

impl Emit<'_, '_> {
    fn r(&mut self, v: u8) -> ir::Value {
        self.b.use_var(self.refs[v as usize])
    }

    fn odd(&mut self) -> ir::Value {
        let c = self.b.use_var(self.counter);
        self.b.ins().band_imm_u(c, 1)
    }

    fn safepoint(&mut self) {
        let sp = self.b.ins().get_stack_pointer(self.ptr);
        let fp = self.b.ins().get_frame_pointer(self.ptr);
        let tramp = self.module.declare_func_in_func(self.tramp, self.b.func);
        self.b.ins().call(tramp, &[sp, fp]);
    }

    fn block(&mut self, stmts: &[Stmt]) {
        for s in stmts {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::New(d, id) => {
                let v = self.b.ins().iconst(I64, (TAG | *id as u64) as i64);
                self.b.def_var(self.refs[*d as usize], v);
            }
            Stmt::Copy(d, a) => {
                let v = self.r(*a);
                self.b.def_var(self.refs[*d as usize], v);
            }
            Stmt::Select(d, a, b) => {
                let cond = self.odd();
                let (x, y) = (self.r(*a), self.r(*b));
                let v = self.b.ins().select(cond, x, y);
                self.b.def_var(self.refs[*d as usize], v);
            }
            Stmt::Safepoint => self.safepoint(),
            Stmt::Pressure(n) => {
                let c = self.b.use_var(self.counter);
                let temps: Vec<ir::Value> = (0..*n as i64).map(|i| self.b.ins().iadd_imm_s(c, i)).collect();
                self.safepoint();
                let sum = temps.into_iter().fold(c, |acc, t| self.b.ins().iadd(acc, t));
                self.b.def_var(self.counter, sum);
            }
            Stmt::Observe(v) => {
                let x = self.r(*v);
                let f = self.module.declare_func_in_func(self.observe, self.b.func);
                self.b.ins().call(f, &[x]);
            }
            Stmt::Call(d, callee, a, b) => {
                let f = self.module.declare_func_in_func(self.funcs[*callee as usize], self.b.func);
                let (x, y) = (self.r(*a), self.r(*b));
                let call = self.b.ins().call(f, &[x, y]);
                let r = self.b.inst_results(call)[0];
                self.b.def_var(self.refs[*d as usize], r);
            }
            Stmt::If(t, e) => {
                let (then_b, else_b, merge) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
                let cond = self.odd();
                self.b.ins().brif(cond, then_b, &[], else_b, &[]);
                self.b.switch_to_block(then_b);
                self.block(t);
                self.b.ins().jump(merge, &[]);
                self.b.switch_to_block(else_b);
                self.block(e);
                self.b.ins().jump(merge, &[]);
                self.b.switch_to_block(merge);
            }
            Stmt::Loop(n, body) => {
                let (header, body_b, exit) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
                let remaining = self.b.declare_var(I64);
                let n = self.b.ins().iconst(I64, *n as i64);
                self.b.def_var(remaining, n);
                self.b.ins().jump(header, &[]);
                self.b.switch_to_block(header);
                let left = self.b.use_var(remaining);
                let more = self.b.ins().icmp_imm_s(IntCC::NotEqual, left, 0);
                self.b.ins().brif(more, body_b, &[], exit, &[]);
                self.b.switch_to_block(body_b);
                self.block(body);
                let left = self.b.use_var(remaining);
                let left = self.b.ins().iadd_imm_s(left, -1);
                self.b.def_var(remaining, left);
                let c = self.b.use_var(self.counter);
                let c = self.b.ins().iadd_imm_s(c, 1);
                self.b.def_var(self.counter, c);
                self.b.ins().jump(header, &[]);
                self.b.switch_to_block(exit);
            }
        }
    }
}

/// Compiles and runs `prog` under `config` in moving mode, returning what
/// the verifier found (empty: the stack maps are right).
pub fn check(prog: &Program, config: CompileConfig, plant: Plant) -> Result<Vec<Problem>> {
    let compiled = compile(prog, config, plant)?;
    let expected = expected(prog, true);
    RUNTIME.with(|rt| {
        *rt.borrow_mut() = Runtime {
            code: compiled.code.clone(),
            expected: expected.safepoints.clone(),
            moving: true,
            ..Runtime::default()
        }
    });
    let entry = compiled.module.get_finalized_function(compiled.entry);
    // SAFETY: `entry` was compiled above with this signature.
    let run: extern "C" fn(u64, u64) -> u64 = unsafe { std::mem::transmute(entry) };
    let result = run(TAG | 1, TAG | 2);
    let mut problems = RUNTIME.with(|rt| {
        let mut rt = rt.borrow_mut();
        let mut problems = std::mem::take(&mut rt.problems);
        if rt.next != expected.safepoints.len() {
            problems.push(Problem {
                kind: "safepoint-count".into(),
                detail: format!("{} safepoints ran, the model has {}", rt.next, expected.safepoints.len()),
            });
        }
        if rt.observed != expected.observed {
            let i = rt.observed.iter().zip(&expected.observed).position(|(a, b)| a != b).unwrap_or(0);
            problems.push(Problem {
                kind: "missed-relocation".into(),
                detail: format!(
                    "observation #{i}: program saw {:#x?}, model {:#x?}",
                    rt.observed.get(i),
                    expected.observed.get(i)
                ),
            });
        }
        problems
    });
    if result != expected.result {
        problems.push(Problem {
            kind: "missed-relocation".into(),
            detail: format!("result {result:#x}, model {:#x}", expected.result),
        });
    }
    // The module (and its code) lives until here.
    drop(compiled);
    Ok(problems)
}

/// Shrinks `prog` while it still gives a problem of `kind` under `config`:
/// drops statements, unwraps `if`s and loops, drops functions from the end.
pub fn shrink(prog: &Program, config: CompileConfig, plant: Plant, kind: &str) -> Program {
    let reproduces =
        |p: &Program| check(p, config, plant).map(|probs| probs.iter().any(|x| x.kind == kind)).unwrap_or(false);
    let mut best = prog.clone();
    loop {
        let mut improved = false;
        for candidate in candidates(&best) {
            if reproduces(&candidate) {
                best = candidate;
                improved = true;
                break;
            }
        }
        if !improved {
            return best;
        }
    }
}

/// Programs one step smaller than `p`.
fn candidates(p: &Program) -> Vec<Program> {
    let mut out = Vec::new();
    // Drop the last function when nothing calls it.
    let last = p.funcs.len() as u8 - 1;
    let calls_last = |f: &Func| uses_callee(&f.body, last) || matches!(f.tail, Tail::Call(g, ..) if g == last);
    if p.funcs.len() > 1 && !p.funcs[..last as usize].iter().any(calls_last) {
        let mut q = p.clone();
        q.funcs.pop();
        out.push(q);
    }
    for (fi, f) in p.funcs.iter().enumerate() {
        if f.tail != Tail::Return {
            let mut q = p.clone();
            q.funcs[fi].tail = Tail::Return;
            out.push(q);
        }
        for body in smaller_blocks(&f.body) {
            let mut q = p.clone();
            q.funcs[fi].body = body;
            out.push(q);
        }
    }
    out
}

fn uses_callee(stmts: &[Stmt], callee: u8) -> bool {
    stmts.iter().any(|s| match s {
        Stmt::Call(_, c, ..) => *c == callee,
        Stmt::If(t, e) => uses_callee(t, callee) || uses_callee(e, callee),
        Stmt::Loop(_, b) => uses_callee(b, callee),
        _ => false,
    })
}

fn smaller_blocks(stmts: &[Stmt]) -> Vec<Vec<Stmt>> {
    let mut out = Vec::new();
    for i in 0..stmts.len() {
        let mut without = stmts.to_vec();
        let removed = without.remove(i);
        out.push(without.clone());
        // Replace a compound statement by its contents, a call by a copy.
        match removed {
            Stmt::Call(d, _, a, _) => {
                let mut q = stmts.to_vec();
                q[i] = Stmt::Copy(d, a);
                out.push(q);
            }
            Stmt::If(t, e) => {
                for inner in [t, e] {
                    let mut q = stmts[..i].to_vec();
                    q.extend(inner);
                    q.extend_from_slice(&stmts[i + 1..]);
                    out.push(q);
                }
            }
            Stmt::Loop(n, body) => {
                let mut q = stmts[..i].to_vec();
                q.extend(body.iter().cloned());
                q.extend_from_slice(&stmts[i + 1..]);
                out.push(q);
                for inner in smaller_blocks(&body) {
                    let mut q = stmts.to_vec();
                    q[i] = Stmt::Loop(n, inner);
                    out.push(q);
                }
            }
            _ => {}
        }
        if let Stmt::If(t, e) = &stmts[i] {
            for inner in smaller_blocks(t) {
                let mut q = stmts.to_vec();
                q[i] = Stmt::If(inner, e.clone());
                out.push(q);
            }
            for inner in smaller_blocks(e) {
                let mut q = stmts.to_vec();
                q[i] = Stmt::If(t.clone(), inner);
                out.push(q);
            }
        }
    }
    out
}

/// The Cranelift version the verifier runs (the Wasmtime-under-test's).
pub const CRANELIFT: &str = "cranelift 0.135.8";

/// `crashes/<signature>/finding.json` of a stack-map finding; the program is
/// beside it as `program.json`, its CLIF as `program.clif`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub signature: String,
    pub problems: Vec<Problem>,
    pub opt_level: String,
    pub regalloc: String,
    pub engine: String,
    /// Versions on which it is expected to reproduce (see the Wasm records).
    #[serde(default)]
    pub expected_on: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub hits: u64,
    pub first_seen: String,
    pub last_seen: String,
    pub seed: Option<u64>,
    pub index: Option<u64>,
}

/// The identity of a finding: the first problem's kind and the settings.
pub fn finding_signature(problems: &[Problem], config: CompileConfig) -> Option<String> {
    problems.first().map(|p| {
        format!("stackmap-{}-{}-{}", p.kind, config.opt_level.replace('_', "-"), config.regalloc.replace('_', "-"))
    })
}

/// Stores a (shrunk) finding under `dir/<signature>/`, or bumps the hit
/// count of a known one. Files are written to a temporary directory first.
pub fn store(
    dir: &std::path::Path,
    prog: &Program,
    config: CompileConfig,
    problems: &[Problem],
    seed: Option<u64>,
    index: Option<u64>,
) -> Result<(std::path::PathBuf, bool)> {
    let signature = finding_signature(problems, config).context("no problem to store")?;
    std::fs::create_dir_all(dir)?;
    let target = dir.join(&signature);
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    if let Ok(text) = std::fs::read_to_string(target.join("finding.json")) {
        let mut record: Record = serde_json::from_str(&text)?;
        record.hits += 1;
        record.last_seen = now;
        let tmp = tempfile::NamedTempFile::new_in(&target)?;
        std::fs::write(tmp.path(), serde_json::to_string_pretty(&record)?)?;
        tmp.persist(target.join("finding.json"))?;
        return Ok((target, false));
    }
    let record = Record {
        signature,
        problems: problems.to_vec(),
        opt_level: config.opt_level.into(),
        regalloc: config.regalloc.into(),
        engine: CRANELIFT.into(),
        expected_on: vec![],
        notes: None,
        hits: 1,
        first_seen: now.clone(),
        last_seen: now,
        seed,
        index,
    };
    let tmp = tempfile::Builder::new().prefix(".tmp-").tempdir_in(dir)?;
    std::fs::write(tmp.path().join("program.json"), serde_json::to_string_pretty(prog)?)?;
    std::fs::write(tmp.path().join("program.clif"), compile(prog, config, Plant::default())?.clif)?;
    std::fs::write(tmp.path().join("finding.json"), serde_json::to_string_pretty(&record)?)?;
    let tmp = tmp.keep();
    if std::fs::rename(&tmp, &target).is_err() {
        std::fs::remove_dir_all(&tmp).ok();
        return store(dir, prog, config, problems, seed, index);
    }
    Ok((target, true))
}

/// The compile configuration a record names.
pub fn config_named(opt_level: &str, regalloc: &str) -> Option<CompileConfig> {
    CONFIGS.iter().copied().find(|c| c.opt_level == opt_level && c.regalloc == regalloc)
}

/// What `gcfuzz stackmaps` found.
#[derive(Debug, Default, Serialize)]
pub struct CampaignSummary {
    pub seed: u64,
    pub seconds: f64,
    pub programs: u64,
    /// Programs times configurations compiled and checked.
    pub checks: u64,
    pub programs_per_sec: f64,
    /// Safepoints the model expected and the host checked, summed.
    pub safepoints: u64,
    pub findings: Vec<CampaignFinding>,
}

#[derive(Debug, Serialize)]
pub struct CampaignFinding {
    pub signature: String,
    pub kind: String,
    pub detail: String,
    pub path: std::path::PathBuf,
    pub new: bool,
    pub index: u64,
}

/// Checks seeded programs on every configuration for `time` (or
/// `max_programs`), on `jobs` threads; findings are shrunk and stored in
/// `out`.
pub fn campaign(
    seed: u64,
    time: std::time::Duration,
    max_programs: Option<u64>,
    jobs: usize,
    out: &std::path::Path,
) -> Result<CampaignSummary> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    let start = std::time::Instant::now();
    let next = AtomicU64::new(0);
    let summary = Mutex::new(CampaignSummary { seed, ..Default::default() });
    let last = Mutex::new(start);
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| -> Result<()> {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if start.elapsed() >= time || max_programs.is_some_and(|m| i >= m) {
                        return Ok(());
                    }
                    let input = crate::case::seeded_input(seed, i);
                    let Ok(prog) = generate(&mut Unstructured::new(&input)) else { continue };
                    let safepoints = expected(&prog, true).safepoints.len() as u64;
                    let mut found = Vec::new();
                    for config in CONFIGS {
                        let problems = check(&prog, *config, Plant::default())?;
                        if let Some(first) = problems.first() {
                            let small = shrink(&prog, *config, Plant::default(), &first.kind);
                            let problems = check(&small, *config, Plant::default())?;
                            let (path, new) = store(out, &small, *config, &problems, Some(seed), Some(i))?;
                            let p = problems.first().unwrap_or(first).clone();
                            found.push(CampaignFinding {
                                signature: path.file_name().unwrap_or_default().to_string_lossy().into(),
                                kind: p.kind,
                                detail: p.detail,
                                path,
                                new,
                                index: i,
                            });
                        }
                    }
                    let mut sum = summary.lock().unwrap();
                    sum.programs += 1;
                    sum.checks += CONFIGS.len() as u64;
                    sum.safepoints += safepoints * CONFIGS.len() as u64;
                    for f in &found {
                        eprintln!("{} finding {}: {}", if f.new { "new" } else { "known" }, f.path.display(), f.detail);
                    }
                    sum.findings.extend(found);
                    let mut last = last.lock().unwrap();
                    if last.elapsed() >= std::time::Duration::from_secs(10) {
                        *last = std::time::Instant::now();
                        let secs = start.elapsed().as_secs_f64();
                        eprintln!(
                            "[{secs:>6.0}s] programs {} ({:.0}/s) findings {}",
                            sum.programs,
                            sum.programs as f64 / secs,
                            sum.findings.len()
                        );
                    }
                }
            });
        }
    });
    let mut sum = summary.into_inner().unwrap();
    sum.seconds = start.elapsed().as_secs_f64();
    sum.programs_per_sec = sum.programs as f64 / sum.seconds.max(1e-9);
    Ok(sum)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::seeded_input;

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

    #[test]
    fn random_programs_pass_on_every_configuration() {
        for i in 0..500 {
            let p = program(1, i);
            for config in CONFIGS {
                let problems = check(&p, *config, Plant::default()).unwrap();
                assert!(problems.is_empty(), "program {i} on {config}: {problems:#?}\n{p:#?}");
            }
        }
    }

    #[test]
    fn a_missing_stack_map_declaration_is_an_unregistered_root() {
        let plant = Plant { undeclared_var: Some(2) };
        let mut caught = 0;
        for i in 0..100 {
            let p = program(2, i);
            let problems = check(&p, CONFIGS[1], plant).unwrap();
            caught += problems.iter().any(|x| x.kind == "unregistered-root") as usize;
        }
        assert!(caught >= 20, "caught {caught} of 100");
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
        let record: Record =
            serde_json::from_str(&std::fs::read_to_string(path.join("finding.json")).unwrap()).unwrap();
        assert_eq!((record.hits, record.index), (2, Some(0)));
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
