//! `sluice plugin new NAME [--path DIR] [--lang rust|python|typescript]`: a
//! policy project with a small policy that reads a setting and one test,
//! which builds and passes its test as generated, inside this repository
//! (`plugins/NAME`) or anywhere else. In Rust a crate (manifest, `src/lib.rs`);
//! in Python or TypeScript the SDK's template (`sdk/python/template`,
//! `sdk/js/template`), built with the toolchain this repository's `make`
//! installs.

use std::fs;
use std::path::{Path, PathBuf};

/// What `plugin new` made.
#[derive(Debug)]
pub struct Scaffolded {
    pub files: Vec<PathBuf>,
    /// What to run next, as docs/plugin-guide.md says it: test, build, check.
    pub next: Vec<String>,
}

/// The language a policy is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Lang {
    #[default]
    Rust,
    #[value(alias = "py")]
    Python,
    #[value(alias = "ts")]
    Typescript,
}

/// Write the project `name` into `dir` (created; refused when it exists and
/// is not empty). Returns the files written and the commands to run next.
pub fn scaffold(name: &str, dir: &Path, lang: Lang) -> Result<Scaffolded, String> {
    check_name(name)?;
    if dir.is_file() || dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!(
            "{} already exists and is not empty: nothing was written (choose another --path)",
            dir.display()
        ));
    }
    match lang {
        Lang::Rust => crate_at(name, dir),
        Lang::Python | Lang::Typescript => guest(name, dir, lang, &repo_sdk()?),
    }
}

fn crate_at(name: &str, dir: &Path) -> Result<Scaffolded, String> {
    let (manifest, next) = match find_workspace(dir) {
        Some(ws) if ws.taken.iter().any(|t| t == name) => {
            return Err(format!(
                "this workspace already has a crate named `{name}`: choose another name"
            ));
        }
        Some(ws) => (workspace_manifest(name, &ws), in_workspace(name)),
        None => (
            standalone_manifest(name, &sdk_dependency()),
            standalone(name, dir),
        ),
    };
    let files = vec![
        (dir.join("Cargo.toml"), manifest),
        (dir.join("src").join("lib.rs"), lib_rs(name)),
    ];
    Ok(Scaffolded {
        files: write_all(dir, files)?,
        next,
    })
}

