/** What the read round of a read-then-write found, handed to `planAfterRead`. */
import { PolicyError } from './errors.js';
import { inNamed, Mismatch, read, t, type Shape } from './schema.js';
import { decodeMsgpack, Value } from './value.js';

/**
 * The replies of a `Plan.read()`'s actions, in the order they were added:
 * each `undefined` for a miss, else the action's answer exactly as a client
 * would get it, as MessagePack (see the Rust SDK's `Replies` for each read's
 * reply). Natively, a test builds the replies it wants `planAfterRead` to see.
 */
export class Replies {
  readonly values: ReadonlyArray<Value | undefined>;

  /** The replies of a read plan's actions, in order (`undefined`: a miss; anything else is encoded unless a {@link Value}). */
  constructor(replies: ReadonlyArray<unknown> = []) {
    this.values = replies.map((r) => (r === undefined ? undefined : Value.encode(r)));
  }

  /** The host's replies, as the contract has them. */
  static fromWit(replies: Array<Uint8Array | undefined>): Replies {
    return new Replies(replies.map((r) => (r === undefined ? undefined : new Value(r))));
  }

  /** The reply of action `i`; `undefined` for a miss, or for an `i` past the last action. */
  get(i: number): Value | undefined {
    return this.values[i];
  }

  /**
   * The reply of action `i`, decoded (and checked against `shape`);
   * `undefined` for a miss. A reply that does not fit, or an `i` the read
   * plan did not have, is an internal error (a 500: Redis held something this
   * policy did not write) whose message names `i`.
   */
  decode(i: number): unknown;
  decode<T>(i: number, shape: Shape<T>): T | undefined;
  decode<T>(i: number, shape: Shape<T> = t.any as Shape<T>): T | undefined {
    if (!Number.isInteger(i) || i < 0 || i >= this.values.length) {
      throw PolicyError.internal(`reply ${i} of the read: the read plan had ${this.values.length} actions`);
    }
    const reply = this.values[i];
    if (reply === undefined) return undefined;
    const subject = `reply ${i} of the read`;
    let x: unknown;
    try {
      x = decodeMsgpack(reply.bytes);
    } catch (e) {
      throw PolicyError.internal(`${subject} could not be read: ${e instanceof Error ? e.message : String(e)}`);
    }
    try {
      return read(shape, x).value;
    } catch (e) {
      if (e instanceof Mismatch) throw PolicyError.internal(inNamed(subject, e));
      throw e;
    }
  }

  /** How many replies: as many as the read plan had actions. */
  get length(): number {
    return this.values.length;
  }
}
