/**
 * For native tests: what the policy wrote to the gateway's log. In a test
 * build (`sluice-ts test`) this module stands in for the contract's `log`
 * import, so every line lands here (and on standard error, as the Rust
 * SDK's native `log` does).
 */
import type { LogLevel } from './log.js';

/** Every line logged since the process started (or since `logged.length = 0`). */
export const logged: Array<[LogLevel, string]> = [];

/** The contract's `log`, natively. */
export function log(level: LogLevel, message: string): void {
  logged.push([level, message]);
  process.stderr.write(`[${level}] ${message}\n`);
}
