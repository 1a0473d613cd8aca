'use strict';
// Small text helpers: URL slugs, word counts and truncation.

function requireString(value, name) {
  if (typeof value !== 'string') {
    throw new TypeError(`${name} must be a string, got ${typeof value}`);
  }
}

const MAX_SLUG_LENGTH = 60;

/**
 * A URL slug of a title: accented letters lose their accents (NFKD, then the
 * combining marks U+0300-U+036F are dropped), lower-case, every run of characters
 * other than a-z and 0-9 becomes a single '-', no '-' at either end, and at most
 * MAX_SLUG_LENGTH characters (a '-' left at the end by the cut is removed).
 * slugify('Crème Brûlée') === 'creme-brulee'
 */
function slugify(title) {
  requireString(title, 'title');
  const slug = title
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (slug.length <= MAX_SLUG_LENGTH) return slug;
  return slug.slice(0, MAX_SLUG_LENGTH).replace(/-+$/, '');
}

/**
 * The number of words in a text, a word being a run of non-whitespace.
 * wordCount('  two  words ') === 2
 */
function wordCount(text) {
  requireString(text, 'text');
  const trimmed = text.trim();
  return trimmed === '' ? 0 : trimmed.split(/\s+/).length;
}

const ELLIPSIS = '\u2026';

/**
 * text shortened to at most max characters (JavaScript string length): unchanged
 * when it fits, otherwise its first max - 1 characters followed by '…'.
 * truncate('Hello, World', 6) === 'Hello…'
 */
function truncate(text, max) {
  requireString(text, 'text');
  if (!Number.isInteger(max) || max < 1) {
    throw new RangeError(`max must be an integer >= 1, got ${String(max)}`);
  }
  return text.length <= max ? text : text.slice(0, max - 1) + ELLIPSIS;
}

module.exports = { slugify, wordCount, truncate };
