/**
 * The Redis actions a plan is made of. Each is a class a policy builds with
 * its required arguments and named options (`new Set(key, value, { ttlMs })`)
 * and a test reads back from `plan.actions`; numbers accept `number` or
 * `bigint` and are kept as `bigint` where the contract has a 64-bit integer.
 * A value that does not encode, an option that makes no sense, or an
 * argument of the wrong type or range (from plain JS, or a cast) does not
 * throw here: the plan keeps the first such error and fails with it, as the
 * Rust SDK's does, before anything crosses to the gateway.
 */
import type * as wit from 'sluice:policy/types@0.3.0';
import { S64, shown, U32, U64, whole, type Range } from './check.js';
import { PolicyError } from './errors.js';
import type { Int64 } from './request.js';
import { Value } from './value.js';

/** The contract's name of an action (`'hash-set'`). */
export type ActionName = wit.Action['tag'];

/** The contract's names of the actions that only read, in the Rust SDK's order, for messages. */
export const READS: readonly ActionName[] = [
  'get', 'hash-get', 'zset-range', 'zset-score', 'zset-count', 'set-contains',
  'set-members', 'set-count', 'list-range', 'key-ttl', 'counter-get',
];

/** The TTL option of writes: unset takes the plan's TTL, else the domain's `ttl_s`; the host keeps every TTL within the domain's bounds. */
export interface Ttl {
  ttlMs?: Int64 | undefined;
}

/** What every action has. */
export abstract class Action {
  /** The contract's name of the action (`'zset-add'`). */
  abstract readonly name: ActionName;
  /** The first problem met building it; a plan that gets it fails with it. */
  problem: PolicyError | undefined = undefined;

  /** The class's name (`'ZsetAdd'`), for messages: a bundler may rename a class (`Set` to `Set$1`). */
  protected get typeName(): string {
    return this.name.replace(/(?:^|-)(\w)/g, (_, c: string) => c.toUpperCase());
  }

  /** The key it touches: a stream's key, a script's first key. */
  abstract get key(): string;

  /** Whether the action only reads, so it may be in a `Plan.read()`. A script counts as a write. */
  get isRead(): boolean {
    return READS.includes(this.name);
  }

  /** The contract's form of the action. */
  abstract toWit(): wit.Action;

  /** Keep the first problem. */
  protected fail(message: string): void {
    this.problem ??= PolicyError.internal(message);
  }

  /** `x` as MessagePack, or an empty value and a problem. */
  protected encode(x: unknown): Value {
    return this.checked(() => Value.encode(x), new Value(new Uint8Array()));
  }

  /** What `f` returns, or `fallback` and a problem (the first error it throws). */
  private checked<T>(f: () => T, fallback: T): T {
    try {
      return f();
    } catch (e) {
      this.problem ??= e instanceof PolicyError ? e : PolicyError.internal(String(e));
      return fallback;
    }
  }

  /** A whole number of the contract, checked. */
  protected int(x: unknown, what: string, range: Range): bigint {
    return this.checked(() => whole(x, range, `${this.typeName} ${what}`), 0n);
  }

  protected u64(x: Int64, what: string): bigint {
    return this.int(x, what, U64);
  }

  protected s64(x: Int64, what: string): bigint {
    return this.int(x, what, S64);
  }

  protected optU64(x: Int64 | undefined, what: string): bigint | undefined {
    return x === undefined ? undefined : this.u64(x, what);
  }

  protected u32(x: number, what: string): number {
    return Number(this.int(x, what, U32));
  }

  /** `x`, after checking it is a `type` (a string, a number). */
  protected is<T>(x: T, type: 'string' | 'number', what: string): T {
    if (typeof x !== type) this.fail(`${this.typeName} ${what} must be a ${type}, not ${shown(x)}`);
    return x;
  }

  /** A copy of `x`, after checking it is an array (of strings, with `strings`). */
  protected array<T>(x: T[], what: string, strings = false): T[] {
    if (!Array.isArray(x)) {
      this.fail(`${this.typeName} ${what} must be an array, not ${shown(x)}`);
      return [];
    }
    if (strings) x.forEach((s, i) => this.is(s, 'string', `${what}[${i}]`));
    return [...x];
  }

