'use strict';
// Hidden check for the `slug-accents` request: accent folding (NFKD) and the 60-character cap.
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

const { slugify, truncate } = require(path.join(process.cwd(), 'src', 'text.js'));

const folded = [
  ['Cr\u00e8me Br\u00fbl\u00e9e', 'creme-brulee'],
  ['\u00c5ngstr\u00f6m', 'angstrom'],
  ['na\u00efve caf\u00e9', 'naive-cafe'],
  ['S\u00e3o Paulo', 'sao-paulo'],
  ['\u00c9COLE Polytechnique', 'ecole-polytechnique'],
  ['Se\u00f1or Ni\u00f1o', 'senor-nino'],
  ['Fa\u00e7ade', 'facade'],
  ['Dvo\u0159\u00e1k: Symphony No. 9', 'dvorak-symphony-no-9'],
  ['Ti\u1ebfng Vi\u1ec7t', 'tieng-viet'],
  ['Cre\u0300me', 'creme'], // already decomposed input
];
for (const [title, slug] of folded) {
  check(`slugify(${JSON.stringify(title)}) === ${JSON.stringify(slug)}`, () => assert.equal(slugify(title), slug));
}

check('compatibility characters fold under NFKD (ligatures, full-width forms)', () => {
  assert.equal(slugify('O\ufb03ce \ufb01le'), 'office-file');
  assert.equal(slugify('\uff21\uff22\uff23\u3000\uff11\uff12\uff13'), 'abc-123');
});

check('characters that do not fold to a-z0-9 still separate words', () => {
  assert.equal(slugify('\u65e5\u672c Tokyo'), 'tokyo');
  assert.equal(slugify('caf\u00e9 \u2013 cr\u00e8me'), 'cafe-creme');
});

check('old behaviour is unchanged', () => {
  assert.equal(slugify('Hello, World!'), 'hello-world');
  assert.equal(slugify('Release 2.0 Notes'), 'release-2-0-notes');
  assert.equal(slugify('  --Hello,   World!!  '), 'hello-world');
  assert.equal(slugify(''), '');
  assert.equal(slugify('!!!'), '');
  assert.throws(() => slugify(42), TypeError);
});

check('a slug of exactly 60 characters is kept whole', () => {
  assert.equal(slugify('a'.repeat(60)), 'a'.repeat(60));
  const words = 'abcd-'.repeat(11) + 'abcde'; // 60 characters
  assert.equal(slugify(words.replace(/-/g, ' ')), words);
});

check('longer slugs are cut to 60 characters', () => {
  assert.equal(slugify('a'.repeat(61)), 'a'.repeat(60));
  assert.equal(slugify('B'.repeat(200)), 'b'.repeat(60));
});

check('a dash left at the end by the cut is removed', () => {
  assert.equal(slugify('a'.repeat(59) + ' bcd'), 'a'.repeat(59));
  assert.equal(slugify('word '.repeat(20)), 'word-'.repeat(11) + 'word');
  assert.equal(slugify('x'.repeat(59) + ' !!! ' + 'y'.repeat(10)), 'x'.repeat(59));
});

check('the cap applies to the slug, not to the title', () => {
  assert.equal(slugify('!!! ' + 'x'.repeat(70)), 'x'.repeat(60));
  assert.equal(slugify('\u00e9'.repeat(70)), 'e'.repeat(60));
  assert.equal(slugify('e\u0301'.repeat(45)), 'e'.repeat(45));
  assert.equal(slugify('a - '.repeat(40)), 'a-'.repeat(29) + 'a');
});

check('no slug is longer than 60 or ends with a dash', () => {
  const titles = [];
  for (let n = 50; n < 80; n += 1) titles.push('Cr\u00e8me '.repeat(n).slice(0, n * 2));
  for (let n = 1; n < 30; n += 1) titles.push('ab '.repeat(n) + 'z'.repeat(50));
  for (const title of titles) {
    const slug = slugify(title);
    assert.ok(slug.length <= 60, `slug of ${JSON.stringify(title)} is ${slug.length} long`);
    assert.ok(!slug.endsWith('-') && !slug.startsWith('-'), `slug ${JSON.stringify(slug)}`);
    assert.ok(/^[a-z0-9-]*$/.test(slug) && !slug.includes('--'), `slug ${JSON.stringify(slug)}`);
  }
});

check('truncate still works', () => {
  assert.equal(truncate('Hello, World', 6), 'Hello\u2026');
  assert.equal(truncate('exact', 5), 'exact');
  assert.throws(() => truncate('x', 0), RangeError);
});

if (failed > 0) {
  console.log(`${failed} check(s) failed, ${passed} passed`);
  process.exit(1);
}
console.log(`all ${passed} checks passed`);
