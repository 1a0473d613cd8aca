//! Splitting a chain of thought into sentences (the steps that the truncation and
//! mistake experiments cut and edit).
//!
//! **Lossless.** The pieces concatenate back to the text byte for byte. The whitespace
//! after a sentence (spaces, newlines, blank lines, the next line's indentation) belongs
//! to that sentence, so every piece but the first starts with a non-space character, and
//! leading whitespace of the text belongs to the first piece. Empty text gives no piece;
//! text of whitespace only gives one piece (itself).
//!
//! **Where a sentence ends.**
//! - After `.`, `?`, `!`, `…` (or a run of them: `?!`, `...`), plus any closing quotes,
//!   brackets or markdown `*` that follow, when whitespace follows — so `3.14`, `$1.5`,
//!   `1,000.5`, `U.S.A`, `example.com/a?b=1`, `x.y@mail.org` never split. CJK `。！？`
//!   end a sentence without a following space.
//! - Not after a `.` that ends an abbreviation that never ends a sentence (`e.g.`, `i.e.`,
//!   `Mr.`, `Dr.`, `St.`, `vs.`, `cf.`, `approx.`…), one that comes before a number
//!   (`No. 5`, `Fig. 2`, `Eq. 3`, `p. 12`, `Jan. 5`), initials (`J. R. R. Tolkien`,
//!   `John F. Kennedy`; but `the answer is B. Then` ends), a list marker at the start of
//!   a line or sentence (`1. First`, `a. …`, `iv. …`, `Step 2. …`), or when the next word
//!   starts in lower case on the same line (`etc. and`, `"Stop!" he said`).
//! - Abbreviations that may end a sentence (`etc.`, `et al.`, `Inc.`, `Jr.`, months,
//!   dotted acronyms like `U.S.`, `a.m.`, `Ph.D.`) end one only before a word that
//!   usually starts a sentence (`The`, `So`, `Then`, `We`…; for `etc.`, any capital).
//! - An ellipsis ends a sentence only before a capital (`Wait... Let me`), so filler
//!   like `... ... ...` or `1, 2, ... 10` stays whole. A `!` after a number or a single
//!   letter is a factorial unless a capital follows (`5! = 120`).
//! - At a blank line, always. At a single line break, unless the text plainly goes on:
//!   the next line starts with a lower-case word (`and so …`; a single letter such as
//!   `x = 2` does start a new sentence) or with `,;:)`, or the line ends with `, ; ( [ {
//!   = + - * / &` or `\`, or the next line opens a display formula or code block. A line
//!   that starts a list item (`- `, `* `, `• `, `1.`, `2)`, `(a)`, `Step 3:`, `# heading`)
//!   always starts a new sentence, so list lines are sentences even without punctuation.
//! - Never inside math or code: `$…$`, `$$…$$`, `\(…\)`, `\[…\]`, `` `…` `` and
//!   ```` ``` ```` fences (an unclosed fence runs to the end). A `$` opens inline math
//!   only before a non-space, and closes it only after a non-space and not before a
//!   digit, so `$5 and $6` is money. Display math continues the sentence before it.

use std::collections::BTreeSet;
use std::ops::Range;

/// The text split into sentences, as slices that concatenate back to `text`.
pub fn split_sentences(text: &str) -> Vec<&str> {
    sentence_spans(text).into_iter().map(|r| &text[r]).collect()
}

/// The byte ranges of [`split_sentences`]: contiguous, covering the whole text.
pub fn sentence_spans(text: &str) -> Vec<Range<usize>> {
    if text.is_empty() {
        return Vec::new();
    }
    let cuts = Splitter::new(text).cuts();
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for c in cuts {
        out.push(start..c);
        start = c;
    }
    out.push(start..text.len());
    out
}

/// Abbreviations that do not end a sentence (lower case, without the final period).
const NEVER_END: &str =
    "mr mrs ms messrs mme dr drs prof profs st mt vs e.g i.e cf viz approx ca gen gov sen \
     rep capt col lt sgt cmdr adm rev hon pres supt resp w.r.t a.k.a";

/// Abbreviations that do not end a sentence when a number follows.
const NUMBER_ABBR: &str =
    "no nos nr fig figs eq eqs eqn p pp sec sect ch chap vol vols art para ex thm def \
     prop lem cor ref tab jan feb mar apr jun jul aug sep sept oct nov dec";

