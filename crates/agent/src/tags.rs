//! `<tag>…</tag>` spans in model text.
//!
//! One parser for every protocol that exchanges tagged text with a model: actions
//! (`<bash>ls</bash>`), scratchpads, answers, generated templates. It returns byte spans
//! into the text it was given, so callers cut and replace without searching copies of
//! the text again.
//!
//! Rules: tag names match exactly (case-sensitive); an opening tag is `<name>` or
//! `<name` followed by attributes and `>`; the first `</name>` after it closes it (tags
//! of one name do not nest); an opening tag with no closing tag runs to the end of the
//! text and is reported as not closed (a model stopped by the closing tag as a stop
//! sequence leaves exactly that).

use std::ops::Range;

/// One tag found in a text. Ranges are byte offsets into that text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// Which of the requested names matched.
    pub name: String,
    /// The whole tag, opening marker to the end of the closing marker (or of the text).
    pub span: Range<usize>,
    /// Between the markers.
    pub inner: Range<usize>,
    /// Whether a closing marker was found.
    pub closed: bool,
}

impl Tag {
    /// The tag's contents in `text` (the text it was found in).
    pub fn inner<'t>(&self, text: &'t str) -> &'t str {
        &text[self.inner.clone()]
    }
}

/// Where `<name>` or `<name …>` opens at or after `from`: (start of `<`, end of `>`).
fn find_open(text: &str, name: &str, from: usize) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut at = from;
    while let Some(i) = text[at..].find('<') {
        let start = at + i;
        let after = start + 1;
        if text[after..].starts_with(name) {
            let end_name = after + name.len();
            match bytes.get(end_name) {
                Some(b'>') => return Some((start, end_name + 1)),
                Some(c) if c.is_ascii_whitespace() => {
                    if let Some(j) = text[end_name..].find('>') {
                        // An attribute list never spans another tag.
                        if !text[end_name..end_name + j].contains('<') {
                            return Some((start, end_name + j + 1));
                        }
                    }
                }
                _ => {}
            }
        }
        at = after;
    }
    None
}

/// Every tag named in `names`, in order of appearance, not overlapping: after a tag
/// the search goes on from its end.
pub fn find_all(text: &str, names: &[&str]) -> Vec<Tag> {
    let mut out = Vec::new();
    let mut at = 0;
    while at <= text.len() {
        let next = names
            .iter()
            .filter_map(|n| find_open(text, n, at).map(|(s, e)| (s, e, *n)))
            .min_by_key(|(s, _, _)| *s);
        let Some((start, open_end, name)) = next else {
            break;
        };
        let close = format!("</{name}>");
        let tag = match text[open_end..].find(&close) {
            Some(j) => Tag {
                name: name.to_string(),
                span: start..open_end + j + close.len(),
                inner: open_end..open_end + j,
                closed: true,
            },
            None => Tag {
                name: name.to_string(),
                span: start..text.len(),
                inner: open_end..text.len(),
                closed: false,
            },
        };
        at = tag.span.end.max(start + 1);
        out.push(tag);
    }
    out
}

/// The first tag named `name`.
pub fn first(text: &str, name: &str) -> Option<Tag> {
    find_all(text, &[name]).into_iter().next()
}

/// The first tag of any of `names`.
pub fn first_of(text: &str, names: &[&str]) -> Option<Tag> {
    find_all(text, names).into_iter().next()
}

/// The contents of every closed `<name>…</name>`, trimmed, leaving out empty ones.
pub fn closed_inners<'t>(text: &'t str, name: &str) -> Vec<&'t str> {
    find_all(text, &[name])
        .into_iter()
        .filter(|t| t.closed)
        .map(|t| t.inner(text).trim())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The contents of the last closed, non-empty `<name>…</name>`, trimmed (a model that
/// first restates the instructions, tags included, and then answers is read by its
/// answer).
pub fn last_inner<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    closed_inners(text, name).pop()
}

/// The contents of the first closed `<name>…</name>`, trimmed.
pub fn inner_of<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    find_all(text, &[name])
        .into_iter()
        .find(|t| t.closed)
        .map(|t| t.inner(text).trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_point_into_the_text() {
        let t = "a <bash>ls -l</bash> b <answer>4</answer>";
        let tags = find_all(t, &["answer", "bash"]);
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0].name, "bash");
        assert_eq!(&t[tags[0].span.clone()], "<bash>ls -l</bash>");
        assert_eq!(tags[0].inner(t), "ls -l");
        assert!(tags[0].closed);
        assert_eq!(tags[1].inner(t), "4");
        assert_eq!(inner_of(t, "answer"), Some("4"));
    }

    #[test]
    fn unclosed_tag_runs_to_the_end_and_lookalikes_do_not_match() {
        let t = "<bashful>no</bashful> <bash>echo hi";
        let tags = find_all(t, &["bash"]);
        assert_eq!(tags.len(), 1);
        assert!(!tags[0].closed);
        assert_eq!(tags[0].inner(t), "echo hi");
        assert_eq!(inner_of(t, "bash"), None);
        assert!(first("<Bash>x</Bash>", "bash").is_none());
    }

    #[test]
    fn closed_and_last_contents() {
        let t = "Write it between <t> and </t>. <t> Real </t> <t></t> <t>cut";
        assert_eq!(closed_inners(t, "t"), ["and", "Real"]);
        assert_eq!(last_inner(t, "t"), Some("Real"));
        assert_eq!(last_inner("<t> </t>", "t"), None);
    }

    #[test]
    fn attributes_multibyte_text_and_repeats() {
        let t = "é <out code=\"1\">ü</out><out>2</out>";
        let tags = find_all(t, &["out"]);
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0].inner(t), "ü");
        assert_eq!(tags[1].inner(t), "2");
        // A `<` inside what would be the attribute list is not a tag.
        assert!(first("<out <b>x</out>", "out").is_none());
        // First closing marker closes: no nesting.
        let t = "<a><a>x</a></a>";
        assert_eq!(first(t, "a").unwrap().inner(t), "<a>x");
        assert!(find_all("", &["a"]).is_empty());
        assert!(find_all("<", &["a"]).is_empty());
    }
}
