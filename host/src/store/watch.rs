//! Read-then-write: a plan's reads, then — on the same connection, after
//! the policy decided — the writes they led to, as one transaction that
//! Redis refuses when a key read changed in between (`WATCH`). The caller
//! runs both rounds again on a refusal ([`Watch::commit`] answers `None`);
//! nothing is written by a refused round, so no update is lost.
//!
//! The connection is one of the gateway's own from the connection budget,
//! waited for within the command deadline; while the policy decides it is
//! held, so a request cancelled half-way leaves it to nobody rather than
//! hand another caller a connection with keys still watched.

use super::Store;
use super::chain::Session;
use super::error::{StoreError, reply_error};
use super::pipeline::{Done, Job, pipeline, place};
use super::plan::{self, Ctx, TtlBounds};
use super::pool::Exclusive;
use crate::plugin::bindings::Plan;
use redis::Value;

/// A connection with the first round's keys watched.
pub struct Watch<'s> {
    session: Session<'s, Exclusive>,
    store: &'s Store,
}

/// Each read action's answer, as a client would get it (MessagePack;
/// `None` for a miss): what the policy decides the writes from.
pub type Answers = Vec<Option<Vec<u8>>>;

impl Store {
    /// The first round: a connection on the node of `read`'s keys, `WATCH`
    /// of every key it reads, and the reads, in one round trip.
    pub async fn watch(
        &self,
        read: &Plan,
        ttl: &TtlBounds,
    ) -> Result<(Watch<'_>, Answers), StoreError> {
        let first = plan::first_key(read)
            .ok_or_else(|| StoreError::Internal("a read round that reads no key".into()))?;
        let mut keys: Vec<&str> = read.actions.iter().flat_map(plan::action_keys).collect();
        keys.sort_unstable();
        keys.dedup();
        let ctx = Ctx {
            ttl,
            plan_ttl: read.ttl_ms,
            scripts: &self.scripts,
            with: None,
        };
        let mut pipe = pipeline();
        pipe.cmd("WATCH").arg(&keys);
        for action in &read.actions {
            // A read is one command (checked by `plan::validate_read`).
            if let Some(cmd) = plan::kind(action).commands(&ctx)?.into_iter().next() {
                pipe.add_command(cmd);
            }
        }
        let mut session = self.backend.session(first, self.deadline).await?;
        let replies = session.query(&pipe).await?;
        let mut replies = replies.into_iter();
        if let Some(e) = replies.next().as_ref().and_then(reply_error) {
            return Err(e);
        }
        let answers = (read.actions.iter().zip(replies))
            .map(|(action, reply)| match reply_error(&reply) {
                Some(e) => Err(e),
                None => Ok(plan::shape(action, reply)),
            })
            .collect::<Result<Answers, StoreError>>()?;
        if answers.len() != read.actions.len() {
            return Err(StoreError::Internal("fewer replies than reads".into()));
        }
        Ok((
            Watch {
                session,
                store: self,
            },
            answers,
        ))
    }
}

