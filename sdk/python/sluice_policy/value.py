"""Values cross the gateway as MessagePack: a client's JSON becomes MessagePack
before a policy sees it, and what a policy stores stays MessagePack (types
kept) until the gateway answers in the client's format.

A decode may name the Python type it expects (`float`, `str`, `list[int]`,
`Optional[int]`, a dataclass, ...): a value of another shape is refused with a
message in a client's words, the same words as the Rust SDK's.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from typing import Annotated, Any, Callable, Optional, TypeVar, Union, overload

import msgpack

from .errors import BadConfig, BadRequest, Error, Internal

T = TypeVar("T")

# Whole numbers of the contract's sizes: (least, most, in words). Settings may
# use the `Annotated` forms (`limit: U32`): a setting out of range is refused at load.
_U32 = (0, 2**32 - 1, "a whole number from 0 to 4294967295")
_U64 = (0, 2**64 - 1, "a whole number, 0 or more")
_S64 = (-(2**63), 2**63 - 1, "a whole number from -9223372036854775808 to 9223372036854775807")
U32 = Annotated[int, _U32]
U64 = Annotated[int, _U64]
S64 = Annotated[int, _S64]


class Value:
    """A MessagePack value: a request's body, a field of an object, a value to
    store. `Value.encode(obj)` makes one; `decode()` reads it back."""

    __slots__ = ("_bytes",)

    def __init__(self, msgpack_bytes: bytes) -> None:
        """Bytes that already are MessagePack (not checked: a decode says what is wrong)."""
        if not isinstance(msgpack_bytes, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"Value takes MessagePack bytes, not {type(msgpack_bytes).__name__} "
                f"({msgpack_bytes!r}); Value.encode makes a value of a Python object"
            )
        self._bytes = bytes(msgpack_bytes)

    @staticmethod
    def encode(obj: Any) -> Value:
        """Encode a Python value: None, bool, int, float, str, bytes, lists,
        tuples, dicts, dataclasses (as maps of their fields), enums (their
        value) and `Value`s. Anything else is an `Internal` error."""
        if isinstance(obj, Value):
            return obj
        try:
            return Value(msgpack.packb(obj, use_bin_type=True, default=_plain))
        except (TypeError, ValueError, OverflowError) as e:
            raise Internal(f"a value could not be encoded as MessagePack: {e}") from None

    def to_bytes(self) -> bytes:
        """The MessagePack bytes."""
        return self._bytes

    @overload
    def decode(self) -> Any: ...
    @overload
    def decode(self, as_type: type[T]) -> T: ...
    @overload
    def decode(self, as_type: Any) -> Any: ...

    def decode(self, as_type: Any = Any) -> Any:
        """The value as Python objects; with `as_type`, checked (and built, for a
        dataclass) against it. A value of the wrong shape is a `BadRequest` whose
        message says what was expected where: "`score` in the value must be a
        number, not a string ("high")"."""
        obj = _unpack(self._bytes, lambda e: BadRequest(f"the value could not be read: {e}"))
        try:
            return _convert(obj, as_type, "", unknown=None)
        except _Problem as p:
            raise BadRequest(p.in_value()) from None

    def fields(self) -> list[tuple[str, Value]]:
        """Split a map into its entries, each value still MessagePack (types
        kept, byte for byte), without knowing its shape: how an object becomes
        hash fields or stream entry fields. Entries keep the value's order."""
        entries = _map_entries(self._bytes)
        if entries is None:
            self.decode(dict[str, Any])  # says why, in a client's words
            raise BadRequest("the value must be a map (an object) with string keys")
        return [(name, Value(raw)) for name, raw in entries]

    @overload
    def field(self, name: str) -> Any: ...
    @overload
    def field(self, name: str, as_type: type[T]) -> T: ...
    @overload
    def field(self, name: str, as_type: Any) -> Any: ...

    def field(self, name: str, as_type: Any = Any) -> Any:
        """One field of a map, decoded. A missing field is what `as_type` makes
        of null, as in the Rust SDK: `None` for `Optional[...]` and for the
        default `Any`, else a `BadRequest` naming it."""
        for key, value in self.fields():
            if key == name:
                obj = _unpack(value._bytes, lambda e: BadRequest(f"the value could not be read: {e}"))
                try:
                    return _convert(obj, as_type, name, unknown=None)
                except _Problem as p:
                    raise BadRequest(p.in_value()) from None
        if _is_optional(as_type):
            return None
        raise BadRequest(f"the value needs a `{name}` field")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Value) and other._bytes == self._bytes

    def __hash__(self) -> int:
        return hash(self._bytes)

    def __repr__(self) -> str:
        """As the value reads (`Value({'price': 64000.5})`), so a failed assertion shows it."""
        try:
            return f"Value({msgpack.unpackb(self._bytes, raw=False, strict_map_key=False)!r})"
        except Exception:
            return f"Value(invalid MessagePack {self._bytes.hex(' ')})"


