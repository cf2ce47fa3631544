"""The Redis actions a plan is made of. Each is a dataclass a policy builds with
named options (keyword arguments: the Rust SDK's `.ttl_ms(5_000)` is
`ttl_ms=5_000` here) and a test reads back from `plan.actions`.

Values (anything `Value.encode` takes, or a `Value` as it is) are encoded when
the action is added to a plan; an action that cannot be built (a value that does
not encode, a contradictory option, a number out of the contract's range) fails
the plan with the first such error, as in the Rust SDK.
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, Iterable, Mapping, Optional, Union

from wit_world.imports import types as wit

from .errors import Internal
from .value import _S64 as S64
from .value import _U32 as U32
from .value import _U64 as U64
from .value import Value

Number = Union[int, float]
"""A number to count with: an `int` counts whole (`INCRBY`), a `float` in floats (`INCRBYFLOAT`)."""


def _q(s: str) -> str:
    """A key as the Rust SDK's messages quote it: `"d:a"`."""
    return json.dumps(s, ensure_ascii=False)


def _strs(what: str, items: Iterable[str]) -> list[str]:
    """A list of strings; one bare string is a mistake (it would be split into letters)."""
    if isinstance(items, str):
        raise TypeError(f"{what} must be a list of strings, not the string {items!r}")
    return list(items)  # each checked as the action is added


def _pairs(fields: Union[Mapping[str, Any], Iterable[tuple[str, Any]]]) -> list[tuple[str, Any]]:
    items = fields.items() if isinstance(fields, Mapping) else fields
    return [(k, v) for k, v in items]


def _names(pairs: list[tuple[Any, Any]]) -> Iterable[tuple[str, Any, str]]:
    return (("field name", k, "str") for k, _ in pairs)


#: What the contract takes for an option typed so, in words.
_KINDS = {"str": "a string", "bool": "True or False", "float": "a number"}


def _is(kind: str, v: Any) -> bool:
    if kind == "float":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return isinstance(v, str if kind == "str" else bool)


class Action:
    """One Redis action of a plan (the base of every action class)."""

    #: The contract's name of the action, for messages.
    op: ClassVar[str]
    #: Whether the action only reads, so it may be in a `Plan.read()`. A script
    #: counts as a write: the gateway cannot tell what it does.
    is_read: ClassVar[bool] = False
    key: str

    def _ranges(self) -> Iterable[tuple[str, Any, tuple[int, int, str]]]:
        """The whole-number options the contract bounds: (name, value, range)."""
        return ()

    def _typed(self) -> Iterable[tuple[str, Any, str]]:
        """The options the contract types (keys, members, names, flags, scores):
        (name, value, kind), from the fields declared `str`, `list[str]`, `bool`, `float`."""
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if f.type == "list[str]":
                yield from ((f"{f.name}[{i}]", x, "str") for i, x in enumerate(v))
            elif f.type in _KINDS:
                yield f.name, v, f.type

    def _checked(self) -> Action:
        """The action as a plan keeps it (values encoded), or why it cannot be one:
        nothing crosses the boundary that the contract's types do not hold."""
        name = type(self).__name__
        for opt, v, kind in self._typed():
            if not _is(kind, v):
                raise Internal(f"{name}{self._of()} with {opt}={v!r}: it must be {_KINDS[kind]}")
        for opt, v, (lo, hi, words) in self._ranges():
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi):
                raise Internal(f"{name}{self._of()} with {opt}={v!r}: it must be {words}")
        return self._encoded()

    def _of(self) -> str:
        """` of "key"` for a message, once the key is known to be one."""
        key = self.key
        return f" of {_q(key)}" if isinstance(key, str) and key else ""

    def _encoded(self) -> Action:
        return self

    def _wit(self) -> wit.Action:
        raise NotImplementedError


def _ttl(a: Any) -> Iterable[tuple[str, Any, tuple[int, int, str]]]:
    return (("ttl_ms", a.ttl_ms, U64),)


def _fields_wit(fields: list[tuple[str, Any]]) -> list[wit.FieldValue]:
    return [wit.FieldValue(name, v.to_bytes()) for name, v in fields]


def _nothing(action: str, key: str, items: str) -> Internal:
    """Why an action that names items names none: Redis refuses the command."""
    return Internal(f"{action} of {_q(key)} with no {items}: it needs one at least")


def _whole(n: Any) -> bool:
    return isinstance(n, int) and not isinstance(n, bool)


