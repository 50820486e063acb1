//! The interpreter loop. One [`Machine`] per invocation holds the operand
//! stack, the label stack and the call frames, all on the heap, so deep Wasm
//! recursion ends at a deterministic frame limit instead of overflowing the
//! host stack. Control flow follows the specification's labels: a branch
//! keeps the label's arity of values and drops the rest down to the height
//! at which the label was entered.
//!
//! Long, but one coherent piece: one `match` over every operator the
//! interpreter runs, each arm next to its neighbours in the specification's
//! order; splitting it by instruction family would scatter the stack
//! discipline that every arm shares.

use super::edges;
use super::module::Module;
use super::numeric::*;
use super::origin::{Operands, Origin};
use super::simd;
use super::store::{FuncInst, Host, PAGE, Store, any_convert_extern, default_val, extern_convert_any, pack, unpacked};
use super::types::{Heap, Storage, TypeId, heap_type, storage_size};
use super::{AnyRef, Ref, Stop, Val, trap};
use crate::outcome::{Exhausted, TrapClass};
use std::rc::Rc;
use wasmparser::{BlockType, Catch, Operator};

#[derive(Clone, Copy, Debug)]
struct Label {
    /// Index of the instruction that opened it (`u32::MAX` for a body).
    start: u32,
    /// Index of its `end`.
    end: u32,
    /// Operand stack height below the label's parameters.
    height: usize,
    /// Values a branch to it carries.
    arity: usize,
    is_loop: bool,
    is_try: bool,
}

struct Frame<'a> {
    module: Rc<Module<'a>>,
    inst: u32,
    code: u32,
    pc: usize,
    locals: Vec<Val>,
    /// Where each local's value came from.
    local_origins: Vec<Origin>,
    /// Index of the function body's label in the label stack.
    label_base: usize,
}

struct Machine<'a> {
    stack: Operands,
    labels: Vec<Label>,
    frames: Vec<Frame<'a>>,
    fuel: u64,
}

impl Machine<'_> {
    /// Branches to the label `depth` levels out; returns where to continue.
    fn branch(&mut self, depth: u32) -> usize {
        let li = self.labels.len() - 1 - depth as usize;
        let l = self.labels[li];
        let keep = self.stack.len() - l.arity;
        self.stack.remove(l.height..keep);
        self.labels.truncate(li + 1);
        if l.is_loop { l.start as usize + 1 } else { l.end as usize }
    }

    fn pop(&mut self) -> Val {
        self.pop_traced().0
    }

    fn pop_traced(&mut self) -> (Val, Origin) {
        self.stack.pop().expect("validated code: operand stack underflow")
    }

    fn pop_n(&mut self, n: usize) -> Vec<Val> {
        self.stack.split_off(n).0
    }
}

fn struct_of(r: Ref) -> Result<u32, Stop> {
    match r {
        Ref::Any(AnyRef::Struct(o)) => Ok(o),
        Ref::Null => trap(TrapClass::NullReference),
        other => unreachable!("validated code: expected a struct, found {other:?}"),
    }
}

fn array_of(r: Ref) -> Result<u32, Stop> {
    match r {
        Ref::Any(AnyRef::Array(o)) => Ok(o),
        Ref::Null => trap(TrapClass::NullReference),
        other => unreachable!("validated code: expected an array, found {other:?}"),
    }
}

fn read_storage(s: Storage<TypeId>, b: &[u8]) -> Val {
    use super::types::ValTy;
    match s {
        Storage::I8 => Val::I32(b[0] as i32),
        Storage::I16 => Val::I32(u16::from_le_bytes([b[0], b[1]]) as i32),
        Storage::Val(ValTy::I32) => Val::I32(i32::from_le_bytes(b.try_into().unwrap())),
        Storage::Val(ValTy::F32) => Val::F32(u32::from_le_bytes(b.try_into().unwrap())),
        Storage::Val(ValTy::I64) => Val::I64(i64::from_le_bytes(b.try_into().unwrap())),
        Storage::Val(ValTy::F64) => Val::F64(u64::from_le_bytes(b.try_into().unwrap())),
        Storage::Val(ValTy::V128) => Val::V128(u128::from_le_bytes(b.try_into().unwrap())),
        Storage::Val(other) => unreachable!("validated code: {other:?} array from data"),
    }
}

/// Sign- or zero-extends a packed field read.
fn extend(s: Storage<TypeId>, v: Val, signed: bool) -> Val {
    match (s, v, signed) {
        (Storage::I8, Val::I32(x), true) => Val::I32(x as i8 as i32),
        (Storage::I16, Val::I32(x), true) => Val::I32(x as i16 as i32),
        _ => v,
    }
}

fn f32v(x: f32) -> Val {
    Val::F32(x.to_bits())
}

fn f64v(x: f64) -> Val {
    Val::F64(x.to_bits())
}

impl<'a> Store<'a> {
    /// Calls function `func` with `args`; its results, or why it stopped.
    /// Where each result came from is kept in `last_origins`.
    pub fn invoke(&mut self, func: u32, args: Vec<Val>) -> Result<Vec<Val>, Stop> {
        self.last_origins.clear();
        let mut m =
            Machine { stack: Operands::new(args), labels: Vec::new(), frames: Vec::new(), fuel: self.limits.fuel };
        self.call(&mut m, func)?;
        self.run(&mut m)?;
        let (vals, origins) = m.stack.into_parts();
        self.last_origins = origins;
        Ok(vals)
    }

    fn call_host(&mut self, host: Host, args: &[Val]) -> Vec<Val> {
        match host {
            Host::Nop => vec![],
            Host::Identity => args.to_vec(),
            Host::ExternNew => vec![Val::Ref(Ref::Extern(AnyRef::Host(args[0].i32() as u32)))],
            Host::ExternId => vec![Val::I32(match args[0].reference() {
                Ref::Null => -1,
                Ref::Extern(AnyRef::Host(id)) => id as i32,
                _ => -2,
            })],
        }
    }

    /// Calls `func` with its arguments on top of the stack: a host function
    /// runs to completion, a Wasm function gets a frame.
    fn call(&mut self, m: &mut Machine<'a>, func: u32) -> Result<(), Stop> {
        let (inst, code, ty) = match self.funcs[func as usize] {
            FuncInst::Host { ty, host } => {
                let n = self.types.func_type(ty).0.len();
                let args = m.pop_n(n);
                let results = self.call_host(host, &args);
                m.stack.extend(results);
                return Ok(());
            }
            FuncInst::Wasm { inst, code, ty } => (inst, code, ty),
        };
        if m.frames.len() >= self.limits.max_frames {
            return Err(Stop::Exhausted(Exhausted::StackOverflow));
        }
        let module = self.insts[inst as usize].module.clone();
        let (params, results) = self.types.func_type(ty);
        let (np, nr) = (params.len(), results.len());
        let c = &module.code[code as usize];
        let (mut locals, mut local_origins) = m.stack.split_off(np);
        locals.extend(c.locals.iter().map(|&t| default_val(t)));
        local_origins.resize(locals.len(), Origin::NONE);
        m.labels.push(Label {
            start: u32::MAX,
            end: c.ops.len() as u32 - 1,
            height: m.stack.len(),
            arity: nr,
            is_loop: false,
            is_try: false,
        });
        let label_base = m.labels.len() - 1;
        m.frames.push(Frame { module, inst, code, pc: 0, locals, local_origins, label_base });
        Ok(())
    }

    /// Leaves the current frame for a tail call: drops its operands and
    /// labels, keeping the callee's arguments.
    fn leave_for_tail_call(&mut self, m: &mut Machine<'a>, nargs: usize) {
        let (args, origins) = m.stack.split_off(nargs);
        let frame = m.frames.pop().expect("a frame");
        m.stack.truncate(m.labels[frame.label_base].height);
        m.labels.truncate(frame.label_base);
        for (v, o) in args.into_iter().zip(origins) {
            m.stack.push_from(v, o);
        }
    }