def _plain(obj: Any) -> Any:
    """msgpack's fallback for what it does not know."""
    if isinstance(obj, Value):
        return msgpack.unpackb(obj.to_bytes(), raw=False, strict_map_key=False)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, int):  # msgpack hands over the ints it cannot hold
        raise OverflowError(
            f"{obj} is out of range: MessagePack holds whole numbers from {_S64[0]} to {_U64[1]}"
        )
    raise TypeError(f"{type(obj).__name__} is not a value (a {obj!r})")


def _unpack(data: bytes, err: Callable[[Exception], Error]) -> Any:
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as e:  # msgpack raises several kinds
        raise err(e) from None


def _map_entries(data: bytes) -> Optional[list[tuple[str, bytes]]]:
    """The entries of a map: string keys and the exact MessagePack of each value."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(data)
    try:
        n = unpacker.read_map_header()
        out = []
        for _ in range(n):
            key = unpacker.unpack()
            if not isinstance(key, str):
                return None
            start = unpacker.tell()
            unpacker.skip()
            out.append((key, data[start : unpacker.tell()]))
        return out
    except Exception:
        return None


# --- Shape checks, and what a person reads when one fails -------------------


class _Problem(Exception):
    """Where and why a decode failed, before it is said for a value, a reply or
    a settings table (the Rust SDK's `Problem`)."""

    def __init__(self, path: str, kind: str, expected: str = "", found: str = "") -> None:
        super().__init__(path, kind, expected, found)
        self.path, self.kind, self.expected, self.found = path, kind, expected, found

    def in_value(self) -> str:
        p = self.path
        at = (lambda what: f"the value {what}") if not p else (lambda what: f"`{p}` in the value {what}")
        if self.kind == "shape":
            if not p:
                return f"the value must be {self.expected} for this domain, not {self.found}"
            return at(f"must be {self.expected}, not {self.found}")
        if self.kind == "missing":
            return at(f"needs a `{self.expected}` field")
        return at(f"could not be read: {self.expected}")

    def in_named(self, subject: str) -> str:
        p = self.path
        at = (lambda what: f"{subject} {what}") if not p else (lambda what: f"`{p}` in {subject} {what}")
        if self.kind == "shape":
            return at(f"must be {self.expected}, not {self.found}")
        if self.kind == "missing":
            return at(f"needs a `{self.expected}` field")
        return at(f"could not be read: {self.expected}")

    def in_settings(self, table: str) -> str:
        p = self.path
        at = (lambda what: f"{table} {what}") if not p else (lambda what: f"setting `{p}` in {table} {what}")
        if self.kind == "shape":
            return at(f"must be {self.expected}, not {self.found}")
        if self.kind == "missing":
            return at(f"needs `{self.expected}`")
        return at(f"is wrong: {self.expected}")


def _found(obj: Any) -> str:
    """What a value is, in plain words: `a string ("x")`, `42`, `an array`."""
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if isinstance(obj, (int, float)):
        return repr(obj)
    if isinstance(obj, str):
        text = json.dumps(obj, ensure_ascii=False)
        raw = text.encode()
        if len(raw) > 40:
            text = raw[:37].decode(errors="ignore") + '…"'
        return f"a string ({text})"
    if isinstance(obj, list):
        return "an array"
    if isinstance(obj, dict):
        return "a map (an object)"
    if isinstance(obj, bytes):
        return "binary data"
    return "an extension value"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _is_optional(tp: Any) -> bool:
    return tp is Any or (
        typing.get_origin(tp) in (Union, types.UnionType) and type(None) in typing.get_args(tp)
    )


def _expected(tp: Any) -> str:
    """A Python type, as a person who writes JSON or TOML says it."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        ranges = [m[2] for m in tp.__metadata__ if isinstance(m, tuple) and len(m) == 3]
        return ranges[0] if ranges else _expected(typing.get_args(tp)[0])
    if tp is float:
        return "a number"
    if tp is int:
        return "a whole number"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    if tp is bytes:
        return "binary data"
    if tp is type(None):
        return "null"
    if tp in (list, tuple) or origin in (list, tuple):
        return "an array"
    if tp is dict or origin is dict or dataclasses.is_dataclass(tp):
        return "a map (an object)"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(f"`{m.value}`" for m in tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if set(args) == {int, float}:
            return "a number"
        return " or ".join(_expected(a) for a in args)
    return getattr(tp, "__name__", str(tp))


def _convert(obj: Any, tp: Any, path: str, *, unknown: Optional[list[str]]) -> Any:
    """`obj` (as msgpack decoded it) checked against `tp`; dataclasses are built.
    `unknown` collects map keys a dataclass does not read (settings refuse them)."""
    if tp is Any or tp is object:
        return obj
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Annotated:  # U32, U64, S64: an int, in range
        out = _convert(obj, args[0], path, unknown=unknown)
        for lo, hi, words in (m for m in tp.__metadata__ if isinstance(m, tuple) and len(m) == 3):
            if not lo <= out <= hi:
                raise _Problem(path, "shape", words, _found(obj))
        return out

    def wrong() -> _Problem:
        return _Problem(path, "shape", _expected(tp), _found(obj))

    if origin in (Union, types.UnionType):
        if obj is None and type(None) in args:
            return None
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:  # Optional[T]: what is wrong is T's
            return _convert(obj, rest[0], path, unknown=unknown)
        for arg in rest:
            try:
                return _convert(obj, arg, path, unknown=unknown)
            except _Problem:
                continue
        raise wrong()
    if tp is float:
        if isinstance(obj, (int, float)) and not isinstance(obj, bool):
            return float(obj)
        raise wrong()
    if tp is int:
        if isinstance(obj, int) and not isinstance(obj, bool):
            return obj
        raise wrong()
    if tp in (bool, str, bytes):
        if type(obj) is tp:
            return obj
        raise wrong()
    if tp is type(None):
        if obj is None:
            return None
        raise wrong()
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        for member in tp:
            if member.value == obj and type(member.value) is type(obj):
                return member
        raise wrong()
    if tp in (list, tuple) or origin in (list, tuple):
        if not isinstance(obj, list):
            raise wrong()
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(obj) != len(args):
                raise _Problem(path, "shape", "an array", f"{len(obj)} items")
            items = [
                _convert(o, a, f"{path}[{i}]", unknown=unknown)
                for i, (o, a) in enumerate(zip(obj, args))
            ]
            return tuple(items)
        item = args[0] if args else Any
        items = [_convert(o, item, f"{path}[{i}]", unknown=unknown) for i, o in enumerate(obj)]
        return tuple(items) if (tp is tuple or origin is tuple) else items
    if tp is dict or origin is dict:
        if not isinstance(obj, dict):
            raise wrong()
        vt = args[1] if len(args) == 2 else Any
        return {k: _convert(v, vt, _join(path, str(k)), unknown=unknown) for k, v in obj.items()}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(obj, dict):
            raise wrong()
        hints = typing.get_type_hints(tp, include_extras=True)
        kwargs: dict[str, Any] = {}
        known = set()
        for f in dataclasses.fields(tp):
            if not f.init:
                continue
            known.add(f.name)
            ftp = hints.get(f.name, Any)
            if f.name in obj:
                kwargs[f.name] = _convert(obj[f.name], ftp, _join(path, f.name), unknown=unknown)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                if not _is_optional(ftp):
                    raise _Problem(path, "missing", f.name)
                kwargs[f.name] = None
        if unknown is not None:
            unknown.extend(_join(path, str(k)) for k in obj if k not in known)
        return tp(**kwargs)
    raise TypeError(f"a value cannot be decoded as {tp!r}: use a bool, int, float, str, bytes, list, dict, Optional or a dataclass")


# --- For the other modules ----------------------------------------------------


def decode_named(data: bytes, as_type: Any, subject: str) -> Any:
    """Decode bytes that are not a client's (a reply Redis gave), saying what
    went wrong of `subject` as an `Internal` error: "`owner` in reply 0 of the
    read must be a string, not 5"."""
    obj = _unpack(data, lambda e: Internal(f"{subject} could not be read: {e}"))
    try:
        return _convert(obj, as_type, "", unknown=None)
    except _Problem as p:
        raise Internal(p.in_named(subject)) from None


def decode_settings(domain: str, data: bytes, settings_type: Any) -> Any:
    """Decode the settings table of `domain` into `settings_type` (a dataclass,
    or `dict` to take any table), refusing settings it does not read: a typo
    must not silently leave a default in place."""
    table = f"[domains.{domain}.settings]"
    obj = _unpack(data or b"\x80", lambda e: BadConfig(f"{table} could not be read: {e}"))
    if dataclasses.is_dataclass(settings_type) and isinstance(obj, dict):
        names = [f.name for f in dataclasses.fields(settings_type) if f.init]
        if not names and obj:
            first = next(iter(obj))
            raise BadConfig(f"unknown setting `{first}` in {table}: this policy takes no settings")
    unknown: list[str] = []
    try:
        settings = _convert(obj, settings_type, "", unknown=unknown)
    except _Problem as p:
        raise BadConfig(p.in_settings(table)) from None
    if unknown:
        names = ", ".join(f"`{u}`" for u in unknown)
        raise BadConfig(f"unknown setting {names} in {table}: this policy does not read it (a typo?)")
    return settings