def _number(n: Number) -> wit.Number:
    return wit.Number_Float(float(n)) if isinstance(n, float) else wit.Number_Int(int(n))


def _check_amount(what: str, by: Any) -> None:
    if isinstance(by, bool) or not isinstance(by, (int, float)):
        raise Internal(f"{what} by {by!r}: the amount is an int or a float")
    if isinstance(by, float) and not math.isfinite(by):
        raise Internal(f"{what} by {by!r}: Redis counts with finite numbers only")
    if isinstance(by, int) and not S64[0] <= by <= S64[1]:
        raise Internal(f"{what} by {by}: it must be {S64[2]}")


# --- Plain values: GET, SET, SET NX -------------------------------------------


@dataclass
class Get(Action):
    """`GET key`: the reply is the stored value, a miss is a 404."""

    op: ClassVar[str] = "get"
    is_read: ClassVar[bool] = True
    key: str

    def _wit(self) -> wit.Action:
        return wit.Action_Get(wit.StringGet(self.key))


@dataclass
class Set(Action):
    """`SET key value PX ttl`: store a value as it is. `ttl_ms` None: the
    plan's TTL, else the domain's `ttl_s`; every write expires."""

    op: ClassVar[str] = "set"
    key: str
    value: Any
    ttl_ms: Optional[int] = field(default=None, kw_only=True)

    def _ranges(self) -> Iterable[tuple[str, Any, tuple[int, int, str]]]:
        return _ttl(self)

    def _encoded(self) -> Action:
        return replace(self, value=Value.encode(self.value))

    def _wit(self) -> wit.Action:
        return wit.Action_Set(wit.StringSet(self.key, self.value.to_bytes(), self.ttl_ms))


@dataclass
class SetIfAbsent(Action):
    """`SET key value NX PX ttl`: store only when the key is absent (a lock, a
    de-duplication mark). The reply is `True` when it was stored."""

    op: ClassVar[str] = "set-if-absent"
    key: str
    value: Any
    ttl_ms: Optional[int] = field(default=None, kw_only=True)

    def _ranges(self) -> Iterable[tuple[str, Any, tuple[int, int, str]]]:
        return _ttl(self)

    def _encoded(self) -> Action:
        return replace(self, value=Value.encode(self.value))

    def _wit(self) -> wit.Action:
        return wit.Action_SetIfAbsent(wit.SetIfAbsent(self.key, self.value.to_bytes(), self.ttl_ms))


# --- Keys: DEL, PEXPIRE, PTTL ---------------------------------------------------


@dataclass
class Delete(Action):
    """`DEL key`, whatever it holds."""

    op: ClassVar[str] = "delete"
    key: str

    def _wit(self) -> wit.Action:
        return wit.Action_Delete(wit.KeyDelete(self.key))


@dataclass
class Expire(Action):
    """`PEXPIRE key ttl` (kept within the domain's bounds by the host)."""

    op: ClassVar[str] = "expire"
    key: str
    ttl_ms: int

    def _ranges(self) -> Iterable[tuple[str, Any, tuple[int, int, str]]]:
        return _ttl(self)

    def _wit(self) -> wit.Action:
        return wit.Action_Expire(wit.KeyExpire(self.key, self.ttl_ms))


@dataclass
class KeyTtl(Action):
    """`PTTL key`: the ms the key has left; nil when it never expires; a miss when there is no key."""

    op: ClassVar[str] = "key-ttl"
    is_read: ClassVar[bool] = True
    key: str

    def _wit(self) -> wit.Action:
        return wit.Action_KeyTtl(wit.KeyTtl(self.key))


# --- Objects as hashes: HGETALL/HMGET, HSET, HDEL, HINCRBY ------------------------


@dataclass
class HashGet(Action):
    """`HGETALL key`, or `HMGET key field ...` of `fields` (all of them when
    empty, as a request's `fields` is when the client named none): the reply is
    an object."""

    op: ClassVar[str] = "hash-get"
    is_read: ClassVar[bool] = True
    key: str
    fields: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.fields = _strs("HashGet fields", self.fields)

    def _wit(self) -> wit.Action:
        return wit.Action_HashGet(wit.HashGet(self.key, list(self.fields)))


