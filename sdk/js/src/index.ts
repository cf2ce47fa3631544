/**
 * Write Sluice domain policies in TypeScript.
 *
 * A policy decides, the gateway does. An instance is built once from its
 * domain and the domain's `[settings]` table (the class's static
 * `configure`), then answers each {@link Request} with a {@link Plan}: a few
 * Redis actions, which one's reply is the response, and hints. It mirrors
 * the Rust SDK (`sluice-sdk`); the contract is `sluice:policy@0.3.0`
 * (`sdk/wit/policy.wit`), whose types `jco guest-types` generates into
 * `types/`. The component is built with componentize-js (StarlingMonkey);
 * natively, the same code runs under Node's test runner.
 */
/// <reference path="../types/policy.d.ts" />
export * from './actions.js';
export { PolicyError, type ErrorKind } from './errors.js';
export { log, type LogLevel } from './log.js';
export { Plan, type CacheHint, type Step } from './plan.js';
export { decodeSettings, exportPolicy, fromSettings, toWitError, type Exports, type Policy, type PolicyClass } from './policy.js';
export { Replies } from './replies.js';
export { Domain, Request, type AccessStats, type Int64, type Operation } from './request.js';
export { noSettings, t, type Infer, type Shape } from './schema.js';
export { Value } from './value.js';
