//! The JavaScript rule (CWE-79, DOM XSS): a hand-written tokeniser (strings, template
//! literals with their `${…}` fields, `//` and `/* */` comments) and the HTML sinks.

use std::collections::HashMap;

use crate::Rule;

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Ident,
    /// A string or template literal; `fields` are its `${…}` expressions, tokenised.
    Str {
        fields: Vec<Vec<Tok>>,
    },
    Num,
    Op,
}

#[derive(Debug, Clone, PartialEq)]
struct Tok {
    kind: Kind,
    text: String,
    line: usize,
}

impl Tok {
    fn is_op(&self, s: &str) -> bool {
        self.kind == Kind::Op && self.text == s
    }
    fn is_ident(&self, s: &str) -> bool {
        self.kind == Kind::Ident && self.text == s
    }
}

fn tokens(src: &str, first_line: usize) -> Vec<Tok> {
    let cs: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut line = first_line;
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c == '\n' {
            line += 1;
            i += 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '/' && cs.get(i + 1) == Some(&'/') {
            while i < cs.len() && cs[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && cs.get(i + 1) == Some(&'*') {
            i += 2;
            while i < cs.len() && !(cs[i] == '*' && cs.get(i + 1) == Some(&'/')) {
                if cs[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
            i += 2;
            continue;
        }
        if c.is_alphabetic() || c == '_' || c == '$' {
            let s = i;
            while i < cs.len() && (cs[i].is_alphanumeric() || cs[i] == '_' || cs[i] == '$') {
                i += 1;
            }
            out.push(Tok {
                kind: Kind::Ident,
                text: cs[s..i].iter().collect(),
                line,
            });
            continue;
        }
        if c.is_ascii_digit() {
            let s = i;
            while i < cs.len() && (cs[i].is_alphanumeric() || cs[i] == '.') {
                i += 1;
            }
            out.push(Tok {
                kind: Kind::Num,
                text: cs[s..i].iter().collect(),
                line,
            });
            continue;
        }
        if c == '"' || c == '\'' || c == '`' {
            let start_line = line;
            let mut fields = Vec::new();
            let mut j = i + 1;
            while j < cs.len() && cs[j] != c {
                if cs[j] == '\\' {
                    j += 2;
                    continue;
                }
                if cs[j] == '\n' {
                    if c != '`' {
                        break;
                    }
                    line += 1;
                }
                if c == '`' && cs[j] == '$' && cs.get(j + 1) == Some(&'{') {
                    // The field runs to its matching brace.
                    let s = j + 2;
                    let mut depth = 1;
                    let mut k = s;
                    while k < cs.len() {
                        match cs[k] {
                            '{' => depth += 1,
                            '}' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                        k += 1;
                    }
                    let expr: String = cs[s..k.min(cs.len())].iter().collect();
                    fields.push(tokens(&expr, line));
                    line += expr.matches('\n').count();
                    j = k + 1;
                    continue;
                }
                j += 1;
            }
            out.push(Tok {
                kind: Kind::Str { fields },
                text: String::new(),
                line: start_line,
            });
            i = j + 1;
            continue;
        }
        let two: String = cs[i..(i + 2).min(cs.len())].iter().collect();
        let op = if ["+=", "==", "!=", "=>", "&&", "||", "<=", ">="].contains(&two.as_str()) {
            two
        } else {
            c.to_string()
        };
        i += op.chars().count();
        out.push(Tok {
            kind: Kind::Op,
            text: op,
            line,
        });
    }
    out
}

const SANITIZERS: [&str; 8] = [
    "sanitize",
    "escapeHtml",
    "escapeHTML",
    "escape",
    "encodeURIComponent",
    "encode",
    "textContent",
    "createTextNode",
];

const LITERALS: [&str; 7] = [
    "true",
    "false",
    "null",
    "undefined",
    "typeof",
    "new",
    "await",
];

/// Does the expression hold a non-literal that no sanitiser wraps?
fn nonliteral(toks: &[Tok], literal_vars: &HashMap<String, bool>) -> bool {
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        match &t.kind {
            Kind::Str { fields } if fields.iter().any(|f| nonliteral(f, literal_vars)) => {
                return true;
            }
            Kind::Ident => {
                let after_dot = i > 0 && toks[i - 1].is_op(".");
                let call = toks.get(i + 1).is_some_and(|n| n.is_op("("));
                if call && SANITIZERS.contains(&t.text.as_str()) {
                    // Skip the sanitised arguments.
                    i = close_of(toks, i + 1) + 1;
                    continue;
                }
                let dotted_next = toks.get(i + 1).is_some_and(|n| n.is_op("."));
                if !after_dot && !LITERALS.contains(&t.text.as_str()) {
                    // `DOMPurify.sanitize(x)`: the receiver of a sanitiser is not data.
                    let sanitiser_receiver = dotted_next
                        && toks
                            .get(i + 2)
                            .is_some_and(|n| SANITIZERS.contains(&n.text.as_str()));
                    if !sanitiser_receiver && !literal_vars.get(&t.text).copied().unwrap_or(false) {
                        return true;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    false
}

fn close_of(toks: &[Tok], open: usize) -> usize {
    let mut depth = 0;
    for (k, t) in toks.iter().enumerate().skip(open) {
        if t.kind == Kind::Op {
            match t.text.as_str() {
                "(" | "[" | "{" => depth += 1,
                ")" | "]" | "}" => {
                    depth -= 1;
                    if depth == 0 {
                        return k;
                    }
                }
                _ => {}
            }
        }
    }
    toks.len()
}

/// The right-hand side starting at `s`: to `;`, a comma or closing bracket at depth 0, or
/// a new line at depth 0 after a complete operand.
fn rhs_end(toks: &[Tok], s: usize) -> usize {
    let mut depth = 0;
    let mut k = s;
    while k < toks.len() {
        let t = &toks[k];
        if k > s && depth == 0 && t.line > toks[k - 1].line {
            let prev = &toks[k - 1];
            let continues = prev.kind == Kind::Op && !matches!(prev.text.as_str(), ")" | "]" | "}")
                || (t.kind == Kind::Op && matches!(t.text.as_str(), "+" | "." | "?" | ":"));
            if !continues {
                return k;
            }
        }
        if t.kind == Kind::Op {
            match t.text.as_str() {
                "(" | "[" | "{" => depth += 1,
                ")" | "]" | "}" => {
                    if depth == 0 {
                        return k;
                    }
                    depth -= 1;
                }
                ";" | "," if depth == 0 => return k,
                _ => {}
            }
        }
        k += 1;
    }
    toks.len()
}

const WHY: &str =
    "non-literal value written into the page as HTML without sanitising (use textContent, or DOMPurify.sanitize)";

/// The findings of one JavaScript block: (rule, line in the block, explanation).
pub(crate) fn check(src: &str) -> Vec<(Rule, usize, String)> {
    let toks = tokens(src, 1);
    let mut literal_vars: HashMap<String, bool> = HashMap::new();
    let mut out = Vec::new();
    let mut hit = |line: usize| out.push((Rule::Xss, line, WHY.to_string()));
    for i in 0..toks.len() {
        let t = &toks[i];
        if t.kind != Kind::Ident {
            continue;
        }
        let after_dot = i > 0 && toks[i - 1].is_op(".");
        let next = toks.get(i + 1);
        // const/let/var NAME = literal?
        if matches!(t.text.as_str(), "const" | "let" | "var")
            && toks.get(i + 2).is_some_and(|n| n.is_op("="))
        {
            if let Some(name) = next.filter(|n| n.kind == Kind::Ident) {
                let s = i + 3;
                let e = rhs_end(&toks, s);
                let lit = !nonliteral(&toks[s..e.max(s)], &literal_vars);
                literal_vars.insert(name.text.clone(), lit);
            }
            continue;
        }
        let prop = after_dot && matches!(t.text.as_str(), "innerHTML" | "outerHTML");
        if prop && next.is_some_and(|n| n.is_op("=") || n.is_op("+=")) {
            let s = i + 2;
            let e = rhs_end(&toks, s);
            if nonliteral(&toks[s..e.max(s)], &literal_vars) {
                hit(t.line);
            }
            continue;
        }
        let call = next.is_some_and(|n| n.is_op("("));
        let writes = (t.text == "write" || t.text == "writeln")
            && after_dot
            && i >= 2
            && toks[i - 2].is_ident("document");
        let arg_index = if writes || (after_dot && t.text == "html") {
            Some(0)
        } else if after_dot && t.text == "insertAdjacentHTML" {
            Some(1)
        } else {
            None
        };
        if let (true, Some(n)) = (call, arg_index) {
            let open = i + 1;
            let close = close_of(&toks, open);
            let inner = &toks[(open + 1).min(close)..close];
            // The n-th argument.
            let mut depth = 0;
            let mut starts = vec![0];
            for (k, a) in inner.iter().enumerate() {
                match a.text.as_str() {
                    "(" | "[" | "{" if a.kind == Kind::Op => depth += 1,
                    ")" | "]" | "}" if a.kind == Kind::Op => depth -= 1,
                    "," if a.kind == Kind::Op && depth == 0 => starts.push(k + 1),
                    _ => {}
                }
            }
            if let Some(&s) = starts.get(n) {
                let e = starts.get(n + 1).map_or(inner.len(), |e| e - 1);
                if e > s && nonliteral(&inner[s..e], &literal_vars) {
                    hit(t.line);
                }
            }
            continue;
        }
        // dangerouslySetInnerHTML={{ __html: value }}
        if t.text == "__html" && next.is_some_and(|n| n.is_op(":")) {
            let s = i + 2;
            let e = rhs_end(&toks, s);
            if nonliteral(&toks[s..e.max(s)], &literal_vars) {
                hit(t.line);
            }
        }
    }
    out
}
