//! Where each key of the file is written, from the TOML parser's own spans,
//! and the [`Checker`] a section's checks refuse through, which puts the
//! refusal on that line.

use super::ConfigError;
use std::collections::HashMap;
use std::path::Path;
use toml::de::{DeTable, DeValue};

/// Key path → 1-based line, for every key however the file writes it: in a
/// table header, as a dotted key, inside an inline table. A path holds one
/// segment a key, as written (a quoted `"a.b"` stays one).
pub(super) struct Lines(HashMap<Vec<String>, usize>);

impl Lines {
    pub(super) fn new(text: &str, document: &DeTable<'_>) -> Lines {
        let breaks: Vec<usize> = text.match_indices('\n').map(|(at, _)| at).collect();
        let mut lines = Lines(HashMap::new());
        lines.add(document, &mut Vec::new(), &|offset| {
            breaks.partition_point(|&b| b < offset) + 1
        });
        lines
    }

    /// Arrays are not entered: no check looks inside one.
    fn add(&mut self, table: &DeTable<'_>, path: &mut Vec<String>, line: &dyn Fn(usize) -> usize) {
        for (key, value) in table.iter() {
            path.push(key.get_ref().to_string());
            self.0.insert(path.clone(), line(key.span().start));
            if let DeValue::Table(inner) = value.get_ref() {
                self.add(inner, path, line);
            }
            path.pop();
        }
    }

    /// The line of `path`, or of its nearest parent the file writes (a key
    /// left out is looked for in its table); 1 when the file names none.
    fn of(&self, path: &[String]) -> usize {
        (1..=path.len())
            .rev()
            .find_map(|n| self.0.get(&path[..n]).copied())
            .unwrap_or(1)
    }
}

/// A table to refuse things in: the file, where its keys are, and the
/// table's path. A check says what is wrong and with which key; the line
/// and the field's full name follow from here.
#[derive(Clone)]
pub(super) struct Checker<'a> {
    file: &'a Path,
    lines: &'a Lines,
    path: Vec<String>,
}

impl<'a> Checker<'a> {
    /// The whole file.
    pub(super) fn new(file: &'a Path, lines: &'a Lines) -> Checker<'a> {
        Checker {
            file,
            lines,
            path: Vec::new(),
        }
    }

    /// The table or key `name` in this one: one key, whatever it holds (a
    /// domain named `a.b` is refused on its own line).
    pub(super) fn at(&self, name: &str) -> Checker<'a> {
        let mut inner = self.clone();
        inner.path.push(name.to_owned());
        inner
    }

    /// `field` (dotted: `min_ttl_s`, `tls.ca_file`) refused.
    pub(super) fn invalid(&self, field: &str, message: impl Into<String>) -> ConfigError {
        field
            .split('.')
            .fold(self.clone(), |at, key| at.at(key))
            .refuse(message)
    }

    /// This table (or key) itself refused.
    pub(super) fn refuse(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.file.to_owned(),
            line: self.lines.of(&self.path),
            field: self.path.join("."),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{PATH, refusal};
    use super::*;

    fn line(text: &str, path: &[&str]) -> usize {
        let lines = Lines::new(text, DeTable::parse(text).unwrap().get_ref());
        lines.of(&path.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn every_way_of_writing_a_key_has_its_line() {
        let text = "top.dotted = 1\n[a]\nkey_long = 1\nkey = 2\n\n[b . \"c.d\"] # a comment\ninline = { x = 1,\n  y = 2 }\n";
        assert_eq!(line(text, &["top", "dotted"]), 1);
        assert_eq!(line(text, &["a"]), 2);
        assert_eq!(line(text, &["a", "key"]), 4);
        assert_eq!(line(text, &["b", "c.d"]), 6, "a quoted key is one key");
        assert_eq!(line(text, &["b", "c.d", "inline", "x"]), 7);
        assert_eq!(line(text, &["b", "c.d", "inline", "y"]), 8);
        assert_eq!(line(text, &["a", "absent"]), 2, "the table's own line");
        assert_eq!(line(text, &["absent", "key"]), 1, "nothing: line 1");
    }

    #[test]
    fn a_bad_value_as_a_dotted_key_is_refused_on_its_line() {
        let text = "redis.pool_size = 0\n[plugins]\ndir = \"p\"\n";
        assert_eq!(
            refusal(text),
            format!("{PATH}:1: redis.pool_size: must be at least 1")
        );
        let text =
            "[plugins]\ndir = \"p\"\n[domains]\ncache.plugin = \"x\"\n\ncache.min_ttl_s = 0\n";
        assert_eq!(
            refusal(text),
            format!("{PATH}:6: domains.cache.min_ttl_s: must be at least 1: every key expires")
        );
    }

    #[test]
    fn a_bad_value_in_an_inline_table_is_refused_on_its_line() {
        let text = "[plugins]\ndir = \"p\"\n[domains]\ncache = { plugin = \"x\", min_ttl_s = 0 }\n";
        assert_eq!(
            refusal(text),
            format!("{PATH}:4: domains.cache.min_ttl_s: must be at least 1: every key expires")
        );
        // Left out of an inline table: the table's own line.
        let text =
            "[plugins]\ndir = \"p\"\n[domains]\ncache = {\n  plugin = \"x\",\n  max_ttl_s = 30 }\n";
        assert_eq!(
            refusal(text),
            format!("{PATH}:4: domains.cache.ttl_s: 60 is outside min_ttl_s..=max_ttl_s (1..=30)")
        );
        let text = "[plugins]\ndir = \"p\"\n[redis]\nurl = \"rediss://db\"\ntls = { ca_file = \"absent.pem\" }\n";
        let e = refusal(text);
        assert!(
            e.starts_with(&format!(
                "{PATH}:5: redis.tls.ca_file: conf/absent.pem: cannot read it"
            )),
            "{e}"
        );
    }
}
