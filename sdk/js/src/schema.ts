/**
 * Shapes: what a value, a field, a reply or a settings table must look like,
 * checked at run time and typed at compile time (`Infer<typeof shape>`).
 * A mismatch is said in a client's words, exactly as the Rust SDK says it:
 * "`score` in the value must be a number, not a string ("high")".
 */

/** What went wrong, and where; turned into a sentence by the caller, who knows whose data it was. */
export type Problem =
  | { kind: 'shape'; expected: string; found: string }
  | { kind: 'missing'; field: string }
  | { kind: 'unknown'; field: string; known: string | undefined };

/** Thrown by a shape that does not fit; `path` is `a.b[0]`, empty for the value itself. */
export class Mismatch {
  constructor(
    readonly path: string,
    readonly problem: Problem,
  ) {}
}

/** While reading: the paths of map entries no shape reads (settings refuse them). */
export interface Reading {
  ignored: string[];
}

/** A shape that reads an `unknown` (decoded MessagePack) into a `T`, or throws a {@link Mismatch}. */
export interface Shape<T> {
  /** What it expects, in words: "a whole number, 0 or more". */
  readonly expected: string;
  /** Whether a missing field or null is fine (read as `undefined`). */
  readonly optional: boolean;
  read(x: unknown, path: string, reading: Reading): T;
}

/** The type a shape reads. */
export type Infer<S> = S extends Shape<infer T> ? T : never;

/** How serde says what it found, in plain words: `a string ("x")`, `5`, `an array`. */
export function found(x: unknown): string {
  if (typeof x === 'string') {
    const s = JSON.stringify(x);
    return `a string (${s.length > 40 ? `${s.slice(0, 37)}…"` : s})`;
  }
  if (typeof x === 'number' || typeof x === 'bigint' || typeof x === 'boolean') return String(x);
  if (x === null || x === undefined) return 'null';
  if (Array.isArray(x)) return 'an array';
  if (x instanceof Uint8Array) return 'binary data';
  return 'a map (an object)';
}

function isMap(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof Uint8Array);
}

function shape<T>(expected: string, read: (x: unknown) => T | typeof NO): Shape<T> {
  return {
    expected,
    optional: false,
    read(x, path) {
      const v = read(x);
      if (v === NO) throw new Mismatch(path, { kind: 'shape', expected, found: found(x) });
      return v;
    },
  };
}
const NO = Symbol('no');

/** A whole number in `[min, max]` (bigints kept exact), or NO. */
function whole(x: unknown, min: bigint, max: bigint): bigint | typeof NO {
  let n: bigint;
  if (typeof x === 'bigint') n = x;
  else if (typeof x === 'number' && Number.isSafeInteger(x)) n = BigInt(x);
  else return NO;
  return n >= min && n <= max ? n : NO;
}

const I64 = [-(2n ** 63n), 2n ** 63n - 1n] as const;
const U64 = [0n, 2n ** 64n - 1n] as const;
const at = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);

