//! The host checks every plan before a byte of it reaches Redis: a plugin is
//! trusted to decide, not to be correct.

use super::bindings::{Action, Plan};

/// Bounds on what one plan may ask for.
#[derive(Debug, Clone, Copy)]
pub struct PlanLimits {
    /// Actions in one plan.
    pub max_actions: usize,
    /// Bytes of one Redis key (namespace included).
    pub max_key_bytes: usize,
    /// Bytes of one value, field or member.
    pub max_value_bytes: usize,
    /// Fields, members or arguments in one action.
    pub max_items: usize,
}

impl Default for PlanLimits {
    fn default() -> Self {
        PlanLimits {
            max_actions: 64,
            max_key_bytes: 1024,
            max_value_bytes: 4 << 20,
            max_items: 1024,
        }
    }
}

/// Check a plan: every key under one of `namespaces` (`{domain}:` and any
/// declared prefixes), scripts only by a name in `scripts`, sizes within
/// `limits`. The error says what is wrong.
pub fn validate(
    plan: &Plan,
    namespaces: &[String],
    scripts: &dyn Fn(&str) -> bool,
    limits: &PlanLimits,
) -> Result<(), String> {
    if plan.actions.len() > limits.max_actions {
        return Err(format!(
            "{} actions, at most {} allowed",
            plan.actions.len(),
            limits.max_actions
        ));
    }
    if let Some(i) = plan.respond
        && i as usize >= plan.actions.len()
    {
        return Err(format!(
            "responds with action {i} of {}",
            plan.actions.len()
        ));
    }
    let key = |k: &str| -> Result<(), String> {
        let inside = namespaces
            .iter()
            .any(|ns| k.len() > ns.len() && k.starts_with(ns.as_str()));
        if !inside {
            return Err(format!(
                "key {k:?} is outside the namespace ({})",
                namespaces.join(", ")
            ));
        }
        if k.len() > limits.max_key_bytes {
            return Err(format!(
                "key of {} bytes, at most {} allowed",
                k.len(),
                limits.max_key_bytes
            ));
        }
        Ok(())
    };
    let items = |n: usize| -> Result<(), String> {
        match n {
            0 => Err("an action with nothing to write".into()),
            n if n > limits.max_items => Err(format!(
                "{n} items in one action, at most {} allowed",
                limits.max_items
            )),
            _ => Ok(()),
        }
    };
    let value = |v: &[u8]| -> Result<(), String> {
        if v.len() > limits.max_value_bytes {
            return Err(format!(
                "value of {} bytes, at most {} allowed",
                v.len(),
                limits.max_value_bytes
            ));
        }
        Ok(())
    };
    for action in &plan.actions {
        match action {
            Action::Get(k) | Action::Delete(k) => key(k)?,
            Action::Set(s) => {
                key(&s.key)?;
                value(&s.value)?;
            }
            Action::Expire(e) => key(&e.key)?,
            Action::HashGet(h) => {
                key(&h.key)?;
                if h.fields.len() > limits.max_items {
                    items(h.fields.len())?;
                }
            }
            Action::HashSet(h) => {
                key(&h.key)?;
                items(h.fields.len())?;
                h.fields.iter().try_for_each(|f| value(&f.value))?;
            }
            Action::StreamAdd(s) => {
                key(&s.stream)?;
                items(s.fields.len())?;
                s.fields.iter().try_for_each(|f| value(&f.value))?;
            }
            Action::ZsetAdd(z) => {
                key(&z.key)?;
                items(z.members.len())?;
                if z.members.iter().any(|m| m.score.is_nan()) {
                    return Err("a sorted-set score is NaN".into());
                }
            }
            Action::ZsetRange(z) => key(&z.key)?,
            Action::SetAdd(s) => {
                key(&s.key)?;
                items(s.members.len())?;
            }
            Action::SetContains(s) => key(&s.key)?,
            Action::Script(s) => {
                if !scripts(&s.name) {
                    return Err(format!("no registered script named {:?}", s.name));
                }
                s.keys.iter().try_for_each(|k| key(k))?;
                if s.args.len() > limits.max_items {
                    items(s.args.len())?;
                }
                s.args.iter().try_for_each(|a| value(a))?;
            }
        }
    }
    Ok(())
}
