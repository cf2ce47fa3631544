//! One home per plan action. Each action kind of the WIT contract lives in
//! one file of this module, which says everything the host knows about it:
//! the keys it touches, whether it writes, what else it must satisfy, the
//! Redis command(s) it becomes (and the script it calls, if any) and how
//! its reply becomes a response body.
//! Validation, execution, `sluice plugin check`'s description and the near
//! cache all ask the same [`Kind`], so what a plan is checked as, what it is
//! described as and what is sent cannot drift apart. Adding an action: one
//! file here, one line in [`kind`], and its case in the WIT.

mod counter;
mod hash;
mod key;
mod list;
mod script;
mod set;
mod stream;
mod string;
mod zset;

pub use stream::published_ids;

use super::StoreError;
use super::reply;
use super::scripts::{Script, Scripts};
use crate::plugin::bindings::{Action, Number, Plan};
use redis::cluster_routing::Slot;
use redis::{Cmd, Value};
use std::sync::Arc;

/// Bounds on what one plan may ask for.
#[derive(Debug, Clone, Copy)]
pub struct PlanLimits {
    /// Actions in one plan.
    pub max_actions: usize,
    /// Bytes of one Redis key (namespace included).
    pub max_key_bytes: usize,
    /// Bytes of one value, field or member.
    pub max_value_bytes: usize,
    /// Fields, members or arguments in one action.
    pub max_items: usize,
    /// On a Redis Cluster: every key of one plan in one hash slot (a
    /// pipeline or transaction cannot span nodes).
    pub one_slot: bool,
}

impl Default for PlanLimits {
    fn default() -> Self {
        PlanLimits {
            max_actions: 64,
            max_key_bytes: 1024,
            max_value_bytes: 4 << 20,
            max_items: 1024,
            one_slot: false,
        }
    }
}

/// The TTLs of a domain, in ms: what a write without TTL gets, and the
/// bounds every TTL is kept within.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TtlBounds {
    pub default_ms: u64,
    pub min_ms: u64,
    pub max_ms: u64,
}

impl TtlBounds {
    /// The TTL a write gets: its own, else the plan's, else the default;
    /// clamped into the bounds (a plugin's TTL is advice, the bounds are law).
    pub fn pick(&self, action: Option<u64>, plan: Option<u64>) -> u64 {
        action
            .or(plan)
            .unwrap_or(self.default_ms)
            .clamp(self.min_ms, self.max_ms)
    }

    /// A client's `?ttl_s=` in ms, or `None` outside the bounds: refused, not
    /// clamped, so a client never believes a key lives longer than it does.
    pub fn client(&self, ttl_s: u64) -> Option<u64> {
        let ms = ttl_s.saturating_mul(1000);
        (self.min_ms..=self.max_ms).contains(&ms).then_some(ms)
    }
}

/// What an action's commands are built with.
pub struct Ctx<'a> {
    pub ttl: &'a TtlBounds,
    /// The plan's TTL for writes that carry none.
    pub plan_ttl: Option<u64>,
    pub scripts: &'a Scripts,
    /// A command that must land with the plan's writes or not at all (an
    /// idempotency record): the plan runs as a transaction ending with it.
    pub with: Option<&'a redis::Cmd>,
}

impl Ctx<'_> {
    fn ttl(&self, own: Option<u64>) -> u64 {
        self.ttl.pick(own, self.plan_ttl)
    }
}

/// Everything the host knows about one kind of action.
pub(crate) trait Kind {
    /// The Redis keys it touches; each must be inside the domain's namespace.
    fn keys(&self) -> Vec<&str>;
    /// Whether it changes its keys (no near-cache copy may outlive that).
    fn writes(&self) -> bool;
    /// The TTL it gives its key (ms, within `bounds`) when it writes with
    /// one; `None` for a read and for a write whose effect has no TTL of
    /// its own (a delete, a removal, a stream entry, a script).
    fn ttl(&self, bounds: &TtlBounds, plan_ttl: Option<u64>) -> Option<u64> {
        let _ = (bounds, plan_ttl);
        None
    }
    /// Checks beyond the keys: sizes, item counts, numbers Redis refuses.
    fn check(&self, limits: &PlanLimits) -> Result<(), String> {
        let _ = limits;
        Ok(())
    }
    /// The commands, the action's own first (its reply is the action's);
    /// writes of structures add their `PEXPIRE`.
    fn commands(&self, ctx: &Ctx) -> Result<Vec<Cmd>, StoreError>;
    /// The response body for its reply, MessagePack; `None` is a miss.
    fn shape(&self, reply: Value) -> Option<Vec<u8>> {
        match reply {
            Value::Nil => None,
            other => Some(reply::msgpack(other)),
        }
    }
    /// Whether the near cache may keep what it read (a plain read of one key).
    fn cacheable(&self) -> bool {
        false
    }
    /// The registered script its command calls by `EVALSHA`, if any: a
    /// transaction loads it first (see [`commands`]).
    fn script<'s>(&self, scripts: &'s Scripts) -> Option<&'s Arc<Script>> {
        let _ = scripts;
        None
    }
}

/// The one place an action is matched: its kind.
pub(crate) fn kind(action: &Action) -> &dyn Kind {
    match action {
        Action::Get(a) => a,
        Action::Set(a) => a,
        Action::Delete(a) => a,
        Action::Expire(a) => a,
        Action::HashGet(a) => a,
        Action::HashSet(a) => a,
        Action::StreamAdd(a) => a,
        Action::ZsetAdd(a) => a,
        Action::ZsetIncr(a) => a,
        Action::ZsetRange(a) => a,
        Action::ZsetTrim(a) => a,
        Action::SetAdd(a) => a,
        Action::SetContains(a) => a,
        Action::Script(a) => a,
        Action::CounterAdd(a) => a,
        Action::SetIfAbsent(a) => a,
        Action::KeyTtl(a) => a,
        Action::HashDelete(a) => a,
        Action::HashAdd(a) => a,
        Action::SetRemove(a) => a,
        Action::SetMembers(a) => a,
        Action::SetCount(a) => a,
        Action::ZsetRemove(a) => a,
        Action::ZsetScore(a) => a,
        Action::ZsetCount(a) => a,
        Action::ListPush(a) => a,
        Action::ListRange(a) => a,
        Action::ListRemove(a) => a,
        Action::CounterGet(a) => a,
    }
}

