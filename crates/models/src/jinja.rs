//! A model's own chat template (a GGUF's `tokenizer.chat_template`), rendered with
//! `minijinja` the way Hugging Face's `apply_chat_template` and llama.cpp's servers render
//! it.
//!
//! # What the template sees
//!
//! Hugging Face's Jinja environment: `trim_blocks` and `lstrip_blocks` on, `{% break %}`
//! and `{% continue %}`, Python's string and dict methods (`.strip()`, `.startswith()`,
//! `.split()`, `.items()`, `.get()`), a `tojson` that writes what Python's `json.dumps`
//! writes (`", "` and `": "` separators, non-ASCII kept), and `{% generation %}` blocks
//! passed through. Variables:
//!
//! - `messages`: `{role, content}` maps, the request's system text first (role
//!   `system`) when it has one, then its turns (`user`, `assistant`; a tool result is a
//!   user turn);
//! - `add_generation_prompt = true`;
//! - `bos_token`, `eos_token`: the texts of the vocabulary's BOS and EOS tokens (empty when
//!   it has none);
//! - `tools = none`, `documents = none` (as Hugging Face passes them when there are none);
//! - functions `raise_exception(message)` (the render fails with the message) and
//!   `strftime_now(format)` (the local time, as Python's `datetime.now().strftime`).
//!
//! Whatever the template writes comes out exactly, its defaults included (Qwen2.5's
//! "You are Qwen, created by Alibaba Cloud…" when no system message is given, Llama 3's
//! date lines, Gemma's system text folded into the first user turn).
//!
//! # The BOS token
//!
//! As llama.cpp's server does (`common/chat.cpp`): when the vocabulary adds a BOS token
//! itself (`tokenizer.ggml.add_bos_token`), a BOS that the template wrote at the start of
//! its text is taken off before tokenizing, and the tokenizer adds it back — one BOS,
//! never two. When the vocabulary adds none, the text is tokenized as it is (a BOS the
//! template wrote is then read as that special token). [`ChatTemplate::render`] returns
//! the text after that rule, so the caller tokenizes it with the vocabulary's BOS setting
//! ([`ChatTemplate::add_bos`]); an OpenAI-compatible server sent this text through
//! `/v1/completions` adds its BOS the same way. (llama-cpp-python's own chat handler never
//! adds a BOS to a rendered template: the two differ only for a vocabulary that adds a BOS
//! and a template that does not write one.)
//!
//! # Prefill
//!
//! A request's prefill is appended to the rendered prompt (which ends with the generation
//! prompt), so the model continues the assistant turn from it.

use std::fmt::Write as _;

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{context, Environment, Error, ErrorKind};
use shammie_core::{GenerateRequest, Role};

/// The texts of a vocabulary's special tokens that a template uses or that end a turn, and
/// whether the tokenizer adds a BOS itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialTexts {
    /// The BOS token's text (`<bos>`, `<|begin_of_text|>`), if the vocabulary has one.
    pub bos: Option<String>,
    /// The EOS token's text, if any.
    pub eos: Option<String>,
    /// The end-of-turn token's text (`<end_of_turn>`, `<|eot_id|>`, `<|im_end|>`), if any.
    pub eot: Option<String>,
    /// `tokenizer.ggml.add_bos_token`: the tokenizer puts a BOS before every prompt.
    pub add_bos: bool,
}

/// A template that cannot be compiled, or a conversation it refuses (`raise_exception`)
/// or fails on. Names the model the template came from.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{origin}: the model's chat template (tokenizer.chat_template) {what}")]
pub struct TemplateError {
    origin: String,
    what: String,
}

/// What `strftime_now` reads.
#[derive(Debug, Clone, Copy)]
enum Clock {
    Now,
    Fixed(chrono::NaiveDateTime),
}

impl Clock {
    fn now(self) -> chrono::NaiveDateTime {
        match self {
            Clock::Now => chrono::Local::now().naive_local(),
            Clock::Fixed(t) => t,
        }
    }
}

