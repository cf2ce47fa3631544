import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Domain, fromSettings, Get, PolicyError, Request, Set } from '@sluice/policy';
import { FixedTtl } from '../src/policy.js';

const policy = (): FixedTtl => FixedTtl.configure(Domain.named('cache'));

test('put stores the value under the domain with the client’s ttl', () => {
  const req = Request.put('user:1', 42).withTtlMs(9_000);
  const plan = policy().plan(req);
  assert.equal(plan.actions.length, 1);
  const set = plan.actions[0];
  assert.ok(set instanceof Set, `unexpected plan ${plan.actions}`);
  assert.equal(set.key, 'cache:user:1');
  assert.ok(set.value.equals(req.value()), 'stored as it came');
  assert.equal(set.ttlMs, 9_000n);
  assert.equal(plan.response, undefined);
});

test('get reads the key and responds with it', () => {
  const plan = policy().plan(Request.get('k'));
  assert.deepEqual(plan.actions, [new Get('cache:k')]);
  assert.equal(plan.response, plan.actions[0]);
});

test('put without value is a bad request and settings are refused', () => {
  assert.throws(() => policy().plan(new Request('k', 'put')), PolicyError.badRequest('this operation needs a value'));
  assert.throws(
    () => fromSettings(FixedTtl, Domain.named('cache'), { ttl_s: 5 }),
    (e) => e instanceof PolicyError && e.kind === 'bad-config' && e.message.includes('`ttl_s`'),
  );
});
