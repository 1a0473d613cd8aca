'use strict';
// Small text helpers: URL slugs and word counts.

function requireString(value, name) {
  if (typeof value !== 'string') {
    throw new TypeError(`${name} must be a string, got ${typeof value}`);
  }
}

/**
 * A URL slug of a title: lower-case, every run of characters other than
 * a-z and 0-9 becomes a single '-', and no '-' at either end.
 * slugify('Hello, World!') === 'hello-world'
 */
function slugify(title) {
  requireString(title, 'title');
  return title
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
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

module.exports = { slugify, wordCount };
