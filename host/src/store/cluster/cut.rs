//! A plan that is not atomic but whose keys span hash slots (an event's
//! two streams, say), cut into one plan per slot: each part runs in its
//! slot's pipeline on its node, and the parts' answers are joined back into
//! the plan's. One action's keys always share a slot (validation holds them
//! to it), so a write of a structure and its expiry stay together in their
//! part's `MULTI`/`EXEC`. An atomic plan is never cut: a transaction cannot
//! span nodes, and validation refuses one whose keys would need it.

use super::topology::slot;
use crate::plugin::bindings::Plan;
use crate::store::plan;
use crate::store::{Done, Reply, StoreError};

/// The slot of each action (its first key's; an action without keys goes
/// with the first action).
fn slots(plan: &Plan) -> Vec<Option<u16>> {
    plan.actions
        .iter()
        .map(|a| plan::action_keys(a).first().map(|k| slot(k.as_bytes())))
        .collect()
}

/// Two keys of `plan` in different slots, if it has any.
pub fn apart(plan: &Plan) -> Option<(&str, &str)> {
    let mut keys = plan.actions.iter().flat_map(plan::action_keys);
    let first = keys.next()?;
    let other = keys.find(|k| slot(k.as_bytes()) != slot(first.as_bytes()))?;
    Some((first, other))
}

/// The plan's parts, one per slot, in the order its actions first reach
/// each slot (each keeps its actions' order, the plan's TTL and hints, and
/// responds with the plan's answer when it holds that action); `None` when
/// the plan is one slot's or atomic.
pub fn cut(plan: &Plan) -> Option<Vec<Plan>> {
    if plan.atomic || apart(plan).is_none() {
        return None;
    }
    let slots = slots(plan);
    let first = slots.iter().flatten().next().copied();
    let slots: Vec<Option<u16>> = slots.into_iter().map(|s| s.or(first)).collect();
    let mut order: Vec<Option<u16>> = Vec::new();
    for s in &slots {
        if !order.contains(s) {
            order.push(*s);
        }
    }
    let parts = order
        .into_iter()
        .map(|part| {
            let mut actions = Vec::new();
            let mut respond = None;
            for (i, action) in plan.actions.iter().enumerate() {
                if slots[i] == part {
                    if plan.respond == Some(i as u32) {
                        respond = Some(actions.len() as u32);
                    }
                    actions.push(action.clone());
                }
            }
            Plan {
                actions,
                respond,
                ..plan.clone()
            }
        })
        .collect();
    Some(parts)
}

/// The answer of a cut plan from its parts': the first part that failed
/// fails it (the others may have run, as in any plan that is not atomic);
/// its body is the responding part's, or for a publish every part's entry
/// ids in one map.
pub fn join(parts: Vec<Result<Done, StoreError>>, reply: Reply) -> Result<Done, StoreError> {
    let parts: Vec<Done> = parts.into_iter().collect::<Result<_, _>>()?;
    let body = match reply {
        Reply::Respond => parts.into_iter().find_map(|p| p.body),
        Reply::Published => Some(join_maps(parts.into_iter().filter_map(|p| p.body))?),
    };
    Ok(Done {
        body,
        expires_at: None,
    })
}

/// MessagePack maps into one (the entries of each, in order).
fn join_maps(maps: impl Iterator<Item = Vec<u8>>) -> Result<Vec<u8>, StoreError> {
    let (mut len, mut entries) = (0u32, Vec::new());
    for map in maps {
        let mut rest = &map[..];
        let n = rmp::decode::read_map_len(&mut rest)
            .map_err(|_| StoreError::Internal("a part's ids are not a map".into()))?;
        len += n;
        entries.extend_from_slice(rest);
    }
    let mut out = Vec::with_capacity(entries.len() + 5);
    let _ = rmp::encode::write_map_len(&mut out, len);
    out.extend_from_slice(&entries);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::bindings::{Action, FieldValue, StreamAdd, StringGet};

    fn xadd(stream: &str) -> Action {
        Action::StreamAdd(StreamAdd {
            stream: stream.into(),
            fields: vec![FieldValue {
                name: "e".into(),
                value: vec![1],
            }],
            max_len: Some(10),
        })
    }

    fn get(key: &str) -> Action {
        Action::Get(StringGet { key: key.into() })
    }

    fn plan(actions: Vec<Action>, respond: Option<u32>, atomic: bool) -> Plan {
        Plan {
            actions,
            atomic,
            respond,
            ttl_ms: Some(5_000),
            cache: None,
        }
    }

    #[test]
    fn a_plan_across_slots_is_cut_per_slot_keeping_order_and_its_answer() {
        assert_ne!(slot(b"arb:a"), slot(b"arb:b"));
        let p = plan(
            vec![
                xadd("arb:a"),
                xadd("arb:b"),
                get("arb:{arb:a}:x"),
                get("arb:b"),
            ],
            Some(3),
            false,
        );
        let parts = cut(&p).expect("two slots");
        assert_eq!(parts.len(), 2);
        let keys = |p: &Plan| -> Vec<String> {
            (p.actions.iter().flat_map(plan::action_keys))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(keys(&parts[0]), ["arb:a", "arb:{arb:a}:x"]);
        assert_eq!(keys(&parts[1]), ["arb:b", "arb:b"]);
        assert_eq!((parts[0].respond, parts[1].respond), (None, Some(1)));
        assert!(parts.iter().all(|p| p.ttl_ms == Some(5_000) && !p.atomic));
        // One slot, or atomic: not cut.
        assert!(cut(&plan(vec![xadd("arb:{t}"), xadd("arb:{t}:b")], None, false)).is_none());
        assert!(cut(&plan(vec![xadd("arb:a"), xadd("arb:b")], None, true)).is_none());
        assert_eq!(apart(&p), Some(("arb:a", "arb:b")));
    }

    fn ids(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        rmp::encode::write_map_len(&mut out, pairs.len() as u32).unwrap();
        for (k, v) in pairs {
            rmp::encode::write_str(&mut out, k).unwrap();
            rmp::encode::write_str(&mut out, v).unwrap();
        }
        out
    }

    #[test]
    fn the_parts_answers_join_and_a_failed_part_fails_the_plan() {
        let done = |body: Option<Vec<u8>>| {
            Ok(Done {
                body,
                expires_at: None,
            })
        };
        let published = join(
            vec![
                done(Some(ids(&[("a", "1-0")]))),
                done(Some(ids(&[("b", "2-0")]))),
            ],
            Reply::Published,
        )
        .unwrap();
        assert_eq!(published.body, Some(ids(&[("a", "1-0"), ("b", "2-0")])));
        let answered = join(vec![done(None), done(Some(vec![7]))], Reply::Respond).unwrap();
        assert_eq!(answered.body, Some(vec![7]));
        let failed = join(
            vec![done(None), Err(StoreError::Command("WRONGTYPE".into()))],
            Reply::Respond,
        );
        assert!(matches!(failed, Err(StoreError::Command(_))));
    }
}
