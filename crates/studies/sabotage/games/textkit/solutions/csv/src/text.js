'use strict';
// Small text helpers: URL slugs, word counts, truncation and CSV lines.

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

/**
 * The fields of one CSV line, RFC 4180 style: fields are separated by commas; a
 * field whose first character is '"' is quoted and may contain commas, with '""'
 * standing for one '"'; empty fields are kept. Throws SyntaxError on an
 * unterminated quoted field or on anything but a comma right after a closing quote.
 * parseCsvLine('a,"b,""c""",') -> ['a', 'b,"c"', '']
 */
function parseCsvLine(line) {
  requireString(line, 'line');
  const fields = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (line[i] === '"') {
      i += 1;
      for (;;) {
        if (i >= line.length) throw new SyntaxError('unterminated quoted field');
        if (line[i] === '"') {
          if (line[i + 1] !== '"') break;
          i += 1; // '""' is one literal quote
        }
        field += line[i];
        i += 1;
      }
      i += 1; // past the closing quote
      if (i < line.length && line[i] !== ',') {
        throw new SyntaxError(`unexpected ${JSON.stringify(line[i])} after a closing quote at ${i}`);
      }
    } else {
      const comma = line.indexOf(',', i);
      const end = comma === -1 ? line.length : comma;
      field = line.slice(i, end);
      i = end;
    }
    fields.push(field);
    if (i >= line.length) return fields;
    i += 1; // past the comma; a field (maybe empty) follows
  }
}

module.exports = { slugify, wordCount, truncate, parseCsvLine };