fn write_all(dir: &Path, files: Vec<(PathBuf, String)>) -> Result<Vec<PathBuf>, String> {
    for (path, text) in &files {
        let parent = path.parent().unwrap_or(dir);
        fs::create_dir_all(parent)
            .and_then(|()| fs::write(path, text))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(files.into_iter().map(|(path, _)| path).collect())
}

/// The Python SDK's template, `{{name}}` and `{{sdk}}` to fill in.
const PYTHON: &[(&str, &str)] = &[
    (
        "policy.py",
        include_str!("../../../sdk/python/template/policy.py"),
    ),
    (
        "test_policy.py",
        include_str!("../../../sdk/python/template/test_policy.py"),
    ),
    (
        "Makefile",
        include_str!("../../../sdk/python/template/Makefile"),
    ),
];

/// The TypeScript SDK's template, `{{name}}` and `{{sdk}}` to fill in.
const TYPESCRIPT: &[(&str, &str)] = &[
    (
        "package.json",
        include_str!("../../../sdk/js/template/package.json"),
    ),
    (
        "tsconfig.json",
        include_str!("../../../sdk/js/template/tsconfig.json"),
    ),
    (
        ".gitignore",
        include_str!("../../../sdk/js/template/.gitignore"),
    ),
    (
        "src/policy.ts",
        include_str!("../../../sdk/js/template/src/policy.ts"),
    ),
    (
        "test/policy.test.ts",
        include_str!("../../../sdk/js/template/test/policy.test.ts"),
    ),
];

/// A Python or TypeScript project from its SDK's template. Inside this
/// repository's `plugins/` the repository's `make` tests and builds it; a
/// Cargo workspace whose members cover the folder is told to exclude it
/// (cargo would refuse a member without a manifest).
fn guest(name: &str, dir: &Path, lang: Lang, sdk: &Path) -> Result<Scaffolded, String> {
    let template = match lang {
        Lang::Python => PYTHON,
        _ => TYPESCRIPT,
    };
    let sdk_text = sdk.display().to_string();
    let files = (template.iter())
        .map(|(file, text)| {
            let text = text.replace("{{name}}", name).replace("{{sdk}}", &sdk_text);
            (dir.join(file), text)
        })
        .collect();
    let files = write_all(dir, files)?;
    if let Some((manifest, relative)) = covering_workspace(dir) {
        let text =
            fs::read_to_string(&manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
        fs::write(&manifest, exclude(&text, &relative))
            .map_err(|e| format!("{}: {e}", manifest.display()))?;
    }
    let (tests, builds) = match lang {
        Lang::Python => ("python-test", "python-plugins"),
        _ => ("typescript-test", "typescript-plugins"),
    };
    let dir_abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let in_repo = dir_abs.parent().and_then(|p| fs::canonicalize(p).ok())
        == fs::canonicalize(sdk.join("../plugins")).ok();
    let shown = dir.display();
    let next = match (in_repo, lang) {
        (true, _) => vec![
            format!("make {tests}"),
            format!("make {builds}"),
            format!("sluice plugin check build/plugins/{name}.wasm --domain {name}"),
        ],
        (false, Lang::Python) => vec![
            format!("cd {shown} && make test"),
            "make build".into(),
            format!("sluice plugin check {name}.wasm --domain {name}"),
        ],
        (false, _) => vec![
            format!("cd {shown} && npm test"),
            "npm run build".into(),
            format!("sluice plugin check build/{name}.wasm --domain {name}"),
        ],
    };
    Ok(Scaffolded { files, next })
}

/// This repository's `sdk/` folder: the Python and TypeScript SDKs are used
/// from the source tree the binary was built from.
fn repo_sdk() -> Result<PathBuf, String> {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("sdk");
    fs::canonicalize(&sdk)
        .ok()
        .filter(|p| p.join("wit/policy.wit").is_file())
        .ok_or_else(|| {
            format!(
                "the Python and TypeScript SDKs live in Sluice's source tree ({}), which this binary cannot find: run a `sluice` built from the source",
                sdk.display()
            )
        })
}

/// The manifest of a Cargo workspace whose `members` patterns cover `dir`,
/// and `dir` relative to it.
fn covering_workspace(dir: &Path) -> Option<(PathBuf, String)> {
    let (root, _, relative) = enclosing_workspace(dir)?;
    Some((root.join("Cargo.toml"), relative.to_str()?.to_owned()))
}

/// The nearest Cargo workspace above `dir` whose `members` cover it: its
/// root, its manifest's text, and `dir` relative to the root.
fn enclosing_workspace(dir: &Path) -> Option<(PathBuf, String, PathBuf)> {
    let dir = std::path::absolute(dir).ok()?;
    let (root, text) = dir.ancestors().skip(1).find_map(|root| {
        let text = fs::read_to_string(root.join("Cargo.toml")).ok()?;
        has_table(&text, "workspace").then(|| (root.to_path_buf(), text))
    })?;
    let relative = dir.strip_prefix(&root).ok()?.to_path_buf();
    let covered = members(&text).iter().any(|p| covers(p, &relative));
    covered.then_some((root, text, relative))
}

/// Whether the `members` pattern (`plugins/*`, `host`) names `relative`.
fn covers(pattern: &str, relative: &Path) -> bool {
    let (mut p, mut r) = (pattern.split('/'), relative.iter());
    std::iter::from_fn(|| match (p.next(), r.next()) {
        (None, None) => None,
        (Some(p), Some(r)) => Some(p == "*" || Some(p) == r.to_str()),
        _ => Some(false),
    })
    .all(|same| same)
}

/// `toml` with `entry` added to `[workspace] exclude` (the list made when
/// there is none), every other line as it was.
fn exclude(toml: &str, entry: &str) -> String {
    let mut lines: Vec<String> = toml.lines().map(str::to_owned).collect();
    let mut table = String::new();
    let (mut members_end, mut at) = (None, None);
    let mut in_members = false;
    for (i, line) in lines.iter().enumerate() {
        if let Some(h) = header(line) {
            table = h.to_owned();
            continue;
        }
        let key = line.split_once('=').map(|(k, _)| k.trim());
        if table == "workspace" && key == Some("exclude") {
            at = Some(i);
        }
        if table == "workspace" && key == Some("members") {
            in_members = true;
        }
        if in_members && line.contains(']') {
            members_end = Some(i);
            in_members = false;
        }
    }
    let quoted = format!("\"{entry}\"");
    match (at, members_end) {
        (Some(i), _) if lines[i].trim_end().ends_with('[') => {
            lines.insert(i + 1, format!("    {quoted},"));
        }
        (Some(i), _) => {
            let line = &lines[i];
            if let Some(close) = line.rfind(']') {
                let inside = line[..close].rsplit_once('[').map_or("", |(_, x)| x);
                let sep = if inside.trim().is_empty() { "" } else { ", " };
                lines[i] = format!("{}{sep}{quoted}{}", &line[..close], &line[close..]);
            }
        }
        (None, Some(i)) => lines.insert(i + 1, format!("exclude = [{quoted}]")),
        (None, None) => {}
    }
    let mut out = lines.join("\n");
    if toml.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// The guide's commands for a crate in this repository's workspace:
/// `make plugins` copies each component to `build/plugins/NAME.wasm`.
fn in_workspace(name: &str) -> Vec<String> {
    vec![
        format!("cargo test -p {name}"),
        "make plugins".into(),
        format!("sluice plugin check build/plugins/{name}.wasm --domain {name}"),
    ]
}

/// The guide's commands for a crate of its own: cargo names the component
/// after the library, with underscores.
fn standalone(name: &str, dir: &Path) -> Vec<String> {
    let dir = dir.display();
    let wasm = format!(
        "{dir}/target/wasm32-wasip2/plugin/{}.wasm",
        name.replace('-', "_")
    );
    vec![
        format!("cd {dir} && cargo test"),
        "cargo build --profile plugin --target wasm32-wasip2".into(),
        format!("sluice plugin check {wasm} --domain {name}"),
    ]
}

/// A crate name that is also a plugin file name and a domain name.
fn check_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.len() <= 64;
    if ok && RESERVED.contains(&name.replace('-', "_").as_str()) {
        return Err(format!(
            "`{name}` is reserved (a Rust keyword, a standard crate or one of Sluice's): choose another name"
        ));
    }
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a plugin name: 1 to 64 of a-z, 0-9 and '-', starting with a letter"
        ))
    }
}

