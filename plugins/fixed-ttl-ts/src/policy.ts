// `fixed-ttl-ts`: fixed-ttl in TypeScript, the simplest useful policy. The
// value is stored as-is (MessagePack) at `{domain}:{key}`; every write
// expires after the client's `?ttl_s=` or else the domain's `ttl_s` (the
// host applies it when a write names no TTL). No settings.
import { Delete, Domain, exportPolicy, Get, Plan, PolicyError, Request, Set } from '@sluice/policy';

/** The policy: it needs nothing but its domain. */
export class FixedTtl {
  private constructor(private readonly domain: Domain) {}

  static configure(domain: Domain): FixedTtl {
    return new FixedTtl(domain);
  }

  plan(req: Request): Plan {
    const key = this.domain.key(req.key);
    switch (req.operation) {
      case 'get':
        return new Plan().respondWith(new Get(key));
      case 'put':
        return new Plan().then(new Set(key, req.value(), { ttlMs: req.ttlMs }));
      case 'delete':
        return new Plan().then(new Delete(key));
      case 'publish':
        throw PolicyError.badRequest('this domain takes no events');
    }
  }
}

export const { configure, plan, planAfterRead, planBatch } = exportPolicy(FixedTtl);
