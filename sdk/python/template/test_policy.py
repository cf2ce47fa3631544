import pytest

from policy import MyPolicy
from sluice_policy import BadConfig, Domain, Expire, Get, Request


def test_a_sliding_read_renews_the_ttl_and_a_typo_is_refused():
    policy = MyPolicy.from_settings(Domain.named("{{name}}"), {"sliding": True})
    plan = policy.plan(Request.get("ann"))
    assert plan.actions == [Get("{{name}}:ann"), Expire("{{name}}:ann", 60_000)]
    assert plan.response == Get("{{name}}:ann")
    with pytest.raises(BadConfig) as refused:
        MyPolicy.from_settings(Domain.named("{{name}}"), {"slidin": True})
    assert str(refused.value) == (
        "bad config: unknown setting `slidin` in [domains.{{name}}.settings]: "
        "this policy does not read it (a typo?)"
    )
