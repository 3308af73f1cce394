#![allow(clippy::unwrap_used)]
//! The house rules of ARCHITECTURE.md, checked on the source tree: which top-level module may
//! import which (so there is no import loop and nothing runs back up), only the CLI and the
//! sources import the simulator, and no file under src/ is over 700 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each module and the modules it may import (besides itself), as ARCHITECTURE.md lists.
fn allowed() -> BTreeMap<&'static str, Vec<&'static str>> {
    let below_serve = vec!["sources", "models", "perception", "geometry", "events", "vision", "pipeline", "runtime", "graph", "npy"];
    let mut m = BTreeMap::new();
    m.insert("app", [vec!["api", "serve"], below_serve.clone()].concat());
    m.insert("api", [vec!["serve"], below_serve.clone()].concat());
    m.insert("serve", below_serve);
    m.insert("sources", vec!["sim", "geometry", "vision", "graph"]);
    m.insert("train", vec!["graph"]);
    m.insert("sim", vec!["events", "geometry", "perception"]);
    m.insert("pipeline", vec!["models", "vision", "runtime", "graph"]);
    m.insert("models", vec!["runtime", "graph"]);
    m.insert("vision", vec!["models", "runtime", "graph"]);
    m.insert("perception", vec!["geometry", "events"]);
    m.insert("geometry", vec![]);
    m.insert("events", vec![]);
    m.insert("runtime", vec!["graph"]);
    m.insert("graph", vec![]);
    m.insert("npy", vec!["graph"]);
    m
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to (`src/serve/batcher/run.rs` -> `serve`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_string()
}

/// The top-level modules a file's code names through `crate::` (comments left out).
fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + 7..];
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() && name != "map_data" {
                out.insert(name);
            }
        }
        // `use crate::{a, b}` groups
        if let Some(i) = code.find("crate::{") {
            // the first name of each part at the group's own depth
            let (mut depth, mut start) = (0, true);
            let mut name = String::new();
            let flush = |name: &mut String, out: &mut BTreeSet<String>| {
                if !name.is_empty() {
                    out.insert(std::mem::take(name));
                }
            };
            for c in code[i + 8..].chars() {
                match c {
                    '}' if depth == 0 => break,
                    '{' => {
                        flush(&mut name, &mut out);
                        depth += 1;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        flush(&mut name, &mut out);
                        start = true;
                    }
                    c if start && depth == 0 && (c.is_alphanumeric() || c == '_') => name.push(c),
                    _ if start && !name.is_empty() => {
                        flush(&mut name, &mut out);
                        start = false;
                    }
                    _ => {}
                }
            }
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn modules_import_only_downwards_and_files_stay_small() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let rules = allowed();
    let mut wrong = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let rel = f.strip_prefix(&root).unwrap().display().to_string();
        let lines = text.lines().count();
        if lines > 700 {
            wrong.push(format!("{rel}: {lines} lines (at most 700)"));
        }
        let module = module_of(&src, f);
        let Some(may) = rules.get(module.as_str()) else {
            // the entry points (main, lib, cli, bin) may import everything
            assert!(["main", "lib", "cli", "bin"].contains(&module.as_str()), "{rel}: module '{module}' is not in ARCHITECTURE.md's table");
            continue;
        };
        for m in imports(&text) {
            if m == module {
                continue;
            }
            edges.entry(module.clone()).or_default().insert(m.clone());
            if !may.contains(&m.as_str()) {
                wrong.push(format!("{rel}: {module} imports {m}"));
            }
        }
    }
    assert!(wrong.is_empty(), "layout rules broken:\n{}", wrong.join("\n"));
    // no cycle among the edges actually used (the table is acyclic by construction; this also
    // guards an edited table)
    fn visit(n: &str, edges: &BTreeMap<String, BTreeSet<String>>, stack: &mut Vec<String>, done: &mut BTreeSet<String>) {
        if done.contains(n) {
            return;
        }
        assert!(!stack.iter().any(|s| s == n), "import loop: {} -> {n}", stack.join(" -> "));
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            visit(m, edges, stack, done);
        }
        stack.pop();
        done.insert(n.to_string());
    }
    let mut done = BTreeSet::new();
    for n in edges.keys() {
        visit(n, &edges, &mut Vec::new(), &mut done);
    }
    assert!(files.len() > 50, "found only {} source files", files.len());
}

#[test]
fn the_import_scanner_sees_groups_and_skips_comments() {
    let got = imports("use crate::{events, geometry::{Camera, V3}};\n// crate::serve is only mentioned\nlet x = crate::sim::run();");
    assert_eq!(got.into_iter().collect::<Vec<_>>(), ["events", "geometry", "sim"]);
}
