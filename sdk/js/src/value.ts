/**
 * Values cross the gateway as MessagePack: a client's JSON becomes
 * MessagePack before a policy sees it, and what a policy stores stays
 * MessagePack (types kept) until the gateway answers in the client's format.
 */
import { decode as unpack, encode as pack } from '@msgpack/msgpack';
import { shown } from './check.js';
import { PolicyError } from './errors.js';
import { describe } from './log.js';
import { inValue, Mismatch, read, t, type Shape } from './schema.js';

/** What a builder accepts where a value goes: a {@link Value} as it is, or anything MessagePack encodes. */
export type IntoValue = Value | unknown;

/** Decode MessagePack the SDK's way: 64-bit integers as bigints, nothing lost. */
export function decodeMsgpack(bytes: Uint8Array): unknown {
  return unpack(bytes, { useBigInt64: true });
}

/** A MessagePack value: a request's body, a field of an object, a value to store. */
export class Value {
  /** Bytes that already are MessagePack (not checked: a decode says what is wrong). */
  constructor(readonly bytes: Uint8Array) {}

  /**
   * Encode a JS value (objects become maps, bigints 64-bit integers,
   * `Uint8Array`s binary). What MessagePack would get wrong is refused, as
   * an internal error naming where: a bigint out of its range (-2^63 to
   * 2^64 - 1), a `Map` or a `Set` (they would be empty maps: an object or an
   * array says what you mean), a `Date` (a timestamp extension, which the
   * gateway does not turn into JSON).
   */
  static encode(x: unknown): Value {
    if (x instanceof Value) {
      // Not `instanceof`: inside the component the host's bytes come from another realm.
      if (Object.prototype.toString.call(x.bytes) === '[object Uint8Array]') return x;
      throw PolicyError.internal(`a Value holds MessagePack bytes (a Uint8Array), not ${shown(x.bytes)}`);
    }
    try {
      const why = refused(x, '', 0);
      if (why !== undefined) throw new Error(why);
      return new Value(pack(x, { useBigInt64: true, ignoreUndefined: true }));
    } catch (e) {
      throw PolicyError.internal(`a value could not be encoded as MessagePack: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Bytes that already are MessagePack. */
  static fromMsgpack(bytes: Uint8Array): Value {
    return new Value(bytes);
  }

  /**
   * The value as JS (maps as objects), or, with a shape, checked and typed.
   * A value of the wrong shape is a bad request whose message says, in a
   * client's words, what was expected where.
   */
  decode(): unknown;
  decode<T>(shape: Shape<T>): T;
  decode<T>(shape: Shape<T> = t.any as Shape<T>): T {
    return decodeAt(this.bytes, shape, '');
  }

  /**
   * Split a map into its entries, each value still MessagePack (types kept,
   * bytes untouched): how an object becomes hash fields or stream entry
   * fields. Entries keep the value's order.
   */
  fields(): Array<[string, Value]> {
    const entries = mapEntries(this.bytes);
    if (entries !== undefined) return entries.map(([k, v]) => [k, new Value(v)]);
    decodeAt(this.bytes, t.record(t.any), ''); // says what the value is instead
    throw PolicyError.badRequest('the value must be a map (an object) with string keys');
  }

  /** One field of a map; a missing field is `undefined` for an optional shape, else a bad request naming it. */
  field(name: string): unknown;
  field<T>(name: string, shape: Shape<T>): T;
  field<T>(name: string, shape: Shape<T> = t.optional(t.any) as Shape<T>): T {
    const entry = this.fields().find(([k]) => k === name);
    if (entry !== undefined) return decodeAt(entry[1].bytes, shape, name);
    if (shape.optional) return undefined as T;
    throw PolicyError.badRequest(`the value needs a \`${name}\` field`);
  }

  /** Whether both are the same bytes. */
  equals(other: Value): boolean {
    return this.bytes.length === other.bytes.length && this.bytes.every((b, i) => b === other.bytes[i]);
  }

  /** As the value reads (`Value({"price":64000.5})`), so a failed assertion shows it. */
  toString(): string {
    try {
      return `Value(${describe(decodeMsgpack(this.bytes))})`;
    } catch {
      return `Value(invalid MessagePack ${Array.from(this.bytes, (b) => b.toString(16).padStart(2, '0')).join(' ')})`;
    }
  }
}

const REFUSED: Array<[new (...args: never[]) => object, string]> = [
  [Map, 'a Map: encode an object (Object.fromEntries(map))'],
  [Set, 'a Set: encode an array ([...set])'],
  [Date, 'a Date: encode a number (date.getTime()) or a string (date.toISOString())'],
];

/** Why `x` (at `path`) must not be encoded as it is, or undefined; past MessagePack's depth, its encoder says. */
function refused(x: unknown, path: string, depth: number): string | undefined {
  const where = path === '' ? 'the value' : `\`${path}\``;
  if (typeof x === 'bigint' && (x < -(2n ** 63n) || x >= 2n ** 64n)) {
    return `${where} is ${x}, out of MessagePack's range (-9223372036854775808 to 18446744073709551615)`;
  }
  if (typeof x !== 'object' || x === null || ArrayBuffer.isView(x) || depth > 100) return undefined;
  const refusal = REFUSED.find(([type]) => x instanceof type);
  if (refusal !== undefined) return `${where} is ${refusal[1]}`;
  for (const [k, v] of Object.entries(x)) {
    const at = Array.isArray(x) ? `${path}[${k}]` : path === '' ? k : `${path}.${k}`;
    const why = refused(v, at, depth + 1);
    if (why !== undefined) return why;
  }
  return undefined;
}

/** Decode `bytes`, the value or its field `at`; a failure becomes a bad request in plain words. */
function decodeAt<T>(bytes: Uint8Array, shape: Shape<T>, path: string): T {
  let x: unknown;
  try {
    x = decodeMsgpack(bytes);
  } catch (e) {
    throw PolicyError.badRequest(`the value could not be read: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    return read(shape, x, path).value;
  } catch (e) {
    if (e instanceof Mismatch) throw PolicyError.badRequest(inValue(e));
    throw e;
  }
}

/** The entries of a MessagePack map with string keys, each value's bytes as they are; undefined if it is not one. */
function mapEntries(bytes: Uint8Array): Array<[string, Uint8Array]> | undefined {
  try {
    const b = bytes[0] ?? 0;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let len: number;
    let pos: number;
    if (b >= 0x80 && b <= 0x8f) [len, pos] = [b & 0x0f, 1];
    else if (b === 0xde) [len, pos] = [view.getUint16(1), 3];
    else if (b === 0xdf) [len, pos] = [view.getUint32(1), 5];
    else return undefined;
    const out: Array<[string, Uint8Array]> = [];
    for (let i = 0; i < len; i++) {
      const keyEnd = skip(view, pos);
      const key = unpack(bytes.subarray(pos, keyEnd));
      if (typeof key !== 'string') return undefined;
      const end = skip(view, keyEnd);
      out.push([key, bytes.subarray(keyEnd, end)]);
      pos = end;
    }
    return out;
  } catch {
    return undefined;
  }
}

/** Where the MessagePack item at `pos` ends (throws past the end of the bytes). */
function skip(v: DataView, pos: number): number {
  const b = v.getUint8(pos);
  const items = (n: number, at: number): number => {
    let p = at;
    for (let i = 0; i < n; i++) p = skip(v, p);
    return p;
  };
  let end: number;
  if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) end = pos + 1;
  else if (b <= 0x8f) end = items(2 * (b & 0x0f), pos + 1);
  else if (b <= 0x9f) end = items(b & 0x0f, pos + 1);
  else if (b <= 0xbf) end = pos + 1 + (b & 0x1f);
  else {
    switch (b) {
      case 0xc4: case 0xd9: end = pos + 2 + v.getUint8(pos + 1); break;
      case 0xc5: case 0xda: end = pos + 3 + v.getUint16(pos + 1); break;
      case 0xc6: case 0xdb: end = pos + 5 + v.getUint32(pos + 1); break;
      case 0xc7: end = pos + 3 + v.getUint8(pos + 1); break;
      case 0xc8: end = pos + 4 + v.getUint16(pos + 1); break;
      case 0xc9: end = pos + 6 + v.getUint32(pos + 1); break;
      case 0xca: case 0xce: case 0xd2: end = pos + 5; break;
      case 0xcb: case 0xcf: case 0xd3: end = pos + 9; break;
      case 0xcc: case 0xd0: end = pos + 2; break;
      case 0xcd: case 0xd1: end = pos + 3; break;
      case 0xd4: end = pos + 3; break;
      case 0xd5: end = pos + 4; break;
      case 0xd6: end = pos + 6; break;
      case 0xd7: end = pos + 10; break;
      case 0xd8: end = pos + 18; break;
      case 0xdc: end = items(v.getUint16(pos + 1), pos + 3); break;
      case 0xdd: end = items(v.getUint32(pos + 1), pos + 5); break;
      case 0xde: end = items(2 * v.getUint16(pos + 1), pos + 3); break;
      case 0xdf: end = items(2 * v.getUint32(pos + 1), pos + 5); break;
      default: throw new RangeError(`not MessagePack: 0x${b.toString(16)}`);
    }
  }
  if (end > v.byteLength) throw new RangeError('truncated MessagePack');
  return end;
}
