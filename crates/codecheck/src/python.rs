//! The Python rules: a hand-written tokeniser, logical statements, a light abstract value per
//! variable, and the sinks of the four rules (see the crate doc).

use std::collections::HashMap;

use crate::Rule;

const ALL: u8 = 0b1111;
const SQL: u8 = 1;
const CMD: u8 = 2;
const XSS: u8 = 4;
const PATH: u8 = 8;

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Ident,
    /// A string literal; `parts` are the replacement fields of an f-string, tokenised.
    Str {
        content: String,
        parts: Vec<Vec<Tok>>,
    },
    Num,
    Op,
}

#[derive(Debug, Clone, PartialEq)]
struct Tok {
    kind: Kind,
    text: String,
    /// 1-based line in the block.
    line: usize,
}

impl Tok {
    fn is_op(&self, s: &str) -> bool {
        self.kind == Kind::Op && self.text == s
    }
    fn is_ident(&self) -> bool {
        self.kind == Kind::Ident
    }
}

struct Stmt {
    indent: usize,
    toks: Vec<Tok>,
}

const STRING_PREFIXES: [&str; 9] = ["r", "u", "f", "b", "rb", "br", "fr", "rf", ""];

/// Tokenises Python source into logical statements. Never fails: an unterminated string
/// runs to the end (a cut-off generation).
fn statements(src: &str) -> Vec<Stmt> {
    let chars: Vec<char> = src.chars().collect();
    let mut stmts = Vec::new();
    let mut cur: Vec<Tok> = Vec::new();
    let mut indent = 0;
    let mut line = 1;
    let mut col = 0;
    let mut depth: i32 = 0;
    let mut i = 0;
    let flush = |cur: &mut Vec<Tok>, stmts: &mut Vec<Stmt>, indent: usize| {
        if !cur.is_empty() {
            stmts.push(Stmt {
                indent,
                toks: std::mem::take(cur),
            });
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            if depth <= 0 {
                flush(&mut cur, &mut stmts, indent);
                depth = 0;
            }
            line += 1;
            col = 0;
            i += 1;
            continue;
        }
        if c == '\\' && chars.get(i + 1) == Some(&'\n') {
            line += 1;
            col = 0;
            i += 2;
            continue;
        }
        if c == ' ' || c == '\t' || c == '\r' {
            col += if c == '\t' { 8 } else { 1 };
            i += 1;
            continue;
        }
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if cur.is_empty() {
            indent = col;
        }
        let start_line = line;
        // Identifiers, or string prefixes.
        if c.is_alphabetic() || c == '_' {
            let s = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[s..i].iter().collect();
            col += i - s;
            let lower = word.to_ascii_lowercase();
            if i < chars.len()
                && (chars[i] == '"' || chars[i] == '\'')
                && STRING_PREFIXES.contains(&lower.as_str())
            {
                let (tok, ni, nl) = string(&chars, i, line, lower.contains('f'));
                i = ni;
                line = nl;
                cur.push(tok);
                continue;
            }
            cur.push(Tok {
                kind: Kind::Ident,
                text: word,
                line: start_line,
            });
            continue;
        }
        if c == '"' || c == '\'' {
            let (tok, ni, nl) = string(&chars, i, line, false);
            i = ni;
            line = nl;
            cur.push(tok);
            continue;
        }
        if c.is_ascii_digit() {
            let s = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '.' || chars[i] == '_')
            {
                i += 1;
            }
            col += i - s;
            cur.push(Tok {
                kind: Kind::Num,
                text: chars[s..i].iter().collect(),
                line,
            });
            continue;
        }
        if c == ';' && depth <= 0 {
            flush(&mut cur, &mut stmts, indent);
            i += 1;
            col += 1;
            continue;
        }
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let op = if [
            "==", "!=", "<=", ">=", "+=", "-=", "*=", "/=", "%=", "|=", "&=", "->", "**", "//",
            ":=",
        ]
        .contains(&two.as_str())
        {
            two
        } else {
            c.to_string()
        };
        i += op.chars().count();
        col += op.chars().count();
        cur.push(Tok {
            kind: Kind::Op,
            text: op,
            line,
        });
    }
    flush(&mut cur, &mut stmts, indent);
    stmts
}

