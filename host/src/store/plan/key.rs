//! Any key: `DEL` and `PEXPIRE`.

use super::{Ctx, Kind, expire};
use crate::plugin::bindings::{KeyDelete, KeyExpire};
use crate::store::StoreError;
use redis::Cmd;

impl Kind for KeyDelete {
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        true
    }
    fn commands(&self, _: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(&self.key);
        Ok(vec![cmd])
    }
}

impl Kind for KeyExpire {
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        true
    }
    /// Kept within the domain's bounds like every other TTL.
    fn commands(&self, ctx: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        Ok(vec![expire(
            &self.key,
            ctx.ttl.pick(Some(self.ttl_ms), None),
        )])
    }
}
