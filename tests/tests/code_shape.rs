//! The code's shape as ARCHITECTURE.md promises it (issue 17), checked on the sources so a
//! change that breaks it fails CI: no source file over 900 lines, no protocol name in the
//! engine or the bricks, no brickd in the gateway, no downcast in the gateway, and no two
//! modules of a crate importing each other, directly or around a loop.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const CRATES: &[&str] = &[
    "engine",
    "brickd",
    "protocols/fuse",
    "protocols/nfs",
    "protocols/s3",
    "protocols/smb",
    "gateway",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn sources(krate: &str) -> Vec<PathBuf> {
    let mut v = Vec::new();
    rust_files(&root().join(krate).join("src"), &mut v);
    v.sort();
    v
}

#[test]
fn no_source_file_is_over_900_lines() {
    let long: Vec<String> = CRATES
        .iter()
        .flat_map(|c| sources(c))
        .filter_map(|p| {
            let n = fs::read_to_string(&p).unwrap().lines().count();
            (n > 900).then(|| format!("{} ({n} lines)", p.display()))
        })
        .collect();
    assert!(long.is_empty(), "over 900 lines: {long:?}");
}

#[test]
fn engine_and_bricks_name_no_protocol_and_gateway_uses_interfaces() {
    for c in ["engine", "brickd"] {
        for p in sources(c) {
            let t = fs::read_to_string(&p).unwrap().to_lowercase();
            assert!(!t.contains("s3"), "{} names S3", p.display());
        }
    }
    let manifest = fs::read_to_string(root().join("gateway/Cargo.toml")).unwrap();
    assert!(!manifest.contains("brickd"), "gateway depends on brickd");
    for p in sources("gateway") {
        let t = fs::read_to_string(&p).unwrap();
        assert!(
            !t.contains("downcast") && !t.contains("as_any"),
            "{} downcasts a translator",
            p.display()
        );
    }
}

/// A module: its tree (the library, or one binary) and its path in that tree.
type Module = (String, Vec<String>);

/// The module a source file is: `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `lib.rs`,
/// `main.rs` are the root (""); a binary's folder (`src/bin/x/…`) is its own tree.
fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let tree = if parts.first().is_some_and(|p| p == "bin") {
        let bin = parts.remove(0);
        if parts.len() == 1 {
            return (format!("{bin}/{}", parts[0]), Vec::new());
        }
        format!("{bin}/{}", parts.remove(0))
    } else {
        "lib".to_string()
    };
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_string());
    }
    (tree, parts)
}

/// Paths named after `crate::`/`super::`/`self::` in a file, as absolute module paths.
fn named_paths(text: &str, me: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '{'))
        .collect();
    for w in words {
        let w = w.trim_end_matches('{').trim_end_matches("::");
        let segs: Vec<&str> = w.split("::").collect();
        let (mut base, rest): (Vec<String>, &[&str]) = match segs.first() {
            Some(&"crate") => (Vec::new(), &segs[1..]),
            Some(&"super") => {
                // `super` is the parent module, for `a/b.rs` and `a/b/mod.rs` alike.
                let mut b = me.to_vec();
                let mut i = 0;
                while segs.get(i) == Some(&"super") {
                    b.pop();
                    i += 1;
                }
                (b, &segs[i..])
            }
            _ => continue,
        };
        for s in rest {
            if s.is_empty() || *s == "{" {
                break;
            }
            base.push(s.to_string());
        }
        out.push(base);
    }
    out
}

#[test]
fn no_two_modules_of_a_crate_import_each_other() {
    let mut loops = Vec::new();
    for c in CRATES {
        let src = root().join(c).join("src");
        // Each tree's modules: path → file.
        let mut modules: BTreeMap<Module, PathBuf> = BTreeMap::new();
        for f in sources(c) {
            modules.insert(module_of(&src, &f), f);
        }
        // Edges: a module → the longest known module each of its `crate::`/`super::` paths
        // names (a child naming what its parent re-exports is an edge to the parent).
        let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
        for ((tree, me), file) in &modules {
            // Comments name modules without importing them, and a file's test module (its
            // `super` is the file itself) is not part of the build.
            let whole = fs::read_to_string(file).unwrap();
            let text: String = whole
                .split("#[cfg(test)]")
                .next()
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            for mut p in named_paths(&text, me) {
                while !p.is_empty() && !modules.contains_key(&(tree.clone(), p.clone())) {
                    p.pop();
                }
                // The root (lib.rs/main.rs) declares every module; naming it is no edge.
                if p.is_empty() || &p == me {
                    continue;
                }
                edges
                    .entry((tree.clone(), me.clone()))
                    .or_default()
                    .insert((tree.clone(), p));
            }
        }
        // A loop: a module reachable from one it reaches.
        for (from, tos) in &edges {
            for to in tos {
                let mut seen = BTreeSet::new();
                let mut stack = vec![to.clone()];
                while let Some(m) = stack.pop() {
                    if &m == from {
                        loops.push(format!(
                            "{c}: {} -> {} -> … -> back",
                            from.1.join("::"),
                            to.1.join("::")
                        ));
                        break;
                    }
                    if seen.insert(m.clone()) {
                        stack.extend(edges.get(&m).into_iter().flatten().cloned());
                    }
                }
            }
        }
    }
    assert!(loops.is_empty(), "import loops:\n{}", loops.join("\n"));
}
