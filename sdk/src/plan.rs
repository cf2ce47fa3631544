//! The plan a policy answers with: Redis actions plus hints.

use crate::bindings::sluice::policy::types as wit;
use crate::{Action, Error, IntoAction};

/// What the gateway should do with a request: actions it runs in order as one
/// pipeline (or MULTI/EXEC), which one's reply is the response, and hints.
///
/// A plan made with [`Plan::new`] runs and answers. One made with
/// [`Plan::read`] only reads: the gateway runs it, then asks the policy's
/// [`after_read`](crate::Policy::after_read) for the plan that writes, with
/// what it read.
///
/// ```
/// use sluice_sdk::{Delete, HashSet, Plan, Value, ZsetRange};
/// // A read: the action added with `respond_with` is the response.
/// let read = Plan::new().respond_with(ZsetRange::rank("board:w", 0, 9).rev());
/// // Writes: no response body; replace a hash as one transaction.
/// let fields = [("price", Value::encode(&64000.5)?)];
/// let write = Plan::new().then(Delete::new("price:btc")).then(HashSet::new("price:btc", fields)).atomic();
/// // Or keep a handle to choose the response later.
/// let mut plan = Plan::new();
/// let top = plan.add(ZsetRange::rank("board:w", 0, 9).rev());
/// plan.add(Delete::new("board:old"));
/// let plan = plan.respond(top);
/// assert_eq!(plan.response(), plan.actions().first());
/// # Ok::<(), sluice_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    actions: Vec<Action>,
    respond: Option<Step>,
    atomic: bool,
    ttl_ms: Option<u64>,
    cache: Option<CacheHint>,
    /// Made by [`Plan::read`]: reads first, then `after_read` plans the writes.
    read: bool,
    /// The first action that could not be built; the plan fails with it when exported.
    error: Option<Error>,
}

/// A handle to one action of a [`Plan`], returned by [`Plan::add`], to make
/// its reply the response with [`Plan::respond`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step(u32);

/// Whether the gateway may keep an in-process copy of what the plan read, and
/// how stale a copy may be served while Redis cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheHint {
    /// Keep a copy in the gateway's near cache.
    pub keep: bool,
    /// How stale a copy may be served when Redis cannot answer, ms.
    pub max_stale_ms: u64,
}

impl Plan {
    /// An empty plan: nothing to do, no response body.
    pub fn new() -> Self {
        Plan::default()
    }

    /// An empty plan that only reads, the first of two rounds: the gateway
    /// runs its reads, then calls [`Policy::after_read`](crate::Policy::after_read)
    /// with their replies for the plan that writes, and runs that one under
    /// `WATCH` of the keys read, as one transaction (both rounds run again
    /// when another writer changed one of them in between). Reads only:
    /// [`Action::is_read`] says which actions are; a plan with any other
    /// fails when exported. The response is the second plan's, or, when
    /// that one has none, this one's.
    ///
    /// ```
    /// use sluice_sdk::{HashGet, Plan, SetAdd};
    /// let read = Plan::read().then(HashGet::new("d:obj:1").fields(["owner"]));
    /// assert!(read.is_read() && read.error().is_none());
    /// ```
    pub fn read() -> Self {
        Plan {
            read: true,
            ..Plan::default()
        }
    }

    /// Add an action and get its handle, e.g. to [`respond`](Self::respond) with it.
    pub fn add(&mut self, action: impl IntoAction) -> Step {
        match action.into_action() {
            Ok(a) => {
                self.actions.push(a);
                Step(self.actions.len() as u32 - 1)
            }
            Err(e) => {
                self.error.get_or_insert(e);
                Step(u32::MAX) // names no action; the plan fails with `e` anyway
            }
        }
    }

    /// Add an action whose reply is not the response (a write, a side effect).
    pub fn then(mut self, action: impl IntoAction) -> Self {
        self.add(action);
        self
    }

    /// Add an action and make its reply the response body.
    pub fn respond_with(mut self, action: impl IntoAction) -> Self {
        let step = self.add(action);
        self.respond(step)
    }

    /// Make the reply of this action the response body (a string read: the
    /// value; a hash read: an object; a range: a list of `{member, score}`; a
    /// membership test: a boolean).
    pub fn respond(mut self, step: Step) -> Self {
        self.respond = Some(step);
        self
    }

    /// Run the actions as MULTI/EXEC, so no one sees them half done.
    pub fn atomic(mut self) -> Self {
        self.atomic = true;
        self
    }

    /// The TTL of this plan's writes that name none (else the domain's `ttl_s`).
    pub fn ttl_ms(mut self, ttl_ms: u64) -> Self {
        self.ttl_ms = Some(ttl_ms);
        self
    }

    /// Whether the gateway may keep a copy of what this plan read (else the
    /// domain's settings decide).
    pub fn cache(mut self, hint: CacheHint) -> Self {
        self.cache = Some(hint);
        self
    }

