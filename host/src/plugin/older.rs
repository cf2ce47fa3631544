//! Components built for the previous contract, `sluice:policy@0.2.0`, keep
//! serving: a team upgrades its policy when it wants 0.3's actions, reads
//! or batches, not when the gateway is upgraded. 0.3 only added to 0.2, so
//! a 0.2 request is the 0.3 one field for field and a 0.2 plan is a 0.3
//! plan that never reads first. The 0.2 WIT is kept as it was released
//! (`host/wit/v0.2`); this module is the only place that knows it.

use super::bindings as now;
use super::sandbox::{self, State};
use wasmtime::component::{HasSelf, Linker};

mod wit {
    wasmtime::component::bindgen!({
        path: "wit/v0.2",
        world: "policy",
    });
}

use wit::sluice::policy::{log, types as old};
pub use wit::{Policy, PolicyPre};

/// The version this module speaks.
pub const VERSION: &str = "0.2.0";
pub const WORLD: &str = "sluice:policy@0.2.0";

/// Let 0.2 components import their `log`, as 0.3 ones do theirs.
pub fn add_to_linker(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    log::add_to_linker::<State, HasSelf<State>>(linker, |s| s)
}

impl log::Host for State {
    fn log(&mut self, level: log::Level, message: String) {
        use super::bindings::sluice::policy::log::Level as Now;
        let level = match level {
            log::Level::Trace => Now::Trace,
            log::Level::Debug => Now::Debug,
            log::Level::Info => Now::Info,
            log::Level::Warn => Now::Warn,
            log::Level::Error => Now::Error,
        };
        sandbox::log(self, level, message);
    }
}

pub fn domain(d: &now::Domain) -> old::Domain {
    old::Domain {
        name: d.name.clone(),
        ttl_ms: d.ttl_ms,
        min_ttl_ms: d.min_ttl_ms,
        max_ttl_ms: d.max_ttl_ms,
        settings: d.settings.clone(),
    }
}

pub fn request(r: &now::Request) -> old::Request {
    let s = &r.stats;
    old::Request {
        key: r.key.clone(),
        operation: match r.operation {
            now::Operation::Get => old::Operation::Get,
            now::Operation::Put => old::Operation::Put,
            now::Operation::Delete => old::Operation::Delete,
            now::Operation::Publish => old::Operation::Publish,
        },
        value: r.value.clone(),
        fields: r.fields.clone(),
        ttl_ms: r.ttl_ms,
        now_ms: r.now_ms,
        entropy: r.entropy,
        stats: old::AccessStats {
            hits: s.hits,
            misses: s.misses,
            writes: s.writes,
            last_read_ms: s.last_read_ms,
            read_rate: s.read_rate,
        },
    }
}

pub fn error(e: old::PolicyError) -> now::PolicyError {
    match e {
        old::PolicyError::BadRequest(m) => now::PolicyError::BadRequest(m),
        old::PolicyError::BadConfig(m) => now::PolicyError::BadConfig(m),
        old::PolicyError::Internal(m) => now::PolicyError::Internal(m),
    }
}

/// A 0.2 plan is a 0.3 plan that runs at once.
pub fn decision(p: old::Plan) -> now::Decision {
    now::Decision::Run(now::Plan {
        actions: p.actions.into_iter().map(action).collect(),
        atomic: p.atomic,
        respond: p.respond,
        ttl_ms: p.ttl_ms,
        cache: p.cache.map(|c| now::CacheHint {
            keep: c.keep,
            max_stale_ms: c.max_stale_ms,
        }),
    })
}

fn fields(f: Vec<old::FieldValue>) -> Vec<now::FieldValue> {
    f.into_iter()
        .map(|f| now::FieldValue {
            name: f.name,
            value: f.value,
        })
        .collect()
}

