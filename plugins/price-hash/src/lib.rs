//! `price-hash`: price objects (`{asset, fiat, price, ...}`) as Redis hashes.
//!
//! `PUT /v1/cache/price/{asset}:{fiat}` stores each top-level field of the
//! object as a hash field of `price:{asset}:{fiat}` (values stay MessagePack,
//! so they keep their types). The old object is replaced, not merged: DEL and
//! HSET run as one MULTI/EXEC with the expiry (the seed's 5 s), so a reader
//! never sees half of one price and half of another. `GET` returns the object;
//! `?fields=price,ts` only those fields (HMGET), so a reader of one number
//! does not move the whole object.

use sluice_sdk::{Error, Operation, Plan, Policy, Request, msgpack};

pub struct PriceHash;

impl Policy for PriceHash {
    fn plan(req: Request) -> Result<Plan, Error> {
        let key = req.namespaced_key();
        Ok(match req.operation {
            Operation::Get => Plan::new()
                .hash_get(key, req.fields.clone())
                .respond_with_last(),
            Operation::Put => {
                let fields = msgpack::fields(req.value_bytes()?)?;
                if fields.is_empty() {
                    return Err(Error::bad_request(
                        "a price object needs at least one field",
                    ));
                }
                Plan::new()
                    .delete(key.clone())
                    .hash_set(key, fields, req.ttl_ms)
                    .atomic()
            }
            Operation::Delete => Plan::new().delete(key),
            Operation::Publish => return Err(Error::bad_request("prices are not events")),
        })
    }
}

sluice_sdk::export_policy!(PriceHash);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::Action;
    use std::collections::BTreeMap;

    fn put(value: &impl sluice_sdk::serde::Serialize) -> Result<Plan, Error> {
        PriceHash::plan(Request::put("price", "btc:usd", value))
    }

    #[test]
    fn put_replaces_the_hash_atomically_with_typed_fields() {
        let obj: BTreeMap<&str, f64> = [("price", 64000.5), ("ts", 1.7e12)].into_iter().collect();
        let plan = put(&obj).unwrap();
        assert!(plan.is_atomic(), "DEL + HSET must not be seen half-done");
        match plan.actions() {
            [Action::Delete(k), Action::HashSet(h)] => {
                assert_eq!(k, "price:btc:usd");
                assert_eq!(h.key, "price:btc:usd");
                let price = h.fields.iter().find(|f| f.name == "price").unwrap();
                assert_eq!(msgpack::decode::<f64>(&price.value).unwrap(), 64000.5);
            }
            other => panic!("unexpected plan {other:?}"),
        }
    }

    #[test]
    fn get_reads_all_fields_or_only_those_asked_for() {
        let plan = PriceHash::plan(Request::get("price", "btc:usd")).unwrap();
        assert!(matches!(plan.actions(), [Action::HashGet(h)] if h.fields.is_empty()));
        let mut req = Request::new("price", "btc:usd", Operation::Get);
        req.fields = vec!["price".into(), "ts".into()];
        let plan = PriceHash::plan(req).unwrap();
        assert!(matches!(plan.actions(), [Action::HashGet(h)] if h.fields == ["price", "ts"]));
        assert_eq!(plan.respond(), Some(0));
    }

    #[test]
    fn a_value_that_is_not_an_object_is_a_bad_request() {
        assert!(matches!(put(&42), Err(Error::BadRequest(_))));
        assert!(matches!(
            put(&BTreeMap::<String, u8>::new()),
            Err(Error::BadRequest(_))
        ));
    }
}