/// Names a crate may not take: Rust keywords (its library would not be an
/// identifier), the standard crates, cargo's `test`, and Sluice's own crates.
const RESERVED: &[&str] = &[
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "gen",
    "macro",
    "override",
    "priv",
    "try",
    "typeof",
    "unsized",
    "virtual",
    "yield",
    "std",
    "core",
    "alloc",
    "proc_macro",
    "test",
    "sluice",
    "sluice_sdk",
];

/// What a workspace that already depends on the SDK lets a member inherit.
#[derive(Debug, Default, PartialEq)]
struct Workspace {
    /// Keys of `[workspace.package]` among version, edition, license, rust-version.
    package: Vec<&'static str>,
    /// `serde` is in `[workspace.dependencies]`.
    serde: bool,
    /// The package names the workspace's members already have.
    taken: Vec<String>,
}

/// The `name = "…"` of every member's manifest (`dir/*` patterns expanded).
fn member_names(root: &Path, toml: &str) -> Vec<String> {
    let dirs = members(toml)
        .into_iter()
        .flat_map(|pattern| match pattern.strip_suffix("/*") {
            Some(parent) => fs::read_dir(root.join(parent))
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default(),
            None => vec![root.join(pattern)],
        });
    dirs.filter_map(|d| fs::read_to_string(d.join("Cargo.toml")).ok())
        .filter_map(|text| {
            let line = text.lines().find(|l| l.trim_start().starts_with("name"))?;
            let (_, value) = line.split_once('=')?;
            Some(value.trim().trim_matches('"').to_owned())
        })
        .collect()
}

/// The workspace cargo would put a crate at `dir` in, when it has `sluice-sdk`
/// in `[workspace.dependencies]` and its `members` cover `dir`. Any other
/// case gets a standalone crate: its own `[workspace]` keeps cargo from
/// attaching it to an enclosing workspace that does not list it.
fn find_workspace(dir: &Path) -> Option<Workspace> {
    let (root, text, _) = enclosing_workspace(dir)?;
    let deps = keys(&text, "workspace.dependencies");
    deps.contains(&"sluice-sdk").then(|| Workspace {
        taken: member_names(&root, &text),
        package: ["version", "edition", "license", "rust-version"]
            .into_iter()
            .filter(|k| keys(&text, "workspace.package").contains(k))
            .collect(),
        serde: deps.contains(&"serde"),
    })
}

