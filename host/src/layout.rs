//! The layout, held to the docs and to itself: docs/architecture.md's
//! "where things live" table and its stops of a request name what exists,
//! and no two modules import each other (a module and its own parent or
//! child aside), however many steps apart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `a/{b,c}.rs` → `a/b.rs`, `a/c.rs`.
fn expand(pattern: &str) -> Vec<String> {
    match (pattern.find('{'), pattern.find('}')) {
        (Some(open), Some(close)) if open < close => pattern[open + 1..close]
            .split(',')
            .map(|alt| format!("{}{alt}{}", &pattern[..open], &pattern[close + 1..]))
            .collect(),
        _ => vec![pattern.to_owned()],
    }
}

/// docs/architecture.md's "where things live" table names files that exist.
#[test]
fn the_architecture_table_matches_the_tree() {
    let root = repo();
    let doc = architecture();
    let table = section(&doc, "## Where things live", "\n\n");
    let mut checked = 0;
    for row in table.lines().skip(3) {
        let file_cell = row.split('|').nth(2).unwrap_or("");
        for path in file_cell.split('`').skip(1).step_by(2).flat_map(expand) {
            let found = [root.join("host/src").join(&path), root.join(&path)]
                .iter()
                .any(|p| p.exists());
            assert!(
                found,
                "docs/architecture.md names {path}, which does not exist"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} paths in the table");
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn architecture() -> String {
    std::fs::read_to_string(repo().join("docs/architecture.md")).unwrap()
}

/// The part of `doc` after `heading`, up to `end`.
fn section<'d>(doc: &'d str, heading: &str, end: &str) -> &'d str {
    let after = doc
        .split(heading)
        .nth(1)
        .unwrap_or_else(|| panic!("docs/architecture.md has no {heading:?}"));
    after.split(end).next().unwrap_or(after)
}

/// docs/architecture.md's stops of one GET and one PUT: every
/// `file::function` names a function of that file.
#[test]
fn the_stops_of_a_request_are_functions_of_their_files() {
    let doc = architecture();
    let stops = section(&doc, "## The path of one request", "\n## ");
    let mut checked = 0;
    for stop in stops.split('`').skip(1).step_by(2) {
        let Some((file, function)) = stop.split_once(".rs::") else {
            continue;
        };
        let path = repo().join("host/src").join(format!("{file}.rs"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("docs/architecture.md names {file}.rs: {e}"));
        let name = function.rsplit("::").next().unwrap_or(function);
        let defined = [format!("fn {name}("), format!("fn {name}<")]
            .iter()
            .any(|d| text.contains(d.as_str()));
        assert!(
            defined,
            "docs/architecture.md names {stop}, which is not there"
        );
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} stops");
}

/// Each module's file under host/src, by its path of names.
fn modules() -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = repo().join("host/src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files
        .into_iter()
        .map(|file| {
            let rel = file.strip_prefix(&src).unwrap().with_extension("");
            let mut names: Vec<String> = rel
                .iter()
                .map(|n| n.to_string_lossy().into_owned())
                .collect();
            if ["mod", "lib", "main"].contains(&names[names.len() - 1].as_str()) {
                names.pop();
            }
            (names, file)
        })
        .collect()
}

/// The `crate::…` and `super::…` paths a file's code names (its test
/// module and comments left out), each as a path of names from the root.
fn paths_named(module: &[String], text: &str) -> Vec<Vec<String>> {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    let code: String = code
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> usize {
        s.find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(s.len())
    };
    let mut found = Vec::new();
    for (at, head) in code
        .match_indices("crate::")
        .chain(code.match_indices("super::"))
    {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut base: Vec<String> = match head {
            "crate::" => Vec::new(),
            _ => module[..module.len().saturating_sub(1)].to_vec(),
        };
        let mut rest = &code[at + head.len()..];
        loop {
            if let Some(group) = rest.strip_prefix('{') {
                let inner = &group[..group.find('}').unwrap_or(group.len())];
                for item in inner.split(',') {
                    let item = item.trim();
                    let name = &item[..ident(item)];
                    if !name.is_empty() && name != "self" {
                        found.push([base.clone(), vec![name.to_owned()]].concat());
                    }
                }
                break;
            }
            let n = ident(rest);
            if n == 0 {
                break;
            }
            match &rest[..n] {
                "super" => {
                    base.pop();
                }
                name => base.push(name.to_owned()),
            }
            match rest[n..].strip_prefix("::") {
                Some(next) => rest = next,
                None => break,
            }
        }
        found.push(base);
    }
    found
}

/// No import cycle between modules: the dependencies point one way, so a
/// module can be read (and changed) knowing only what it uses.
#[test]
fn modules_depend_on_each_other_one_way_only() {
    let modules = modules();
    // The deepest module a path reaches.
    let resolve = |path: &[String]| -> Vec<String> {
        (0..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|m| modules.contains_key(m))
            .unwrap_or_default()
    };
    let related = |a: &[String], b: &[String]| a.starts_with(b) || b.starts_with(a);
    let mut uses: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).unwrap();
        let targets = paths_named(module, &text)
            .iter()
            .map(|p| resolve(p))
            .filter(|t| !related(module, t))
            .collect();
        uses.insert(module.clone(), targets);
    }
    // Every module a module reaches, by its uses and theirs.
    let reach = |from: &Vec<String>| -> BTreeSet<Vec<String>> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(m) = todo.pop() {
            for next in uses.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let mut cycles = Vec::new();
    for (module, targets) in &uses {
        for t in targets {
            if reach(t).contains(module) {
                cycles.push(format!("{} -> {}", module.join("::"), t.join("::")));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "import cycles (each edge lies on one): {cycles:#?}"
    );
    assert!(uses.len() > 60, "only {} modules read", uses.len());
}

#[test]
fn the_scan_sees_groups_nested_paths_and_super() {
    let module: Vec<String> = ["store", "cluster", "link"].map(String::from).to_vec();
    let text = "use super::topology;\nuse crate::store::{chain::Connection, error};\nlet x = crate::a::b(); // crate::not::this\n";
    let found: Vec<String> = paths_named(&module, text)
        .iter()
        .map(|p| p.join("::"))
        .collect();
    for expected in [
        "store::cluster::topology",
        "store::chain",
        "store::error",
        "a::b",
    ] {
        assert!(
            found.contains(&expected.to_owned()),
            "{expected}: {found:?}"
        );
    }
    assert!(!found.iter().any(|f| f.starts_with("not")), "{found:?}");
}
