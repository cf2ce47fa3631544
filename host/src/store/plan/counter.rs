//! Counters: add (`INCRBY`/`INCRBYFLOAT`) within an optional cap, and give
//! a counter the add creates its TTL — one command, so it runs as the
//! host's own script (`counter.lua`, [`scripts::COUNTER_ADD`]). It goes the
//! way every registered script goes: `EVALSHA`, loaded on every new
//! connection, `NOSCRIPT` recovered in a plain pipeline, loaded first
//! inside a transaction ([`Kind::script`]). And read one (`GET`) as the
//! number its decimal text spells, which `get` cannot: it passes stored
//! bytes through as MessagePack, so `"5"` would read as 53.

use super::{Ctx, Kind, PlanLimits, TtlBounds, added, amount, finite};
use crate::plugin::bindings::{CounterAdd, CounterGet, Number};
use crate::store::scripts::{self, Script, Scripts};
use crate::store::{StoreError, reply};
use crate::telemetry::METRICS;
use redis::{Cmd, Value};
use std::sync::Arc;

impl Kind for CounterAdd {
    fn ttl(&self, bounds: &TtlBounds, plan_ttl: Option<u64>) -> Option<u64> {
        Some(bounds.pick(self.ttl_ms, plan_ttl))
    }
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        true
    }
    /// Finite numbers only; a cap of the amount's kind (which kind the
    /// counter holds is Redis's to judge when it adds).
    fn check(&self, _: &PlanLimits) -> Result<(), String> {
        finite("an amount", self.by)?;
        let Some(cap) = self.cap else {
            return Ok(());
        };
        finite("a cap", cap)?;
        match (self.by, cap) {
            (Number::Int(_), Number::Int(_)) | (Number::Float(_), Number::Float(_)) => Ok(()),
            _ => Err("a counter's cap must be of its amount's kind (int or float)".into()),
        }
    }
    /// `EVALSHA` of the counter script: the command, the amount, the cap
    /// (empty for none) and the TTL, held to the domain's bounds.
    fn commands(&self, ctx: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let script = self.script(ctx.scripts).ok_or_else(|| {
            StoreError::Internal(format!("no script {:?} registered", scripts::COUNTER_ADD))
        })?;
        METRICS
            .script_calls
            .with_label_values(&[&script.name])
            .inc();
        let command = match self.by {
            Number::Int(_) => "INCRBY",
            Number::Float(_) => "INCRBYFLOAT",
        };
        let args = [
            command.to_owned(),
            amount(self.by),
            self.cap.map(amount).unwrap_or_default(),
            ctx.ttl(self.ttl_ms).to_string(),
        ];
        Ok(vec![scripts::evalsha(script, &[&self.key], &args)])
    }
    fn script<'s>(&self, scripts: &'s Scripts) -> Option<&'s Arc<Script>> {
        scripts.get(scripts::COUNTER_ADD)
    }
    /// `{"value": …, "added": …}`: the counter after the add (unchanged
    /// when refused; 0 when there is none), a number of the amount's kind,
    /// and whether the add was applied.
    fn shape(&self, reply: Value) -> Option<Vec<u8>> {
        let Value::Array(pair) = reply else {
            return Some(reply::msgpack(reply));
        };
        let mut pair = pair.into_iter();
        let value = added(pair.next().unwrap_or(Value::Nil), self.by);
        let applied = matches!(pair.next(), Some(Value::Int(1)));
        Some(reply::msgpack(Value::Map(vec![
            (Value::SimpleString("value".into()), value),
            (Value::SimpleString("added".into()), Value::Boolean(applied)),
        ])))
    }
}

impl Kind for CounterGet {
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        false
    }
    /// A plain `GET`: reading creates nothing and starts no window, where
    /// an add of 0 would do both.
    fn commands(&self, _: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(&self.key);
        Ok(vec![cmd])
    }
    /// The number the text spells: an int when it is a whole number that
    /// fits one (what `INCRBY` stores, and `INCRBYFLOAT` when its sum is
    /// whole), else a finite float (a point, an exponent, or too big for an
    /// int). Text that is no number (a key another client wrote) is
    /// answered as it is, a string (binary when not UTF-8), rather than
    /// failing the request: the policy or client sees what is there, and a
    /// policy decoding a number gets an error naming it. No key: a miss.
    fn shape(&self, reply: Value) -> Option<Vec<u8>> {
        match reply {
            Value::Nil => None,
            Value::BulkString(text) => Some(reply::msgpack(
                number(&text).unwrap_or(Value::BulkString(text)),
            )),
            other => Some(reply::msgpack(other)),
        }
    }
    /// A plain read of one whole key, as `get` is: any change to it (an
    /// add, an expiry, another client's write) is heard through tracking,
    /// and this gateway's adds are writes that drop the copy.
    fn cacheable(&self) -> bool {
        true
    }
}