/// Whether a manifest has the table `name` (or a subtable of it).
fn has_table(toml: &str, name: &str) -> bool {
    toml.lines()
        .filter_map(header)
        .any(|h| h == name || h.strip_prefix(name).is_some_and(|r| r.starts_with('.')))
}

fn header(line: &str) -> Option<&str> {
    let line = line.trim();
    line.strip_prefix('[')?.strip_suffix(']').map(str::trim)
}

/// The first segment of each key of table `name` (`[name.key]` subtables too).
fn keys<'a>(toml: &'a str, name: &str) -> Vec<&'a str> {
    let mut table = "";
    let mut out = Vec::new();
    for line in toml.lines() {
        if let Some(h) = header(line) {
            table = h;
            if let Some(sub) = h.strip_prefix(name).and_then(|r| r.strip_prefix('.')) {
                out.push(sub.split('.').next().unwrap_or(sub));
            }
        } else if table == name
            && let Some((key, _)) = line.split_once('=')
        {
            out.push(key.trim().split('.').next().unwrap_or("").trim());
        }
    }
    out
}

/// The quoted entries of `[workspace] members = [...]`, over one line or several.
fn members(toml: &str) -> Vec<String> {
    let mut table = "";
    let mut list = String::new();
    let mut lines = toml.lines();
    while let Some(line) = lines.next() {
        if let Some(h) = header(line) {
            table = h;
        } else if table == "workspace"
            && let Some(("members", rest)) = line.split_once('=').map(|(k, v)| (k.trim(), v))
        {
            list.push_str(rest);
            while !list.contains(']') {
                let Some(more) = lines.next() else { break };
                list.push_str(more);
            }
        }
    }
    let inside = list.split_once('[').map_or("", |(_, rest)| rest);
    let inside = inside.split(']').next().unwrap_or("");
    inside
        .split(',')
        .map(|m| m.trim().trim_matches('"').to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

/// This repository's SDK when the binary runs where it was built, else the
/// published crate.
fn sdk_dependency() -> String {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("sdk");
    match fs::canonicalize(&sdk) {
        Ok(path) if path.join("Cargo.toml").is_file() => {
            let path = path
                .display()
                .to_string()
                .replace('\\', "\\\\")
                .replace('"', "\\\"");
            format!("{{ path = \"{path}\" }}")
        }
        _ => "\"0.3\"".to_owned(),
    }
}

const LIB_SECTION: &str = "[lib]
# cdylib: the component the gateway loads; rlib: the library native tests link.
crate-type = [\"cdylib\", \"rlib\"]
";

fn workspace_manifest(name: &str, ws: &Workspace) -> String {
    let mut package = String::new();
    for key in ["version", "edition", "license", "rust-version"] {
        match (ws.package.contains(&key), key) {
            (true, _) => package.push_str(&format!("{key}.workspace = true\n")),
            (false, "version") => package.push_str("version = \"0.1.0\"\n"),
            (false, "edition") => package.push_str("edition = \"2024\"\n"),
            (false, _) => {}
        }
    }
    let serde = match ws.serde {
        true => "serde = { workspace = true, features = [\"derive\"] }",
        false => "serde = { version = \"1\", features = [\"derive\"] }",
    };
    format!(
        "[package]\nname = \"{name}\"\ndescription = \"Sluice policy: {name}\"\n{package}publish = false\n\n\
         {LIB_SECTION}\n[dependencies]\n{serde}\nsluice-sdk.workspace = true\n"
    )
}

fn standalone_manifest(name: &str, sdk: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\ndescription = \"Sluice policy: {name}\"\nversion = \"0.1.0\"\n\
         edition = \"2024\"\npublish = false\n\n{LIB_SECTION}\n[dependencies]\n\
         serde = {{ version = \"1\", features = [\"derive\"] }}\nsluice-sdk = {sdk}\n\n\
         # A workspace of its own, even inside another project's folder.\n[workspace]\n\n\
         # `cargo build --profile plugin --target wasm32-wasip2`: a small component.\n\
         [profile.plugin]\ninherits = \"release\"\nopt-level = \"s\"\nstrip = true\n"
    )
}

/// `my-policy` → `MyPolicy`.
/// `my-board` → `MyBoardPolicy` (the suffix keeps it clear of the SDK's prelude).
fn type_name(name: &str) -> String {
    let camel: String = name
        .split('-')
        .flat_map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase())
                .into_iter()
                .chain(chars)
        })
        .collect();
    camel + "Policy"
}

