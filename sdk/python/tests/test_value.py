"""Values, settings and replies: decoded to Python objects, refused in a client's words."""

from dataclasses import dataclass, field
from typing import Optional

import pytest

from sluice_policy import BadConfig, BadRequest, Internal, NoSettings, Replies, Request, Value
from sluice_policy.value import decode_settings


def test_a_value_decodes_to_python_objects_and_refuses_the_wrong_shape():
    price = Value.encode({"asset": "btc", "fiat": "usd"})
    assert price.decode() == {"asset": "btc", "fiat": "usd"}
    assert price.field("asset", str) == "btc"
    assert len(price.fields()) == 2
    with pytest.raises(BadRequest) as e:
        price.decode(float)
    assert str(e.value) == "bad request: the value must be a number for this domain, not a map (an object)"
    assert Value.encode(2).decode(float) == 2.0, "a whole number is a number"
    with pytest.raises(BadRequest, match=r"^bad request: the value must be a whole number for this domain, not 1\.5$"):
        Value.encode(1.5).decode(int)
    with pytest.raises(BadRequest, match="must be a whole number for this domain, not true"):
        Value.encode(True).decode(int)


def test_fields_keep_each_value_as_it_was_and_the_order():
    v = Value(bytes([0x82, 0xA5, *b"price", 0xCA, 0x47, 0x7A, 0x00, 0x80, 0xA5, *b"asset", 0xA3, *b"btc"]))
    (n1, price), (n2, asset) = v.fields()
    assert (n1, n2) == ("price", "asset")
    assert price.to_bytes() == bytes([0xCA, 0x47, 0x7A, 0x00, 0x80]), "a float32 stays a float32"
    assert price.decode(float) == 64000.5 and asset.decode(str) == "btc"
    with pytest.raises(BadRequest) as e:
        Value.encode([1, 2]).fields()
    assert e.value == BadRequest("the value must be a map (an object) for this domain, not an array")


def test_one_field_is_typed_and_optional_fields_may_be_missing():
    v = Value.encode({"by": "3"})
    assert v.field("nope", Optional[int]) is None
    assert v.field("by", str) == "3"
    with pytest.raises(BadRequest) as missing:
        v.field("nope", int)
    assert missing.value == BadRequest("the value needs a `nope` field")
    with pytest.raises(BadRequest) as wrong:
        v.field("by", float)
    assert wrong.value == BadRequest('`by` in the value must be a number, not a string ("3")')


@dataclass
class Scored:
    member: str
    score: float
    tags: list[str] = field(default_factory=list)


def test_a_dataclass_is_built_and_its_paths_are_named():
    req = Request.put("k", {"member": "ann", "score": 12, "extra": 1})
    assert req.decode(Scored) == Scored("ann", 12.0), "unknown fields of a value are ignored"
    with pytest.raises(BadRequest) as e:
        Request.put("k", {"member": "ann", "score": "high"}).decode(Scored)
    assert e.value.message == '`score` in the value must be a number, not a string ("high")'
    with pytest.raises(BadRequest, match=r"^bad request: `tags\[1\]` in the value must be a string, not 5$"):
        Request.put("k", {"member": "a", "score": 1, "tags": ["x", 5]}).decode(Scored)
    with pytest.raises(BadRequest, match="^bad request: the value needs a `score` field$"):
        Request.put("k", {"member": "a"}).decode(Scored)
    with pytest.raises(BadRequest, match="^bad request: this operation needs a value$"):
        Request.get("k").value()
    long = "x" * 60
    with pytest.raises(BadRequest, match=r'not a string \("x{36}…"\)$'):
        Value.encode(long).decode(int)


@dataclass
class Settings:
    maxlen: Optional[int] = None
    streams: Optional[list[str]] = None


@dataclass
class Needs:
    n: int


def settings_err(settings_type, table) -> str:
    with pytest.raises(BadConfig) as e:
        decode_settings("d", Value.encode(table).to_bytes(), settings_type)
    return e.value.message


def test_settings_errors_name_the_setting_and_its_table():
    assert settings_err(Settings, {"maxlen": "lots"}) == (
        'setting `maxlen` in [domains.d.settings] must be a whole number, not a string ("lots")'
    )
    assert settings_err(Settings, {"streams": [1]}) == (
        "setting `streams[0]` in [domains.d.settings] must be a string, not 1"
    )
    assert settings_err(Settings, {"max_len": 5}) == (
        "unknown setting `max_len` in [domains.d.settings]: this policy does not read it (a typo?)"
    )
    assert settings_err(NoSettings, {"ttl": 5}) == (
        "unknown setting `ttl` in [domains.d.settings]: this policy takes no settings"
    )
    assert settings_err(Needs, {}) == "[domains.d.settings] needs `n`"


def test_absent_settings_are_an_empty_table():
    assert decode_settings("d", b"", Settings) == Settings()
    assert decode_settings("d", b"\x80", NoSettings) == NoSettings()
    assert decode_settings("d", Value.encode({"n": 3}).to_bytes(), Needs) == Needs(3)


def test_a_reply_decodes_by_index_a_miss_is_none_and_a_misfit_is_named():
    read = Replies([None, Value(b"\x2a"), Value(b"\xc3")])
    assert len(read) == 3 and read.get(0) is None and read.get(1) == Value(b"\x2a")
    assert read.decode(0, int) is None
    assert read.decode(1, int) == 42 and read.decode(2, bool) is True
    owned = Replies([None, Value.encode({"owner": 5})])
    with pytest.raises(Internal) as e:
        owned.decode(1, dict[str, str])
    assert e.value == Internal("`owner` in reply 1 of the read must be a string, not 5")
    with pytest.raises(Internal) as past:
        Replies([Value.encode("ann")]).decode(3, int)
    assert past.value == Internal("reply 3 of the read: the read plan had 1 actions")
    with pytest.raises(Internal, match=r'^internal: reply 0 of the read must be a whole number, not a string \("ann"\)$'):
        Replies([Value.encode("ann")]).decode(0, int)


def test_values_read_as_themselves_and_what_does_not_encode_is_internal():
    assert repr(Value.encode({"a": 1})) == "Value({'a': 1})"
    with pytest.raises(Internal, match="^internal: a value could not be encoded as MessagePack: "):
        Value.encode(object())