    /// The actions, in the order they run.
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// The action a step names.
    pub fn action(&self, step: Step) -> Option<&Action> {
        self.actions.get(step.0 as usize)
    }

    /// The action whose reply is the response body; `None`: no body.
    pub fn response(&self) -> Option<&Action> {
        self.respond.and_then(|s| self.action(s))
    }

    /// Whether the plan runs as MULTI/EXEC.
    pub fn is_atomic(&self) -> bool {
        self.atomic
    }

    /// Whether the plan is the read round of a read-then-write ([`Plan::read`]).
    pub fn is_read(&self) -> bool {
        self.read
    }

    /// The plan's TTL for writes that name none.
    pub fn default_ttl_ms(&self) -> Option<u64> {
        self.ttl_ms
    }

    /// The plan's cache hint.
    pub fn cache_hint(&self) -> Option<CacheHint> {
        self.cache
    }

    /// Why an action could not be added (a value that did not encode, a
    /// contradictory option): exporting the plan fails with this error.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// The contract's answer to a request: a plan to run, or reads to run
    /// first; or the first error met building it. A read plan that writes
    /// fails here, naming the action, rather than at the gateway.
    pub(crate) fn into_decision(self) -> Result<wit::Decision, Error> {
        if !self.read {
            return self.into_wit().map(wit::Decision::Run);
        }
        if let Some((i, a)) = self.actions.iter().enumerate().find(|(_, a)| !a.is_read())
            && self.error.is_none()
        {
            return Err(Error::internal(format!(
                "a read plan (Plan::read) may only read, but action {i} ({} {:?}) writes; the \
                 writes go in the plan after_read returns. Reads: {}",
                a.name(),
                a.key(),
                Action::READS.join(", ")
            )));
        }
        self.into_wit().map(wit::Decision::Read)
    }