/// Abbreviations that end a sentence only before a typical sentence start.
const ENDABLE: &str =
    "etc al inc ltd co corp jr sr bros jan feb mar apr jun jul aug sep sept oct nov dec";

/// Words that usually start a sentence (lower case).
const STARTERS: &str =
    "the this that these those there then thus therefore hence so it its it's we i he she \
     they you our my in on at if but and or however now next finally first second third \
     also a an since because after before when while let let's to for as with from by \
     step answer given note all each every no yes what which who why how where of one \
     both some many most here similarly overall otherwise meanwhile instead moreover \
     furthermore additionally consequently although though option options choice choices \
     only not none neither either is are was were do does did can could should would will \
     his her their later today yesterday tomorrow";

/// Words before a capital letter that make the letter a label (`Option B.`, `Pipe A.`),
/// not an initial (lower case).
const LETTER_CONTEXT: &str =
    "option options choice choices answer answers plan vitamin type part group class \
     grade case statement figure table appendix section point points letter row column \
     team player person box bag set line angle car train pipe tap machine city town \
     company store shop school village candidate project product model version level \
     phase stage item question exhibit gate route block room building sample site pump \
     tank worker student runner bus boat ship road file term step vertex side segment";

/// Words that, followed by a number, start a list line (`Step 2:`).
const MARKER_WORDS: &str = "step case part stage phase";

fn is_terminal(c: char) -> bool {
    matches!(c, '.' | '?' | '!' | '…' | '。' | '！' | '？' | '‽')
}

fn is_cjk_terminal(c: char) -> bool {
    matches!(c, '。' | '！' | '？')
}

fn is_closer(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | '”' | '’' | ')' | ']' | '}' | '»' | '›' | '*' | '」' | '』' | '）'
    )
}

fn is_opener(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | '“' | '‘' | '(' | '[' | '{' | '«' | '‹' | '*' | '_' | '「' | '『' | '（'
    )
}

/// Whether `word` is one of the space-separated words of `list`.
fn in_list(list: &str, word: &str) -> bool {
    list.split_ascii_whitespace().any(|w| w == word)
}

/// Roman numerals of a list (`i`…`xxx`, either case, up to 5 letters).
fn is_roman(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 5
        && (s.chars().all(|c| "ivxlc".contains(c)) || s.chars().all(|c| "IVXLC".contains(c)))
}

/// A list marker's label: a number of up to 3 digits, a single letter or a roman numeral.
fn is_marker_label(s: &str) -> bool {
    let n = s.chars().count();
    (1..=3).contains(&n) && s.chars().all(|c| c.is_ascii_digit())
        || n == 1 && s.chars().all(char::is_alphabetic)
        || is_roman(s)
}

/// Whether a line (leading whitespace removed) starts a list item, step or heading.
fn is_list_item(line: &str) -> bool {
    let mut cs = line.chars();
    let first = match cs.next() {
        Some(c) => c,
        None => return false,
    };
    if first == '#' || first == '>' {
        return true;
    }
    if matches!(
        first,
        '-' | '*' | '•' | '+' | '–' | '—' | '▪' | '◦' | '‣' | '·'
    ) && cs.next().is_some_and(char::is_whitespace)
    {
        return true;
    }
    let line = line.trim_start_matches(['*', '_']);
    // (a) (1) (iv)
    if let Some(rest) = line.strip_prefix('(') {
        if let Some(close) = rest.find(')') {
            let label = &rest[..close];
            let after = &rest[close + 1..];
            if is_marker_label(label) && after.starts_with(char::is_whitespace) {
                return true;
            }
        }
    }
    // 1. 2) a. iv) 3:
    let label: String = line.chars().take_while(|c| c.is_alphanumeric()).collect();
    if !label.is_empty() && is_marker_label(&label) {
        let mut after = line[label.len()..].chars();
        let delim = after.next();
        let next = after.find(|&c| c != '*' && c != '_');
        let delim_ok = matches!(delim, Some('.') | Some(')'))
            || delim == Some(':') && label.chars().all(|c| c.is_ascii_digit());
        if delim_ok && next.is_none_or(char::is_whitespace) {
            return true;
        }
    }
    // Step 3: / Case 2 / Part 1.
    let word: String = line.chars().take_while(|c| c.is_alphabetic()).collect();
    if in_list(MARKER_WORDS, &word.to_lowercase()) {
        let rest = line[word.len()..].trim_start();
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        if !digits.is_empty() && rest.len() < line.len() - word.len() {
            let after = rest[digits.len()..].chars().next();
            return after.is_none_or(|c| c.is_whitespace() || ":.)-–—".contains(c));
        }
    }
    false
}