  /** `x`, after checking it is one of the contract's enum `cases`. */
  protected oneOf<T extends string>(x: T, cases: readonly T[], what: string): T {
    if (!cases.includes(x)) {
      const names = `${cases.slice(0, -1).join(', ')} or ${cases[cases.length - 1]}`;
      this.fail(`${this.typeName} ${what} must be ${names}, not ${shown(x)}`);
    }
    return x;
  }

  /** An amount to count with: an s64 int, or a float (whether finite is the action's to say). */
  protected amount(x: Amount, what: string): Num {
    const n = Num.of(x);
    if (n.kind === 'int') this.int(n.value, what, S64);
    else this.is(n.value, 'number', what);
    return n;
  }

  /** Fields as `[name, value]` pairs or an object, each value encoded (a {@link Value} kept as it is). */
  protected pairs(fields: Iterable<[string, unknown]> | Record<string, unknown>): Array<[string, Value]> {
    const what = `${this.typeName} fields`;
    if (typeof fields !== 'object' || fields === null) {
      this.fail(`${what} must be [name, value] pairs or an object, not ${shown(fields)}`);
      return [];
    }
    const entries: unknown[] = Symbol.iterator in fields ? [...(fields as Iterable<unknown>)] : Object.entries(fields);
    return entries.flatMap((e, i): Array<[string, Value]> => {
      if (Array.isArray(e) && typeof e[0] === 'string') return [[e[0], this.encode(e[1])]];
      this.fail(`${what}[${i}] must be a [name, value] pair with a string name, not ${shown(e)}`);
      return [];
    });
  }

  /** Redis refuses a command that names no items. */
  protected some<T>(items: T[], what: string): T[] {
    if (items.length === 0) this.fail(`${this.typeName} of ${JSON.stringify(this.key)} with no ${what}: it needs one at least`);
    return items;
  }
}

const witFields = (fields: Array<[string, Value]>): wit.FieldValue[] => fields.map(([name, v]) => ({ name, value: v.bytes }));

// ---- plain values and keys ----

/** `GET key`: the reply is the stored value, a miss is a 404. */
export class Get extends Action {
  readonly name = 'get';
  constructor(readonly key: string) { super(); this.is(key, 'string', 'key'); }
  toWit(): wit.Action { return { tag: 'get', val: { key: this.key } }; }
}

/** `SET key value PX ttl`: store a value (a {@link Value} as it is, else encoded). */
export class Set extends Action {
  readonly name = 'set';
  readonly value: Value;
  readonly ttlMs: bigint | undefined;
  constructor(readonly key: string, value: unknown, options: Ttl = {}) {
    super();
    this.is(key, 'string', 'key');
    this.value = this.encode(value);
    this.ttlMs = this.optU64(options.ttlMs, 'ttlMs');
  }
  toWit(): wit.Action { return { tag: 'set', val: { key: this.key, value: this.value.bytes, ttlMs: this.ttlMs } }; }
}

/** `SET key value NX PX ttl`: store only when the key is absent (a lock, a de-duplication mark). The reply is whether it was stored. */
export class SetIfAbsent extends Action {
  readonly name = 'set-if-absent';
  readonly value: Value;
  readonly ttlMs: bigint | undefined;
  constructor(readonly key: string, value: unknown, options: Ttl = {}) {
    super();
    this.is(key, 'string', 'key');
    this.value = this.encode(value);
    this.ttlMs = this.optU64(options.ttlMs, 'ttlMs');
  }
  toWit(): wit.Action { return { tag: 'set-if-absent', val: { key: this.key, value: this.value.bytes, ttlMs: this.ttlMs } }; }
}

/** `DEL key`. */
export class Delete extends Action {
  readonly name = 'delete';
  constructor(readonly key: string) { super(); this.is(key, 'string', 'key'); }
  toWit(): wit.Action { return { tag: 'delete', val: { key: this.key } }; }
}

/** `PEXPIRE key ttl`, e.g. to extend the life of a key that is read often. */
export class Expire extends Action {
  readonly name = 'expire';
  readonly ttlMs: bigint;
  constructor(readonly key: string, ttlMs: Int64) {
    super();
    this.is(key, 'string', 'key');
    this.ttlMs = this.u64(ttlMs, 'ttlMs');
  }
  toWit(): wit.Action { return { tag: 'expire', val: { key: this.key, ttlMs: this.ttlMs } }; }
}