@dataclass
class HashSet(Action):
    """`HSET key field value ...`, then `PEXPIRE`. `fields`: a mapping or
    (name, value) pairs, e.g. an object's `Value.fields()`."""

    op: ClassVar[str] = "hash-set"
    key: str
    fields: Any
    ttl_ms: Optional[int] = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        self.fields = _pairs(self.fields)

    def _typed(self) -> Iterable[tuple[str, Any, str]]:
        return (*super()._typed(), *_names(self.fields))

    def _ranges(self) -> Iterable[tuple[str, Any, tuple[int, int, str]]]:
        return _ttl(self)

    def _encoded(self) -> Action:
        return replace(self, fields=[(k, Value.encode(v)) for k, v in self.fields])

    def _wit(self) -> wit.Action:
        return wit.Action_HashSet(wit.HashSet(self.key, _fields_wit(self.fields), self.ttl_ms))


@dataclass
class HashDelete(Action):
    """`HDEL key field ...`: the reply is the number of fields removed."""

    op: ClassVar[str] = "hash-delete"
    key: str
    fields: list[str]

    def __post_init__(self) -> None:
        self.fields = _strs("HashDelete fields", self.fields)

    def _encoded(self) -> Action:
        if not self.fields:
            raise _nothing("HashDelete", self.key, "fields")
        return self

    def _wit(self) -> wit.Action:
        return wit.Action_HashDelete(wit.HashDelete(self.key, list(self.fields)))


@dataclass
class HashAdd(Action):
    """`HINCRBY key field by` (`HINCRBYFLOAT` for a float), then `PEXPIRE`:
    the reply is the field's new value."""

    op: ClassVar[str] = "hash-add"
    key: str
    field: str
    by: Number
    ttl_ms: Optional[int] = field(default=None, kw_only=True)

    def _ranges(self) -> Iterable[tuple[str, Any, tuple[int, int, str]]]:
        return _ttl(self)

    def _encoded(self) -> Action:
        _check_amount("HashAdd", self.by)
        return self

    def _wit(self) -> wit.Action:
        return wit.Action_HashAdd(wit.HashAdd(self.key, self.field, _number(self.by), self.ttl_ms))


# --- Streams --------------------------------------------------------------------


@dataclass
class StreamAdd(Action):
    """`XADD stream [MAXLEN ~ n] * field value ...`."""

    op: ClassVar[str] = "stream-add"
    stream: str
    fields: Any
    max_len: Optional[int] = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        self.fields = _pairs(self.fields)

    @property
    def key(self) -> str:  # type: ignore[override]
        """The stream's key."""
        return self.stream

    def _typed(self) -> Iterable[tuple[str, Any, str]]:
        return (*super()._typed(), *_names(self.fields))

    def _ranges(self) -> Iterable[tuple[str, Any, tuple[int, int, str]]]:
        return (("max_len", self.max_len, U64),)

    def _encoded(self) -> Action:
        return replace(self, fields=[(k, Value.encode(v)) for k, v in self.fields])

    def _wit(self) -> wit.Action:
        return wit.Action_StreamAdd(wit.StreamAdd(self.stream, _fields_wit(self.fields), self.max_len))


# --- Sorted sets ----------------------------------------------------------------


@dataclass
class ScoredMember:
    """A sorted-set member and its score; a range's reply is a list of these (as maps)."""

    member: str
    score: float


class ZsetCondition(enum.Enum):
    """When `ZADD` changes a member."""

    ALWAYS = "always"
    #: `NX`: only add members that are not there yet.
    IF_ABSENT = "if-absent"
    #: `GT`: update a score only when the new one is greater.
    IF_GREATER = "if-greater"
    #: `LT`: update a score only when the new one is less.
    IF_LESS = "if-less"