/// Whether a line (leading whitespace removed) opens a display formula or code block.
fn opens_display(line: &str) -> bool {
    line.starts_with("$$") || line.starts_with("\\[") || line.starts_with("```")
}

struct Splitter<'a> {
    text: &'a str,
    chars: Vec<char>,
    /// Byte offset of each char, plus the text's length at the end.
    offs: Vec<usize>,
    /// Chars inside math or code.
    protected: Vec<bool>,
    /// Char indices where a piece starts (after a cut).
    starts: BTreeSet<usize>,
}

impl<'a> Splitter<'a> {
    fn new(text: &'a str) -> Self {
        let mut chars = Vec::with_capacity(text.len());
        let mut offs = Vec::with_capacity(text.len() + 1);
        for (o, c) in text.char_indices() {
            chars.push(c);
            offs.push(o);
        }
        offs.push(text.len());
        let protected = vec![false; chars.len()];
        let mut s = Splitter {
            text,
            chars,
            offs,
            protected,
            starts: BTreeSet::new(),
        };
        s.mark_protected();
        s
    }

    fn n(&self) -> usize {
        self.chars.len()
    }

    fn at(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }

    fn starts_with_at(&self, i: usize, pat: &str) -> bool {
        self.text[self.offs[i]..].starts_with(pat)
    }

    /// First char index `>= from` where `pat` starts, stopping at a blank line when
    /// `paragraph` (or at any line break when `line`).
    fn find(&self, from: usize, pat: &str, stop: Stop) -> Option<usize> {
        let mut i = from;
        while i < self.n() {
            if self.starts_with_at(i, pat) {
                return Some(i);
            }
            match stop {
                Stop::Line if self.chars[i] == '\n' => return None,
                Stop::Paragraph if self.starts_with_at(i, "\n\n") => return None,
                _ => {}
            }
            i += 1;
        }
        None
    }

    fn protect(&mut self, from: usize, to: usize) {
        for p in &mut self.protected[from..to.min(self.chars.len())] {
            *p = true;
        }
    }

    fn mark_protected(&mut self) {
        let mut i = 0;
        while i < self.n() {
            let c = self.chars[i];
            let end = if self.starts_with_at(i, "```") {
                Some(
                    self.find(i + 3, "```", Stop::Never)
                        .map_or(self.n(), |j| j + 3),
                )
            } else if self.starts_with_at(i, "$$") {
                self.find(i + 2, "$$", Stop::Never).map(|j| j + 2)
            } else if self.starts_with_at(i, "\\[") {
                self.find(i + 2, "\\]", Stop::Never).map(|j| j + 2)
            } else if self.starts_with_at(i, "\\(") {
                self.find(i + 2, "\\)", Stop::Paragraph).map(|j| j + 2)
            } else if c == '`' {
                self.find(i + 1, "`", Stop::Line).map(|j| j + 1)
            } else if c == '$' && self.at(i + 1).is_some_and(|d| !d.is_whitespace()) {
                self.inline_math_end(i)
            } else {
                None
            };
            match end {
                Some(e) => {
                    self.protect(i, e);
                    i = e;
                }
                None => i += 1,
            }
        }
    }

    /// The end (exclusive) of inline math opened by the `$` at `i`, if it closes.
    fn inline_math_end(&self, i: usize) -> Option<usize> {
        let mut j = i + 1;
        while j < self.n() && self.chars[j] != '\n' {
            if self.chars[j] == '$'
                && !self.chars[j - 1].is_whitespace()
                && self.chars[j - 1] != '\\'
                && j > i + 1
                && !self.at(j + 1).is_some_and(|d| d.is_ascii_digit())
            {
                return Some(j + 1);
            }
            j += 1;
        }
        None
    }

    /// Char index where the token ending at `end` (exclusive) starts.
    fn token_start(&self, end: usize) -> usize {
        let mut j = end;
        while j > 0 && !self.chars[j - 1].is_whitespace() {
            j -= 1;
        }
        j
    }

