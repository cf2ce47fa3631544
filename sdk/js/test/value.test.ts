// Values, settings and replies are read with shapes; a mismatch reads exactly as the Rust SDK says it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeSettings, noSettings, PolicyError, Replies, Request, t, Value } from '@sluice/policy';

const score = t.object({ member: t.string, score: t.number });
const badRequest = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof PolicyError && e.kind === 'bad-request', String(e));
    return e.message;
  }
  assert.fail('no error');
};

test('a value of the wrong shape is explained in plain words', () => {
  const err = (x: unknown, shape: Parameters<Value['decode']>[0]) => badRequest(() => Value.encode(x).decode(shape));
  assert.equal(err('test', score), 'the value must be a map (an object) for this domain, not a string ("test")');
  assert.equal(err(5, score), 'the value must be a map (an object) for this domain, not 5');
  assert.equal(err({ member: 'a', score: 'high' }, score), '`score` in the value must be a number, not a string ("high")');
  assert.equal(err({ member: 'a' }, score), 'the value needs a `score` field');
  assert.equal(err(-1, t.u32), 'the value must be a whole number from 0 to 4294967295 for this domain, not -1');
  assert.equal(err([1], t.array(t.string)), '`[0]` in the value must be a string, not 1');
  assert.equal(err(null, t.boolean), 'the value must be true or false for this domain, not null');
  const cut = err('x'.repeat(100), t.u8);
  assert.ok(cut.endsWith('xxx…")') && cut.length < 130, cut);
  assert.match(badRequest(() => new Value(new Uint8Array([0x82])).decode(score)), /^the value could not be read/);
});

test('decoded values are plain JS, typed by their shape', () => {
  const v = Value.encode({ member: 'ann', score: 12.5, big: 2n ** 60n });
  assert.deepEqual(v.decode(), { member: 'ann', score: 12.5, big: 2n ** 60n });
  const s: { member: string; score: number } = v.decode(score);
  assert.equal(s.score, 12.5);
  assert.equal(Value.encode(7).decode(t.u64), 7n, 'a u64 is a bigint, as the contract has it');
  assert.equal(String(Value.encode({ a: 1 })), 'Value({"a":1})');
});

test('fields split a map keeping its bytes and order; one field is typed and may be optional', () => {
  const v = Value.encode({ price: 64000.5, asset: 'btc' });
  const fields = v.fields();
  assert.deepEqual(fields.map(([k]) => k), ['price', 'asset']);
  assert.equal(fields[0]![1].decode(t.number), 64000.5);
  assert.deepEqual(fields[0]![1].bytes, Value.encode(64000.5).bytes, 'a float stays a float');
  assert.equal(badRequest(() => Value.encode([1, 2]).fields()), 'the value must be a map (an object) for this domain, not an array');
  const by = Value.encode({ by: '3' });
  assert.equal(by.field('nope', t.optional(t.u8)), undefined);
  assert.equal(by.field('by', t.string), '3');
  assert.equal(badRequest(() => by.field('nope', t.u8)), 'the value needs a `nope` field');
  assert.equal(badRequest(() => by.field('by', t.number)), '`by` in the value must be a number, not a string ("3")');
});

test('a request without a value is a bad request', () => {
  assert.equal(badRequest(() => Request.get('k').value()), 'this operation needs a value');
  assert.equal(badRequest(() => Request.get('k').decode(t.string)), 'this operation needs a value');
  assert.equal(Request.put('k', { n: 2 }).field('n', t.int), 2);
});

const settingsShape = t.object({ maxlen: t.optional(t.u64), streams: t.optional(t.array(t.string)) });
const settingsErr = (x: unknown, shape = settingsShape as t_any): string => {
  try {
    decodeSettings(shape, 'd', Value.encode(x).bytes);
  } catch (e) {
    assert.ok(e instanceof PolicyError && e.kind === 'bad-config', String(e));
    return e.message;
  }
  assert.fail('accepted');
};
type t_any = Parameters<typeof decodeSettings>[0];

test('settings errors name the setting and its table', () => {
  assert.equal(settingsErr({ maxlen: 'lots' }), 'setting `maxlen` in [domains.d.settings] must be a whole number, 0 or more, not a string ("lots")');
  assert.equal(settingsErr({ streams: [1] }), 'setting `streams[0]` in [domains.d.settings] must be a string, not 1');
  assert.equal(settingsErr({ max_len: 5 }), 'unknown setting `max_len` in [domains.d.settings]: this policy does not read it (a typo?)');
  assert.equal(settingsErr({ ttl: 5 }, noSettings), 'unknown setting `ttl` in [domains.d.settings]: this policy takes no settings');
  assert.equal(settingsErr({ m: 1 }, t.object({ n: t.u32 })), '[domains.d.settings] needs `n`');
});

test('absent settings are an empty table', () => {
  assert.equal(decodeSettings(settingsShape, 'd', new Uint8Array()).maxlen, undefined);
  decodeSettings(noSettings, 'd', new Uint8Array([0x80]));
});

test('a reply decodes by index, a miss is undefined, and one that does not fit names its index', () => {
  const read = Replies.fromWit([undefined, new Uint8Array([0x2a]), new Uint8Array([0xc3])]);
  assert.equal(read.length, 3);
  assert.equal(read.get(0), undefined);
  assert.equal(read.decode(0, t.u8), undefined);
  assert.equal(read.decode(1, t.u8), 42);
  assert.equal(read.decode(2, t.boolean), true);
  const owned = new Replies([undefined, { owner: 5 }]);
  assert.throws(() => owned.decode(1, t.object({ owner: t.string })), PolicyError.internal('`owner` in reply 1 of the read must be a string, not 5'));
  const ann = new Replies(['ann']);
  assert.throws(() => ann.decode(0, t.u32), PolicyError.internal('reply 0 of the read must be a whole number from 0 to 4294967295, not a string ("ann")'));
  assert.throws(() => ann.decode(3, t.u32), PolicyError.internal('reply 3 of the read: the read plan had 1 actions'));
});

test('errors read as the Rust SDK displays them', () => {
  assert.equal(String(PolicyError.badRequest('x')), 'bad request: x');
  assert.equal(String(PolicyError.badConfig('x')), 'bad config: x');
  assert.equal(String(PolicyError.internal('x')), 'internal: x');
});
