//! The model: which references are live at every safepoint, what a moving
//! collector does to them, and what the program must observe and return.

use super::program::{Program, REFS, Stmt, TAG, Tail, relocate};
use std::collections::BTreeSet;

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