/** The shapes. */
export const t = {
  /** A string. */
  string: shape('a string', (x) => (typeof x === 'string' ? x : NO)),
  /** `true` or `false`. */
  boolean: shape('true or false', (x) => (typeof x === 'boolean' ? x : NO)),
  /** Any number, as a float (`f64`). */
  number: shape('a number', (x) => (typeof x === 'number' ? x : typeof x === 'bigint' ? Number(x) : NO)),
  /** A whole number a JS number holds exactly. */
  int: shape('a whole number', (x) => {
    const n = whole(x, BigInt(Number.MIN_SAFE_INTEGER), BigInt(Number.MAX_SAFE_INTEGER));
    return n === NO ? NO : Number(n);
  }),
  /** A whole number from 0 to 255. */
  u8: shape('a whole number from 0 to 255', (x) => {
    const n = whole(x, 0n, 255n);
    return n === NO ? NO : Number(n);
  }),
  /** A whole number from 0 to 4294967295 (a count, a limit). */
  u32: shape('a whole number from 0 to 4294967295', (x) => {
    const n = whole(x, 0n, 4294967295n);
    return n === NO ? NO : Number(n);
  }),
  /** A whole number, 0 or more, up to 2^64-1, as a bigint (a TTL in ms). */
  u64: shape('a whole number, 0 or more', (x) => whole(x, ...U64)),
  /** A signed 64-bit whole number, as a bigint. */
  i64: shape('a whole number', (x) => whole(x, ...I64)),
  /** Anything, as decoded: maps are plain objects, 64-bit integers bigints, binary `Uint8Array`s. */
  any: { expected: 'anything', optional: false, read: (x: unknown) => x } as Shape<unknown>,

  /** One of these strings. */
  oneOf<const V extends string>(...values: V[]): Shape<V> {
    const expected = `one of ${values.map((v) => `\`${v}\``).join(', ')}`;
    return {
      expected,
      optional: false,
      read(x, path) {
        if ((values as unknown[]).includes(x)) return x as V;
        const what = typeof x === 'string' ? `"${x}"` : found(x);
        throw new Mismatch(path, { kind: 'shape', expected: typeof x === 'string' ? expected : 'a string', found: what });
      },
    };
  },

  /** Missing or null reads as `undefined`. */
  optional<T>(inner: Shape<T>): Shape<T | undefined> {
    return {
      expected: inner.expected,
      optional: true,
      read: (x, path, reading) => (x === null || x === undefined ? undefined : inner.read(x, path, reading)),
    };
  },

  /** An array of `item`s. */
  array<T>(item: Shape<T>): Shape<T[]> {
    return {
      expected: 'an array',
      optional: false,
      read(x, path, reading) {
        if (!Array.isArray(x)) throw new Mismatch(path, { kind: 'shape', expected: 'an array', found: found(x) });
        return x.map((v, i) => item.read(v, `${path}[${i}]`, reading));
      },
    };
  },

  /** A map of any keys to `item`s. */
  record<T>(item: Shape<T>): Shape<Record<string, T>> {
    return {
      expected: 'a map (an object)',
      optional: false,
      read(x, path, reading) {
        if (!isMap(x)) throw new Mismatch(path, { kind: 'shape', expected: 'a map (an object)', found: found(x) });
        return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, item.read(v, at(path, k), reading)]));
      },
    };
  },

  /**
   * A map with these fields (a struct). Other entries are ignored, except
   * in settings, which refuse them (a typo must not leave a default in
   * place); with `denyUnknown` they are refused everywhere.
   */
  object<F extends Record<string, Shape<unknown>>>(
    fields: F,
    options: { denyUnknown?: boolean } = {},
  ): Shape<{ [K in keyof F]: Infer<F[K]> }> {
    const names = Object.keys(fields);
    return {
      expected: 'a map (an object)',
      optional: false,
      read(x, path, reading) {
        if (!isMap(x)) throw new Mismatch(path, { kind: 'shape', expected: 'a map (an object)', found: found(x) });
        for (const k of Object.keys(x)) {
          if (names.includes(k)) continue;
          if (options.denyUnknown) {
            const known = names.length === 0 ? undefined : names.map((n) => `\`${n}\``).join(', ');
            throw new Mismatch(at(path, k), { kind: 'unknown', field: k, known });
          }
          reading.ignored.push(at(path, k));
        }
        const out: Record<string, unknown> = {};
        for (const [name, s] of Object.entries(fields)) {
          const v = Object.hasOwn(x, name) ? x[name] : undefined;
          if (v === undefined && !s.optional) throw new Mismatch(path, { kind: 'missing', field: name });
          out[name] = s.read(v, at(path, name), reading);
        }
        return out as { [K in keyof F]: Infer<F[K]> };
      },
    };
  },
};

/** The settings of a policy that has none: a `[settings]` table with anything in it is refused. */
export const noSettings = t.object({}, { denyUnknown: true });

/** Read `x` with `s`; mismatches are thrown as they are. */
export function read<T>(s: Shape<T>, x: unknown, path = ''): { value: T; ignored: string[] } {
  const reading: Reading = { ignored: [] };
  return { value: s.read(x, path, reading), ignored: reading.ignored };
}

/** Said of a request's value (`path` empty: the value itself). */
export function inValue(m: Mismatch): string {
  const p = m.problem;
  const on = (what: string): string => (m.path === '' ? `the value ${what}` : `\`${m.path}\` in the value ${what}`);
  switch (p.kind) {
    case 'shape':
      return m.path === ''
        ? `the value must be ${p.expected} for this domain, not ${p.found}`
        : on(`must be ${p.expected}, not ${p.found}`);
    case 'missing':
      return on(`needs a \`${p.field}\` field`);
    case 'unknown':
      return `the value has a field \`${p.field}\` this domain does not take${p.known ? ` (it takes ${p.known})` : ''}`;
  }
}

/** Said of something that is not the client's, e.g. a reply (`path` empty: the thing itself). */
export function inNamed(subject: string, m: Mismatch): string {
  const p = m.problem;
  const on = (what: string): string => (m.path === '' ? `${subject} ${what}` : `\`${m.path}\` in ${subject} ${what}`);
  switch (p.kind) {
    case 'shape':
      return on(`must be ${p.expected}, not ${p.found}`);
    case 'missing':
      return on(`needs a \`${p.field}\` field`);
    case 'unknown':
      return on(`has a field \`${p.field}\` it should not`);
  }
}

/** Said of a domain's settings table (`path` empty: the table itself). */
export function inSettings(table: string, m: Mismatch): string {
  const p = m.problem;
  const on = (what: string): string => (m.path === '' ? `${table} ${what}` : `setting \`${m.path}\` in ${table} ${what}`);
  switch (p.kind) {
    case 'shape':
      return on(`must be ${p.expected}, not ${p.found}`);
    case 'missing':
      return on(`needs \`${p.field}\``);
    case 'unknown':
      return p.known === undefined
        ? `unknown setting \`${m.path}\` in ${table}: this policy takes no settings`
        : `unknown setting \`${m.path}\` in ${table}: this policy reads ${p.known}`;
  }
}