/// The Redis keys one action touches.
pub fn action_keys(action: &Action) -> Vec<&str> {
    kind(action).keys()
}

/// The first key a plan touches (its slot is the plan's on a cluster).
pub fn first_key(plan: &Plan) -> Option<&str> {
    plan.actions
        .iter()
        .find_map(|a| kind(a).keys().first().copied())
}

/// How long what a plan writes lasts, in ms: the longest TTL its writes
/// set. `None` when it writes nothing, or when one of its writes sets no
/// TTL (a delete, a stream entry, a script): what that write did may last,
/// and so must anything that remembers it was done.
pub fn written_ttl(plan: &Plan, bounds: &TtlBounds) -> Option<u64> {
    let mut writes = plan.actions.iter().map(kind).filter(|k| k.writes());
    writes.try_fold(None, |longest: Option<u64>, k| {
        let ttl = k.ttl(bounds, plan.ttl_ms)?;
        Some(Some(longest.map_or(ttl, |l| l.max(ttl))))
    })?
}

/// Check a plan before a byte of it reaches Redis: a plugin is trusted to
/// decide, not to be correct. Every key under one of `namespaces`
/// (`{domain}:` and declared prefixes), scripts only by a registered name
/// (never one of the host's own), sizes within `limits`. The error says
/// what is wrong.
pub fn validate(
    plan: &Plan,
    namespaces: &[String],
    scripts: &Scripts,
    limits: &PlanLimits,
) -> Result<(), String> {
    validate_as(plan, plan.atomic, namespaces, scripts, limits)
}

/// Check the first round of a read-then-write: reads only (their keys are
/// watched, on one node: on a cluster, in one slot), at least one.
pub fn validate_read(
    plan: &Plan,
    namespaces: &[String],
    scripts: &Scripts,
    limits: &PlanLimits,
) -> Result<(), String> {
    if plan.actions.is_empty() {
        return Err("a plan that reads first has nothing to read".into());
    }
    if let Some(i) = plan.actions.iter().position(|a| kind(a).writes()) {
        return Err(format!(
            "action {i} of a plan that reads first writes: it may only read (the writes belong in the plan after the read)"
        ));
    }
    validate_as(plan, true, namespaces, scripts, limits)
}

/// Check the plan a policy made after reading `read`: it runs as one
/// transaction on the connection that watched `read`'s keys, so on a
/// cluster its keys share their slot.
pub fn validate_after(
    write: &Plan,
    read: &Plan,
    namespaces: &[String],
    scripts: &Scripts,
    limits: &PlanLimits,
) -> Result<(), String> {
    validate_as(write, true, namespaces, scripts, limits)?;
    if limits.one_slot
        && let (Some(r), Some(w)) = (first_key(read), first_key(write))
        && Slot::for_key(r) != Slot::for_key(w)
    {
        return Err(format!(
            "keys {r:?} (read) and {w:?} (written) are in different hash slots: on a Redis Cluster the write after a read runs on the node of the keys it read; give them a common hash tag, e.g. \"{{tag}}\" in both (see the plugin guide)"
        ));
    }
    Ok(())
}

/// [`validate`], the plan checked as a transaction when `atomic`.
fn validate_as(
    plan: &Plan,
    atomic: bool,
    namespaces: &[String],
    scripts: &Scripts,
    limits: &PlanLimits,
) -> Result<(), String> {
    if plan.actions.len() > limits.max_actions {
        return Err(format!(
            "{} actions, at most {} allowed",
            plan.actions.len(),
            limits.max_actions
        ));
    }
    if let Some(i) = plan.respond
        && i as usize >= plan.actions.len()
    {
        return Err(format!(
            "responds with action {i} of {}",
            plan.actions.len()
        ));
    }
    // On a cluster a transaction cannot span nodes: an atomic plan's keys
    // share a slot, and so do one action's. A plan that is not atomic may
    // span slots: the store runs it as one pipeline per slot.
    let plan_slot = (limits.one_slot && atomic)
        .then(|| first_key(plan).map(|k| (k, Slot::for_key(k))))
        .flatten();
    for action in &plan.actions {
        if let Action::Script(s) = action {
            let Some(script) = scripts.callable(&s.name) else {
                return Err(format!("no registered script named {:?}", s.name));
            };
            if let Some(i) = script.ttl_arg
                && script::ttl_arg(s, i).is_none()
            {
                return Err(format!(
                    "argument {} of script {:?} is its TTL in ms: a whole number",
                    i + 1,
                    s.name
                ));
            }
        }
        let kind = kind(action);
        let keys = kind.keys();
        let action_slot = (limits.one_slot)
            .then(|| keys.first().map(|k| (*k, Slot::for_key(k))))
            .flatten();
        for k in &keys {
            let k = *k;
            for (what, first, slot) in [
                ("an atomic plan's", plan_slot),
                ("one action's", action_slot),
            ]
            .into_iter()
            .filter_map(|(what, at)| at.map(|(first, slot)| (what, first, slot)))
            {
                if slot != Slot::for_key(k) {
                    return Err(format!(
                        "keys {first:?} and {k:?} are in different hash slots: on a Redis Cluster {what} keys must share a slot; give them a common hash tag, e.g. \"{{tag}}\" in both (see the plugin guide)"
                    ));
                }
            }
            let inside = namespaces
                .iter()
                .any(|ns| k.len() > ns.len() && k.starts_with(ns.as_str()));
            if !inside {
                return Err(format!(
                    "key {k:?} is outside the namespace ({})",
                    namespaces.join(", ")
                ));
            }
            if k.len() > limits.max_key_bytes {
                return Err(format!(
                    "key of {} bytes, at most {} allowed",
                    k.len(),
                    limits.max_key_bytes
                ));
            }
        }
        kind.check(limits)?;
    }
    Ok(())
}

