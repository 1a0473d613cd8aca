'use strict';
// Hidden check for the `csv` request: one-line RFC 4180 parsing with empty fields and strict quoting.
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

const { parseCsvLine, slugify, truncate } = require(path.join(process.cwd(), 'src', 'text.js'));

const good = [
  ['a,b,c', ['a', 'b', 'c']],
  ['single', ['single']],
  ['', ['']],
  [',', ['', '']],
  [',,', ['', '', '']],
  ['a,,b', ['a', '', 'b']],
  ['a,', ['a', '']],
  [',a', ['', 'a']],
  ['a,b,', ['a', 'b', '']],
  [' a , b ', [' a ', ' b ']],
  ['"a,b",c', ['a,b', 'c']],
  ['x,"a,b"', ['x', 'a,b']],
  ['"a"', ['a']],
  ['""', ['']],
  ['"",""', ['', '']],
  ['"",', ['', '']],
  [',""', ['', '']],
  ['"a",', ['a', '']],
  ['""""', ['"']],
  ['"say ""hi"""', ['say "hi"']],
  ['a,"b""c",d', ['a', 'b"c', 'd']],
  ['"""quoted"""', ['"quoted"']],
  ['"a,""b"",c",d', ['a,"b",c', 'd']],
  ['"  padded  "', ['  padded  ']],
  ['a"b,c', ['a"b', 'c']],
  ['x, "y"', ['x', ' "y"']],
  ['1,2.5,-3', ['1', '2.5', '-3']],
  ['"caf\u00e9, cr\u00e8me",\u2026', ['caf\u00e9, cr\u00e8me', '\u2026']],
];
for (const [line, fields] of good) {
  check(`parseCsvLine(${JSON.stringify(line)}) deep-equals ${JSON.stringify(fields)}`, () => {
    const got = parseCsvLine(line);
    assert.ok(Array.isArray(got), 'returns an array');
    assert.deepEqual(got, fields);
  });
}

const bad = [
  '"abc', // never closed
  '"', // a lone quote
  '"a""', // the last quote is half of an escaped pair, so still open
  'x,"y', // open in the last field
  'x,"y""', // the same after an escape
  '"a"b', // text right after the closing quote
  '"a" ,b', // even a space
  '"a""b"c',
  '""x',
  'a,"b"c,d',
  '"a""b',
];
for (const line of bad) {
  check(`parseCsvLine(${JSON.stringify(line)}) throws SyntaxError`, () => {
    assert.throws(() => parseCsvLine(line), SyntaxError);
  });
}

check('parseCsvLine rejects non-strings with TypeError', () => {
  assert.throws(() => parseCsvLine(42), TypeError);
  assert.throws(() => parseCsvLine(null), TypeError);
});

check('fields are independent strings (a fresh array each call)', () => {
  const first = parseCsvLine('a,b');
  first.push('c');
  assert.deepEqual(parseCsvLine('a,b'), ['a', 'b']);
});

check('earlier helpers still work', () => {
  assert.equal(slugify('Cr\u00e8me Br\u00fbl\u00e9e'), 'creme-brulee');
  assert.equal(slugify('a'.repeat(59) + ' bcd'), 'a'.repeat(59));
  assert.equal(truncate('Hello, World', 6), 'Hello\u2026');
});

if (failed > 0) {
  console.log(`${failed} check(s) failed, ${passed} passed`);
  process.exit(1);
}
console.log(`all ${passed} checks passed`);