/** `PTTL key`: the ms the key has left; a miss when there is no key, nil when it never expires. */
export class KeyTtl extends Action {
  readonly name = 'key-ttl';
  constructor(readonly key: string) { super(); this.is(key, 'string', 'key'); }
  toWit(): wit.Action { return { tag: 'key-ttl', val: { key: this.key } }; }
}

// ---- counters ----

/**
 * A number to count with: whole (`INCRBY`, an s64) or floating
 * (`INCRBYFLOAT`). As in the Rust SDK, where an integer literal is an `Int`,
 * a bigint or a whole `number` is an int and any other `number` a float; but
 * JS cannot tell `2.0` from `2`, so a float counter adds `Num.float(x)`,
 * always: a whole amount (a literal, or a sum that happens to be whole) would
 * be an `INCRBY`, which Redis refuses on a counter holding a float.
 */
export class Num {
  private constructor(readonly kind: 'int' | 'float', readonly value: bigint | number) {}
  /** A whole number, an s64 (checked by the action it is given to). */
  static int(n: Int64): Num { return new Num('int', typeof n === 'number' && Number.isInteger(n) ? BigInt(n) : n); }
  /** A floating-point number, even a whole one (`Num.float(1)` counts in floats): what a float counter adds. */
  static float(x: number): Num { return new Num('float', x); }
  /** A bigint or a whole `number` is an int, any other `number` a float (see {@link Num}). */
  static of(x: Amount): Num {
    if (x instanceof Num) return x;
    return typeof x === 'bigint' || Number.isInteger(x) ? Num.int(x) : Num.float(x);
  }
  get isFinite(): boolean { return this.kind === 'int' || Number.isFinite(this.value); }
  /** `3` for an int, `3.0` for a float, so the two read apart in messages. */
  toString(): string {
    const x = this.value;
    if (this.kind === 'int' || typeof x !== 'number') return String(x);
    if (Number.isNaN(x)) return 'NaN';
    if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
    return Number.isInteger(x) ? `${x}.0` : String(x);
  }
  toWit(): wit.Number {
    return this.kind === 'int' ? { tag: 'int', val: this.value as bigint } : { tag: 'float', val: this.value as number };
  }
}

/** What a counter accepts: a {@link Num}, a bigint or whole number (int), or another number (float); a float counter adds `Num.float`. */
export type Amount = Num | number | bigint;

/**
 * Add to a counter, one command: a counter the add creates expires after
 * its TTL, an existing one keeps its expiry. The reply is
 * `{"value": .., "added": ..}`. With `cap`, an add that would take the
 * counter past it is refused (`added` false).
 */
export class CounterAdd extends Action {
  readonly name = 'counter-add';
  readonly by: Num;
  readonly cap: Num | undefined;
  readonly ttlMs: bigint | undefined;
  constructor(readonly key: string, by: Amount, options: Ttl & { cap?: Amount | undefined } = {}) {
    super();
    this.is(key, 'string', 'key');
    this.by = this.amount(by, 'by');
    this.cap = options.cap === undefined ? undefined : this.amount(options.cap, 'cap');
    this.ttlMs = this.optU64(options.ttlMs, 'ttlMs');
    if (!this.by.isFinite) this.fail(`CounterAdd by ${this.by}: Redis counts with finite numbers only`);
    else if (this.cap !== undefined && !this.cap.isFinite) this.fail(`CounterAdd with cap ${this.cap}: a cap is a finite number`);
    else if (this.by.kind === 'int' && this.cap?.kind === 'float') {
      this.fail(`CounterAdd by ${this.by} with cap ${this.cap}: an int counter's cap is whole; for a float counter, add a float`);
    }
  }
  toWit(): wit.Action {
    return { tag: 'counter-add', val: { key: this.key, by: this.by.toWit(), cap: this.cap?.toWit(), ttlMs: this.ttlMs } };
  }
}

/** Read a counter `CounterAdd` keeps, as a number (Redis's decimal text is not MessagePack: `Get` would misread it). */
export class CounterGet extends Action {
  readonly name = 'counter-get';
  constructor(readonly key: string) { super(); this.is(key, 'string', 'key'); }
  toWit(): wit.Action { return { tag: 'counter-get', val: { key: this.key } }; }
}

// ---- hashes ----