@dataclass(init=False)
class ZsetAdd(Action):
    """`ZADD key [NX|GT|LT] score member ...`, then `PEXPIRE`:
    `ZsetAdd(key, "ann", 12.0)`, or `ZsetAdd(key, members=[ScoredMember(...), ("bob", 3.0)])`."""

    op: ClassVar[str] = "zset-add"
    key: str
    members: list[ScoredMember]
    condition: ZsetCondition
    ttl_ms: Optional[int]

    def __init__(
        self,
        key: str,
        member: Optional[str] = None,
        score: Optional[float] = None,
        *,
        members: Iterable[Union[ScoredMember, tuple[str, float]]] = (),
        condition: ZsetCondition = ZsetCondition.ALWAYS,
        ttl_ms: Optional[int] = None,
    ) -> None:
        self.key = key
        self.members = [m if isinstance(m, ScoredMember) else ScoredMember(*m) for m in members]
        if (member is None) != (score is None):
            raise TypeError(
                f"ZsetAdd(key, member, score) takes a member with its score, not member={member!r}, score={score!r}"
            )
        if member is not None:
            self.members.insert(0, ScoredMember(member, score))  # type: ignore[arg-type]
        self.condition, self.ttl_ms = condition, ttl_ms

    def if_greater(self) -> ZsetAdd:
        """`GT`: add new members; update a score only when the new one is greater."""
        self.condition = ZsetCondition.IF_GREATER
        return self

    def if_less(self) -> ZsetAdd:
        """`LT`: add new members; update a score only when the new one is less."""
        self.condition = ZsetCondition.IF_LESS
        return self

    def if_absent(self) -> ZsetAdd:
        """`NX`: only add members that are not there yet."""
        self.condition = ZsetCondition.IF_ABSENT
        return self

    def _typed(self) -> Iterable[tuple[str, Any, str]]:
        yield from super()._typed()
        for i, m in enumerate(self.members):
            yield from ((f"members[{i}].member", m.member, "str"), (f"members[{i}].score", m.score, "float"))

    def _ranges(self) -> Iterable[tuple[str, Any, tuple[int, int, str]]]:
        return _ttl(self)

    def _wit(self) -> wit.Action:
        members = [wit.ScoredMember(m.member, float(m.score)) for m in self.members]
        cond = wit.ZsetCondition[self.condition.name]
        return wit.Action_ZsetAdd(wit.ZsetAdd(self.key, members, cond, self.ttl_ms))


@dataclass
class ZsetIncr(Action):
    """`ZINCRBY key by member`, then `PEXPIRE`; the reply is the new score."""

    op: ClassVar[str] = "zset-incr"
    key: str
    member: str
    by: float
    ttl_ms: Optional[int] = field(default=None, kw_only=True)

    def _ranges(self) -> Iterable[tuple[str, Any, tuple[int, int, str]]]:
        return _ttl(self)

    def _wit(self) -> wit.Action:
        return wit.Action_ZsetIncr(wit.ZsetIncr(self.key, self.member, float(self.by), self.ttl_ms))


@dataclass(frozen=True)
class Rank:
    """Bounds by rank, inclusive; negative counts from the end (`0, -1` is all)."""

    start: int
    stop: int


@dataclass(frozen=True)
class Score:
    """Bounds by score, inclusive, always `(min, max)`; infinities allowed."""

    min: float
    max: float


@dataclass
class ZsetRange(Action):
    """`ZRANGE key start stop [BYSCORE] [REV] [LIMIT 0 n] WITHSCORES`: the reply
    is a list of `{member, score}`; an empty range is a miss (404). Build it
    with `ZsetRange.rank(key, 0, 9)` or `ZsetRange.score(key, 0.0, math.inf,
    limit=5)`, and `.rev()` (or `reverse=True`) for the highest first."""

    op: ClassVar[str] = "zset-range"
    is_read: ClassVar[bool] = True
    key: str
    bounds: Union[Rank, Score]
    reverse: bool = False
    #: At most this many members: score ranges only.
    limit: Optional[int] = None

    @staticmethod
    def rank(key: str, start: int, stop: int, *, reverse: bool = False) -> ZsetRange:
        return ZsetRange(key, Rank(start, stop), reverse)

    @staticmethod
    def score(key: str, min: float, max: float, *, reverse: bool = False, limit: Optional[int] = None) -> ZsetRange:
        return ZsetRange(key, Score(float(min), float(max)), reverse, limit)

    def rev(self) -> ZsetRange:
        """Highest first (for a score range the bounds stay `(min, max)`)."""
        self.reverse = True
        return self

    def _typed(self) -> Iterable[tuple[str, Any, str]]:
        b = self.bounds
        scores = (("min", b.min, "float"), ("max", b.max, "float")) if isinstance(b, Score) else ()
        return (*super()._typed(), *scores)

    def _ranges(self) -> Iterable[tuple[str, Any, tuple[int, int, str]]]:
        b = self.bounds
        ranks = (("start", b.start, S64), ("stop", b.stop, S64)) if isinstance(b, Rank) else ()
        return (*ranks, ("limit", self.limit, U32))

    def _encoded(self) -> Action:
        b = self.bounds
        if isinstance(b, Rank) and self.limit is not None:
            raise Internal(
                f"ZsetRange.rank({b.start}, {b.stop}) with limit={self.limit}: a rank range is "
                "limited by its bounds; limit applies to score ranges"
            )
        if isinstance(b, Score) and b.min > b.max:
            raise Internal(f"ZsetRange.score({b.min!r}, {b.max!r}): score bounds are (min, max), also with .rev()")
        return self

    def _wit(self) -> wit.Action:
        b = self.bounds
        bounds: wit.ZsetBounds = (
            wit.ZsetBounds_Rank((b.start, b.stop))
            if isinstance(b, Rank)
            else wit.ZsetBounds_Score((float(b.min), float(b.max)))
        )
        return wit.Action_ZsetRange(wit.ZsetRange(self.key, bounds, self.reverse, self.limit))


