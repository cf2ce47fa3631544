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
