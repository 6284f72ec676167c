//! The house rules, checked: no import circle between files or between rooms, and no arrow a
//! room may not draw (`../shared/DESIGN.md`'s room table, "knows nothing about").
//!
//! The check reads every `.rs` file under `src/` and follows `crate::…`, `super::…`, `self::…`
//! and child-module paths (in `use` trees and in expressions) to the file that defines the item,
//! through `pub use` re-exports. A re-export of a module's own descendants is a façade, not an
//! arrow (`store/mod.rs` re-exporting `store/baseline.rs`'s types); a re-export of anything else
//! is. Declaring a child module (`mod x;`) is not an arrow either. A room is a first-level module
//! under `src/` (`src/config/…` or `src/git.rs`); `lib.rs` is the room `lib`.
//!
//! Circles and arrows being removed by other work are listed below with who removes them. The
//! lists only shrink: the test fails on a circle or arrow not listed, and on a listed one that
//! is gone. `cargo test --lib architecture -- --nocapture` prints the room graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Import circles that other work removes. Each entry is one strongly connected component:
/// its files (paths under `src/`) or rooms, sorted, joined by " + ".
const KNOWN_CIRCLES: &[(&str, &str)] = &[];

/// Rooms that must not import other rooms: (room, forbidden rooms, why).
const FORBIDDEN: &[(&str, &[&str], &str)] = &[
    (
        "cli",
        &[
            "config",
            "engine",
            "record",
            "store",
            "stats",
            "verdict",
            "report",
            "chart",
            "publish",
            "demo",
            "commands",
            "git",
            "environment",
        ],
        "clap types only; commands turn them into settings",
    ),
    (
        "config",
        &[
            "store",
            "record",
            "engine",
            "stats",
            "verdict",
            "report",
            "chart",
            "publish",
            "commands",
            "demo",
            "environment",
        ],
        "the scenario model knows nothing of HTTP, SQL or what runs are",
    ),
    (
        "engine",
        &[
            "store", "stats", "publish", "verdict", "report", "chart", "commands", "demo",
        ],
        "the engine measures; it knows nothing of SQLite, statistics or GitHub",
    ),
    (
        "record",
        &[
            "config", "engine", "store", "stats", "verdict", "report", "chart", "publish",
            "commands", "demo",
        ],
        "plain data, the contract between rooms",
    ),
    // The store applies the suite's baseline policy (`config::BaselinePolicy`): that arrow is
    // allowed, the rest of config is not used.
    (
        "store",
        &[
            "engine", "verdict", "report", "chart", "publish", "commands", "demo",
        ],
        "the history knows nothing of HTTP or of how runs are judged",
    ),
    (
        "git",
        &[
            "config",
            "engine",
            "record",
            "store",
            "stats",
            "verdict",
            "report",
            "chart",
            "publish",
            "commands",
            "demo",
            "environment",
        ],
        "commit, branch, merge-base, dirty: nothing else",
    ),
    (
        "stats",
        &[
            "config",
            "engine",
            "record",
            "store",
            "verdict",
            "report",
            "chart",
            "publish",
            "commands",
            "demo",
            "git",
            "environment",
        ],
        "pure functions over numbers and histograms",
    ),
    (
        "verdict",
        &[
            "store", "report", "chart", "publish", "commands", "demo", "engine",
        ],
        "the verdict judges; it does not show, store or publish",
    ),
    (
        "report",
        &["store", "chart", "publish", "commands", "demo", "engine"],
        "formats return bytes; where they go is not theirs to know",
    ),
    (
        "chart",
        &["store", "publish", "commands", "demo", "engine", "report"],
        "data in, image bytes out",
    ),
    (
        "publish",
        &[
            "store", "stats", "engine", "config", "chart", "commands", "demo",
        ],
        "publishing moves markdown and bytes; it knows nothing of how the verdict was made",
    ),
    (
        "demo",
        &[
            "config", "engine", "record", "store", "verdict", "report", "chart", "publish",
            "commands",
        ],
        "the sample service knows nothing of gate's internals",
    ),
    // `gate init` reads access logs and writes scenario text; it may use config's types,
    // units, names and hash, nothing that runs, stores or publishes.
    (
        "init",
        &[
            "cli",
            "engine",
            "record",
            "store",
            "stats",
            "verdict",
            "report",
            "chart",
            "dashboard",
            "publish",
            "provider",
            "commands",
            "demo",
            "git",
            "environment",
        ],
        "access logs in, scenario text out; it knows nothing of running, storing or publishing",
    ),
];

