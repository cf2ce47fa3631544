/** Why a policy refused: the contract's `policy-error`, thrown as an exception. */

/** The three kinds of refusal, as the contract names them. */
export type ErrorKind = 'bad-request' | 'bad-config' | 'internal';

const PREFIX: Record<ErrorKind, string> = {
  'bad-request': 'bad request',
  'bad-config': 'bad config',
  internal: 'internal',
};

/**
 * A refusal: throw one from `configure`, `plan` or `planAfterRead` (or put one
 * in `planBatch`'s answer). `String(e)` reads as the Rust SDK's `Display`:
 * "bad request: this operation needs a value".
 */
export class PolicyError extends Error {
  override readonly name = 'PolicyError';

  constructor(
    readonly kind: ErrorKind,
    message: string,
  ) {
    super(message);
  }

  /** The request does not make sense for this policy: the client gets a 400 with this message, so say what to send instead. */
  static badRequest(message: string): PolicyError {
    return new PolicyError('bad-request', message);
  }

  /** A setting of the domain is missing or out of range: the domain is refused at load. */
  static badConfig(message: string): PolicyError {
    return new PolicyError('bad-config', message);
  }

  /** Anything else: the client gets a 500 naming the plugin. */
  static internal(message: string): PolicyError {
    return new PolicyError('internal', message);
  }

  override toString(): string {
    return `${PREFIX[this.kind]}: ${this.message}`;
  }

  /** The contract's form, `{ tag, val }`. */
  toWit(): { tag: ErrorKind; val: string } {
    return { tag: this.kind, val: this.message };
  }
}
