//! Consumer groups: create (`XGROUP CREATE … MKSTREAM`), read
//! (`XREADGROUP`), acknowledge (`XACK`) and reclaim (`XAUTOCLAIM`). Blocking
//! reads hold a connection of their own, from the same budget as everything else.

use super::{Store, StoreError, pipeline, reply, reply_error};
use redis::Value;
use std::time::Duration;

/// One consumer group of one stream. Names are checked by the caller
/// (the stream inside a domain's namespace).
pub struct Group<'a> {
    pub store: &'a Store,
    pub stream: &'a str,
    pub group: &'a str,
    /// The stream's domain TTL: a stream made by creating a group expires.
    pub ttl_ms: u64,
}

impl Group<'_> {
    /// Create the group (and the stream); `start` is `$` (new entries only)
    /// or an entry id (`0`: from the beginning). False when it existed.
    pub async fn create(&self, start: &str) -> Result<bool, StoreError> {
        let mut pipe = pipeline();
        pipe.cmd("XGROUP")
            .arg("CREATE")
            .arg(self.stream)
            .arg(self.group)
            .arg(start)
            .arg("MKSTREAM");
        // A stream made here expires like any; one that exists keeps its TTL.
        pipe.cmd("PEXPIRE")
            .arg(self.stream)
            .arg(self.ttl_ms)
            .arg("NX")
            .ignore();
        match self
            .store
            .query(&pipe)
            .await?
            .into_iter()
            .next()
            .unwrap_or(Value::Nil)
        {
            Value::ServerError(e) if e.code() == "BUSYGROUP" => Ok(false),
            v => reply_error(&v).map_or(Ok(true), Err),
        }
    }

    /// Up to `count` new messages for `consumer`, waiting up to `block` for
    /// one; `[{"id", "fields"}]` as MessagePack.
    pub async fn read(
        &self,
        consumer: &str,
        count: u64,
        block: Duration,
    ) -> Result<Vec<u8>, StoreError> {
        let mut pipe = pipeline();
        let cmd = pipe
            .cmd("XREADGROUP")
            .arg("GROUP")
            .arg(self.group)
            .arg(consumer)
            .arg("COUNT")
            .arg(count);
        if !block.is_zero() {
            cmd.arg("BLOCK").arg(block.as_millis() as u64);
        }
        cmd.arg("STREAMS").arg(self.stream).arg(">");
        let replies = if block.is_zero() {
            self.store.query(&pipe).await?
        } else {
            self.store.query_exclusive(&pipe, block).await?
        };
        let entries = reply::read_group_entries(checked(replies)?);
        Ok(reply::stream_entries(entries))
    }

    /// Acknowledge `ids`; how many were pending.
    pub async fn ack(&self, ids: &[String]) -> Result<i64, StoreError> {
        let mut pipe = pipeline();
        pipe.cmd("XACK").arg(self.stream).arg(self.group).arg(ids);
        Ok(match checked(self.store.query(&pipe).await?)? {
            Value::Int(n) => n,
            _ => 0,
        })
    }

    /// Take over up to `count` messages idle for `min_idle_ms` or more.
    pub async fn claim(
        &self,
        consumer: &str,
        min_idle_ms: u64,
        count: u64,
    ) -> Result<Vec<u8>, StoreError> {
        let mut pipe = pipeline();
        pipe.cmd("XAUTOCLAIM")
            .arg(self.stream)
            .arg(self.group)
            .arg(consumer)
            .arg(min_idle_ms)
            .arg("0-0")
            .arg("COUNT")
            .arg(count);
        let entries = match checked(self.store.query(&pipe).await?)? {
            Value::Array(mut parts) if parts.len() >= 2 => match parts.swap_remove(1) {
                Value::Array(entries) => entries,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        Ok(reply::stream_entries(entries))
    }
}

/// The one reply; a missing group is its own error (a 404 that says how to make one).
fn checked(replies: Vec<Value>) -> Result<Value, StoreError> {
    match replies.into_iter().next().unwrap_or(Value::Nil) {
        Value::ServerError(e) if e.code() == "NOGROUP" => Err(StoreError::NoGroup(
            e.details().unwrap_or_default().to_owned(),
        )),
        v => reply_error(&v).map_or(Ok(v), Err),
    }
}
