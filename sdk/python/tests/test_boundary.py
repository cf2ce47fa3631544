"""Nothing a policy builds crosses the boundary unchecked: a value the contract's
types do not hold would trap the instance (an opaque 500, the instance killed),
so it is an `Internal` error naming the action and the option, in the guarded
export path."""

from dataclasses import dataclass
from typing import Any, Optional

import pytest
from componentize_py_types import Err, Ok
from wit_world.imports import types as wit

from sluice_policy import (
    BadConfig, BadRequest, CacheHint, CounterAdd, Get, HashAdd, HashGet, HashSet, Internal,
    Plan, Policy, Request, Script, SetAdd, SetContains, StreamAdd, Value, ZsetAdd, ZsetIncr,
    ZsetRange, ZsetScore, ZsetTrim, export,
)
from sluice_policy.actions import Score
from sluice_policy.value import decode_settings


def refused(plan: Plan) -> str:
    with pytest.raises(Internal) as e:
        plan.to_wit()
    return e.value.message


def test_a_plans_ttl_and_cache_hint_are_u64s():
    assert refused(Plan().ttl_ms(-1)) == "the plan's ttl_ms=-1: it must be a whole number, 0 or more"
    assert refused(Plan().ttl_ms(1.5)) == "the plan's ttl_ms=1.5: it must be a whole number, 0 or more"
    assert "ttl_ms=18446744073709551616" in refused(Plan().ttl_ms(2**64))
    assert refused(Plan().cache(CacheHint(True, -5))) == (
        "the plan's cache's max_stale_ms=-5: it must be a whole number, 0 or more"
    )
    assert "CacheHint(keep=True or False" in refused(Plan().cache(CacheHint("yes")))
    out = Plan().ttl_ms(2**64 - 1).cache(CacheHint(True, 0)).to_wit()
    assert (out.ttl_ms, out.cache) == (2**64 - 1, wit.CacheHint(True, 0))


def test_a_counters_cap_is_an_s64_as_its_amount():
    assert Plan().then(CounterAdd("d:c", 1, cap=2**63)).error == Internal(
        "CounterAdd with cap=9223372036854775808: it must be a whole number "
        "from -9223372036854775808 to 9223372036854775807"
    )
    assert Plan().then(CounterAdd("d:c", 1, cap=-(2**63) - 1)).error is not None
    assert Plan().then(CounterAdd("d:c", 1, cap=2**63 - 1)).to_wit().actions[0].value.cap == wit.Number_Int(2**63 - 1)


def test_keys_members_and_names_are_strings_and_never_converted():
    def err(action) -> str:
        e = Plan().then(action).error
        assert isinstance(e, Internal), action
        return e.message

    assert err(Get(42)) == "Get with key=42: it must be a string"
    assert err(Get(b"k")) == "Get with key=b'k': it must be a string"
    assert err(ZsetAdd("d:z", 42, 1.0)) == 'ZsetAdd of "d:z" with members[0].member=42: it must be a string'
    assert err(ZsetAdd("d:z", members=[("m", "1.5")])) == (
        'ZsetAdd of "d:z" with members[0].score=\'1.5\': it must be a number'
    )
    assert err(SetContains("d:s", 42)) == 'SetContains of "d:s" with member=42: it must be a string'
    assert "member=None" in err(ZsetScore("d:z", None))
    assert "member=7" in err(ZsetIncr("d:z", 7, 1.0)) and "by='1'" in err(ZsetIncr("d:z", "m", "1"))
    assert err(HashAdd("d:h", 7, 1)) == 'HashAdd of "d:h" with field=7: it must be a string'
    assert err(Script(42, keys=["d:a"])) == 'Script of "d:a" with name=42: it must be a string'
    assert err(Script("s", keys=["d:a", 1])) == 'Script of "d:a" with keys[1]=1: it must be a string'
    assert err(HashGet("d:h", [b"price"])) == "HashGet of \"d:h\" with fields[0]=b'price': it must be a string"
    assert err(SetAdd("d:s", ["a", 2])) == 'SetAdd of "d:s" with members[1]=2: it must be a string'
    assert err(HashSet("d:h", {b"price": 1})) == "HashSet of \"d:h\" with field name=b'price': it must be a string"
    assert err(StreamAdd("d:x", [(1, "v")])) == 'StreamAdd of "d:x" with field name=1: it must be a string'
    assert err(StreamAdd(7, {"f": 1})) == "StreamAdd with stream=7: it must be a string"
    assert "reverse='yes'" in err(ZsetRange("d:z", Score(0.0, 1.0), reverse="yes"))
    assert "min='0'" in err(ZsetRange("d:z", Score("0", 1.0)))
    assert Plan().then(HashSet("d:h", {"price": 1})).then(ZsetAdd("d:z", "m", 2)).error is None