@dataclass
class ZsetTrim(Action):
    """`ZREMRANGEBYRANK key start stop`: e.g. `(0, -101)` keeps the 100 highest."""

    op: ClassVar[str] = "zset-trim"
    key: str
    start: int
    stop: int

    #: The `n` of `keep_highest`/`keep_lowest`, range-checked as the action is added.
    n: Optional[int] = field(default=None, kw_only=True, repr=False, compare=False)

    @staticmethod
    def keep_highest(key: str, n: int) -> ZsetTrim:
        """Keep the `n` highest scores (`ZREMRANGEBYRANK key 0 -n-1`)."""
        return ZsetTrim(key, 0, -n - 1 if _whole(n) else 0, n=n)

    @staticmethod
    def keep_lowest(key: str, n: int) -> ZsetTrim:
        """Keep the `n` lowest scores (`ZREMRANGEBYRANK key n -1`)."""
        return ZsetTrim(key, n if _whole(n) else 0, -1, n=n)

    def _ranges(self) -> Iterable[tuple[str, Any, tuple[int, int, str]]]:
        return (("n", self.n, U32), ("start", self.start, S64), ("stop", self.stop, S64))

    def _wit(self) -> wit.Action:
        return wit.Action_ZsetTrim(wit.ZsetTrim(self.key, self.start, self.stop))


@dataclass
class ZsetRemove(Action):
    """`ZREM key member ...`; the reply is the number removed."""

    op: ClassVar[str] = "zset-remove"
    key: str
    members: list[str]

    def __post_init__(self) -> None:
        self.members = _strs("ZsetRemove members", self.members)

    def _encoded(self) -> Action:
        if not self.members:
            raise _nothing("ZsetRemove", self.key, "members")
        return self

    def _wit(self) -> wit.Action:
        return wit.Action_ZsetRemove(wit.ZsetRemove(self.key, list(self.members)))


@dataclass
class ZsetScore(Action):
    """`ZSCORE key member`: the score, a miss when the member is absent."""

    op: ClassVar[str] = "zset-score"
    is_read: ClassVar[bool] = True
    key: str
    member: str

    def _wit(self) -> wit.Action:
        return wit.Action_ZsetScore(wit.ZsetScore(self.key, self.member))


@dataclass
class ZsetCount(Action):
    """`ZCARD key`: the number of members (0 when there is no key)."""

    op: ClassVar[str] = "zset-count"
    is_read: ClassVar[bool] = True
    key: str

    def _wit(self) -> wit.Action:
        return wit.Action_ZsetCount(wit.ZsetCount(self.key))


# --- Sets -----------------------------------------------------------------------


@dataclass
class SetAdd(Action):
    """`SADD key member ...`, then `PEXPIRE`."""

    op: ClassVar[str] = "set-add"
    key: str
    members: list[str]
    ttl_ms: Optional[int] = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        self.members = _strs("SetAdd members", self.members)

    def _ranges(self) -> Iterable[tuple[str, Any, tuple[int, int, str]]]:
        return _ttl(self)

    def _wit(self) -> wit.Action:
        return wit.Action_SetAdd(wit.SetAdd(self.key, list(self.members), self.ttl_ms))


@dataclass
class SetContains(Action):
    """`SISMEMBER key member`: the reply is `True` or `False`."""

    op: ClassVar[str] = "set-contains"
    is_read: ClassVar[bool] = True
    key: str
    member: str

    def _wit(self) -> wit.Action:
        return wit.Action_SetContains(wit.SetContains(self.key, self.member))


