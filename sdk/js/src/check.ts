/**
 * Checks of what a policy built, before it crosses the component boundary:
 * there, a wrong type or an out-of-range integer traps the instance, so each
 * must be an internal error naming the action and field instead.
 */
import { PolicyError } from './errors.js';
import { found } from './schema.js';

/** The contract's integers, `[min, max]`. */
export type Range = readonly [bigint, bigint];
export const U32: Range = [0n, 4294967295n];
export const S64: Range = [-(2n ** 63n), 2n ** 63n - 1n];
export const U64: Range = [0n, 2n ** 64n - 1n];

/** A JS value in plain words: `a string ("x")`, `5`, `a bigint (5)`, `undefined`, `an object`, `a Map`. */
export function shown(x: unknown): string {
  if (typeof x === 'bigint') return `a bigint (${x})`;
  if (x === undefined || typeof x === 'function' || typeof x === 'symbol') return x === undefined ? 'undefined' : `a ${typeof x}`;
  if (typeof x !== 'object' || x === null || Array.isArray(x) || x instanceof Uint8Array) return found(x);
  const name = (x.constructor as { name?: unknown } | undefined)?.name;
  return typeof name === 'string' && name !== 'Object' ? `a ${name}` : 'an object';
}

/** `x` as a bigint, if a whole number within `range`; else an internal error: "`what` must be a whole number ...". */
export function whole(x: unknown, [min, max]: Range, what: string): bigint {
  const n = typeof x === 'bigint' ? x : typeof x === 'number' && Number.isInteger(x) ? BigInt(x) : undefined;
  if (n !== undefined && n >= min && n <= max) return n;
  const within = max === U64[1] && !(n !== undefined && n > max) ? ', 0 or more' : ` from ${min} to ${max}`;
  throw PolicyError.internal(`${what} must be a whole number${within}, not ${typeof x === 'number' || typeof x === 'bigint' ? x : shown(x)}`);
}
