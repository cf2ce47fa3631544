"""`price-hash-py`: price objects (`{asset, fiat, price, ...}`) as Redis hashes.

`PUT /v1/cache/price/{asset}:{fiat}` stores each top-level field of the object
as a hash field of `price:{asset}:{fiat}` (values stay MessagePack, so they keep
their types). The old object is replaced, not merged: DEL and HSET run as one
MULTI/EXEC with the expiry, so a reader never sees half of one price and half of
another. `GET` returns the object; `?fields=price,ts` only those fields (HMGET).
No settings. The Python twin of `plugins/price-hash`.
"""

from sluice_policy import (
    BadRequest,
    Delete,
    HashGet,
    HashSet,
    Operation,
    Plan,
    Policy,
    Request,
    export,
)


class PriceHash(Policy):
    def plan(self, req: Request) -> Plan:
        key = self.domain.key(req.key)
        if req.operation is Operation.GET:
            return Plan().respond_with(HashGet(key, fields=req.fields))
        if req.operation is Operation.PUT:
            fields = req.value().fields()
            if not fields:
                raise BadRequest("a price object needs at least one field")
            return (
                Plan()
                .then(Delete(key))
                .then(HashSet(key, fields, ttl_ms=req.ttl_ms))
                .atomic()
            )
        if req.operation is Operation.DELETE:
            return Plan().then(Delete(key))
        raise BadRequest("prices are not events")


WitWorld = export(PriceHash)