/// At least one and at most `max_items` items in one write.
fn items(n: usize, limits: &PlanLimits) -> Result<(), String> {
    match n {
        0 => Err("an action with nothing to write".into()),
        n if n > limits.max_items => Err(format!(
            "{n} items in one action, at most {} allowed",
            limits.max_items
        )),
        _ => Ok(()),
    }
}

/// At most `max_items` items in one read (none means all).
fn read_items(n: usize, limits: &PlanLimits) -> Result<(), String> {
    if n > limits.max_items {
        return items(n, limits);
    }
    Ok(())
}

/// A read that names how many items it wants: at least one (a count of 0
/// would read nothing) and at most `max_items`, so no one answer gathers a
/// whole structure.
fn count(n: u32, limits: &PlanLimits) -> Result<(), String> {
    match n as usize {
        0 => Err("a count of 0 reads nothing".into()),
        n if n > limits.max_items => Err(format!(
            "a count of {n}, at most {} allowed",
            limits.max_items
        )),
        _ => Ok(()),
    }
}

/// Names written or removed (members, fields): one to `max_items`, each
/// within `max_value_bytes`.
fn names(names: &[String], limits: &PlanLimits) -> Result<(), String> {
    items(names.len(), limits)?;
    names.iter().try_for_each(|n| value(n.as_bytes(), limits))
}

fn value(v: &[u8], limits: &PlanLimits) -> Result<(), String> {
    if v.len() > limits.max_value_bytes {
        return Err(format!(
            "value of {} bytes, at most {} allowed",
            v.len(),
            limits.max_value_bytes
        ));
    }
    Ok(())
}

/// `PEXPIRE key ms`, for writes of structures.
fn expire(key: &str, ms: u64) -> Cmd {
    let mut cmd = redis::cmd("PEXPIRE");
    cmd.arg(key).arg(ms);
    cmd
}

/// The Redis keys a plan writes.
pub fn written_keys(plan: &Plan) -> impl Iterator<Item = &str> {
    plan.actions
        .iter()
        .map(kind)
        .filter(|k| k.writes())
        .flat_map(|k| k.keys())
}

/// The key a read's answer may be kept under in the near cache: the plan is
/// a plain pipeline whose first action is a cacheable read it responds with
/// (client tracking follows the first command after `CLIENT CACHING YES`),
/// and it writes nothing — a plan that writes (a sliding TTL) must reach
/// Redis every time.
pub fn cacheable_key(plan: &Plan) -> Option<&str> {
    cacheable_read(plan).map(|(key, _)| key)
}

/// [`cacheable_key`], with the read that answer is kept for: its first
/// action. Several cacheable reads take parameters besides the key (a
/// member, bounds, fields) and two kinds read the same bytes in different
/// shapes, so a copy may answer only a read of the same action.
pub fn cacheable_read(plan: &Plan) -> Option<(&str, &Action)> {
    let action = plan.actions.first()?;
    let first = kind(action);
    let writes = plan.actions.iter().any(|a| kind(a).writes());
    if plan.atomic || writes || plan.respond != Some(0) || !first.cacheable() {
        return None;
    }
    Some((first.keys().into_iter().next()?, action))
}

/// An action's identity: its kind and every parameter, so equal exactly
/// when the actions are. Its `Debug` form, which bindgen writes field by
/// field and variant by name (strings quoted and escaped, floats in their
/// shortest exact form): no `PartialEq` or `Hash` on the contract's types
/// to keep in step with the WIT.
pub fn identity(action: &Action) -> String {
    format!("{action:?}")
}

/// The response body for the reply of `action`.
pub fn shape(action: &Action, reply: Value) -> Option<Vec<u8>> {
    kind(action).shape(reply)
}

/// The commands a plan becomes.
pub struct Commands {
    /// Run as MULTI/EXEC: the plan asked for it, or a write of a structure
    /// and its `PEXPIRE` must not be separated (a connection lost between
    /// them would leave a key that never expires).
    pub atomic: bool,
    /// Each command, with the index of the action whose reply it gives.
    pub list: Vec<(Option<usize>, Cmd)>,
}

/// Every command a plan becomes, in order (MULTI/EXEC around it when atomic,
/// the scripts its actions call loaded first inside a transaction, once
/// each, where a NOSCRIPT could not be retried without breaking atomicity).
pub fn commands(plan: &Plan, ctx: &Ctx) -> Result<Commands, StoreError> {
    let per_action = plan
        .actions
        .iter()
        .map(|a| kind(a).commands(ctx))
        .collect::<Result<Vec<_>, _>>()?;
    let atomic = plan.atomic || ctx.with.is_some() || per_action.iter().any(|cmds| cmds.len() > 1);
    let mut list = Vec::with_capacity(plan.actions.len() + 2);
    if atomic {
        list.push((None, redis::cmd("MULTI")));
        let mut loaded: Vec<&str> = Vec::new();
        for script in plan
            .actions
            .iter()
            .filter_map(|a| kind(a).script(ctx.scripts))
        {
            if !loaded.contains(&script.sha.as_str()) {
                loaded.push(&script.sha);
                let mut load = redis::cmd("SCRIPT");
                load.arg("LOAD").arg(&script.source);
                list.push((None, load));
            }
        }
    }
    for (i, cmds) in per_action.into_iter().enumerate() {
        let mut cmds = cmds.into_iter();
        if let Some(own) = cmds.next() {
            list.push((Some(i), own));
        }
        list.extend(cmds.map(|c| (None, c)));
    }
    if let Some(with) = ctx.with {
        list.push((None, with.clone()));
    }
    if atomic {
        list.push((None, redis::cmd("EXEC")));
    }
    Ok(Commands { atomic, list })
}

