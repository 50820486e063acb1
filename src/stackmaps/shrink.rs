//! Shrinking a program while it keeps its problem.

use super::check::check;
use super::compile::Plant;
use super::program::{CompileConfig, Func, Program, Stmt, Tail};

/// Shrinks `prog` while it still gives a problem of `kind` under `config`:
/// drops statements, unwraps `if`s and loops, drops functions from the end.
pub fn shrink(prog: &Program, config: CompileConfig, plant: Plant, kind: &str) -> Program {
    let reproduces =
        |p: &Program| check(p, config, plant).map(|probs| probs.iter().any(|x| x.kind == kind)).unwrap_or(false);
    let mut best = prog.clone();
    loop {
        let mut improved = false;
        for candidate in candidates(&best) {
            if reproduces(&candidate) {
                best = candidate;
                improved = true;
                break;
            }
        }
        if !improved {
            return best;
        }
    }
}

/// Programs one step smaller than `p`.
fn candidates(p: &Program) -> Vec<Program> {
    let mut out = Vec::new();
    // Drop the last function when nothing calls it.
    let last = p.funcs.len() as u8 - 1;
    let calls_last = |f: &Func| uses_callee(&f.body, last) || matches!(f.tail, Tail::Call(g, ..) if g == last);
    if p.funcs.len() > 1 && !p.funcs[..last as usize].iter().any(calls_last) {
        let mut q = p.clone();
        q.funcs.pop();
        out.push(q);
    }
    for (fi, f) in p.funcs.iter().enumerate() {
        if f.tail != Tail::Return {
            let mut q = p.clone();
            q.funcs[fi].tail = Tail::Return;
            out.push(q);
        }
        for body in smaller_blocks(&f.body) {
            let mut q = p.clone();
            q.funcs[fi].body = body;
            out.push(q);
        }
    }
    out
}

fn uses_callee(stmts: &[Stmt], callee: u8) -> bool {
    stmts.iter().any(|s| match s {
        Stmt::Call(_, c, ..) => *c == callee,
        Stmt::If(t, e) => uses_callee(t, callee) || uses_callee(e, callee),
        Stmt::Loop(_, b) => uses_callee(b, callee),
        _ => false,
    })
}

fn smaller_blocks(stmts: &[Stmt]) -> Vec<Vec<Stmt>> {
    let mut out = Vec::new();
    for i in 0..stmts.len() {
        let mut without = stmts.to_vec();
        let removed = without.remove(i);
        out.push(without.clone());
        // Replace a compound statement by its contents, a call by a copy.
        match removed {
            Stmt::Call(d, _, a, _) => {
                let mut q = stmts.to_vec();
                q[i] = Stmt::Copy(d, a);
                out.push(q);
            }
            Stmt::If(t, e) => {
                for inner in [t, e] {
                    let mut q = stmts[..i].to_vec();
                    q.extend(inner);
                    q.extend_from_slice(&stmts[i + 1..]);
                    out.push(q);
                }
            }
            Stmt::Loop(n, body) => {
                let mut q = stmts[..i].to_vec();
                q.extend(body.iter().cloned());
                q.extend_from_slice(&stmts[i + 1..]);
                out.push(q);
                for inner in smaller_blocks(&body) {
                    let mut q = stmts.to_vec();
                    q[i] = Stmt::Loop(n, inner);
                    out.push(q);
                }
            }
            _ => {}
        }
        if let Stmt::If(t, e) = &stmts[i] {
            for inner in smaller_blocks(t) {
                let mut q = stmts.to_vec();
                q[i] = Stmt::If(inner, e.clone());
                out.push(q);
            }
            for inner in smaller_blocks(e) {
                let mut q = stmts.to_vec();
                q[i] = Stmt::If(t.clone(), inner);
                out.push(q);
            }
        }
    }
    out
}
