//! Consumer groups: create (`XGROUP CREATE … MKSTREAM`), read
//! (`XREADGROUP`), acknowledge (`XACK`) and reclaim (`XAUTOCLAIM`). Blocking
//! reads hold a connection of their own, from the same budget as everything else.

use super::error::reply_error;
use super::pipeline::pipeline;
use super::{Gather, Store, StoreError, reply};
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
            .query(&pipe, Some(self.stream))
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
    /// one; `[{"id", "fields"}]` as MessagePack. Read in rounds that stop
    /// once `gather.max_bytes` are gathered: what is not read stays in the
    /// stream for the next read.
    pub async fn read(
        &self,
        consumer: &str,
        count: u64,
        block: Duration,
        gather: Gather,
    ) -> Result<Vec<u8>, StoreError> {
        let mut entries = Vec::new();
        let mut bytes = 0;
        // Only the first round waits: later ones take what is already there.
        let mut block = block;
        while let Some(want) = next_round(count, entries.len(), bytes, gather) {
            let mut pipe = pipeline();
            let cmd = pipe
                .cmd("XREADGROUP")
                .arg("GROUP")
                .arg(self.group)
                .arg(consumer)
                .arg("COUNT")
                .arg(want);
            if !block.is_zero() {
                cmd.arg("BLOCK").arg(block.as_millis() as u64);
            }
            cmd.arg("STREAMS").arg(self.stream).arg(">");
            let replies = if block.is_zero() {
                self.store.query(&pipe, Some(self.stream)).await?
            } else {
                self.store
                    .query_exclusive(&pipe, self.stream, block)
                    .await?
            };
            block = Duration::ZERO;
            let got = reply::read_group_entries(checked(replies)?);
            if !gathered(&mut entries, &mut bytes, got, want) {
                break;
            }
        }
        Ok(reply::stream_entries(entries))
    }

    /// Acknowledge `ids`; how many were pending.
    pub async fn ack(&self, ids: &[String]) -> Result<i64, StoreError> {
        let mut pipe = pipeline();
        pipe.cmd("XACK").arg(self.stream).arg(self.group).arg(ids);
        Ok(
            match checked(self.store.query(&pipe, Some(self.stream)).await?)? {
                Value::Int(n) => n,
                _ => 0,
            },
        )
    }

    /// Take over up to `count` messages idle for `min_idle_ms` or more, in
    /// rounds bounded like [`Group::read`]'s.
    pub async fn claim(
        &self,
        consumer: &str,
        min_idle_ms: u64,
        count: u64,
        gather: Gather,
    ) -> Result<Vec<u8>, StoreError> {
        let mut entries = Vec::new();
        let mut bytes = 0;
        let mut cursor = b"0-0".to_vec();
        while let Some(want) = next_round(count, entries.len(), bytes, gather) {
            let mut pipe = pipeline();
            pipe.cmd("XAUTOCLAIM")
                .arg(self.stream)
                .arg(self.group)
                .arg(consumer)
                .arg(min_idle_ms)
                .arg(&cursor)
                .arg("COUNT")
                .arg(want);
            // [next cursor, entries, deleted ids]
            let mut parts = match checked(self.store.query(&pipe, Some(self.stream)).await?)? {
                Value::Array(parts) if parts.len() >= 2 => parts.into_iter(),
                _ => break,
            };
            cursor = match parts.next() {
                Some(Value::BulkString(next)) => next,
                _ => b"0-0".to_vec(),
            };
            let got = match parts.next() {
                Some(Value::Array(got)) => got,
                _ => Vec::new(),
            };
            let more = gathered(&mut entries, &mut bytes, got, want);
            // Cursor `0-0`: the whole pending list was scanned.
            if !more || cursor == b"0-0" {
                break;
            }
        }
        Ok(reply::stream_entries(entries))
    }
}

/// How many entries the next round asks for (`None`: stop): up to what is
/// left of `count`, a round's worth, while under the byte bound.
fn next_round(count: u64, got: usize, bytes: usize, gather: Gather) -> Option<u64> {
    let left = count.saturating_sub(got as u64);
    let want = left.min(gather.per_round as u64);
    (want > 0 && bytes < gather.max_bytes).then_some(want)
}

/// Add a round's entries; whether a further round may find more (this
/// one was full).
fn gathered(entries: &mut Vec<Value>, bytes: &mut usize, got: Vec<Value>, want: u64) -> bool {
    let full = got.len() as u64 >= want;
    *bytes += got.iter().map(reply::size).sum::<usize>();
    entries.extend(got);
    full
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