/// A chat template with the special tokens of its vocabulary. Cheap to share behind an
/// `Arc`; rendering takes `&self`.
pub struct ChatTemplate {
    source: String,
    origin: String,
    special: SpecialTexts,
    clock: Clock,
    env: Environment<'static>,
    digest: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("origin", &self.origin)
            .field("special", &self.special)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles `source` (a `tokenizer.chat_template`) from the model named `origin` (a
    /// GGUF's path, said in errors), and renders a lone user message once so that a
    /// template using something this renderer lacks fails now, not at the first request.
    pub fn new(source: &str, special: SpecialTexts, origin: &str) -> Result<Self, TemplateError> {
        let source = pass_generation_blocks(source);
        let mut t = ChatTemplate {
            digest: digest(&source, &special),
            source,
            origin: origin.to_string(),
            special,
            clock: Clock::Now,
            env: Environment::new(),
        };
        t.env = environment(t.clock);
        t.env
            .template_from_str(&t.source)
            .map_err(|e| t.error("does not compile", &e))?;
        t.render(&GenerateRequest::user("Hi", 1))?;
        Ok(t)
    }

    /// The same template with `strftime_now` reading `at` instead of the clock (tests,
    /// and reference renderings made on another day).
    pub fn at_time(mut self, at: chrono::NaiveDateTime) -> Self {
        self.clock = Clock::Fixed(at);
        self.env = environment(self.clock);
        self
    }

    /// The model the template came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The template's source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The special tokens' texts it renders with.
    pub fn special(&self) -> &SpecialTexts {
        &self.special
    }

    /// Whether the tokenizer adds a BOS before the text [`ChatTemplate::render`] returns.
    pub fn add_bos(&self) -> bool {
        self.special.add_bos
    }

    /// SHA-256 (hex) of the template and the special texts it renders with: what decides
    /// the text, for cache identities.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Stop strings: the end-of-turn and end-of-sequence texts (each once).
    pub fn stops(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in [&self.special.eot, &self.special.eos].into_iter().flatten() {
            if !s.is_empty() && !out.contains(s) {
                out.push(s.clone());
            }
        }
        out
    }

    /// What the template writes for `messages` (`(role, content)`, system first if any),
    /// exactly: no BOS rule, no prefill.
    pub fn render_messages(
        &self,
        messages: &[(&str, &str)],
        add_generation_prompt: bool,
    ) -> Result<String, TemplateError> {
        let messages: Vec<Value> = messages
            .iter()
            .map(|(role, content)| context! { role => *role, content => *content })
            .collect();
        let ctx = context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.special.bos.clone().unwrap_or_default(),
            eos_token => self.special.eos.clone().unwrap_or_default(),
            tools => Value::from(()),
            documents => Value::from(()),
        };
        let tmpl = self
            .env
            .template_from_str(&self.source)
            .map_err(|e| self.error("does not compile", &e))?;
        tmpl.render(ctx)
            .map_err(|e| self.error("failed on this conversation", &e))
    }

    /// The prompt text for `req`: the template's rendering with the generation prompt,
    /// a leading BOS taken off when the tokenizer adds one (module docs), then the prefill.
    pub fn render(&self, req: &GenerateRequest) -> Result<String, TemplateError> {
        let mut msgs: Vec<(&str, &str)> = Vec::with_capacity(req.messages.len() + 1);
        if let Some(sys) = &req.system {
            msgs.push(("system", sys));
        }
        for m in &req.messages {
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            msgs.push((role, &m.content));
        }
        let mut text = self.render_messages(&msgs, true)?;
        if self.special.add_bos {
            if let Some(bos) = self.special.bos.as_deref().filter(|b| !b.is_empty()) {
                if text.starts_with(bos) {
                    text.drain(..bos.len());
                }
            }
        }
        if let Some(p) = &req.prefill {
            text.push_str(p);
        }
        Ok(text)
    }

    fn error(&self, what: &str, e: &Error) -> TemplateError {
        // `raise_exception`'s message is the error's detail, as the template wrote it.
        let mut what = what.to_string();
        match e.detail() {
            Some(d) => {
                let _ = write!(what, ": {d}");
            }
            None => {
                let _ = write!(what, ": {}", e.kind());
            }
        }
        if let Some(line) = e.line() {
            let _ = write!(what, " (template line {line})");
        }
        TemplateError {
            origin: self.origin.clone(),
            what,
        }
    }
}

