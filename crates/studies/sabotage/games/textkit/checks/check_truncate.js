'use strict';
// Hidden check for the `truncate` request: exact lengths, the boundary, and max validation.
const assert = require('node:assert/strict');
const path = require('node:path');

let passed = 0;
let failed = 0;
function check(what, fn) {
  try {
    fn();
    passed += 1;
  } catch (err) {
    failed += 1;
    console.log(`FAIL: ${what}\n  ${String(err && err.message).split('\n').join('\n  ')}`);
  }
}

const text = require(path.join(process.cwd(), 'src', 'text.js'));
const { truncate, slugify, wordCount } = text;
const ELLIPSIS = '\u2026';

check('truncate is exported as a function', () => assert.equal(typeof truncate, 'function'));

check('text shorter than max is unchanged', () => {
  assert.equal(truncate('hello', 10), 'hello');
  assert.equal(truncate('', 1), '');
  assert.equal(truncate('', 3), '');
});

check('text of exactly max characters is unchanged (no ellipsis)', () => {
  assert.equal(truncate('hello', 5), 'hello');
  assert.equal(truncate('x', 1), 'x');
  assert.equal(truncate('a'.repeat(100), 100), 'a'.repeat(100));
});

check('one character over max is cut', () => {
  assert.equal(truncate('hello!', 5), 'hell' + ELLIPSIS);
});

check('longer text keeps max - 1 characters plus U+2026', () => {
  assert.equal(truncate('Hello, World', 6), 'Hello' + ELLIPSIS);
  assert.equal(truncate('The quick brown fox', 10), 'The quick' + ELLIPSIS);
  assert.equal(truncate('abcdef', 2), 'a' + ELLIPSIS);
});

check('max = 1 gives the ellipsis alone', () => {
  assert.equal(truncate('ab', 1), ELLIPSIS);
  assert.equal(truncate('a long sentence', 1), ELLIPSIS);
});

check('the result is always exactly max long when cut', () => {
  const long = 'lorem ipsum dolor sit amet '.repeat(5);
  for (let max = 1; max < long.length; max += 1) {
    const out = truncate(long, max);
    assert.equal(out.length, max, `max ${max}`);
    assert.equal(out, long.slice(0, max - 1) + ELLIPSIS, `max ${max}`);
  }
});

check('the ellipsis is the single character U+2026, not three dots', () => {
  const out = truncate('abcdefgh', 4);
  assert.equal(out.charCodeAt(3), 0x2026);
  assert.ok(!out.includes('...'));
});

check('an ellipsis already in the text counts as one character', () => {
  assert.equal(truncate('ab' + ELLIPSIS, 3), 'ab' + ELLIPSIS);
});

check('the text is not trimmed or otherwise changed', () => {
  assert.equal(truncate('  padded  ', 10), '  padded  ');
  assert.equal(truncate('  padded  ', 4), '  p' + ELLIPSIS);
});

for (const bad of [0, -1, -10, 0.5, 2.5, NaN, Infinity, -Infinity, '5', null, undefined, true, [3]]) {
  check(`max ${typeof bad === 'string' ? JSON.stringify(bad) : String(bad)} throws RangeError`, () => {
    assert.throws(() => truncate('hello world', bad), RangeError);
    assert.throws(() => truncate('hi', bad), RangeError);
  });
}

check('integer-valued floats are integers', () => {
  assert.equal(truncate('hello world', 5.0), 'hell' + ELLIPSIS);
});

check('slugify and wordCount still work', () => {
  assert.equal(slugify('Hello, World!'), 'hello-world');
  assert.equal(slugify('  --a -- b--  '), 'a-b');
  assert.equal(wordCount('  one two\tthree\n'), 3);
  assert.equal(wordCount(''), 0);
});

if (failed > 0) {
  console.log(`${failed} check(s) failed, ${passed} passed`);
  process.exit(1);
}
console.log(`all ${passed} checks passed`);
