import pytest

from policy import PriceHash
from sluice_policy import BadRequest, Delete, Domain, HashGet, HashSet, Plan, Request


def plan(req: Request) -> Plan:
    return PriceHash.from_settings(Domain.named("price")).plan(req)


def test_put_replaces_the_hash_atomically_with_typed_fields():
    obj = {"price": 64000.5, "ts": 1.7e12}
    put = plan(Request.put("btc:usd", obj).with_ttl_ms(5_000))
    assert put.is_atomic, "DEL + HSET must not be seen half-done"
    delete, hset = put.actions
    assert delete == Delete("price:btc:usd")
    assert isinstance(hset, HashSet) and hset.key == "price:btc:usd"
    assert hset.ttl_ms == 5_000
    assert dict(hset.fields)["price"].decode(float) == 64000.5
    assert put.response is None


def test_get_reads_all_fields_or_only_those_asked_for():
    assert plan(Request.get("btc:usd")).response == HashGet("price:btc:usd")
    some = plan(Request.get("btc:usd").with_fields(["price", "ts"]))
    assert some.response == HashGet("price:btc:usd", fields=["price", "ts"])


def test_a_value_that_is_not_an_object_is_a_bad_request_in_plain_words():
    with pytest.raises(BadRequest) as e:
        plan(Request.put("btc:usd", 42))
    assert e.value == BadRequest("the value must be a map (an object) for this domain, not 42")
    with pytest.raises(BadRequest):
        plan(Request.put("btc:usd", {}))