    /// Throws exception `exn`: finds the innermost matching `try_table`
    /// catch, unwinding frames, and resumes there.
    fn throw(&mut self, m: &mut Machine<'a>, exn: u32) -> Result<(), Stop> {
        let tag = self.exns[exn as usize].tag;
        while let Some(frame) = m.frames.last() {
            let (module, code, inst, base) = (frame.module.clone(), frame.code, frame.inst, frame.label_base);
            while m.labels.len() > base + 1 {
                let l = m.labels.pop().expect("a label");
                if !l.is_try {
                    continue;
                }
                let Operator::TryTable { try_table } = &module.code[code as usize].ops[l.start as usize] else {
                    continue;
                };
                for c in &try_table.catches {
                    let (tag_index, label, with_ref) = match *c {
                        Catch::One { tag, label } => (Some(tag), label, false),
                        Catch::OneRef { tag, label } => (Some(tag), label, true),
                        Catch::All { label } => (None, label, false),
                        Catch::AllRef { label } => (None, label, true),
                    };
                    if let Some(t) = tag_index
                        && self.insts[inst as usize].tags[t as usize] != tag
                    {
                        continue;
                    }
                    m.stack.truncate(l.height);
                    if tag_index.is_some() {
                        m.stack.extend(self.exns[exn as usize].vals.iter().copied());
                    }
                    if with_ref {
                        m.stack.push(Val::Ref(Ref::Exn(exn)));
                    }
                    let pc = m.branch(label);
                    m.frames.last_mut().expect("a frame").pc = pc;
                    return Ok(());
                }
            }
            m.stack.truncate(m.labels[base].height);
            m.labels.truncate(base);
            m.frames.pop();
        }
        Err(Stop::Uncaught(exn))
    }

    fn block_arity(&self, types: &[TypeId], bt: BlockType) -> (usize, usize) {
        match bt {
            BlockType::Empty => (0, 0),
            BlockType::Type(_) => (0, 1),
            BlockType::FuncType(i) => {
                let (p, r) = self.types.func_type(types[i as usize]);
                (p.len(), r.len())
            }
        }
    }

    fn mem_index(&self, inst: u32, mem: u32) -> usize {
        self.insts[inst as usize].mems[mem as usize] as usize
    }

    fn table_index(&self, inst: u32, table: u32) -> usize {
        self.insts[inst as usize].tables[table as usize] as usize
    }

    /// The effective address of an access of `size` bytes, bounds-checked.
    fn address(&self, mem: usize, base: i32, offset: u64, size: u64) -> Result<usize, Stop> {
        let ea = base as u32 as u64 + offset;
        if ea + size > self.mems[mem].data.len() as u64 {
            return trap(TrapClass::MemoryOutOfBounds);
        }
        Ok(ea as usize)
    }

    fn heap(&self, types: &[TypeId], h: wasmparser::HeapType) -> Heap<TypeId> {
        heap_type(h, types).expect("validated code: heap type")
    }