impl Watch<'_> {
    /// The second round: `job`'s plan as `MULTI`…`EXEC` (the caller made it
    /// atomic). `None`: a watched key changed since it was read, and
    /// nothing was written.
    pub async fn commit(mut self, job: &Job<'_>) -> Result<Option<Done>, StoreError> {
        let mut pipe = pipeline();
        let placed = place(&mut pipe, job, &self.store.scripts, &mut Vec::new(), false)?;
        let sent = std::time::Instant::now();
        let mut replies = self.session.query(&pipe).await?;
        // EXEC answered, whatever it said: nothing is watched any more.
        self.session.clean();
        if matches!(replies.last(), Some(Value::Nil)) {
            return Ok(None);
        }
        placed.take(&mut replies, job, sent).map(Some)
    }

    /// Nothing to write after all: `UNWATCH`, so the connection goes back
    /// to the budget clean (or, if that fails, to nobody).
    pub async fn release(mut self) {
        let mut pipe = pipeline();
        pipe.cmd("UNWATCH");
        if self.session.query(&pipe).await.is_ok() {
            self.session.clean();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::plugin::bindings::{Action, StringGet, StringSet};
    use crate::store::Reply;
    use crate::store::scripts::Scripts;
    use crate::store::tracking::Tracking;
    use redis::Commands;
    use sluice_test_support as support;
    use std::sync::Arc;

    const TTL: TtlBounds = TtlBounds {
        default_ms: 60_000,
        min_ms: 1_000,
        max_ms: 120_000,
    };

    fn plan(actions: Vec<Action>, respond: Option<u32>) -> Plan {
        Plan {
            actions,
            atomic: true,
            respond,
            ttl_ms: None,
            cache: None,
        }
    }

    /// A plan reading `key` and answering with it.
    fn read(key: &str) -> Plan {
        plan(vec![Action::Get(StringGet { key: key.into() })], Some(0))
    }

    /// A plan writing 0x01 to `key`.
    fn write(key: &str) -> Plan {
        let set = StringSet {
            key: key.into(),
            value: vec![0x01],
            ttl_ms: None,
        };
        plan(vec![Action::Set(set)], None)
    }

    fn job(plan: &Plan) -> Job<'_> {
        Job {
            plan,
            ttl: &TTL,
            track: false,
            record: None,
            replica: false,
            reply: Reply::Respond,
        }
    }

    /// The store of a gateway configured for `redis`.
    fn store(redis: &support::Redis) -> Store {
        let text = support::config(redis, "");
        let config = Config::parse(&text, std::path::Path::new("sluice.toml")).expect("config");
        let scripts = Arc::new(Scripts::load(None).expect("scripts"));
        Store::new(&config.redis, config.breaker, scripts, Tracking::none()).expect("store")
    }

    #[tokio::test]
    async fn a_key_another_writer_changes_between_the_rounds_refuses_the_write() {
        let redis = support::Redis::start();
        let store = store(&redis);
        let mut other = redis.conn();
        let (read, write) = (read("d:k"), write("d:k"));

        // Read, another writer changes the key, then the write: refused, nothing written.
        let (watch, answers) = store.watch(&read, &TTL).await.expect("read round");
        assert_eq!(answers, vec![None], "a miss reads as none");
        let () = other.set("d:k", vec![0x02u8]).expect("SET");
        assert!(watch.commit(&job(&write)).await.expect("commit").is_none());
        let now: Vec<u8> = other.get("d:k").expect("GET");
        assert_eq!(now, [0x02], "the other writer's value stands");

        // Again, undisturbed: the write lands, and the read saw the value as a client would.
        let (watch, answers) = store.watch(&read, &TTL).await.expect("read round");
        assert_eq!(answers, vec![Some(vec![0x02])]);
        assert!(watch.commit(&job(&write)).await.expect("commit").is_some());
        let now: Vec<u8> = other.get("d:k").expect("GET");
        assert_eq!(now, [0x01]);
        let ttl: i64 = other.pttl("d:k").expect("PTTL");
        assert!(ttl > 0 && ttl <= 60_000, "the write expires: {ttl}");
    }

    #[tokio::test]
    async fn a_connection_goes_back_with_nothing_watched() {
        let redis = support::Redis::start();
        let store = store(&redis);
        let mut other = redis.conn();
        let (watched, write) = (read("d:k"), write("d:j"));
        // Released, or dropped half-way (a cancelled request): the next
        // session's transaction does not fail on the old session's watch.
        let (watch, _) = store.watch(&watched, &TTL).await.expect("read round");
        watch.release().await;
        let (watch, _) = store.watch(&watched, &TTL).await.expect("read round");
        drop(watch);
        let () = other.set("d:k", vec![0x02u8]).expect("SET");
        let other_key = read("d:j");
        for _ in 0..8 {
            let (watch, _) = store.watch(&other_key, &TTL).await.expect("read round");
            assert!(watch.commit(&job(&write)).await.expect("commit").is_some());
        }
    }
}
