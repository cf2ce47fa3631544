// docs/plugin-guide.md shows this policy and its test as they are: the guide cannot drift from the code.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

// sluice-ts runs the tests from the policy's folder.
const read = (path: string): string => readFileSync(join(process.cwd(), path), 'utf8');

test('the guide’s TypeScript chapter shows src/policy.ts and test/policy.test.ts verbatim', () => {
  const guide = read('../../docs/plugin-guide.md');
  const start = guide.indexOf('<!-- typescript chapter -->');
  const end = guide.indexOf('<!-- end typescript chapter -->');
  assert.ok(start >= 0 && end > start, 'the guide has the TypeScript chapter markers');
  const chapter = guide.slice(start, end);
  for (const file of ['src/policy.ts', 'test/policy.test.ts']) {
    assert.ok(chapter.includes('```ts\n' + read(file) + '```\n'), `the chapter shows ${file} as it is`);
  }
});
