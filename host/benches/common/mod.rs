//! What the benches share: a bb8 pool of the kind the analysis describes
//! (a connection checked out per command, bb8-redis style).

use redis::aio::MultiplexedConnection;

pub struct Plain(pub redis::Client);

impl bb8::ManageConnection for Plain {
    type Connection = MultiplexedConnection;
    type Error = redis::RedisError;
    async fn connect(&self) -> Result<MultiplexedConnection, redis::RedisError> {
        self.0.get_multiplexed_async_connection().await
    }
    async fn is_valid(&self, c: &mut MultiplexedConnection) -> Result<(), redis::RedisError> {
        redis::cmd("PING").query_async(c).await
    }
    fn has_broken(&self, _: &mut MultiplexedConnection) -> bool {
        false
    }
}

/// `GET key` through the store, as the request path sends it: a one-action plan.
pub async fn store_get(store: &sluice::store::Store, key: &str) {
    use sluice::plugin::bindings::{Action, Plan, StringGet};
    let plan = Plan {
        actions: vec![Action::Get(StringGet { key: key.into() })],
        atomic: false,
        respond: Some(0),
        ttl_ms: None,
        cache: None,
    };
    let ttl = sluice::store::plan::TtlBounds {
        default_ms: 60_000,
        min_ms: 1_000,
        max_ms: 60_000,
    };
    let job = sluice::store::Job {
        plan: &plan,
        ttl: &ttl,
        track: false,
        record: None,
        replica: false,
        reply: sluice::store::Reply::Respond,
    };
    let _ = std::hint::black_box(store.run(&[job]).await);
}
