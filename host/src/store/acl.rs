//! At start, what the Redis user the gateway connects as may do. A user that
//! may run `FLUSHALL`, `CONFIG` or `KEYS` lets a bug in the gateway or a
//! plugin wipe, reconfigure or stall Redis; the gateway needs none of them
//! (docs/configuration.md has an ACL line that suffices), so it warns.
//!
//! The check asks `ACL WHOAMI` and `ACL GETUSER <user>`. A user with the
//! recommended rights may not run `ACL GETUSER`: then the gateway says, at
//! info level, that it could not check. Nothing here ever stops the gateway.

use super::pipeline::{one, pipeline};
use super::{Store, StoreError};
use redis::Value;
use std::time::Duration;

/// The commands the check looks for, with the ACL categories each belongs
/// to in Redis 7 (`COMMAND INFO`; for `CONFIG`, those of its subcommands).
const DANGEROUS: [(&str, &[&str]); 3] = [
    (
        "flushall",
        &["all", "keyspace", "write", "slow", "dangerous"],
    ),
    ("config", &["all", "admin", "slow", "dangerous"]),
    ("keys", &["all", "keyspace", "read", "slow", "dangerous"]),
];

/// What the check found out about the user.
#[derive(Debug, PartialEq)]
pub enum Rights {
    /// The user may run these (`CONFIG`: at least one of its subcommands).
    Broad {
        user: String,
        commands: Vec<&'static str>,
    },
    /// The user may run none of them.
    Narrow { user: String },
    /// Redis would not say (the user may not run `ACL GETUSER`, Redis
    /// before 6, a reply not understood).
    Unknown { user: Option<String>, why: String },
}

impl Store {
    /// Ask Redis what this gateway's user may run. An error only when Redis
    /// could not be asked at all (down): then ask again later.
    pub async fn acl_rights(&self) -> Result<Rights, StoreError> {
        let mut pipe = pipeline();
        pipe.cmd("ACL").arg("WHOAMI");
        let user = match one(self.query(&pipe, None).await?) {
            Ok(Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
            Ok(Value::SimpleString(s)) => s,
            Ok(other) => {
                return Ok(Rights::Unknown {
                    user: None,
                    why: format!("ACL WHOAMI answered {other:?}"),
                });
            }
            Err(e) => {
                return Ok(Rights::Unknown {
                    user: None,
                    why: format!("ACL WHOAMI: {e}"),
                });
            }
        };
        let mut pipe = pipeline();
        pipe.cmd("ACL").arg("GETUSER").arg(&user);
        Ok(match one(self.query(&pipe, None).await?) {
            Ok(reply) => match may_run(&reply) {
                Ok(commands) if commands.is_empty() => Rights::Narrow { user },
                Ok(commands) => Rights::Broad { user, commands },
                Err(why) => Rights::Unknown {
                    user: Some(user),
                    why,
                },
            },
            Err(e) => Rights::Unknown {
                user: Some(user),
                why: format!("ACL GETUSER: {e}"),
            },
        })
    }
}

/// What the check found, as one line for an operator (`None`: nothing to
/// warn about). The one wording of the warning, for the log and `check-config`.
pub fn warning(rights: &Rights) -> Option<String> {
    match rights {
        Rights::Broad { user, commands } => Some(format!(
            "the Redis user may run {} (user {user:?}): a bug in the gateway or a plugin could wipe or reconfigure Redis; give the gateway a user of its own with the ACL line in docs/configuration.md",
            commands.join(", ").to_uppercase()
        )),
        _ => None,
    }
}

/// Check once Redis answers (it may be down at start) and log what was found.
pub async fn report(store: Store) {
    let mut wait = Duration::from_millis(500);
    let rights = loop {
        match store.acl_rights().await {
            Ok(rights) => break rights,
            Err(e) => {
                tracing::debug!(error = %e, "the check of the Redis user's rights waits for Redis");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    };
    match rights {
        Rights::Broad { ref user, .. } => {
            let message = warning(&rights).unwrap_or_default();
            tracing::warn!(%user, "{message}");
        }
        Rights::Narrow { user } => {
            tracing::info!(%user, "the Redis user may not run FLUSHALL, CONFIG or KEYS");
        }
        Rights::Unknown { user, why } => {
            tracing::info!(
                user = user.as_deref().unwrap_or("?"),
                %why,
                "could not check what the Redis user may run; make sure it may not run FLUSHALL, CONFIG or KEYS"
            );
        }
    }
}

/// Which of `FLUSHALL`, `CONFIG` and `KEYS` (lowercase) the user of an
/// `ACL GETUSER` reply may run, by its own rules or by any of its selectors
/// (Redis 7). RESP3 (a map) and RESP2 (a flat array of pairs) alike.
pub fn may_run(reply: &Value) -> Result<Vec<&'static str>, String> {
    if matches!(reply, Value::Nil) {
        return Err("ACL GETUSER: no such user".into());
    }
    let mut rules = vec![
        text(field(reply, "commands").ok_or("ACL GETUSER: no `commands` in the reply")?)
            .ok_or("ACL GETUSER: `commands` is not text")?,
    ];
    if let Some(Value::Array(selectors)) = field(reply, "selectors") {
        rules.extend(
            selectors
                .iter()
                .filter_map(|s| field(s, "commands").and_then(text)),
        );
    }
    Ok(DANGEROUS
        .iter()
        .filter(|(name, categories)| rules.iter().any(|r| allows(r, name, categories)))
        .map(|(name, _)| *name)
        .collect())
}

/// Whether ACL command rules (`+@all -@dangerous +config|get`), applied in
/// order, let the user run `name` (or, for `+name|sub`, part of it).
fn allows(rules: &str, name: &str, categories: &[&str]) -> bool {
    rules.split_whitespace().fold(false, |allowed, rule| {
        match rule.to_ascii_lowercase().as_str() {
            "allcommands" => true,
            "nocommands" => false,
            rule => {
                let (grant, target) = match rule.split_at_checked(1) {
                    Some(("+", t)) => (true, t),
                    Some(("-", t)) => (false, t),
                    _ => return allowed,
                };
                let hit = match target.strip_prefix('@') {
                    Some(category) => categories.contains(&category),
                    // `-name|sub` still leaves the other subcommands.
                    None => match target.split_once('|') {
                        Some((command, _)) => command == name && grant,
                        None => target == name,
                    },
                };
                if hit { grant } else { allowed }
            }
        }
    })
}

/// A field of a map reply (RESP3) or of a flat array of pairs (RESP2).
fn field<'a>(reply: &'a Value, name: &str) -> Option<&'a Value> {
    let is = |k: &Value| text(k).is_some_and(|k| k.eq_ignore_ascii_case(name));
    match reply {
        Value::Map(pairs) => pairs.iter().find(|(k, _)| is(k)).map(|(_, v)| v),
        Value::Array(items) => items
            .chunks_exact(2)
            .find(|pair| is(&pair[0]))
            .map(|pair| &pair[1]),
        _ => None,
    }
}