/// Forbidden arrows that other work removes: (from room, to room, who removes it).
const KNOWN_BACKWARD: &[(&str, &str, &str)] = &[];

/// Where the `hyper` crate may be named: the engine (the transport) and the sample service
/// (served through axum). Everyone else shares the `http` crate's types.
const HYPER_ROOMS: &[&str] = &["engine", "demo"];

/// Files outside `HYPER_ROOMS` that still name hyper: (file, who removes it).
const KNOWN_HYPER: &[(&str, &str)] = &[];

/// One parsed source file.
#[derive(Default)]
struct SourceFile {
    /// Module path, e.g. `["config", "duration"]`; empty for `lib.rs`.
    module: Vec<String>,
    /// `mod x;` children (file modules).
    children: BTreeSet<String>,
    /// Items defined at the top level (fn, struct, enum, trait, type, const, static, mod).
    items: BTreeSet<String>,
    /// `pub use` at the top level: name → absolute path.
    reexports: BTreeMap<String, Vec<String>>,
    /// `pub use x::*` at the top level: absolute module paths.
    globs: Vec<Vec<String>>,
    /// Every path used: (absolute path, comes from a `pub use`).
    uses: Vec<(Vec<String>, bool)>,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Punct(char),
}

/// Rust source to tokens, without comments, strings and char literals (which may mention paths).
fn tokenize(src: &str) -> Vec<Tok> {
    let b: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let n = b.len();
    let skip_string = |mut i: usize| -> usize {
        // b[i] == '"'
        i += 1;
        while i < n {
            match b[i] {
                '\\' => i += 2,
                '"' => return i + 1,
                _ => i += 1,
            }
        }
        n
    };
    let skip_raw = |mut i: usize| -> Option<usize> {
        // at 'r': r#*"..."#*
        i += 1;
        let mut hashes = 0;
        while i < n && b[i] == '#' {
            hashes += 1;
            i += 1;
        }
        if i >= n || b[i] != '"' {
            return None;
        }
        i += 1;
        while i < n {
            if b[i] == '"' && (0..hashes).all(|k| i + 1 + k < n && b[i + 1 + k] == '#') {
                return Some(i + 1 + hashes);
            }
            i += 1;
        }
        Some(n)
    };
    while i < n {
        let c = b[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && i + 1 < n && b[i + 1] == '/' {
            while i < n && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && i + 1 < n && b[i + 1] == '*' {
            let mut depth = 0;
            while i < n {
                if b[i] == '/' && i + 1 < n && b[i + 1] == '*' {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && i + 1 < n && b[i + 1] == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '"' {
            i = skip_string(i);
        } else if c == '\'' {
            if i + 1 < n && b[i + 1] == '\\' {
                i += 2;
                while i < n && b[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if i + 2 < n && b[i + 2] == '\'' {
                i += 3;
            } else {
                // A lifetime or a label.
                i += 1;
                while i < n && (b[i].is_alphanumeric() || b[i] == '_') {
                    i += 1;
                }
            }
        } else if c == 'r' && i + 1 < n && (b[i + 1] == '"' || b[i + 1] == '#') {
            match skip_raw(i) {
                Some(end) => i = end,
                None => {
                    // `r#ident`
                    i += 2;
                    let start = i;
                    while i < n && (b[i].is_alphanumeric() || b[i] == '_') {
                        i += 1;
                    }
                    out.push(Tok::Ident(b[start..i].iter().collect()));
                }
            }
        } else if c == 'b' && i + 1 < n && b[i + 1] == '"' {
            i = skip_string(i + 1);
        } else if c == 'b' && i + 1 < n && b[i + 1] == '\'' {
            i += 2;
            if i < n && b[i] == '\\' {
                i += 1;
            }
            i += 1;
            while i < n && b[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else if c == 'b' && i + 2 < n && b[i + 1] == 'r' && (b[i + 2] == '"' || b[i + 2] == '#') {
            i = skip_raw(i + 1).unwrap_or(i + 2);
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < n && (b[i].is_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(b[start..i].iter().collect()));
        } else if c.is_ascii_digit() {
            while i < n && (b[i].is_alphanumeric() || b[i] == '_' || b[i] == '.') {
                // `1..2` is a range, not a float.
                if b[i] == '.' && i + 1 < n && b[i + 1] == '.' {
                    break;
                }
                i += 1;
            }
        } else if c == ':' && i + 1 < n && b[i + 1] == ':' {
            out.push(Tok::PathSep);
            i += 2;
        } else {
            out.push(Tok::Punct(c));
            i += 1;
        }
    }
    out
}

fn ident(t: Option<&Tok>) -> Option<&str> {
    match t {
        Some(Tok::Ident(s)) => Some(s),
        _ => None,
    }
}

/// One path of a `use` tree, as written, with its alias (`as name`) if any.
type UsePath = (Vec<String>, Option<String>);

/// A `use` tree from `toks[i]` (after `use`) to its `;`: every path, relative as written,
/// with a `*` segment for globs and the alias (if any). Returns the index after the `;`.
fn use_tree(toks: &[Tok], mut i: usize) -> (Vec<UsePath>, usize) {
    fn tree(toks: &[Tok], i: &mut usize, prefix: &[String], out: &mut Vec<UsePath>) {
        let mut path = prefix.to_vec();
        loop {
            match toks.get(*i) {
                Some(Tok::Ident(s)) if s == "as" => {
                    *i += 1;
                    let alias = ident(toks.get(*i)).map(str::to_string);
                    *i += 1;
                    out.push((path, alias));
                    return;
                }
                Some(Tok::Ident(s)) => {
                    path.push(s.clone());
                    *i += 1;
                }
                Some(Tok::PathSep) => *i += 1,
                Some(Tok::Punct('*')) => {
                    *i += 1;
                    path.push("*".into());
                    out.push((path, None));
                    return;
                }
                Some(Tok::Punct('{')) => {
                    *i += 1;
                    loop {
                        match toks.get(*i) {
                            Some(Tok::Punct('}')) => {
                                *i += 1;
                                return;
                            }
                            Some(Tok::Punct(',')) => *i += 1,
                            None => return,
                            _ => tree(toks, i, &path, out),
                        }
                    }
                }
                _ => {
                    if path.len() > prefix.len() {
                        out.push((path, None));
                    }
                    return;
                }
            }
        }
    }
    let mut out = Vec::new();
    tree(toks, &mut i, &[], &mut out);
    while i < toks.len() && toks[i] != Tok::Punct(';') {
        i += 1;
    }
    (out, i + 1)
}

/// Turn a path as written into an absolute module path, or None for outside crates.
fn absolute(path: &[String], here: &[String], children: &BTreeSet<String>) -> Option<Vec<String>> {
    let first = path.first()?;
    match first.as_str() {
        "crate" => Some(path[1..].to_vec()),
        "self" => Some(here.iter().chain(&path[1..]).cloned().collect()),
        "super" => {
            let mut base = here.to_vec();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
            Some(base.into_iter().chain(rest.iter().cloned()).collect())
        }
        name if children.contains(name) => Some(here.iter().chain(path).cloned().collect()),
        _ => None,
    }
}

/// The tokens without `#[cfg(test)] mod … { … }` blocks: a unit test may reach its room's
/// facade (`crate::provider::Provider`) without that being an arrow of the code it tests.
fn without_test_modules(toks: Vec<Tok>) -> Vec<Tok> {
    let is = |t: Option<&Tok>, want: &str| match t {
        Some(Tok::Ident(s)) => s == want,
        Some(Tok::Punct(c)) => want.len() == 1 && want.starts_with(*c),
        _ => false,
    };
    let mut out = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        let head = ["#", "[", "cfg", "(", "test", ")", "]", "mod"];
        if head.iter().enumerate().all(|(k, w)| is(toks.get(i + k), w)) && is(toks.get(i + 9), "{")
        {
            let mut depth = 0usize;
            let mut j = i + 9;
            while j < toks.len() {
                match toks[j] {
                    Tok::Punct('{') => depth += 1,
                    Tok::Punct('}') => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            i = j + 1;
            continue;
        }
        out.push(toks[i].clone());
        i += 1;
    }
    out
}

fn parse_file(module: Vec<String>, src: &str) -> SourceFile {
    let toks = without_test_modules(tokenize(src));
    let mut f = SourceFile {
        module,
        ..SourceFile::default()
    };
    // Children first: a child may be used above its `mod` line.
    for w in toks.windows(3) {
        if let [Tok::Ident(m), Tok::Ident(name), Tok::Punct(';')] = w
            && m == "mod"
        {
            f.children.insert(name.clone());
        }
    }
    let mut depth = 0usize;
    // Inline modules: (name, brace depth inside them).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let here: Vec<String> = f
            .module
            .iter()
            .cloned()
            .chain(inline.iter().map(|(n, _)| n.clone()))
            .collect();
        // Bare child-module paths resolve only in the file's own scope.
        let no_children = BTreeSet::new();
        let children = if inline.is_empty() {
            &f.children
        } else {
            &no_children
        };
        let top = depth == 0;
        match &toks[i] {
            Tok::Punct('{') => {
                depth += 1;
                i += 1;
            }
            Tok::Punct('}') => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            Tok::Ident(kw) if kw == "mod" => {
                if let (Some(name), Some(Tok::Punct('{'))) =
                    (ident(toks.get(i + 1)), toks.get(i + 2))
                {
                    inline.push((name.to_string(), depth + 1));
                    depth += 1;
                    if top {
                        f.items.insert(name.to_string());
                    }
                    i += 3;
                } else {
                    if let (true, Some(name)) = (top, ident(toks.get(i + 1))) {
                        f.items.insert(name.to_string());
                    }
                    i += 2;
                }
            }
            Tok::Ident(kw)
                if top
                    && matches!(
                        kw.as_str(),
                        "fn" | "struct" | "enum" | "trait" | "type" | "const" | "static"
                    ) =>
            {
                if let Some(name) = ident(toks.get(i + 1)) {
                    f.items.insert(name.to_string());
                }
                i += 1;
            }
            Tok::Ident(kw) if kw == "use" => {
                let public = match toks[..i].last() {
                    Some(Tok::Ident(p)) => p == "pub",
                    Some(Tok::Punct(')')) => {
                        let open = toks[..i].iter().rposition(|t| *t == Tok::Punct('('));
                        open.is_some_and(|o| o > 0 && ident(toks.get(o - 1)) == Some("pub"))
                    }
                    _ => false,
                };
                let (paths, next) = use_tree(toks.as_slice(), i + 1);
                for (path, alias) in paths {
                    let Some(abs) = absolute(&path, &here, children) else {
                        continue;
                    };
                    let reexport = public && top && inline.is_empty();
                    if reexport {
                        if abs.last().is_some_and(|s| s == "*") {
                            f.globs.push(abs[..abs.len() - 1].to_vec());
                        } else if let Some(name) = alias.or_else(|| abs.last().cloned()) {
                            f.reexports.insert(name, abs.clone());
                        }
                    }
                    let abs = abs
                        .into_iter()
                        .filter(|s| s != "*" && s != "self")
                        .collect();
                    f.uses.push((abs, reexport));
                }
                i = next;
            }
            Tok::Ident(first)
                if toks.get(i + 1) == Some(&Tok::PathSep)
                    && toks[..i].last() != Some(&Tok::PathSep) =>
            {
                let mut path = vec![first.clone()];
                let mut j = i + 1;
                while toks.get(j) == Some(&Tok::PathSep) {
                    match ident(toks.get(j + 1)) {
                        Some(s) => path.push(s.to_string()),
                        None => break,
                    }
                    j += 2;
                }
                if let Some(abs) = absolute(&path, &here, children) {
                    f.uses.push((abs, false));
                }
                i = j.max(i + 1);
            }
            _ => i += 1,
        }
    }
    f
}

struct Crate {
    /// Path under `src/` → file.
    files: BTreeMap<String, SourceFile>,
    /// Module path → path under `src/`.
    by_module: BTreeMap<Vec<String>, String>,
}

impl Crate {
    fn read(src: &Path) -> Crate {
        let mut paths = Vec::new();
        let mut stack = vec![src.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("src/ is readable") {
                let p = entry.expect("src/ entry").path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|e| e == "rs") {
                    paths.push(p);
                }
            }
        }
        let mut files = BTreeMap::new();
        let mut by_module = BTreeMap::new();
        for p in paths {
            let rel: PathBuf = p.strip_prefix(src).expect("under src/").to_path_buf();
            let rel_text = rel.to_string_lossy().replace('\\', "/");
            if rel_text == "main.rs" {
                continue; // the binary: a separate crate that uses `gate::`
            }
            let mut module: Vec<String> = rel_text
                .trim_end_matches(".rs")
                .split('/')
                .map(str::to_string)
                .collect();
            if module.last().is_some_and(|m| m == "mod" || m == "lib") {
                module.pop();
            }
            let text = std::fs::read_to_string(&p).expect("source is UTF-8");
            by_module.insert(module.clone(), rel_text.clone());
            files.insert(rel_text, parse_file(module, &text));
        }
        Crate { files, by_module }
    }

    /// The file that defines what `path` names, following `pub use` re-exports.
    fn resolve(&self, path: &[String], hops: usize) -> Option<&str> {
        let k = (0..=path.len())
            .rev()
            .find(|k| self.by_module.contains_key(&path[..*k]))?;
        let file = self.by_module[&path[..k]].as_str();
        let Some(item) = path.get(k) else {
            return Some(file);
        };
        if hops < 8 {
            let f = &self.files[file];
            if let Some(target) = f.reexports.get(item) {
                let mut next = target.clone();
                next.extend(path[k + 1..].iter().cloned());
                if let Some(found) = self.resolve(&next, hops + 1) {
                    return Some(found);
                }
            }
            if !f.items.contains(item) {
                for glob in &f.globs {
                    let mut next = glob.clone();
                    next.extend(path[k..].iter().cloned());
                    if let Some(found) = self.resolve(&next, hops + 1)
                        && self.files[found].items.contains(item)
                    {
                        return Some(found);
                    }
                }
            }
        }
        Some(file)
    }

    /// File → files it uses, with the number of references.
    fn file_graph(&self) -> BTreeMap<String, BTreeMap<String, usize>> {
        let mut graph: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for (name, f) in &self.files {
            let edges = graph.entry(name.clone()).or_default();
            for (path, reexport) in &f.uses {
                // A façade re-exporting its own descendants draws no arrow.
                if *reexport && path.starts_with(&f.module) {
                    continue;
                }
                if let Some(target) = self.resolve(path, 0)
                    && target != name
                {
                    *edges.entry(target.to_string()).or_default() += 1;
                }
            }
        }
        graph
    }
}

fn room_of(file: &str) -> String {
    match file.split_once('/') {
        Some((room, _)) => room.to_string(),
        None if file == "lib.rs" => "lib".into(),
        None => file.trim_end_matches(".rs").to_string(),
    }
}

fn room_graph(
    files: &BTreeMap<String, BTreeMap<String, usize>>,
) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut rooms: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (from, edges) in files {
        let r = room_of(from);
        let entry = rooms.entry(r.clone()).or_default();
        for (to, n) in edges {
            let t = room_of(to);
            if t != r {
                *entry.entry(t).or_default() += n;
            }
        }
    }
    rooms
}

/// Strongly connected components with more than one member (Tarjan), each sorted.
fn circles(graph: &BTreeMap<String, BTreeMap<String, usize>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeMap<String, usize>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flat_map(|e| e.keys()) {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out.sort();
    s.out
}

/// One circle, named with its arrows so the fix is findable.
fn describe(component: &[String], graph: &BTreeMap<String, BTreeMap<String, usize>>) -> String {
    let arrows: Vec<String> = component
        .iter()
        .flat_map(|from| {
            graph[from]
                .keys()
                .filter(|to| component.contains(to))
                .map(move |to| format!("{from} → {to}"))
        })
        .collect();
    format!("{} ({})", component.join(" + "), arrows.join(", "))
}

fn the_crate() -> Crate {
    Crate::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

#[test]
fn no_import_circles_between_files_or_rooms() {
    let krate = the_crate();
    let files = krate.file_graph();
    let rooms = room_graph(&files);
    println!("room graph (room → rooms it imports, with reference counts):");
    for (from, edges) in &rooms {
        let list: Vec<String> = edges.iter().map(|(to, n)| format!("{to} ({n})")).collect();
        println!("  {from} → {}", list.join(", "));
    }
    let mut found: Vec<(String, String)> = Vec::new();
    for c in circles(&files) {
        found.push((c.join(" + "), describe(&c, &files)));
    }
    for c in circles(&rooms) {
        found.push((c.join(" + "), describe(&c, &rooms)));
    }
    let known: BTreeSet<&str> = KNOWN_CIRCLES.iter().map(|(c, _)| *c).collect();
    let mut problems = Vec::new();
    for (key, text) in &found {
        if known.contains(key.as_str()) {
            println!("known circle (being removed): {text}");
        } else {
            problems.push(format!("import circle: {text}"));
        }
    }
    for (key, who) in KNOWN_CIRCLES {
        if !found.iter().any(|(k, _)| k == key) {
            problems.push(format!(
                "KNOWN_CIRCLES lists `{key}` ({who}), which is gone: delete the entry"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn no_room_imports_what_the_room_table_forbids() {
    let files = the_crate().file_graph();
    let rooms = room_graph(&files);
    let mut found = BTreeSet::new();
    let mut problems = Vec::new();
    for (from, forbidden, why) in FORBIDDEN {
        for to in rooms.get(*from).into_iter().flat_map(|e| e.keys()) {
            if !forbidden.contains(&to.as_str()) {
                continue;
            }
            found.insert((from.to_string(), to.clone()));
            if KNOWN_BACKWARD.iter().any(|(f, t, _)| f == from && t == to) {
                continue;
            }
            let via: Vec<String> = files
                .iter()
                .filter(|(f, _)| room_of(f) == *from)
                .flat_map(|(f, e)| {
                    e.keys()
                        .filter(|t| room_of(t) == *to)
                        .map(move |t| format!("{f} → {t}"))
                })
                .collect();
            problems.push(format!("{from} imports {to} ({}): {why}", via.join(", ")));
        }
    }
    for (from, to, who) in KNOWN_BACKWARD {
        if !found.contains(&(from.to_string(), to.to_string())) {
            problems.push(format!(
                "KNOWN_BACKWARD lists {from} → {to} ({who}), which is gone: delete the entry"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn the_reader_follows_use_trees_super_and_re_exports() {
    let toks = tokenize(
        r##"let s = "crate::a::b"; // crate::c::d
        /* crate::e */ let r = r#"crate::f"#; let c = '"'; fn f<'a>() {}"##,
    );
    assert!(
        !toks.contains(&Tok::Ident("crate".into())),
        "strings and comments are not code: {toks:?}"
    );
    let f = parse_file(
        vec!["room".into(), "file".into()],
        "use crate::{a::{b, c as d}, e::*};\nuse super::sibling::X;\n\
         fn g() { crate::h::i(); self::j(); }\nmod tests { use super::*; use super::super::k; }\n\
         #[cfg(test)]\nmod unit { use crate::not::an::arrow; }",
    );
    let uses: Vec<String> = f.uses.iter().map(|(p, _)| p.join("::")).collect();
    assert_eq!(
        uses,
        [
            "a::b",
            "a::c",
            "e",
            "room::sibling::X",
            "h::i",
            "room::file::j",
            "room::file",
            "room::k"
        ]
    );
    let facade = parse_file(
        vec!["room".into()],
        "mod inner;\npub use inner::{Thing, other::*};",
    );
    assert_eq!(facade.reexports["Thing"], ["room", "inner", "Thing"]);
    assert_eq!(facade.globs, [vec!["room", "inner", "other"]]);

    let mut g: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        g.entry(a.into()).or_default().insert(b.into(), 1);
        g.entry(b.into()).or_default();
    }
    assert_eq!(circles(&g), [vec!["a", "b", "c"]]);
}

#[test]
fn hyper_stays_in_the_engine() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let krate = Crate::read(&src);
    let mut naming = BTreeSet::new();
    for file in krate.files.keys() {
        if HYPER_ROOMS.contains(&room_of(file).as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(src.join(file)).expect("source is readable");
        let toks = tokenize(&text);
        let names_hyper = toks.windows(2).any(|w| {
            matches!(&w[0], Tok::Ident(h) if h == "hyper")
                && (w[1] == Tok::PathSep || w[1] == Tok::Punct(';'))
        });
        if names_hyper {
            naming.insert(file.clone());
        }
    }
    let mut problems = Vec::new();
    for file in &naming {
        if !KNOWN_HYPER.iter().any(|(f, _)| f == file) {
            problems.push(format!(
                "{file} names hyper: use the `http` crate's types (hyper stays in the engine)"
            ));
        }
    }
    for (file, who) in KNOWN_HYPER {
        if !naming.contains(*file) {
            problems.push(format!(
                "KNOWN_HYPER lists {file} ({who}), which no longer names hyper: delete the entry"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}
