#!/usr/bin/env node
// The TypeScript policy toolchain, shared by the SDK, the repository's
// plugins and fixtures, and projects anywhere else (they call it by path:
// `node SDK/js/bin/sluice-ts.mjs test .`), so that a policy needs no
// `npm install` of its own: jco, componentize-js, TypeScript and rolldown
// are the SDK's (`npm ci` in sdk/js, or `make typescript-deps`).
//
//   sluice-ts test  [DIR]            type-check DIR (its tsconfig.json), then run its *.test.ts with node --test
//   sluice-ts build [DIR] [-o OUT]   DIR/src/policy.ts → a component (default DIR/build/NAME.wasm, NAME from package.json)
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SDK = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const WIT = resolve(SDK, '../wit/policy.wit');
const bin = (name) => join(SDK, 'node_modules', '.bin', name);

function die(message) {
  console.error(`sluice-ts: ${message}`);
  process.exit(1);
}

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...options });
  if (r.status !== 0) {
    if (r.stderr) process.stderr.write(r.stderr); // captured (jco's expected warnings), shown only on failure
    process.exit(r.status ?? 1);
  }
}

function testFiles(dir) {
  const out = [];
  for (const sub of ['src', 'test']) {
    const d = join(dir, sub);
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d, { recursive: true })) if (String(f).endsWith('.test.ts')) out.push(join(d, String(f)));
  }
  return out.sort();
}

async function test(dir) {
  run(process.execPath, [join(SDK, 'node_modules/typescript/bin/tsc'), '-p', dir]);
  const files = testFiles(dir);
  if (files.length === 0) die(`no *.test.ts under ${dir}/src or ${dir}/test: a policy without a test is not done`);
  // Node 20 cannot run TypeScript: bundle each test (the SDK included, the
  // `log` import replaced by a recorder) into plain JS, then run node --test.
  const { rolldown } = await import(join(SDK, 'node_modules/rolldown/dist/index.mjs'));
  const out = mkdtempSync(join(tmpdir(), 'sluice-ts-test-'));
  try {
    const input = Object.fromEntries(files.map((f) => [basename(f, '.ts'), f]));
    const build = await rolldown({
      input,
      cwd: dir,
      platform: 'node',
      tsconfig: join(dir, 'tsconfig.json'),
      external: [/^node:/],
      resolve: { alias: { 'sluice:policy/log@0.3.0': join(SDK, 'src/testing.ts') } },
      logLevel: 'warn',
    });
    await build.write({ dir: out, format: 'esm', sourcemap: true, entryFileNames: '[name].mjs' });
    await build.close();
    const entries = Object.keys(input).map((n) => join(out, `${n}.mjs`));
    run(process.execPath, ['--enable-source-maps', '--test', ...entries], { cwd: dir });
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

function build(dir, outArg) {
  const entry = join(dir, 'src/policy.ts');
  if (!existsSync(entry)) die(`${entry} is missing: a policy's entry is src/policy.ts`);
  let out = outArg;
  if (out === undefined) {
    const name = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name ?? basename(dir);
    out = join(dir, 'build', `${name}.wasm`);
  }
  out = resolve(out);
  mkdirSync(dirname(out), { recursive: true });
  // Written beside the target, then renamed: a gateway watching that folder never sees half a file.
  const tmp = join(dirname(out), `.${basename(out)}.tmp`);
  // jco adds imports to the WIT it is given when the policy uses a Node API
  // (node:fs, process): give it a copy, and refuse such a policy, since the
  // gateway provides nothing but the contract (and WASI without grants).
  const witDir = mkdtempSync(join(tmpdir(), 'sluice-ts-wit-'));
  const wit = join(witDir, 'policy.wit');
  copyFileSync(WIT, wit);
  try {
    run(process.execPath, [
      join(SDK, 'node_modules/@bytecodealliance/jco/dist/jco.js'), 'componentize', entry,
      '--wit', wit, '--world-name', 'policy',
    // No wasi:http (the gateway refuses it) and no stdio (a write would trap; console goes to `log`).
    '--disable', 'http', 'fetch-event', 'stdio',
      '-o', tmp,
    ], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    if (readFileSync(wit, 'utf8') !== readFileSync(WIT, 'utf8')) {
      rmSync(tmp, { force: true });
      die(`${entry} uses a Node API (node:fs, node:tty, process, ...) that jco would import from the host; the gateway provides none: a policy has no files, environment or stdio`);
    }
  } finally {
    rmSync(witDir, { recursive: true, force: true });
  }
  renameSync(tmp, out);
  console.log(`built ${out}`);
}

const [cmd, ...rest] = process.argv.slice(2);
const o = rest.indexOf('-o');
const outArg = o >= 0 ? rest.splice(o, 2)[1] : undefined;
const dir = resolve(rest[0] ?? '.');
if (!existsSync(join(SDK, 'node_modules/@bytecodealliance/jco'))) {
  die(`the SDK's toolchain is not installed: run \`make typescript-deps\` in the Sluice repository (or \`npm ci\` in ${SDK})`);
}
if (cmd === 'test') await test(dir);
else if (cmd === 'build') build(dir, outArg);
else die('usage: sluice-ts test [DIR] | build [DIR] [-o OUT.wasm]');
