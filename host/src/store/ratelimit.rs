//! Token buckets in Redis (`ratelimit.lua`, by EVALSHA), shared by every
//! gateway and timed by Redis's clock. Buckets live under the reserved
//! prefix `ratelimit:`, outside every domain's namespace.

use super::{Store, StoreError, scripts};
use redis::Value;

/// What one acquisition came to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub allowed: bool,
    /// Whole tokens left.
    pub remaining: u64,
    /// Until the bucket is full again.
    pub ms_to_full: u64,
    /// Until `cost` tokens would be there (0 when allowed).
    pub ms_to_wait: u64,
}

impl Store {
    /// Take `cost` tokens from `{policy}`'s bucket for `subject`.
    pub async fn take_tokens(
        &self,
        policy: &str,
        subject: &str,
        capacity: u64,
        refill_per_s: f64,
        cost: u64,
    ) -> Result<Bucket, StoreError> {
        let key = crate::namespace::ratelimit_key(policy, subject);
        let args = [
            capacity.to_string(),
            refill_per_s.to_string(),
            cost.to_string(),
        ];
        let reply = self.eval(scripts::RATE_LIMIT, &[key], &args).await?;
        bucket(&reply)
            .ok_or_else(|| StoreError::Internal(format!("unexpected rate-limit reply {reply:?}")))
    }
}

/// The script's `{allowed, remaining, ms to full, ms to wait}`.
fn bucket(v: &Value) -> Option<Bucket> {
    let Value::Array(items) = v else { return None };
    // A capacity lowered by a reload can leave a bucket over it for a
    // moment: negative numbers read as 0.
    let n: Vec<u64> = items
        .iter()
        .map(|i| match i {
            Value::Int(n) => Some((*n).max(0) as u64),
            _ => None,
        })
        .collect::<Option<_>>()?;
    match n[..] {
        [allowed, remaining, ms_to_full, ms_to_wait] => Some(Bucket {
            allowed: allowed == 1,
            remaining,
            ms_to_full,
            ms_to_wait,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_reply_becomes_a_bucket_and_a_malformed_one_is_refused() {
        let reply = Value::Array(vec![
            Value::Int(0),
            Value::Int(3),
            Value::Int(1200),
            Value::Int(40),
        ]);
        assert_eq!(
            bucket(&reply),
            Some(Bucket {
                allowed: false,
                remaining: 3,
                ms_to_full: 1200,
                ms_to_wait: 40
            })
        );
        assert_eq!(bucket(&Value::Array(vec![Value::Int(1)])), None);
        assert_eq!(bucket(&Value::Nil), None);
        let negative = Value::Array(vec![
            Value::Int(1),
            Value::Int(-1),
            Value::Int(-5),
            Value::Int(0),
        ]);
        let read = bucket(&negative).map(|b| (b.allowed, b.remaining, b.ms_to_full));
        assert_eq!(
            read,
            Some((true, 0, 0)),
            "a lowered capacity reads as empty"
        );
    }
}