/** `HGETALL key`, or `HMGET key field ...` with `fields`: the reply is an object. */
export class HashGet extends Action {
  readonly name = 'hash-get';
  readonly fields: string[];
  constructor(readonly key: string, options: { fields?: string[] } = {}) {
    super();
    this.is(key, 'string', 'key');
    this.fields = this.array(options.fields ?? [], 'fields', true);
  }
  toWit(): wit.Action { return { tag: 'hash-get', val: { key: this.key, fields: this.fields } }; }
}

/** `HSET key field value ...`, then `PEXPIRE`: fields as `[name, value]` pairs (e.g. a value's `fields()`) or an object. */
export class HashSet extends Action {
  readonly name = 'hash-set';
  readonly fields: Array<[string, Value]>;
  readonly ttlMs: bigint | undefined;
  constructor(readonly key: string, fields: Iterable<[string, unknown]> | Record<string, unknown>, options: Ttl = {}) {
    super();
    this.is(key, 'string', 'key');
    this.fields = this.pairs(fields);
    this.ttlMs = this.optU64(options.ttlMs, 'ttlMs');
  }
  toWit(): wit.Action { return { tag: 'hash-set', val: { key: this.key, fields: witFields(this.fields), ttlMs: this.ttlMs } }; }
}

/** `HDEL key field ...`; the reply is the number of fields removed. */
export class HashDelete extends Action {
  readonly name = 'hash-delete';
  readonly fields: string[];
  constructor(readonly key: string, fields: string[]) {
    super();
    this.is(key, 'string', 'key');
    this.fields = this.some(this.array(fields, 'fields', true), 'fields');
  }
  toWit(): wit.Action { return { tag: 'hash-delete', val: { key: this.key, fields: this.fields } }; }
}

/** `HINCRBY`/`HINCRBYFLOAT key field by`, then `PEXPIRE`; the reply is the field's new value. */
export class HashAdd extends Action {
  readonly name = 'hash-add';
  readonly by: Num;
  readonly ttlMs: bigint | undefined;
  constructor(readonly key: string, readonly field: string, by: Amount, options: Ttl = {}) {
    super();
    this.is(key, 'string', 'key');
    this.is(field, 'string', 'field');
    this.by = this.amount(by, 'by');
    this.ttlMs = this.optU64(options.ttlMs, 'ttlMs');
    if (!this.by.isFinite) this.fail(`HashAdd by ${this.by}: Redis counts with finite numbers only`);
  }
  toWit(): wit.Action {
    return { tag: 'hash-add', val: { key: this.key, field: this.field, by: this.by.toWit(), ttlMs: this.ttlMs } };
  }
}

// ---- streams and scripts ----

/** `XADD stream [MAXLEN ~ n] * field value ...`. */
export class StreamAdd extends Action {
  readonly name = 'stream-add';
  readonly fields: Array<[string, Value]>;
  readonly maxLen: bigint | undefined;
  constructor(readonly stream: string, fields: Iterable<[string, unknown]> | Record<string, unknown>, options: { maxLen?: Int64 } = {}) {
    super();
    this.is(stream, 'string', 'stream');
    this.fields = this.pairs(fields);
    this.maxLen = this.optU64(options.maxLen, 'maxLen');
  }
  get key(): string { return this.stream; }
  toWit(): wit.Action {
    return { tag: 'stream-add', val: { stream: this.stream, fields: witFields(this.fields), maxLen: this.maxLen } };
  }
}

/** `EVALSHA` of a script the operator registered, by name, with keys and args (each encoded). */
export class Script extends Action {
  readonly name = 'script';
  readonly keys: string[];
  readonly args: Value[];
  constructor(readonly script: string, options: { keys?: string[]; args?: unknown[] } = {}) {
    super();
    this.is(script, 'string', 'name');
    this.keys = this.array(options.keys ?? [], 'keys', true);
    this.args = this.array(options.args ?? [], 'args').map((a) => this.encode(a));
  }
  get key(): string { return this.keys[0] ?? ''; }
  toWit(): wit.Action {
    return { tag: 'script', val: { name: this.script, keys: this.keys, args: this.args.map((a) => a.bytes) } };
  }
}

// ---- sorted sets ----

/** A sorted-set member and its score. */
export interface ScoredMember {
  member: string;
  score: number;
}

/** When `ZADD` changes a member. */
export type ZsetCondition = wit.ZsetCondition;

