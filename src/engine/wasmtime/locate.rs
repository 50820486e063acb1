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
//! A panic raised in code that compiled Wasm called (a libcall such as an
//! allocation's, which may collect, or a host function) is told apart by the
//! operator of the innermost Wasm frame on the native stack: for a collector
//! assert that is the safepoint whose stack map the collection read
//! ([`calling_operator`]). Pulley's frames are not on the native stack; a
//! Pulley panic takes the operator of the same panic on native code in the
//! same case (`oracle::check`), so one bug seen on both is one signature.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use wasmtime::{Module, Store};

/// The program counter of the last signal raised in Wasm code of a watched
/// store in this process; 0 when none since the last call began.
static LAST_PC: AtomicUsize = AtomicUsize::new(0);

/// The running module's compiled code: where its text is, which Wasm byte
/// each instruction came from, and the Wasm bytes. Published per thread (a
/// signal is handled on the thread that faulted, and threads running cases
/// side by side, as tests do, never free each other's map) through a
/// thread-local pointer, so a fatal-signal handler can read it
/// (`engine::fatal`) without locks or allocation.
struct CodeMap {
    text_start: usize,
    text_len: usize,
    /// (code offset, Wasm offset), sorted by code offset.
    entries: Vec<(u32, u32)>,
    /// The compiled Wasm functions' code ranges, sorted: the text holds
    /// trampolines too, which came from no Wasm instruction.
    functions: Vec<(u32, u32)>,
    wasm: Vec<u8>,
}

thread_local! {
    static RUNNING: Cell<*mut CodeMap> = const { Cell::new(std::ptr::null_mut()) };
}

/// This thread's published map.
fn published() -> Option<&'static CodeMap> {
    // SAFETY: a published map stays valid until this thread's next
    // `running`, which no caller outlives.
    unsafe { RUNNING.with(Cell::get).as_ref() }
}

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
    let text = module.text();
    let entries = module
        .address_map()
        .map(|map| map.filter_map(|(code, w)| Some((u32::try_from(code).ok()?, w?))).collect())
        .unwrap_or_default();
    let mut functions: Vec<(u32, u32)> = module
        .functions()
        .filter_map(|f| Some((u32::try_from(f.offset).ok()?, u32::try_from(f.offset + f.len).ok()?)))
        .collect();
    functions.sort_unstable();
    let (text_start, text_len) = (text.as_ptr() as usize, text.len());
    let map = Box::new(CodeMap { text_start, text_len, entries, functions, wasm: wasm.to_vec() });
    let old = RUNNING.with(|r| r.replace(Box::into_raw(map)));
    if !old.is_null() {
        // SAFETY: `old` came from `Box::into_raw` and is no longer published;
        // only this thread could read it, and it is here.
        drop(unsafe { Box::from_raw(old) });
    }
}

/// A call begins: a fault recorded before it is not this call's.
pub fn call_begins() {
    LAST_PC.store(0, Ordering::Relaxed);
}

/// The Wasm byte offset of the instruction at `pc`, when `pc` is in the
/// running module's code. Async-signal-safe: one thread-local load and a binary
/// search.
pub fn wasm_offset_at(pc: usize) -> Option<u32> {
    let map = published()?;
    let offset = pc.checked_sub(map.text_start).filter(|o| *o < map.text_len)?;
    let offset = u32::try_from(offset).ok()?;
    // Within a Wasm function: the nearest position at or before `pc` there
    // (a trap stub at the function's end takes its last instruction's).
    let f = map.functions.partition_point(|(start, _)| *start <= offset).checked_sub(1)?;
    let (start, end) = map.functions[f];
    if offset >= end {
        return None;
    }
    let i = map.entries.partition_point(|(code, _)| *code <= offset).checked_sub(1)?;
    let (code, wasm) = map.entries[i];
    (code >= start).then_some(wasm)
}

/// The operator at Wasm byte `offset` of the running module.
pub fn running_operator(offset: u32) -> Option<String> {
    let map = published()?;
    operator_at(&map.wasm, offset as usize)
}

/// The Wasm operator at the last recorded fault, e.g. `RefTestNonNull`,
/// when the fault was in the running module's code.
pub fn faulting_operator() -> Option<String> {
    let pc = LAST_PC.load(Ordering::Relaxed);
    if pc == 0 {
        return None;
    }
    running_operator(wasm_offset_at(pc)?)
}

/// The operator of the innermost frame of the running module's compiled
/// code among `call_sites` (this thread's, innermost first:
/// `engine::fatal::call_sites`): the call through which it reached the code
/// running now, e.g. `StructNew` for a collection at an allocation, `Call`
/// for one in a host function. `None` outside Wasm, and on Pulley.
pub fn calling_operator(call_sites: &[usize]) -> Option<String> {
    call_sites.iter().find_map(|pc| wasm_offset_at(*pc)).and_then(running_operator)
}

/// The name of the operator that starts at byte `offset` of `wasm`.
pub fn operator_at(wasm: &[u8], offset: usize) -> Option<String> {
    let reader = wasmparser::BinaryReader::new(wasm.get(offset..)?, offset as u64);
    let op = wasmparser::OperatorsReader::new(reader).read().ok()?;
    Some(crate::case::operator_name(&op))
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
