import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TokenBucket, TokenBuckets } from '../src/bucket.js';

describe('TokenBucket', () => {
  it('starts full, refills at its rate, never above its burst', () => {
    const b = new TokenBucket(1, 2, 0);
    assert.equal(b.take(0), true);
    assert.equal(b.take(0), true);
    assert.equal(b.take(0), false, 'empty');
    assert.equal(b.ready(999), false, 'not a whole token yet');
    assert.equal(b.ready(1000), true, 'one token a second');
    assert.equal(b.take(1000), true);
    assert.equal(b.take(60_000), true);
    assert.equal(b.take(60_000), true);
    assert.equal(b.take(60_000), false, 'capped at the burst');
  });

  it('ready() takes nothing; give() returns one token, up to the burst', () => {
    const b = new TokenBucket(0, 1, 0);
    assert.equal(b.ready(0), true);
    assert.equal(b.ready(0), true);
    assert.equal(b.take(0), true);
    assert.equal(b.ready(0), false);
    b.give();
    assert.equal(b.take(0), true);
    b.give();
    b.give();
    assert.equal(b.take(0), true);
    assert.equal(b.take(0), false, 'give() does not pass the burst');
  });
});

describe('TokenBuckets', () => {
  it('one bucket per key; past `max` keys the least recently used is forgotten', () => {
    const m = new TokenBuckets(0, 1, 2);
    assert.equal(m.take('a', 0), true);
    assert.equal(m.take('a', 0), false, "a's token is spent");
    assert.equal(m.take('b', 0), true, 'b has its own');
    m.get('a', 0); // a is now the most recently used
    assert.equal(m.take('c', 0), true);
    assert.equal(m.size, 2);
    assert.equal(m.take('a', 0), false, 'a was kept (b went), still spent');
    assert.equal(m.take('b', 0), true, 'b was forgotten: a full bucket again');
  });
});
