//! Programs to CLIF with cranelift-frontend, compiled with cranelift-jit.

use super::program::{CompileConfig, Program, REFS, Stmt, TAG, Tail};
use super::runtime::{CodeInfo, host_observe, host_safepoint};
use anyhow::{Context, Result};
use cranelift_codegen::ir::{self, AbiParam, InstBuilder, UserFuncName, condcodes::IntCC, types::I64};
use cranelift_codegen::isa::CallConv;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_module::{FuncId, Linkage, Module};

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
    pub(super) module: cranelift_jit::JITModule,
    pub(super) entry: FuncId,
    pub(super) code: Vec<CodeInfo>,
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
