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
//! fault, which becomes part of the crash's identity. Every module of a
//! case is mapped (a linked module's code faults as well as the main
//! module's), and an offset names its module. Native code only:
//! Pulley raises no signal, and reports no location, so the same failure on
//! Pulley has a signature without the operator.
//!
//! A panic raised in code that compiled Wasm called (a libcall such as an
//! allocation's, which may collect, or a host function) is told apart by the
//! operator of the innermost Wasm frame on the native stack: for a collector
//! assert that is the safepoint whose stack map the collection read
//! ([`calling_operator`]). Pulley's frames are not on the native stack: a
//! panic in a host call on Pulley takes the call site a Wasm backtrace gave
//! when the host function began ([`host_call`]); any other Pulley panic
//! takes the operator of the same panic on native code in the same case
//! (`oracle::check`), so one bug seen on both is one signature.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use wasmtime::{Module, Store};

/// The program counter of the last signal raised in Wasm code of a watched
/// store in this process; 0 when none since the last call began.
static LAST_PC: AtomicUsize = AtomicUsize::new(0);

/// The running case's compiled modules, in `TestCase::modules` order
/// (linked ones first, the main one last). Published per thread (a signal
/// is handled on the thread that faulted, and threads running cases side by
/// side, as tests do, never free each other's map) through a thread-local
/// pointer, so a fatal-signal handler can read it (`engine::fatal`) without
/// locks or allocation.
struct CodeMaps(Vec<CodeMap>);

/// One module's compiled code: where its text is, which Wasm byte each
/// instruction came from, and the Wasm bytes.
struct CodeMap {
    text_start: usize,
    text_len: usize,
    /// (code offset, Wasm offset), sorted by code offset.
    entries: Vec<(u32, Option<u32>)>,
    /// The compiled Wasm functions' code ranges, sorted: the text holds
    /// trampolines too, which came from no Wasm instruction.
    functions: Vec<(u32, u32)>,
    wasm: Vec<u8>,
}

thread_local! {
    static RUNNING: Cell<*mut CodeMaps> = const { Cell::new(std::ptr::null_mut()) };
}

/// This thread's published maps.
fn published() -> Option<&'static CodeMaps> {
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

/// `modules` (each compiled from its Wasm bytes, in `TestCase::modules`
/// order) run from now on.
pub fn running(modules: &[(&Module, &[u8])]) {
    LAST_PC.store(0, Ordering::Relaxed);
    let maps = CodeMaps(modules.iter().map(|(module, wasm)| code_map(module, wasm)).collect());
    let old = RUNNING.with(|r| r.replace(Box::into_raw(Box::new(maps))));
    if !old.is_null() {
        // SAFETY: `old` came from `Box::into_raw` and is no longer published;
        // only this thread could read it, and it is here.
        drop(unsafe { Box::from_raw(old) });
    }
}

fn code_map(module: &Module, wasm: &[u8]) -> CodeMap {
    let text = module.text();
    let entries = module
        .address_map()
        .map(|map| map.filter_map(|(code, w)| Some((u32::try_from(code).ok()?, w))).collect())
        .unwrap_or_default();
    let mut functions: Vec<(u32, u32)> = module
        .functions()
        .filter_map(|f| Some((u32::try_from(f.offset).ok()?, u32::try_from(f.offset + f.len).ok()?)))
        .collect();
    functions.sort_unstable();
    let (text_start, text_len) = (text.as_ptr() as usize, text.len());
    CodeMap { text_start, text_len, entries, functions, wasm: wasm.to_vec() }
}

/// A position in a case's Wasm code: which module (`TestCase::modules`
/// order) and the byte offset in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WasmAt {
    pub module: u32,
    pub offset: u32,
}

/// A call begins: a fault recorded before it is not this call's.
pub fn call_begins() {
    LAST_PC.store(0, Ordering::Relaxed);
}

thread_local! {
    /// Whether host calls record where Wasm called them from: on Pulley,
    /// whose frames are not on the native stack.
    static CAPTURE: Cell<bool> = const { Cell::new(false) };
    /// Where Wasm called the host function running now on this thread.
    static HOST_SITE: Cell<Option<WasmAt>> = const { Cell::new(None) };
}

/// Whether the running configuration's host calls record their call site
/// (`host_call`): only where native frames cannot say it.
pub fn capture_host_calls(on: bool) {
    CAPTURE.with(|c| c.set(on));
}

/// The call site of a host function while it runs (from a Wasm backtrace,
/// which Pulley's frames are in), for a panic inside it
/// ([`host_call_operator`]): a collector assert in a host `gc` call or an
/// epoch check on Pulley is then told apart by its safepoint as on native
/// code. Dropping the guard forgets it.
pub fn host_call(cx: impl wasmtime::AsContext) -> HostCall {
    let previous = HOST_SITE.with(Cell::get);
    if CAPTURE.with(Cell::get) {
        let backtrace = wasmtime::WasmBacktrace::capture(&cx);
        let site = backtrace.frames().first().and_then(|frame| {
            let text = frame.module().text().as_ptr() as usize;
            let module = published()?.0.iter().position(|m| m.text_start == text)?;
            Some(WasmAt { module: module as u32, offset: u32::try_from(frame.module_offset()?).ok()? })
        });
        HOST_SITE.with(|h| h.set(site));
    }
    HostCall { previous }
}

