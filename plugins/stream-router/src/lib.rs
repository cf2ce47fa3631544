//! `stream-router`: events go to streams chosen from what they are.
//!
//! `POST /v1/events/{domain}` with an event object that has a `type`
//! (`[a-z0-9_-]`) and optionally an `asset`: the event is added to
//! `{domain}:{type}` and, with `per_asset = true` (the default), also to
//! `{domain}:{type}:{asset}`, so a consumer can follow one kind of event or
//! one asset's. Each stream is capped at about `maxlen` entries (default
//! 10000, the seed's). Each top-level field of the event becomes a field of
//! the stream entry, as MessagePack (types kept).

use sluice_sdk::{Config, Error, Operation, Plan, Policy, Request, msgpack};

pub struct StreamRouter;

fn segment(what: &str, v: &[u8]) -> Result<String, Error> {
    let s: String =
        msgpack::decode(v).map_err(|_| Error::bad_request(format!("`{what}` must be a string")))?;
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(Error::bad_request(format!(
            "`{what}` must be 1 to 64 of a-z, A-Z, 0-9, '_' and '-'"
        )));
    }
    Ok(s.to_ascii_lowercase())
}

fn settings(config: &Config) -> Result<(u64, bool), Error> {
    let maxlen = config.get::<u64>("maxlen")?.unwrap_or(10_000);
    if maxlen == 0 {
        return Err(Error::bad_config("maxlen must be at least 1"));
    }
    Ok((maxlen, config.get::<bool>("per_asset")?.unwrap_or(true)))
}

impl Policy for StreamRouter {
    fn plan(req: Request) -> Result<Plan, Error> {
        if req.operation != Operation::Publish {
            return Err(Error::bad_request(
                "this domain takes events: POST /v1/events/{domain}",
            ));
        }
        let (maxlen, per_asset) = settings(&req.config)?;
        let fields = msgpack::fields(req.value_bytes()?)?;
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_slice())
        };
        let kind = segment(
            "type",
            field("type").ok_or_else(|| Error::bad_request("an event needs a `type`"))?,
        )?;
        let mut streams = vec![format!("{}:{kind}", req.domain)];
        if let (true, Some(asset)) = (per_asset, field("asset")) {
            streams.push(format!(
                "{}:{kind}:{}",
                req.domain,
                segment("asset", asset)?
            ));
        }
        Ok(streams.into_iter().fold(Plan::new(), |plan, stream| {
            plan.stream_add(stream, fields.clone(), Some(maxlen))
        }))
    }

    fn check_config(_domain: &str, config: &Config) -> Result<(), Error> {
        settings(config).map(drop)
    }
}

sluice_sdk::export_policy!(StreamRouter);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::Action;
    use std::collections::BTreeMap;

    fn publish(event: &BTreeMap<&str, &str>, config: Config) -> Result<Plan, Error> {
        StreamRouter::plan(Request::publish("arbitrage", event).with_config(config))
    }

    #[test]
    fn an_event_goes_to_its_type_stream_and_its_asset_stream_capped() {
        let event: BTreeMap<_, _> = [("type", "opportunity"), ("asset", "BTC"), ("spread", "0.4")]
            .into_iter()
            .collect();
        let plan = publish(&event, Config::default()).unwrap();
        let streams: Vec<(&str, Option<u64>, usize)> = plan
            .actions()
            .iter()
            .map(|a| match a {
                Action::StreamAdd(s) => (s.stream.as_str(), s.max_len, s.fields.len()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            streams,
            vec![
                ("arbitrage:opportunity", Some(10_000), 3),
                ("arbitrage:opportunity:btc", Some(10_000), 3)
            ]
        );
        let plan = publish(
            &event,
            Config::default()
                .with("per_asset", false)
                .with("maxlen", 50),
        )
        .unwrap();
        assert!(matches!(plan.actions(), [Action::StreamAdd(s)] if s.max_len == Some(50)));
    }

    #[test]
    fn events_without_a_clean_type_are_refused() {
        let no_type: BTreeMap<_, _> = [("asset", "BTC")].into_iter().collect();
        assert!(matches!(
            publish(&no_type, Config::default()),
            Err(Error::BadRequest(_))
        ));
        let bad: BTreeMap<_, _> = [("type", "../x")].into_iter().collect();
        assert!(matches!(
            publish(&bad, Config::default()),
            Err(Error::BadRequest(_))
        ));
        let mut req = Request::new("arbitrage", "k", Operation::Get);
        req.value = None;
        assert!(StreamRouter::plan(req).is_err());
    }
}
