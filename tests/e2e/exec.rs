//! Plans of every action kind, run by the host's executor against a real
//! Redis: commands, expiry, MULTI/EXEC, and the shapes of the replies.

use sluice_test_support as support;

use redis::Commands;
use serde_json::{Value, json};
use sluice::config::{BreakerConfig, RedisConfig};
use sluice::plugin::bindings::{
    Action, FieldValue, HashGet, HashSet, Plan, ScoredMember, ScriptCall, SetAdd, SetContains,
    StreamAdd, StringGet, StringSet, ZsetAdd, ZsetBounds, ZsetCondition, ZsetIncr, ZsetRange,
    ZsetTrim,
};
use sluice::store::plan::TtlBounds;
use sluice::store::scripts::Scripts;
use sluice::store::tracking::Tracking;
use sluice::store::{Job, Reply, Store, StoreError};
use std::sync::Arc;
use support::Redis;

const TTL: TtlBounds = TtlBounds {
    default_ms: 60_000,
    min_ms: 1_000,
    max_ms: 120_000,
};

fn store(redis: &Redis) -> Store {
    let config = RedisConfig {
        url: redis.url().into(),
        ..RedisConfig::default()
    };
    Store::new(
        &config,
        BreakerConfig::default(),
        Arc::new(Scripts::load(None).unwrap()),
        Tracking::none(),
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

/// One plan, as its own round trip, responding with action `respond`: the
/// answer a client would get, as JSON (`null`: a miss or no answer).
async fn run(store: &Store, plan: &Plan, respond: Option<u32>) -> Result<Value, StoreError> {
    let plan = Plan {
        respond,
        ..plan.clone()
    };
    let job = Job {
        plan: &plan,
        ttl: &TTL,
        track: false,
        record: None,
        replica: false,
        reply: Reply::Respond,
    };
    let done = store.run(&[job]).await.pop().unwrap()?;
    Ok(done
        .body
        .map_or(Value::Null, |b| rmp_serde::from_slice(&b).unwrap()))
}

fn get(key: &str) -> Action {
    Action::Get(StringGet { key: key.into() })
}

#[tokio::test]
async fn every_action_kind_runs_and_every_write_expires() {
    let redis = Redis::start();
    let store = store(&redis);
    let writes = plan(
        vec![
            Action::Set(StringSet {
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
                condition: ZsetCondition::Always,
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
    // The answer is the action's own reply, its expiry command hidden.
    let answer = run(&store, &writes, Some(1)).await.unwrap();
    assert_eq!(answer, json!(2), "HSET answers the fields it added");
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
        get("d:s"),
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
            bounds: ZsetBounds::Rank((0, 1)),
            reverse: true,
            limit: None,
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
        get("d:absent"),
    ];
    let mut got = Vec::new();
    for i in 0..reads.len() as u32 {
        got.push(
            run(&store, &plan(reads.clone(), false), Some(i))
                .await
                .unwrap(),
        );
    }
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
    // Each answer is its action's reply out of EXEC's array.
    for (respond, answer) in [(0, json!(1)), (1, json!(1)), (2, json!({"f": 1}))] {
        // Scripts flushed: inside MULTI/EXEC the plan loads what it calls first.
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query(&mut redis.conn())
            .unwrap();
        let atomic = plan(actions.clone(), true);
        assert_eq!(run(&store, &atomic, Some(respond)).await.unwrap(), answer);
    }
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
    let err = run(&store, &wrong, None).await.unwrap_err();
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
}

#[tokio::test]
async fn sorted_sets_keep_the_best_score_increment_and_trim_by_rank() {
    let redis = Redis::start();
    let store = store(&redis);
    let add = |member: &str, score: f64, condition| {
        Action::ZsetAdd(ZsetAdd {
            key: "d:board".into(),
            members: vec![ScoredMember {
                member: member.into(),
                score,
            }],
            condition,
            ttl_ms: None,
        })
    };
    let top = Action::ZsetRange(ZsetRange {
        key: "d:board".into(),
        bounds: ZsetBounds::Rank((0, 9)),
        reverse: true,
        limit: None,
    });
    let actions = vec![
        add("ann", 10.0, ZsetCondition::Always),
        add("bob", 7.0, ZsetCondition::Always),
        add("cid", 1.0, ZsetCondition::Always),
        // GT: a lower score does not replace a higher one; a higher one does.
        add("ann", 3.0, ZsetCondition::IfGreater),
        add("bob", 9.0, ZsetCondition::IfGreater),
        // NX: an existing member is left alone, a new one is added.
        add("ann", 100.0, ZsetCondition::IfAbsent),
        add("dee", 0.5, ZsetCondition::IfAbsent),
        // LT: only lower scores replace.
        add("cid", 5.0, ZsetCondition::IfLess),
        Action::ZsetIncr(ZsetIncr {
            key: "d:board".into(),
            member: "cid".into(),
            by: 4.0,
            ttl_ms: None,
        }),
        // Keep the three highest.
        Action::ZsetTrim(ZsetTrim {
            key: "d:board".into(),
            start: 0,
            stop: -4,
        }),
        top.clone(),
    ];
    // The plan lands on the same board each time it runs.
    let board = plan(actions.clone(), false);
    assert_eq!(
        run(&store, &board, Some(8)).await.unwrap(),
        json!(5.0),
        "ZINCRBY answers the new score"
    );
    assert_eq!(
        run(&store, &board, Some(9)).await.unwrap(),
        json!(1),
        "one member trimmed"
    );
    assert_eq!(
        run(&store, &board, Some(10)).await.unwrap(),
        json!([
            {"member": "ann", "score": 10.0},
            {"member": "bob", "score": 9.0},
            {"member": "cid", "score": 5.0},
        ])
    );
    let pttl: i64 = redis.conn().pttl("d:board").unwrap();
    assert!(pttl > 0, "every sorted-set write expires");
    // An empty range is a miss, as an absent key is.
    let _: () = redis.conn().del("d:board").unwrap();
    let empty = run(&store, &plan(vec![top.clone()], false), Some(0)).await;
    assert_eq!(empty.unwrap(), Value::Null);
}
