// `{{name}}`: a Sluice domain policy. Values are stored as they come at
// `{domain}:{key}`, expiring after the client's `?ttl_s=` or the domain's
// `ttl_s`. Setting: `sliding = true` renews a key's TTL on every read.
//
// Test: `npm test`. Build: `npm run build` (build/{{name}}.wasm), then copy it
// into the gateway's plugins folder as `{{name}}.wasm` before the configuration
// names a domain with `plugin = "{{name}}"`. See docs/plugin-guide.md.
import { Delete, Domain, Expire, exportPolicy, Get, Plan, PolicyError, Request, Set, t, type Infer } from '@sluice/policy';

/** `[domains.NAME.settings]`: a setting this shape does not read is refused. */
const settings = t.object({
  /** Renew a key's TTL on every read. */
  sliding: t.optional(t.boolean),
});

export class Store {
  static readonly settings = settings;

  private constructor(
    private readonly domain: Domain,
    private readonly sliding: boolean,
  ) {}

  static configure(domain: Domain, s: Infer<typeof settings>): Store {
    return new Store(domain, s.sliding ?? false);
  }

  plan(req: Request): Plan {
    const key = this.domain.key(req.key);
    switch (req.operation) {
      case 'get':
        return this.sliding
          ? new Plan().respondWith(new Get(key)).then(new Expire(key, this.domain.ttlMs))
          : new Plan().respondWith(new Get(key));
      case 'put':
        return new Plan().then(new Set(key, req.value(), { ttlMs: req.ttlMs }));
      case 'delete':
        return new Plan().then(new Delete(key));
      case 'publish':
        throw PolicyError.badRequest('this domain takes no events');
    }
  }
}

export const { configure, plan, planAfterRead, planBatch } = exportPolicy(Store);