    fn string(&self, from: usize, to: usize) -> String {
        self.chars[from..to].iter().collect()
    }

    /// Whether only whitespace and markdown (`*`, `#`, `>`) precede `i` on its line.
    fn first_on_line(&self, i: usize) -> bool {
        let mut j = i;
        while j > 0 {
            let c = self.chars[j - 1];
            if c == '\n' {
                return true;
            }
            if !(c.is_whitespace() || matches!(c, '*' | '#' | '>' | '_')) {
                return false;
            }
            j -= 1;
        }
        true
    }

    /// Whether a sentence starts at char `i`: the first token of a line or after a cut.
    fn starts_sentence(&self, i: usize) -> bool {
        self.first_on_line(i) || self.starts.contains(&i)
    }

    /// The text of the line containing char `i`, from its start to `i` (exclusive).
    fn line_before(&self, i: usize) -> String {
        let mut j = i;
        while j > 0 && self.chars[j - 1] != '\n' {
            j -= 1;
        }
        self.string(j, i)
    }

    /// The line starting at char `i` (to its end).
    fn line_from(&self, i: usize) -> String {
        let mut j = i;
        while j < self.n() && self.chars[j] != '\n' {
            j += 1;
        }
        self.string(i, j)
    }

    /// Char indices (exclusive ends of pieces) where the text is cut, as byte offsets.
    fn cuts(mut self) -> Vec<usize> {
        let n = self.n();
        let mut i = 0;
        while i < n {
            let c = self.chars[i];
            if self.protected[i] {
                i += 1;
                continue;
            }
            if is_terminal(c) {
                i = self.after_terminal(i);
            } else if c == '\n' {
                i = self.after_newline(i);
            } else {
                i += 1;
            }
        }
        self.starts
            .iter()
            .filter(|&&s| s > 0 && s < n)
            .map(|&s| self.offs[s])
            .collect()
    }

    /// End (exclusive) of the whitespace run starting at `from`, and its line breaks.
    fn whitespace_run(&self, from: usize) -> (usize, usize) {
        let mut w = from;
        let mut breaks = 0;
        while w < self.n() && self.chars[w].is_whitespace() {
            if self.chars[w] == '\n' {
                breaks += 1;
            }
            w += 1;
        }
        (w, breaks)
    }

    /// Handles the run of terminal punctuation at `i`; returns where to go on scanning.
    fn after_terminal(&mut self, i: usize) -> usize {
        let n = self.n();
        let mut j = i;
        while j < n && !self.protected[j] && is_terminal(self.chars[j]) {
            j += 1;
        }
        let mut k = j;
        while k < n && !self.protected[k] && is_closer(self.chars[k]) {
            k += 1;
        }
        if k >= n {
            return k;
        }
        let run: String = self.string(i, j);
        let (w, breaks) = self.whitespace_run(k);
        if run.chars().any(is_cjk_terminal) {
            if w < n {
                self.starts.insert(w);
            }
            return w.max(k);
        }
        if w == k || w >= n {
            // No whitespace follows (3.14, U.S.A), or only trailing whitespace.
            return j;
        }
        if self.ends_sentence(i, j, k, w, breaks) {
            self.starts.insert(w);
        }
        w
    }

    /// Whether the terminal run `i..j`, closers `j..k` and whitespace `k..w` (with
    /// `breaks` line breaks) end a sentence; the next word starts at `w`.
    fn ends_sentence(&self, i: usize, j: usize, k: usize, w: usize, breaks: usize) -> bool {
        if breaks >= 2 {
            return true;
        }
        let next_line = self.line_from(w);
        if breaks == 1 && is_list_item(&next_line) {
            return true;
        }
        let closers: String = self.string(j, k);
        let run: String = self.string(i, j);
        // The next word: raw first char, and first alphanumeric after opening marks.
        let next_raw = self.chars[w];
        let next_word: String = next_line
            .chars()
            .skip_while(|&c| is_opener(c))
            .take_while(|c| !c.is_whitespace())
            .collect();
        let next_alpha = next_word.chars().next();
        let next_upper = next_alpha.is_some_and(char::is_uppercase);
        let next_lower_raw = next_raw.is_lowercase();
        let bare_next: String = next_word
            .trim_end_matches(|c: char| !c.is_alphanumeric() && c != '\'')
            .to_lowercase();
        let starter = next_upper && in_list(STARTERS, &bare_next);

        // The token before the run.
        let t0 = self.token_start(i);
        let mut c0 = t0;
        while c0 < i && is_opener(self.chars[c0]) {
            c0 += 1;
        }
        let core = self.string(c0, i);
        let lower = core.to_lowercase();

        if run.contains('?') || run.contains('!') || run.contains('‽') {
            let factorial = run == "!"
                && (core
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_ascii_digit() || c == ')')
                    || core.chars().count() == 1 && core.chars().all(char::is_alphabetic));
            if factorial {
                return next_upper && next_raw.is_alphabetic();
            }
            let quoted = closers.chars().any(|c| c != '*');
            return !(quoted && breaks == 0 && next_lower_raw);
        }
        if run.chars().count() > 1 || run.contains('…') {
            // Ellipsis.
            return next_upper && !next_raw.is_ascii_digit();
        }

