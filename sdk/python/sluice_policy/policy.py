"""The policy base class, its domain, and the glue that exports it as the
component's `sluice:policy` world."""

from __future__ import annotations

import dataclasses
import enum
import sys
import traceback
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Optional, TypeVar, Union

import wit_world
from componentize_py_types import Err, Ok
from wit_world.imports import log as wit_log
from wit_world.imports import types as wit

from .errors import BadConfig, BadRequest, Error, Internal
from .plan import Plan
from .request import AccessStats, Operation, Replies, Request
from .value import Value, decode_settings

S = TypeVar("S")


@dataclass(frozen=True)
class Domain:
    """The domain an instance serves, as the gateway's configuration names it."""

    #: `[a-z0-9_-]{1,64}`; the domain's keys live under `{name}:`.
    name: str
    #: The TTL of a write that names none (`ttl_s`), ms.
    ttl_ms: int = 60_000
    #: The least and most TTL the host lets a key have (`min_ttl_s`, `max_ttl_s`), ms.
    min_ttl_ms: int = 1_000
    max_ttl_ms: int = 86_400_000

    @staticmethod
    def named(name: str) -> Domain:
        """A domain with the gateway's default TTLs (60 s, within 1 s..=86 400 s), for tests."""
        return Domain(name)

    def with_ttl_s(self, ttl_s: int, min_ttl_s: int, max_ttl_s: int) -> Domain:
        """The same domain with `ttl_s`, `min_ttl_s` and `max_ttl_s` as a configuration writes them."""
        return dataclasses.replace(self, ttl_ms=ttl_s * 1000, min_ttl_ms=min_ttl_s * 1000, max_ttl_ms=max_ttl_s * 1000)

    def key(self, key: str) -> str:
        """`{name}:{key}`: the Redis key of a client's key in this domain's
        namespace (the only keys the host lets a plan touch, with the domain's
        declared `prefixes`)."""
        return f"{self.name}:{key}"


@dataclass(frozen=True)
class NoSettings:
    """The settings of a policy that has none: a `[settings]` table with
    anything in it is refused at load, naming the first setting."""


class Policy(Generic[S]):
    """A domain policy. Subclass it, set `Settings` to a dataclass of your
    settings (fields without a default are required; `Optional[...]` ones may be
    absent; a setting the dataclass does not read is refused, so a typo is an
    error at load rather than a default silently kept), and write `plan`.
    Export it at the end of `policy.py` with `WitWorld = export(MyPolicy)`.

    The gateway builds one instance per warm slot: `MyPolicy()` (no arguments),
    then `configure(domain, settings)` once, then `plan` per request."""

    #: The policy's settings type: a dataclass, `NoSettings` for none, or
    #: `dict` to take any table as it is.
    Settings: ClassVar[Any] = NoSettings

    domain: Domain
    settings: S

    def configure(self, domain: Domain, settings: S) -> None:
        """Build the instance, once, before it serves (at load and at every
        reload). The default keeps both as `self.domain` and `self.settings`.
        Raise `BadConfig` (e.g. a setting out of range) to refuse the domain:
        the old version keeps serving."""
        self.domain = domain
        self.settings = settings

    def plan(self, request: Request) -> Plan:
        """Decide what to do with one request: a plan that runs (`Plan()`), or
        one that reads first (`Plan.read()`), after which `plan_after_read`
        decides the writes. Raise `BadRequest` for a request that makes no sense."""
        raise NotImplementedError(f"{type(self).__name__} has no plan method")

    def plan_after_read(self, request: Request, replies: Replies) -> Plan:
        """The second round of a read-then-write: `plan` answered with a
        `Plan.read()`, the gateway ran it, and `replies` holds each of its
        actions' replies, in order. The plan returned runs (it may not read
        again) as one transaction under `WATCH` of the keys read; when another
        writer changed one in between, both rounds run again, so this may be
        called more than once per request. The default refuses."""
        raise Internal("this policy planned a read (Plan.read()) but has no plan_after_read to plan the writes")

    def plan_batch(self, requests: list[Request]) -> list[Union[Plan, Error]]:
        """`plan` for each request of a batch (an mget's keys, an mset's items),
        answered in one call across the boundary: one plan or error per
        request, in order. The default asks `plan` for each, so one request's
        failure fails only that request."""
        out: list[Union[Plan, Error]] = []
        for req in requests:
            try:
                out.append(self.plan(req))
            except Error as e:
                out.append(e)
            except Exception as e:  # noqa: BLE001 - the glue's rule, per request
                out.append(_internal(e))
        return out

    @classmethod
    def from_settings(cls, domain: Domain, settings: Union[dict[str, Any], Value, bytes, None] = None) -> Any:
        """Build the instance as the gateway does: `settings` (a dict, or the
        gateway's MessagePack) is decoded into `Settings`, with errors that name
        the setting, then `configure` runs. For tests."""
        raw = settings.to_bytes() if isinstance(settings, Value) else (
            settings if isinstance(settings, bytes) else Value.encode(settings or {}).to_bytes()
        )
        policy = cls()
        policy.configure(domain, decode_settings(domain.name, raw, cls.Settings))
        return policy


# --- The log ------------------------------------------------------------------


class LogLevel(enum.Enum):
    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4


#: Inside the component: the `log` import is the only output a policy has.
IN_WASM = sys.platform == "wasi"


