// The scaffold template (`sluice plugin new NAME --lang typescript`) passes its test as generated,
// anywhere: filled in here as the scaffold does ({{name}}, {{sdk}}) in a folder outside the repository.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';

// sluice-ts runs the tests from the SDK's folder.
const sdkJs = process.cwd();
const template = join(sdkJs, 'template');

test('the template fills in to a project whose test passes', () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'sluice-template-')), 'my-policy');
  try {
    cpSync(template, dir, { recursive: true });
    for (const f of readdirSync(dir, { recursive: true, withFileTypes: true })) {
      if (!f.isFile()) continue;
      const path = join(f.parentPath, f.name);
      const text = readFileSync(path, 'utf8').replaceAll('{{name}}', 'my-policy').replaceAll('{{sdk}}', resolve(sdkJs, '..'));
      assert.doesNotMatch(text, /\{\{/, `${path}: only {{name}} and {{sdk}} are placeholders`);
      writeFileSync(path, text);
    }
    // Not as a child of this test run (NODE_TEST_CONTEXT would make its report a stream for us to parse).
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_TEST_CONTEXT'));
    const run = spawnSync(process.execPath, [join(sdkJs, 'bin/sluice-ts.mjs'), 'test', dir], { encoding: 'utf8', env });
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^# pass 1$/m);
    assert.match(run.stdout, /^# fail 0$/m);
  } finally {
    rmSync(resolve(dir, '..'), { recursive: true, force: true });
  }
});
