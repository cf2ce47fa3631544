"""What a policy answers: a plan, a few Redis actions plus hints.

A plan made with `Plan()` runs and answers. One made with `Plan.read()` only
reads: the gateway runs it, then asks the policy's `plan_after_read` for the
plan that writes, with what it read.

    read = Plan().respond_with(ZsetRange.rank("board:w", 0, 9).rev())
    write = Plan().then(Delete("price:btc")).then(HashSet("price:btc", {"price": 64000.5})).atomic()
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import NewType, Optional

from wit_world.imports import types as wit

from .actions import READS, Action
from .errors import Error, Internal
from .value import _U64

#: A handle to one action of a plan, returned by `Plan.add`, to make its reply
#: the response with `Plan.respond`.
Step = NewType("Step", int)


@dataclass(frozen=True)
class CacheHint:
    """Whether the gateway may keep an in-process copy of what the plan read,
    and how stale a copy may be served while Redis cannot answer."""

    keep: bool
    max_stale_ms: int = 0


class Plan:
    """The actions to run, which one's reply is the response, and hints. The
    builder methods change the plan and return it, so they chain."""

    def __init__(self) -> None:
        """An empty plan: nothing to do, no response body."""
        self._actions: list[Action] = []
        self._respond: Optional[int] = None
        self._atomic = False
        self._ttl_ms: Optional[int] = None
        self._cache: Optional[CacheHint] = None
        self._read = False
        self._error: Optional[Error] = None

    @classmethod
    def read(cls) -> Plan:
        """An empty plan that only reads, the first of two rounds: the gateway
        runs its reads, then calls `plan_after_read` with their replies for the
        plan that writes, and runs that one under `WATCH` of the keys read, as
        one transaction. Reads only (`Action.is_read`); the response is the
        second plan's, or, when that one has none, this one's."""
        plan = cls()
        plan._read = True
        return plan

    def add(self, action: Action) -> Step:
        """Add an action and get its handle, e.g. to `respond` with it."""
        if not isinstance(action, Action):
            raise TypeError(f"a plan takes actions (Get, Set, ...), not {action!r}")
        try:
            self._actions.append(action._checked())
        except Error as e:
            if self._error is None:
                self._error = e
            return Step(-1)  # names no action; the plan fails with the error anyway
        return Step(len(self._actions) - 1)

    def then(self, action: Action) -> Plan:
        """Add an action whose reply is not the response (a write, a side effect)."""
        self.add(action)
        return self

    def respond_with(self, action: Action) -> Plan:
        """Add an action and make its reply the response body."""
        return self.respond(self.add(action))

    def respond(self, step: Step) -> Plan:
        """Make the reply of this action the response body (a string read: the
        value; a hash read: an object; a range: a list of `{member, score}`; a
        membership test: a boolean)."""
        self._respond = step
        return self

    def atomic(self) -> Plan:
        """Run the actions as MULTI/EXEC, so no one sees them half done."""
        self._atomic = True
        return self

    def ttl_ms(self, ttl_ms: int) -> Plan:
        """The TTL of this plan's writes that name none (else the domain's `ttl_s`)."""
        self._ttl_ms = ttl_ms
        return self

    def cache(self, hint: CacheHint) -> Plan:
        """Whether the gateway may keep a copy of what this plan read (else the
        domain's settings decide)."""
        self._cache = hint
        return self

    @property
    def actions(self) -> list[Action]:
        """The actions, in the order they run (values encoded)."""
        return list(self._actions)

    def action(self, step: Step) -> Optional[Action]:
        """The action a step names."""
        ok = isinstance(step, int) and not isinstance(step, bool) and 0 <= step < len(self._actions)
        return self._actions[step] if ok else None

    @property
    def response(self) -> Optional[Action]:
        """The action whose reply is the response body; `None`: no body."""
        return None if self._respond is None else self.action(Step(self._respond))

    @property
    def is_atomic(self) -> bool:
        return self._atomic

    @property
    def is_read(self) -> bool:
        """Whether the plan is the read round of a read-then-write (`Plan.read()`)."""
        return self._read

    @property
    def default_ttl_ms(self) -> Optional[int]:
        return self._ttl_ms

    @property
    def cache_hint(self) -> Optional[CacheHint]:
        return self._cache

    @property
    def error(self) -> Optional[Error]:
        """Why an action could not be added: exporting the plan fails with this error."""
        return self._error

    def __repr__(self) -> str:
        kind = "Plan.read()" if self._read else "Plan()"
        return f"<{kind} actions={self._actions!r} respond={self._respond} atomic={self._atomic}>"

    # --- The contract's form (the export glue calls these) -------------------

    def to_decision(self) -> wit.Decision:
        """The contract's answer to a request: a plan to run, or reads to run
        first. Raises the first error met building it; a read plan that writes
        fails here, naming the action, rather than at the gateway."""
        if not self._read:
            return wit.Decision_Run(self.to_wit())
        if self._error is None:
            for i, a in enumerate(self._actions):
                if not a.is_read:
                    raise Internal(
                        f"a read plan (Plan.read()) may only read, but action {i} ({a.op} "
                        f"{json.dumps(a.key, ensure_ascii=False)}) writes; the writes go in the plan "
                        f"plan_after_read returns. Reads: {', '.join(READS)}"
                    )
        return wit.Decision_Read(self.to_wit())

    def to_wit(self) -> wit.Plan:
        """The contract's form of the plan; raises the first error met building it."""
        if self._error is not None:
            raise self._error
        if self._respond is not None and self.action(Step(self._respond)) is None:
            raise Internal(
                f"the plan responds with step {self._respond}, but it has {len(self._actions)} "
                "actions (a step of another plan?)"
            )
        _u64("ttl_ms", self._ttl_ms)
        cache = self._cache
        if cache is not None:
            if not isinstance(cache, CacheHint) or not isinstance(cache.keep, bool):
                raise Internal(f"the plan's cache={cache!r}: it must be a CacheHint(keep=True or False, ...)")
            _u64("cache's max_stale_ms", cache.max_stale_ms)
            cache = wit.CacheHint(cache.keep, cache.max_stale_ms)
        return wit.Plan([a._wit() for a in self._actions], self._atomic, self._respond, self._ttl_ms, cache)


def _u64(what: str, v: object) -> None:
    """A plan's whole-number hint, as the contract's u64 holds it, or why not."""
    lo, hi, words = _U64
    if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi):
        raise Internal(f"the plan's {what}={v!r}: it must be {words}")