        // A single period.
        let plain_closers = closers.chars().all(|c| c == '*');
        if breaks == 0
            && plain_closers
            && is_marker_label(&core)
            && self.starts_sentence(c0)
            && next_alpha.is_some()
        {
            return false; // "1. First", "b. Then", "iv. Next"
        }
        if breaks == 0 && plain_closers && core.chars().all(|c| c.is_ascii_digit()) {
            // "Step 2. Compute": the marker word starts its sentence.
            let p_end = self.skip_space_back(t0);
            let p0 = self.token_start(p_end);
            let prev = self.string(p0, p_end).to_lowercase();
            if in_list(MARKER_WORDS, prev.trim_start_matches(['*', '#']))
                && self.starts_sentence(p0)
            {
                return false;
            }
        }
        if in_list(NEVER_END, &lower) {
            return false;
        }
        if next_alpha.is_some_and(|c| c.is_ascii_digit()) && in_list(NUMBER_ABBR, &lower) {
            return false;
        }
        if breaks == 0 && (next_lower_raw || ",;:".contains(next_raw)) {
            return false;
        }
        if core.chars().count() == 1 && core.chars().all(char::is_uppercase) {
            return !self.is_initial(t0, &next_word, next_upper, starter);
        }
        let acronym = {
            let parts: Vec<&str> = core.split('.').collect();
            parts.len() >= 2
                && parts.iter().all(|p| {
                    (1..=2).contains(&p.chars().count()) && p.chars().all(char::is_alphabetic)
                })
        };
        if lower == "etc" {
            return next_upper;
        }
        if acronym || in_list(ENDABLE, &lower) {
            return starter;
        }
        true
    }

    /// Char index just after the last non-space before `i`.
    fn skip_space_back(&self, i: usize) -> usize {
        let mut j = i;
        while j > 0 && self.chars[j - 1].is_whitespace() {
            j -= 1;
        }
        j
    }

    /// Whether the single capital letter of the token at `t0` (followed by a period) is
    /// an initial rather than the end of a sentence.
    fn is_initial(&self, t0: usize, next_word: &str, next_upper: bool, starter: bool) -> bool {
        if !next_upper {
            return false;
        }
        let is_init = |w: &str| {
            let cs: Vec<char> = w.chars().collect();
            cs.len() == 2 && cs[0].is_uppercase() && cs[1] == '.'
        };
        if is_init(next_word) {
            return true;
        }
        let p_end = self.skip_space_back(t0);
        if p_end == 0 {
            return false;
        }
        let p0 = self.token_start(p_end);
        let prev = self.string(p0, p_end);
        if is_init(&prev) {
            return true;
        }
        let bare_prev = prev
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase();
        let bare_next = next_word
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase();
        prev.chars().next().is_some_and(char::is_uppercase)
            && !prev.ends_with(|c: char| ".:;,!?".contains(c))
            && !in_list(LETTER_CONTEXT, &bare_prev)
            && !starter
            && bare_next != bare_prev
    }

    /// Handles the line break at `i`; returns where to go on scanning.
    fn after_newline(&mut self, i: usize) -> usize {
        let mut r0 = i;
        while r0 > 0 && self.chars[r0 - 1].is_whitespace() {
            r0 -= 1;
        }
        let (w, breaks) = self.whitespace_run(i);
        if r0 == 0 || w >= self.n() {
            return w;
        }
        if breaks >= 2 {
            self.starts.insert(w);
            return w;
        }
        let prev = self.line_before(r0);
        let prev = prev.trim_end();
        let next = self.line_from(w);
        if self.breaks_line(prev, &next) {
            self.starts.insert(w);
        }
        w
    }

    /// Whether a single line break between `prev` (trailing whitespace removed) and
    /// `next` (leading whitespace removed) ends a sentence.
    fn breaks_line(&self, prev: &str, next: &str) -> bool {
        let bare_prev = prev.trim_end_matches(is_closer);
        if bare_prev.ends_with(is_terminal) {
            return false; // decided by the punctuation
        }
        if opens_display(next) {
            return false;
        }
        if is_list_item(next) {
            return true;
        }
        let mut cs = next.chars();
        let (a, b) = (cs.next(), cs.next());
        if a.is_some_and(char::is_lowercase) && b.is_some_and(char::is_lowercase) {
            return false;
        }
        if a.is_some_and(|c| ",;:)]}".contains(c)) {
            return false;
        }
        if prev.ends_with(|c: char| ",;([{=+-*/&\\×÷".contains(c)) {
            return false;
        }
        true
    }
}

