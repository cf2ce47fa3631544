//! `stream-router`: events go to streams chosen from what they are.
//!
//! `POST /v1/events/{domain}` with an event object that has a `type`
//! (`[a-zA-Z0-9_-]`, lowercased) and optionally an `asset`: the event is added
//! to `{domain}:{type}` and, with `per_asset = true` (the default), also to
//! `{domain}:{type}:{asset}`, so a consumer can follow one kind of event or
//! one asset's. Each stream is capped at about `maxlen` entries (default
//! 10000, the seed's). Each top-level field of the event becomes a field of
//! the stream entry, as MessagePack (types kept).
//!
//! On a Redis Cluster an event's streams may live on different nodes (the
//! gateway writes one pipeline per slot); with `same_slot = true` the type
//! is the streams' hash tag, `{domain}:{{type}}` and
//! `{domain}:{{type}}:{asset}` (e.g. `arbitrage:{opportunity}:btc`), so
//! both live on one node and a publish may take an `Idempotency-Key`.

use sluice_sdk::prelude::*;

/// `[domains.NAME.settings]`, checked once in `configure`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// About how many entries each stream keeps (`XADD MAXLEN ~`), at least 1.
    pub maxlen: u64,
    /// Also add each event to its asset's stream.
    pub per_asset: bool,
    /// Name the streams with the type as hash tag, so that one event's
    /// streams share a Redis Cluster slot.
    pub same_slot: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            maxlen: 10_000,
            per_asset: true,
            same_slot: false,
        }
    }
}

/// The policy: its domain and its settings.
pub struct StreamRouter {
    domain: Domain,
    settings: Settings,
}

/// A stream name segment from an event field: a plain word, so a client
/// cannot reach another stream (`../x`) or make keys without bound.
fn segment(what: &str, v: &Value) -> Result<String, Error> {
    let s: String = v
        .decode()
        .map_err(|_| Error::bad_request(format!("`{what}` must be a string")))?;
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

impl Policy for StreamRouter {
    type Settings = Settings;

    fn configure(domain: Domain, settings: Settings) -> Result<Self, Error> {
        if settings.maxlen == 0 {
            return Err(Error::bad_config("maxlen must be at least 1"));
        }
        Ok(StreamRouter { domain, settings })
    }

    fn plan(&self, req: &Request) -> Result<Plan, Error> {
        if req.operation != Operation::Publish {
            return Err(Error::bad_request(
                "this domain takes events: POST /v1/events/{domain}",
            ));
        }
        let fields = req.value()?.fields()?;
        let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let kind = field("type").ok_or_else(|| Error::bad_request("an event needs a `type`"))?;
        let kind = segment("type", kind)?;
        let kind = match self.settings.same_slot {
            true => format!("{{{kind}}}"),
            false => kind,
        };
        let mut streams = vec![self.domain.key(&kind)];
        if let (true, Some(asset)) = (self.settings.per_asset, field("asset")) {
            streams.push(format!("{}:{}", streams[0], segment("asset", asset)?));
        }
        Ok(streams.into_iter().fold(Plan::new(), |plan, stream| {
            plan.then(StreamAdd::new(stream, fields.clone()).max_len(self.settings.maxlen))
        }))
    }
}

sluice_sdk::export_policy!(StreamRouter);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn publish(event: &BTreeMap<&str, &str>, settings: Settings) -> Result<Plan, Error> {
        StreamRouter::configure(Domain::named("arbitrage"), settings)?
            .plan(&Request::publish(event))
    }

    #[test]
    fn an_event_goes_to_its_type_stream_and_its_asset_stream_capped() {
        let event = BTreeMap::from([("type", "opportunity"), ("asset", "BTC"), ("spread", "0.4")]);
        let plan = publish(&event, Settings::default()).unwrap();
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
            [
                ("arbitrage:opportunity", Some(10_000), 3),
                ("arbitrage:opportunity:btc", Some(10_000), 3)
            ]
        );
        let one = publish(
            &event,
            Settings {
                maxlen: 50,
                per_asset: false,
                same_slot: false,
            },
        )
        .unwrap();
        assert!(matches!(one.actions(), [Action::StreamAdd(s)] if s.max_len == Some(50)));
        // For a cluster: the type is both streams' hash tag.
        let tagged = publish(
            &event,
            Settings {
                same_slot: true,
                ..Settings::default()
            },
        )
        .unwrap();
        let names: Vec<&str> = tagged
            .actions()
            .iter()
            .filter_map(|a| match a {
                Action::StreamAdd(s) => Some(s.stream.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            names,
            ["arbitrage:{opportunity}", "arbitrage:{opportunity}:btc"]
        );
    }

    #[test]
    fn events_without_a_clean_type_are_refused() {
        let no_type = BTreeMap::from([("asset", "BTC")]);
        assert!(matches!(
            publish(&no_type, Settings::default()),
            Err(Error::BadRequest(_))
        ));
        let escape = BTreeMap::from([("type", "../x")]);
        assert!(matches!(
            publish(&escape, Settings::default()),
            Err(Error::BadRequest(_))
        ));
        let router =
            StreamRouter::configure(Domain::named("arbitrage"), Settings::default()).unwrap();
        assert!(router.plan(&Request::get("k")).is_err());
    }

    #[test]
    fn settings_default_and_a_zero_maxlen_is_refused_at_load() {
        let domain = || Domain::named("arbitrage");
        let r = StreamRouter::from_settings(domain(), &BTreeMap::<String, u8>::new()).unwrap();
        assert_eq!((r.settings.maxlen, r.settings.per_asset), (10_000, true));
        let zero = BTreeMap::from([("maxlen", 0)]);
        assert_eq!(
            StreamRouter::from_settings(domain(), &zero).err(),
            Some(Error::bad_config("maxlen must be at least 1"))
        );
        let typo = BTreeMap::from([("max_len", 5)]);
        assert!(
            matches!(StreamRouter::from_settings(domain(), &typo), Err(Error::BadConfig(m)) if m.contains("`max_len`"))
        );
    }
}
