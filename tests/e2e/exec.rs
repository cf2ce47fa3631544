//! Plans of every action kind, run by the host's executor against a real
//! Redis: commands, expiry, MULTI/EXEC, and the shapes of the replies.

#[path = "../support/mod.rs"]
mod support;

use redis::Commands;
use serde_json::{Value, json};
use sluice::config::RedisConfig;
use sluice::plugin::bindings::{
    Action, FieldValue, HashGet, HashSet, Plan, ScoredMember, ScriptCall, SetAdd, SetContains,
    SetValue, StreamAdd, ZsetAdd, ZsetBounds, ZsetRange,
};
use sluice::store::breaker::BreakerConfig;
use sluice::store::exec::{self, TtlBounds};
use sluice::store::scripts::Scripts;
use sluice::store::{Store, reply};
use std::sync::Arc;
use support::Redis;

const TTL: TtlBounds = TtlBounds {
    default_ms: 60_000,
    min_ms: 1_000,
    max_ms: 120_000,
};

fn store(redis: &Redis) -> Store {
    let config = RedisConfig {
        url: redis.url(),
        ..RedisConfig::default()
    };
    Store::new(
        &config,
        BreakerConfig::default(),
        Arc::new(Scripts::load(None).unwrap()),
        Arc::new(|_| {}),
    )
    .unwrap()
}

fn plan(actions: Vec<Action>, atomic: bool) -> Plan {
    Plan {
        actions,
        atomic,
        respond: None,
        ttl_ms: None,
        cache: None,
    }
}

fn mp(v: Value) -> Vec<u8> {
    rmp_serde::to_vec(&v).unwrap()
}

fn shaped(action: &Action, v: redis::Value) -> Value {
    reply::shape(action, v).map_or(Value::Null, |b| rmp_serde::from_slice(&b).unwrap())
}

#[tokio::test]
async fn every_action_kind_runs_and_every_write_expires() {
    let redis = Redis::start();
    let store = store(&redis);
    let writes = plan(
        vec![
            Action::Set(SetValue {
                key: "d:s".into(),
                value: mp(json!("v")),
                ttl_ms: None,
            }),
            Action::HashSet(HashSet {
                key: "d:h".into(),
                fields: vec![
                    FieldValue {
                        name: "price".into(),
                        value: mp(json!(64000.5)),
                    },
                    FieldValue {
                        name: "asset".into(),
                        value: mp(json!("BTC")),
                    },
                ],
                ttl_ms: Some(5_000),
            }),
            Action::ZsetAdd(ZsetAdd {
                key: "d:z".into(),
                members: vec![
                    ScoredMember {
                        member: "a".into(),
                        score: 1.0,
                    },
                    ScoredMember {
                        member: "b".into(),
                        score: 2.5,
                    },
                    ScoredMember {
                        member: "c".into(),
                        score: 3.0,
                    },
                ],
                ttl_ms: Some(999_999_999),
            }),
            Action::SetAdd(SetAdd {
                key: "d:m".into(),
                members: vec!["x".into(), "y".into()],
                ttl_ms: None,
            }),
            Action::StreamAdd(StreamAdd {
                stream: "d:x".into(),
                fields: vec![FieldValue {
                    name: "e".into(),
                    value: mp(json!({"k": 1})),
                }],
                max_len: Some(10),
            }),
        ],
        false,
    );
    let replies = exec::run(&store, &writes, &TTL).await.unwrap();
    assert_eq!(
        replies.len(),
        5,
        "one reply per action, expiry commands hidden"
    );
    let mut c = redis.conn();
    let pttl = |c: &mut redis::Connection, k: &str| -> i64 { c.pttl(k).unwrap() };
    assert!(
        (55_000..=60_000).contains(&pttl(&mut c, "d:s")),
        "default TTL"
    );
    assert!(
        (1..=5_000).contains(&pttl(&mut c, "d:h")),
        "the action's TTL"
    );
    assert!(
        (115_000..=120_000).contains(&pttl(&mut c, "d:z")),
        "clamped to the max"
    );
    assert!(pttl(&mut c, "d:m") > 0);

    let reads = vec![
        Action::Get("d:s".into()),
        Action::HashGet(HashGet {
            key: "d:h".into(),
            fields: vec!["price".into(), "nope".into()],
        }),
        Action::HashGet(HashGet {
            key: "d:h".into(),
            fields: vec![],
        }),
        Action::ZsetRange(ZsetRange {
            key: "d:z".into(),
            bounds: ZsetBounds::Rank((0, -1)),
            reverse: true,
            limit: Some(2),
        }),
        Action::ZsetRange(ZsetRange {
            key: "d:z".into(),
            bounds: ZsetBounds::Score((2.0, f64::INFINITY)),
            reverse: false,
            limit: None,
        }),
        Action::SetContains(SetContains {
            key: "d:m".into(),
            member: "x".into(),
        }),
        Action::SetContains(SetContains {
            key: "d:m".into(),
            member: "q".into(),
        }),
        Action::Get("d:absent".into()),
    ];
    let replies = exec::run(&store, &plan(reads.clone(), false), &TTL)
        .await
        .unwrap();
    let got: Vec<Value> = reads
        .iter()
        .zip(replies)
        .map(|(a, v)| shaped(a, v))
        .collect();
    assert_eq!(got[0], json!("v"));
    assert_eq!(
        got[1],
        json!({"price": 64000.5}),
        "HMGET keeps types, skips absent fields"
    );
    assert_eq!(got[2], json!({"price": 64000.5, "asset": "BTC"}));
    assert_eq!(
        got[3],
        json!([{"member": "c", "score": 3.0}, {"member": "b", "score": 2.5}])
    );
    assert_eq!(
        got[4],
        json!([{"member": "b", "score": 2.5}, {"member": "c", "score": 3.0}])
    );
    assert_eq!(
        (got[5].clone(), got[6].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(got[7], Value::Null, "a miss");
}

#[tokio::test]
async fn an_atomic_plan_runs_in_multi_exec_with_its_replies_in_place() {
    let redis = Redis::start();
    let store = store(&redis);
    let actions = vec![
        Action::HashSet(HashSet {
            key: "d:h".into(),
            fields: vec![FieldValue {
                name: "f".into(),
                value: mp(json!(1)),
            }],
            ttl_ms: None,
        }),
        Action::Script(ScriptCall {
            name: "ready".into(),
            keys: vec![],
            args: vec![],
        }),
        Action::HashGet(HashGet {
            key: "d:h".into(),
            fields: vec!["f".into()],
        }),
    ];
    // Scripts flushed: inside MULTI/EXEC the plan loads what it calls first.
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut redis.conn())
        .unwrap();
    let replies = exec::run(&store, &plan(actions.clone(), true), &TTL)
        .await
        .unwrap();
    assert_eq!(replies[0], redis::Value::Int(1));
    assert_eq!(replies[1], redis::Value::Int(1));
    assert_eq!(shaped(&actions[2], replies[2].clone()), json!({"f": 1}));
    let pttl: i64 = redis.conn().pttl("d:h").unwrap();
    assert!(pttl > 0);

    // An error reply fails the plan that caused it.
    let _: () = redis.conn().set("d:str", "x").unwrap();
    let wrong = plan(
        vec![Action::HashGet(HashGet {
            key: "d:str".into(),
            fields: vec![],
        })],
        false,
    );
    let err = exec::run(&store, &wrong, &TTL).await.unwrap_err();
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
}