#[derive(Clone, Copy)]
enum Stop {
    Never,
    Line,
    Paragraph,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits and checks that the pieces give back the text.
    fn split(text: &str) -> Vec<&str> {
        let s = split_sentences(text);
        assert_eq!(s.concat(), text, "pieces must concatenate back to the text");
        for (i, p) in s.iter().enumerate() {
            assert!(!p.is_empty());
            if i > 0 {
                assert!(!p.starts_with(char::is_whitespace), "{p:?}");
            }
        }
        s
    }

    #[track_caller]
    fn check(text: &str, expect: &[&str]) {
        assert_eq!(split(text), expect, "\ntext: {text:?}");
    }

    #[test]
    fn empty_and_whitespace() {
        assert!(split_sentences("").is_empty());
        check("   ", &["   "]);
        check("\n  Hello there.  ", &["\n  Hello there.  "]);
        check("One. Two.", &["One. ", "Two."]);
        check("One.  \n Two.\n", &["One.  \n ", "Two.\n"]);
        check("No punctuation at all", &["No punctuation at all"]);
    }

    #[test]
    fn question_and_exclamation_marks() {
        check("Is it 4? Yes! It is.", &["Is it 4? ", "Yes! ", "It is."]);
        check("Really?! Wow.", &["Really?! ", "Wow."]);
        check(
            "Wait... Let me recheck. So it is 5.",
            &["Wait... ", "Let me recheck. ", "So it is 5."],
        );
        check("Hmm… That fails.", &["Hmm… ", "That fails."]);
    }

    #[test]
    fn abbreviations() {
        check(
            "Some fruits, e.g. apples, are red. Others, i.e. the rest, are not.",
            &[
                "Some fruits, e.g. apples, are red. ",
                "Others, i.e. the rest, are not.",
            ],
        );
        check(
            "Mr. Smith met Dr. Jones on St. Mark's Square. They talked.",
            &[
                "Mr. Smith met Dr. Jones on St. Mark's Square. ",
                "They talked.",
            ],
        );
        check(
            "Apples, pears, etc. are fruit. Bread, rice, etc. The list goes on.",
            &[
                "Apples, pears, etc. are fruit. ",
                "Bread, rice, etc. ",
                "The list goes on.",
            ],
        );
        check(
            "It was Brazil vs. Germany. Germany won.",
            &["It was Brazil vs. Germany. ", "Germany won."],
        );
        check(
            "He moved to the U.S. The move was hard. The U.S. Army hired him.",
            &[
                "He moved to the U.S. ",
                "The move was hard. ",
                "The U.S. Army hired him.",
            ],
        );
        check(
            "We met at 9 a.m. Then we left at 5 p.m. sharp.",
            &["We met at 9 a.m. ", "Then we left at 5 p.m. sharp."],
        );
        check(
            "See Fig. 3 and Eq. 2 on p. 12. No. 5 is wrong. The answer is no. Then stop.",
            &[
                "See Fig. 3 and Eq. 2 on p. 12. ",
                "No. 5 is wrong. ",
                "The answer is no. ",
                "Then stop.",
            ],
        );
        check(
            "Lanham et al. (2023) measure it. So did Smith et al. The results agree.",
            &[
                "Lanham et al. (2023) measure it. ",
                "So did Smith et al. ",
                "The results agree.",
            ],
        );
    }

