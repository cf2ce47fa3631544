// Nothing a policy builds crosses the component boundary unchecked: inside the gateway an
// out-of-range integer, a wrong type or a non-array where a list is due traps the instance.
// Each becomes an internal PolicyError naming the action and field, and no builder throws.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CounterAdd, exportPolicy, Get, HashAdd, HashDelete, HashSet, ListPush, Num, Plan, PolicyError, Replies,
  Request, Script, SetAdd, SetContains, t, Value, ZsetAdd, ZsetIncr, ZsetRange, ZsetTrim,
} from '@sluice/policy';
import { logged } from '@sluice/policy/testing';
import type * as wit from 'sluice:policy/types@0.3.0';

/** A value of the wrong type, as plain JS (or a cast) would pass it. */
const bad = (x: unknown): never => x as never;
const internal = (plan: Plan): string => {
  assert.ok(plan.error?.kind === 'internal', `expected an error, got ${String(plan.error)}`);
  return plan.error.message;
};
/** What `f` threw: an internal PolicyError's message. */
const thrownInternal = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof PolicyError && e.kind === 'internal', `not an internal PolicyError: ${String(e)}`);
    return e.message;
  }
  assert.fail('nothing thrown');
};
const domain = (): wit.Domain => ({ name: 'd', ttlMs: 60_000n, minTtlMs: 1_000n, maxTtlMs: 86_400_000n, settings: new Uint8Array() });
const request = (key: string): wit.Request => ({
  key, operation: 'get', value: undefined, fields: [], ttlMs: undefined, nowMs: 0n, entropy: 0n,
  stats: { hits: 0n, misses: 0n, writes: 0n, lastReadMs: 0n, readRate: 0 },
});
const exported = (policy: { plan(r: Request): unknown; planBatch?(rs: Request[]): unknown }) => {
  const x = exportPolicy({ configure: () => policy as { plan(r: Request): Plan } });
  x.configure(domain());
  return x;
};

test("a plan's TTL and cache hint are checked as u64 when the plan crosses, not by the builder", () => {
  const u64 = 'a whole number from 0 to 18446744073709551615';
  assert.equal(thrownInternal(() => new Plan().ttlMs(-1).toWit()), 'Plan ttlMs must be a whole number, 0 or more, not -1');
  assert.equal(thrownInternal(() => new Plan().ttlMs(2n ** 64n).toWit()), `Plan ttlMs must be ${u64}, not 18446744073709551616`);
  const half = new Plan().ttlMs(1.5); // no RangeError here
  assert.equal(thrownInternal(() => half.toDecision()), 'Plan ttlMs must be a whole number, 0 or more, not 1.5');
  const stale = new Plan().cache({ keep: true, maxStaleMs: 1.5 });
  assert.equal(thrownInternal(() => stale.toWit()), 'Plan cache maxStaleMs must be a whole number, 0 or more, not 1.5');
  assert.deepEqual(new Plan().ttlMs(2n ** 64n - 1n).cache({ keep: false, maxStaleMs: 0 }).toWit().ttlMs, 2n ** 64n - 1n);
  const x = exported({ plan: () => new Plan().respondWith(new Get('d:k')).ttlMs(-1) });
  assert.throws(() => x.plan(request('k')), { tag: 'internal', val: 'Plan ttlMs must be a whole number, 0 or more, not -1' });
});

test('counter amounts are s64 when whole, and a float counter adds Num.float', () => {
  const s64 = 'a whole number from -9223372036854775808 to 9223372036854775807';
  assert.equal(internal(new Plan().then(new CounterAdd('d:c', 1e20))), `CounterAdd by must be ${s64}, not 100000000000000000000`);
  assert.equal(internal(new Plan().then(new CounterAdd('d:c', 1, { cap: -(2n ** 64n) }))), `CounterAdd cap must be ${s64}, not -18446744073709551616`);
  assert.equal(internal(new Plan().then(new HashAdd('d:h', 'f', 2n ** 63n))), `HashAdd by must be ${s64}, not 9223372036854775808`);
  assert.equal(internal(new Plan().then(new CounterAdd('d:c', Num.int(1.5)))), `CounterAdd by must be ${s64}, not 1.5`);
  assert.equal(internal(new Plan().then(new CounterAdd('d:c', '1' as unknown as number))), 'CounterAdd by must be a number, not a string ("1")');
  // As in Rust, a whole number is an int (INCRBY); a float counter says so with Num.float, even for a whole amount.
  assert.deepEqual(new CounterAdd('d:c', 2.0).by.toWit(), { tag: 'int', val: 2n });
  assert.deepEqual(new CounterAdd('d:c', Num.float(2), { cap: 10 }).toWit().val, {
    key: 'd:c', by: { tag: 'float', val: 2 }, cap: { tag: 'int', val: 10n }, ttlMs: undefined,
  });
  assert.deepEqual(new CounterAdd('d:c', -(2n ** 63n)).by.toWit(), { tag: 'int', val: -(2n ** 63n) });
});