/// Reads a string literal whose quote is at `i`; returns the token, the index after it and
/// the line after it.
fn string(chars: &[char], i: usize, line: usize, f: bool) -> (Tok, usize, usize) {
    let q = chars[i];
    let triple = chars.get(i + 1) == Some(&q) && chars.get(i + 2) == Some(&q);
    let mut j = if triple { i + 3 } else { i + 1 };
    let mut nl = line;
    let mut content = String::new();
    while j < chars.len() {
        let c = chars[j];
        if c == '\\' && j + 1 < chars.len() {
            if chars[j + 1] == '\n' {
                nl += 1;
            }
            content.push(c);
            content.push(chars[j + 1]);
            j += 2;
            continue;
        }
        if triple {
            if c == q && chars.get(j + 1) == Some(&q) && chars.get(j + 2) == Some(&q) {
                j += 3;
                break;
            }
        } else if c == q {
            j += 1;
            break;
        } else if c == '\n' {
            // An unterminated single-quoted string ends at the line's end.
            break;
        }
        if c == '\n' {
            nl += 1;
        }
        content.push(c);
        j += 1;
    }
    let parts = if f {
        fields(&content, line)
    } else {
        Vec::new()
    };
    (
        Tok {
            kind: Kind::Str { content, parts },
            text: String::new(),
            line,
        },
        j,
        nl,
    )
}

/// The replacement fields of an f-string's content, each tokenised as an expression.
fn fields(content: &str, line: usize) -> Vec<Vec<Tok>> {
    let cs: Vec<char> = content.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        if cs[i] == '{' {
            if cs.get(i + 1) == Some(&'{') {
                i += 2;
                continue;
            }
            let mut depth = 0;
            let mut j = i + 1;
            let mut end = None;
            let mut quote: Option<char> = None;
            while j < cs.len() {
                let c = cs[j];
                if let Some(q) = quote {
                    if c == q {
                        quote = None;
                    }
                } else if c == '\'' || c == '"' {
                    quote = Some(c);
                } else if c == '(' || c == '[' || c == '{' {
                    depth += 1;
                } else if (c == ')' || c == ']' || c == '}') && depth > 0 {
                    depth -= 1;
                } else if depth == 0
                    && (c == '}' || (c == '!' && cs.get(j + 1) != Some(&'=')) || c == ':')
                    && end.is_none()
                {
                    end = Some(j);
                    if c == '}' {
                        break;
                    }
                } else if depth == 0 && c == '}' {
                    break;
                }
                j += 1;
            }
            let expr: String = cs[i + 1..end.unwrap_or(j)].iter().collect();
            let toks: Vec<Tok> = statements(&expr)
                .into_iter()
                .flat_map(|s| s.toks)
                .map(|mut t| {
                    t.line = line;
                    t
                })
                .collect();
            out.push(toks);
            i = j + 1;
        } else {
            i += 1;
        }
    }
    out
}

/// What the checker knows about a value (see the crate doc).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Val {
    formatted: bool,
    /// Built by `os.path.join` (a path, not a string for a query or a page).
    joined: bool,
    nonlit: u8,
    taint: u8,
    ptaint: u8,
}

impl Val {
    fn merge(&mut self, o: Val) {
        self.formatted |= o.formatted;
        self.joined |= o.joined;
        self.nonlit |= o.nonlit;
        self.taint |= o.taint;
        self.ptaint |= o.ptaint;
    }
    fn clear(mut self, mask: u8) -> Val {
        self.nonlit &= !mask;
        self.taint &= !mask;
        self.ptaint &= !mask;
        self
    }
}

/// The rules whose taint a call removes (by its last name segment or full name).
fn sanitizer(chain: &str) -> u8 {
    let last = chain.rsplit('.').next().unwrap_or(chain);
    match (chain, last) {
        (_, "int" | "float" | "len" | "bool" | "abs" | "round" | "hash") => ALL,
        ("shlex.quote" | "pipes.quote", _) => CMD,
        (_, "escape" | "clean" | "escape_html" | "quoteattr") => XSS,
        (_, "secure_filename" | "basename") => PATH,
        _ => 0,
    }
}

const KEYWORDS: [&str; 24] = [
    "and", "or", "not", "in", "is", "if", "else", "elif", "for", "while", "lambda", "return",
    "await", "async", "yield", "from", "import", "as", "with", "def", "class", "None", "True",
    "False",
];

struct Scope {
    /// Indentation of the `def`; `None` for the module.
    def_indent: Option<usize>,
    vars: HashMap<String, Val>,
    is_route: bool,
    normalised: bool,
    contained: bool,
}

