//! Calls through Wasmtime's typed function API (`Func::typed`,
//! `TypedFunc::call`), beside the untyped `Func::call`: the typed path moves
//! arguments and results, GC references included, by its own code
//! (`WasmTy::store` / `load` rather than `Val`s), which an embedder's
//! rooting bug can hide in. A call takes it when its signature is one the
//! harness has Rust types for: at most one parameter and one result, each
//! `i32`, `i64`, `anyref` or `externref` (nullable: a non-null reference
//! type, or a concrete one as a parameter, fails the typed check and the
//! call goes untyped).

use wasmtime::{AnyRef, AsContextMut, ExternRef, Func, Rooted, Val, WasmParams, WasmResults};

/// A Rust type a typed call can pass or return.
trait Typed: Sized {
    fn from_val(v: &Val) -> Option<Self>;
    fn into_val(self) -> Val;
}

impl Typed for i32 {
    fn from_val(v: &Val) -> Option<Self> {
        v.i32()
    }
    fn into_val(self) -> Val {
        Val::I32(self)
    }
}

impl Typed for i64 {
    fn from_val(v: &Val) -> Option<Self> {
        v.i64()
    }
    fn into_val(self) -> Val {
        Val::I64(self)
    }
}

impl Typed for Option<Rooted<AnyRef>> {
    fn from_val(v: &Val) -> Option<Self> {
        match v {
            Val::AnyRef(r) => Some(*r),
            _ => None,
        }
    }
    fn into_val(self) -> Val {
        Val::AnyRef(self)
    }
}

impl Typed for Option<Rooted<ExternRef>> {
    fn from_val(v: &Val) -> Option<Self> {
        match v {
            Val::ExternRef(r) => Some(*r),
            _ => None,
        }
    }
    fn into_val(self) -> Val {
        Val::ExternRef(self)
    }
}

/// The kinds a typed call handles, by Wasm value.
#[derive(Clone, Copy)]
enum Kind {
    I32,
    I64,
    Any,
    Extern,
}

fn kind_of_val(v: &Val) -> Option<Kind> {
    match v {
        Val::I32(_) => Some(Kind::I32),
        Val::I64(_) => Some(Kind::I64),
        Val::AnyRef(_) => Some(Kind::Any),
        Val::ExternRef(_) => Some(Kind::Extern),
        _ => None,
    }
}

fn kind_of_type(t: &wasmtime::ValType) -> Option<Kind> {
    use wasmtime::ValType as V;
    match t {
        V::I32 => Some(Kind::I32),
        V::I64 => Some(Kind::I64),
        V::Ref(r) if r.heap_type().top().is_any() => Some(Kind::Any),
        V::Ref(r) if r.heap_type().top().is_extern() => Some(Kind::Extern),
        _ => None,
    }
}

/// Calls `func` with `args` through the typed API and returns its results,
/// or `None` when the signature is not one it handles (the caller then
/// calls untyped).
pub fn call(store: &mut impl AsContextMut, func: &Func, args: &[Val]) -> Option<wasmtime::Result<Vec<Val>>> {
    let ty = func.ty(&*store);
    let result = match ty.results().collect::<Vec<_>>().as_slice() {
        [] => None,
        [one] => Some(kind_of_type(one)?),
        _ => return None,
    };
    let param = match args {
        [] => None,
        [one] => Some((kind_of_val(one)?, one)),
        _ => return None,
    };
    // One arm per (parameter, result) pair of kinds.
    macro_rules! with_result {
        ($p:ty, $params:expr) => {
            match result {
                None => via::<$p, ()>(store, func, $params, |()| vec![]),
                Some(Kind::I32) => via::<$p, i32>(store, func, $params, |r| vec![r.into_val()]),
                Some(Kind::I64) => via::<$p, i64>(store, func, $params, |r| vec![r.into_val()]),
                Some(Kind::Any) => via::<$p, Option<Rooted<AnyRef>>>(store, func, $params, |r| vec![r.into_val()]),
                Some(Kind::Extern) => {
                    via::<$p, Option<Rooted<ExternRef>>>(store, func, $params, |r| vec![r.into_val()])
                }
            }
        };
    }
    match param {
        None => with_result!((), ()),
        Some((Kind::I32, v)) => with_result!(i32, i32::from_val(v)?),
        Some((Kind::I64, v)) => with_result!(i64, i64::from_val(v)?),
        Some((Kind::Any, v)) => with_result!(Option<Rooted<AnyRef>>, Option::<Rooted<AnyRef>>::from_val(v)?),
        Some((Kind::Extern, v)) => {
            with_result!(Option<Rooted<ExternRef>>, Option::<Rooted<ExternRef>>::from_val(v)?)
        }
    }
}

/// The typed call itself: `None` when `func` does not have type `P -> R`.
fn via<P: WasmParams, R: WasmResults>(
    store: &mut impl AsContextMut,
    func: &Func,
    params: P,
    results: impl FnOnce(R) -> Vec<Val>,
) -> Option<wasmtime::Result<Vec<Val>>> {
    let typed = func.typed::<P, R>(&*store).ok()?;
    Some(typed.call(&mut *store, params).map(results))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A typed call returns what the untyped one does, references included;
    /// a signature it has no Rust types for is left to the untyped call.
    #[test]
    fn typed_calls_agree_with_untyped_ones() {
        let mut config = wasmtime::Config::new();
        config.wasm_gc(true).wasm_function_references(true);
        let engine = wasmtime::Engine::new(&config).unwrap();
        let module = wasmtime::Module::new(
            &engine,
            r#"(module
                 (type $s (struct (field i32)))
                 (func (export "id") (param anyref) (result anyref) (local.get 0))
                 (func (export "make") (result anyref) (struct.new $s (i32.const 7)))
                 (func (export "add") (param i64) (result i64) (i64.add (local.get 0) (i64.const 1)))
                 (func (export "two") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))"#,
        )
        .unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let func = |store: &mut wasmtime::Store<()>, name: &str| instance.get_func(&mut *store, name).unwrap();
        let make = func(&mut store, "make");
        let made = call(&mut store, &make, &[]).expect("() -> anyref is typed").unwrap();
        let Val::AnyRef(Some(object)) = made[0] else { panic!("{made:?}") };
        let id = func(&mut store, "id");
        let back = call(&mut store, &id, &made).expect("anyref -> anyref is typed").unwrap();
        let Val::AnyRef(Some(same)) = back[0] else { panic!("{back:?}") };
        assert!(Rooted::ref_eq(&store, &object, &same).unwrap());
        let add = func(&mut store, "add");
        let sum = call(&mut store, &add, &[Val::I64(41)]).expect("i64 -> i64 is typed").unwrap();
        assert!(matches!(sum[..], [Val::I64(42)]));
        let two = func(&mut store, "two");
        assert!(call(&mut store, &two, &[Val::I32(1), Val::I32(2)]).is_none(), "two parameters stay untyped");
    }
}