test('scores are numbers and members, keys and fields strings, lists arrays', () => {
  assert.equal(internal(new Plan().then(new ZsetAdd('d:z', 'm', bad(1n)))), 'ZsetAdd score must be a number, not a bigint (1)');
  assert.equal(
    internal(new Plan().then(new ZsetAdd('d:z', [{ member: 'a', score: 1 }, { member: bad(2), score: 2 }]))),
    'ZsetAdd members[1].member must be a string, not 2',
  );
  assert.equal(internal(new Plan().then(new ZsetAdd('d:z', [{ member: 'a', score: bad('1') }]))), 'ZsetAdd members[0].score must be a number, not a string ("1")');
  assert.equal(internal(new Plan().then(new ZsetAdd('d:z', bad(null)))), 'ZsetAdd members must be an array, not null');
  assert.equal(internal(new Plan().then(new ZsetAdd('d:z', 'm', 1, { condition: bad('gt') }))), 'ZsetAdd condition must be always, if-absent, if-greater or if-less, not a string ("gt")');
  assert.equal(internal(new Plan().then(new ZsetIncr('d:z', 'm', bad(1n)))), 'ZsetIncr by must be a number, not a bigint (1)');
  assert.equal(internal(new Plan().respondWith(ZsetRange.score('d:z', bad('0'), 1))), 'ZsetRange min must be a number, not a string ("0")');
  assert.equal(internal(new Plan().respondWith(new Get(bad(7)))), 'Get key must be a string, not 7');
  assert.equal(internal(new Plan().respondWith(new SetContains('d:s', bad(undefined)))), 'SetContains member must be a string, not undefined');
  assert.equal(internal(new Plan().then(new HashDelete('d:h', bad('f')))), 'HashDelete fields must be an array, not a string ("f")');
  assert.equal(internal(new Plan().then(new SetAdd('d:s', ['a', bad(1)]))), 'SetAdd members[1] must be a string, not 1');
  assert.equal(internal(new Plan().then(new Script('s', { keys: bad('d:a') }))), 'Script keys must be an array, not a string ("d:a")');
  assert.equal(internal(new Plan().then(ListPush.tail('d:l', bad(1)))), 'ListPush values must be an array, not 1');
  assert.equal(internal(new Plan().then(new ListPush('d:l', bad('middle'), [1]))), 'ListPush end must be head or tail, not a string ("middle")');
  assert.equal(internal(new Plan().then(new HashSet('d:h', bad(5)))), 'HashSet fields must be [name, value] pairs or an object, not 5');
  assert.equal(internal(new Plan().then(new HashSet('d:h', [['a', 1], bad([2, 2])]))), 'HashSet fields[1] must be a [name, value] pair with a string name, not an array');
  assert.deepEqual(new HashSet('d:h', new Map([['a', 1]])).toWit().val, { key: 'd:h', fields: [{ name: 'a', value: new Uint8Array([1]) }], ttlMs: undefined });
});

test('a Value built from something other than bytes does not cross', () => {
  assert.equal(internal(new Plan().then(new HashSet('d:h', { a: new Value(bad('x')) }))), 'a Value holds MessagePack bytes (a Uint8Array), not a string ("x")');
});

test('an action a test pushed past plan.add still fails the plan', () => {
  const plan = new Plan();
  plan.actions.push(new Get(7 as never));
  assert.equal(thrownInternal(() => plan.toWit()), 'Get key must be a string, not 7');
  assert.equal(thrownInternal(() => new Plan().then(new Get('d:a')).respond('0' as never).toWit()), 'the plan responds with step "0", but it has 1 actions (a step of another plan?)');
});

