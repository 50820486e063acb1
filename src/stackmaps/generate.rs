//! Random programs from fuzz input.

use super::program::{Func, Program, REFS, Stmt, Tail};
use arbitrary::Unstructured;

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