/** `ZADD key [NX|GT|LT] score member ...`, then `PEXPIRE`. */
export class ZsetAdd extends Action {
  readonly name = 'zset-add';
  readonly members: ScoredMember[];
  readonly condition: ZsetCondition;
  readonly ttlMs: bigint | undefined;
  /** Add `member` with `score`. */
  constructor(key: string, member: string, score: number, options?: Ttl & { condition?: ZsetCondition });
  /** Add several members at once. */
  constructor(key: string, members: ScoredMember[], options?: Ttl & { condition?: ZsetCondition });
  constructor(
    readonly key: string,
    member: string | ScoredMember[],
    score?: number | (Ttl & { condition?: ZsetCondition }),
    options: Ttl & { condition?: ZsetCondition } = {},
  ) {
    super();
    this.is(key, 'string', 'key');
    if (typeof member === 'string') this.members = [{ member, score: this.is(score as number, 'number', 'score') }];
    else {
      options = (score as typeof options | undefined) ?? {};
      this.members = this.array(member, 'members').map((m: Partial<ScoredMember> | null, i) => ({
        member: this.is(m?.member as string, 'string', `members[${i}].member`),
        score: this.is(m?.score as number, 'number', `members[${i}].score`),
      }));
    }
    this.condition = this.oneOf(options.condition ?? 'always', ['always', 'if-absent', 'if-greater', 'if-less'], 'condition');
    this.ttlMs = this.optU64(options.ttlMs, 'ttlMs');
  }
  toWit(): wit.Action {
    return { tag: 'zset-add', val: { key: this.key, members: this.members, condition: this.condition, ttlMs: this.ttlMs } };
  }
}

/** `ZINCRBY key by member`, then `PEXPIRE`; the reply is the new score. */
export class ZsetIncr extends Action {
  readonly name = 'zset-incr';
  readonly ttlMs: bigint | undefined;
  constructor(readonly key: string, readonly member: string, readonly by: number, options: Ttl = {}) {
    super();
    this.is(key, 'string', 'key');
    this.is(member, 'string', 'member');
    this.is(by, 'number', 'by');
    this.ttlMs = this.optU64(options.ttlMs, 'ttlMs');
  }
  toWit(): wit.Action {
    return { tag: 'zset-incr', val: { key: this.key, member: this.member, by: this.by, ttlMs: this.ttlMs } };
  }
}

/** Which slice of a sorted set to read: by rank (inclusive, negative from the end) or by score (min, max). */
export type ZsetBounds = { by: 'rank'; start: bigint; stop: bigint } | { by: 'score'; min: number; max: number };

/**
 * `ZRANGE key start stop [BYSCORE] [REV] [LIMIT 0 n] WITHSCORES`, built with
 * `ZsetRange.rank` or `ZsetRange.score`. The reply is a list of
 * `{member, score}`; an empty range is a miss (404).
 */
export class ZsetRange extends Action {
  readonly name = 'zset-range';
  private constructor(
    readonly key: string,
    readonly bounds: ZsetBounds,
    /** Highest first. */
    readonly reverse: boolean,
    /** At most this many members: score ranges only. */
    readonly limit: number | undefined,
  ) {
    super();
    this.is(key, 'string', 'key');
  }
  /** By rank, inclusive (`0, -1` is all; with `rev`, rank 0 is the highest score). */
  static rank(key: string, start: Int64, stop: Int64, options: { rev?: boolean } = {}): ZsetRange {
    const r = new ZsetRange(key, { by: 'rank', start: 0n, stop: 0n }, options.rev ?? false, undefined);
    Object.assign(r, { bounds: { by: 'rank', start: r.s64(start, 'start'), stop: r.s64(stop, 'stop') } });
    if ('limit' in options) r.fail(`ZsetRange.rank(${start}, ${stop}) with a limit: a rank range is limited by its bounds; limit applies to score ranges`);
    return r;
  }
  /** By score, inclusive, always `(min, max)`, also with `rev`; infinities allowed. */
  static score(key: string, min: number, max: number, options: { rev?: boolean; limit?: number } = {}): ZsetRange {
    const r = new ZsetRange(key, { by: 'score', min, max }, options.rev ?? false, undefined);
    r.is(min, 'number', 'min');
    r.is(max, 'number', 'max');
    if (options.limit !== undefined) Object.assign(r, { limit: r.u32(options.limit, 'limit') });
    if (min > max) r.fail(`ZsetRange.score(${min}, ${max}): score bounds are (min, max), also with rev`);
    return r;
  }
  toWit(): wit.Action {
    const b = this.bounds;
    const bounds: wit.ZsetBounds = b.by === 'rank' ? { tag: 'rank', val: [b.start, b.stop] } : { tag: 'score', val: [b.min, b.max] };
    return { tag: 'zset-range', val: { key: this.key, bounds, reverse: this.reverse, limit: this.limit } };
  }
}