def log(level: LogLevel, message: str) -> None:
    """Write a line to the gateway's log, tagged with the plugin's name (a
    policy has no stdio: `print` goes here too, at INFO). Natively (tests) the
    line goes to standard error."""
    if IN_WASM:
        wit_log.log(wit_log.Level(level.value), message)
    else:
        print(f"[{level.name.capitalize()}] {message}", file=sys.stderr)


class _LogLines:
    """stdout or stderr inside the component: each line becomes a log line (the
    gateway's stdout and stderr trap the instance)."""

    def __init__(self, level: LogLevel) -> None:
        self.level, self.pending = level, ""

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            log(self.level, line)
        return len(text)

    def flush(self) -> None:
        if self.pending:
            log(self.level, self.pending)
            self.pending = ""

    def isatty(self) -> bool:
        return False


_STDOUT, _STDERR = _LogLines(LogLevel.INFO), _LogLines(LogLevel.WARN)


def _internal(e: BaseException) -> Internal:
    """An exception the policy did not mean: its traceback to the log, its name
    and message to the gateway (a 500 naming the plugin)."""
    log(LogLevel.ERROR, "".join(traceback.format_exception(e)).rstrip())
    return Internal(f"{type(e).__name__}: {e}")


def _wit_error(e: Error) -> wit.PolicyError:
    message = e.message if isinstance(e.message, str) else repr(e.message)  # a string crosses
    if isinstance(e, BadRequest):
        return wit.PolicyError_BadRequest(message)
    if isinstance(e, BadConfig):
        return wit.PolicyError_BadConfig(message)
    return wit.PolicyError_Internal(message)


def _request(r: wit.Request) -> Request:
    s = r.stats
    return Request(
        key=r.key,
        operation=Operation[r.operation.name],
        payload=None if r.value is None else Value(r.value),
        fields=list(r.fields),
        ttl_ms=r.ttl_ms,
        now_ms=r.now_ms,
        entropy=r.entropy,
        stats=AccessStats(s.hits, s.misses, s.writes, s.last_read_ms, s.read_rate),
    )


def _plan_of(what: str, plan: Any) -> Plan:
    if not isinstance(plan, Plan):
        raise Internal(f"{what} returned {plan!r}, not a Plan")
    return plan


def export(policy_cls: type[Policy[Any]]) -> type[wit_world.WitWorld]:
    """The component's implementation of the `sluice:policy` world, for
    `WitWorld = export(MyPolicy)` at the end of `policy.py` (componentize-py
    looks for `WitWorld` there). Every call is wrapped: an `Error` becomes the
    contract's `policy-error`, any other exception an internal error with its
    traceback in the gateway's log (an exception that escaped would trap the
    instance), and stdout/stderr are routed to the log."""

    slot: list[Policy[Any]] = []  # the instance `configure` built (one per component instance)

    def guarded(call: Any) -> Any:
        if IN_WASM and sys.stdout is not _STDOUT:
            sys.stdout, sys.stderr = _STDOUT, _STDERR
        try:
            return call()
        except Error as e:
            raise Err(_wit_error(e)) from None
        except BaseException as e:  # noqa: BLE001 - nothing may escape into the host
            raise Err(_wit_error(_internal(e))) from None
        finally:
            if IN_WASM:
                _STDOUT.flush()
                _STDERR.flush()

    def instance(what: str) -> Policy[Any]:
        if not slot:
            raise Internal(f"{what} was called before configure")
        return slot[0]

    class WitWorld(wit_world.WitWorld):
        def configure(self, domain: wit.Domain) -> None:
            d = Domain(domain.name, domain.ttl_ms, domain.min_ttl_ms, domain.max_ttl_ms)
            built = guarded(lambda: policy_cls.from_settings(d, domain.settings))
            slot[:] = [built]

        def plan(self, request: wit.Request) -> wit.Decision:
            req = _request(request)
            return guarded(lambda: _plan_of("plan", instance("plan").plan(req)).to_decision())

        def plan_after_read(self, request: wit.Request, replies: list[Optional[bytes]]) -> wit.Plan:
            req, read = _request(request), Replies(None if r is None else Value(r) for r in replies)

            def after() -> wit.Plan:
                plan = _plan_of("plan_after_read", instance("plan_after_read").plan_after_read(req, read))
                if plan.is_read:
                    raise Internal(
                        "plan_after_read answered with a read plan (Plan.read()): a read-then-write "
                        "has at most two rounds, so the plan after a read runs (Plan())"
                    )
                return plan.to_wit()

            return guarded(after)

        def plan_batch(self, requests: list[wit.Request]) -> list[Any]:
            reqs = [_request(r) for r in requests]
            try:
                plans = guarded(lambda: instance("plan_batch").plan_batch(reqs))
            except Err as e:
                return [e for _ in reqs]
            if not isinstance(plans, list) or len(plans) != len(reqs):
                n = len(plans) if isinstance(plans, list) else plans
                why = Err(_wit_error(Internal(f"plan_batch answered {n} plans for {len(reqs)} requests: one each, in order")))
                return [why for _ in reqs]
            out: list[Any] = []
            for i, p in enumerate(plans):
                if isinstance(p, Error):
                    out.append(Err(_wit_error(p)))
                    continue
                try:
                    out.append(Ok(guarded(lambda: _plan_of(f"plan_batch, for request {i},", p).to_decision())))
                except Err as e:
                    out.append(e)
            return out

    WitWorld.__qualname__ = f"export({policy_cls.__name__})"
    return WitWorld
