//! Registered Lua scripts: `EVALSHA`.

use super::{Action, IntoAction, wit};
use crate::{Error, IntoValue, Value};

/// `EVALSHA` of a Lua script the operator registered under `name` (the host
/// refuses any other script).
#[derive(Debug, Clone, PartialEq)]
pub struct Script<V = Value> {
    /// The script's registered name.
    pub name: String,
    /// `KEYS`: each inside the domain's namespace.
    pub keys: Vec<String>,
    /// `ARGV` (MessagePack once in a plan).
    pub args: Vec<V>,
}

impl Script {
    /// Call the script registered as `name`, with no keys or arguments yet.
    pub fn new(name: impl Into<String>) -> Self {
        Script {
            name: name.into(),
            keys: Vec::new(),
            args: Vec::new(),
        }
    }
}

impl<V> Script<V> {
    /// With these `KEYS`.
    pub fn keys<S: Into<String>>(mut self, keys: impl IntoIterator<Item = S>) -> Self {
        self.keys = keys.into_iter().map(Into::into).collect();
        self
    }

    /// With these arguments (each a [`Value`] or a reference to anything serializable).
    pub fn args<A: IntoValue>(self, args: impl IntoIterator<Item = A>) -> Script<A> {
        Script {
            name: self.name,
            keys: self.keys,
            args: args.into_iter().collect(),
        }
    }
}

impl<V: IntoValue> IntoAction for Script<V> {
    fn into_action(self) -> Result<Action, Error> {
        let args = self
            .args
            .into_iter()
            .map(IntoValue::into_value)
            .collect::<Result<_, _>>()?;
        Ok(Action::Script(Script {
            name: self.name,
            keys: self.keys,
            args,
        }))
    }
}

impl Script {
    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::Script(wit::ScriptCall {
            name: self.name,
            keys: self.keys,
            args: self.args.into_iter().map(Value::into_bytes).collect(),
        })
    }
}