fn lib_rs(name: &str) -> String {
    TEMPLATE
        .replace("{name}", name)
        .replace("{lib}", &name.replace('-', "_"))
        .replace("{Type}", &type_name(name))
}

/// A fixed-TTL store with one setting; every line is the SDK's usual shape.
const TEMPLATE: &str = r#"//! `{name}`: a Sluice domain policy. Values are stored as they come at
//! `{domain}:{key}`, expiring after the client's `?ttl_s=` or the domain's
//! `ttl_s`. Setting: `sliding = true` renews a key's TTL on every read.
//!
//! Test: `cargo test`. Build: `cargo build --profile plugin --target wasm32-wasip2`,
//! then copy `target/wasm32-wasip2/plugin/{lib}.wasm` into the gateway's plugins
//! folder as `{name}.wasm` before the configuration names a domain with
//! `plugin = "{name}"`. See docs/plugin-guide.md.

use sluice_sdk::prelude::*;

/// `[domains.NAME.settings]`; a setting this struct does not read is refused.
#[derive(Deserialize)]
pub struct Settings {
    /// Renew a key's TTL on every read.
    #[serde(default)]
    sliding: bool,
}

pub struct {Type} {
    domain: Domain,
    settings: Settings,
}

impl Policy for {Type} {
    type Settings = Settings;

    fn configure(domain: Domain, settings: Settings) -> Result<Self, Error> {
        Ok(Self { domain, settings })
    }

    fn plan(&self, req: &Request) -> Result<Plan, Error> {
        let key = self.domain.key(&req.key);
        Ok(match req.operation {
            Operation::Get if self.settings.sliding => Plan::new()
                .respond_with(Get::new(&key))
                .then(Expire::new(key, self.domain.ttl_ms)),
            Operation::Get => Plan::new().respond_with(Get::new(key)),
            Operation::Put => Plan::new().then(Set::new(key, req.value()?).ttl_ms(req.ttl_ms)),
            Operation::Delete => Plan::new().then(Delete::new(key)),
            Operation::Publish => return Err(Error::bad_request("this domain takes no events")),
        })
    }
}

