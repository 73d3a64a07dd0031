//! The library's modules depend on each other without circles, and no module imports from
//! its parent or another ancestor (that is a circle too: the parent declares the child).
//! A module is a file under src/ (bin/ and test-only modules aside); an edge is a `mod`
//! declaration or a `crate::`/`super::` path, resolved to the longest module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Every library source file with its module path ("" for the crate root).
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("read src") {
            let p = entry.expect("dir entry").path();
            let rel = p.strip_prefix(src).expect("under src").to_string_lossy().into_owned();
            if rel == "bin" {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if rel.ends_with(".rs") {
                let name = rel.trim_end_matches(".rs").trim_end_matches("/mod").replace('/', "::");
                out.insert(if name == "lib" { String::new() } else { name }, p);
            }
        }
    }
    out
}

/// The text of a file without comments and without its inline `#[cfg(test)]` module.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]")
            && lines.peek().is_some_and(|n| n.trim_start().starts_with("mod ") && n.contains('{'))
        {
            break;
        }
        let line = match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Child modules declared with `mod name;`, and those declared for tests only.
fn declared(text: &str) -> (Vec<String>, Vec<String>) {
    let (mut mods, mut test_only) = (Vec::new(), Vec::new());
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    for (i, l) in lines.iter().enumerate() {
        let l = l.trim_start_matches("pub(crate) ").trim_start_matches("pub(super) ").trim_start_matches("pub ");
        if let Some(name) = l.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
            let is_test = i > 0 && lines[i - 1].starts_with("#[cfg(test)]");
            if is_test { &mut test_only } else { &mut mods }.push(name.trim().to_string());
        }
    }
    // The crate root declares its internal modules through a macro: `internal!(a, b, c);`.
    if let Some(start) = text.find("internal!(") {
        let list = &text[start + "internal!(".len()..];
        let list = &list[..list.find(')').unwrap_or(0)];
        mods.extend(list.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()));
    }
    (mods, test_only)
}

/// Expand a use tree such as `a::{b, c::{d, e}}` into full paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else { return vec![tree.to_string()] };
    let prefix = tree[..open].trim_end_matches("::");
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut parts, mut depth, mut last) = (Vec::new(), 0, 0);
    for (i, ch) in inner.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[last..i]);
                last = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[last..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(expand)
        .map(|p| if p == "self" { prefix.to_string() } else { format!("{prefix}::{p}") })
        .collect()
}

/// Every `crate::...` or `super::...` path in a file's code.
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for stmt in code.split(';') {
        if let Some(i) = stmt.find("use ") {
            let tree = stmt[i + 4..].trim();
            if tree.starts_with("crate::") || tree.starts_with("super::") {
                out.extend(expand(tree));
                continue;
            }
        }
        for start in ["crate::", "super::"] {
            let mut from = 0;
            while let Some(i) = stmt[from..].find(start) {
                let at = from + i;
                let before = stmt[..at].chars().last();
                from = at + start.len();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let end = stmt[at..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .map_or(stmt.len(), |e| at + e);
                out.push(stmt[at..end].trim_end_matches(':').to_string());
            }
        }
    }
    out
}

/// The module a path names from module `here`: its longest prefix that is a module.
fn resolve(here: &str, path: &str, known: &BTreeMap<String, PathBuf>) -> Option<String> {
    let mut segs: Vec<&str> = path.split("::").collect();
    let mut base: Vec<&str> = if here.is_empty() { Vec::new() } else { here.split("::").collect() };
    match segs.first() {
        Some(&"crate") => {
            base.clear();
            segs.remove(0);
        }
        Some(&"super") => {
            while segs.first() == Some(&"super") {
                segs.remove(0);
                base.pop()?;
            }
        }
        _ => return None,
    }
    let mut best = base.join("::");
    for s in segs {
        base.push(s);
        let m = base.join("::");
        if known.contains_key(&m) {
            best = m;
        } else {
            break;
        }
    }
    Some(best)
}

/// Circles in the graph, each as the modules on it.
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Tarjan's strongly connected components: a component of more than one module is a circle.
    struct T<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on: BTreeSet<String>,
        out: Vec<Vec<String>>,
    }
    fn visit(t: &mut T, v: &str) {
        let i = t.index.len();
        t.index.insert(v.to_string(), i);
        t.low.insert(v.to_string(), i);
        t.stack.push(v.to_string());
        t.on.insert(v.to_string());
        for w in t.edges.get(v).into_iter().flatten() {
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(&w);
                let done = w == v;
                comp.push(w);
                if done {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn modules_form_no_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut known = modules(&src);
    let mut test_only = BTreeSet::new();
    for (m, p) in &known {
        let (_, tests) = declared(&fs::read_to_string(p).expect("read"));
        for t in tests {
            test_only.insert(if m.is_empty() { t } else { format!("{m}::{t}") });
        }
    }
    known.retain(|m, _| !test_only.contains(m));
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut count = 0;
    for (m, p) in &known {
        let text = fs::read_to_string(p).expect("read");
        let code = code(&text);
        let (mods, _) = declared(&code);
        let out = edges.entry(m.clone()).or_default();
        for child in mods {
            out.insert(if m.is_empty() { child } else { format!("{m}::{child}") });
        }
        for path in paths(&code) {
            if let Some(target) = resolve(m, &path, &known) {
                if target != *m {
                    out.insert(target);
                }
            }
        }
        count += out.len();
    }
    // The scan must see the structure: a sanity check that it found modules and edges.
    assert!(known.len() > 30 && count > 100, "{} modules, {count} edges", known.len());
    assert!(edges["core"].contains("core::task") && edges["core::task::store"].contains("core::lookup"));
    let found = circles(&edges);
    let mut shown = Vec::new();
    for c in &found {
        shown.push(format!("circle: {}", c.join(", ")));
        // The edges that run back up (to an ancestor or the crate root) are the usual cause.
        for m in c {
            for t in edges[m].iter().filter(|t| c.contains(t) && (t.is_empty() || m.starts_with(&format!("{t}::")))) {
                shown.push(format!(
                    "  {} -> {} (up)",
                    if m.is_empty() { "crate" } else { m },
                    if t.is_empty() { "crate" } else { t }
                ));
            }
        }
    }
    assert!(found.is_empty(), "modules in circles:\n{}", shown.join("\n"));
}

#[test]
fn the_checker_sees_circles() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges.entry("a".into()).or_default().insert("a::b".into());
    edges.entry("a::b".into()).or_default().insert("a".into());
    edges.entry("c".into()).or_default().insert("a".into());
    assert_eq!(circles(&edges), vec![vec!["a".to_string(), "a::b".to_string()]]);
    let known: BTreeMap<String, PathBuf> =
        ["", "a", "a::b", "a::b::c"].iter().map(|m| (m.to_string(), PathBuf::new())).collect();
    assert_eq!(resolve("a::b::c", "super::super::Thing", &known).as_deref(), Some("a"));
    assert_eq!(resolve("a", "crate::a::b::c::f", &known).as_deref(), Some("a::b::c"));
    assert_eq!(resolve("a", "crate::Error", &known).as_deref(), Some(""));
    assert_eq!(
        expand("crate::a::{b::{C, D}, self, e}"),
        vec!["crate::a::b::C", "crate::a::b::D", "crate::a", "crate::a::e"]
    );
}
