//! The layout of `src/`: no two files import each other, directly or in a
//! loop, and no file is over 600 lines unless its header says why it is one
//! coherent piece. Imports are read from the source text: `use` trees and
//! inline `crate::` / `super::` paths, outside `#[cfg(test)]` modules, with
//! names a `mod.rs` re-exports (`pub use child::Name`) followed to the file
//! that defines them, so a folder's facade is not mistaken for a loop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;

/// One module file: its module path, what it defines, what it re-exports.
struct ModFile {
    path: Vec<String>,
    text: String,
    defs: BTreeSet<String>,
    /// `pub use` names: name → absolute path of the target.
    reexports: BTreeMap<String, Vec<String>>,
    /// `pub use x::*` targets.
    globs: Vec<Vec<String>>,
}

fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    match last.as_str() {
        "lib.rs" | "main.rs" | "mod.rs" => {}
        other => parts.push(other.trim_end_matches(".rs").to_string()),
    }
    parts
}

/// The code outside `#[cfg(test)] mod tests`, without comments.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// Expands a `use` tree (`a::{b, c::{d as e}, f::*}`) into its paths.
fn expand(tree: &str, prefix: &[String], out: &mut Vec<(Vec<String>, String)>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let base: Vec<String> = tree[..open]
            .trim_end_matches("::")
            .split("::")
            .filter(|s| !s.is_empty())
            .map(|s| s.trim().into())
            .collect();
        let inner = &tree[open + 1..tree.rfind('}').unwrap()];
        let mut depth = 0;
        let mut start = 0;
        let full: Vec<String> = prefix.iter().cloned().chain(base).collect();
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&inner[start..i], &full, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&inner[start..], &full, out);
    } else if !tree.is_empty() {
        let name = tree.split(" as ").next().unwrap().trim();
        let mut path: Vec<String> = prefix.to_vec();
        path.extend(name.split("::").map(|s| s.trim().to_string()));
        if path.last().map(String::as_str) == Some("self") {
            path.pop();
        }
        let last = path.last().cloned().unwrap_or_default();
        out.push((path, last));
    }
}

/// Every `use` path of `code`, with whether it is a `pub use`. A `use`
/// statement starts a line (after `pub` or `pub(…)`) and ends at `;`.
fn uses(code: &str) -> Vec<(bool, Vec<String>)> {
    let mut out = Vec::new();
    let lines: Vec<&str> = code.lines().collect();
    for (n, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        let (is_pub, rest) = match t.strip_prefix("pub") {
            Some(r) if r.starts_with(' ') || r.starts_with('(') => (true, r[r.find(' ').unwrap_or(0)..].trim_start()),
            _ => (false, t),
        };
        let Some(tree) = rest.strip_prefix("use ") else { continue };
        let mut statement = tree.to_string();
        let mut next = n + 1;
        while !statement.contains(';') && next < lines.len() {
            statement.push_str(lines[next]);
            next += 1;
        }
        let mut paths = Vec::new();
        expand(statement.split(';').next().unwrap(), &[], &mut paths);
        out.extend(paths.into_iter().map(|(p, _)| (is_pub, p)));
    }
    out
}

/// Inline `crate::…` and `super::…` paths (outside `use` statements too).
fn inline_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_' || bytes[at - 1] == b':') {
                continue;
            }
            let mut end = at;
            while end < code.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_' || bytes[end] == b':') {
                end += 1;
            }
            // `crate::{…}` and `super::{…}` are use trees, read by `uses`.
            let path: Vec<String> = code[at..end].trim_end_matches(':').split("::").map(String::from).collect();
            if path.len() > 1 {
                out.push(path);
            }
        }
    }
    out
}

fn defined_names(code: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in code.lines() {
        let words: Vec<&str> =
            line.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).collect();
        for pair in words.windows(2) {
            if ["fn", "struct", "enum", "const", "type", "static", "trait", "mod"].contains(&pair[0]) {
                names.insert(pair[1].to_string());
            }
        }
    }
    names
}

struct Tree {
    files: BTreeMap<PathBuf, ModFile>,
    by_module: BTreeMap<Vec<String>, PathBuf>,
}

