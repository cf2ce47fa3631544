/** What a policy decided: a few actions, which one's reply is the response, and hints. */
import type * as wit from 'sluice:policy/types@0.3.0';
import { READS, type Action } from './actions.js';
import { U64, whole } from './check.js';
import { PolicyError } from './errors.js';
import type { Int64 } from './request.js';

/** A handle to one action of a plan, returned by `plan.add`, to make its reply the response with `plan.respond`. */
export type Step = number & { readonly __step: unique symbol };

/** Whether the gateway may keep an in-process copy of what the plan read, and how stale a copy may be served while Redis cannot answer. */
export interface CacheHint {
  keep: boolean;
  maxStaleMs: Int64;
}

/**
 * A plan: built with `new Plan()` (it runs as it is) or `Plan.read()` (it
 * only reads; the gateway runs it, then asks `planAfterRead` for the plan
 * that writes). Builders return the plan, so they chain:
 * `new Plan().then(new Delete(k)).then(new HashSet(k, fields)).atomic()`.
 */
export class Plan {
  readonly actions: Action[] = [];
  private respondStep: number | undefined;
  private isAtomicPlan = false;
  private ttl: Int64 | undefined;
  private hint: CacheHint | undefined;
  /** The first action that could not be built; the plan fails with it when exported. */
  private firstError: PolicyError | undefined;

  /** An empty plan: nothing to do, no response body. `reads`: see {@link Plan.read}. */
  constructor(private readonly reads = false) {}

  /**
   * An empty plan that only reads, the first of two rounds: the gateway runs
   * its reads, then calls `planAfterRead` with their replies for the plan
   * that writes, and runs that one under `WATCH` of the keys read, as one
   * transaction. Reads only; the response is the second plan's, or, when it
   * has none, this one's.
   */
  static read(): Plan {
    return new Plan(true);
  }

  /** Add an action and get its handle, e.g. to `respond` with it. */
  add(action: Action): Step {
    if (action.problem !== undefined) {
      this.firstError ??= action.problem;
      return 0xffffffff as Step; // names no action; the plan fails with the error anyway
    }
    this.actions.push(action);
    return (this.actions.length - 1) as Step;
  }

  /** Add an action whose reply is not the response (a write, a side effect). */
  then(action: Action): this {
    this.add(action);
    return this;
  }

  /** Add an action and make its reply the response body. */
  respondWith(action: Action): this {
    return this.respond(this.add(action));
  }

  /** Make the reply of this action the response body. */
  respond(step: Step): this {
    this.respondStep = step;
    return this;
  }

  /** Run the actions as MULTI/EXEC, so no one sees them half done. */
  atomic(): this {
    this.isAtomicPlan = true;
    return this;
  }

  /** The TTL of this plan's writes that name none (else the domain's `ttl_s`); a u64, checked when the plan is exported. */
  ttlMs(ttlMs: Int64): this {
    this.ttl = ttlMs;
    return this;
  }

  /** Whether the gateway may keep a copy of what this plan read (else the domain's settings decide). */
  cache(hint: CacheHint): this {
    this.hint = hint;
    return this;
  }

  /** The action whose reply is the response body; `undefined`: no body. */
  get response(): Action | undefined {
    return this.respondStep === undefined ? undefined : this.actions[this.respondStep];
  }

  get isAtomic(): boolean {
    return this.isAtomicPlan;
  }

  /** Whether the plan is the read round of a read-then-write. */
  get isRead(): boolean {
    return this.reads;
  }

  /** The plan's TTL for writes that name none; throws if `ttlMs` was given something other than a u64. */
  get defaultTtlMs(): bigint | undefined {
    return this.ttl === undefined ? undefined : whole(this.ttl, U64, 'Plan ttlMs');
  }

  get cacheHint(): CacheHint | undefined {
    return this.hint;
  }

  /** Why an action could not be added: exporting the plan fails with this error. */
  get error(): PolicyError | undefined {
    return this.firstError;
  }

  /**
   * The contract's answer to a request: a plan to run, or reads to run
   * first. Throws the first error met building it; a read plan that writes
   * fails here, naming the action, rather than at the gateway.
   */
  toDecision(): wit.Decision {
    if (!this.reads) return { tag: 'run', val: this.toWit() };
    const i = this.actions.findIndex((a) => !a.isRead);
    if (i >= 0 && this.firstError === undefined) {
      const a = this.actions[i]!;
      throw PolicyError.internal(
        `a read plan (Plan.read) may only read, but action ${i} (${a.name} ${JSON.stringify(a.key)}) writes; ` +
          `the writes go in the plan planAfterRead returns. Reads: ${READS.join(', ')}`,
      );
    }
    return { tag: 'read', val: this.toWit() };
  }

  /** The contract's form of the plan; throws the first error met building it. */
  toWit(): wit.Plan {
    if (this.firstError !== undefined) throw this.firstError;
    const i = this.respondStep;
    if (i !== undefined && (!Number.isInteger(i) || this.actions[i] === undefined)) {
      throw PolicyError.internal(`the plan responds with step ${JSON.stringify(i)}, but it has ${this.actions.length} actions (a step of another plan?)`);
    }
    const h = this.hint;
    return {
      actions: this.actions.map((a) => {
        if (a.problem !== undefined) throw a.problem; // pushed to `actions` past `add`
        return a.toWit();
      }),
      atomic: this.isAtomicPlan,
      respond: i,
      ttlMs: this.defaultTtlMs,
      cache: h && { keep: h.keep, maxStaleMs: whole(h.maxStaleMs, U64, 'Plan cache maxStaleMs') },
    };
  }
}