fn text(v: &Value) -> Option<&str> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        Value::VerbatimString { text, .. } => Some(text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    /// An `ACL GETUSER` reply as RESP3 sends it.
    fn user(commands: &str, selectors: &[&str]) -> Value {
        let selectors = selectors
            .iter()
            .map(|c| {
                Value::Map(vec![
                    (s("commands"), s(c)),
                    (s("keys"), s("~*")),
                    (s("channels"), s("")),
                ])
            })
            .collect();
        Value::Map(vec![
            (s("flags"), Value::Array(vec![s("on")])),
            (s("passwords"), Value::Array(vec![])),
            (s("commands"), s(commands)),
            (s("keys"), s("~*")),
            (s("channels"), s("&*")),
            (s("selectors"), Value::Array(selectors)),
        ])
    }

    fn rights(commands: &str) -> Vec<&'static str> {
        may_run(&user(commands, &[])).unwrap()
    }

    #[test]
    fn a_user_with_every_command_may_run_all_three() {
        assert_eq!(rights("+@all"), ["flushall", "config", "keys"]);
        assert_eq!(rights("allcommands"), ["flushall", "config", "keys"]);
    }

    #[test]
    fn categories_and_commands_apply_in_order() {
        assert!(rights("+@all -@dangerous").is_empty());
        assert_eq!(rights("+@all -@dangerous +config|get"), ["config"]);
        assert_eq!(rights("+@all -@admin"), ["flushall", "keys"]);
        assert_eq!(rights("+@all -keys -config -flushall"), Vec::<&str>::new());
        assert_eq!(rights("-@all +@read"), ["keys"]);
        assert_eq!(rights("-@all +@write +get"), ["flushall"]);
        assert_eq!(rights("-@all +KEYS"), ["keys"]);
        // Removing one subcommand leaves the others.
        assert_eq!(rights("+@all -config|set -flushall -keys"), ["config"]);
        assert!(rights("nocommands").is_empty());
        assert!(rights("+@all nocommands").is_empty());
    }

    #[test]
    fn the_documented_sluice_line_may_run_none_of_them() {
        let doc = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md");
        let doc = std::fs::read_to_string(doc).unwrap();
        let line = doc
            .lines()
            .find(|l| l.starts_with("ACL SETUSER sluice reset "))
            .expect("docs/configuration.md has the ACL line");
        // `reset` starts from no commands; the other tokens are not command rules.
        assert!(rights(line).is_empty(), "{line}");
        assert!(line.contains("+evalsha") && line.contains("~ratelimit:*"));
    }

    #[test]
    fn a_selector_counts_as_much_as_the_root_rules() {
        let reply = user("-@all +get", &["-@all +keys"]);
        assert_eq!(may_run(&reply).unwrap(), ["keys"]);
    }

    #[test]
    fn a_resp2_reply_reads_the_same() {
        let reply = Value::Array(vec![
            s("flags"),
            Value::Array(vec![s("on")]),
            s("commands"),
            s("+@all -flushall"),
            s("selectors"),
            Value::Array(vec![]),
        ]);
        assert_eq!(may_run(&reply).unwrap(), ["config", "keys"]);
    }

    #[test]
    fn a_reply_not_understood_is_an_error_not_a_guess() {
        assert!(may_run(&Value::Nil).is_err());
        assert!(may_run(&Value::Map(vec![])).is_err());
        assert!(may_run(&Value::Int(1)).is_err());
    }
}