/** `ZREMRANGEBYRANK key start stop`: e.g. `(0, -101)` keeps the 100 highest. */
export class ZsetTrim extends Action {
  readonly name = 'zset-trim';
  readonly start: bigint;
  readonly stop: bigint;
  constructor(readonly key: string, start: Int64, stop: Int64) {
    super();
    this.is(key, 'string', 'key');
    this.start = this.s64(start, 'start');
    this.stop = this.s64(stop, 'stop');
  }
  /** Keep the `n` highest scores (`0, -(n+1)`); `n` is a u32. */
  static keepHighest(key: string, n: number): ZsetTrim {
    const trim = new ZsetTrim(key, 0, -1);
    return Object.assign(trim, { stop: -BigInt(trim.u32(n, 'keepHighest')) - 1n });
  }
  /** Keep the `n` lowest scores (`n, -1`); `n` is a u32. */
  static keepLowest(key: string, n: number): ZsetTrim {
    const trim = new ZsetTrim(key, 0, -1);
    return Object.assign(trim, { start: BigInt(trim.u32(n, 'keepLowest')) });
  }
  toWit(): wit.Action { return { tag: 'zset-trim', val: { key: this.key, start: this.start, stop: this.stop } }; }
}

/** `ZREM key member ...`; the reply is the number removed. */
export class ZsetRemove extends Action {
  readonly name = 'zset-remove';
  readonly members: string[];
  constructor(readonly key: string, members: string[]) {
    super();
    this.is(key, 'string', 'key');
    this.members = this.some(this.array(members, 'members', true), 'members');
  }
  toWit(): wit.Action { return { tag: 'zset-remove', val: { key: this.key, members: this.members } }; }
}

/** `ZSCORE key member`: the score, a miss when the member is absent. */
export class ZsetScore extends Action {
  readonly name = 'zset-score';
  constructor(readonly key: string, readonly member: string) {
    super();
    this.is(key, 'string', 'key');
    this.is(member, 'string', 'member');
  }
  toWit(): wit.Action { return { tag: 'zset-score', val: { key: this.key, member: this.member } }; }
}

/** `ZCARD key`: the number of members (0 when there is no key). */
export class ZsetCount extends Action {
  readonly name = 'zset-count';
  constructor(readonly key: string) { super(); this.is(key, 'string', 'key'); }
  toWit(): wit.Action { return { tag: 'zset-count', val: { key: this.key } }; }
}

// ---- sets ----

/** `SADD key member ...`, then `PEXPIRE`. */
export class SetAdd extends Action {
  readonly name = 'set-add';
  readonly members: string[];
  readonly ttlMs: bigint | undefined;
  constructor(readonly key: string, members: string[], options: Ttl = {}) {
    super();
    this.is(key, 'string', 'key');
    this.members = this.array(members, 'members', true);
    this.ttlMs = this.optU64(options.ttlMs, 'ttlMs');
  }
  toWit(): wit.Action { return { tag: 'set-add', val: { key: this.key, members: this.members, ttlMs: this.ttlMs } }; }
}

/** `SISMEMBER key member`: the reply is a boolean. */
export class SetContains extends Action {
  readonly name = 'set-contains';
  constructor(readonly key: string, readonly member: string) {
    super();
    this.is(key, 'string', 'key');
    this.is(member, 'string', 'member');
  }
  toWit(): wit.Action { return { tag: 'set-contains', val: { key: this.key, member: this.member } }; }
}

/** `SREM key member ...`; the reply is the number removed. */
export class SetRemove extends Action {
  readonly name = 'set-remove';
  readonly members: string[];
  constructor(readonly key: string, members: string[]) {
    super();
    this.is(key, 'string', 'key');
    this.members = this.some(this.array(members, 'members', true), 'members');
  }
  toWit(): wit.Action { return { tag: 'set-remove', val: { key: this.key, members: this.members } }; }
}