    #[test]
    fn numbers_and_money() {
        check(
            "Pi is about 3.14. A pen costs $1.5 and a car $1,000.5. The total is 1,001.5.",
            &[
                "Pi is about 3.14. ",
                "A pen costs $1.5 and a car $1,000.5. ",
                "The total is 1,001.5.",
            ],
        );
        check(
            "There are 5 apples. 3 are red.",
            &["There are 5 apples. ", "3 are red."],
        );
        check(
            "It costs $5. Then $6 more.",
            &["It costs $5. ", "Then $6 more."],
        );
        check(
            "So 5! = 120 and 3! is 6. Great! Done.",
            &["So 5! = 120 and 3! is 6. ", "Great! ", "Done."],
        );
        check(
            "Count 1, 2, 3, ... 10 and stop.",
            &["Count 1, 2, 3, ... 10 and stop."],
        );
    }

    #[test]
    fn initials() {
        check(
            "The book is by J. R. R. Tolkien. It is long.",
            &["The book is by J. R. R. Tolkien. ", "It is long."],
        );
        check(
            "John F. Kennedy was president. He was young.",
            &["John F. Kennedy was president. ", "He was young."],
        );
        check(
            "So the answer is B. Then we check. Option A. Option B is wrong.",
            &[
                "So the answer is B. ",
                "Then we check. ",
                "Option A. ",
                "Option B is wrong.",
            ],
        );
        check(
            "Pipe A. Pipe B fills it faster.",
            &["Pipe A. ", "Pipe B fills it faster."],
        );
    }

    #[test]
    fn enumerations_and_lists() {
        check(
            "1. First add.\n2. Then multiply.\n3. Done",
            &["1. First add.\n", "2. Then multiply.\n", "3. Done"],
        );
        check(
            "Steps:\n- take the sum\n- divide by two\n* check it",
            &[
                "Steps:\n",
                "- take the sum\n",
                "- divide by two\n",
                "* check it",
            ],
        );
        check(
            "Step 1: Add 2 and 3 to get 5\nStep 2: Multiply by 4 to get 20\nSo the answer is (C).",
            &[
                "Step 1: Add 2 and 3 to get 5\n",
                "Step 2: Multiply by 4 to get 20\n",
                "So the answer is (C).",
            ],
        );
        check(
            "Step 1. Compute x. Step 2. Compute y.",
            &["Step 1. Compute x. ", "Step 2. Compute y."],
        );
        check(
            "We have two options. 1. Walk there. 2. Drive there.",
            &[
                "We have two options. ",
                "1. Walk there. ",
                "2. Drive there.",
            ],
        );
        check(
            "(a) x is even\n(b) y is odd\na) one\nii. two",
            &["(a) x is even\n", "(b) y is odd\n", "a) one\n", "ii. two"],
        );
        check(
            "## Solution\nWe add.\n**1.** Add them",
            &["## Solution\n", "We add.\n", "**1.** Add them"],
        );
        // A list item after a sentence ending in an ellipsis, and item continuations.
        check(
            "Consider...\n- the first case, which\n  continues here\n- the second",
            &[
                "Consider...\n",
                "- the first case, which\n  continues here\n",
                "- the second",
            ],
        );
    }

    #[test]
    fn line_breaks() {
        check(
            "Total cost = 5 + 3 = 8\nSo the answer is B.",
            &["Total cost = 5 + 3 = 8\n", "So the answer is B."],
        );
        check(
            "The train covers the distance\nin two hours, so\nits speed is 30.",
            &["The train covers the distance\nin two hours, so\nits speed is 30."],
        );
        check(
            "We have\nx = 2\nand therefore y = 4.",
            &["We have\n", "x = 2\nand therefore y = 4."],
        );
        check("First.\n\nsecond part", &["First.\n\n", "second part"]);
        check("It is 5.\nthen it is 6.", &["It is 5.\n", "then it is 6."]);
        check("The sum is 2 +\n3 = 5.", &["The sum is 2 +\n3 = 5."]);
        check(
            "Paragraph one\n\nParagraph two",
            &["Paragraph one\n\n", "Paragraph two"],
        );
        check("Windows.\r\nLines.", &["Windows.\r\n", "Lines."]);
    }