sluice_sdk::export_policy!({Type});

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_sliding_read_answers_the_value_and_renews_its_ttl() -> Result<(), Error> {
        let settings = BTreeMap::from([("sliding", true)]);
        let policy = {Type}::from_settings(Domain::named("demo"), &settings)?;
        let plan = policy.plan(&Request::get("k"))?;
        assert_eq!(
            plan.actions(),
            [
                Action::Get(Get::new("demo:k")),
                Action::Expire(Expire::new("demo:k", 60_000))
            ]
        );
        assert_eq!(plan.response(), plan.actions().first());
        Ok(())
    }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_crate_file_and_domain_names_at_once() {
        for ok in ["leaderboard", "a", "my-policy2", &"a".repeat(64)] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "1st",
            "Board",
            "my_policy",
            "-a",
            "a b",
            &"a".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        for reserved in ["fn", "type", "test", "std", "sluice-sdk", "proc-macro"] {
            assert!(
                check_name(reserved).unwrap_err().contains("reserved"),
                "{reserved}"
            );
        }
        assert_eq!(type_name("my-policy2"), "MyPolicy2Policy");
        assert_eq!(type_name("get"), "GetPolicy", "clear of the prelude's Get");
        assert!(lib_rs("my-policy").contains("pub struct MyPolicyPolicy {"));
        assert!(lib_rs("my-policy").contains("target/wasm32-wasip2/plugin/my_policy.wasm"));
    }

    #[test]
    fn a_workspace_member_inherits_and_a_standalone_crate_stands_alone() {
        let ws = workspace_manifest(
            "board",
            &Workspace {
                package: vec!["version", "edition"],
                serde: true,
                taken: Vec::new(),
            },
        );
        assert!(ws.contains("version.workspace = true\nedition.workspace = true\npublish = false"));
        assert!(ws.contains("sluice-sdk.workspace = true") && !ws.contains("[workspace]"));
        assert!(ws.contains("crate-type = [\"cdylib\", \"rlib\"]"));
        let alone = standalone_manifest("board", "\"0.3\"");
        assert!(alone.contains("sluice-sdk = \"0.3\"\n") && alone.contains("\n[workspace]\n"));
        assert!(alone.contains("[profile.plugin]"));
    }

    #[test]
    fn manifests_are_read_for_tables_keys_and_members() {
        let root = "[workspace]\nmembers = [\n  \"host\",\n  \"plugins/*\",\n]\n\n\
                    [workspace.package]\nversion = \"1\"\nedition = \"2024\"\n\n\
                    [workspace.dependencies]\nsluice-sdk = { path = \"sdk\" }\nserde.version = \"1\"\n\n\
                    [workspace.dependencies.rmp]\nversion = \"0.8\"\n";
        assert!(has_table(root, "workspace") && !has_table("[package]\n", "workspace"));
        assert_eq!(
            keys(root, "workspace.dependencies"),
            ["sluice-sdk", "serde", "rmp"]
        );
        assert_eq!(keys(root, "workspace.package"), ["version", "edition"]);
        assert_eq!(members(root), ["host", "plugins/*"]);
        assert_eq!(
            members("[workspace]\nmembers = [\"a\", \"b\"]\n"),
            ["a", "b"]
        );
    }

    #[test]
    fn a_guest_project_is_excluded_from_the_cargo_workspace_that_covers_it() {
        let one_line =
            "[workspace]\nmembers = [\"plugins/*\"]\n\n[workspace.package]\nversion = \"1\"\n";
        assert_eq!(
            exclude(one_line, "plugins/py"),
            "[workspace]\nmembers = [\"plugins/*\"]\nexclude = [\"plugins/py\"]\n\n[workspace.package]\nversion = \"1\"\n"
        );
        let listed = "[workspace]\nmembers = [\n  \"a\",\n]\nexclude = [\"x\"]\n";
        assert!(exclude(listed, "y").contains("exclude = [\"x\", \"y\"]\n"));
        let empty = "[workspace]\nmembers = [\"a\"]\nexclude = []\n";
        assert!(exclude(empty, "y").contains("exclude = [\"y\"]\n"));
        let multi = "[workspace]\nmembers = [\"a\"]\nexclude = [\n    \"x\",\n]\n";
        assert!(exclude(multi, "y").contains("exclude = [\n    \"y\",\n    \"x\",\n]"));
        assert!(covers("plugins/*", Path::new("plugins/py")));
        assert!(!covers("plugins/*", Path::new("elsewhere/py")));
        assert!(!covers("plugins/*", Path::new("plugins/py/deeper")));
    }

    /// On disk, in a fresh temporary folder (no cargo, no network).
    #[test]
    fn writes_into_a_workspace_member_and_never_over_existing_files() {
        let root = std::env::temp_dir().join(format!("sluice-scaffold-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        fs::write(
            root.join("Cargo.toml"),
            "[workspace]\nmembers = [\"plugins/*\"]\n[workspace.dependencies]\nsluice-sdk = { path = \"sdk\" }\n",
        )
        .unwrap();
        let made = scaffold("board", &root.join("plugins/board"), Lang::Rust).unwrap();
        // What to run next is what the guide says for a workspace member.
        assert_eq!(
            made.next,
            [
                "cargo test -p board",
                "make plugins",
                "sluice plugin check build/plugins/board.wasm --domain board"
            ]
        );
        let files = made.files;
        assert_eq!(
            files,
            [
                root.join("plugins/board/Cargo.toml"),
                root.join("plugins/board/src/lib.rs")
            ]
        );
        let manifest = fs::read_to_string(&files[0]).unwrap();
        assert!(
            manifest.contains("sluice-sdk.workspace = true")
                && manifest.contains("version = \"0.1.0\"")
        );
        let again = scaffold("board", &root.join("plugins/board"), Lang::Python).unwrap_err();
        assert!(again.contains("not empty"), "{again}");
        // Outside `members`: a crate of its own.
        let made = scaffold("my-other", &root.join("elsewhere/other"), Lang::Rust).unwrap();
        let dir = root.join("elsewhere/other").display().to_string();
        assert_eq!(made.next[0], format!("cd {dir} && cargo test"));
        assert!(
            made.next[2].ends_with("/target/wasm32-wasip2/plugin/my_other.wasm --domain my-other"),
            "{:?}",
            made.next
        );
        let other = fs::read_to_string(root.join("elsewhere/other/Cargo.toml")).unwrap();
        assert!(other.contains("\n[workspace]\n"), "{other}");
        fs::remove_dir_all(&root).unwrap();
    }
}
