"""The request a policy decides on, and what a read round found."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, TypeVar, overload

from .errors import BadRequest, Internal
from .value import Value, decode_named

T = TypeVar("T")


class Operation(enum.Enum):
    """What the client asked for."""

    #: `GET /v1/cache/{domain}/{key}`, and each key of an mget.
    GET = "get"
    #: `PUT /v1/cache/{domain}/{key}`, and each item of an mset.
    PUT = "put"
    #: `DELETE /v1/cache/{domain}/{key}`.
    DELETE = "delete"
    #: `POST /v1/events/{domain}`.
    PUBLISH = "publish"


@dataclass(frozen=True)
class AccessStats:
    """How a key has been used lately, as the gateway saw it. All zeros unless
    the domain has `track_access = true` (and for keys it has forgotten)."""

    hits: int = 0
    misses: int = 0
    writes: int = 0
    #: When the key was last read, ms since the Unix epoch; 0 if never.
    last_read_ms: int = 0
    #: Reads per minute, exponentially decayed.
    read_rate: float = 0.0


@dataclass(frozen=True)
class Request:
    """One request as the gateway hands it to a policy. The domain is not
    here: an instance serves one domain and gets it once, in `configure`.

    Tests build requests with `Request.get`, `.put`, `.delete` and `.publish`
    and the `with_*` methods (each returns a new request)."""

    #: The client's key (empty for events).
    key: str
    operation: Operation
    #: The value as the gateway passed it, for puts and events; `value()` refuses a missing one.
    payload: Optional[Value] = None
    #: Fields the client asked for (`?fields=a,b`); empty means all.
    fields: list[str] = field(default_factory=list)
    #: A TTL the client asked for (`?ttl_s=`), in ms, already within the domain's bounds.
    ttl_ms: Optional[int] = None
    #: The gateway's clock, ms since the Unix epoch: a policy has no clock.
    now_ms: int = 0
    #: Fresh random bits, e.g. for TTL jitter.
    entropy: int = 0
    stats: AccessStats = field(default_factory=AccessStats)

    @staticmethod
    def get(key: str) -> Request:
        """A read of `key`."""
        return Request(key, Operation.GET)

    @staticmethod
    def put(key: str, value: Any) -> Request:
        """A write of `value` at `key`, encoded as the gateway encodes a client's JSON."""
        return Request(key, Operation.PUT, Value.encode(value))

    @staticmethod
    def delete(key: str) -> Request:
        """A removal of `key`."""
        return Request(key, Operation.DELETE)

    @staticmethod
    def publish(event: Any) -> Request:
        """An event (`POST /v1/events/{domain}`), encoded like `put`'s value."""
        return Request("", Operation.PUBLISH, Value.encode(event))

    def with_value(self, value: Any) -> Request:
        return dataclasses.replace(self, payload=Value.encode(value))

    def with_fields(self, fields: Iterable[str]) -> Request:
        """The same request asking only for these fields (`?fields=a,b`)."""
        return dataclasses.replace(self, fields=list(fields))

    def with_ttl_ms(self, ttl_ms: int) -> Request:
        return dataclasses.replace(self, ttl_ms=ttl_ms)

    def with_read_rate(self, reads_per_min: float) -> Request:
        return dataclasses.replace(self, stats=dataclasses.replace(self.stats, read_rate=reads_per_min))

    def with_entropy(self, entropy: int) -> Request:
        return dataclasses.replace(self, entropy=entropy)

    def with_now_ms(self, now_ms: int) -> Request:
        return dataclasses.replace(self, now_ms=now_ms)

    def value(self) -> Value:
        """The value, or a `BadRequest` when the operation came without one."""
        if self.payload is None:
            raise BadRequest("this operation needs a value")
        return self.payload

    @overload
    def decode(self) -> Any: ...
    @overload
    def decode(self, as_type: type[T]) -> T: ...
    @overload
    def decode(self, as_type: Any) -> Any: ...

    def decode(self, as_type: Any = Any) -> Any:
        """The value decoded (checked against `as_type`); see `Value.decode`."""
        return self.value().decode(as_type)

    def field(self, name: str, as_type: Any = Any) -> Any:
        """One field of the value (an object), decoded; see `Value.field`."""
        return self.value().field(name, as_type)


class Replies:
    """The replies of a `Plan.read()`'s actions, in the order they were added:
    each `None` for a miss, else the action's answer exactly as a client would
    get it, as MessagePack (see the Rust SDK's `Replies` for each read's reply).
    A test builds the replies it wants `plan_after_read` to see:
    `Replies([Value.encode({"owner": "ann"}), None])`."""

    def __init__(self, replies: Iterable[Optional[Value]] = ()) -> None:
        self._replies = [r if r is None or isinstance(r, Value) else Value(r) for r in replies]

    def get(self, i: int) -> Optional[Value]:
        """The reply of action `i`; `None` for a miss, or for an `i` past the last action."""
        return self._replies[i] if 0 <= i < len(self._replies) else None

    def decode(self, i: int, as_type: Any = Any) -> Any:
        """The reply of action `i`, decoded (checked against `as_type`); `None`
        for a miss. A reply that does not decode, or an `i` the read plan did
        not have, is an `Internal` error (a 500: Redis held something this
        policy did not write) whose message names `i`."""
        if not 0 <= i < len(self._replies):
            raise Internal(f"reply {i} of the read: the read plan had {len(self._replies)} actions")
        reply = self._replies[i]
        if reply is None:
            return None
        return decode_named(reply.to_bytes(), as_type, f"reply {i} of the read")

    def __len__(self) -> int:
        return len(self._replies)

    def __repr__(self) -> str:
        return f"Replies({self._replies!r})"