struct Checker {
    scopes: Vec<Scope>,
    findings: Vec<(Rule, usize, String)>,
    imports_tarfile: bool,
}

/// Index of the bracket closing the one at `open`, or the end.
fn closing(toks: &[Tok], open: usize) -> usize {
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

/// Splits at top-level commas.
fn split_commas(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut s = 0;
    for (k, t) in toks.iter().enumerate() {
        if t.kind == Kind::Op {
            match t.text.as_str() {
                "(" | "[" | "{" => depth += 1,
                ")" | "]" | "}" => depth -= 1,
                "," if depth == 0 => {
                    out.push(&toks[s..k]);
                    s = k + 1;
                }
                _ => {}
            }
        }
    }
    if s < toks.len() {
        out.push(&toks[s..]);
    }
    out
}

/// A dotted name starting at `i`: the name and the index after it.
fn chain_at(toks: &[Tok], i: usize) -> (String, usize) {
    let mut name = toks[i].text.clone();
    let mut j = i + 1;
    while j + 1 < toks.len() && toks[j].is_op(".") && toks[j + 1].is_ident() {
        name.push('.');
        name.push_str(&toks[j + 1].text);
        j += 2;
    }
    (name, j)
}

struct Call<'a> {
    name: String,
    line: usize,
    positional: Vec<&'a [Tok]>,
    keywords: Vec<(String, &'a [Tok])>,
}

/// Every call in `toks` (nested ones included), by dotted name.
fn calls(toks: &[Tok]) -> Vec<Call<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if toks[i].is_ident() {
            let after_dot = i > 0 && toks[i - 1].is_op(".");
            let (mut name, j) = chain_at(toks, i);
            if after_dot {
                // A method of a call's result: `conn.cursor().execute(…)`.
                name.insert(0, '.');
            }
            if j < toks.len() && toks[j].is_op("(") {
                let close = closing(toks, j);
                let inner = &toks[(j + 1).min(close)..close];
                let mut positional = Vec::new();
                let mut keywords = Vec::new();
                for a in split_commas(inner) {
                    if a.len() >= 2 && a[0].is_ident() && a[1].is_op("=") {
                        keywords.push((a[0].text.clone(), &a[2..]));
                    } else if !a.is_empty() {
                        positional.push(a);
                    }
                }
                out.push(Call {
                    name,
                    line: toks[i].line,
                    positional,
                    keywords,
                });
            }
            i = j;
            continue;
        }
        i += 1;
    }
    out
}

fn is_source(chain: &str) -> bool {
    chain == "request"
        || chain.starts_with("request.")
        || chain.starts_with("self.request.")
        || chain == "sys.argv"
        || chain == "input"
        || chain == "raw_input"
}

impl Checker {
    fn lookup(&self, name: &str) -> Option<Val> {
        self.scopes
            .iter()
            .rev()
            .find_map(|s| s.vars.get(name).copied())
    }

    fn scope(&mut self) -> &mut Scope {
        self.scopes
            .last_mut()
            .expect("the module scope is never popped")
    }

