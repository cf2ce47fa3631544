"""Plans and actions: what a policy builds is what reaches the contract."""

import math

import pytest
from wit_world.imports import types as wit

from sluice_policy import (
    CounterAdd, CounterGet, Delete, Expire, Get, HashAdd, HashDelete, HashGet, HashSet, Internal,
    KeyTtl, ListEnd, ListPush, ListRange, ListRemove, Plan, ScoredMember, Script, Set, SetAdd,
    SetContains, SetCount, SetIfAbsent, SetMembers, SetRemove, StreamAdd, Value, ZsetAdd,
    ZsetCondition, ZsetCount, ZsetIncr, ZsetRange, ZsetRemove, ZsetScore, ZsetTrim,
)


def test_the_response_is_the_action_its_handle_names_whatever_the_order():
    plan = Plan()
    read = plan.add(Get("d:a"))
    plan.add(Get("d:b"))
    plan.respond(read)
    assert plan.response == Get("d:a")
    assert plan.to_wit().respond == 0
    assert Plan().then(Get("d:a")).respond_with(Get("d:b")).response == Get("d:b")
    assert Plan().then(Get("d:a")).response is None


def test_values_are_encoded_as_the_action_is_added_and_values_pass_through():
    v = Value.encode("hello")
    plan = Plan().then(Set("d:a", 42, ttl_ms=5_000)).then(Set("d:b", v)).then(Script("bump", keys=["d:a"], args=[1, 2]))
    a, b, s = plan.actions
    assert a.value.decode(int) == 42 and a.ttl_ms == 5_000
    assert b.value == v and b.ttl_ms is None
    assert s.keys == ["d:a"] and s.args[1].decode(int) == 2 and s.key == "d:a"
    assert plan.to_wit().actions[2] == wit.Action_Script(wit.ScriptCall("bump", ["d:a"], [b"\x01", b"\x02"]))


def test_an_action_that_cannot_be_built_fails_the_plan_when_exported():
    plan = Plan().respond_with(Set("d:a", object()))
    assert isinstance(plan.error, Internal) and "encoded" in plan.error.message
    with pytest.raises(Internal):
        plan.to_wit()
    limited = Plan().respond_with(ZsetRange("d:z", ZsetRange.rank("d:z", 0, 9).bounds, limit=3))
    with pytest.raises(Internal, match="score ranges"):
        limited.to_wit()
    with pytest.raises(Internal, match="score bounds are"):
        Plan().respond_with(ZsetRange.score("d:z", 10.0, 1.0).rev()).to_wit()
    foreign = Plan().respond(Plan().then(Get("d:x")).add(Get("d:a")))
    with pytest.raises(Internal, match="a step of another plan"):
        foreign.to_wit()
    assert Plan().then(Set("d:a", 1, ttl_ms=-1)).error == Internal(
        'Set of "d:a" with ttl_ms=-1: it must be a whole number, 0 or more'
    )


def test_a_read_plan_is_a_read_decision_and_may_not_write():
    assert isinstance(Plan().respond_with(Get("d:a")).to_decision(), wit.Decision_Run)
    read = Plan.read().then(Get("d:a")).respond_with(ZsetRange.rank("d:z", 0, 9))
    assert read.is_read and all(a.is_read for a in read.actions)
    decision = read.to_decision()
    assert isinstance(decision, wit.Decision_Read) and decision.value.respond == 1
    with pytest.raises(Internal) as e:
        Plan.read().then(Get("d:a")).then(Script("bump", keys=["d:a"])).to_decision()
    assert e.value.message == (
        'a read plan (Plan.read()) may only read, but action 1 (script "d:a") writes; the writes go '
        "in the plan plan_after_read returns. Reads: get, hash-get, zset-range, zset-score, zset-count, "
        "set-contains, set-members, set-count, list-range, key-ttl, counter-get"
    )