/** Up to `count` members of a set, sorted; an empty set is a miss. */
export class SetMembers extends Action {
  readonly name = 'set-members';
  readonly count: number;
  constructor(readonly key: string, count: number) {
    super();
    this.is(key, 'string', 'key');
    this.count = this.u32(count, 'count');
    if (count === 0) this.fail(`SetMembers of ${JSON.stringify(key)} with a count of 0 would always be a miss`);
  }
  toWit(): wit.Action { return { tag: 'set-members', val: { key: this.key, count: this.count } }; }
}

/** `SCARD key`: the number of members (0 when there is no key). */
export class SetCount extends Action {
  readonly name = 'set-count';
  constructor(readonly key: string) { super(); this.is(key, 'string', 'key'); }
  toWit(): wit.Action { return { tag: 'set-count', val: { key: this.key } }; }
}

// ---- lists ----

/** Which end of a list. */
export type ListEnd = wit.ListEnd;

/**
 * `LPUSH`/`RPUSH key value ...` (`ListPush.head`, `ListPush.tail`), then,
 * with `keep`, `LTRIM` to the `keep` items nearest that end, then
 * `PEXPIRE`. The reply is the list's length after.
 */
export class ListPush extends Action {
  readonly name = 'list-push';
  readonly values: Value[];
  readonly keep: number | undefined;
  readonly ttlMs: bigint | undefined;
  constructor(readonly key: string, readonly end: ListEnd, values: unknown[], options: Ttl & { keep?: number } = {}) {
    super();
    this.is(key, 'string', 'key');
    this.oneOf(end, ['head', 'tail'], 'end');
    this.values = this.some(this.array(values, 'values').map((v) => this.encode(v)), 'values');
    this.keep = options.keep === undefined ? undefined : this.u32(options.keep, 'keep');
    if (options.keep === 0) this.fail(`ListPush of ${JSON.stringify(key)} with keep 0 would empty the list on every push`);
    this.ttlMs = this.optU64(options.ttlMs, 'ttlMs');
  }
  /** Push at the head (index 0): the last value ends up first. */
  static head(key: string, values: unknown[], options: Ttl & { keep?: number } = {}): ListPush {
    return new ListPush(key, 'head', values, options);
  }
  /** Push at the tail (index -1). */
  static tail(key: string, values: unknown[], options: Ttl & { keep?: number } = {}): ListPush {
    return new ListPush(key, 'tail', values, options);
  }
  toWit(): wit.Action {
    return {
      tag: 'list-push',
      val: { key: this.key, values: this.values.map((v) => v.bytes), end: this.end, keep: this.keep, ttlMs: this.ttlMs },
    };
  }
}

/** `LRANGE`: up to `count` items from index `start` (negative counts from the tail); an empty range is a miss. */
export class ListRange extends Action {
  readonly name = 'list-range';
  readonly start: bigint;
  readonly count: number;
  constructor(readonly key: string, start: Int64, count: number) {
    super();
    this.is(key, 'string', 'key');
    this.start = this.s64(start, 'start');
    this.count = this.u32(count, 'count');
    if (count === 0) this.fail(`ListRange of ${JSON.stringify(key)} with a count of 0 would always be a miss`);
  }
  /** The first `n` items. */
  static first(key: string, n: number): ListRange { return new ListRange(key, 0, n); }
  /** The last `n` items. */
  static last(key: string, n: number): ListRange { return new ListRange(key, -n, n); }
  toWit(): wit.Action { return { tag: 'list-range', val: { key: this.key, start: this.start, count: this.count } }; }
}

/** `LREM key count value`: remove items equal to `value`, `count` of them from the head (0: all, negative: from the tail). */
export class ListRemove extends Action {
  readonly name = 'list-remove';
  readonly value: Value;
  readonly count: bigint;
  constructor(readonly key: string, value: unknown, count: Int64) {
    super();
    this.is(key, 'string', 'key');
    this.value = this.encode(value);
    this.count = this.s64(count, 'count');
  }
  /** Remove every item equal to `value`. */
  static all(key: string, value: unknown): ListRemove { return new ListRemove(key, value, 0); }
  toWit(): wit.Action { return { tag: 'list-remove', val: { key: this.key, value: this.value.bytes, count: this.count } }; }
}