    /// The abstract value of an expression; `clear` is the rules sanitised around it.
    fn eval(&self, toks: &[Tok], clear: u8) -> Val {
        let mut v = Val::default();
        let mut has_str = false;
        let mut has_concat_op = false;
        let mut i = 0;
        while i < toks.len() {
            let t = &toks[i];
            match &t.kind {
                Kind::Str { parts, .. } => {
                    has_str = true;
                    for p in parts {
                        v.formatted = true;
                        v.merge(self.eval(p, clear));
                    }
                    // `"…".format(…)` / `"…".join(…)`
                    if i + 2 < toks.len()
                        && toks[i + 1].is_op(".")
                        && matches!(toks[i + 2].text.as_str(), "format" | "join" | "format_map")
                    {
                        v.formatted = true;
                    }
                    i += 1;
                }
                Kind::Op => {
                    if t.text == "+" || t.text == "%" {
                        has_concat_op = true;
                    }
                    i += 1;
                }
                Kind::Num => i += 1,
                Kind::Ident => {
                    if KEYWORDS.contains(&t.text.as_str()) {
                        i += 1;
                        continue;
                    }
                    let after_dot = i > 0 && toks[i - 1].is_op(".");
                    let (chain, j) = chain_at(toks, i);
                    let is_call = j < toks.len() && toks[j].is_op("(");
                    if after_dot {
                        // A method of an expression already walked (`"…".format`).
                        i = j;
                        continue;
                    }
                    if is_source(&chain) {
                        v.merge(
                            Val {
                                formatted: false,
                                joined: false,
                                nonlit: ALL,
                                taint: ALL,
                                ptaint: 0,
                            }
                            .clear(clear),
                        );
                        i = j;
                        continue;
                    }
                    // The longest known variable prefix of the chain (`self.q`, `q`).
                    let segs: Vec<&str> = chain.split('.').collect();
                    let known = (1..=segs.len())
                        .rev()
                        .find_map(|n| self.lookup(&segs[..n].join(".")).map(|val| (n, val)));
                    if is_call {
                        let close = closing(toks, j);
                        let last = segs.last().copied().unwrap_or("");
                        let s = sanitizer(&chain);
                        if let Some((n, val)) = known {
                            if n < segs.len() || s == 0 {
                                v.merge(val.clear(clear | s));
                            }
                        } else if s == 0 {
                            // The result of an unknown call is not a literal.
                            v.nonlit |= ALL & !clear;
                        }
                        if last == "join" && segs.len() > 1 && segs[segs.len() - 2] == "path" {
                            v.joined = true;
                        } else if matches!(last, "format" | "join" | "format_map") {
                            v.formatted = true;
                        }
                        if s != 0 {
                            let inner = &toks[(j + 1).min(close)..close];
                            v.merge(self.eval(inner, clear | s));
                            i = close + 1;
                        } else {
                            i = j;
                        }
                        continue;
                    }
                    match known {
                        Some((_, val)) => v.merge(val.clear(clear)),
                        None => v.nonlit |= ALL & !clear,
                    }
                    i = j;
                }
            }
        }
        if has_str && has_concat_op {
            v.formatted = true;
        }
        v
    }

    fn report(&mut self, rule: Rule, line: usize, why: &str) {
        self.findings.push((rule, line, why.to_string()));
    }

    fn run(&mut self, stmts: &[Stmt]) {
        let mut pending_route = false;
        for st in stmts {
            let toks = &st.toks;
            while self
                .scopes
                .last()
                .and_then(|s| s.def_indent)
                .is_some_and(|d| st.indent <= d)
            {
                self.scopes.pop();
            }
            if toks.iter().any(|t| t.is_ident() && t.text == "tarfile") {
                self.imports_tarfile = true;
            }
            // Decorators.
            if toks[0].is_op("@") {
                let (name, _) = chain_at(toks, 1.min(toks.len() - 1));
                let last = name.rsplit('.').next().unwrap_or("");
                if matches!(
                    last,
                    "route" | "get" | "post" | "put" | "delete" | "patch" | "websocket"
                ) {
                    pending_route = true;
                }
                continue;
            }
            let def_at = usize::from(toks[0].text == "async");
            if toks.get(def_at).is_some_and(|t| t.text == "def") {
                let mut vars = HashMap::new();
                let is_route = std::mem::take(&mut pending_route);
                if let Some(open) = toks.iter().position(|t| t.is_op("(")) {
                    let close = closing(toks, open);
                    for p in split_commas(&toks[open + 1..close]) {
                        if let Some(name) = p.iter().find(|t| t.is_ident()) {
                            if name.text == "self" || name.text == "cls" {
                                continue;
                            }
                            let val = Val {
                                formatted: false,
                                joined: false,
                                nonlit: ALL,
                                taint: if is_route { ALL } else { 0 },
                                ptaint: if is_route { 0 } else { ALL },
                            };
                            vars.insert(name.text.clone(), val);
                        }
                    }
                }
                self.scopes.push(Scope {
                    def_indent: Some(st.indent),
                    vars,
                    is_route,
                    normalised: false,
                    contained: false,
                });
                continue;
            }
            pending_route = false;
            self.note_checks(toks);
            self.sinks(toks);
            self.assign(toks);
        }
    }

    fn note_checks(&mut self, toks: &[Tok]) {
        let has = |names: &[&str]| {
            toks.iter()
                .any(|t| t.is_ident() && names.contains(&t.text.as_str()))
        };
        if has(&["realpath", "abspath", "normpath", "resolve"]) {
            self.scope().normalised = true;
        }
        if has(&["startswith", "commonpath", "is_relative_to", "relative_to"]) {
            self.scope().contained = true;
        }
    }

