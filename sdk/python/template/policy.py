"""`{{name}}`: a Sluice domain policy. Values are stored as they come at
`{domain}:{key}`, expiring after the client's `?ttl_s=` or the domain's `ttl_s`.
Setting: `sliding = true` renews a key's TTL on every read.

Test: `make test`. Build: `make build` (`{{name}}.wasm`), then copy it into the
gateway's plugins folder before the configuration names a domain with
`plugin = "{{name}}"`. See docs/plugin-guide.md, "In Python".
"""

from dataclasses import dataclass

from sluice_policy import (
    BadRequest,
    Delete,
    Expire,
    Get,
    Operation,
    Plan,
    Policy,
    Request,
    Set,
    export,
)


@dataclass
class Settings:
    """`[domains.NAME.settings]`; a setting this class does not read is refused."""

    #: Renew a key's TTL on every read.
    sliding: bool = False


class MyPolicy(Policy[Settings]):
    Settings = Settings

    def plan(self, req: Request) -> Plan:
        key = self.domain.key(req.key)
        if req.operation is Operation.GET:
            plan = Plan().respond_with(Get(key))
            return plan.then(Expire(key, self.domain.ttl_ms)) if self.settings.sliding else plan
        if req.operation is Operation.PUT:
            return Plan().then(Set(key, req.value(), ttl_ms=req.ttl_ms))
        if req.operation is Operation.DELETE:
            return Plan().then(Delete(key))
        raise BadRequest("this domain takes no events")


WitWorld = export(MyPolicy)