fn action(a: old::Action) -> now::Action {
    use now::Action as N;
    use old::Action as O;
    match a {
        O::Get(a) => N::Get(now::StringGet { key: a.key }),
        O::Set(a) => N::Set(now::StringSet {
            key: a.key,
            value: a.value,
            ttl_ms: a.ttl_ms,
        }),
        O::Delete(a) => N::Delete(now::KeyDelete { key: a.key }),
        O::Expire(a) => N::Expire(now::KeyExpire {
            key: a.key,
            ttl_ms: a.ttl_ms,
        }),
        O::HashGet(a) => N::HashGet(now::HashGet {
            key: a.key,
            fields: a.fields,
        }),
        O::HashSet(a) => N::HashSet(now::HashSet {
            key: a.key,
            fields: fields(a.fields),
            ttl_ms: a.ttl_ms,
        }),
        O::StreamAdd(a) => N::StreamAdd(now::StreamAdd {
            stream: a.stream,
            fields: fields(a.fields),
            max_len: a.max_len,
        }),
        O::ZsetAdd(a) => N::ZsetAdd(now::ZsetAdd {
            key: a.key,
            members: (a.members.into_iter())
                .map(|m| now::ScoredMember {
                    member: m.member,
                    score: m.score,
                })
                .collect(),
            condition: match a.condition {
                old::ZsetCondition::Always => now::ZsetCondition::Always,
                old::ZsetCondition::IfAbsent => now::ZsetCondition::IfAbsent,
                old::ZsetCondition::IfGreater => now::ZsetCondition::IfGreater,
                old::ZsetCondition::IfLess => now::ZsetCondition::IfLess,
            },
            ttl_ms: a.ttl_ms,
        }),
        O::ZsetIncr(a) => N::ZsetIncr(now::ZsetIncr {
            key: a.key,
            member: a.member,
            by: a.by,
            ttl_ms: a.ttl_ms,
        }),
        O::ZsetRange(a) => N::ZsetRange(now::ZsetRange {
            key: a.key,
            bounds: match a.bounds {
                old::ZsetBounds::Rank(r) => now::ZsetBounds::Rank(r),
                old::ZsetBounds::Score(s) => now::ZsetBounds::Score(s),
            },
            reverse: a.reverse,
            limit: a.limit,
        }),
        O::ZsetTrim(a) => N::ZsetTrim(now::ZsetTrim {
            key: a.key,
            start: a.start,
            stop: a.stop,
        }),
        O::SetAdd(a) => N::SetAdd(now::SetAdd {
            key: a.key,
            members: a.members,
            ttl_ms: a.ttl_ms,
        }),
        O::SetContains(a) => N::SetContains(now::SetContains {
            key: a.key,
            member: a.member,
        }),
        O::Script(a) => N::Script(now::ScriptCall {
            name: a.name,
            keys: a.keys,
            args: a.args,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_02_plan_becomes_the_same_03_plan_run_at_once() {
        let p = old::Plan {
            actions: vec![
                old::Action::HashSet(old::HashSet {
                    key: "d:k".into(),
                    fields: vec![old::FieldValue {
                        name: "a".into(),
                        value: vec![1],
                    }],
                    ttl_ms: Some(5),
                }),
                old::Action::ZsetRange(old::ZsetRange {
                    key: "d:z".into(),
                    bounds: old::ZsetBounds::Score((1.0, 2.0)),
                    reverse: true,
                    limit: Some(3),
                }),
            ],
            atomic: true,
            respond: Some(1),
            ttl_ms: Some(9),
            cache: Some(old::CacheHint {
                keep: true,
                max_stale_ms: 7,
            }),
        };
        let now::Decision::Run(plan) = decision(p) else {
            panic!("a 0.2 plan never reads first");
        };
        assert!(plan.atomic && plan.respond == Some(1) && plan.ttl_ms == Some(9));
        assert!(matches!(
            plan.cache,
            Some(now::CacheHint {
                keep: true,
                max_stale_ms: 7
            })
        ));
        assert!(matches!(&plan.actions[0],
            now::Action::HashSet(h) if h.key == "d:k" && h.fields[0].name == "a" && h.fields[0].value == [1] && h.ttl_ms == Some(5)));
        assert!(matches!(&plan.actions[1],
            now::Action::ZsetRange(z) if matches!(z.bounds, now::ZsetBounds::Score((1.0, 2.0))) && z.reverse && z.limit == Some(3)));
    }
}