    fn assign(&mut self, toks: &[Tok]) {
        // `for X in EXPR:`
        if toks[0].text == "for" && toks[0].is_ident() {
            if let Some(k) = toks.iter().position(|t| t.is_ident() && t.text == "in") {
                let end = toks
                    .iter()
                    .rposition(|t| t.is_op(":"))
                    .unwrap_or(toks.len());
                let val = self.eval(&toks[k + 1..end.max(k + 1)], 0);
                for t in toks[1..k].iter().filter(|t| t.is_ident()) {
                    let name = t.text.clone();
                    self.scope().vars.insert(name, val);
                }
            }
            return;
        }
        let mut depth = 0;
        let mut at = None;
        for (k, t) in toks.iter().enumerate() {
            if t.kind == Kind::Op {
                match t.text.as_str() {
                    "(" | "[" | "{" => depth += 1,
                    ")" | "]" | "}" => depth -= 1,
                    "=" | "+=" | "%=" if depth == 0 => {
                        at = Some(k);
                        break;
                    }
                    _ => {}
                }
            }
        }
        let Some(at) = at else { return };
        let val = self.eval(&toks[at + 1..], 0);
        // Annotated targets: `x: str = …`.
        let lhs_end = toks[..at].iter().position(|t| t.is_op(":")).unwrap_or(at);
        let targets: Vec<String> = split_commas(&toks[..lhs_end])
            .into_iter()
            .filter_map(|p| {
                let p: Vec<&Tok> = p
                    .iter()
                    .filter(|t| !t.is_op("(") && !t.is_op(")"))
                    .collect();
                let ok = !p.is_empty()
                    && p.iter().enumerate().all(|(n, t)| {
                        if n % 2 == 0 {
                            t.is_ident()
                        } else {
                            t.is_op(".")
                        }
                    })
                    && p.len() % 2 == 1;
                ok.then(|| p.iter().map(|t| t.text.as_str()).collect::<String>())
            })
            .collect();
        let aug = toks[at].text != "=";
        for name in targets {
            let mut v = val;
            if aug {
                if let Some(old) = self.lookup(&name) {
                    v.merge(old);
                }
                v.formatted = true;
            }
            self.scope().vars.insert(name, v);
        }
    }

