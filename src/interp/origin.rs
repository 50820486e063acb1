//! Where values come from: every operand carries the [`Origin`] of the
//! instruction that computed it, through locals, globals, block results and
//! calls, so a mismatch in a result or an exported global can name the
//! instruction that produced the value the engines disagree on (a
//! signature then tells a lost root read by `struct.get` from one read by
//! `array.get`). Instructions that only move a value (`local.get`,
//! `global.set`, branches, `br_on_null`) keep its origin; everything else
//! that pushes is the origin of what it pushed.

use super::Val;

/// An instruction of an instance's function body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    pub inst: u32,
    /// Index into the module's function bodies.
    pub code: u32,
    /// Index of the operator in the body.
    pub at: u32,
}

impl Origin {
    /// A value no instruction made: an argument, a default, an initializer.
    pub const NONE: Origin = Origin { inst: u32::MAX, code: u32::MAX, at: u32::MAX };

    /// What a numeric instruction passes on from operands with origins
    /// `self` and `other`: the first one's, unless a constant made it.
    pub fn or(self, other: Origin) -> Origin {
        if self == Origin::NONE { other } else { self }
    }
}

/// The operand stack, each value beside its origin.
pub(super) struct Operands {
    vals: Vec<Val>,
    origins: Vec<Origin>,
    /// The instruction running: what plain pushes are attributed to.
    pub current: Origin,
}

impl Operands {
    pub fn new(args: Vec<Val>) -> Operands {
        let origins = vec![Origin::NONE; args.len()];
        Operands { vals: args, origins, current: Origin::NONE }
    }

    pub fn len(&self) -> usize {
        self.vals.len()
    }

    /// Pushes a value the running instruction computed.
    pub fn push(&mut self, v: Val) {
        self.vals.push(v);
        self.origins.push(self.current);
    }

    /// Pushes a value moved from somewhere else, keeping its origin.
    pub fn push_from(&mut self, v: Val, origin: Origin) {
        self.vals.push(v);
        self.origins.push(origin);
    }

    pub fn extend(&mut self, vals: impl IntoIterator<Item = Val>) {
        for v in vals {
            self.push(v);
        }
    }

    pub fn pop(&mut self) -> Option<(Val, Origin)> {
        Some((self.vals.pop()?, self.origins.pop()?))
    }

    /// The top `n` values (fewer if the stack is lower), topmost last.
    pub fn top(&self, n: usize) -> &[Val] {
        &self.vals[self.vals.len().saturating_sub(n)..]
    }

    pub fn last(&self) -> Option<&Val> {
        self.vals.last()
    }

    pub fn last_origin(&self) -> Origin {
        self.origins.last().copied().unwrap_or(Origin::NONE)
    }

    pub fn truncate(&mut self, len: usize) {
        self.vals.truncate(len);
        self.origins.truncate(len);
    }

    /// Removes the values in `range`, keeping those above it.
    pub fn remove(&mut self, range: std::ops::Range<usize>) {
        self.vals.drain(range.clone());
        self.origins.drain(range);
    }

    /// The top `n` values and their origins, removed.
    pub fn split_off(&mut self, n: usize) -> (Vec<Val>, Vec<Origin>) {
        let at = self.vals.len() - n;
        (self.vals.split_off(at), self.origins.split_off(at))
    }

    pub fn into_parts(self) -> (Vec<Val>, Vec<Origin>) {
        (self.vals, self.origins)
    }
}
