// Plans and actions: what a policy builds reaches the contract as the Rust SDK's would.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CounterAdd, CounterGet, Delete, Expire, Get, HashAdd, HashDelete, HashGet, HashSet, KeyTtl, ListPush, ListRange,
  ListRemove, Num, Plan, PolicyError, Script, Set, SetAdd, SetContains, SetCount, SetIfAbsent, SetMembers, SetRemove,
  StreamAdd, Value, ZsetAdd, ZsetCount, ZsetIncr, ZsetRange, ZsetRemove, ZsetScore, ZsetTrim, t,
} from '@sluice/policy';

const internal = (plan: Plan): string => {
  assert.ok(plan.error?.kind === 'internal', `expected an error, got ${String(plan.error)}`);
  return plan.error.message;
};

test('the response is the action its handle names, whatever the order', () => {
  const plan = new Plan();
  const read = plan.add(new Get('d:a'));
  plan.add(new Get('d:b'));
  plan.respond(read);
  assert.equal(plan.response?.key, 'd:a');
  assert.equal(plan.toWit().respond, 0);
  assert.equal(new Plan().then(new Get('d:a')).respondWith(new Get('d:b')).response?.key, 'd:b');
  assert.equal(new Plan().then(new Get('d:a')).response, undefined);
  const foreign = new Plan().respond(new Plan().then(new Get('x')).add(new Get('d:a')));
  assert.throws(() => foreign.toWit(), PolicyError.internal('the plan responds with step 1, but it has 0 actions (a step of another plan?)'));
});

test('values are encoded, Values pass through, numbers become the contract’s bigints', () => {
  const v = Value.encode('hello');
  const plan = new Plan()
    .then(new Set('d:a', 42, { ttlMs: 5_000 }))
    .then(new Set('d:b', v))
    .then(new Script('bump', { keys: ['d:a'], args: [1, 2] }))
    .ttlMs(7)
    .cache({ keep: true, maxStaleMs: 100 });
  const wit = plan.toWit();
  assert.deepEqual(wit.actions[0], { tag: 'set', val: { key: 'd:a', value: new Uint8Array([42]), ttlMs: 5_000n } });
  assert.deepEqual(wit.actions[1], { tag: 'set', val: { key: 'd:b', value: v.bytes, ttlMs: undefined } });
  assert.deepEqual(wit.actions[2], { tag: 'script', val: { name: 'bump', keys: ['d:a'], args: [new Uint8Array([1]), new Uint8Array([2])] } });
  assert.equal(plan.actions[2]!.key, 'd:a');
  assert.equal((plan.actions[2] as Script).args[1]!.decode(t.u8), 2);
  assert.deepEqual([wit.ttlMs, wit.cache], [7n, { keep: true, maxStaleMs: 100n }]);
  assert.deepEqual(new Expire('d:a', 10n ** 15n).toWit().val, { key: 'd:a', ttlMs: 10n ** 15n });
});

test('an action that cannot be built fails the plan, with the first error', () => {
  assert.match(internal(new Plan().respondWith(new Set('d:a', () => 1))), /^a value could not be encoded as MessagePack/);
  assert.equal(internal(new Plan().then(new Expire('d:a', -1))), 'Expire ttlMs must be a whole number, 0 or more, not -1');
  assert.equal(internal(new Plan().then(new Set('d:a', 1, { ttlMs: 1.5 }))), 'Set ttlMs must be a whole number, 0 or more, not 1.5');
  assert.match(internal(new Plan().respondWith(ZsetRange.rank('d:z', 0, 9, { limit: 3 } as object))), /score ranges/);
  assert.match(internal(new Plan().respondWith(ZsetRange.score('d:z', 10, 1, { rev: true }))), /score bounds are \(min, max\)/);
  assert.equal(internal(new Plan().then(new HashDelete('d:h', []))), 'HashDelete of "d:h" with no fields: it needs one at least');
  assert.match(internal(new Plan().then(new HashAdd('d:h', 'n', NaN))), /finite/);
  assert.match(internal(new Plan().then(new SetRemove('d:s', []))), /no members/);
  assert.match(internal(new Plan().then(new ZsetRemove('d:z', []))), /no members/);
  assert.match(internal(new Plan().respondWith(new SetMembers('d:s', 0))), /count of 0/);
  assert.equal(internal(new Plan().then(ListPush.head('d:l', []))), 'ListPush of "d:l" with no values: it needs one at least');
  assert.match(internal(new Plan().then(ListPush.tail('d:l', [1], { keep: 0 }))), /keep 0/);
  assert.match(internal(new Plan().respondWith(ListRange.first('d:l', 0))), /count of 0/);
  const twice = new Plan().then(new Expire('d:a', -1)).then(new HashDelete('d:h', []));
  assert.throws(() => twice.toDecision(), PolicyError.internal('Expire ttlMs must be a whole number, 0 or more, not -1'));
});

test('counters count in ints or floats and refuse contradictions', () => {
  const wit = new Plan().respondWith(new CounterAdd('d:c', -2, { cap: -10, ttlMs: 5_000 })).toWit();
  assert.deepEqual(wit.actions[0], {
    tag: 'counter-add',
    val: { key: 'd:c', by: { tag: 'int', val: -2n }, cap: { tag: 'int', val: -10n }, ttlMs: 5_000n },
  });
  const float = new Plan().then(new CounterAdd('d:c', 0.25, { cap: 1 })).toWit().actions[0];
  assert.deepEqual(float?.val, { key: 'd:c', by: { tag: 'float', val: 0.25 }, cap: { tag: 'int', val: 1n }, ttlMs: undefined });
  assert.deepEqual(Num.float(1).toWit(), { tag: 'float', val: 1 });
  assert.equal(
    internal(new Plan().then(new CounterAdd('d:c', 1, { cap: 2.5 }))),
    "CounterAdd by 1 with cap 2.5: an int counter's cap is whole; for a float counter, add a float",
  );
  assert.match(internal(new Plan().then(new CounterAdd('d:c', NaN))), /finite/);
  assert.match(internal(new Plan().then(new CounterAdd('d:c', Num.float(1), { cap: Infinity }))), /cap inf: a cap is a finite number/);
  assert.equal(String(Num.float(1)), '1.0');
  assert.equal(String(Num.of(-4n)), '-4');
});