/// A plan as the Redis commands it becomes, one line each, values shown as
/// JSON where they are MessagePack, the answer's command marked: what
/// `sluice plugin check` prints.
pub fn describe(plan: &Plan, ctx: &Ctx) -> Result<Vec<String>, StoreError> {
    let answer = plan.respond.map(|i| i as usize);
    Ok(commands(plan, ctx)?
        .list
        .iter()
        .map(|(action, cmd)| match action {
            Some(_) if *action == answer => format!("{}    <- the answer", render(cmd)),
            _ => render(cmd),
        })
        .collect())
}

/// One command as text: printable arguments as they are (quoted when they
/// hold a space or are empty), MessagePack values as JSON, other bytes by size.
pub fn render(cmd: &Cmd) -> String {
    let args: Vec<String> = cmd
        .args_iter()
        .map(|arg| match arg {
            redis::Arg::Simple(bytes) => render_arg(bytes),
            _ => "<cursor>".into(),
        })
        .collect();
    args.join(" ")
}

fn render_arg(bytes: &[u8]) -> String {
    if let Ok(text) = std::str::from_utf8(bytes)
        && !text.chars().any(char::is_control)
    {
        return if text.is_empty() || text.contains(' ') || text.contains('"') {
            format!("{text:?}")
        } else {
            text.to_owned()
        };
    }
    if reply::is_one_msgpack_value(bytes)
        && let Ok(json) = rmp_serde::from_slice::<serde_json::Value>(bytes)
    {
        return json.to_string();
    }
    format!("<{} bytes>", bytes.len())
}

/// Scores as Redis spells them, infinities included.
fn score(s: f64) -> String {
    match s {
        f64::INFINITY => "+inf".into(),
        f64::NEG_INFINITY => "-inf".into(),
        s => s.to_string(),
    }
}

/// Redis refuses NaN as a score (infinities are fine).
fn not_nan(what: &str, s: f64) -> Result<(), String> {
    if s.is_nan() {
        return Err(format!("a sorted-set {what} is NaN"));
    }
    Ok(())
}

/// An amount to add as Redis reads it: a whole number for `INCRBY`, a
/// decimal one for `INCRBYFLOAT` (never an exponent, which it would refuse).
fn amount(n: Number) -> String {
    match n {
        Number::Int(i) => i.to_string(),
        Number::Float(f) => f.to_string(),
    }
}

/// A float add of NaN or an infinity is refused by Redis (or would make a
/// counter no one can add to again): refused here first.
fn finite(what: &str, n: Number) -> Result<(), String> {
    match n {
        Number::Float(f) if !f.is_finite() => Err(format!("{what} {f} is not a finite number")),
        _ => Ok(()),
    }
}

