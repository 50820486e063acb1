//! The host side of a run: the frame walk at each safepoint, checked
//! against the stack maps of every generated frame.

use super::program::{is_tagged, relocate};
use crate::oracle::Problem;
use std::cell::RefCell;
use std::collections::BTreeSet;

/// A compiled function's code range and stack maps (by return address).
#[derive(Clone)]
pub(super) struct CodeInfo {
    pub(super) start: usize,
    pub(super) size: usize,
    pub(super) program: bool,
    /// (return-address offset, SP offsets of the listed slots).
    pub(super) maps: Vec<(u32, Vec<u32>)>,
}

/// What the host sees while a program runs.
#[derive(Default)]
pub(super) struct Runtime {
    pub(super) code: Vec<CodeInfo>,
    pub(super) expected: Vec<Vec<BTreeSet<u64>>>,
    pub(super) moving: bool,
    pub(super) next: usize,
    pub(super) observed: Vec<u64>,
    pub(super) problems: Vec<Problem>,
}

thread_local! {
    pub(super) static RUNTIME: RefCell<Runtime> = RefCell::new(Runtime::default());
}

pub(super) extern "C" fn host_safepoint(sp: u64, fp: u64, ra: u64) {
    RUNTIME.with(|rt| rt.borrow_mut().safepoint(sp, fp, ra));
}

pub(super) extern "C" fn host_observe(v: u64) {
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
