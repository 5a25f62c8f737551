//! The library's stages import only downwards: a test that fails on an import cycle between
//! top-level modules, or on a module importing one of a higher stage (see ARCHITECTURE.md).
//!
//! It reads `src/` as text: every `crate::NAME` path (also inside `use crate::{a, b::c}`) outside
//! comments, `#[cfg(test)]` modules and `tests.rs` / `*_tests.rs` files, in every module file of the library.
//! `src/main.rs` and `src/cli/` are the binary, above every stage.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The stages, lowest first. A module may import modules of its own layer or lower ones.
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["stats", "metrics", "vocab"],
    &["ingest", "data"],
    &["segment"],
    &["encode"],
    &["heads"],
    &["actors", "terms", "attribution"],
    &["pipeline"],
    &["aggregate"],
    &["dataset"],
    &["compare"],
    &["report"],
    &["train"],
    &["models"],
    &["eval"],
];

/// Up-arrows still to remove, each with its reason. The test fails on any other up-arrow, and
/// also when one of these is gone (so the list only shrinks).
const KNOWN_UP_ARROWS: &[(&str, &str, &str)] = &[];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without comments and without its `#[cfg(test)]` items.
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<i64> = None;
    let mut depth: i64 = 0;
    let mut pending_cfg_test = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("//") {
            continue;
        }
        let code = match t.find("//") {
            Some(i) if !t[..i].contains('"') => &t[..i],
            _ => t,
        };
        if code.starts_with("#[cfg(test)]") {
            pending_cfg_test = true;
            continue;
        }
        let opens = code.matches('{').count() as i64;
        let closes = code.matches('}').count() as i64;
        if pending_cfg_test && skip_depth.is_none() {
            skip_depth = Some(depth);
            pending_cfg_test = false;
            if opens == 0 && code.ends_with(';') {
                // `#[cfg(test)] mod tests;` or a one-line item
                skip_depth = None;
                continue;
            }
        }
        depth += opens - closes;
        if let Some(d) = skip_depth {
            if depth <= d {
                skip_depth = None;
            }
            continue;
        }
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// The top-level modules named by `crate::` paths in `code`.
fn imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `slant_crate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            let mut level = 0;
            let mut item = String::new();
            for c in group[..end].chars() {
                match c {
                    '{' => level += 1,
                    '}' => level -= 1,
                    ',' if level == 0 => {
                        found.insert(ident(item.trim()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            found.insert(ident(item.trim()));
        } else {
            found.insert(ident(rest));
        }
    }
    found.retain(|m| !m.is_empty() && m != "self" && m != "Result" && m != "Error");
    found
}

/// Top-level module -> the top-level modules it imports (other than itself).
fn module_graph(src: &Path) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut graph: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "main" || module == "cli" || module == "lib" {
            continue;
        }
        if f.file_name()
            .is_some_and(|n| n == "tests.rs" || n.to_string_lossy().ends_with("_tests.rs"))
        {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(&f).unwrap());
        let entry = graph.entry(module.clone()).or_default();
        for m in imports(&code) {
            if m != module {
                entry.entry(m).or_default().push(rel.display().to_string());
            }
        }
    }
    graph
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn every_library_module_has_a_stage() {
    let graph = module_graph(&src_dir());
    let unknown: Vec<&String> = graph.keys().filter(|m| layer_of(m).is_none()).collect();
    assert!(
        unknown.is_empty(),
        "modules with no stage in tests/architecture.rs LAYERS: {unknown:?}"
    );
}

#[test]
fn no_module_imports_a_higher_stage() {
    let graph = module_graph(&src_dir());
    let mut bad = Vec::new();
    let mut known_seen = BTreeSet::new();
    for (m, deps) in &graph {
        let Some(lm) = layer_of(m) else { continue };
        for (d, files) in deps {
            match layer_of(d) {
                Some(ld) if ld <= lm => {}
                Some(_) if KNOWN_UP_ARROWS.iter().any(|(a, b, _)| a == m && b == d) => {
                    known_seen.insert((m.clone(), d.clone()));
                }
                Some(_) => bad.push(format!("{m} -> {d} (in {})", files.join(", "))),
                None => bad.push(format!(
                    "{m} -> unknown module {d} (in {})",
                    files.join(", ")
                )),
            }
        }
    }
    assert!(
        bad.is_empty(),
        "imports running up the stages:\n{}",
        bad.join("\n")
    );
    for (a, b, why) in KNOWN_UP_ARROWS {
        assert!(
            known_seen.contains(&(a.to_string(), b.to_string())),
            "{a} -> {b} is gone: remove it from KNOWN_UP_ARROWS ({why})"
        );
    }
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let graph = module_graph(&src_dir());
    // Depth-first search for a back edge.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeMap<String, Vec<String>>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(m.to_string(), 1);
        path.push(m.to_string());
        let deps: Vec<String> = graph
            .get(m)
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default();
        for d in deps {
            if KNOWN_UP_ARROWS.iter().any(|(a, b, _)| *a == m && *b == d) {
                continue;
            }
            match state.get(&d).copied().unwrap_or(0) {
                1 => {
                    let start = path.iter().position(|p| *p == d).unwrap();
                    let mut cycle = path[start..].to_vec();
                    cycle.push(d);
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(&d, graph, state, path) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(m.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in graph.keys() {
        if state.get(m).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(m, &graph, &mut state, &mut Vec::new()) {
                panic!("import cycle between top-level modules: {}", c.join(" -> "));
            }
        }
    }
}

#[test]
fn the_checker_sees_imports_and_skips_tests_and_comments() {
    let code = code_of(
        "use crate::encode::Encoder;\n\
         use crate::{heads, stats::mean};\n\
         // use crate::eval;\n\
         fn f() { let _ = crate::segment::split(\"x\"); }\n\
         #[cfg(test)]\n\
         mod tests {\n    use crate::train;\n}\n",
    );
    let found = imports(&code);
    let want: BTreeSet<String> = ["encode", "heads", "stats", "segment"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(found, want);
}