test('Value.encode refuses what MessagePack would get wrong, naming where', () => {
  const err = (x: unknown) => thrownInternal(() => Value.encode(x));
  const pre = 'a value could not be encoded as MessagePack: ';
  assert.equal(err(2n ** 64n), `${pre}the value is 18446744073709551616, out of MessagePack's range (-9223372036854775808 to 18446744073709551615)`);
  assert.equal(err({ a: [1, -(2n ** 64n)] }), `${pre}\`a[1]\` is -18446744073709551616, out of MessagePack's range (-9223372036854775808 to 18446744073709551615)`);
  assert.equal(err(new Set([1])), `${pre}the value is a Set: encode an array ([...set])`);
  assert.equal(err({ m: new Map([['a', 1]]) }), `${pre}\`m\` is a Map: encode an object (Object.fromEntries(map))`);
  assert.equal(err([new Date(0)]), `${pre}\`[0]\` is a Date: encode a number (date.getTime()) or a string (date.toISOString())`);
  assert.equal(Value.encode(2n ** 64n - 1n).decode(), 2n ** 64n - 1n);
  assert.equal(Value.encode(-(2n ** 63n)).decode(), -(2n ** 63n));
  assert.deepEqual(Value.encode({ b: new Uint8Array([1]), n: null }).decode(), { b: new Uint8Array([1]), n: null });
  const cycle: Record<string, unknown> = {};
  cycle['self'] = cycle;
  assert.match(err(cycle), /^a value could not be encoded as MessagePack/);
  assert.match(internal(new Plan().then(new SetAdd('d:s', ['m'])).then(new HashSet('d:h', { when: new Date(0) }))), /the value is a Date/);
});

test('an object shape reads only own fields', () => {
  const shape = t.object({ constructor: t.optional(t.string), toString: t.string });
  assert.throws(() => Value.encode({}).decode(shape), PolicyError.badRequest('the value needs a `toString` field'));
  assert.deepEqual(Value.encode({ toString: 'x' }).decode(shape), { constructor: undefined, toString: 'x' });
});

test("plan's answer must be a Plan, and the message says so", () => {
  const x = exported({ plan: () => null });
  assert.throws(() => x.plan(request('k')), { tag: 'internal', val: 'plan returned null, not a Plan' });
  assert.deepEqual(x.planBatch([request('k')]), [{ tag: 'err', val: { tag: 'internal', val: 'plan returned null, not a Plan' } }]);
  const y = exported({ plan: () => Promise.resolve(new Plan()) });
  assert.throws(() => y.plan(request('k')), { tag: 'internal', val: 'plan returned a Promise, not a Plan' });
  const afterRead = exportPolicy({ configure: () => ({ plan: () => Plan.read(), planAfterRead: () => undefined as never }) });
  afterRead.configure(domain());
  assert.throws(() => afterRead.planAfterRead(request('k'), []), { tag: 'internal', val: 'planAfterRead returned undefined, not a Plan' });
});

test('a planBatch answer that is not an array fails each request, with the error logged once', () => {
  const x = exported({ plan: () => new Plan(), planBatch: () => ({ length: 2 }) });
  const why = { tag: 'err', val: { tag: 'internal', val: 'planBatch answered an object, not an array of 2 plans: one each, in order' } };
  assert.deepEqual(x.planBatch([request('a'), request('b')]), [why, why]);
  const odd = exported({ plan: () => new Plan(), planBatch: () => [new Plan(), 5] });
  assert.deepEqual(odd.planBatch([request('a'), request('b')])[1], {
    tag: 'err', val: { tag: 'internal', val: 'planBatch answered 5 for request 1, not a Plan or a PolicyError' },
  });
  const boom = exported({ plan: () => new Plan(), planBatch: () => { throw new TypeError('boom'); } });
  logged.length = 0;
  const out = boom.planBatch([request('a'), request('b'), request('c')]);
  assert.deepEqual(out.map((r) => r.val), Array(3).fill({ tag: 'internal', val: 'TypeError: boom' }));
  assert.equal(logged.length, 1, 'one stack in the log, not one per request');
});

test('keepHighest and keepLowest take a u32, as in Rust', () => {
  const u32 = 'a whole number from 0 to 4294967295';
  assert.equal(internal(new Plan().then(ZsetTrim.keepHighest('d:z', -5))), `ZsetTrim keepHighest must be ${u32}, not -5`);
  assert.equal(internal(new Plan().then(ZsetTrim.keepHighest('d:z', 1.5))), `ZsetTrim keepHighest must be ${u32}, not 1.5`);
  assert.equal(internal(new Plan().then(ZsetTrim.keepLowest('d:z', -5))), `ZsetTrim keepLowest must be ${u32}, not -5`);
  assert.deepEqual(ZsetTrim.keepHighest('d:z', 100).toWit().val, { key: 'd:z', start: 0n, stop: -101n });
  assert.deepEqual(ZsetTrim.keepLowest('d:z', 4294967295).toWit().val, { key: 'd:z', start: 4294967295n, stop: -1n });
});

test("a reply's index is a whole number in range", () => {
  const read = new Replies([1, undefined]);
  assert.equal(thrownInternal(() => read.decode(0.5)), 'reply 0.5 of the read: the read plan had 2 actions');
  assert.equal(thrownInternal(() => read.decode(2)), 'reply 2 of the read: the read plan had 2 actions');
  assert.equal(read.decode(1), undefined);
  assert.equal(read.decode(0, t.u8), 1);
});