impl Tree {
    fn read(src: &Path) -> Tree {
        let mut files = BTreeMap::new();
        let mut stack = vec![src.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let rel = path.strip_prefix(src).unwrap().to_path_buf();
                    let text = std::fs::read_to_string(&path).unwrap();
                    let path_in_crate = module_path(&rel);
                    let file = ModFile {
                        defs: defined_names(&code(&text)),
                        path: path_in_crate,
                        text,
                        reexports: BTreeMap::new(),
                        globs: Vec::new(),
                    };
                    files.insert(rel, file);
                }
            }
        }
        // main.rs is the binary: it sees the library as `gcfuzz`.
        let by_module = files
            .iter()
            .filter(|(rel, _)| rel.as_os_str() != "main.rs")
            .map(|(rel, f)| (f.path.clone(), rel.clone()))
            .collect();
        let mut tree = Tree { files, by_module };
        let rels: Vec<PathBuf> = tree.files.keys().cloned().collect();
        for rel in rels {
            let f = &tree.files[&rel];
            let (here, code) = (f.path.clone(), code(&f.text));
            let mut reexports = BTreeMap::new();
            let mut globs = Vec::new();
            for (is_pub, path) in uses(&code) {
                if !is_pub {
                    continue;
                }
                let Some(abs) = tree.absolute(&here, &rel, &path) else { continue };
                match abs.last().map(String::as_str) {
                    Some("*") => globs.push(abs[..abs.len() - 1].to_vec()),
                    Some(name) => {
                        reexports.insert(name.to_string(), abs.clone());
                    }
                    None => {}
                }
            }
            let f = tree.files.get_mut(&rel).unwrap();
            f.reexports = reexports;
            f.globs = globs;
        }
        tree
    }

    /// `path` as written in the file `rel` (module `here`), made absolute;
    /// `None` for paths into other crates.
    fn absolute(&self, here: &[String], rel: &Path, path: &[String]) -> Option<Vec<String>> {
        let first = path.first()?.as_str();
        let mut base: Vec<String> = match first {
            "crate" => vec![],
            "gcfuzz" if rel.as_os_str() == "main.rs" => vec![],
            "self" => here.to_vec(),
            "super" => here[..here.len().saturating_sub(1)].to_vec(),
            _ => {
                // A child module of the current one (2018 paths).
                let mut child = here.to_vec();
                child.push(first.to_string());
                if self.by_module.contains_key(&child) {
                    child.extend(path[1..].iter().cloned());
                    return Some(child);
                }
                return None;
            }
        };
        let mut rest = &path[1..];
        while rest.first().is_some_and(|s| s == "super") {
            base.pop();
            rest = &rest[1..];
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The file an absolute path leads to: the deepest module on it, then
    /// through that module's re-exports to the file defining the name.
    fn resolve(&self, abs: &[String], hops: usize) -> Option<PathBuf> {
        let mut depth = 0;
        while depth < abs.len() && self.by_module.contains_key(&abs[..=depth]) {
            depth += 1;
        }
        let module = abs[..depth].to_vec();
        let file = self.by_module.get(&module)?;
        let Some(name) = abs.get(depth) else { return Some(file.clone()) };
        let f = &self.files[file];
        if hops < 8 {
            if let Some(target) = f.reexports.get(name) {
                return self.resolve(target, hops + 1);
            }
            if !f.defs.contains(name) {
                for glob in &f.globs {
                    let target = &self.files[self.by_module.get(glob)?];
                    if target.defs.contains(name) || target.reexports.contains_key(name) {
                        let mut via = glob.clone();
                        via.push(name.clone());
                        return self.resolve(&via, hops + 1);
                    }
                }
            }
        }
        Some(file.clone())
    }

    fn imports(&self) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
        let mut graph = BTreeMap::new();
        for (rel, f) in &self.files {
            let code = code(&f.text);
            let mut targets = BTreeSet::new();
            let written = uses(&code).into_iter().map(|(_, p)| p).chain(inline_paths(&code));
            for path in written {
                let Some(abs) = self.absolute(&f.path, rel, &path) else { continue };
                let abs: Vec<String> = abs.into_iter().filter(|s| s != "*").collect();
                if let Some(target) = self.resolve(&abs, 0)
                    && &target != rel
                    // The crate root declares every module; a reference to
                    // it is to its few free functions.
                    && target.as_os_str() != "lib.rs"
                {
                    targets.insert(target);
                }
            }
            graph.insert(rel.clone(), targets);
        }
        graph
    }
}

/// A loop in `graph`, as the files on it, if there is one.
fn find_cycle(graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Option<Vec<PathBuf>> {
    fn visit(
        node: &PathBuf,
        graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        state: &mut BTreeMap<PathBuf, u8>,
        stack: &mut Vec<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        state.insert(node.clone(), 1);
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next) {
                Some(1) => {
                    let at = stack.iter().position(|n| n == next).unwrap();
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(next, graph, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if !state.contains_key(node)
            && let Some(c) = visit(node, graph, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_file_of_src_imports_itself_through_others() {
    let tree = Tree::read(&src());
    let graph = tree.imports();
    // The reader finds the imports it must: a few known arrows.
    let has = |from: &str, to: &str| graph[Path::new(from)].contains(Path::new(to));
    assert!(has("engine/wasmtime/mod.rs", "case/host.rs"), "{:?}", graph[Path::new("engine/wasmtime/mod.rs")]);
    assert!(has("oracle/check.rs", "engine/worker/mod.rs"));
    assert!(has("campaign/run.rs", "engine/worker/parent.rs"), "a re-exported name leads to its file");
    assert!(has("campaign/nightly.rs", "report/nightly.rs"));
    assert!(has("stackmaps/check.rs", "stackmaps/compile.rs"));
    if let Some(cycle) = find_cycle(&graph) {
        let names: Vec<String> = cycle.iter().map(|p| p.display().to_string()).collect();
        panic!("import cycle: {}", names.join(" -> "));
    }
}

#[test]
fn the_cycle_finder_finds_a_planted_cycle() {
    let edge = |a: &str, b: &str| (PathBuf::from(a), BTreeSet::from([PathBuf::from(b)]));
    let graph = BTreeMap::from([edge("a.rs", "b.rs"), edge("b.rs", "c.rs"), edge("c.rs", "a.rs")]);
    assert_eq!(find_cycle(&graph).map(|c| c.len()), Some(4));
    let graph = BTreeMap::from([edge("a.rs", "b.rs"), edge("b.rs", "c.rs")]);
    assert_eq!(find_cycle(&graph), None);
}

#[test]
fn long_files_say_why_they_are_one_piece() {
    for (rel, f) in &Tree::read(&src()).files {
        let lines = f.text.lines().count();
        let header: String = f.text.lines().take_while(|l| l.starts_with("//!")).collect::<Vec<_>>().join(" ");
        assert!(!header.is_empty(), "{} has no //! header saying why it exists", rel.display());
        assert!(
            lines <= MAX_LINES || header.to_lowercase().contains("one coherent piece"),
            "{} has {lines} lines: split it, or say in its header why it is one coherent piece",
            rel.display()
        );
    }
}
