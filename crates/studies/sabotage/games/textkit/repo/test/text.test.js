'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { slugify, wordCount } = require('../src/text.js');

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
