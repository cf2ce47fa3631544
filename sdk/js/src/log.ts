/**
 * The gateway's log: a policy has no stdio (inside the gateway, writing to
 * stdout or stderr traps the instance), so lines go through the contract's
 * `log` import, tagged with the plugin's name.
 */
import { log as witLog } from 'sluice:policy/log@0.3.0';

/** The level of a log line. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/** Write a line to the gateway's log. In native tests the line goes to standard error. */
export function log(level: LogLevel, message: string): void {
  witLog(level, message);
}

/** How a console argument reads in a log line (objects as JSON, bigints as numbers). */
export function describe(x: unknown): string {
  if (typeof x === 'string') return x;
  if (x instanceof Error) return x.stack ?? String(x);
  try {
    const json = JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    return json ?? String(x);
  } catch {
    return String(x);
  }
}

/**
 * Inside the component, send `console.*` to the gateway's log (the component
 * is built with stdio disabled, so it would otherwise vanish). Natively
 * (Node runs the tests) the console is left alone.
 */
export function consoleToLog(): void {
  if (Reflect.get(globalThis, 'process') !== undefined) return;
  const levels: Array<[keyof Console, LogLevel]> = [
    ['log', 'info'],
    ['info', 'info'],
    ['debug', 'debug'],
    ['trace', 'trace'],
    ['warn', 'warn'],
    ['error', 'error'],
  ];
  for (const [method, level] of levels) {
    Reflect.set(console, method, (...args: unknown[]) => log(level, args.map(describe).join(' ')));
  }
}