def test_a_value_is_made_of_bytes_only():
    with pytest.raises(TypeError, match=r"Value takes MessagePack bytes, not int \(5\)"):
        Value(5)
    with pytest.raises(TypeError, match="not int"):
        Value(10**12)  # not a terabyte of zeros
    assert Value(bytearray(b"\x2a")).decode() == 42 and Value(memoryview(b"\xc0")).decode() is None


def test_a_sorted_set_member_needs_its_score():
    with pytest.raises(TypeError, match="takes a member with its score"):
        ZsetAdd("d:z", "m")
    with pytest.raises(TypeError, match="takes a member with its score"):
        ZsetAdd("d:z", score=1.0)
    assert ZsetAdd("d:z", "m", 0).members[0].score == 0


def test_keep_highest_and_lowest_take_a_u32():
    words = "it must be a whole number from 0 to 4294967295"
    assert Plan().then(ZsetTrim.keep_highest("d:z", -5)).error == Internal(f'ZsetTrim of "d:z" with n=-5: {words}')
    assert Plan().then(ZsetTrim.keep_lowest("d:z", 2**32)).error is not None
    assert Plan().then(ZsetTrim.keep_highest("d:z", 1.5)).error is not None
    kept = Plan().then(ZsetTrim.keep_highest("d:z", 0)).then(ZsetTrim.keep_lowest("d:z", 3)).to_wit().actions
    assert kept == [wit.Action_ZsetTrim(wit.ZsetTrim("d:z", 0, -1)), wit.Action_ZsetTrim(wit.ZsetTrim("d:z", 3, -1))]


class Batch(Policy):
    def plan(self, req: Request) -> Plan:
        return Plan().respond_with(Get(req.key))

    def plan_batch(self, requests: list[Request]) -> list[Any]:
        return [None, Plan().ttl_ms(-1), BadRequest(42), self.plan(requests[3])]


def test_a_batch_checks_each_plan_as_a_single_plan_is_checked():
    world = export(Batch)()
    world.configure(wit.Domain("d", 60_000, 1_000, 86_400_000, b"\x80"))
    req = wit.Request("k", wit.Operation.GET, None, [], None, 0, 0, wit.AccessStats(0, 0, 0, 0, 0.0))
    a, b, c, d = world.plan_batch([req] * 4)
    assert a == Err(wit.PolicyError_Internal("plan_batch, for request 0, returned None, not a Plan"))
    assert b == Err(wit.PolicyError_Internal("the plan's ttl_ms=-1: it must be a whole number, 0 or more"))
    assert c == Err(wit.PolicyError_BadRequest("42")), "an error's message crosses as a string"
    assert isinstance(d, Ok)


def test_an_int_msgpack_cannot_hold_is_said_to_be_out_of_range():
    with pytest.raises(Internal) as e:
        Value.encode({"n": 2**64})
    assert e.value.message == (
        "a value could not be encoded as MessagePack: 18446744073709551616 is out of range: "
        "MessagePack holds whole numbers from -9223372036854775808 to 18446744073709551615"
    )
    with pytest.raises(Internal, match="-9223372036854775809 is out of range"):
        Value.encode(-(2**63) - 1)
    assert Value.encode(2**64 - 1).decode() == 2**64 - 1


def test_a_missing_field_is_what_its_type_makes_of_null():
    v = Value.encode({"a": 1})
    assert v.field("b") is None and v.field("b", Optional[int]) is None
    assert "`Any`" in (Value.field.__doc__ or ""), "the doc says so, as the Rust SDK's `field` does"
    with pytest.raises(BadRequest):
        v.field("b", int)


def test_a_setting_may_be_range_checked_at_load():
    from sluice_policy import U32

    @dataclass
    class Limits:
        limit: U32
        floor: Optional[U32] = None

    assert decode_settings("d", Value.encode({"limit": 5}).to_bytes(), Limits) == Limits(5)
    with pytest.raises(BadConfig) as e:
        decode_settings("d", Value.encode({"limit": -1}).to_bytes(), Limits)
    assert e.value.message == "setting `limit` in [domains.d.settings] must be a whole number from 0 to 4294967295, not -1"
    with pytest.raises(BadConfig, match="`floor` .* not 4294967296"):
        decode_settings("d", Value.encode({"limit": 1, "floor": 2**32}).to_bytes(), Limits)
    with pytest.raises(BadConfig, match="must be a whole number, not 1.5"):
        decode_settings("d", Value.encode({"limit": 1.5}).to_bytes(), Limits)
