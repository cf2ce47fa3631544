//! Plans of every action kind, run by the host's executor against a real
//! Redis: commands, expiry, MULTI/EXEC, and the shapes of the replies.

use sluice_test_support as support;

use redis::Commands;
use serde_json::{Value, json};
use sluice::config::{BreakerConfig, RedisConfig};
use sluice::plugin::bindings::{
    Action, CounterAdd, CounterGet, FieldValue, HashAdd, HashDelete, HashGet, HashSet, KeyTtl,
    ListEnd, ListPush, ListRange, ListRemove, Number, Plan, ScoredMember, ScriptCall, SetAdd,
    SetContains, SetCount, SetIfAbsent, SetMembers, SetRemove, StreamAdd, StringGet, StringSet,
    ZsetAdd, ZsetBounds, ZsetCondition, ZsetCount, ZsetIncr, ZsetRange, ZsetRemove, ZsetScore,
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
    store_at(redis.url())
}

fn store_at(url: String) -> Store {
    let config = RedisConfig {
        url: url.into(),
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
    Ok(body(store, plan, respond)
        .await?
        .map_or(Value::Null, |b| rmp_serde::from_slice(&b).unwrap()))
}

/// [`run`]'s answer as the MessagePack body it is (`None`: a miss or no answer).
async fn body(
    store: &Store,
    plan: &Plan,
    respond: Option<u32>,
) -> Result<Option<Vec<u8>>, StoreError> {
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
    Ok(store.run(&[job]).await.pop().unwrap()?.body)
}

/// The answer of a plan of `action` alone.
async fn one(store: &Store, action: Action) -> Result<Value, StoreError> {
    run(store, &plan(vec![action], false), Some(0)).await
}

/// Whether a body is one MessagePack float 64 (not, say, a string of one).
fn is_float(body: &[u8]) -> bool {
    body.len() == 9 && body[0] == 0xcb
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

fn counter(key: &str, by: Number, cap: Option<Number>) -> Action {
    Action::CounterAdd(CounterAdd {
        key: key.into(),
        by,
        cap,
        ttl_ms: None,
    })
}

fn pttl(redis: &Redis, key: &str) -> i64 {
    redis.conn().pttl(key).unwrap()
}

#[tokio::test]
async fn counters_add_within_their_cap_and_expire_only_without_an_expiry() {
    let redis = Redis::start();
    let store = store(&redis);
    let add = |by: i64, cap: i64| counter("d:n", Number::Int(by), Some(Number::Int(cap)));
    // Created by the add: it expires after the domain's TTL.
    assert_eq!(
        one(&store, add(5, 10)).await.unwrap(),
        json!({"value": 5, "added": true})
    );
    assert!((55_000..=60_000).contains(&pttl(&redis, "d:n")));
    // An existing counter keeps its expiry.
    let _: () = redis.conn().pexpire("d:n", 100_000).unwrap();
    assert_eq!(
        one(&store, add(5, 10)).await.unwrap(),
        json!({"value": 10, "added": true}),
        "reaching the cap is allowed"
    );
    assert!(pttl(&redis, "d:n") > 60_000, "its own expiry, not the TTL");
    // Past the cap, up or down: refused, the value and its expiry as they were.
    assert_eq!(
        one(&store, add(1, 10)).await.unwrap(),
        json!({"value": 10, "added": false})
    );
    assert_eq!(
        one(&store, add(-20, -5)).await.unwrap(),
        json!({"value": 10, "added": false})
    );
    let stored: String = redis.conn().get("d:n").unwrap();
    assert_eq!(stored, "10");
    assert!(pttl(&redis, "d:n") > 60_000);
    assert_eq!(
        one(&store, add(-15, -5)).await.unwrap(),
        json!({"value": -5, "added": true})
    );
    // Refused on no counter: none is made.
    let none = counter("d:none", Number::Int(20), Some(Number::Int(10)));
    assert_eq!(
        one(&store, none).await.unwrap(),
        json!({"value": 0, "added": false})
    );
    let exists: bool = redis.conn().exists("d:none").unwrap();
    assert!(!exists);
    // A counter written without an expiry gets one: every key written expires.
    let _: () = redis.conn().set("d:plain", 3).unwrap();
    let plain = counter("d:plain", Number::Int(1), None);
    assert_eq!(
        one(&store, plain).await.unwrap(),
        json!({"value": 4, "added": true})
    );
    assert!(pttl(&redis, "d:plain") > 0);
}

#[tokio::test]
async fn float_counters_answer_floats_and_mixing_kinds_is_redis_to_judge() {
    let redis = Redis::start();
    let store = store(&redis);
    let add = |by: f64, cap: Option<f64>| counter("d:f", Number::Float(by), cap.map(Number::Float));
    let p = plan(vec![add(1.5, None)], false);
    let raw = body(&store, &p, Some(0)).await.unwrap().unwrap();
    let answer: Value = rmp_serde::from_slice(&raw).unwrap();
    assert_eq!(answer, json!({"value": 1.5, "added": true}));
    // {"value": <float 64>, …}: the 0xcb of a float, not a string's 0xa3.
    let value_at = raw.windows(6).position(|w| w == b"\xa5value").unwrap() + 6;
    assert_eq!(raw[value_at], 0xcb, "{raw:x?}");
    assert_eq!(
        one(&store, add(0.25, Some(1.6))).await.unwrap(),
        json!({"value": 1.5, "added": false})
    );
    assert_eq!(
        one(&store, add(-0.5, Some(0.5))).await.unwrap(),
        json!({"value": 1.0, "added": true})
    );
    // A float amount on a whole counter makes it a float (Redis's rule);
    // a whole amount on a float counter is Redis's error, failing the plan.
    let _: () = redis.conn().set("d:i", 2).unwrap();
    let onto_int = counter("d:i", Number::Float(0.5), None);
    assert_eq!(
        one(&store, onto_int).await.unwrap(),
        json!({"value": 2.5, "added": true})
    );
    let onto_float = counter("d:i", Number::Int(1), None);
    let e = one(&store, onto_float).await.unwrap_err();
    assert!(e.to_string().contains("not an integer"), "{e}");
    let kept: String = redis.conn().get("d:i").unwrap();
    assert_eq!(kept, "2.5", "nothing written");
}

fn counter_get(key: &str) -> Action {
    Action::CounterGet(CounterGet { key: key.into() })
}

#[tokio::test]
async fn counters_read_back_as_the_numbers_they_hold_and_no_counter_is_a_miss() {
    let redis = Redis::start();
    let store = store(&redis);
    // No counter: a miss, and the read makes none (an add of 0 would).
    assert_eq!(one(&store, counter_get("d:n")).await.unwrap(), Value::Null);
    let exists: bool = redis.conn().exists("d:n").unwrap();
    assert!(!exists, "a read creates nothing");
    // An int counter: "5" reads as 5 (0x05), not as `get`'s 53 (0x35).
    one(&store, counter("d:n", Number::Int(5), None))
        .await
        .unwrap();
    let read = plan(vec![counter_get("d:n")], false);
    assert_eq!(
        body(&store, &read, Some(0)).await.unwrap(),
        Some(vec![0x05])
    );
    one(&store, counter("d:n", Number::Int(7), None))
        .await
        .unwrap();
    assert_eq!(one(&store, counter_get("d:n")).await.unwrap(), json!(12));
    // A float counter: a float 64; a whole sum is stored without a point,
    // so it reads as an int, as Redis holds it.
    one(&store, counter("d:f", Number::Float(1.5), None))
        .await
        .unwrap();
    let read = plan(vec![counter_get("d:f")], false);
    let raw = body(&store, &read, Some(0)).await.unwrap().unwrap();
    assert!(is_float(&raw), "{raw:x?}");
    assert_eq!(rmp_serde::from_slice::<Value>(&raw).unwrap(), json!(1.5));
    one(&store, counter("d:f", Number::Float(0.5), None))
        .await
        .unwrap();
    assert_eq!(one(&store, counter_get("d:f")).await.unwrap(), json!(2));
    // Text that is no number is answered as it is.
    let _: () = redis.conn().set("d:t", "ten").unwrap();
    assert_eq!(one(&store, counter_get("d:t")).await.unwrap(), json!("ten"));
}

#[tokio::test]
async fn the_counter_script_is_reloaded_after_a_flush_in_a_pipeline_and_a_transaction() {
    let redis = Redis::start();
    let store = store(&redis);
    let flush = || {
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query(&mut redis.conn())
            .unwrap();
    };
    let add = || counter("d:c", Number::Int(1), None);
    assert_eq!(
        one(&store, add()).await.unwrap(),
        json!({"value": 1, "added": true}),
        "a new connection runs it (every connection loads the scripts)"
    );
    flush();
    assert_eq!(
        one(&store, add()).await.unwrap(),
        json!({"value": 2, "added": true}),
        "NOSCRIPT recovered in a plain pipeline"
    );
    flush();
    let atomic = plan(vec![add(), get("d:c")], true);
    assert_eq!(
        run(&store, &atomic, Some(0)).await.unwrap(),
        json!({"value": 3, "added": true}),
        "loaded first inside MULTI/EXEC"
    );
}

#[tokio::test]
async fn lists_push_trimmed_to_keep_and_read_in_ranges_from_either_end() {
    let redis = Redis::start();
    let store = store(&redis);
    let push = |end, values: Vec<Value>, keep| {
        Action::ListPush(ListPush {
            key: "d:l".into(),
            values: values.into_iter().map(mp).collect(),
            end,
            keep,
            ttl_ms: None,
        })
    };
    let range = |start, count| {
        Action::ListRange(ListRange {
            key: "d:l".into(),
            start,
            count,
        })
    };
    let items: Vec<Value> = (0..5).map(|i| json!({"n": i})).collect();
    // At the head the last pushed is first; keep the three newest.
    assert_eq!(
        one(&store, push(ListEnd::Head, items, Some(3)))
            .await
            .unwrap(),
        json!(3),
        "the length after the trim"
    );
    assert!(pttl(&redis, "d:l") > 0);
    assert_eq!(
        one(&store, range(0, 10)).await.unwrap(),
        json!([{"n": 4}, {"n": 3}, {"n": 2}])
    );
    // At the tail, the four nearest the tail are kept.
    let tail = push(ListEnd::Tail, vec![json!("a"), json!(2.5)], Some(4));
    assert_eq!(one(&store, tail).await.unwrap(), json!(4));
    assert_eq!(
        one(&store, range(0, 10)).await.unwrap(),
        json!([{"n": 3}, {"n": 2}, "a", 2.5])
    );
    // From the tail: -2 with 10 stops at the tail, not at index 7.
    assert_eq!(one(&store, range(-2, 10)).await.unwrap(), json!(["a", 2.5]));
    assert_eq!(one(&store, range(-3, 1)).await.unwrap(), json!([{"n": 2}]));
    // A float item comes back a float 64.
    let last = body(&store, &plan(vec![range(-1, 1)], false), Some(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((last[0], is_float(&last[1..])), (0x91, true), "{last:x?}");
    let remove = Action::ListRemove(ListRemove {
        key: "d:l".into(),
        value: mp(json!("a")),
        count: 0,
    });
    assert_eq!(one(&store, remove).await.unwrap(), json!(1));
    // Past the end, or no list: a miss.
    assert_eq!(one(&store, range(10, 5)).await.unwrap(), Value::Null);
    let _: () = redis.conn().del("d:l").unwrap();
    assert_eq!(one(&store, range(0, 5)).await.unwrap(), Value::Null);
    let unkept = push(ListEnd::Tail, vec![json!(1), json!(2)], None);
    assert_eq!(one(&store, unkept).await.unwrap(), json!(2));
}

#[tokio::test]
async fn sets_sorted_sets_and_hashes_remove_count_score_and_add() {
    let redis = Redis::start();
    let store = store(&redis);
    let sadd = Action::SetAdd(SetAdd {
        key: "d:s".into(),
        members: vec!["pear".into(), "apple".into(), "fig".into()],
        ttl_ms: None,
    });
    one(&store, sadd).await.unwrap();
    let members = |count| {
        Action::SetMembers(SetMembers {
            key: "d:s".into(),
            count,
        })
    };
    let scard = || Action::SetCount(SetCount { key: "d:s".into() });
    assert_eq!(
        one(&store, members(10)).await.unwrap(),
        json!(["apple", "fig", "pear"]),
        "all of them, sorted"
    );
    let two = one(&store, members(2)).await.unwrap();
    let two: Vec<&str> = two
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(two.len() == 2 && two[0] < two[1], "{two:?}");
    assert_eq!(one(&store, scard()).await.unwrap(), json!(3));
    let srem = Action::SetRemove(SetRemove {
        key: "d:s".into(),
        members: vec!["fig".into(), "kiwi".into()],
    });
    assert_eq!(one(&store, srem).await.unwrap(), json!(1));
    assert_eq!(one(&store, scard()).await.unwrap(), json!(2));
    let _: () = redis.conn().del("d:s").unwrap();
    assert_eq!(
        one(&store, scard()).await.unwrap(),
        json!(0),
        "0 is an answer"
    );
    assert_eq!(
        one(&store, members(3)).await.unwrap(),
        Value::Null,
        "a miss"
    );

    let zadd = Action::ZsetAdd(ZsetAdd {
        key: "d:z".into(),
        members: vec![
            ScoredMember {
                member: "ann".into(),
                score: 12.5,
            },
            ScoredMember {
                member: "bob".into(),
                score: 3.0,
            },
        ],
        condition: ZsetCondition::Always,
        ttl_ms: None,
    });
    one(&store, zadd).await.unwrap();
    let score = |member: &str| {
        Action::ZsetScore(ZsetScore {
            key: "d:z".into(),
            member: member.into(),
        })
    };
    let zcard = || Action::ZsetCount(ZsetCount { key: "d:z".into() });
    let ann = body(&store, &plan(vec![score("ann")], false), Some(0))
        .await
        .unwrap()
        .unwrap();
    assert!(is_float(&ann), "{ann:x?}");
    assert_eq!(rmp_serde::from_slice::<f64>(&ann).unwrap(), 12.5);
    assert_eq!(one(&store, score("bob")).await.unwrap(), json!(3.0));
    assert_eq!(one(&store, score("cid")).await.unwrap(), Value::Null);
    assert_eq!(one(&store, zcard()).await.unwrap(), json!(2));
    let zrem = Action::ZsetRemove(ZsetRemove {
        key: "d:z".into(),
        members: vec!["ann".into()],
    });
    assert_eq!(one(&store, zrem).await.unwrap(), json!(1));
    assert_eq!(one(&store, zcard()).await.unwrap(), json!(1));

    let hadd = |field: &str, by| {
        Action::HashAdd(HashAdd {
            key: "d:h".into(),
            field: field.into(),
            by,
            ttl_ms: Some(5_000),
        })
    };
    assert_eq!(
        one(&store, hadd("hits", Number::Int(2))).await.unwrap(),
        json!(2)
    );
    assert_eq!(
        one(&store, hadd("hits", Number::Int(3))).await.unwrap(),
        json!(5)
    );
    assert!(
        (1..=5_000).contains(&pttl(&redis, "d:h")),
        "the action's TTL"
    );
    let p = plan(vec![hadd("avg", Number::Float(0.25))], false);
    let avg = body(&store, &p, Some(0)).await.unwrap().unwrap();
    assert!(
        is_float(&avg),
        "a float, not HINCRBYFLOAT's string: {avg:x?}"
    );
    assert_eq!(rmp_serde::from_slice::<f64>(&avg).unwrap(), 0.25);
    let hdel = Action::HashDelete(HashDelete {
        key: "d:h".into(),
        fields: vec!["hits".into(), "nope".into()],
    });
    assert_eq!(one(&store, hdel).await.unwrap(), json!(1));
}

#[tokio::test]
async fn set_if_absent_claims_once_and_key_ttl_tells_what_is_left() {
    let redis = Redis::start();
    let store = store(&redis);
    let claim = || {
        Action::SetIfAbsent(SetIfAbsent {
            key: "d:lock".into(),
            value: mp(json!({"owner": "a"})),
            ttl_ms: Some(5_000),
        })
    };
    assert_eq!(one(&store, claim()).await.unwrap(), json!(true));
    assert_eq!(
        one(&store, claim()).await.unwrap(),
        json!(false),
        "never a miss"
    );
    let ttl = |key: &str| plan(vec![Action::KeyTtl(KeyTtl { key: key.into() })], false);
    let left = run(&store, &ttl("d:lock"), Some(0)).await.unwrap();
    assert!((1..=5_000).contains(&left.as_i64().unwrap()), "{left}");
    assert_eq!(
        run(&store, &plan(vec![get("d:lock")], false), Some(0))
            .await
            .unwrap(),
        json!({"owner": "a"})
    );
    // No expiry: an answer of nil; no key: a miss.
    let _: () = redis.conn().set("d:forever", 1).unwrap();
    let forever = body(&store, &ttl("d:forever"), Some(0)).await.unwrap();
    assert_eq!(forever, Some(vec![0xc0]));
    assert_eq!(body(&store, &ttl("d:absent"), Some(0)).await.unwrap(), None);
}

/// Every 0.3 action, one plan each, writes first.
fn every_new_action() -> Vec<Action> {
    vec![
        counter("d:n", Number::Int(1), Some(Number::Int(10))),
        counter("d:f", Number::Float(0.5), None),
        Action::SetIfAbsent(SetIfAbsent {
            key: "d:lock".into(),
            value: mp(json!(1)),
            ttl_ms: None,
        }),
        Action::HashAdd(HashAdd {
            key: "d:h".into(),
            field: "a".into(),
            by: Number::Int(1),
            ttl_ms: None,
        }),
        Action::HashAdd(HashAdd {
            key: "d:h".into(),
            field: "b".into(),
            by: Number::Float(0.5),
            ttl_ms: None,
        }),
        Action::HashDelete(HashDelete {
            key: "d:h".into(),
            fields: vec!["a".into()],
        }),
        Action::SetRemove(SetRemove {
            key: "d:s".into(),
            members: vec!["a".into()],
        }),
        Action::ZsetRemove(ZsetRemove {
            key: "d:z".into(),
            members: vec!["a".into()],
        }),
        Action::ListPush(ListPush {
            key: "d:l".into(),
            values: vec![mp(json!(1))],
            end: ListEnd::Head,
            keep: Some(10),
            ttl_ms: None,
        }),
        Action::ListRemove(ListRemove {
            key: "d:l".into(),
            value: mp(json!(2)),
            count: 0,
        }),
        Action::KeyTtl(KeyTtl { key: "d:n".into() }),
        counter_get("d:n"),
        Action::SetMembers(SetMembers {
            key: "d:s".into(),
            count: 5,
        }),
        Action::SetCount(SetCount { key: "d:s".into() }),
        Action::ZsetScore(ZsetScore {
            key: "d:z".into(),
            member: "a".into(),
        }),
        Action::ZsetCount(ZsetCount { key: "d:z".into() }),
        Action::ListRange(ListRange {
            key: "d:l".into(),
            start: -5,
            count: 5,
        }),
    ]
}

#[tokio::test]
async fn the_documented_acl_user_may_run_every_new_action() {
    let redis = Redis::start();
    // docs/configuration.md's line, with this test's keys (`d:`) added.
    let doc = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    let doc = std::fs::read_to_string(doc).unwrap();
    let line = doc
        .lines()
        .find(|l| l.starts_with("ACL SETUSER sluice "))
        .expect("docs/configuration.md has the ACL line");
    let mut rules: Vec<String> = line
        .split_whitespace()
        .skip(1)
        .map(|w| w.replace("CHANGE-ME", "pw"))
        .collect();
    rules.push("~d:*".into());
    let _: () = redis::cmd("ACL")
        .arg(&rules)
        .query(&mut redis.conn())
        .unwrap();
    let store = store_at(format!("{}?user=sluice&pass=pw", redis.url()));
    for action in every_new_action() {
        let shown = format!("{action:?}");
        run(&store, &plan(vec![action.clone()], false), Some(0))
            .await
            .unwrap_or_else(|e| panic!("{shown}: {e}"));
        // Inside a transaction the counter script is loaded by this user too.
        run(&store, &plan(vec![action], true), Some(0))
            .await
            .unwrap_or_else(|e| panic!("{shown}, atomic: {e}"));
    }
}
