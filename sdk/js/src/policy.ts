/** A policy, and the glue that exports it as the plugin's implementation of the `sluice:policy` world. */
import type * as wit from 'sluice:policy/types@0.3.0';
import { shown } from './check.js';
import { PolicyError } from './errors.js';
import { consoleToLog, log } from './log.js';
import { Plan } from './plan.js';
import { Replies } from './replies.js';
import { Domain, Request } from './request.js';
import { inSettings, Mismatch, noSettings, read, type Shape } from './schema.js';
import { decodeMsgpack, Value } from './value.js';

/**
 * A domain policy instance: built once per instance by its class's static
 * `configure`, then asked for a plan per request.
 */
export interface Policy {
  /**
   * Decide what to do with one request: a plan that runs (`new Plan()`), or
   * one that reads first (`Plan.read()`), after which `planAfterRead`
   * decides the writes. Throw a {@link PolicyError} to refuse.
   */
  plan(req: Request): Plan;

  /**
   * The second round of a read-then-write: `plan` answered `req` with a
   * `Plan.read()`, the gateway ran it, and `read` holds each of its
   * actions' replies, in order. The plan returned runs (it may not read
   * again) as one transaction under `WATCH` of the keys read; on a conflict
   * both rounds run again, so this may be called more than once per request.
   * Only a policy that plans reads needs it.
   */
  planAfterRead?(req: Request, read: Replies): Plan;

  /**
   * `plan` for each request of a batch (an mget's keys, an mset's items),
   * answered in one call: one plan or error per request, in order. Without
   * it the SDK asks `plan` for each.
   */
  planBatch?(reqs: Request[]): Array<Plan | PolicyError>;
}

/**
 * What `exportPolicy` takes: a class (or any object) with a static
 * `configure` that builds the instance from the domain and its typed
 * settings, and the `settings` shape they are read with (none: the policy
 * takes no settings, and a `[settings]` table with anything in it is refused).
 */
export interface PolicyClass<S, P extends Policy> {
  readonly settings?: Shape<S>;
  /**
   * Build the instance, once, before it serves (at load and at every
   * reload). Throw (e.g. `PolicyError.badConfig` for a setting out of range)
   * to refuse the domain: the old version keeps serving.
   */
  configure(domain: Domain, settings: S): P;
}

/**
 * Decode the settings table of domain `domain` with `shape`, refusing
 * settings it does not read: a typo must not silently leave a default in place.
 */
export function decodeSettings<S>(shape: Shape<S>, domain: string, bytes: Uint8Array): S {
  const table = `[domains.${domain}.settings]`;
  let tree: unknown;
  try {
    tree = bytes.length === 0 ? {} : decodeMsgpack(bytes);
  } catch (e) {
    throw PolicyError.badConfig(`${table} could not be read: ${e instanceof Error ? e.message : String(e)}`);
  }
  let decoded: { value: S; ignored: string[] };
  try {
    decoded = read(shape, tree);
  } catch (e) {
    if (e instanceof Mismatch) throw PolicyError.badConfig(inSettings(table, e));
    throw e;
  }
  if (decoded.ignored.length > 0) {
    const names = decoded.ignored.map((p) => `\`${p}\``).join(', ');
    throw PolicyError.badConfig(`unknown setting ${names} in ${table}: this policy does not read it (a typo?)`);
  }
  return decoded.value;
}

/**
 * Build the instance as the gateway does: `settings` (a plain object, or the
 * gateway's MessagePack as a {@link Value}) is encoded, decoded with the
 * class's shape (errors name the setting), then `configure` runs. For tests.
 */
export function fromSettings<S, P extends Policy>(cls: PolicyClass<S, P>, domain: Domain, settings: unknown = {}): P {
  const shape = (cls.settings ?? noSettings) as Shape<S>;
  return cls.configure(domain, decodeSettings(shape, domain.name, Value.encode(settings).bytes));
}

/** The world's exports, as componentize-js calls them: an error is thrown as the contract's `policy-error`. */
export interface Exports {
  configure(domain: wit.Domain): void;
  plan(request: wit.Request): wit.Decision;
  planAfterRead(request: wit.Request, replies: Array<Uint8Array | undefined>): wit.Plan;
  planBatch(requests: wit.Request[]): Array<{ tag: 'ok'; val: wit.Decision } | { tag: 'err'; val: wit.PolicyError }>;
}