def test_the_reads_of_contract_0_3_are_reads_and_its_writes_are_not():
    reads = [
        Get("d:a"), HashGet("d:h"), ZsetRange.rank("d:z", 0, 9), ZsetScore("d:z", "m"), ZsetCount("d:z"),
        SetContains("d:s", "m"), SetMembers("d:s", 10), SetCount("d:s"), ListRange.first("d:l", 10),
        KeyTtl("d:a"), CounterGet("d:c"),
    ]
    plan = Plan.read()
    for r in reads:
        plan.then(r)
    assert [a.op for a in plan.actions] == [
        "get", "hash-get", "zset-range", "zset-score", "zset-count", "set-contains",
        "set-members", "set-count", "list-range", "key-ttl", "counter-get",
    ]
    assert len(plan.to_decision().value.actions) == 11
    writes = [
        Set("d:a", 1), Delete("d:a"), Expire("d:a", 1), HashSet("d:h", {"f": 1}), StreamAdd("d:x", {"f": 1}),
        ZsetAdd("d:z", "m", 1.0), ZsetIncr("d:z", "m", 1.0), ZsetTrim("d:z", 0, 1), SetAdd("d:s", ["m"]),
        Script("s", keys=["d:a"]), CounterAdd("d:c", 1), SetIfAbsent("d:a", 1), HashDelete("d:h", ["f"]),
        HashAdd("d:h", "f", 1), SetRemove("d:s", ["m"]), ZsetRemove("d:z", ["m"]), ListPush.head("d:l", [1]),
        ListRemove.all("d:l", 1),
    ]
    for w in writes:
        assert not w.is_read, w.op
        with pytest.raises(Internal, match=f"\\({w.op} "):
            Plan.read().then(w).to_decision()
        assert Plan().then(w).to_decision(), w.op  # and each reaches the contract


def test_sorted_set_options_are_named_and_reach_the_contract():
    plan = (
        Plan()
        .then(ZsetAdd("d:z", "ann", 12.0).if_greater())
        .then(ZsetTrim.keep_highest("d:z", 100))
        .respond_with(ZsetRange.score("d:z", 0.0, math.inf, limit=5).rev())
        .atomic()
    )
    add, trim, _ = plan.actions
    assert add.condition is ZsetCondition.IF_GREATER and add.members == [ScoredMember("ann", 12.0)]
    assert (trim.start, trim.stop) == (0, -101)
    out = plan.to_wit()
    assert out.atomic
    assert out.actions[2] == wit.Action_ZsetRange(wit.ZsetRange("d:z", wit.ZsetBounds_Score((0.0, math.inf)), True, 5))
    assert out.actions[0].value.condition is wit.ZsetCondition.IF_GREATER


def test_counters_hashes_sets_and_lists_check_their_options_as_the_rust_sdk_does():
    def err(action) -> str:
        e = Plan().then(action).error
        assert isinstance(e, Internal), action
        return e.message

    assert err(CounterAdd("d:c", 1, cap=2.5)) == (
        "CounterAdd by 1 with cap=2.5: an int counter's cap is whole; for a float counter, add a float"
    )
    assert "finite" in err(CounterAdd("d:c", math.nan)) and "finite" in err(CounterAdd("d:c", 1.0, cap=math.inf))
    assert err(HashDelete("d:h", [])) == 'HashDelete of "d:h" with no fields: it needs one at least'
    assert "finite" in err(HashAdd("d:h", "n", math.nan))
    assert "no members" in err(SetRemove("d:s", [])) and "no members" in err(ZsetRemove("d:z", []))
    assert "count of 0" in err(SetMembers("d:s", 0)) and "count of 0" in err(ListRange.first("d:l", 0))
    assert err(ListPush.head("d:l", [])) == 'ListPush of "d:l" with no values: it needs one at least'
    assert "keep=0" in err(ListPush.tail("d:l", [1], keep=0))
    with pytest.raises(TypeError, match="not the string"):
        HashGet("d:h", fields="price")

    out = Plan().then(CounterAdd("d:c", -2, cap=-10, ttl_ms=5_000)).then(HashAdd("d:h", "n", 2.5)).to_wit()
    assert out.actions[0] == wit.Action_CounterAdd(wit.CounterAdd("d:c", wit.Number_Int(-2), wit.Number_Int(-10), 5_000))
    assert out.actions[1].value.by == wit.Number_Float(2.5)
    pushed = Plan().then(ListPush.head("d:l", [1, 2], keep=3, ttl_ms=4_000)).then(ListRemove("d:l", "x", -2)).to_wit()
    assert pushed.actions[0] == wit.Action_ListPush(wit.ListPush("d:l", [b"\x01", b"\x02"], wit.ListEnd.HEAD, 3, 4_000))
    assert pushed.actions[1] == wit.Action_ListRemove(wit.ListRemove("d:l", b"\xa1x", -2))
    assert ListRange.last("d:l", 5) == ListRange("d:l", -5, 5) and ListPush.tail("d:l", [1]).end is ListEnd.TAIL
