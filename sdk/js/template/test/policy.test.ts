import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Domain, Expire, fromSettings, Get, Request } from '@sluice/policy';
import { Store } from '../src/policy.js';

test('a sliding read answers the value and renews its ttl', () => {
  const policy = fromSettings(Store, Domain.named('demo'), { sliding: true });
  const plan = policy.plan(Request.get('k'));
  assert.deepEqual(plan.actions, [new Get('demo:k'), new Expire('demo:k', 60_000)]);
  assert.equal(plan.response, plan.actions[0]);
});
