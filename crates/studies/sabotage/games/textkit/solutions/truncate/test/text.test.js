'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { slugify, wordCount, truncate } = require('../src/text.js');

test('slugify lower-cases and joins words with dashes', () => {
  assert.equal(slugify('Hello World'), 'hello-world');
  assert.equal(slugify('Release 2.0 Notes'), 'release-2-0-notes');
});

test('slugify collapses runs and trims dashes', () => {
  assert.equal(slugify('  --Hello,   World!!  '), 'hello-world');
  assert.equal(slugify('a -- b'), 'a-b');
});

test('slugify of nothing sluggable is empty', () => {
  assert.equal(slugify(''), '');
  assert.equal(slugify('!!!'), '');
});

test('slugify rejects non-strings', () => {
  assert.throws(() => slugify(42), TypeError);
});

test('wordCount counts whitespace-separated words', () => {
  assert.equal(wordCount('one two three'), 3);
  assert.equal(wordCount('  spaced\tout\nwords  '), 3);
  assert.equal(wordCount(''), 0);
  assert.equal(wordCount('   '), 0);
});

test('truncate leaves short text alone', () => {
  assert.equal(truncate('short', 10), 'short');
  assert.equal(truncate('exact', 5), 'exact');
  assert.equal(truncate('', 1), '');
});

test('truncate cuts to exactly max characters with an ellipsis', () => {
  assert.equal(truncate('Hello, World', 6), 'Hello\u2026');
  assert.equal(truncate('Hello, World', 6).length, 6);
  assert.equal(truncate('ab', 1), '\u2026');
});

test('truncate rejects a max that is not an integer >= 1', () => {
  for (const bad of [0, -1, 2.5, NaN, Infinity, '5', null, undefined]) {
    assert.throws(() => truncate('hello', bad), RangeError);
  }
});
