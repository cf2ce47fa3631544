//! `price-hash`: price objects (`{asset, fiat, price, ...}`) as Redis hashes.
//!
//! `PUT /v1/cache/price/{asset}:{fiat}` stores each top-level field of the
//! object as a hash field of `price:{asset}:{fiat}` (values stay MessagePack,
//! so they keep their types). The old object is replaced, not merged: DEL and
//! HSET run as one MULTI/EXEC with the expiry (the seed's 5 s), so a reader
//! never sees half of one price and half of another. `GET` returns the object;
//! `?fields=price,ts` only those fields (HMGET), so a reader of one number
//! does not move the whole object. No settings.

use sluice_sdk::prelude::*;

/// The policy: it needs nothing but its domain.
pub struct PriceHash {
    domain: Domain,
}

impl Policy for PriceHash {
    type Settings = NoSettings;

    fn configure(domain: Domain, _: NoSettings) -> Result<Self, Error> {
        Ok(PriceHash { domain })
    }

    fn plan(&self, req: &Request) -> Result<Plan, Error> {
        let key = self.domain.key(&req.key);
        Ok(match req.operation {
            Operation::Get => Plan::new().respond_with(HashGet::new(key).fields(&req.fields)),
            Operation::Put => {
                let fields = req.value()?.fields()?;
                if fields.is_empty() {
                    return Err(Error::bad_request(
                        "a price object needs at least one field",
                    ));
                }
                Plan::new()
                    .then(Delete::new(&key))
                    .then(HashSet::new(key, fields).ttl_ms(req.ttl_ms))
                    .atomic()
            }
            Operation::Delete => Plan::new().then(Delete::new(key)),
            Operation::Publish => return Err(Error::bad_request("prices are not events")),
        })
    }
}

sluice_sdk::export_policy!(PriceHash);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn plan(req: Request) -> Result<Plan, Error> {
        PriceHash::configure(Domain::named("price"), NoSettings {})?.plan(&req)
    }

    #[test]
    fn put_replaces_the_hash_atomically_with_typed_fields() {
        let obj = BTreeMap::from([("price", 64000.5), ("ts", 1.7e12)]);
        let plan = plan(Request::put("btc:usd", &obj).with_ttl_ms(5_000)).unwrap();
        assert!(plan.is_atomic(), "DEL + HSET must not be seen half-done");
        match plan.actions() {
            [Action::Delete(d), Action::HashSet(h)] => {
                assert_eq!(d.key, "price:btc:usd");
                assert_eq!(h.key, "price:btc:usd");
                assert_eq!(h.ttl_ms, Some(5_000));
                let (_, price) = h.fields.iter().find(|(name, _)| name == "price").unwrap();
                assert_eq!(price.decode::<f64>().unwrap(), 64000.5);
            }
            other => panic!("unexpected plan {other:?}"),
        }
        assert_eq!(plan.response(), None);
    }

    #[test]
    fn get_reads_all_fields_or_only_those_asked_for() {
        let all = plan(Request::get("btc:usd")).unwrap();
        assert!(matches!(all.response(), Some(Action::HashGet(h)) if h.fields.is_empty()));
        let some = plan(Request::get("btc:usd").with_fields(["price", "ts"])).unwrap();
        assert!(matches!(some.response(), Some(Action::HashGet(h)) if h.fields == ["price", "ts"]));
    }

    #[test]
    fn a_value_that_is_not_an_object_is_a_bad_request_in_plain_words() {
        assert_eq!(
            plan(Request::put("btc:usd", &42)).unwrap_err(),
            Error::bad_request("the value must be a map (an object) for this domain, not 42")
        );
        let empty = plan(Request::put("btc:usd", &BTreeMap::<String, u8>::new()));
        assert!(matches!(empty, Err(Error::BadRequest(_))));
    }
}