/**
 * The contract's form of anything thrown: a {@link PolicyError} as it is;
 * anything else (a bug: a `TypeError`, a failed assertion) as an internal
 * error with its message, its stack written to the gateway's log. Nothing
 * escapes: inside the gateway an uncaught exception would trap the instance.
 */
export function toWitError(e: unknown): wit.PolicyError {
  if (e instanceof PolicyError) return e.toWit();
  const message = e instanceof Error ? `${e.name}: ${e.message}` : `uncaught: ${String(e)}`;
  const stack = e instanceof Error ? (e.stack ?? '') : '';
  // V8's stack starts with the message, SpiderMonkey's (inside the gateway) is frames only.
  log('error', stack.startsWith(message) ? stack : `${message}\n${stack}`.trimEnd());
  return { tag: 'internal', val: message };
}

/** `plan`, if it is a {@link Plan}; else an internal error saying what `what` returned instead (null, a Promise). */
function planOf(what: string, plan: unknown): Plan {
  if (plan instanceof Plan) return plan;
  throw PolicyError.internal(`${what} returned ${shown(plan)}, not a Plan`);
}

/**
 * Export a policy as the plugin's implementation of the `sluice:policy`
 * world. The policy module re-exports what this returns:
 *
 * ```ts
 * export const { configure, plan, planAfterRead, planBatch } = exportPolicy(MyPolicy);
 * ```
 */
export function exportPolicy<S, P extends Policy>(cls: PolicyClass<S, P>): Exports {
  consoleToLog();
  let policy: P | undefined;
  const configured = (what: string): P => {
    if (policy === undefined) throw PolicyError.internal(`${what} was called before configure`);
    return policy;
  };
  const guard = <T>(f: () => T): T => {
    try {
      return f();
    } catch (e) {
      throw toWitError(e);
    }
  };
  const decide = (p: P, req: Request): Plan => planOf('plan', p.plan(req));
  return {
    configure(d) {
      guard(() => {
        const domain = new Domain(d.name, d.ttlMs, d.minTtlMs, d.maxTtlMs);
        const shape = (cls.settings ?? noSettings) as Shape<S>;
        policy = cls.configure(domain, decodeSettings(shape, domain.name, d.settings));
      });
    },
    plan(r) {
      return guard(() => decide(configured('plan'), Request.fromWit(r)).toDecision());
    },
    planAfterRead(r, replies) {
      return guard(() => {
        const p = configured('planAfterRead');
        if (p.planAfterRead === undefined) {
          throw PolicyError.internal('this policy planned a read (Plan.read) but has no planAfterRead to plan the writes');
        }
        const plan = planOf('planAfterRead', p.planAfterRead(Request.fromWit(r), Replies.fromWit(replies)));
        if (plan.isRead) {
          throw PolicyError.internal(
            'planAfterRead answered with a read plan (Plan.read): a read-then-write has at most two rounds, so the plan after a read runs (new Plan())',
          );
        }
        return plan.toWit();
      });
    },
    planBatch(rs) {
      const fail = (e: unknown) => {
        const val = toWitError(e);
        return rs.map(() => ({ tag: 'err' as const, val }));
      };
      let p: P;
      let plans: unknown;
      try {
        p = configured('planBatch');
        const reqs = rs.map((r) => Request.fromWit(r));
        plans =
          p.planBatch !== undefined
            ? p.planBatch(reqs)
            : reqs.map((req) => {
                try {
                  return decide(p, req);
                } catch (e) {
                  return e instanceof PolicyError ? e : PolicyError.internal(toWitError(e).val);
                }
              });
        if (!Array.isArray(plans)) {
          throw PolicyError.internal(`planBatch answered ${shown(plans)}, not an array of ${rs.length} plans: one each, in order`);
        }
        if (plans.length !== rs.length) {
          throw PolicyError.internal(`planBatch answered ${plans.length} plans for ${rs.length} requests: one each, in order`);
        }
      } catch (e) {
        return fail(e);
      }
      return (plans as unknown[]).map((plan, i) => {
        try {
          if (plan instanceof PolicyError) throw plan;
          if (!(plan instanceof Plan)) throw PolicyError.internal(`planBatch answered ${shown(plan)} for request ${i}, not a Plan or a PolicyError`);
          return { tag: 'ok' as const, val: plan.toDecision() };
        } catch (e) {
          return { tag: 'err' as const, val: toWitError(e) };
        }
      });
    },
  };
}