    #[test]
    fn quotes_and_brackets() {
        check(
            "He said \"stop.\" Then he left.",
            &["He said \"stop.\" ", "Then he left."],
        );
        check(
            "\"Why?\" she asked. \"Because.\" He smiled.",
            &["\"Why?\" she asked. ", "\"Because.\" ", "He smiled."],
        );
        check(
            "\"Stop!\" he said. (This is a note.) Next one.",
            &["\"Stop!\" he said. ", "(This is a note.) ", "Next one."],
        );
        check(
            "He wrote “Done.” Next, ‘again.’ Then end.",
            &["He wrote “Done.” ", "Next, ‘again.’ ", "Then end."],
        );
        check(
            "**The answer is B.** Then we stop.",
            &["**The answer is B.** ", "Then we stop."],
        );
        check(
            "See the figure (Fig. 2.) The end.",
            &["See the figure (Fig. 2.) ", "The end."],
        );
    }

    #[test]
    fn urls_and_emails() {
        check(
            "Visit https://example.com/a.html?q=1&b=2. Then write to john.doe@example.org. Thanks!",
            &[
                "Visit https://example.com/a.html?q=1&b=2. ",
                "Then write to john.doe@example.org. ",
                "Thanks!",
            ],
        );
        check(
            "Go to www.site.co.uk/page. It works.",
            &["Go to www.site.co.uk/page. ", "It works."],
        );
    }

    #[test]
    fn math() {
        check(
            "So x = 2.5. Then y = x/2 = 1.25.",
            &["So x = 2.5. ", "Then y = x/2 = 1.25."],
        );
        check(
            "The half is \\frac{1}{2}. Then double it.",
            &["The half is \\frac{1}{2}. ", "Then double it."],
        );
        check(
            "We get $x = 2. Y$ here. Then $a.b$ too. Next.",
            &["We get $x = 2. Y$ here. ", "Then $a.b$ too. ", "Next."],
        );
        check(
            "Note \\(a. B\\) holds. So does\n$$\nx = 1. Y = 2.\n$$\nThus we are done.",
            &[
                "Note \\(a. B\\) holds. ",
                "So does\n$$\nx = 1. Y = 2.\n$$\n",
                "Thus we are done.",
            ],
        );
        check(
            "We have\n\\[ a = 1. B = 2. \\]\nwhere a is given.",
            &["We have\n\\[ a = 1. B = 2. \\]\nwhere a is given."],
        );
        check(
            "Code:\n```\nx = 1. Y = 2.\n```\nDone. Next.",
            &["Code:\n```\nx = 1. Y = 2.\n```\n", "Done. ", "Next."],
        );
        check(
            "Use `os.path. Join` here. Then run.",
            &["Use `os.path. Join` here. ", "Then run."],
        );
        check(
            "It costs $5 and $6. Then more.",
            &["It costs $5 and $6. ", "Then more."],
        );
    }

    #[test]
    fn cjk_and_unicode() {
        check(
            "这是第一句。这是第二句！好吗？",
            &["这是第一句。", "这是第二句！", "好吗？"],
        );
        check("Café is nice. Élan too.", &["Café is nice. ", "Élan too."]);
    }

    #[test]
    fn spans_cover_the_text() {
        let t = "One. Two? Three!";
        let spans = sentence_spans(t);
        assert_eq!(spans, vec![0..5, 5..10, 10..16]);
    }

    #[test]
    fn random_text_is_split_losslessly() {
        // Pieces of the cases above glued at random: never a panic, always lossless.
        let bits = [
            "a", "B", " ", "\n", "\n\n", ".", "...", "?", "!", "\"", "(", ")", "$", "$$", "\\(",
            "\\)", "\\[", "\\]", "`", "```", "e.g.", "Mr.", "U.S.", "1.", "- ", "Step 2:", "3.14",
            "J.", "The", "etc.", "…", "。", "é", "**", "\r\n", "x = ", "# ", "(a) ", "ii.",
        ];
        let mut rng = crate::mcq::SplitMix64::new(7);
        for _ in 0..2000 {
            let len = rng.below(40);
            let text: String = (0..len).map(|_| bits[rng.below(bits.len())]).collect();
            split(&text);
        }
    }

    #[test]
    fn filler_stays_whole() {
        let t = " ... ... ... ...";
        check(t, &[t]);
    }
}