/// Restores the call site of the host call this one is nested in.
pub struct HostCall {
    previous: Option<WasmAt>,
}

impl Drop for HostCall {
    fn drop(&mut self) {
        HOST_SITE.with(|h| h.set(self.previous));
    }
}

/// Where Wasm called the host function running now on this thread, where
/// recorded. Async-signal-safe (a thread-local load), for a hang's sample.
pub fn host_site() -> Option<WasmAt> {
    HOST_SITE.try_with(Cell::get).ok().flatten()
}

/// The operator that called the running host function, where recorded.
pub fn host_call_operator() -> Option<String> {
    running_operator(HOST_SITE.with(Cell::get)?)
}

/// The Wasm position of the instruction at `pc`, when `pc` is in the
/// running case's code. Async-signal-safe: one thread-local load and binary
/// searches.
pub fn wasm_offset_at(pc: usize) -> Option<WasmAt> {
    let maps = published()?;
    maps.0.iter().enumerate().find_map(|(i, map)| Some(WasmAt { module: i as u32, offset: position(map, pc)? }))
}

/// [`wasm_offset_at`] in `map`.
fn position(map: &CodeMap, pc: usize) -> Option<u32> {
    let offset = pc.checked_sub(map.text_start).filter(|o| *o < map.text_len)?;
    let offset = u32::try_from(offset).ok()?;
    // Within a Wasm function: the position of the code at `pc`. Code that
    // came from no Wasm instruction has none (a fault there would otherwise
    // take whatever instruction precedes it in the layout: one null-pointer
    // load in such code showed up as 45 different operators), unless it
    // lies within one instruction's code (the same position before and
    // after it) or is a trap stub, which takes the check's before it.
    let f = map.functions.partition_point(|(start, _)| *start <= offset).checked_sub(1)?;
    let (start, end) = map.functions[f];
    if offset >= end {
        return None;
    }
    let i = map.entries.partition_point(|(code, _)| *code <= offset).checked_sub(1)?;
    let (code, wasm) = map.entries[i];
    if code < start {
        return None;
    }
    if wasm.is_some() {
        return wasm;
    }
    let before = map.entries[..i].iter().rev().take_while(|(c, _)| *c >= start).find_map(|(_, w)| *w);
    let after = map.entries[i + 1..].iter().take_while(|(c, _)| *c < end).find_map(|(_, w)| *w);
    match (before, after) {
        // Inside one instruction's code (a load its lowering emitted
        // without a position).
        (Some(b), Some(a)) if a == b => Some(b),
        // A trap stub: the check before it jumps there.
        (Some(b), _) if is_trap_instruction(pc, map) => Some(b),
        _ => None,
    }
}

/// Whether the instruction at `pc` (in the running module's text) is a trap
/// instruction: `ud2` on x86-64, `udf` on aarch64.
fn is_trap_instruction(pc: usize, map: &CodeMap) -> bool {
    let offset = pc - map.text_start;
    if offset + 4 > map.text_len {
        return false;
    }
    // SAFETY: `pc..pc + 4` lies in the module's text, mapped readable while
    // the module is published.
    let bytes = unsafe { std::ptr::read_unaligned(pc as *const [u8; 4]) };
    if cfg!(target_arch = "x86_64") {
        bytes[..2] == [0x0f, 0x0b]
    } else if cfg!(target_arch = "aarch64") {
        u32::from_le_bytes(bytes) >> 16 == 0
    } else {
        true
    }
}

/// The operator at `at` in the running case.
pub fn running_operator(at: WasmAt) -> Option<String> {
    let map = published()?.0.get(at.module as usize)?;
    operator_at(&map.wasm, at.offset as usize)
}

/// The Wasm operator at the last recorded fault, e.g. `RefTestNonNull`,
/// when the fault was in the running case's code.
pub fn faulting_operator() -> Option<String> {
    let pc = LAST_PC.load(Ordering::Relaxed);
    if pc == 0 {
        return None;
    }
    running_operator(wasm_offset_at(pc)?)
}

/// The operator of the innermost frame of the running case's compiled
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

    #[test]
    fn code_without_a_position_has_none_unless_one_instruction_or_a_trap_stub_holds_it() {
        // One function over 32 bytes of text: Wasm offset 10 at 0..8, none
        // at 8..12, 10 again at 12..16, none at 16..20, 30 at 20..24, none
        // after; a `ud2` at 28.
        let mut text = [0x90u8; 36];
        text[28..30].copy_from_slice(&[0x0f, 0x0b]);
        let entries = vec![(0, Some(10)), (8, None), (12, Some(10)), (16, None), (20, Some(30)), (24, None)];
        let map = CodeMap {
            text_start: text.as_ptr() as usize,
            text_len: text.len(),
            entries,
            functions: vec![(0, 32)],
            wasm: vec![],
        };
        let at = |offset: usize| position(&map, map.text_start + offset);
        assert_eq!(at(4), Some(10));
        assert_eq!(at(9), Some(10), "inside the code of one instruction");
        assert_eq!(at(17), None, "between two instructions' code, from neither");
        assert_eq!(at(25), None, "after the last one, not a trap");
        assert_eq!(at(28), Some(30), "a trap stub takes the check before it");
        assert_eq!(at(33), None, "outside the function");
    }
}
