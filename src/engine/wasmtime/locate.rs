//! Where in the Wasm code a failure detected by compiled code happened.
//!
//! An inline GC check that fails in compiled code traps; with debug
//! assertions Wasmtime then panics ("BUG: gc heap corruption detected in
//! compiled code") before the embedder sees the trap or its Wasm backtrace,
//! and the Rust frames of that panic name only Wasmtime's trap plumbing. So
//! every such failure would share one identity. Each store gets a signal
//! handler (run by Wasmtime before its own trap handling, declining to handle
//! anything) that records the faulting program counter; a panic hook then maps
//! it through the running module's address map to the Wasm operator at the
//! fault, which becomes part of the crash's identity. Native code only:
//! Pulley raises no signal, and reports no location, so the same failure on
//! Pulley has a signature without the operator.
//!
//! Panics in libcalls (collector asserts) are left as they are: the innermost
//! Wasm frame's operator is on the native stack there, but not on Pulley's,
//! and taking it would split one such bug into a native and a Pulley
//! signature where their Rust frames agree today.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use wasmtime::{Module, Store};

/// The program counter of the last signal raised in Wasm code of a watched
/// store in this process; 0 when none since the last call began.
static LAST_PC: AtomicUsize = AtomicUsize::new(0);

/// The module being run, with its bytes (for decoding the operator).
static RUNNING: Mutex<Option<(Module, Arc<Vec<u8>>)>> = Mutex::new(None);

/// Records the faulting pc of every signal `store`'s Wasm code raises.
pub fn watch<T>(store: &mut Store<T>) {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        use wasmtime::unix::StoreExt;
        // SAFETY: the handler only reads the signal context and stores one
        // word (async-signal-safe), and declines the signal so Wasmtime's
        // own trap handling goes on unchanged.
        unsafe {
            store.set_signal_handler(|_signum, _info, context| {
                if !context.is_null() {
                    let uc = context as *const libc::ucontext_t;
                    let pc = (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] as usize;
                    LAST_PC.store(pc, Ordering::Relaxed);
                }
                false
            });
        }
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    let _ = store;
}

/// `module` (compiled from `wasm`) runs from now on.
pub fn running(module: &Module, wasm: &[u8]) {
    LAST_PC.store(0, Ordering::Relaxed);
    if let Ok(mut running) = RUNNING.lock() {
        *running = Some((module.clone(), Arc::new(wasm.to_vec())));
    }
}

/// A call begins: a fault recorded before it is not this call's.
pub fn call_begins() {
    LAST_PC.store(0, Ordering::Relaxed);
}

/// The Wasm operator at the last recorded fault, e.g. `RefTestNonNull`,
/// when the fault was in the running module's code.
pub fn faulting_operator() -> Option<String> {
    let pc = LAST_PC.load(Ordering::Relaxed);
    if pc == 0 {
        return None;
    }
    let running = RUNNING.try_lock().ok()?;
    let (module, wasm) = running.as_ref()?;
    let text = module.text();
    let offset = pc.checked_sub(text.as_ptr() as usize).filter(|o| *o < text.len())?;
    let wasm_offset = module
        .address_map()?
        .take_while(|(code, _)| *code <= offset)
        .filter_map(|(_, wasm_offset)| wasm_offset)
        .last()? as usize;
    operator_at(wasm, wasm_offset)
}

/// The name of the operator that starts at byte `offset` of `wasm`.
pub fn operator_at(wasm: &[u8], offset: usize) -> Option<String> {
    let reader = wasmparser::BinaryReader::new(wasm.get(offset..)?, offset as u64);
    let op = wasmparser::OperatorsReader::new(reader).read().ok()?;
    let name = format!("{op:?}");
    Some(name.split([' ', '{', '(']).next()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_are_decoded_at_their_offsets() {
        let wasm = wat::parse_str(
            "(module (type $s (struct)) (func (param anyref) (result i32) (ref.test (ref $s) (local.get 0))))",
        )
        .unwrap();
        // Find the ref.test's offset by scanning the body.
        let offsets: Vec<(usize, String)> = (0..wasm.len()).filter_map(|i| Some((i, operator_at(&wasm, i)?))).collect();
        assert!(offsets.iter().any(|(_, name)| name == "RefTestNonNull"), "{offsets:?}");
        assert!(offsets.iter().any(|(_, name)| name == "LocalGet"), "{offsets:?}");
        assert_eq!(operator_at(&wasm, wasm.len() + 5), None);
    }
}