test('a read plan is a read decision and may not write', () => {
  assert.equal(new Plan().respondWith(new Get('d:a')).toDecision().tag, 'run');
  const read = Plan.read().then(new Get('d:a')).respondWith(ZsetRange.rank('d:z', 0, 9));
  const d = read.toDecision();
  assert.ok(d.tag === 'read' && d.val.respond === 1);
  const writes = Plan.read().then(new Get('d:a')).then(new Script('bump', { keys: ['d:a'] }));
  assert.throws(
    () => writes.toDecision(),
    PolicyError.internal(
      'a read plan (Plan.read) may only read, but action 1 (script "d:a") writes; the writes go in the plan planAfterRead ' +
        'returns. Reads: get, hash-get, zset-range, zset-score, zset-count, set-contains, set-members, set-count, list-range, key-ttl, counter-get',
    ),
  );
});

test('the reads of contract 0.3 are reads and its writes are not', () => {
  const reads = [
    new Get('d:a'), new HashGet('d:h'), ZsetRange.rank('d:z', 0, 9), new ZsetScore('d:z', 'm'), new ZsetCount('d:z'),
    new SetContains('d:s', 'm'), new SetMembers('d:s', 10), new SetCount('d:s'), ListRange.first('d:l', 10),
    new KeyTtl('d:a'), new CounterGet('d:c'),
  ];
  const plan = Plan.read();
  reads.forEach((a) => plan.then(a));
  assert.equal(plan.toDecision().val.actions.length, 11);
  const writes = [
    new Set('d:a', 1), new Delete('d:a'), new Expire('d:a', 1), new HashSet('d:h', { f: 1 }), new StreamAdd('d:x', [['f', 1]]),
    new ZsetAdd('d:z', 'm', 1), new ZsetIncr('d:z', 'm', 1), new ZsetTrim('d:z', 0, 1), new SetAdd('d:s', ['m']),
    new Script('s', { keys: ['d:a'] }), new CounterAdd('d:c', 1), new SetIfAbsent('d:a', 1), new HashDelete('d:h', ['f']),
    new HashAdd('d:h', 'f', 1), new SetRemove('d:s', ['m']), new ZsetRemove('d:z', ['m']), ListPush.head('d:l', [1]),
    ListRemove.all('d:l', 1),
  ];
  assert.equal(reads.length + writes.length, 29, 'every action of the contract');
  for (const w of writes) {
    assert.ok(!w.isRead, w.name);
    assert.throws(() => Plan.read().then(w).toDecision(), (e) => e instanceof PolicyError && e.message.includes(`(${w.name} `));
    assert.equal(w.toWit().tag, w.name);
  }
});

test('sorted-set, list, hash and stream options are named and reach the contract', () => {
  const plan = new Plan()
    .then(new ZsetAdd('d:z', 'ann', 12, { condition: 'if-greater' }))
    .then(ZsetTrim.keepHighest('d:z', 100))
    .respondWith(ZsetRange.score('d:z', 0, Infinity, { rev: true, limit: 5 }))
    .then(ListPush.head('d:l', [1, 2], { keep: 3, ttlMs: 4_000 }))
    .then(ListRange.last('d:l', 5))
    .then(new ListRemove('d:l', 'x', -2))
    .then(new HashGet('d:h', { fields: ['a'] }))
    .then(new StreamAdd('d:x', Value.encode({ a: 1 }).fields(), { maxLen: 1000 }))
    .then(new ZsetAdd('d:z', [{ member: 'a', score: 1 }, { member: 'b', score: 2 }], { ttlMs: 9 }))
    .atomic();
  const wit = plan.toWit();
  assert.ok(wit.atomic);
  assert.deepEqual(wit.actions.map((a) => a.val), [
    { key: 'd:z', members: [{ member: 'ann', score: 12 }], condition: 'if-greater', ttlMs: undefined },
    { key: 'd:z', start: 0n, stop: -101n },
    { key: 'd:z', bounds: { tag: 'score', val: [0, Infinity] }, reverse: true, limit: 5 },
    { key: 'd:l', values: [new Uint8Array([1]), new Uint8Array([2])], end: 'head', keep: 3, ttlMs: 4_000n },
    { key: 'd:l', start: -5n, count: 5 },
    { key: 'd:l', value: new Uint8Array([0xa1, 0x78]), count: -2n },
    { key: 'd:h', fields: ['a'] },
    { stream: 'd:x', fields: [{ name: 'a', value: new Uint8Array([1]) }], maxLen: 1000n },
    { key: 'd:z', members: [{ member: 'a', score: 1 }, { member: 'b', score: 2 }], condition: 'always', ttlMs: 9n },
  ]);
  assert.deepEqual(ZsetTrim.keepLowest('d:z', 10).toWit().val, { key: 'd:z', start: 10n, stop: -1n });
  assert.deepEqual(ZsetRange.rank('d:z', 0, -1).toWit().val, { key: 'd:z', bounds: { tag: 'rank', val: [0n, -1n] }, reverse: false, limit: undefined });
});