/// A counter's decimal text as a MessagePack-ready number: `i64` first,
/// else a finite `f64`; `None` when it spells neither (Rust's `inf` and
/// `NaN` included, which Redis never stores in a counter).
fn number(text: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(text).ok()?;
    if let Ok(n) = text.parse::<i64>() {
        return Some(Value::Int(n));
    }
    text.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Value::Double)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{check_one, describe_one, describe_plan, json, plan};
    use super::super::{cacheable_key, shape, written_keys};
    use super::*;
    use crate::plugin::bindings::Action;
    use serde_json::json as j;

    fn add(by: Number, cap: Option<Number>, ttl_ms: Option<u64>) -> Action {
        Action::CounterAdd(CounterAdd {
            key: "cache:n".into(),
            by,
            cap,
            ttl_ms,
        })
    }

    fn sha() -> String {
        let scripts = Scripts::load(None).unwrap();
        scripts.get(scripts::COUNTER_ADD).unwrap().sha.clone()
    }

    #[test]
    fn an_add_is_one_evalsha_of_the_hosts_counter_script() {
        let sha = sha();
        let p = plan(vec![add(Number::Int(5), Some(Number::Int(10)), None)]);
        assert_eq!(
            describe_plan(&p),
            [format!("EVALSHA {sha} 1 cache:n INCRBY 5 10 60000")]
        );
        // No cap: an empty argument; a float amount: INCRBYFLOAT; the TTL
        // held to the domain's bounds.
        let p = plan(vec![add(Number::Float(-0.5), None, Some(u64::MAX))]);
        assert_eq!(
            describe_plan(&p),
            [format!(
                r#"EVALSHA {sha} 1 cache:n INCRBYFLOAT -0.5 "" 120000"#
            )]
        );
        assert_eq!(written_keys(&p).collect::<Vec<_>>(), ["cache:n"]);
    }

    #[test]
    fn inside_a_transaction_the_counter_script_is_loaded_first() {
        let mut p = plan(vec![
            add(Number::Int(1), None, None),
            add(Number::Int(2), None, None),
        ]);
        p.atomic = true;
        let lines = describe_plan(&p);
        assert_eq!(lines[0], "MULTI");
        assert!(lines[1].starts_with("SCRIPT LOAD "), "{lines:?}");
        assert!(lines[2].starts_with("EVALSHA "), "{lines:?}");
        assert!(lines[3].starts_with("EVALSHA "), "{lines:?}");
        assert_eq!(lines[4], "EXEC", "loaded once for both adds");
    }

    #[test]
    fn amounts_and_caps_are_finite_and_of_one_kind() {
        assert_eq!(check_one(add(Number::Int(-3), None, None)), Ok(()));
        assert_eq!(
            check_one(add(Number::Float(0.1), Some(Number::Float(1.0)), None)),
            Ok(())
        );
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let e = check_one(add(Number::Float(bad), None, None)).unwrap_err();
            assert!(e.starts_with("an amount"), "{e}");
            let capped = add(Number::Float(1.0), Some(Number::Float(bad)), None);
            let e = check_one(capped).unwrap_err();
            assert!(e.starts_with("a cap"), "{e}");
        }
        for (by, cap) in [
            (Number::Int(1), Number::Float(10.0)),
            (Number::Float(1.0), Number::Int(10)),
        ] {
            assert_eq!(
                check_one(add(by, Some(cap), None)).unwrap_err(),
                "a counter's cap must be of its amount's kind (int or float)"
            );
        }
    }

    #[test]
    fn plans_cannot_call_the_counter_script_by_name() {
        let call = Action::Script(crate::plugin::bindings::ScriptCall {
            name: scripts::COUNTER_ADD.into(),
            keys: vec!["cache:n".into()],
            args: vec![b"INCRBY".to_vec(), b"1".to_vec(), vec![], b"0".to_vec()],
        });
        assert_eq!(
            check_one(call).unwrap_err(),
            format!("no registered script named {:?}", scripts::COUNTER_ADD)
        );
    }

    #[test]
    fn the_answer_is_the_value_as_the_amounts_kind_and_whether_it_was_added() {
        let int = add(Number::Int(1), Some(Number::Int(10)), None);
        let reply = |v: Value, added: i64| Value::Array(vec![v, Value::Int(added)]);
        assert_eq!(
            json(shape(&int, reply(Value::Int(6), 1))),
            j!({"value": 6, "added": true})
        );
        // Refused: the old value as stored, a string to read as a number.
        assert_eq!(
            json(shape(&int, reply(Value::BulkString(b"10".to_vec()), 0))),
            j!({"value": 10, "added": false})
        );
        // Refused with no counter there: 0.
        assert_eq!(
            json(shape(&int, reply(Value::Int(0), 0))),
            j!({"value": 0, "added": false})
        );
        let float = add(Number::Float(0.5), None, None);
        let body = shape(&float, reply(Value::BulkString(b"2.5".to_vec()), 1)).unwrap();
        assert_eq!(json(Some(body.clone())), j!({"value": 2.5, "added": true}));
        assert!(
            body.windows(9)
                .any(|w| w[0] == 0xcb && w[1..] == 2.5f64.to_be_bytes()),
            "the value is a float 64, not a string"
        );
        assert_eq!(
            json(shape(&float, reply(Value::Int(0), 0))),
            j!({"value": 0.0, "added": false})
        );
    }

    fn read(key: &str) -> Action {
        Action::CounterGet(CounterGet { key: key.into() })
    }

    #[test]
    fn a_read_is_a_plain_get_that_writes_nothing_and_may_be_kept() {
        assert_eq!(describe_one(read("cache:n")), ["GET cache:n"]);
        assert_eq!(check_one(read("cache:n")), Ok(()));
        assert!(check_one(read("other:n")).is_err(), "inside the namespace");
        let mut p = plan(vec![read("cache:n")]);
        assert_eq!(written_keys(&p).count(), 0);
        p.respond = Some(0);
        assert_eq!(cacheable_key(&p), Some("cache:n"), "a whole key, as get");
    }

    #[test]
    fn a_read_answers_the_number_the_text_spells() {
        let get = read("cache:n");
        let text = |t: &str| shape(&get, Value::BulkString(t.as_bytes().to_vec()));
        // "5" is the byte 0x35, MessagePack's 53 to `get`: here it is 5.
        assert_eq!(text("5"), Some(vec![0x05]));
        assert_eq!(json(text("12")), j!(12));
        assert_eq!(json(text("-3")), j!(-3));
        assert_eq!(json(text(&i64::MIN.to_string())), j!(i64::MIN));
        // A point or an exponent: a float 64, never a string.
        let body = text("2.5").unwrap();
        assert_eq!(body[0], 0xcb, "{body:x?}");
        assert_eq!(json(Some(body)), j!(2.5));
        assert_eq!(json(text("1e3")), j!(1000.0));
        // INCRBYFLOAT writes a whole sum without a point: it reads as an int;
        // a whole one past i64 as a float.
        assert_eq!(json(text("3")), j!(3));
        assert_eq!(
            json(text("12345678901234567890")),
            j!(1.2345678901234567e19)
        );
    }

    #[test]
    fn a_read_of_no_counter_is_a_miss_and_of_other_text_that_text() {
        let get = read("cache:n");
        // RESP2's nil bulk string and RESP3's null both read as Nil.
        assert_eq!(shape(&get, Value::Nil), None);
        let bytes = |b: &[u8]| shape(&get, Value::BulkString(b.to_vec()));
        assert_eq!(json(bytes(b"ten")), j!("ten"));
        assert_eq!(
            json(bytes(b"inf")),
            j!("inf"),
            "Redis's counters are finite"
        );
        assert_eq!(json(bytes(b"")), j!(""));
        // Not UTF-8: binary, as `get` answers foreign bytes.
        assert_eq!(bytes(b"\xff1"), Some(vec![0xc4, 2, 0xff, b'1']));
        // Other reply forms pass as the closest MessagePack value.
        assert_eq!(json(shape(&get, Value::Int(7))), j!(7));
        assert_eq!(json(shape(&get, Value::Double(0.5))), j!(0.5));
    }
}
