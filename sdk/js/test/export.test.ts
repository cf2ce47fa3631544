// The glue exportPolicy builds, driven natively with the contract's types: settings decoded once,
// requests in, plans out, one by one or as a batch, a read's replies back in, and nothing thrown
// past it but the contract's policy-error (inside the gateway anything else traps the instance).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Delete, Domain, exportPolicy, Get, Plan, PolicyError, Replies, Request, Set, t, Value } from '@sluice/policy';
import { logged } from '@sluice/policy/testing';
import type * as wit from 'sluice:policy/types@0.3.0';

class Echo {
  static readonly settings = t.object({ n: t.u32 });
  private constructor(readonly domain: Domain, readonly n: number) {}
  static configure(domain: Domain, s: { n: number }): Echo {
    return new Echo(domain, s.n);
  }
  plan(req: Request): Plan {
    const key = this.domain.key(req.key);
    if (req.key === 'boom') throw new TypeError('boom');
    switch (req.operation) {
      case 'delete': // delete only what holds 42: read first
        return Plan.read().respondWith(new Get(key));
      case 'publish': // misplaced writes, refused at the boundary
        return req.key === 'write' ? Plan.read().then(new Delete(key)) : Plan.read().then(new Get(key));
      default:
        return new Plan().respondWith(new Set(key, req.value(), { ttlMs: this.n }));
    }
  }
  planAfterRead(req: Request, read: Replies): Plan {
    const stored = read.decode(0, t.u8);
    if (req.operation === 'publish') return Plan.read();
    return stored === 42 ? new Plan().then(new Delete(this.domain.key(req.key))).atomic() : new Plan();
  }
}

const domain = (settings: unknown): wit.Domain => ({
  name: 'd', ttlMs: 60_000n, minTtlMs: 1_000n, maxTtlMs: 86_400_000n, settings: Value.encode(settings).bytes,
});
const request = (key: string, operation: wit.Operation, value?: Uint8Array): wit.Request => ({
  key, operation, value, fields: [], ttlMs: undefined, nowMs: 0n, entropy: 0n,
  stats: { hits: 0n, misses: 0n, writes: 0n, lastReadMs: 0n, readRate: 0 },
});
const put = () => request('k', 'put', new Uint8Array([0x2a]));
const del = () => request('k', 'delete');
/** What the export threw: the contract's policy-error, or a failed test. */
const thrown = (f: () => unknown): wit.PolicyError => {
  try {
    f();
  } catch (e) {
    assert.ok(!(e instanceof Error), `an Error escaped the export: ${String(e)}`);
    return e as wit.PolicyError;
  }
  assert.fail('nothing thrown');
};

test('the export configures once and plans with the instance', () => {
  const x = exportPolicy(Echo);
  assert.deepEqual(thrown(() => x.plan(put())), { tag: 'internal', val: 'plan was called before configure' });
  assert.deepEqual(x.planBatch([put()]), [{ tag: 'err', val: { tag: 'internal', val: 'planBatch was called before configure' } }]);
  assert.deepEqual(thrown(() => x.configure(domain({ m: 1 }))), { tag: 'bad-config', val: '[domains.d.settings] needs `n`' });
  x.configure(domain({ n: 7 }));
  const run = x.plan(put());
  assert.ok(run.tag === 'run');
  assert.equal(run.val.respond, 0);
  assert.deepEqual(run.val.actions, [{ tag: 'set', val: { key: 'd:k', value: new Uint8Array([0x2a]), ttlMs: 7n } }]);

  // A batch: one answer per request, in order, each on its own.
  const batch = x.planBatch([put(), request('j', 'get'), del(), request('write', 'publish')]);
  assert.deepEqual(batch.map((r) => (r.tag === 'ok' ? r.val.tag : r.val.tag)), ['run', 'bad-request', 'read', 'internal']);
  assert.match(String(batch[3]?.val.val), /action 0 \(delete "d:write"\) writes/);
  assert.deepEqual(x.planBatch([]), []);

  // Read, then write with what was read.
  const read = x.plan(del());
  assert.ok(read.tag === 'read');
  assert.deepEqual(read.val.actions, [{ tag: 'get', val: { key: 'd:k' } }]);
  const write = x.planAfterRead(del(), [new Uint8Array([0x2a])]);
  assert.ok(write.atomic);
  assert.deepEqual(write.actions, [{ tag: 'delete', val: { key: 'd:k' } }]);
  assert.deepEqual(x.planAfterRead(del(), [undefined]).actions, []);
  assert.match(thrown(() => x.planAfterRead(del(), [new Uint8Array([0xa1, 0x78])])).val, /^reply 0 of the read/);
  assert.match(thrown(() => x.planAfterRead(request('k', 'publish'), [undefined])).val, /at most two rounds/);
});

test('a thrown Error becomes an internal error, its stack goes to the log, and the instance serves on', () => {
  const x = exportPolicy(Echo);
  x.configure(domain({ n: 1 }));
  logged.length = 0;
  assert.deepEqual(thrown(() => x.plan(request('boom', 'get'))), { tag: 'internal', val: 'TypeError: boom' });
  assert.equal(logged.length, 1);
  assert.equal(logged[0]?.[0], 'error');
  assert.match(logged[0]![1], /^TypeError: boom\n\s+at Echo.plan /, 'the stack is logged');
  const batch = x.planBatch([request('boom', 'get'), put()]);
  assert.deepEqual(batch[0], { tag: 'err', val: { tag: 'internal', val: 'TypeError: boom' } });
  assert.equal(batch[1]?.tag, 'ok');
  assert.equal(x.plan(put()).tag, 'run', 'still serving');
});

test('a policy that plans no reads needs no planAfterRead, and its batch asks plan for each', () => {
  const x = exportPolicy({ configure: (d: Domain) => ({ plan: (r: Request) => new Plan().respondWith(new Get(d.key(r.key))) }) });
  x.configure(domain({}));
  assert.match(thrown(() => x.planAfterRead(del(), [])).val, /no planAfterRead/);
  const batch = x.planBatch([request('a', 'get'), request('b', 'get')]);
  assert.deepEqual(batch.map((r) => r.tag === 'ok' && r.val.val.actions[0]?.val), [{ key: 'd:a' }, { key: 'd:b' }]);
  assert.deepEqual(thrown(() => x.configure(domain({ ttl: 1 }))), {
    tag: 'bad-config', val: 'unknown setting `ttl` in [domains.d.settings]: this policy takes no settings',
  });
});

test('a batch answered with the wrong count fails every request', () => {
  const x = exportPolicy({ configure: () => ({ plan: () => new Plan(), planBatch: () => [new Plan()] }) });
  x.configure(domain({}));
  const why = { tag: 'err', val: { tag: 'internal', val: 'planBatch answered 1 plans for 2 requests: one each, in order' } };
  assert.deepEqual(x.planBatch([put(), put()]), [why, why]);
  const refusing = exportPolicy({ configure: () => ({ plan: () => new Plan(), planBatch: () => [PolicyError.badRequest('no')] }) });
  refusing.configure(domain({}));
  assert.deepEqual(refusing.planBatch([put()]), [{ tag: 'err', val: { tag: 'bad-request', val: 'no' } }]);
});

test('a domain names its keys and keeps TTLs in ms', () => {
  const d = Domain.named('cache').withTtlS(5, 1, 60);
  assert.equal(d.key('user:1'), 'cache:user:1');
  assert.deepEqual([d.ttlMs, d.minTtlMs, d.maxTtlMs], [5_000n, 1_000n, 60_000n]);
  assert.equal(console.log.name, 'log', 'natively, console is left alone');
});
