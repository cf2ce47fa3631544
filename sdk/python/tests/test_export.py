"""The glue `export` builds, driven natively with the contract's types, as the
gateway drives it in the component."""

from dataclasses import dataclass

import pytest
from componentize_py_types import Err, Ok
from wit_world.imports import types as wit

from sluice_policy import (
    BadRequest, Delete, Domain, Get, Internal, LogLevel, NoSettings, Operation, Plan, Policy,
    Replies, Request, Set, export, log,
)
from sluice_policy.value import Value


@dataclass
class EchoSettings:
    n: int


class Echo(Policy[EchoSettings]):
    Settings = EchoSettings

    def plan(self, req: Request) -> Plan:
        key = self.domain.key(req.key)
        if req.operation is Operation.DELETE:  # delete only what holds 42: read first
            return Plan.read().respond_with(Get(key))
        if req.operation is Operation.PUBLISH:  # misplaced writes, refused at the boundary
            return Plan.read().then(Delete(key) if req.key == "write" else Get(key))
        if req.key == "boom":
            raise ValueError("boom")
        return Plan().respond_with(Set(key, req.value(), ttl_ms=self.settings.n))

    def plan_after_read(self, req: Request, replies: Replies) -> Plan:
        stored = replies.decode(0, int)
        if req.operation is Operation.PUBLISH:
            return Plan.read()
        return Plan().then(Delete(self.domain.key(req.key))).atomic() if stored == 42 else Plan()


def domain(settings: bytes) -> wit.Domain:
    return wit.Domain("d", 60_000, 1_000, 86_400_000, settings)


def request(key: str, op: wit.Operation, value: bytes | None = None) -> wit.Request:
    return wit.Request(key, op, value, [], None, 0, 0, wit.AccessStats(0, 0, 0, 0, 0.0))


def put(key: str = "k") -> wit.Request:
    return request(key, wit.Operation.PUT, b"\x2a")


def error_of(call) -> wit.PolicyError:
    with pytest.raises(Err) as e:
        call()
    return e.value.value


def test_the_export_configures_once_and_plans_with_the_instance():
    world = export(Echo)()
    assert error_of(lambda: world.plan(put())) == wit.PolicyError_Internal("plan was called before configure")
    assert world.plan_batch([put()]) == [Err(wit.PolicyError_Internal("plan_batch was called before configure"))]
    typo = Value.encode({"m": 1}).to_bytes()
    assert error_of(lambda: world.configure(domain(typo))) == wit.PolicyError_BadConfig("[domains.d.settings] needs `n`")
    world.configure(domain(Value.encode({"n": 7}).to_bytes()))
    run = world.plan(put())
    assert isinstance(run, wit.Decision_Run) and run.value.respond == 0
    assert run.value.actions == [wit.Action_Set(wit.StringSet("d:k", b"\x2a", 7))]

    # A batch: one answer per request, in order, each on its own.
    batch = world.plan_batch([put(), request("j", wit.Operation.GET), request("k", wit.Operation.DELETE),
                              request("write", wit.Operation.PUBLISH), put("boom")])
    assert isinstance(batch[0], Ok) and isinstance(batch[2].value, wit.Decision_Read)
    assert batch[1] == Err(wit.PolicyError_BadRequest("this operation needs a value"))
    assert 'action 0 (delete "d:write") writes' in batch[3].value.value
    assert batch[4] == Err(wit.PolicyError_Internal("ValueError: boom"))
    assert world.plan_batch([]) == []

    # Read, then write with what was read.
    read = world.plan(request("k", wit.Operation.DELETE))
    assert isinstance(read, wit.Decision_Read) and read.value.actions == [wit.Action_Get(wit.StringGet("d:k"))]
    write = world.plan_after_read(request("k", wit.Operation.DELETE), [b"\x2a"])
    assert write.atomic and write.actions == [wit.Action_Delete(wit.KeyDelete("d:k"))]
    assert world.plan_after_read(request("k", wit.Operation.DELETE), [None]).actions == []
    misfit = error_of(lambda: world.plan_after_read(request("k", wit.Operation.DELETE), [b"\xa1a"]))
    assert misfit.value.startswith("reply 0 of the read")
    again = error_of(lambda: world.plan_after_read(request("k", wit.Operation.PUBLISH), [None]))
    assert "at most two rounds" in again.value


def test_an_exception_is_an_internal_error_with_its_traceback_in_the_log(capsys):
    world = export(Echo)()
    world.configure(domain(Value.encode({"n": 1}).to_bytes()))
    assert error_of(lambda: world.plan(put("boom"))) == wit.PolicyError_Internal("ValueError: boom")
    logged = capsys.readouterr().err
    assert logged.startswith("[Error] Traceback") and 'raise ValueError("boom")' in logged
    assert isinstance(world.plan(put()), wit.Decision_Run), "the instance serves on"


class Plain(Policy):
    def plan(self, req: Request) -> Plan:
        return Plan().respond_with(Get(req.key))


def test_a_policy_that_plans_no_reads_needs_no_plan_after_read():
    plain = Plain.from_settings(Domain.named("d"))
    assert isinstance(plain.settings, NoSettings)
    with pytest.raises(Internal, match="no plan_after_read"):
        plain.plan_after_read(Request.get("k"), Replies())
    a, b = plain.plan_batch([Request.get("a"), Request.get("b")])
    assert (a.response.key, b.response.key) == ("a", "b")


def test_a_domain_names_its_keys_and_keeps_ttls_in_ms():
    d = Domain.named("cache").with_ttl_s(5, 1, 60)
    assert d.key("user:1") == "cache:user:1"
    assert (d.ttl_ms, d.min_ttl_ms, d.max_ttl_ms) == (5_000, 1_000, 60_000)


def test_errors_read_as_the_rust_sdks(capsys):
    assert str(BadRequest("no")) == "bad request: no"
    assert BadRequest("x") == BadRequest("x") != Internal("x")
    log(LogLevel.INFO, "hello")
    assert capsys.readouterr().err == "[Info] hello\n"
