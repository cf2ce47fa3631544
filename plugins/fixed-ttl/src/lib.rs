//! `fixed-ttl`: the simplest useful policy. The value is stored as-is
//! (MessagePack) at `{domain}:{key}`; every write expires after the client's
//! `?ttl_s=` or else the domain's `ttl_s` (the host applies it when a write
//! names no TTL). No settings.

use sluice_sdk::prelude::*;

/// The policy: it needs nothing but its domain.
pub struct FixedTtl {
    domain: Domain,
}

impl Policy for FixedTtl {
    type Settings = NoSettings;

    fn configure(domain: Domain, _: NoSettings) -> Result<Self, Error> {
        Ok(FixedTtl { domain })
    }

    fn plan(&self, req: &Request) -> Result<Plan, Error> {
        let key = self.domain.key(&req.key);
        Ok(match req.operation {
            Operation::Get => Plan::new().respond_with(Get::new(key)),
            Operation::Put => Plan::new().then(Set::new(key, req.value()?).ttl_ms(req.ttl_ms)),
            Operation::Delete => Plan::new().then(Delete::new(key)),
            Operation::Publish => return Err(Error::bad_request("this domain takes no events")),
        })
    }
}

sluice_sdk::export_policy!(FixedTtl);

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> FixedTtl {
        FixedTtl::configure(Domain::named("cache"), NoSettings {}).unwrap()
    }

    #[test]
    fn put_stores_the_value_under_the_domain_with_the_clients_ttl() {
        let req = Request::put("user:1", &42).with_ttl_ms(9_000);
        let plan = policy().plan(&req).unwrap();
        match plan.actions() {
            [Action::Set(s)] => {
                assert_eq!(s.key, "cache:user:1");
                assert_eq!(s.value, *req.value().unwrap(), "stored as it came");
                assert_eq!(s.ttl_ms, Some(9_000));
            }
            other => panic!("unexpected plan {other:?}"),
        }
        assert_eq!(plan.response(), None);
    }

    #[test]
    fn get_reads_the_key_and_responds_with_it() {
        let plan = policy().plan(&Request::get("k")).unwrap();
        assert_eq!(plan.actions(), [Action::Get(Get::new("cache:k"))]);
        assert_eq!(plan.response(), plan.actions().first());
    }

    #[test]
    fn put_without_value_is_a_bad_request_and_settings_are_refused() {
        let err = policy()
            .plan(&Request::new("k", Operation::Put))
            .unwrap_err();
        assert_eq!(err, Error::bad_request("this operation needs a value"));
        let settings = std::collections::BTreeMap::from([("ttl_s", 5)]);
        let refused = FixedTtl::from_settings(Domain::named("cache"), &settings);
        assert!(matches!(refused, Err(Error::BadConfig(m)) if m.contains("`ttl_s`")));
    }
}