@dataclass
class SetRemove(Action):
    """`SREM key member ...`; the reply is the number removed."""

    op: ClassVar[str] = "set-remove"
    key: str
    members: list[str]

    def __post_init__(self) -> None:
        self.members = _strs("SetRemove members", self.members)

    def _encoded(self) -> Action:
        if not self.members:
            raise _nothing("SetRemove", self.key, "members")
        return self

    def _wit(self) -> wit.Action:
        return wit.Action_SetRemove(wit.SetRemove(self.key, list(self.members)))


@dataclass
class SetMembers(Action):
    """Up to `count` members of a set, sorted; an empty set is a miss."""

    op: ClassVar[str] = "set-members"
    is_read: ClassVar[bool] = True
    key: str
    count: int

    def _ranges(self) -> Iterable[tuple[str, Any, tuple[int, int, str]]]:
        return (("count", self.count, U32),)

    def _encoded(self) -> Action:
        if self.count == 0:
            raise Internal(f"SetMembers of {_q(self.key)} with a count of 0 would always be a miss")
        return self

    def _wit(self) -> wit.Action:
        return wit.Action_SetMembers(wit.SetMembers(self.key, self.count))


@dataclass
class SetCount(Action):
    """`SCARD key`: the number of members (0 when there is no key)."""

    op: ClassVar[str] = "set-count"
    is_read: ClassVar[bool] = True
    key: str

    def _wit(self) -> wit.Action:
        return wit.Action_SetCount(wit.SetCount(self.key))


# --- Scripts --------------------------------------------------------------------


@dataclass
class Script(Action):
    """`EVALSHA` of a Lua script the operator registered under `name` (the host
    refuses any other), with `keys` (each inside the domain's namespace) and
    `args` (values, encoded)."""

    op: ClassVar[str] = "script"
    #: The script's registered name.
    name: str
    keys: list[str] = field(default_factory=list, kw_only=True)
    args: list[Any] = field(default_factory=list, kw_only=True)

    def __post_init__(self) -> None:
        self.keys = _strs("Script keys", self.keys)
        self.args = list(self.args)

    @property
    def key(self) -> str:  # type: ignore[override]
        """The script's first key (the others are in `keys`)."""
        return self.keys[0] if self.keys else ""

    def _encoded(self) -> Action:
        return replace(self, args=[Value.encode(a) for a in self.args])

    def _wit(self) -> wit.Action:
        return wit.Action_Script(wit.ScriptCall(self.name, list(self.keys), [a.to_bytes() for a in self.args]))


# --- Counters -------------------------------------------------------------------


@dataclass
class CounterAdd(Action):
    """Add to a counter (`INCRBY`, or `INCRBYFLOAT` for a float `by`), one
    command: a counter the add creates expires after its TTL, an existing one
    keeps its expiry. With `cap`, an add that would take the counter past it is
    refused. The reply is `{"value": .., "added": ..}`."""

    op: ClassVar[str] = "counter-add"
    key: str
    by: Number
    cap: Optional[Number] = field(default=None, kw_only=True)
    ttl_ms: Optional[int] = field(default=None, kw_only=True)

    def _ranges(self) -> Iterable[tuple[str, Any, tuple[int, int, str]]]:
        return _ttl(self)

    def _encoded(self) -> Action:
        _check_amount("CounterAdd", self.by)
        cap = self.cap
        if cap is not None:
            if isinstance(cap, bool) or not isinstance(cap, (int, float)) or (
                isinstance(cap, float) and not math.isfinite(cap)
            ):
                raise Internal(f"CounterAdd with cap={cap!r}: a cap is a finite number")
            if isinstance(cap, int) and not S64[0] <= cap <= S64[1]:
                raise Internal(f"CounterAdd with cap={cap}: it must be {S64[2]}")
            if isinstance(self.by, int) and isinstance(cap, float):
                raise Internal(
                    f"CounterAdd by {self.by} with cap={cap!r}: an int counter's cap is whole; "
                    "for a float counter, add a float"
                )
        return self

    def _wit(self) -> wit.Action:
        cap = None if self.cap is None else _number(self.cap)
        return wit.Action_CounterAdd(wit.CounterAdd(self.key, _number(self.by), cap, self.ttl_ms))


@dataclass
class CounterGet(Action):
    """Read a counter `CounterAdd` keeps, as a number (an int, or a float when
    its text has a point); a miss when there is no counter. `Get` would misread
    Redis's decimal text."""

    op: ClassVar[str] = "counter-get"
    is_read: ClassVar[bool] = True
    key: str

    def _wit(self) -> wit.Action:
        return wit.Action_CounterGet(wit.CounterGet(self.key))