/// The reply of an add as the kind of number added: an int for an int
/// amount, a float for a float one (Redis answers a float add with a bulk
/// string, which the answer must not be). Nil, a counter that is not
/// there, is 0.
fn added(reply: Value, like: Number) -> Value {
    match (like, reply) {
        (Number::Int(_), Value::Nil) => Value::Int(0),
        (Number::Float(_), Value::Nil) => Value::Double(0.0),
        (Number::Int(_), Value::Int(n)) => Value::Int(n),
        (Number::Int(_), Value::BulkString(b)) => {
            match std::str::from_utf8(&b).ok().and_then(|t| t.parse().ok()) {
                Some(n) => Value::Int(n),
                None => Value::Double(reply::score(Value::BulkString(b))),
            }
        }
        (_, other) => Value::Double(reply::score(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::bindings::*;

    pub(super) fn plan(actions: Vec<Action>) -> Plan {
        Plan {
            actions,
            atomic: false,
            respond: None,
            ttl_ms: None,
            cache: None,
        }
    }

    fn get(key: &str) -> Action {
        Action::Get(StringGet { key: key.into() })
    }

    fn set(key: &str, value: Vec<u8>) -> Action {
        Action::Set(StringSet {
            key: key.into(),
            value,
            ttl_ms: None,
        })
    }

    fn scripts() -> Scripts {
        Scripts::load(None).unwrap()
    }

    pub(super) fn check(p: &Plan) -> Result<(), String> {
        let ns = ["cache:".to_owned(), "shared:".to_owned()];
        validate(p, &ns, &scripts(), &PlanLimits::default())
    }

    /// What one action of a plan of its own becomes, one command a line.
    pub(super) fn describe_one(action: Action) -> Vec<String> {
        describe_plan(&plan(vec![action]))
    }

    /// Validation of a plan of `action` alone (keys under `cache:`).
    pub(super) fn check_one(action: Action) -> Result<(), String> {
        check(&plan(vec![action]))
    }

    const TTL: TtlBounds = TtlBounds {
        default_ms: 60_000,
        min_ms: 1_000,
        max_ms: 120_000,
    };

    pub(super) fn describe_plan(p: &Plan) -> Vec<String> {
        let scripts = scripts();
        let ctx = Ctx {
            ttl: &TTL,
            plan_ttl: p.ttl_ms,
            scripts: &scripts,
            with: None,
        };
        describe(p, &ctx).unwrap()
    }

    #[test]
    fn a_plan_that_reads_first_only_reads_and_its_write_stays_on_the_read_slot() {
        let ns = ["cache:".to_owned()];
        let cluster = PlanLimits {
            one_slot: true,
            ..PlanLimits::default()
        };
        let read = plan(vec![get("cache:{x}:a")]);
        assert_eq!(validate_read(&read, &ns, &scripts(), &cluster), Ok(()));
        let e = validate_read(&plan(vec![]), &ns, &scripts(), &cluster).unwrap_err();
        assert!(e.contains("nothing to read"), "{e}");
        let writes = plan(vec![get("cache:{x}:a"), set("cache:{x}:b", vec![0xc0])]);
        let e = validate_read(&writes, &ns, &scripts(), &cluster).unwrap_err();
        assert!(
            e.starts_with("action 1 of a plan that reads first writes"),
            "{e}"
        );
        // Reads on two slots cannot be watched on one node.
        let apart = plan(vec![get("cache:a"), get("cache:b")]);
        assert!(validate_read(&apart, &ns, &scripts(), &cluster).is_err());

        let same = plan(vec![set("cache:{x}:b", vec![0xc0])]);
        assert_eq!(
            validate_after(&same, &read, &ns, &scripts(), &cluster),
            Ok(())
        );
        let elsewhere = plan(vec![set("cache:b", vec![0xc0])]);
        let e = validate_after(&elsewhere, &read, &ns, &scripts(), &cluster).unwrap_err();
        assert!(
            e.contains("\"cache:{x}:a\" (read) and \"cache:b\" (written)")
                && e.contains("hash tag"),
            "{e}"
        );
        // A single Redis has one node: any keys of the namespace.
        assert_eq!(
            validate_after(&elsewhere, &read, &ns, &scripts(), &PlanLimits::default()),
            Ok(())
        );
        let outside = plan(vec![set("other:b", vec![0xc0])]);
        assert!(validate_after(&outside, &read, &ns, &scripts(), &PlanLimits::default()).is_err());
    }

    #[test]
    fn on_a_cluster_an_atomic_plans_keys_and_one_actions_share_a_hash_slot() {
        let ns = ["cache:".to_owned()];
        let cluster = PlanLimits {
            one_slot: true,
            ..PlanLimits::default()
        };
        // "cache:a" and "cache:b" hash to different slots.
        assert_ne!(Slot::for_key("cache:a"), Slot::for_key("cache:b"));
        let apart = Plan {
            atomic: true,
            ..plan(vec![get("cache:a"), set("cache:b", vec![0xc0])])
        };
        let e = validate(&apart, &ns, &scripts(), &cluster).unwrap_err();
        assert!(
            e.contains("\"cache:a\" and \"cache:b\" are in different hash slots"),
            "{e}"
        );
        assert!(
            e.contains("an atomic plan's") && e.contains("hash tag"),
            "{e}"
        );
        // Not atomic: the store runs it as one pipeline per slot.
        let spread = Plan {
            atomic: false,
            ..apart.clone()
        };
        assert_eq!(validate(&spread, &ns, &scripts(), &cluster), Ok(()));
        // One action's keys cannot be split: a script's keys share a slot.
        let script = plan(vec![Action::Script(ScriptCall {
            name: "ready".into(),
            keys: vec!["cache:a".into(), "cache:b".into()],
            args: vec![],
        })]);
        let e = validate(&script, &ns, &scripts(), &cluster).unwrap_err();
        assert!(e.contains("one action's keys must share a slot"), "{e}");
        // A single Redis takes them all; a common hash tag makes one slot.
        assert_eq!(check(&apart), Ok(()));
        assert_eq!(check(&script), Ok(()));
        let tagged = Plan {
            atomic: true,
            ..plan(vec![get("cache:{x}:a"), set("cache:{x}:b", vec![0xc0])])
        };
        assert_eq!(validate(&tagged, &ns, &scripts(), &cluster), Ok(()));
        assert_eq!(first_key(&tagged), Some("cache:{x}:a"));
    }

    #[test]
    fn a_plan_inside_its_namespaces_passes() {
        let mut p = plan(vec![get("cache:k"), set("shared:x", vec![0xc0])]);
        p.respond = Some(0);
        assert_eq!(check(&p), Ok(()));
    }

    #[test]
    fn keys_outside_the_namespace_or_too_long_are_refused() {
        let e = check(&plan(vec![set("elsewhere:k", vec![0xc0])])).unwrap_err();
        assert!(e.contains("outside the namespace (cache:, shared:)"), "{e}");
        // The namespace alone is not a key.
        assert!(check(&plan(vec![get("cache:")])).is_err());
        let long = format!("cache:{}", "k".repeat(1024));
        let e = check(&plan(vec![get(&long)])).unwrap_err();
        assert!(e.contains("at most 1024"), "{e}");
    }

    #[test]
    fn too_many_actions_or_a_response_past_the_end_are_refused() {
        let e = check(&plan(vec![get("cache:k"); 65])).unwrap_err();
        assert_eq!(e, "65 actions, at most 64 allowed");
        let mut p = plan(vec![get("cache:k")]);
        p.respond = Some(1);
        assert_eq!(check(&p).unwrap_err(), "responds with action 1 of 1");
    }

    #[test]
    fn only_registered_scripts_run() {
        let call = |name: &str| {
            Action::Script(ScriptCall {
                name: name.into(),
                keys: vec!["cache:k".into()],
                args: vec![],
            })
        };
        assert_eq!(check(&plan(vec![call("ready")])), Ok(()));
        let e = check(&plan(vec![call("flushall")])).unwrap_err();
        assert_eq!(e, "no registered script named \"flushall\"");
    }

    #[test]
    fn a_scripts_declared_ttl_argument_is_held_to_the_domains_bounds() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/scripts");
        let scripts = Scripts::load(Some(&dir)).unwrap();
        let call = |ttl: &str| {
            plan(vec![Action::Script(ScriptCall {
                name: "incr_capped".into(),
                keys: vec!["cache:n".into()],
                args: vec![b"1".to_vec(), b"10".to_vec(), ttl.as_bytes().to_vec()],
            })])
        };
        let ns = ["cache:".to_owned()];
        let ctx = Ctx {
            ttl: &TTL,
            plan_ttl: None,
            scripts: &scripts,
            with: None,
        };
        // 0 would delete the key; a day would outlive max_ttl: both held to the bounds.
        for (asked, sent) in [("0", "1000"), ("86400000", "120000"), ("5000", "5000")] {
            let p = call(asked);
            assert_eq!(validate(&p, &ns, &scripts, &PlanLimits::default()), Ok(()));
            let line = &describe(&p, &ctx).unwrap()[0];
            assert!(line.ends_with(&format!(" 1 cache:n 1 10 {sent}")), "{line}");
        }
        let e = validate(&call("soon"), &ns, &scripts, &PlanLimits::default()).unwrap_err();
        assert_eq!(
            e,
            "argument 3 of script \"incr_capped\" is its TTL in ms: a whole number"
        );
    }

    #[test]
    fn writes_need_items_within_bounds_and_values_within_size() {
        let hset = |n: usize| {
            Action::HashSet(HashSet {
                key: "cache:h".into(),
                fields: (0..n)
                    .map(|i| FieldValue {
                        name: format!("f{i}"),
                        value: vec![0xc0],
                    })
                    .collect(),
                ttl_ms: None,
            })
        };
        assert_eq!(
            check(&plan(vec![hset(0)])).unwrap_err(),
            "an action with nothing to write"
        );
        assert!(
            check(&plan(vec![hset(1025)]))
                .unwrap_err()
                .contains("1025 items")
        );
        let big = set("cache:k", vec![0; (4 << 20) + 1]);
        assert!(
            check(&plan(vec![big]))
                .unwrap_err()
                .contains("value of 4194305 bytes")
        );
        // A read of more fields than allowed is refused too.
        let hget = Action::HashGet(HashGet {
            key: "cache:h".into(),
            fields: (0..1025).map(|i| i.to_string()).collect(),
        });
        assert!(check(&plan(vec![hget])).is_err());
    }

    #[test]
    fn sorted_set_numbers_redis_refuses_are_refused_first() {
        let add = Action::ZsetAdd(ZsetAdd {
            key: "cache:z".into(),
            members: vec![ScoredMember {
                member: "a".into(),
                score: f64::NAN,
            }],
            condition: ZsetCondition::Always,
            ttl_ms: None,
        });
        assert_eq!(
            check(&plan(vec![add])).unwrap_err(),
            "a sorted-set score is NaN"
        );
        let range = Action::ZsetRange(ZsetRange {
            key: "cache:z".into(),
            bounds: ZsetBounds::Rank((0, 9)),
            reverse: true,
            limit: Some(5),
        });
        assert!(
            check(&plan(vec![range]))
                .unwrap_err()
                .contains("limited by its bounds")
        );
        let capped = Action::StreamAdd(StreamAdd {
            stream: "cache:s".into(),
            fields: vec![FieldValue {
                name: "a".into(),
                value: vec![1],
            }],
            max_len: Some(0),
        });
        assert!(
            check(&plan(vec![capped]))
                .unwrap_err()
                .contains("max-len 0")
        );
    }

    #[test]
    fn ttls_come_from_the_action_the_plan_or_the_domain_within_bounds() {
        assert_eq!(TTL.pick(Some(5_000), Some(9_000)), 5_000);
        assert_eq!(TTL.pick(None, Some(9_000)), 9_000);
        assert_eq!(TTL.pick(None, None), 60_000);
        assert_eq!(TTL.pick(Some(0), None), 1_000);
        assert_eq!(TTL.pick(Some(u64::MAX), None), 120_000);
        // A client's TTL is refused outside the bounds, not clamped.
        assert_eq!(TTL.client(2), Some(2_000));
        assert_eq!(TTL.client(120), Some(120_000));
        assert_eq!(
            (TTL.client(0), TTL.client(121), TTL.client(u64::MAX)),
            (None, None, None)
        );
    }

    #[test]
    fn plans_are_described_as_the_commands_sent() {
        let mut p = plan(vec![
            Action::ZsetAdd(ZsetAdd {
                key: "leaderboard:w".into(),
                members: vec![ScoredMember {
                    member: "ann".into(),
                    score: 12.5,
                }],
                condition: ZsetCondition::IfGreater,
                ttl_ms: Some(30_000),
            }),
            Action::ZsetTrim(ZsetTrim {
                key: "leaderboard:w".into(),
                start: 0,
                stop: -101,
            }),
            Action::ZsetRange(ZsetRange {
                key: "leaderboard:w".into(),
                bounds: ZsetBounds::Rank((0, 9)),
                reverse: true,
                limit: None,
            }),
        ]);
        p.respond = Some(2);
        // A structure's write and its expiry are never separated: MULTI/EXEC.
        assert_eq!(
            describe_plan(&p),
            [
                "MULTI",
                "ZADD leaderboard:w GT 12.5 ann",
                "PEXPIRE leaderboard:w 30000",
                "ZREMRANGEBYRANK leaderboard:w 0 -101",
                "ZRANGE leaderboard:w 0 9 REV WITHSCORES    <- the answer",
                "EXEC",
            ]
        );
    }

    #[test]
    fn every_stream_is_capped_and_expires_with_its_entry_in_one_command() {
        let add = |stream: &str| {
            Action::StreamAdd(StreamAdd {
                stream: stream.into(),
                fields: vec![FieldValue {
                    name: "a".into(),
                    value: vec![1],
                }],
                max_len: None,
            })
        };
        let all = scripts();
        let sha = &all.get(crate::store::scripts::STREAM_ADD).unwrap().sha;
        // Two streams: a plain pipeline, no transaction.
        let p = plan(vec![add("cache:s"), add("cache:t")]);
        assert_eq!(
            describe_plan(&p),
            [
                format!("EVALSHA {sha} 1 cache:s 10000 60000 a 1"),
                format!("EVALSHA {sha} 1 cache:t 10000 60000 a 1"),
            ]
        );
        // Inside a transaction the script is loaded first, once.
        let p = Plan { atomic: true, ..p };
        let lines = describe_plan(&p);
        assert_eq!(lines[0], "MULTI");
        assert!(lines[1].starts_with("SCRIPT LOAD "), "{lines:?}");
        assert_eq!(lines.len(), 5, "{lines:?}");
    }

    #[test]
    fn score_ranges_swap_bounds_for_rev_and_take_a_limit() {
        let p = plan(vec![Action::ZsetRange(ZsetRange {
            key: "cache:z".into(),
            bounds: ZsetBounds::Score((1.0, f64::INFINITY)),
            reverse: true,
            limit: Some(3),
        })]);
        assert_eq!(
            describe_plan(&p),
            ["ZRANGE cache:z +inf 1 BYSCORE REV LIMIT 0 3 WITHSCORES"]
        );
    }

    #[test]
    fn atomic_plans_are_wrapped_and_values_shown_as_json() {
        let value = rmp_serde::to_vec_named(&serde_json::json!({"price": 1.5})).unwrap();
        let mut p = plan(vec![
            Action::Delete(KeyDelete {
                key: "cache:p".into(),
            }),
            set("cache:p", value),
            Action::Script(ScriptCall {
                name: "ready".into(),
                keys: vec![],
                args: vec![],
            }),
        ]);
        p.atomic = true;
        p.ttl_ms = Some(500_000);
        let lines = describe_plan(&p);
        assert_eq!(lines[0], "MULTI");
        assert!(
            lines[1].starts_with("SCRIPT LOAD \"return 1\""),
            "{lines:?}"
        );
        assert_eq!(lines[2], "DEL cache:p");
        // The plan's TTL, kept within the domain's bounds.
        assert_eq!(lines[3], r#"SET cache:p {"price":1.5} PX 120000"#);
        assert!(lines[4].starts_with("EVALSHA "), "{lines:?}");
        assert_eq!(lines[5], "EXEC");
    }

    #[test]
    fn a_transaction_loads_each_script_it_calls_once_before_its_calls() {
        let ready = || {
            Action::Script(ScriptCall {
                name: "ready".into(),
                keys: vec![],
                args: vec![],
            })
        };
        let mut p = plan(vec![ready(), get("cache:k"), ready()]);
        p.atomic = true;
        let lines = describe_plan(&p);
        let loads = lines
            .iter()
            .filter(|l| l.starts_with("SCRIPT LOAD"))
            .count();
        assert_eq!(loads, 1, "{lines:?}");
        assert!(lines[1].starts_with("SCRIPT LOAD"), "{lines:?}");
        // Outside a transaction a NOSCRIPT is recovered: nothing is loaded.
        p.atomic = false;
        assert!(describe_plan(&p).iter().all(|l| !l.starts_with("SCRIPT")));
    }

    #[test]
    fn what_a_plan_writes_lasts_its_longest_ttl_unless_a_write_sets_none() {
        let expire = |ms| {
            Action::Expire(KeyExpire {
                key: "cache:c".into(),
                ttl_ms: ms,
            })
        };
        let with_ttl = |key: &str, ms| {
            Action::Set(StringSet {
                key: key.into(),
                value: vec![1],
                ttl_ms: Some(ms),
            })
        };
        // Each write's own TTL, else the plan's, else the default, in bounds.
        assert_eq!(
            written_ttl(&plan(vec![set("cache:a", vec![1])]), &TTL),
            Some(60_000)
        );
        let mut p = plan(vec![set("cache:a", vec![1]), with_ttl("cache:b", 2_000)]);
        p.ttl_ms = Some(5_000);
        assert_eq!(written_ttl(&p, &TTL), Some(5_000));
        let p = plan(vec![
            with_ttl("cache:a", 2_000),
            expire(500_000),
            get("cache:x"),
        ]);
        assert_eq!(written_ttl(&p, &TTL), Some(120_000), "the bounds hold");
        let p = plan(vec![with_ttl("cache:a", 1), get("cache:x")]);
        assert_eq!(written_ttl(&p, &TTL), Some(1_000));
        // Nothing written, or a write with no TTL of its own: no bound.
        assert_eq!(written_ttl(&plan(vec![get("cache:x")]), &TTL), None);
        let delete = Action::Delete(KeyDelete {
            key: "cache:a".into(),
        });
        assert_eq!(written_ttl(&plan(vec![delete.clone()]), &TTL), None);
        assert_eq!(
            written_ttl(&plan(vec![with_ttl("cache:b", 2_000), delete]), &TTL),
            None
        );
    }

    #[test]
    fn writes_and_cacheable_reads_are_known_by_kind() {
        let mut p = plan(vec![
            get("cache:a"),
            set("cache:b", vec![1]),
            Action::Expire(KeyExpire {
                key: "cache:c".into(),
                ttl_ms: 5,
            }),
        ]);
        assert_eq!(written_keys(&p).collect::<Vec<_>>(), ["cache:b", "cache:c"]);
        assert_eq!(cacheable_key(&p), None, "it does not respond with the read");
        p.respond = Some(0);
        assert_eq!(cacheable_key(&p), None, "it writes: it must reach Redis");
        p.actions.truncate(1);
        assert_eq!(cacheable_key(&p), Some("cache:a"));
        p.atomic = true;
        assert_eq!(
            cacheable_key(&p),
            None,
            "tracking follows a plain read only"
        );
    }

    /// Reads of one key that differ in any parameter, or in kind, have
    /// different identities; the same read has the same.
    #[test]
    fn a_reads_identity_is_its_kind_and_every_parameter() {
        let contains = |member: &str| {
            Action::SetContains(SetContains {
                key: "cache:s".into(),
                member: member.into(),
            })
        };
        let range = |bounds, reverse, limit| {
            Action::ZsetRange(ZsetRange {
                key: "cache:z".into(),
                bounds,
                reverse,
                limit,
            })
        };
        let fields = |fields: &[&str]| {
            Action::HashGet(HashGet {
                key: "cache:h".into(),
                fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            })
        };
        let reads = [
            get("cache:n"),
            Action::CounterGet(CounterGet {
                key: "cache:n".into(),
            }),
            contains("x1"),
            contains("x2"),
            contains("x1\", member: \"x2"),
            range(ZsetBounds::Rank((0, 9)), true, None),
            range(ZsetBounds::Rank((0, 99)), true, None),
            range(ZsetBounds::Rank((0, 9)), false, None),
            range(ZsetBounds::Score((0.0, 1.0)), false, Some(10)),
            range(ZsetBounds::Score((0.0, 1.0)), false, Some(100)),
            range(
                ZsetBounds::Score((0.0, 1.0000000000000002)),
                false,
                Some(10),
            ),
            fields(&[]),
            fields(&["a"]),
            fields(&["a", "b"]),
            fields(&["a,b"]),
        ];
        let ids: Vec<String> = reads.iter().map(identity).collect();
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(identity(&contains("x1")), ids[2]);
        let mut p = plan(vec![contains("x1")]);
        p.respond = Some(0);
        let (key, read) = cacheable_read(&p).expect("kept");
        assert_eq!((key, identity(read)), ("cache:s", ids[2].clone()));
    }

    pub(super) fn json(body: Option<Vec<u8>>) -> serde_json::Value {
        rmp_serde::from_slice(&body.expect("a body")).unwrap()
    }

    #[test]
    fn string_replies_pass_msgpack_through_and_wrap_foreign_values() {
        let get = get("cache:k");
        let stored = rmp_serde::to_vec(&[1, 2]).unwrap();
        assert_eq!(shape(&get, Value::BulkString(stored.clone())), Some(stored));
        assert_eq!(
            json(shape(&get, Value::BulkString(b"plain text".to_vec()))),
            "plain text"
        );
        assert_eq!(shape(&get, Value::Nil), None);
    }

    #[test]
    fn hash_replies_become_objects_of_the_fields_present() {
        let hget = |fields: &[&str]| {
            Action::HashGet(HashGet {
                key: "cache:h".into(),
                fields: fields.iter().map(|f| f.to_string()).collect(),
            })
        };
        let one = Value::BulkString(vec![0x01]);
        let reply = Value::Array(vec![one.clone(), Value::Nil]);
        assert_eq!(
            json(shape(&hget(&["a", "b"]), reply)),
            serde_json::json!({"a": 1})
        );
        assert_eq!(shape(&hget(&["a"]), Value::Array(vec![Value::Nil])), None);
        let map = Value::Map(vec![(Value::BulkString(b"x".to_vec()), one.clone())]);
        assert_eq!(json(shape(&hget(&[]), map)), serde_json::json!({"x": 1}));
        let flat = Value::Array(vec![Value::BulkString(b"y".to_vec()), one]);
        assert_eq!(json(shape(&hget(&[]), flat)), serde_json::json!({"y": 1}));
        assert_eq!(shape(&hget(&[]), Value::Map(vec![])), None);
    }

    #[test]
    fn ranges_become_member_score_lists_and_an_empty_one_is_a_miss() {
        let range = Action::ZsetRange(ZsetRange {
            key: "cache:z".into(),
            bounds: ZsetBounds::Rank((0, -1)),
            reverse: false,
            limit: None,
        });
        let resp3 = Value::Array(vec![Value::Array(vec![
            Value::BulkString(b"a".to_vec()),
            Value::Double(2.5),
        ])]);
        let resp2 = Value::Array(vec![
            Value::BulkString(b"a".to_vec()),
            Value::BulkString(b"2.5".to_vec()),
        ]);
        let want = serde_json::json!([{"member": "a", "score": 2.5}]);
        assert_eq!(json(shape(&range, resp3)), want);
        assert_eq!(json(shape(&range, resp2)), want);
        assert_eq!(shape(&range, Value::Array(vec![])), None);
    }

    #[test]
    fn membership_increments_and_publishes_have_their_own_shapes() {
        let contains = Action::SetContains(SetContains {
            key: "cache:s".into(),
            member: "m".into(),
        });
        assert_eq!(json(shape(&contains, Value::Int(1))), true);
        assert_eq!(json(shape(&contains, Value::Int(0))), false);
        let incr = Action::ZsetIncr(ZsetIncr {
            key: "cache:z".into(),
            member: "m".into(),
            by: 2.0,
            ttl_ms: None,
        });
        assert_eq!(json(shape(&incr, Value::BulkString(b"7".to_vec()))), 7.0);
        let add = |s: &str| {
            Action::StreamAdd(StreamAdd {
                stream: s.into(),
                fields: vec![],
                max_len: None,
            })
        };
        let p = plan(vec![add("cache:a"), add("cache:b")]);
        let ids = published_ids(
            &p,
            vec![
                Value::BulkString(b"1-0".to_vec()),
                Value::BulkString(b"2-0".to_vec()),
            ],
        );
        assert_eq!(
            json(Some(ids)),
            serde_json::json!({"cache:a": "1-0", "cache:b": "2-0"})
        );
    }

    #[test]
    fn a_scripts_string_reply_is_read_as_a_stored_value() {
        let call = Action::Script(ScriptCall {
            name: "ready".into(),
            keys: vec![],
            args: vec![],
        });
        let json = |v: Value| -> Option<serde_json::Value> {
            shape(&call, v).map(|b| rmp_serde::from_slice(&b).unwrap())
        };
        let packed = rmp_serde::to_vec_named(&serde_json::json!({"a": [1, 2]})).unwrap();
        assert_eq!(
            json(Value::BulkString(packed)),
            Some(serde_json::json!({"a": [1, 2]})),
            "packed MessagePack passes through as the value"
        );
        assert_eq!(
            json(Value::BulkString(b"plain text".to_vec())),
            Some(serde_json::json!("plain text"))
        );
        assert_eq!(json(Value::Int(3)), Some(serde_json::json!(3)));
        assert_eq!(json(Value::Nil), None, "nil is a miss");
    }
}