    /// Runs until the invocation's outermost frame returns.
    fn run(&mut self, m: &mut Machine<'a>) -> Result<(), Stop> {
        macro_rules! pop {
            () => {
                m.pop()
            };
        }
        // Numeric instructions pass their operands' origin on (the first
        // operand's, unless a constant made it): a wrong value computed from
        // a wrongly selected or stale one is named by where it came from.
        macro_rules! un {
            ($get:ident, $f:expr) => {{
                let (a, origin) = m.pop_traced();
                m.stack.push_from($f(a.$get()), origin);
            }};
        }
        macro_rules! bin {
            ($get:ident, $f:expr) => {{
                let (b, ob) = m.pop_traced();
                let (a, oa) = m.pop_traced();
                m.stack.push_from($f(a.$get(), b.$get()), oa.or(ob));
            }};
        }
        'frames: while let Some(frame) = m.frames.last_mut() {
            let module = frame.module.clone();
            let ii = frame.inst;
            let code = &module.code[frame.code as usize];
            let types = &module.types[..];
            let mut pc = frame.pc;
            let mut locals = std::mem::take(&mut frame.locals);
            let mut local_origins = std::mem::take(&mut frame.local_origins);
            let (label_base, code_index) = (frame.label_base, frame.code);
            macro_rules! save {
                () => {{
                    let f = m.frames.last_mut().expect("a frame");
                    f.pc = pc;
                    f.locals = std::mem::take(&mut locals);
                    f.local_origins = std::mem::take(&mut local_origins);
                }};
            }
            macro_rules! load {
                ($memarg:expr, $n:literal, $f:expr) => {{
                    let base = pop!().i32();
                    let mi = self.mem_index(ii, linear_memory(&$memarg));
                    let ea = self.address(mi, base, $memarg.offset, $n)?;
                    let bytes: [u8; $n] = self.mems[mi].data[ea..ea + $n].try_into().unwrap();
                    m.stack.push($f(bytes));
                }};
            }
            macro_rules! store {
                ($memarg:expr, $get:ident, $n:literal, $f:expr) => {{
                    let v = pop!().$get();
                    let base = pop!().i32();
                    let mi = self.mem_index(ii, linear_memory(&$memarg));
                    let ea = self.address(mi, base, $memarg.offset, $n)?;
                    let bytes: [u8; $n] = $f(v);
                    self.mems[mi].data[ea..ea + $n].copy_from_slice(&bytes);
                }};
            }
            loop {
                if m.fuel == 0 {
                    return Err(Stop::Exhausted(Exhausted::OutOfFuel));
                }
                m.fuel -= 1;
                let at = pc;
                pc += 1;
                m.stack.current = Origin { inst: ii, code: code_index, at: at as u32 };
                if edges::on() {
                    edges::note(&code.ops[at], m.stack.top(5), self, ii, types);
                }
                match &code.ops[at] {
                    // Control.
                    Operator::Unreachable => return trap(TrapClass::Unreachable),
                    Operator::Nop => {}
                    Operator::Block { blockty } | Operator::Loop { blockty } | Operator::If { blockty } => {
                        let (p, r) = self.block_arity(types, *blockty);
                        let is_loop = matches!(code.ops[at], Operator::Loop { .. });
                        let cond = if matches!(code.ops[at], Operator::If { .. }) { Some(pop!().i32()) } else { None };
                        m.labels.push(Label {
                            start: at as u32,
                            end: code.end[at],
                            height: m.stack.len() - p,
                            arity: if is_loop { p } else { r },
                            is_loop,
                            is_try: false,
                        });
                        if cond == Some(0) {
                            pc = match code.else_at.get(&(at as u32)) {
                                Some(&e) => e as usize + 1,
                                None => code.end[at] as usize,
                            };
                        }
                    }
                    Operator::TryTable { try_table } => {
                        let (p, r) = self.block_arity(types, try_table.ty);
                        m.labels.push(Label {
                            start: at as u32,
                            end: code.end[at],
                            height: m.stack.len() - p,
                            arity: r,
                            is_loop: false,
                            is_try: true,
                        });
                    }
                    Operator::Else => pc = code.end[at] as usize,
                    Operator::End => {
                        m.labels.pop();
                        if m.labels.len() == label_base {
                            m.frames.pop();
                            continue 'frames;
                        }
                    }
                    Operator::Br { relative_depth } => pc = m.branch(*relative_depth),
                    Operator::BrIf { relative_depth } => {
                        if pop!().i32() != 0 {
                            pc = m.branch(*relative_depth);
                        }
                    }
                    Operator::BrTable { .. } => {
                        let i = pop!().i32() as u32 as usize;
                        let targets = &code.br_tables[&(at as u32)];
                        pc = m.branch(targets[i.min(targets.len() - 1)]);
                    }
                    Operator::Return => pc = m.branch((m.labels.len() - 1 - label_base) as u32),
                    Operator::Call { function_index } => {
                        let f = self.insts[ii as usize].funcs[*function_index as usize];
                        save!();
                        self.call(m, f)?;
                        continue 'frames;
                    }
                    Operator::ReturnCall { function_index } => {
                        let f = self.insts[ii as usize].funcs[*function_index as usize];
                        let n = self.types.func_type(self.funcs[f as usize].ty()).0.len();
                        self.leave_for_tail_call(m, n);
                        self.call(m, f)?;
                        continue 'frames;
                    }
                    Operator::CallIndirect { type_index, table_index }
                    | Operator::ReturnCallIndirect { type_index, table_index } => {
                        let i = pop!().i32() as u32 as usize;
                        let t = self.table_index(ii, *table_index);
                        let f = match self.tables[t].elems.get(i) {
                            None => return trap(TrapClass::TableOutOfBounds),
                            Some(Ref::Null) => return trap(TrapClass::IndirectCallToNull),
                            Some(Ref::Func(f)) => *f,
                            Some(other) => unreachable!("validated code: {other:?} in a function table"),
                        };
                        let want = types[*type_index as usize];
                        if !self.types.is_sub(self.funcs[f as usize].ty(), want) {
                            return trap(TrapClass::BadSignature);
                        }
                        if matches!(code.ops[at], Operator::ReturnCallIndirect { .. }) {
                            let n = self.types.func_type(want).0.len();
                            self.leave_for_tail_call(m, n);
                        } else {
                            save!();
                        }
                        self.call(m, f)?;
                        continue 'frames;
                    }
                    Operator::CallRef { type_index } | Operator::ReturnCallRef { type_index } => {
                        let f = match pop!().reference() {
                            Ref::Null => return trap(TrapClass::NullReference),
                            Ref::Func(f) => f,
                            other => unreachable!("validated code: call_ref of {other:?}"),
                        };
                        if matches!(code.ops[at], Operator::ReturnCallRef { .. }) {
                            let n = self.types.func_type(types[*type_index as usize]).0.len();
                            self.leave_for_tail_call(m, n);
                        } else {
                            save!();
                        }
                        self.call(m, f)?;
                        continue 'frames;
                    }
                    Operator::Throw { tag_index } => {
                        let tag = self.insts[ii as usize].tags[*tag_index as usize];
                        let n = self.types.func_type(self.tags[tag as usize]).0.len();
                        let vals = m.pop_n(n);
                        let exn = self.exn_new(tag, vals)?;
                        save!();
                        self.throw(m, exn)?;
                        continue 'frames;
                    }
                    Operator::ThrowRef => {
                        let exn = match pop!().reference() {
                            Ref::Null => return trap(TrapClass::NullReference),
                            Ref::Exn(e) => e,
                            other => unreachable!("validated code: throw_ref of {other:?}"),
                        };
                        save!();
                        self.throw(m, exn)?;
                        continue 'frames;
                    }
                    Operator::Drop => {
                        pop!();
                    }
                    Operator::Select | Operator::TypedSelect { .. } => {
                        let c = pop!().i32();
                        let b = pop!();
                        let a = pop!();
                        m.stack.push(if c != 0 { a } else { b });
                    }
                    Operator::BrOnNull { relative_depth } => {
                        let (v, origin) = m.pop_traced();
                        if v.reference() == Ref::Null {
                            pc = m.branch(*relative_depth);
                        } else {
                            m.stack.push_from(v, origin);
                        }
                    }
                    Operator::BrOnNonNull { relative_depth } => {
                        let (v, origin) = m.pop_traced();
                        if v.reference() != Ref::Null {
                            m.stack.push_from(v, origin);
                            pc = m.branch(*relative_depth);
                        }
                    }
                    Operator::BrOnCast { relative_depth, to_ref_type, .. }
                    | Operator::BrOnCastFail { relative_depth, to_ref_type, .. } => {
                        let r = m.stack.last().expect("validated code: operand").reference();
                        let heap = self.heap(types, to_ref_type.heap_type());
                        let hit = self.ref_matches(r, to_ref_type.is_nullable(), heap);
                        if hit == matches!(code.ops[at], Operator::BrOnCast { .. }) {
                            pc = m.branch(*relative_depth);
                        }
                    }

                    // Variables.
                    Operator::LocalGet { local_index } => {
                        let i = *local_index as usize;
                        m.stack.push_from(locals[i], local_origins[i]);
                    }
                    Operator::LocalSet { local_index } => {
                        let i = *local_index as usize;
                        (locals[i], local_origins[i]) = m.pop_traced();
                    }
                    Operator::LocalTee { local_index } => {
                        let i = *local_index as usize;
                        locals[i] = *m.stack.last().expect("validated code: operand");
                        local_origins[i] = m.stack.last_origin();
                    }
                    Operator::GlobalGet { global_index } => {
                        let g = &self.globals[self.insts[ii as usize].globals[*global_index as usize] as usize];
                        m.stack.push_from(g.val, g.origin);
                    }
                    Operator::GlobalSet { global_index } => {
                        let g = self.insts[ii as usize].globals[*global_index as usize];
                        let (val, origin) = m.pop_traced();
                        (self.globals[g as usize].val, self.globals[g as usize].origin) = (val, origin);
                    }

                    // Memory.
                    Operator::I32Load { memarg } => load!(memarg, 4, |b| Val::I32(i32::from_le_bytes(b))),
                    Operator::I64Load { memarg } => load!(memarg, 8, |b| Val::I64(i64::from_le_bytes(b))),
                    Operator::F32Load { memarg } => load!(memarg, 4, |b| Val::F32(u32::from_le_bytes(b))),
                    Operator::F64Load { memarg } => load!(memarg, 8, |b| Val::F64(u64::from_le_bytes(b))),
                    Operator::I32Load8S { memarg } => load!(memarg, 1, |b: [u8; 1]| Val::I32(b[0] as i8 as i32)),
                    Operator::I32Load8U { memarg } => load!(memarg, 1, |b: [u8; 1]| Val::I32(b[0] as i32)),
                    Operator::I32Load16S { memarg } => {
                        load!(memarg, 2, |b| Val::I32(i16::from_le_bytes(b) as i32))
                    }
                    Operator::I32Load16U { memarg } => {
                        load!(memarg, 2, |b| Val::I32(u16::from_le_bytes(b) as i32))
                    }
                    Operator::I64Load8S { memarg } => load!(memarg, 1, |b: [u8; 1]| Val::I64(b[0] as i8 as i64)),
                    Operator::I64Load8U { memarg } => load!(memarg, 1, |b: [u8; 1]| Val::I64(b[0] as i64)),
                    Operator::I64Load16S { memarg } => {
                        load!(memarg, 2, |b| Val::I64(i16::from_le_bytes(b) as i64))
                    }
                    Operator::I64Load16U { memarg } => {
                        load!(memarg, 2, |b| Val::I64(u16::from_le_bytes(b) as i64))
                    }
                    Operator::I64Load32S { memarg } => {
                        load!(memarg, 4, |b| Val::I64(i32::from_le_bytes(b) as i64))
                    }
                    Operator::I64Load32U { memarg } => {
                        load!(memarg, 4, |b| Val::I64(u32::from_le_bytes(b) as i64))
                    }
                    Operator::I32Store { memarg } => store!(memarg, i32, 4, |v: i32| v.to_le_bytes()),
                    Operator::I64Store { memarg } => store!(memarg, i64, 8, |v: i64| v.to_le_bytes()),
                    Operator::F32Store { memarg } => store!(memarg, f32, 4, |v: f32| v.to_bits().to_le_bytes()),
                    Operator::F64Store { memarg } => store!(memarg, f64, 8, |v: f64| v.to_bits().to_le_bytes()),
                    Operator::I32Store8 { memarg } => store!(memarg, i32, 1, |v: i32| [v as u8]),
                    Operator::I32Store16 { memarg } => store!(memarg, i32, 2, |v: i32| (v as u16).to_le_bytes()),
                    Operator::I64Store8 { memarg } => store!(memarg, i64, 1, |v: i64| [v as u8]),
                    Operator::I64Store16 { memarg } => store!(memarg, i64, 2, |v: i64| (v as u16).to_le_bytes()),
                    Operator::I64Store32 { memarg } => store!(memarg, i64, 4, |v: i64| (v as u32).to_le_bytes()),
                    Operator::MemorySize { mem } => {
                        let mi = self.mem_index(ii, *mem);
                        m.stack.push(Val::I32((self.mems[mi].data.len() as u64 / PAGE) as i32));
                    }
                    Operator::MemoryGrow { mem } => {
                        let n = pop!().i32() as u32 as u64;
                        let mi = self.mem_index(ii, *mem);
                        let mem = &mut self.mems[mi];
                        let old = mem.data.len() as u64 / PAGE;
                        let max = mem.ty.max.unwrap_or(65536).min(self.limits.memory_bytes / PAGE);
                        if old + n > max {
                            m.stack.push(Val::I32(-1));
                        } else {
                            mem.data.resize(((old + n) * PAGE) as usize, 0);
                            m.stack.push(Val::I32(old as i32));
                        }
                    }
                    Operator::MemoryInit { data_index, mem } => {
                        let n = pop!().i32() as u32;
                        let s = pop!().i32() as u32;
                        let d = pop!().i32() as u32;
                        self.memory_init(ii, *mem, *data_index, d, s, n)?;
                    }
                    Operator::DataDrop { data_index } => self.insts[ii as usize].datas[*data_index as usize] = &[],
                    Operator::MemoryCopy { dst_mem, src_mem } => {
                        let n = pop!().i32() as u32 as usize;
                        let s = pop!().i32() as u32 as usize;
                        let d = pop!().i32() as u32 as usize;
                        let (dm, sm) = (self.mem_index(ii, *dst_mem), self.mem_index(ii, *src_mem));
                        if s + n > self.mems[sm].data.len() || d + n > self.mems[dm].data.len() {
                            return trap(TrapClass::MemoryOutOfBounds);
                        }
                        if dm == sm {
                            self.mems[dm].data.copy_within(s..s + n, d);
                        } else {
                            let bytes = self.mems[sm].data[s..s + n].to_vec();
                            self.mems[dm].data[d..d + n].copy_from_slice(&bytes);
                        }
                    }
                    Operator::MemoryFill { mem } => {
                        let n = pop!().i32() as u32 as usize;
                        let v = pop!().i32() as u8;
                        let d = pop!().i32() as u32 as usize;
                        let mi = self.mem_index(ii, *mem);
                        if d + n > self.mems[mi].data.len() {
                            return trap(TrapClass::MemoryOutOfBounds);
                        }
                        self.mems[mi].data[d..d + n].fill(v);
                    }

                    // Tables.
                    Operator::TableGet { table } => {
                        let i = pop!().i32() as u32 as usize;
                        let t = self.table_index(ii, *table);
                        match self.tables[t].elems.get(i) {
                            Some(r) => m.stack.push(Val::Ref(*r)),
                            None => return trap(TrapClass::TableOutOfBounds),
                        }
                    }
                    Operator::TableSet { table } => {
                        let r = pop!().reference();
                        let i = pop!().i32() as u32 as usize;
                        let t = self.table_index(ii, *table);
                        match self.tables[t].elems.get_mut(i) {
                            Some(slot) => *slot = r,
                            None => return trap(TrapClass::TableOutOfBounds),
                        }
                    }
                    Operator::TableSize { table } => {
                        let t = self.table_index(ii, *table);
                        m.stack.push(Val::I32(self.tables[t].elems.len() as i32));
                    }
                    Operator::TableGrow { table } => {
                        let n = pop!().i32() as u32 as u64;
                        let init = pop!().reference();
                        let t = self.table_index(ii, *table);
                        let tab = &mut self.tables[t];
                        let old = tab.elems.len() as u64;
                        let max = tab.ty.max.unwrap_or(u32::MAX as u64).min(self.limits.table_elems);
                        if old + n > max {
                            m.stack.push(Val::I32(-1));
                        } else {
                            tab.elems.resize((old + n) as usize, init);
                            m.stack.push(Val::I32(old as i32));
                        }
                    }
                    Operator::TableFill { table } => {
                        let n = pop!().i32() as u32 as usize;
                        let r = pop!().reference();
                        let d = pop!().i32() as u32 as usize;
                        let t = self.table_index(ii, *table);
                        if d + n > self.tables[t].elems.len() {
                            return trap(TrapClass::TableOutOfBounds);
                        }
                        self.tables[t].elems[d..d + n].fill(r);
                    }
                    Operator::TableCopy { dst_table, src_table } => {
                        let n = pop!().i32() as u32 as usize;
                        let s = pop!().i32() as u32 as usize;
                        let d = pop!().i32() as u32 as usize;
                        let (dt, st) = (self.table_index(ii, *dst_table), self.table_index(ii, *src_table));
                        if s + n > self.tables[st].elems.len() || d + n > self.tables[dt].elems.len() {
                            return trap(TrapClass::TableOutOfBounds);
                        }
                        let items = self.tables[st].elems[s..s + n].to_vec();
                        self.tables[dt].elems[d..d + n].copy_from_slice(&items);
                    }
                    Operator::TableInit { elem_index, table } => {
                        let n = pop!().i32() as u32;
                        let s = pop!().i32() as u32;
                        let d = pop!().i32() as u32;
                        self.table_init(ii, *table, *elem_index, d, s, n)?;
                    }
                    Operator::ElemDrop { elem_index } => self.insts[ii as usize].elems[*elem_index as usize].clear(),

                    // Constants.
                    // Constants make no value worth naming.
                    Operator::I32Const { value } => m.stack.push_from(Val::I32(*value), Origin::NONE),
                    Operator::I64Const { value } => m.stack.push_from(Val::I64(*value), Origin::NONE),
                    Operator::F32Const { value } => m.stack.push_from(Val::F32(value.bits()), Origin::NONE),
                    Operator::F64Const { value } => m.stack.push_from(Val::F64(value.bits()), Origin::NONE),

                    // i32.
                    Operator::I32Eqz => un!(i32, |a: i32| Val::I32((a == 0) as i32)),
                    Operator::I32Eq => bin!(i32, |a: i32, b: i32| Val::I32((a == b) as i32)),
                    Operator::I32Ne => bin!(i32, |a: i32, b: i32| Val::I32((a != b) as i32)),
                    Operator::I32LtS => bin!(i32, |a: i32, b: i32| Val::I32((a < b) as i32)),
                    Operator::I32LtU => bin!(i32, |a: i32, b: i32| Val::I32(((a as u32) < (b as u32)) as i32)),
                    Operator::I32GtS => bin!(i32, |a: i32, b: i32| Val::I32((a > b) as i32)),
                    Operator::I32GtU => bin!(i32, |a: i32, b: i32| Val::I32(((a as u32) > (b as u32)) as i32)),
                    Operator::I32LeS => bin!(i32, |a: i32, b: i32| Val::I32((a <= b) as i32)),
                    Operator::I32LeU => bin!(i32, |a: i32, b: i32| Val::I32(((a as u32) <= (b as u32)) as i32)),
                    Operator::I32GeS => bin!(i32, |a: i32, b: i32| Val::I32((a >= b) as i32)),
                    Operator::I32GeU => bin!(i32, |a: i32, b: i32| Val::I32(((a as u32) >= (b as u32)) as i32)),
                    Operator::I32Clz => un!(i32, |a: i32| Val::I32(a.leading_zeros() as i32)),
                    Operator::I32Ctz => un!(i32, |a: i32| Val::I32(a.trailing_zeros() as i32)),
                    Operator::I32Popcnt => un!(i32, |a: i32| Val::I32(a.count_ones() as i32)),
                    Operator::I32Add => bin!(i32, |a: i32, b: i32| Val::I32(a.wrapping_add(b))),
                    Operator::I32Sub => bin!(i32, |a: i32, b: i32| Val::I32(a.wrapping_sub(b))),
                    Operator::I32Mul => bin!(i32, |a: i32, b: i32| Val::I32(a.wrapping_mul(b))),
                    Operator::I32DivS | Operator::I32DivU | Operator::I32RemS | Operator::I32RemU => {
                        let (b, ob) = m.pop_traced();
                        let (a, oa) = m.pop_traced();
                        let (a, b) = (a.i32(), b.i32());
                        if b == 0 {
                            return trap(TrapClass::IntegerDivisionByZero);
                        }
                        let origin = oa.or(ob);
                        m.stack.push_from(
                            Val::I32(match code.ops[at] {
                                Operator::I32DivS if a == i32::MIN && b == -1 => {
                                    return trap(TrapClass::IntegerOverflow);
                                }
                                Operator::I32DivS => a / b,
                                Operator::I32DivU => ((a as u32) / (b as u32)) as i32,
                                Operator::I32RemS => a.wrapping_rem(b),
                                _ => ((a as u32) % (b as u32)) as i32,
                            }),
                            origin,
                        );
                    }
                    Operator::I32And => bin!(i32, |a: i32, b: i32| Val::I32(a & b)),
                    Operator::I32Or => bin!(i32, |a: i32, b: i32| Val::I32(a | b)),
                    Operator::I32Xor => bin!(i32, |a: i32, b: i32| Val::I32(a ^ b)),
                    Operator::I32Shl => bin!(i32, |a: i32, b: i32| Val::I32(a.wrapping_shl(b as u32))),
                    Operator::I32ShrS => bin!(i32, |a: i32, b: i32| Val::I32(a.wrapping_shr(b as u32))),
                    Operator::I32ShrU => bin!(i32, |a: i32, b: i32| Val::I32((a as u32).wrapping_shr(b as u32) as i32)),
                    Operator::I32Rotl => bin!(i32, |a: i32, b: i32| Val::I32(a.rotate_left(b as u32 % 32))),
                    Operator::I32Rotr => bin!(i32, |a: i32, b: i32| Val::I32(a.rotate_right(b as u32 % 32))),

                    // i64.
                    Operator::I64Eqz => un!(i64, |a: i64| Val::I32((a == 0) as i32)),
                    Operator::I64Eq => bin!(i64, |a: i64, b: i64| Val::I32((a == b) as i32)),
                    Operator::I64Ne => bin!(i64, |a: i64, b: i64| Val::I32((a != b) as i32)),
                    Operator::I64LtS => bin!(i64, |a: i64, b: i64| Val::I32((a < b) as i32)),
                    Operator::I64LtU => bin!(i64, |a: i64, b: i64| Val::I32(((a as u64) < (b as u64)) as i32)),
                    Operator::I64GtS => bin!(i64, |a: i64, b: i64| Val::I32((a > b) as i32)),
                    Operator::I64GtU => bin!(i64, |a: i64, b: i64| Val::I32(((a as u64) > (b as u64)) as i32)),
                    Operator::I64LeS => bin!(i64, |a: i64, b: i64| Val::I32((a <= b) as i32)),
                    Operator::I64LeU => bin!(i64, |a: i64, b: i64| Val::I32(((a as u64) <= (b as u64)) as i32)),
                    Operator::I64GeS => bin!(i64, |a: i64, b: i64| Val::I32((a >= b) as i32)),
                    Operator::I64GeU => bin!(i64, |a: i64, b: i64| Val::I32(((a as u64) >= (b as u64)) as i32)),
                    Operator::I64Clz => un!(i64, |a: i64| Val::I64(a.leading_zeros() as i64)),
                    Operator::I64Ctz => un!(i64, |a: i64| Val::I64(a.trailing_zeros() as i64)),
                    Operator::I64Popcnt => un!(i64, |a: i64| Val::I64(a.count_ones() as i64)),
                    Operator::I64Add => bin!(i64, |a: i64, b: i64| Val::I64(a.wrapping_add(b))),
                    Operator::I64Sub => bin!(i64, |a: i64, b: i64| Val::I64(a.wrapping_sub(b))),
                    Operator::I64Mul => bin!(i64, |a: i64, b: i64| Val::I64(a.wrapping_mul(b))),
                    Operator::I64DivS | Operator::I64DivU | Operator::I64RemS | Operator::I64RemU => {
                        let (b, ob) = m.pop_traced();
                        let (a, oa) = m.pop_traced();
                        let (a, b) = (a.i64(), b.i64());
                        if b == 0 {
                            return trap(TrapClass::IntegerDivisionByZero);
                        }
                        let origin = oa.or(ob);
                        m.stack.push_from(
                            Val::I64(match code.ops[at] {
                                Operator::I64DivS if a == i64::MIN && b == -1 => {
                                    return trap(TrapClass::IntegerOverflow);
                                }
                                Operator::I64DivS => a / b,
                                Operator::I64DivU => ((a as u64) / (b as u64)) as i64,
                                Operator::I64RemS => a.wrapping_rem(b),
                                _ => ((a as u64) % (b as u64)) as i64,
                            }),
                            origin,
                        );
                    }
                    Operator::I64And => bin!(i64, |a: i64, b: i64| Val::I64(a & b)),
                    Operator::I64Or => bin!(i64, |a: i64, b: i64| Val::I64(a | b)),
                    Operator::I64Xor => bin!(i64, |a: i64, b: i64| Val::I64(a ^ b)),
                    Operator::I64Shl => bin!(i64, |a: i64, b: i64| Val::I64(a.wrapping_shl(b as u32))),
                    Operator::I64ShrS => bin!(i64, |a: i64, b: i64| Val::I64(a.wrapping_shr(b as u32))),
                    Operator::I64ShrU => bin!(i64, |a: i64, b: i64| Val::I64((a as u64).wrapping_shr(b as u32) as i64)),
                    Operator::I64Rotl => bin!(i64, |a: i64, b: i64| Val::I64(a.rotate_left((b as u64 % 64) as u32))),
                    Operator::I64Rotr => bin!(i64, |a: i64, b: i64| Val::I64(a.rotate_right((b as u64 % 64) as u32))),

                    // f32.
                    Operator::F32Eq => bin!(f32, |a: f32, b: f32| Val::I32((a == b) as i32)),
                    Operator::F32Ne => bin!(f32, |a: f32, b: f32| Val::I32((a != b) as i32)),
                    Operator::F32Lt => bin!(f32, |a: f32, b: f32| Val::I32((a < b) as i32)),
                    Operator::F32Gt => bin!(f32, |a: f32, b: f32| Val::I32((a > b) as i32)),
                    Operator::F32Le => bin!(f32, |a: f32, b: f32| Val::I32((a <= b) as i32)),
                    Operator::F32Ge => bin!(f32, |a: f32, b: f32| Val::I32((a >= b) as i32)),
                    Operator::F32Abs => un!(f32, |a: f32| Val::F32(a.to_bits() & 0x7fff_ffff)),
                    Operator::F32Neg => un!(f32, |a: f32| Val::F32(a.to_bits() ^ 0x8000_0000)),
                    Operator::F32Ceil => un!(f32, |a: f32| f32v(quiet32(a).ceil())),
                    Operator::F32Floor => un!(f32, |a: f32| f32v(quiet32(a).floor())),
                    Operator::F32Trunc => un!(f32, |a: f32| f32v(quiet32(a).trunc())),
                    Operator::F32Nearest => un!(f32, |a: f32| f32v(quiet32(a).round_ties_even())),
                    Operator::F32Sqrt => un!(f32, |a: f32| f32v(a.sqrt())),
                    Operator::F32Add => bin!(f32, |a: f32, b: f32| f32v(a + b)),
                    Operator::F32Sub => bin!(f32, |a: f32, b: f32| f32v(a - b)),
                    Operator::F32Mul => bin!(f32, |a: f32, b: f32| f32v(a * b)),
                    Operator::F32Div => bin!(f32, |a: f32, b: f32| f32v(a / b)),
                    Operator::F32Min => bin!(f32, |a: f32, b: f32| f32v(fminmax32(a, b, true))),
                    Operator::F32Max => bin!(f32, |a: f32, b: f32| f32v(fminmax32(a, b, false))),
                    Operator::F32Copysign => {
                        bin!(f32, |a: f32, b: f32| Val::F32((a.to_bits() & 0x7fff_ffff) | (b.to_bits() & 0x8000_0000)))
                    }

                    // f64.
                    Operator::F64Eq => bin!(f64, |a: f64, b: f64| Val::I32((a == b) as i32)),
                    Operator::F64Ne => bin!(f64, |a: f64, b: f64| Val::I32((a != b) as i32)),
                    Operator::F64Lt => bin!(f64, |a: f64, b: f64| Val::I32((a < b) as i32)),
                    Operator::F64Gt => bin!(f64, |a: f64, b: f64| Val::I32((a > b) as i32)),
                    Operator::F64Le => bin!(f64, |a: f64, b: f64| Val::I32((a <= b) as i32)),
                    Operator::F64Ge => bin!(f64, |a: f64, b: f64| Val::I32((a >= b) as i32)),
                    Operator::F64Abs => un!(f64, |a: f64| Val::F64(a.to_bits() & 0x7fff_ffff_ffff_ffff)),
                    Operator::F64Neg => un!(f64, |a: f64| Val::F64(a.to_bits() ^ 0x8000_0000_0000_0000)),
                    Operator::F64Ceil => un!(f64, |a: f64| f64v(quiet64(a).ceil())),
                    Operator::F64Floor => un!(f64, |a: f64| f64v(quiet64(a).floor())),
                    Operator::F64Trunc => un!(f64, |a: f64| f64v(quiet64(a).trunc())),
                    Operator::F64Nearest => un!(f64, |a: f64| f64v(quiet64(a).round_ties_even())),
                    Operator::F64Sqrt => un!(f64, |a: f64| f64v(a.sqrt())),
                    Operator::F64Add => bin!(f64, |a: f64, b: f64| f64v(a + b)),
                    Operator::F64Sub => bin!(f64, |a: f64, b: f64| f64v(a - b)),
                    Operator::F64Mul => bin!(f64, |a: f64, b: f64| f64v(a * b)),
                    Operator::F64Div => bin!(f64, |a: f64, b: f64| f64v(a / b)),
                    Operator::F64Min => bin!(f64, |a: f64, b: f64| f64v(fminmax64(a, b, true))),
                    Operator::F64Max => bin!(f64, |a: f64, b: f64| f64v(fminmax64(a, b, false))),
                    Operator::F64Copysign => bin!(f64, |a: f64, b: f64| Val::F64(
                        (a.to_bits() & 0x7fff_ffff_ffff_ffff) | (b.to_bits() & 0x8000_0000_0000_0000)
                    )),

                    // Conversions.
                    Operator::I32WrapI64 => un!(i64, |a: i64| Val::I32(a as i32)),
                    Operator::I32TruncF32S => {
                        let (a, origin) = m.pop_traced();
                        let v = Val::I32(i32_trunc_s(a.f32() as f64)?);
                        m.stack.push_from(v, origin)
                    }
                    Operator::I32TruncF32U => {
                        let (a, origin) = m.pop_traced();
                        let v = Val::I32(i32_trunc_u(a.f32() as f64)?);
                        m.stack.push_from(v, origin)
                    }
                    Operator::I32TruncF64S => {
                        let (a, origin) = m.pop_traced();
                        let v = Val::I32(i32_trunc_s(a.f64())?);
                        m.stack.push_from(v, origin)
                    }
                    Operator::I32TruncF64U => {
                        let (a, origin) = m.pop_traced();
                        let v = Val::I32(i32_trunc_u(a.f64())?);
                        m.stack.push_from(v, origin)
                    }
                    Operator::I64ExtendI32S => un!(i32, |a: i32| Val::I64(a as i64)),
                    Operator::I64ExtendI32U => un!(i32, |a: i32| Val::I64(a as u32 as i64)),
                    Operator::I64TruncF32S => {
                        let (a, origin) = m.pop_traced();
                        let v = Val::I64(i64_trunc_s(a.f32() as f64)?);
                        m.stack.push_from(v, origin)
                    }
                    Operator::I64TruncF32U => {
                        let (a, origin) = m.pop_traced();
                        let v = Val::I64(i64_trunc_u(a.f32() as f64)?);
                        m.stack.push_from(v, origin)
                    }
                    Operator::I64TruncF64S => {
                        let (a, origin) = m.pop_traced();
                        let v = Val::I64(i64_trunc_s(a.f64())?);
                        m.stack.push_from(v, origin)
                    }
                    Operator::I64TruncF64U => {
                        let (a, origin) = m.pop_traced();
                        let v = Val::I64(i64_trunc_u(a.f64())?);
                        m.stack.push_from(v, origin)
                    }
                    Operator::F32ConvertI32S => un!(i32, |a: i32| f32v(a as f32)),
                    Operator::F32ConvertI32U => un!(i32, |a: i32| f32v(a as u32 as f32)),
                    Operator::F32ConvertI64S => un!(i64, |a: i64| f32v(a as f32)),
                    Operator::F32ConvertI64U => un!(i64, |a: i64| f32v(a as u64 as f32)),
                    Operator::F32DemoteF64 => un!(f64, |a: f64| f32v(a as f32)),
                    Operator::F64ConvertI32S => un!(i32, |a: i32| f64v(a as f64)),
                    Operator::F64ConvertI32U => un!(i32, |a: i32| f64v(a as u32 as f64)),
                    Operator::F64ConvertI64S => un!(i64, |a: i64| f64v(a as f64)),
                    Operator::F64ConvertI64U => un!(i64, |a: i64| f64v(a as u64 as f64)),
                    Operator::F64PromoteF32 => un!(f32, |a: f32| f64v(a as f64)),
                    Operator::I32ReinterpretF32 => un!(f32, |a: f32| Val::I32(a.to_bits() as i32)),
                    Operator::I64ReinterpretF64 => un!(f64, |a: f64| Val::I64(a.to_bits() as i64)),
                    Operator::F32ReinterpretI32 => un!(i32, |a: i32| Val::F32(a as u32)),
                    Operator::F64ReinterpretI64 => un!(i64, |a: i64| Val::F64(a as u64)),
                    Operator::I32Extend8S => un!(i32, |a: i32| Val::I32(a as i8 as i32)),
                    Operator::I32Extend16S => un!(i32, |a: i32| Val::I32(a as i16 as i32)),
                    Operator::I64Extend8S => un!(i64, |a: i64| Val::I64(a as i8 as i64)),
                    Operator::I64Extend16S => un!(i64, |a: i64| Val::I64(a as i16 as i64)),
                    Operator::I64Extend32S => un!(i64, |a: i64| Val::I64(a as i32 as i64)),
                    Operator::I32TruncSatF32S => un!(f32, |a: f32| Val::I32(a as i32)),
                    Operator::I32TruncSatF32U => un!(f32, |a: f32| Val::I32(a as u32 as i32)),
                    Operator::I32TruncSatF64S => un!(f64, |a: f64| Val::I32(a as i32)),
                    Operator::I32TruncSatF64U => un!(f64, |a: f64| Val::I32(a as u32 as i32)),
                    Operator::I64TruncSatF32S => un!(f32, |a: f32| Val::I64(a as i64)),
                    Operator::I64TruncSatF32U => un!(f32, |a: f32| Val::I64(a as u64 as i64)),
                    Operator::I64TruncSatF64S => un!(f64, |a: f64| Val::I64(a as i64)),
                    Operator::I64TruncSatF64U => un!(f64, |a: f64| Val::I64(a as u64 as i64)),

                    // References.
                    Operator::RefNull { .. } => m.stack.push(Val::Ref(Ref::Null)),
                    Operator::RefIsNull => un!(reference, |r: Ref| Val::I32((r == Ref::Null) as i32)),
                    Operator::RefFunc { function_index } => {
                        let f = self.insts[ii as usize].funcs[*function_index as usize];
                        m.stack.push(Val::Ref(Ref::Func(f)));
                    }
                    Operator::RefEq => bin!(reference, |a: Ref, b: Ref| Val::I32((a == b) as i32)),
                    Operator::RefAsNonNull => {
                        let r = pop!().reference();
                        if r == Ref::Null {
                            return trap(TrapClass::NullReference);
                        }
                        m.stack.push(Val::Ref(r));
                    }
                    Operator::RefTestNonNull { hty } | Operator::RefTestNullable { hty } => {
                        let r = pop!().reference();
                        let nullable = matches!(code.ops[at], Operator::RefTestNullable { .. });
                        let hit = self.ref_matches(r, nullable, self.heap(types, *hty));
                        m.stack.push(Val::I32(hit as i32));
                    }
                    Operator::RefCastNonNull { hty } | Operator::RefCastNullable { hty } => {
                        let r = pop!().reference();
                        let nullable = matches!(code.ops[at], Operator::RefCastNullable { .. });
                        if !self.ref_matches(r, nullable, self.heap(types, *hty)) {
                            return trap(TrapClass::CastFailure);
                        }
                        m.stack.push(Val::Ref(r));
                    }
                    Operator::AnyConvertExtern => un!(reference, |r: Ref| Val::Ref(any_convert_extern(r))),
                    Operator::ExternConvertAny => un!(reference, |r: Ref| Val::Ref(extern_convert_any(r))),
                    Operator::RefI31 => un!(i32, |a: i32| Val::Ref(Ref::Any(AnyRef::I31(a as u32 & 0x7fff_ffff)))),
                    Operator::I31GetS | Operator::I31GetU => {
                        let v = match pop!().reference() {
                            Ref::Any(AnyRef::I31(v)) => v,
                            Ref::Null => return trap(TrapClass::NullReference),
                            other => unreachable!("validated code: i31.get of {other:?}"),
                        };
                        let signed = matches!(code.ops[at], Operator::I31GetS);
                        m.stack.push(Val::I32(if signed { ((v << 1) as i32) >> 1 } else { v as i32 }));
                    }

                    // Structs.
                    Operator::StructNew { struct_type_index } => {
                        let t = types[*struct_type_index as usize];
                        let n = self.types.struct_fields(t).len();
                        let vals = m.pop_n(n);
                        let r = self.struct_new(t, vals)?;
                        m.stack.push(Val::Ref(r));
                    }
                    Operator::StructNewDefault { struct_type_index } => {
                        let t = types[*struct_type_index as usize];
                        let vals = self.types.struct_fields(t).iter().map(|f| default_val(unpacked(f))).collect();
                        let r = self.struct_new(t, vals)?;
                        m.stack.push(Val::Ref(r));
                    }
                    Operator::StructGet { struct_type_index, field_index }
                    | Operator::StructGetS { struct_type_index, field_index }
                    | Operator::StructGetU { struct_type_index, field_index } => {
                        let o = struct_of(pop!().reference())?;
                        let storage =
                            self.types.struct_fields(types[*struct_type_index as usize])[*field_index as usize].storage;
                        let v = self.structs[o as usize].vals[*field_index as usize];
                        m.stack.push(extend(storage, v, matches!(code.ops[at], Operator::StructGetS { .. })));
                    }
                    Operator::StructSet { struct_type_index, field_index } => {
                        let v = pop!();
                        let o = struct_of(pop!().reference())?;
                        let storage =
                            self.types.struct_fields(types[*struct_type_index as usize])[*field_index as usize].storage;
                        self.structs[o as usize].vals[*field_index as usize] = pack(storage, v);
                    }

                    // Arrays.
                    Operator::ArrayNew { array_type_index } => {
                        let len = pop!().i32() as u32;
                        let v = pop!();
                        let r = self.array_new(types[*array_type_index as usize], v, len)?;
                        m.stack.push(Val::Ref(r));
                    }
                    Operator::ArrayNewDefault { array_type_index } => {
                        let t = types[*array_type_index as usize];
                        let len = pop!().i32() as u32;
                        let v = default_val(unpacked(&self.types.array_field(t)));
                        let r = self.array_new(t, v, len)?;
                        m.stack.push(Val::Ref(r));
                    }
                    Operator::ArrayNewFixed { array_type_index, array_size } => {
                        let vals = m.pop_n(*array_size as usize);
                        let r = self.array_from(types[*array_type_index as usize], vals)?;
                        m.stack.push(Val::Ref(r));
                    }
                    Operator::ArrayNewData { array_type_index, array_data_index } => {
                        let t = types[*array_type_index as usize];
                        let n = pop!().i32() as u32 as usize;
                        let s = pop!().i32() as u32 as usize;
                        let storage = self.types.array_field(t).storage;
                        let size = storage_size(storage);
                        let seg = self.insts[ii as usize].datas[*array_data_index as usize];
                        if (s as u64) + (n as u64) * (size as u64) > seg.len() as u64 {
                            return trap(TrapClass::MemoryOutOfBounds);
                        }
                        let vals =
                            (0..n).map(|i| read_storage(storage, &seg[s + i * size..s + (i + 1) * size])).collect();
                        let r = self.array_from(t, vals)?;
                        m.stack.push(Val::Ref(r));
                    }
                    Operator::ArrayNewElem { array_type_index, array_elem_index } => {
                        let t = types[*array_type_index as usize];
                        let n = pop!().i32() as u32 as usize;
                        let s = pop!().i32() as u32 as usize;
                        let seg = &self.insts[ii as usize].elems[*array_elem_index as usize];
                        if s + n > seg.len() {
                            return trap(TrapClass::TableOutOfBounds);
                        }
                        let vals = seg[s..s + n].iter().map(|r| Val::Ref(*r)).collect();
                        let r = self.array_from(t, vals)?;
                        m.stack.push(Val::Ref(r));
                    }
                    Operator::ArrayGet { array_type_index }
                    | Operator::ArrayGetS { array_type_index }
                    | Operator::ArrayGetU { array_type_index } => {
                        let i = pop!().i32() as u32 as usize;
                        let o = array_of(pop!().reference())?;
                        let storage = self.types.array_field(types[*array_type_index as usize]).storage;
                        let Some(&v) = self.arrays[o as usize].vals.get(i) else {
                            return trap(TrapClass::ArrayOutOfBounds);
                        };
                        m.stack.push(extend(storage, v, matches!(code.ops[at], Operator::ArrayGetS { .. })));
                    }
                    Operator::ArraySet { array_type_index } => {
                        let v = pop!();
                        let i = pop!().i32() as u32 as usize;
                        let o = array_of(pop!().reference())?;
                        let storage = self.types.array_field(types[*array_type_index as usize]).storage;
                        let Some(slot) = self.arrays[o as usize].vals.get_mut(i) else {
                            return trap(TrapClass::ArrayOutOfBounds);
                        };
                        *slot = pack(storage, v);
                    }
                    Operator::ArrayLen => {
                        let o = array_of(pop!().reference())?;
                        m.stack.push(Val::I32(self.arrays[o as usize].vals.len() as i32));
                    }
                    Operator::ArrayFill { array_type_index } => {
                        let n = pop!().i32() as u32 as usize;
                        let v = pop!();
                        let d = pop!().i32() as u32 as usize;
                        let o = array_of(pop!().reference())?;
                        let storage = self.types.array_field(types[*array_type_index as usize]).storage;
                        let vals = &mut self.arrays[o as usize].vals;
                        if d + n > vals.len() {
                            return trap(TrapClass::ArrayOutOfBounds);
                        }
                        vals[d..d + n].fill(pack(storage, v));
                    }
                    Operator::ArrayCopy { .. } => {
                        let n = pop!().i32() as u32 as usize;
                        let s = pop!().i32() as u32 as usize;
                        let src = pop!().reference();
                        let d = pop!().i32() as u32 as usize;
                        let dst = pop!().reference();
                        let dst = array_of(dst)?;
                        let src = array_of(src)?;
                        if s + n > self.arrays[src as usize].vals.len() || d + n > self.arrays[dst as usize].vals.len()
                        {
                            return trap(TrapClass::ArrayOutOfBounds);
                        }
                        let items = self.arrays[src as usize].vals[s..s + n].to_vec();
                        self.arrays[dst as usize].vals[d..d + n].copy_from_slice(&items);
                    }
                    Operator::ArrayInitData { array_type_index, array_data_index } => {
                        let n = pop!().i32() as u32 as usize;
                        let s = pop!().i32() as u32 as usize;
                        let d = pop!().i32() as u32 as usize;
                        let o = array_of(pop!().reference())?;
                        let storage = self.types.array_field(types[*array_type_index as usize]).storage;
                        let size = storage_size(storage);
                        if d + n > self.arrays[o as usize].vals.len() {
                            return trap(TrapClass::ArrayOutOfBounds);
                        }
                        let seg = self.insts[ii as usize].datas[*array_data_index as usize];
                        if (s as u64) + (n as u64) * (size as u64) > seg.len() as u64 {
                            return trap(TrapClass::MemoryOutOfBounds);
                        }
                        for i in 0..n {
                            self.arrays[o as usize].vals[d + i] =
                                read_storage(storage, &seg[s + i * size..s + (i + 1) * size]);
                        }
                    }
                    Operator::ArrayInitElem { array_elem_index, .. } => {
                        let n = pop!().i32() as u32 as usize;
                        let s = pop!().i32() as u32 as usize;
                        let d = pop!().i32() as u32 as usize;
                        let o = array_of(pop!().reference())?;
                        if d + n > self.arrays[o as usize].vals.len() {
                            return trap(TrapClass::ArrayOutOfBounds);
                        }
                        let seg = &self.insts[ii as usize].elems[*array_elem_index as usize];
                        if s + n > seg.len() {
                            return trap(TrapClass::TableOutOfBounds);
                        }
                        let items: Vec<Val> = seg[s..s + n].iter().map(|r| Val::Ref(*r)).collect();
                        self.arrays[o as usize].vals[d..d + n].copy_from_slice(&items);
                    }

                    // SIMD memory access.
                    Operator::V128Load { memarg } => load!(memarg, 16, |b| Val::V128(u128::from_le_bytes(b))),
                    op @ (Operator::V128Load8x8S { memarg }
                    | Operator::V128Load8x8U { memarg }
                    | Operator::V128Load16x4S { memarg }
                    | Operator::V128Load16x4U { memarg }
                    | Operator::V128Load32x2S { memarg }
                    | Operator::V128Load32x2U { memarg }) => {
                        load!(memarg, 8, |b| Val::V128(simd::load_extend(op, b)))
                    }
                    Operator::V128Load8Splat { memarg } => {
                        load!(memarg, 1, |b: [u8; 1]| Val::V128(simd::splat_bytes(&b)))
                    }
                    Operator::V128Load16Splat { memarg } => {
                        load!(memarg, 2, |b: [u8; 2]| Val::V128(simd::splat_bytes(&b)))
                    }
                    Operator::V128Load32Splat { memarg } => {
                        load!(memarg, 4, |b: [u8; 4]| Val::V128(simd::splat_bytes(&b)))
                    }
                    Operator::V128Load64Splat { memarg } => {
                        load!(memarg, 8, |b: [u8; 8]| Val::V128(simd::splat_bytes(&b)))
                    }
                    Operator::V128Load32Zero { memarg } => {
                        load!(memarg, 4, |b| Val::V128(u32::from_le_bytes(b) as u128))
                    }
                    Operator::V128Load64Zero { memarg } => {
                        load!(memarg, 8, |b| Val::V128(u64::from_le_bytes(b) as u128))
                    }
                    Operator::V128Store { memarg } => store!(memarg, v128, 16, |v: u128| v.to_le_bytes()),
                    op @ (Operator::V128Load8Lane { memarg, lane }
                    | Operator::V128Load16Lane { memarg, lane }
                    | Operator::V128Load32Lane { memarg, lane }
                    | Operator::V128Load64Lane { memarg, lane }
                    | Operator::V128Store8Lane { memarg, lane }
                    | Operator::V128Store16Lane { memarg, lane }
                    | Operator::V128Store32Lane { memarg, lane }
                    | Operator::V128Store64Lane { memarg, lane }) => {
                        let w = match op {
                            Operator::V128Load8Lane { .. } | Operator::V128Store8Lane { .. } => 1,
                            Operator::V128Load16Lane { .. } | Operator::V128Store16Lane { .. } => 2,
                            Operator::V128Load32Lane { .. } | Operator::V128Store32Lane { .. } => 4,
                            _ => 8,
                        };
                        let v = pop!().v128();
                        let base = pop!().i32();
                        let mi = self.mem_index(ii, linear_memory(memarg));
                        let ea = self.address(mi, base, memarg.offset, w as u64)?;
                        let data = &mut self.mems[mi].data[ea..ea + w];
                        match op {
                            Operator::V128Load8Lane { .. }
                            | Operator::V128Load16Lane { .. }
                            | Operator::V128Load32Lane { .. }
                            | Operator::V128Load64Lane { .. } => {
                                m.stack.push(Val::V128(simd::with_lane(v, *lane, data)));
                            }
                            _ => data.copy_from_slice(&simd::lane_bytes(v, *lane, w)),
                        }
                    }

                    other => match simd::operands(other) {
                        Some(n) => {
                            let args = m.pop_n(n);
                            m.stack.push(simd::eval(other, &args));
                        }
                        None => {
                            return Err(Stop::Error(format!("instruction outside the interpreter's scope: {other:?}")));
                        }
                    },
                }
            }
        }
        Ok(())
    }
}

/// The linear memory a load or store addresses. Accesses to GC array
/// payloads through a `MemArg` belong to a proposal the validator rejects.
fn linear_memory(arg: &wasmparser::MemArg) -> u32 {
    match arg.target {
        wasmparser::MemArgTarget::Memory(m) => m,
        wasmparser::MemArgTarget::Array(_) => unreachable!("rejected by validation"),
    }
}