    fn sinks(&mut self, toks: &[Tok]) {
        for call in calls(toks) {
            let name = call.name.as_str();
            let last = name.rsplit('.').next().unwrap_or(name);
            let arg0 = call.positional.first().copied();
            let kw = |k: &str| call.keywords.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
            // CWE-89
            if matches!(
                last,
                "execute"
                    | "executemany"
                    | "executescript"
                    | "raw"
                    | "text"
                    | "read_sql"
                    | "read_sql_query"
            ) && name.contains('.')
                || name == "text"
            {
                if let Some(q) = arg0.or_else(|| kw("sql")).or_else(|| kw("query")) {
                    let v = self.eval(q, 0);
                    if v.formatted && v.nonlit & SQL != 0 {
                        self.report(
                            Rule::SqlInjection,
                            call.line,
                            "SQL query built by string formatting from non-literal data and executed (use placeholders and pass the values as parameters)",
                        );
                    }
                }
            }
            // CWE-78
            let shell_always = matches!(
                name,
                "os.system"
                    | "os.popen"
                    | "system"
                    | "popen"
                    | "subprocess.getoutput"
                    | "subprocess.getstatusoutput"
                    | "commands.getoutput"
                    | "getoutput"
            );
            let subprocess_fn = matches!(
                last,
                "run" | "call" | "check_call" | "check_output" | "Popen"
            ) && (name.starts_with("subprocess.") || !name.contains('.'));
            let shell_true = kw("shell").is_some_and(|v| {
                !(v.len() == 1 && (v[0].text == "False" || v[0].text == "None" || v[0].text == "0"))
            });
            if shell_always || (subprocess_fn && shell_true) {
                if let Some(cmd) = arg0.or_else(|| kw("args")).or_else(|| kw("cmd")) {
                    let cmd = if cmd.first().is_some_and(|t| t.is_op("[")) {
                        let close = closing(cmd, 0);
                        split_commas(&cmd[1..close]).first().copied().unwrap_or(&[])
                    } else {
                        cmd
                    };
                    if self.eval(cmd, 0).nonlit & CMD != 0 {
                        self.report(
                            Rule::CommandInjection,
                            call.line,
                            "shell command built from non-literal data (pass an argument list without shell=True, or shlex.quote each value)",
                        );
                    }
                }
            }
            // CWE-79
            if last == "render_template_string" || last == "Markup" {
                if let Some(t) = arg0 {
                    let v = self.eval(t, 0);
                    if (v.taint | v.ptaint) & XSS != 0 {
                        self.report(
                            Rule::Xss,
                            call.line,
                            "template or markup built from user data without escaping (use render_template with a context variable, or escape())",
                        );
                    } else if t.len() == 1 {
                        if let Kind::Str { content, .. } = &t[0].kind {
                            let compact: String =
                                content.chars().filter(|c| !c.is_whitespace()).collect();
                            if compact.contains("|safe") || compact.contains("autoescapefalse") {
                                self.report(
                                    Rule::Xss,
                                    call.line,
                                    "template turns autoescaping off for a value (|safe or autoescape false)",
                                );
                            }
                        }
                    }
                }
            }
            // CWE-22
            let path_sink = matches!(
                name,
                "open"
                    | "io.open"
                    | "codecs.open"
                    | "send_file"
                    | "flask.send_file"
                    | "os.remove"
                    | "os.unlink"
                    | "shutil.rmtree"
                    | "os.rmdir"
            ) || (last == "save" && name.contains('.'));
            if path_sink {
                if let Some(p) = arg0.or_else(|| kw("file")).or_else(|| kw("dst")) {
                    let v = self.eval(p, 0);
                    let scope = self.scopes.last().expect("module scope");
                    let guarded = scope.normalised && scope.contained;
                    if !guarded
                        && (v.taint & PATH != 0
                            || (v.ptaint & PATH != 0 && (v.formatted || v.joined)))
                    {
                        self.report(
                            Rule::PathTraversal,
                            call.line,
                            "file path from user data without normalisation and containment check (resolve it with os.path.realpath and check it starts with the base directory, or use secure_filename)",
                        );
                    }
                }
            }
            if last == "extractall"
                && self.imports_tarfile
                && kw("members").is_none()
                && kw("filter").is_none()
            {
                self.report(
                    Rule::PathTraversal,
                    call.line,
                    "tar archive extracted without a members filter: member names like ../x escape the target directory",
                );
            }
        }
        // CWE-79: a route handler returning HTML built from user data.
        if toks[0].is_ident() && toks[0].text == "return" && toks.len() > 1 {
            let in_route = self.scopes.last().is_some_and(|s| s.is_route);
            if !in_route {
                return;
            }
            let mut expr = &toks[1..];
            // Unwrap one response constructor.
            if expr[0].is_ident() {
                let (name, j) = chain_at(expr, 0);
                let last = name.rsplit('.').next().unwrap_or("");
                if j < expr.len() && expr[j].is_op("(") && closing(expr, j) + 1 >= expr.len() {
                    if matches!(last, "make_response" | "Response" | "HTMLResponse") {
                        let close = closing(expr, j);
                        expr = split_commas(&expr[j + 1..close])
                            .first()
                            .copied()
                            .unwrap_or(&[]);
                    } else if sanitizer(&name) == 0 && !is_source(&name) {
                        // jsonify, render_template, redirect, …: not HTML from a string.
                        return;
                    }
                }
            }
            // `return body, 200`: the body; a dict or list is served as JSON.
            let body = split_commas(expr).first().copied().unwrap_or(&[]);
            if body.is_empty() || body[0].is_op("{") || body[0].is_op("[") {
                return;
            }
            // The value itself (`name`, `request.args["q"]`) or a string built from it;
            // not the result of some other call (`open(p).read()`).
            let bare = body.iter().all(|t| {
                matches!(t.kind, Kind::Ident | Kind::Str { .. } | Kind::Num)
                    || [".", "[", "]"].iter().any(|o| t.is_op(o))
            }) || (body[0].is_ident() && is_source(&chain_at(body, 0).0));
            let v = self.eval(body, 0);
            if v.taint & XSS != 0 && (v.formatted || bare) {
                self.report(
                    Rule::Xss,
                    toks[0].line,
                    "route returns HTML built from request data without escaping (escape() it or use render_template)",
                );
            }
        }
    }
}

/// The findings of one Python block: (rule, line in the block, explanation).
pub(crate) fn check(src: &str) -> Vec<(Rule, usize, String)> {
    let stmts = statements(src);
    let mut c = Checker {
        scopes: vec![Scope {
            def_indent: None,
            vars: HashMap::new(),
            is_route: false,
            normalised: false,
            contained: false,
        }],
        findings: Vec::new(),
        imports_tarfile: false,
    };
    c.run(&stmts);
    c.findings
}