    /// The contract's form of the plan, or the first error met building it.
    pub(crate) fn into_wit(self) -> Result<wit::Plan, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if let Some(Step(i)) = self.respond.filter(|&s| self.action(s).is_none()) {
            return Err(Error::internal(format!(
                "the plan responds with step {i}, but it has {} actions (a step of another plan?)",
                self.actions.len()
            )));
        }
        Ok(wit::Plan {
            actions: self.actions.into_iter().map(Action::into_wit).collect(),
            atomic: self.atomic,
            respond: self.respond.map(|Step(i)| i),
            ttl_ms: self.ttl_ms,
            cache: self.cache.map(|c| wit::CacheHint {
                keep: c.keep,
                max_stale_ms: c.max_stale_ms,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Get, Script, Set, Value, ZsetAdd, ZsetCondition, ZsetRange, ZsetTrim};

    #[test]
    fn the_response_is_the_action_its_handle_names_whatever_the_order() {
        let mut plan = Plan::new();
        let read = plan.add(Get::new("d:a"));
        plan.add(Get::new("d:b"));
        let plan = plan.respond(read);
        assert_eq!(plan.response(), Some(&Action::Get(Get::new("d:a"))));
        assert_eq!(plan.into_wit().unwrap().respond, Some(0));

        let plan = Plan::new()
            .then(Get::new("d:a"))
            .respond_with(Get::new("d:b"));
        assert_eq!(plan.response().map(Action::key), Some("d:b"));
        assert_eq!(Plan::new().then(Get::new("d:a")).response(), None);
    }

    #[test]
    fn typed_values_are_encoded_and_values_pass_through() {
        let v = Value::encode(&"hello").unwrap();
        let plan = Plan::new()
            .then(Set::new("d:a", &42u8).ttl_ms(5_000))
            .then(Set::new("d:b", &v))
            .then(Script::new("bump").keys(["d:a"]).args([&1u8, &2u8]));
        match plan.actions() {
            [Action::Set(a), Action::Set(b), Action::Script(s)] => {
                assert_eq!(a.value.decode::<u8>().unwrap(), 42);
                assert_eq!(a.ttl_ms, Some(5_000));
                assert_eq!(b.value, v);
                assert_eq!(b.ttl_ms, None);
                assert_eq!(
                    (s.keys.as_slice(), s.args[1].decode::<u8>().unwrap()),
                    (&["d:a".to_owned()][..], 2)
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_action_that_cannot_be_built_fails_the_plan_when_exported() {
        struct Unencodable;
        impl serde::Serialize for Unencodable {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        let plan = Plan::new().respond_with(Set::new("d:a", &Unencodable));
        assert!(matches!(plan.error(), Some(Error::Internal(m)) if m.contains("encoded")));
        assert!(plan.clone().into_wit().is_err());

        let limited_rank = Plan::new().respond_with(ZsetRange::rank("d:z", 0, 9).limit(3));
        assert!(
            matches!(limited_rank.into_wit(), Err(Error::Internal(m)) if m.contains("score ranges"))
        );
        let upside_down = Plan::new().respond_with(ZsetRange::score("d:z", 10.0, 1.0).rev());
        assert!(upside_down.into_wit().is_err());
        let foreign = Plan::new().respond(Plan::new().add(Get::new("d:a")));
        assert!(foreign.into_wit().is_err());
    }

    #[test]
    fn a_read_plan_is_a_read_decision_and_may_not_write() {
        let plan = Plan::new().respond_with(Get::new("d:a"));
        assert!(!plan.is_read());
        assert!(matches!(plan.into_decision(), Ok(wit::Decision::Run(_))));

        let read = Plan::read()
            .then(Get::new("d:a"))
            .respond_with(ZsetRange::rank("d:z", 0, 9));
        assert!(read.is_read());
        assert!(read.actions().iter().all(Action::is_read));
        assert!(matches!(read.into_decision(), Ok(wit::Decision::Read(p)) if p.respond == Some(1)));

        let writes = Plan::read()
            .then(Get::new("d:a"))
            .then(Script::new("bump").keys(["d:a"]));
        assert_eq!(
            writes.into_decision().unwrap_err(),
            Error::internal(
                "a read plan (Plan::read) may only read, but action 1 (script \"d:a\") writes; \
                 the writes go in the plan after_read returns. Reads: get, hash-get, zset-range, \
                 zset-score, zset-count, set-contains, set-members, set-count, list-range, key-ttl, \
                 counter-get"
            )
        );
        let broken = Plan::read().then(ZsetRange::rank("d:z", 0, 9).limit(3));
        assert!(
            matches!(broken.into_decision(), Err(Error::Internal(m)) if m.contains("score ranges"))
        );
    }

    #[test]
    fn the_reads_of_contract_0_3_are_reads_and_its_writes_are_not() {
        use crate::*;
        let reads = Plan::read()
            .then(Get::new("d:a"))
            .then(HashGet::new("d:h"))
            .then(ZsetRange::rank("d:z", 0, 9))
            .then(ZsetScore::new("d:z", "m"))
            .then(ZsetCount::new("d:z"))
            .then(SetContains::new("d:s", "m"))
            .then(SetMembers::new("d:s", 10))
            .then(SetCount::new("d:s"))
            .then(ListRange::first("d:l", 10))
            .then(KeyTtl::new("d:a"))
            .then(CounterGet::new("d:c"));
        let names: Vec<&str> = reads.actions().iter().map(Action::name).collect();
        assert_eq!(names, Action::READS);
        assert!(
            matches!(reads.into_decision(), Ok(wit::Decision::Read(p)) if p.actions.len() == 11)
        );
        let v = || Value::encode(&1).unwrap();
        let writes: Vec<Action> = [
            Set::new("d:a", v()).into_action(),
            Delete::new("d:a").into_action(),
            Expire::new("d:a", 1).into_action(),
            HashSet::new("d:h", [("f", v())]).into_action(),
            StreamAdd::new("d:x", [("f", v())]).into_action(),
            ZsetAdd::new("d:z", "m", 1.0).into_action(),
            ZsetIncr::new("d:z", "m", 1.0).into_action(),
            ZsetTrim::new("d:z", 0, 1).into_action(),
            SetAdd::new("d:s", ["m"]).into_action(),
            Script::new("s").keys(["d:a"]).into_action(),
            CounterAdd::new("d:c", 1).into_action(),
            SetIfAbsent::new("d:a", v()).into_action(),
            HashDelete::new("d:h", ["f"]).into_action(),
            HashAdd::new("d:h", "f", 1).into_action(),
            SetRemove::new("d:s", ["m"]).into_action(),
            ZsetRemove::new("d:z", ["m"]).into_action(),
            ListPush::head("d:l", [v()]).into_action(),
            ListRemove::all("d:l", v()).into_action(),
        ]
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
        for w in writes {
            let name = w.name();
            assert!(!w.is_read(), "{name}");
            let refused = Plan::read().then(w).into_decision();
            assert!(matches!(refused, Err(Error::Internal(m)) if m.contains(&format!("({name} "))));
        }
    }

    #[test]
    fn sorted_set_options_are_named_and_reach_the_contract() {
        let plan = Plan::new()
            .then(ZsetAdd::new("d:z", "ann", 12.0).if_greater())
            .then(ZsetTrim::keep_highest("d:z", 100))
            .respond_with(ZsetRange::score("d:z", 0.0, f64::INFINITY).rev().limit(5))
            .atomic();
        assert!(
            matches!(&plan.actions()[0], Action::ZsetAdd(z) if z.condition == ZsetCondition::IfGreater)
        );
        assert!(
            matches!(&plan.actions()[1], Action::ZsetTrim(t) if (t.start, t.stop) == (0, -101))
        );
        let wit = plan.into_wit().unwrap();
        assert!(wit.atomic);
        assert!(
            matches!(&wit.actions[2], wit::Action::ZsetRange(r) if r.reverse && r.limit == Some(5))
        );
        assert!(matches!(
            &wit.actions[0],
            wit::Action::ZsetAdd(z) if matches!(z.condition, wit::ZsetCondition::IfGreater)
        ));
    }
}