# --- Lists ----------------------------------------------------------------------


class ListEnd(enum.Enum):
    """Which end of a list."""

    #: `LPUSH`, index 0.
    HEAD = "head"
    #: `RPUSH`, index -1.
    TAIL = "tail"


@dataclass
class ListPush(Action):
    """`LPUSH`/`RPUSH key value ...` at `end`, then with `keep` `LTRIM` to the
    items nearest that end (a capped "most recent N"), then `PEXPIRE`. The
    reply is the list's length after. `ListPush.head(key, [v], keep=10)`."""

    op: ClassVar[str] = "list-push"
    key: str
    values: list[Any]
    end: ListEnd = ListEnd.HEAD
    keep: Optional[int] = field(default=None, kw_only=True)
    ttl_ms: Optional[int] = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        self.values = list(self.values)

    @staticmethod
    def head(key: str, values: Iterable[Any], *, keep: Optional[int] = None, ttl_ms: Optional[int] = None) -> ListPush:
        """Push at the head: the newest first."""
        return ListPush(key, list(values), ListEnd.HEAD, keep=keep, ttl_ms=ttl_ms)

    @staticmethod
    def tail(key: str, values: Iterable[Any], *, keep: Optional[int] = None, ttl_ms: Optional[int] = None) -> ListPush:
        """Push at the tail: in arrival order."""
        return ListPush(key, list(values), ListEnd.TAIL, keep=keep, ttl_ms=ttl_ms)

    def _ranges(self) -> Iterable[tuple[str, Any, tuple[int, int, str]]]:
        return (("keep", self.keep, U32), *_ttl(self))

    def _encoded(self) -> Action:
        if not self.values:
            raise _nothing("ListPush", self.key, "values")
        if self.keep == 0:
            raise Internal(f"ListPush of {_q(self.key)} with keep=0 would empty the list on every push")
        return replace(self, values=[Value.encode(v) for v in self.values])

    def _wit(self) -> wit.Action:
        end = wit.ListEnd[self.end.name]
        return wit.Action_ListPush(
            wit.ListPush(self.key, [v.to_bytes() for v in self.values], end, self.keep, self.ttl_ms)
        )


@dataclass
class ListRange(Action):
    """`LRANGE`: up to `count` items from index `start` (negative counts from
    the tail). The reply is an array of the stored values; empty is a miss."""

    op: ClassVar[str] = "list-range"
    is_read: ClassVar[bool] = True
    key: str
    start: int
    count: int

    @staticmethod
    def first(key: str, n: int) -> ListRange:
        """The first `n` items."""
        return ListRange(key, 0, n)

    @staticmethod
    def last(key: str, n: int) -> ListRange:
        """The last `n` items, in list order."""
        return ListRange(key, -n, n)

    def _ranges(self) -> Iterable[tuple[str, Any, tuple[int, int, str]]]:
        return (("start", self.start, S64), ("count", self.count, U32))

    def _encoded(self) -> Action:
        if self.count == 0:
            raise Internal(f"ListRange of {_q(self.key)} with a count of 0 would always be a miss")
        return self

    def _wit(self) -> wit.Action:
        return wit.Action_ListRange(wit.ListRange(self.key, self.start, self.count))


@dataclass
class ListRemove(Action):
    """`LREM key count value`: remove items equal to `value`, `count` of them
    from the head (0: all; negative: from the tail). The reply is the number removed."""

    op: ClassVar[str] = "list-remove"
    key: str
    value: Any
    count: int = 0

    @staticmethod
    def all(key: str, value: Any) -> ListRemove:
        """Remove every item equal to `value`."""
        return ListRemove(key, value, 0)

    def _ranges(self) -> Iterable[tuple[str, Any, tuple[int, int, str]]]:
        return (("count", self.count, S64),)

    def _encoded(self) -> Action:
        return replace(self, value=Value.encode(self.value))

    def _wit(self) -> wit.Action:
        return wit.Action_ListRemove(wit.ListRemove(self.key, self.value.to_bytes(), self.count))


#: The contract's names of the actions that only read, for messages.
READS = [
    "get", "hash-get", "zset-range", "zset-score", "zset-count", "set-contains",
    "set-members", "set-count", "list-range", "key-ttl", "counter-get",
]
