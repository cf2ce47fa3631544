//! `fixed-ttl`: the simplest useful policy, and the one the plugin guide walks
//! through. The value is stored as-is (MessagePack) at `{domain}:{key}`; every
//! write expires after the client's `?ttl_s=` or else the domain's `ttl_s`.

use sluice_sdk::{Error, Operation, Plan, Policy, Request};

/// The policy. Settings: `ttl_s` (the host applies it when a write carries no TTL).
pub struct FixedTtl;

impl Policy for FixedTtl {
    fn plan(req: Request) -> Result<Plan, Error> {
        let key = req.namespaced_key();
        Ok(match req.operation {
            Operation::Get => Plan::new().get(key).respond_with_last(),
            Operation::Put => Plan::new().set(key, req.value_bytes()?.to_vec(), req.ttl_ms),
            Operation::Delete => Plan::new().delete(key),
            Operation::Publish => return Err(Error::bad_request("this domain takes no events")),
        })
    }
}

sluice_sdk::export_policy!(FixedTtl);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::Action;

    #[test]
    fn put_stores_the_value_under_the_domain_with_the_clients_ttl() {
        let mut req = Request::new("cache", "user:1", Operation::Put);
        req.value = Some(vec![0x2a]);
        req.ttl_ms = Some(9_000);
        let plan = FixedTtl::plan(req).unwrap();
        match plan.actions() {
            [Action::Set(s)] => {
                assert_eq!(s.key, "cache:user:1");
                assert_eq!(s.value, vec![0x2a]);
                assert_eq!(s.ttl_ms, Some(9_000));
            }
            other => panic!("unexpected plan {other:?}"),
        }
        assert_eq!(plan.respond(), None);
    }

    #[test]
    fn get_reads_the_key_and_responds_with_it() {
        let plan = FixedTtl::plan(Request::new("cache", "k", Operation::Get)).unwrap();
        assert!(matches!(plan.actions(), [Action::Get(k)] if k == "cache:k"));
        assert_eq!(plan.respond(), Some(0));
    }

    #[test]
    fn put_without_value_is_a_bad_request() {
        let err = FixedTtl::plan(Request::new("cache", "k", Operation::Put)).unwrap_err();
        assert!(matches!(err, Error::BadRequest(_)));
    }
}