fn digest(source: &str, s: &SpecialTexts) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [
        source,
        s.bos.as_deref().unwrap_or(""),
        s.eos.as_deref().unwrap_or(""),
        s.eot.as_deref().unwrap_or(""),
        if s.add_bos { "add_bos" } else { "" },
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Hugging Face's Jinja settings and globals.
fn environment(clock: Clock) -> Environment<'static> {
    let mut env = Environment::new();
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .expect("the default delimiters are valid");
    env.set_syntax(syntax);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |message: String| -> Result<Value, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, message))
        },
    );
    env.add_function(
        "strftime_now",
        move |format: String| -> Result<String, Error> {
            let mut out = String::new();
            write!(out, "{}", clock.now().format(&format)).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("strftime_now: bad format {format:?}"),
                )
            })?;
            Ok(out)
        },
    );
    env.add_filter("tojson", tojson);
    env
}

/// `{% generation %}…{% endgeneration %}` (Hugging Face's marker of assistant text for
/// training masks) renders its body: written here as an always-true `if`, which keeps the
/// tags' whitespace control and `trim_blocks` behaviour.
fn pass_generation_blocks(source: &str) -> String {
    if !source.contains("generation") {
        return source.to_string();
    }
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        out.push_str(&rest[..start]);
        let tag = &rest[start..];
        let Some(end) = tag.find("%}") else {
            out.push_str(tag);
            return out;
        };
        let inner = &tag[2..end];
        let (lead, body) = match inner.strip_prefix(['-', '+']) {
            Some(b) => (&inner[..1], b),
            None => ("", inner),
        };
        let (body, trail) = match body.strip_suffix(['-', '+']) {
            Some(b) => (b, &body[body.len() - 1..]),
            None => (body, ""),
        };
        match body.trim() {
            "generation" => out.push_str(&format!("{{%{lead} if true {trail}%}}")),
            "endgeneration" => out.push_str(&format!("{{%{lead} endif {trail}%}}")),
            _ => out.push_str(&tag[..end + 2]),
        }
        rest = &tag[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Python's `json.dumps(x, ensure_ascii=False, indent=None, separators=None,
/// sort_keys=False)`, as Hugging Face's `tojson` filter is.
fn tojson(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent: Option<Value> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let separators: Option<Value> = kwargs.get("separators")?;
    kwargs.assert_all_used()?;
    let indent = match indent {
        Some(v) if v.is_none() => None,
        Some(v) => match v.as_i64() {
            Some(n) => Some(" ".repeat(n.max(0) as usize)),
            None => Some(v.as_str().unwrap_or("").to_string()),
        },
        None => None,
    };
    let (item_sep, key_sep) = match separators {
        Some(v) if !v.is_none() => {
            let a = v.get_item_by_index(0)?;
            let b = v.get_item_by_index(1)?;
            (
                a.as_str().unwrap_or(",").to_string(),
                b.as_str().unwrap_or(":").to_string(),
            )
        }
        _ if indent.is_some() => (",".to_string(), ": ".to_string()),
        _ => (", ".to_string(), ": ".to_string()),
    };
    let style = JsonStyle {
        indent,
        item_sep,
        key_sep,
        sort_keys: sort_keys.unwrap_or(false),
        ensure_ascii: ensure_ascii.unwrap_or(false),
    };
    let mut out = String::new();
    style.write(value, 0, &mut out)?;
    Ok(Value::from(out))
}

struct JsonStyle {
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
    ensure_ascii: bool,
}

impl JsonStyle {
    fn newline(&self, depth: usize, out: &mut String) {
        if let Some(ind) = &self.indent {
            out.push('\n');
            for _ in 0..depth {
                out.push_str(ind);
            }
        }
    }

    fn write(&self, v: &Value, depth: usize, out: &mut String) -> Result<(), Error> {
        match v.kind() {
            ValueKind::Undefined | ValueKind::None => out.push_str("null"),
            ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
            ValueKind::Number => {
                if v.is_integer() {
                    out.push_str(&v.to_string());
                } else {
                    let f = f64::try_from(v.clone())?;
                    out.push_str(&python_float(f));
                }
            }
            ValueKind::String => self.string(v.as_str().unwrap_or(""), out),
            ValueKind::Seq | ValueKind::Iterable => {
                let items: Vec<Value> = v.try_iter()?.collect();
                if items.is_empty() {
                    out.push_str("[]");
                    return Ok(());
                }
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.item_sep);
                    }
                    self.newline(depth + 1, out);
                    self.write(item, depth + 1, out)?;
                }
                self.newline(depth, out);
                out.push(']');
            }
            ValueKind::Map | ValueKind::Plain => {
                let mut keys: Vec<Value> = v.try_iter()?.collect();
                if self.sort_keys {
                    keys.sort();
                }
                if keys.is_empty() {
                    out.push_str("{}");
                    return Ok(());
                }
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.item_sep);
                    }
                    self.newline(depth + 1, out);
                    match k.as_str() {
                        Some(s) => self.string(s, out),
                        None => self.string(&k.to_string(), out),
                    }
                    out.push_str(&self.key_sep);
                    self.write(&v.get_item(k)?, depth + 1, out)?;
                }
                self.newline(depth, out);
                out.push('}');
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("tojson: a {} is not JSON", v.kind()),
                ))
            }
        }
        Ok(())
    }

    fn string(&self, s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 || (self.ensure_ascii && !c.is_ascii()) => {
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        let _ = write!(out, "\\u{unit:04x}");
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

/// A float as Python's `repr` writes it (`1.0`, `0.1`, `1e+20`, `NaN`).
fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        // Shortest round-trip digits in exponent form, Python's spelling (`1e+20`).
        let s = format!("{f:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        return format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    let s = format!("{f}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn special() -> SpecialTexts {
        SpecialTexts {
            bos: Some("<s>".into()),
            eos: Some("</s>".into()),
            eot: None,
            add_bos: true,
        }
    }

    #[test]
    fn python_compatible_json() {
        let t = ChatTemplate::new(
            "{{ {'b': [1, 2.5, 'é\\n'], 'a': none, 'c': {}} | tojson }}|{{ [1, {'x': true}] | tojson(indent=2) }}",
            special(),
            "t.gguf",
        )
        .unwrap();
        assert_eq!(
            t.render_messages(&[], false).unwrap(),
            "{\"b\": [1, 2.5, \"é\\n\"], \"a\": null, \"c\": {}}|[\n  1,\n  {\n    \"x\": true\n  }\n]"
        );
        assert_eq!(python_float(1.0), "1.0");
        assert_eq!(python_float(1e20), "1e+20");
        assert_eq!(python_float(0.1), "0.1");
    }

    #[test]
    fn generation_blocks_pass_through() {
        assert_eq!(
            pass_generation_blocks("a{%- generation %}b{% endgeneration -%}c{% if x %}"),
            "a{%- if true %}b{% endif -%}c{% if x %}"
        );
    }

    #[test]
    fn raise_exception_is_an_error_naming_the_model() {
        let src = "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{{ m.content }}{% endfor %}";
        let t = ChatTemplate::new(src, special(), "/m/x.gguf").unwrap();
        let mut req = GenerateRequest::user("Hi", 1);
        req.system = Some("Be brief.".into());
        let e = t.render(&req).unwrap_err().to_string();
        assert!(e.starts_with("/m/x.gguf: the model's chat template"), "{e}");
        assert!(e.contains("System role not supported"), "{e}");
    }

    #[test]
    fn a_template_that_does_not_compile_is_refused() {
        let e = ChatTemplate::new("{% for m in messages %}", special(), "y.gguf")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("y.gguf") && e.contains("does not compile"),
            "{e}"
        );
    }

    #[test]
    fn one_bos_and_the_prefill_continues_the_turn() {
        let src = "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}";
        let mut req = GenerateRequest::user("Hi", 1);
        req.prefill = Some("Sure".into());
        let t = ChatTemplate::new(src, special(), "z").unwrap();
        // The tokenizer adds the BOS: the template's is taken off.
        assert_eq!(t.render(&req).unwrap(), "[user]Hi[assistant]Sure");
        let t = ChatTemplate::new(
            src,
            SpecialTexts {
                add_bos: false,
                ..special()
            },
            "z",
        )
        .unwrap();
        assert_eq!(t.render(&req).unwrap(), "<s>[user]Hi[assistant]Sure");
        assert_eq!(t.stops(), ["</s>"]);
    }

    #[test]
    fn strftime_now_reads_the_pinned_clock() {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 12, 6)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap();
        let t = ChatTemplate::new("{{ strftime_now('%d %b %Y') }}", special(), "d")
            .unwrap()
            .at_time(at);
        assert_eq!(t.render_messages(&[], true).unwrap(), "06 Dec 2026");
    }
}
