/** The domain an instance serves and the request it decides on. */
import type * as wit from 'sluice:policy/types@0.3.0';
import { PolicyError } from './errors.js';
import type { Shape } from './schema.js';
import { Value } from './value.js';

/** A number where the contract has a 64-bit integer: a `number` (whole) or a `bigint`. */
export type Int64 = number | bigint;

/** What the client asked for. */
export type Operation = wit.Operation;

/** The domain an instance serves, as the gateway's configuration names it. TTLs in ms, as bigints (`u64`). */
export class Domain {
  constructor(
    /** `[a-z0-9_-]{1,64}`; the domain's keys live under `{name}:`. */
    readonly name: string,
    /** The TTL of a write that names none (`ttl_s`), ms. */
    readonly ttlMs: bigint = 60_000n,
    /** The least TTL the host lets a key have (`min_ttl_s`), ms. */
    readonly minTtlMs: bigint = 1_000n,
    /** The most TTL the host lets a key have (`max_ttl_s`), ms. */
    readonly maxTtlMs: bigint = 86_400_000n,
  ) {}

  /** A domain with the gateway's default TTLs (60 s, within 1 s..=86 400 s), for native tests. */
  static named(name: string): Domain {
    return new Domain(name);
  }

  /** The same domain with `ttl_s`, `min_ttl_s` and `max_ttl_s` as a configuration would write them, in seconds. */
  withTtlS(ttlS: Int64, minTtlS: Int64, maxTtlS: Int64): Domain {
    const ms = (s: Int64): bigint => BigInt(s) * 1000n;
    return new Domain(this.name, ms(ttlS), ms(minTtlS), ms(maxTtlS));
  }

  /**
   * `{name}:{key}`: the Redis key of a client's key in this domain's
   * namespace (the only keys the host lets a plan touch, with the domain's
   * declared `prefixes`).
   */
  key(key: string): string {
    return `${this.name}:${key}`;
  }
}

/** How a key has been used lately, as the gateway saw it. All zeros unless the domain has `track_access = true`. */
export interface AccessStats {
  /** Reads that found a value. */
  hits: bigint;
  /** Reads that found nothing. */
  misses: bigint;
  /** Writes through the gateway. */
  writes: bigint;
  /** When the key was last read, ms since the Unix epoch; 0 if never. */
  lastReadMs: bigint;
  /** Reads per minute, exponentially decayed. */
  readRate: number;
}

const NO_STATS: AccessStats = { hits: 0n, misses: 0n, writes: 0n, lastReadMs: 0n, readRate: 0 };

/**
 * One request as the gateway hands it to a policy. Natively, tests build
 * them with `Request.get`, `Request.put`, `Request.delete`, `Request.publish`
 * and the `with*` methods, which return a copy.
 */
export class Request {
  /** Fields the client asked for (`?fields=a,b`); empty means all. */
  fields: string[] = [];
  /** A TTL the client asked for (`?ttl_s=`), in ms, already within the domain's bounds. */
  ttlMs: bigint | undefined = undefined;
  /** The gateway's clock, ms since the Unix epoch: a policy has no clock. */
  nowMs = 0n;
  /** Fresh random bits, e.g. for TTL jitter: a policy has no randomness. */
  entropy = 0n;
  /** How the key has been used lately. */
  stats: AccessStats = { ...NO_STATS };
  /** The value, for puts and events; `value()` refuses when it is missing. */
  body: Value | undefined = undefined;

  constructor(
    /** The client's key (empty for events). */
    readonly key: string,
    readonly operation: Operation,
  ) {}

  /** A read of `key`. */
  static get(key: string): Request {
    return new Request(key, 'get');
  }

  /** A write of `value` at `key`, encoded as MessagePack as the gateway would encode a client's JSON. */
  static put(key: string, value: unknown): Request {
    return new Request(key, 'put').withValue(value);
  }

  /** A removal of `key`. */
  static delete(key: string): Request {
    return new Request(key, 'delete');
  }

  /** An event (`POST /v1/events/{domain}`), encoded like `put`'s value. */
  static publish(event: unknown): Request {
    return new Request('', 'publish').withValue(event);
  }

  /** The host's request, as the contract has it. */
  static fromWit(r: wit.Request): Request {
    const req = new Request(r.key, r.operation);
    req.body = r.value === undefined ? undefined : new Value(r.value);
    req.fields = r.fields;
    req.ttlMs = r.ttlMs;
    req.nowMs = r.nowMs;
    req.entropy = r.entropy;
    req.stats = r.stats;
    return req;
  }

  private copy(change: (r: Request) => void): Request {
    const r = Object.assign(new Request(this.key, this.operation), this);
    r.stats = { ...this.stats };
    change(r);
    return r;
  }

  /** The same request with this value (a {@link Value} as it is, else encoded). */
  withValue(value: unknown): Request {
    const v = Value.encode(value);
    return this.copy((r) => (r.body = v));
  }

  /** The same request asking only for these fields (`?fields=a,b`). */
  withFields(fields: string[]): Request {
    return this.copy((r) => (r.fields = [...fields]));
  }

  /** The same request with a client's TTL (`?ttl_s=`), in ms. */
  withTtlMs(ttlMs: Int64): Request {
    return this.copy((r) => (r.ttlMs = BigInt(ttlMs)));
  }

  /** The same request as if the key had been read `readsPerMin` times a minute lately. */
  withReadRate(readsPerMin: number): Request {
    return this.copy((r) => (r.stats.readRate = readsPerMin));
  }

  /** The same request with these random bits. */
  withEntropy(entropy: Int64): Request {
    return this.copy((r) => (r.entropy = BigInt(entropy)));
  }

  /** The same request at this time, ms since the Unix epoch. */
  withNowMs(nowMs: Int64): Request {
    return this.copy((r) => (r.nowMs = BigInt(nowMs)));
  }

  /** The value, or a bad request when the operation came without one. */
  value(): Value {
    if (this.body === undefined) throw PolicyError.badRequest('this operation needs a value');
    return this.body;
  }

  /** The value decoded (checked against `shape`, if given); see {@link Value.decode} for the messages a client gets. */
  decode(): unknown;
  decode<T>(shape: Shape<T>): T;
  decode<T>(shape?: Shape<T>): unknown {
    return shape === undefined ? this.value().decode() : this.value().decode(shape);
  }

  /** One field of the value (an object), decoded; see {@link Value.field}. */
  field(name: string): unknown;
  field<T>(name: string, shape: Shape<T>): T;
  field<T>(name: string, shape?: Shape<T>): unknown {
    return shape === undefined ? this.value().field(name) : this.value().field(name, shape);
  }
}
