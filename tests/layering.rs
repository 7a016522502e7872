//! The shape of `src/`, checked: the import graph of its files has no circle, no part of a
//! connection imports the `Core` that holds it, `impl Core` is written in one file, and no file
//! is over 700 lines (DESIGN.md, "Layers" and "The parts of a connection").
//!
//! The graph is read from the source text: every `crate::…` and `super::…` path (in `use` lines
//! and inline), and every `child::…` path to a module the file declares with `mod child;`. A
//! path through a re-export (`pub use x::Y;` in a parent) leads to the file that defines the
//! item, and a re-export is not itself an edge: a parent that re-exports its children's items
//! does not depend on them. Unit tests (`#[cfg(test)] mod … {`) are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// A module's path from the crate root (`["conn", "core"]`); the root is `[]`.
type ModPath = Vec<String>;

struct Source {
    file: PathBuf,
    module: ModPath,
    /// The text with comments, unit tests and re-exports removed.
    code: String,
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .into_iter()
        .map(|file| {
            let rel = file.strip_prefix(&root).unwrap().with_extension("");
            let mut module: ModPath = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            let code = strip(&fs::read_to_string(&file).unwrap());
            Source { file, module, code }
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Removes line comments (doc comments included), a trailing unit-test module, and `pub use`
/// re-exports; keeps everything else, including string contents (none of them look like a
/// path that resolves).
fn strip(text: &str) -> String {
    let mut code: String = text
        .lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    // A unit-test module written inline (`#[cfg(test)] mod tests {`) runs to the end.
    if let Some(i) = code.find("#[cfg(test)]\nmod ") {
        let decl = code[i..].lines().nth(1).unwrap_or("");
        if decl.trim_end().ends_with('{') {
            code.truncate(i);
        }
    }
    // Re-exports: `pub use …;` and `pub(crate) use …;`.
    let mut out = String::new();
    let mut rest = code.as_str();
    while let Some(i) = find_reexport(rest) {
        out.push_str(&rest[..i]);
        let end = rest[i..].find(';').map_or(rest.len(), |j| i + j + 1);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Where the next `pub use` or `pub(…) use` starts.
fn find_reexport(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find("pub") {
        let at = from + i;
        let mut rest = &s[at + 3..];
        if let Some(r) = rest.strip_prefix('(') {
            rest = &r[r.find(')')? + 1..];
        }
        if rest.trim_start().starts_with("use ") && word_start(s, at) {
            return Some(at);
        }
        from = at + 3;
    }
    None
}

fn word_start(s: &str, at: usize) -> bool {
    s[..at].chars().next_back().map_or(true, |c| !is_ident(c))
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every path that starts at `keyword` (`crate`, `super`, or a child module's name) in
/// `code`, each as its segments after the keyword, braces expanded (`a::{b, c::d}` gives
/// `a::b` and `a::c::d`).
fn paths(code: &str, keyword: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(i) = code[from..].find(keyword) {
        let at = from + i;
        from = at + keyword.len();
        let before = code[..at].chars().next_back();
        let after = &code[at + keyword.len()..];
        if before.is_some_and(|c| is_ident(c) || c == ':' || c == '(') || !after.starts_with("::") {
            continue; // part of a longer name or path, or `pub(super)`
        }
        let mut tree = Vec::new();
        expand(&after[2..], Vec::new(), &mut tree);
        found.extend(tree);
    }
    found
}

/// Reads one path (maybe a brace group) at the start of `s`, prefixed by `prefix`.
fn expand(s: &str, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let mut i = 0;
    let bytes = s.as_bytes();
    loop {
        while i < s.len() && bytes[i] == b' ' {
            i += 1;
        }
        if s[i..].starts_with('{') {
            i += 1;
            loop {
                i += expand(&s[i..], prefix.clone(), out);
                while i < s.len() && matches!(bytes[i], b' ' | b'\n' | b',') {
                    i += 1;
                }
                if i >= s.len() || bytes[i] == b'}' {
                    return i + 1;
                }
            }
        }
        let len = s[i..].find(|c: char| !is_ident(c)).unwrap_or(s.len() - i);
        if len == 0 {
            out.push(prefix);
            return i;
        }
        let seg = &s[i..i + len];
        i += len;
        if seg != "self" {
            prefix.push(seg.to_string());
        }
        if s[i..].starts_with("::") {
            i += 2;
        } else {
            out.push(prefix);
            return i;
        }
    }
}

struct Crate {
    files: BTreeMap<ModPath, PathBuf>,
    /// (module, item) re-exported there -> the path it names.
    reexports: BTreeMap<(ModPath, String), ModPath>,
}

impl Crate {
    fn new(sources: &[Source]) -> Crate {
        let mut reexports = BTreeMap::new();
        for src in sources {
            let text = fs::read_to_string(&src.file).unwrap();
            let mut rest = text.as_str();
            while let Some(i) = find_reexport(rest) {
                let stmt = &rest[i..];
                let end = stmt.find(';').unwrap_or(stmt.len());
                let body = &stmt[stmt.find("use ").unwrap() + 4..end];
                let (base, tail) = match body.split_once("::") {
                    Some((b, t)) => (b.trim(), t),
                    None => (body.trim(), ""),
                };
                let start: ModPath = match base {
                    "crate" => Vec::new(),
                    "self" => src.module.clone(),
                    "super" => src.module[..src.module.len().saturating_sub(1)].to_vec(),
                    other => [src.module.clone(), vec![other.to_string()]].concat(),
                };
                let mut named = Vec::new();
                expand(tail, start, &mut named);
                for path in named {
                    if let Some(item) = path.last() {
                        reexports.insert((src.module.clone(), item.clone()), path.clone());
                    }
                }
                rest = &stmt[end..];
            }
        }
        Crate {
            files: sources
                .iter()
                .map(|s| (s.module.clone(), s.file.clone()))
                .collect(),
            reexports,
        }
    }

    /// The file that defines what `path` names: the longest prefix that is a module, or,
    /// through a re-export there, the file the re-export leads to.
    fn resolve(&self, path: &[String], depth: usize) -> Option<&PathBuf> {
        for k in (0..=path.len()).rev() {
            let Some(file) = self.files.get(&path[..k]) else {
                continue;
            };
            if let Some(target) = path
                .get(k)
                .and_then(|item| self.reexports.get(&(path[..k].to_vec(), item.clone())))
                .filter(|_| depth < 8)
            {
                if let Some(f) = self.resolve(target, depth + 1) {
                    return Some(f);
                }
            }
            return Some(file);
        }
        None
    }
}

/// Each file of `src/` and the files it imports.
fn graph() -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let sources = sources();
    let krate = Crate::new(&sources);
    let mut edges = BTreeMap::new();
    for src in &sources {
        let mut to = BTreeSet::new();
        let mut add = |path: ModPath| {
            if let Some(f) = krate.resolve(&path, 0) {
                if *f != src.file {
                    to.insert(f.clone());
                }
            }
        };
        for p in paths(&src.code, "crate") {
            add(p);
        }
        for mut p in paths(&src.code, "super") {
            let mut up = 1;
            while p.first().is_some_and(|s| s == "super") {
                p.remove(0);
                up += 1;
            }
            let base = &src.module[..src.module.len().saturating_sub(up)];
            add([base.to_vec(), p].concat());
        }
        for line in src.code.lines() {
            let line = line.trim();
            let decl = line
                .strip_prefix("mod ")
                .or_else(|| line.strip_prefix("pub mod "))
                .or_else(|| line.strip_prefix("pub(crate) mod "));
            if let Some(child) = decl.and_then(|d| d.strip_suffix(';')) {
                if !paths(&src.code, child).is_empty() {
                    add([src.module.clone(), vec![child.to_string()]].concat());
                }
            }
        }
        edges.insert(src.file.clone(), to);
    }
    edges
}

/// The strongly connected components of more than one file (Tarjan 1972).
fn circles(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<Vec<PathBuf>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        index: BTreeMap<&'a PathBuf, usize>,
        low: BTreeMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        found: Vec<Vec<PathBuf>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a PathBuf) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            for w in &self.edges[v] {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.stack.contains(&w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    component.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.found
}

fn name(p: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

#[test]
fn the_import_graph_of_src_has_no_circle() {
    let edges = graph();
    // The reader sees something: the graph is not empty, and a known edge is in it.
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/conn/core.rs");
    let send = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/conn/send.rs");
    assert!(edges[&send].contains(&core), "send.rs imports core.rs");
    let found: Vec<String> = circles(&edges)
        .iter()
        .map(|c| c.iter().map(|p| name(p)).collect::<Vec<_>>().join(" ↔ "))
        .collect();
    assert!(
        found.is_empty(),
        "import circles in src/:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_circle_finder_finds_a_circle() {
    let (a, b, c) = (PathBuf::from("a"), PathBuf::from("b"), PathBuf::from("c"));
    let mut edges = BTreeMap::new();
    edges.insert(a.clone(), BTreeSet::from([b.clone()]));
    edges.insert(b.clone(), BTreeSet::from([c.clone()]));
    edges.insert(c.clone(), BTreeSet::from([a.clone()]));
    assert_eq!(circles(&edges).len(), 1);
    edges.insert(c, BTreeSet::new());
    assert!(circles(&edges).is_empty());
}

#[test]
fn no_part_of_a_connection_imports_its_core() {
    let edges = graph();
    let conn = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/conn");
    let core = conn.join("core.rs");
    let parts = [
        "life.rs",
        "queue.rs",
        "through.rs",
        "writer.rs",
        "idle.rs",
        "metrics.rs",
        "timers.rs",
        "protocol.rs",
        "wire.rs",
        "options.rs",
        "threads.rs",
        "reason.rs",
    ];
    for part in parts {
        let file = conn.join(part);
        assert!(
            edges.contains_key(&file),
            "{part} is gone: update this list"
        );
        assert!(
            !edges[&file].contains(&core),
            "the part {part} imports core.rs"
        );
    }
}

#[test]
fn impl_core_is_written_in_one_file_and_no_file_is_over_700_lines() {
    let mut with_impl = Vec::new();
    for src in sources() {
        let text = fs::read_to_string(&src.file).unwrap();
        if text.contains("impl Core {") {
            with_impl.push(name(&src.file));
        }
        let lines = text.lines().count();
        assert!(lines <= 700, "{} has {lines} lines", name(&src.file));
    }
    assert_eq!(with_impl, ["src/conn/core.rs"]);
}
