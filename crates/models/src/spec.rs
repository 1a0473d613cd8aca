use std::fmt;
use std::str::FromStr;

use crate::http::ApiKey;
use crate::template::Format;
use crate::ModelError;

pub(crate) const ANTHROPIC_DEFAULT_BASE: &str = "https://api.anthropic.com";
pub(crate) const OPENAI_DEFAULT_BASE: &str = "https://api.openai.com/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Anthropic,
    OpenAi,
    OpenAiCompatible,
    Local,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Anthropic => "anthropic",
            Provider::OpenAi => "openai",
            Provider::OpenAiCompatible => "openai-compatible",
            Provider::Local => "local",
        }
    }
}

/// A model address such as `anthropic:claude-sonnet-4-5`, `openai:gpt-4o-mini`,
/// `openai-compatible:http://127.0.0.1:8000/v1/MODEL` or `local:gemma-3-270m`.
///
/// For OpenAI-compatible servers the model name is everything after the `/v1/` segment
/// (so names with slashes such as `meta-llama/Llama-3.1-8B` work); without a `/v1/`
/// segment it is the last path segment and the rest is the base URL.
///
/// An OpenAI-compatible spec may name replicas — several base URLs serving the same
/// weights, separated by commas before the model
/// (`openai-compatible:http://a:8000/v1,http://b:8001/v1/MODEL`) — and declare what the
/// server supports in a query after the model ([`ServerFeatures`]:
/// `…/MODEL?prefill=true&completions=true&n=true&template=chatml`). The query is not
/// part of the model name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelSpec {
    pub provider: Provider,
    pub model: String,
    /// Base URL for `openai-compatible` (the first replica's); `None` elsewhere.
    pub base_url: Option<String>,
    /// `openai-compatible`: the base URLs of further replicas (empty for one server).
    pub replicas: Vec<String>,
    /// `openai-compatible`: what the server was declared to support.
    pub features: ServerFeatures,
}

/// What an OpenAI-compatible server supports beyond plain Chat Completions, declared in
/// the spec's query (`?prefill=true&completions=true&n=true&template=NAME`); all off by
/// default. Unknown keys are an error.
///
/// - `prefill`: a trailing assistant message is continued, not answered
///   (`continue_final_message: true, add_generation_prompt: false`: vLLM, SGLang, recent
///   llama.cpp `llama-server`).
/// - `completions`: the server has `/v1/completions` with `echo` and `logprobs` (vLLM,
///   SGLang, llama.cpp servers): continuation scoring, and the prompt rendered by Shammie
///   with `template`. Without `prefill`, every request goes this way (prefill included).
/// - `n`: one request with `n` returns `n` choices (vLLM, SGLang; not llama-cpp-python).
/// - `template`: how prompts are rendered for `/v1/completions`: a hand-written format
///   (`human-assistant` for base models, the default; `gemma`, `chatml`, `llama3`), or
///   `gguf:FILE` — the chat template of that GGUF (a path, or a name `local:` knows), the
///   text `local:` renders for the same file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ServerFeatures {
    pub prefill: bool,
    pub completions: bool,
    pub n: bool,
    /// `None`: not given (`human-assistant` is used).
    pub template: Option<TemplateName>,
}

/// A spec's `template=`: a hand-written format by name, or `gguf:FILE`, a GGUF whose own
/// chat template renders the prompts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TemplateName {
    Format(Format),
    Gguf(String),
}

impl TemplateName {
    fn parse(v: &str) -> Result<TemplateName, String> {
        if let Some(file) = v.strip_prefix("gguf:") {
            if file.is_empty() {
                return Err("`template=gguf:FILE` names no file".into());
            }
            return Ok(TemplateName::Gguf(file.to_string()));
        }
        Format::from_name(v)
            .map(TemplateName::Format)
            .ok_or_else(|| {
                format!(
                "unknown template `{v}` (one of {}, or gguf:FILE for a GGUF's own chat template)",
                Format::ALL.map(Format::name).join(", ")
            )
            })
    }
}

impl fmt::Display for TemplateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateName::Format(x) => f.write_str(x.name()),
            TemplateName::Gguf(file) => write!(f, "gguf:{file}"),
        }
    }
}

impl ServerFeatures {
    /// The keys a spec's query may hold.
    pub const KEYS: [&'static str; 4] = ["prefill", "completions", "n", "template"];

    /// The hand-written prompt format on `/v1/completions`, when the spec names one (or
    /// names none: `human-assistant`); `None` for `template=gguf:FILE`.
    pub fn format(&self) -> Option<Format> {
        match &self.template {
            None => Some(Format::Base),
            Some(TemplateName::Format(f)) => Some(*f),
            Some(TemplateName::Gguf(_)) => None,
        }
    }

    fn parse(query: &str) -> Result<ServerFeatures, String> {
        let mut f = ServerFeatures::default();
        let mut seen: Vec<&str> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` in the query is not KEY=VALUE"))?;
            if seen.contains(&k) {
                return Err(format!("`{k}` is given twice"));
            }
            seen.push(k);
            let flag = || match v {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(format!("`{k}` must be true or false, not `{v}`")),
            };
            match k {
                "prefill" => f.prefill = flag()?,
                "completions" => f.completions = flag()?,
                "n" => f.n = flag()?,
                "template" => f.template = Some(TemplateName::parse(v)?),
                _ => {
                    return Err(format!(
                        "unknown key `{k}` in the query (one of {})",
                        Self::KEYS.join(", ")
                    ))
                }
            }
        }
        if f.template.is_some() && !f.completions {
            return Err(
                "`template` is how prompts are rendered for /v1/completions: add completions=true"
                    .into(),
            );
        }
        Ok(f)
    }

    /// The query as a spec writes it (`?prefill=true&…`), empty when nothing is declared.
    fn query(&self) -> String {
        let mut parts = Vec::new();
        if self.prefill {
            parts.push("prefill=true".to_string());
        }
        if self.completions {
            parts.push("completions=true".to_string());
        }
        if self.n {
            parts.push("n=true".to_string());
        }
        if let Some(t) = &self.template {
            parts.push(format!("template={t}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

impl FromStr for ModelSpec {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, ModelError> {
        let s = s.trim();
        let bad = |why: &str| {
            ModelError::Config(format!(
                "invalid model spec `{}`: {why} (expected anthropic:MODEL, openai:MODEL, \
                 openai-compatible:http://HOST:PORT/v1/MODEL or local:NAME)",
                redact_url(s)
            ))
        };
        let Some((prov, rest)) = s.split_once(':') else {
            if s.ends_with(".gguf") {
                return Ok(ModelSpec {
                    provider: Provider::Local,
                    model: s.into(),
                    base_url: None,
                    replicas: Vec::new(),
                    features: ServerFeatures::default(),
                });
            }
            return Err(bad("no provider prefix"));
        };
        if rest.is_empty() {
            return Err(bad("empty model name"));
        }
        if prov != "local" && rest.contains("+lora=") {
            return Err(bad("an adapter (+lora=PATH) applies to local models only"));
        }
        match prov {
            "anthropic" => Ok(ModelSpec {
                provider: Provider::Anthropic,
                model: rest.into(),
                base_url: None,
                replicas: Vec::new(),
                features: ServerFeatures::default(),
            }),
            "openai" => Ok(ModelSpec {
                provider: Provider::OpenAi,
                model: rest.into(),
                base_url: None,
                replicas: Vec::new(),
                features: ServerFeatures::default(),
            }),
            "local" => Ok(ModelSpec {
                provider: Provider::Local,
                model: rest.into(),
                base_url: None,
                replicas: Vec::new(),
                features: ServerFeatures::default(),
            }),
            "openai-compatible" | "openai_compatible" | "compat" => {
                // The query (declared features) follows the model: the first `?` in the
                // last server's path (a `?` in a password comes before the host's `/`; a
                // `template=gguf:FILE` path comes after the `?`).
                let last_url = rest.rfind("://").map_or(0, |i| i + 3);
                let path_start = rest[last_url..]
                    .find('/')
                    .map_or(rest.len(), |j| last_url + j);
                let (rest, features) = match rest[path_start..].find('?') {
                    Some(q) => {
                        let q = path_start + q;
                        let f = ServerFeatures::parse(&rest[q + 1..]).map_err(|why| bad(&why))?;
                        (&rest[..q], f)
                    }
                    None => (rest, ServerFeatures::default()),
                };
                // Replicas: base URLs separated by commas; the last one carries the model.
                let mut urls: Vec<&str> = rest.split(',').map(str::trim).collect();
                let last = urls.pop().unwrap_or_default();
                let (base, model) = split_base_and_model(last).map_err(&bad)?;
                let mut bases: Vec<String> = urls
                    .iter()
                    .map(|u| u.trim_end_matches('/').to_string())
                    .collect();
                bases.push(base.to_string());
                for b in &bases {
                    check_base(b).map_err(|why| bad(&why))?;
                }
                if let Some(dup) = bases
                    .iter()
                    .enumerate()
                    .find(|(i, b)| bases[..*i].contains(b))
                    .map(|(_, b)| b)
                {
                    return Err(bad(&format!(
                        "replica `{}` is named twice",
                        redact_url(dup)
                    )));
                }
                let first = bases.remove(0);
                Ok(ModelSpec {
                    provider: Provider::OpenAiCompatible,
                    model: model.into(),
                    base_url: Some(first),
                    replicas: bases,
                    features,
                })
            }
            _ => Err(bad(&format!("unknown provider `{prov}`"))),
        }
    }
}

/// `http://h:1/v1/org/m` → (`http://h:1/v1`, `org/m`); without `/v1/`, the last path
/// segment is the model.
fn split_base_and_model(url: &str) -> Result<(&str, &str), &'static str> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err("the address must start with http:// or https://");
    }
    let (base, model) = if let Some(i) = url.find("/v1/") {
        (&url[..i + 3], &url[i + 4..])
    } else {
        let scheme_end = url.find("://").unwrap() + 3;
        match url[scheme_end..].rfind('/') {
            Some(j) => (&url[..scheme_end + j], &url[scheme_end + j + 1..]),
            None => return Err("no model name after the server address"),
        }
    };
    if model.is_empty() {
        return Err("no model name after the server address");
    }
    Ok((base, model))
}

/// A replica's base URL must be an http(s) URL with a host.
fn check_base(base: &str) -> Result<(), String> {
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(format!(
            "the address `{}` must start with http:// or https://",
            redact_url(base)
        ));
    }
    match reqwest::Url::parse(base) {
        Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        Ok(_) => Err("the server address has no host".into()),
        Err(e) => Err(format!("the server address is not a valid URL ({e})")),
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.base_url {
            Some(b) => {
                write!(f, "{}:{}", self.provider.as_str(), redact_url(b))?;
                for r in &self.replicas {
                    write!(f, ",{}", redact_url(r))?;
                }
                write!(f, "/{}{}", self.model, self.features.query())
            }
            None => write!(f, "{}:{}", self.provider.as_str(), self.model),
        }
    }
}

impl ModelSpec {
    /// For a local spec `local:NAME+lora=PATH`: the model name and the adapter folder
    /// (a PEFT `adapter_config.json` + `adapter_model.safetensors`, e.g. a run's
    /// `artifacts/adapter`), if any.
    pub fn local_parts(&self) -> (&str, Option<&str>) {
        match self.model.split_once("+lora=") {
            Some((name, path)) => (name, Some(path)),
            None => (&self.model, None),
        }
    }

    /// The base URL this spec resolves to.
    pub fn resolved_base_url(&self, env: &ProviderEnv) -> String {
        let b = match self.provider {
            Provider::Anthropic => env
                .anthropic_base_url
                .clone()
                .unwrap_or_else(|| ANTHROPIC_DEFAULT_BASE.into()),
            Provider::OpenAi => env
                .openai_base_url
                .clone()
                .unwrap_or_else(|| OPENAI_DEFAULT_BASE.into()),
            Provider::OpenAiCompatible => self.base_url.clone().unwrap_or_default(),
            Provider::Local => String::new(),
        };
        b.trim_end_matches('/').to_string()
    }

    /// Requests to the same server share one concurrency limit. A spec with replicas is
    /// keyed by all of them (each replica has its own limit besides: [`Self::replica_limiter_keys`]).
    pub fn limiter_key(&self, env: &ProviderEnv) -> String {
        let mut k = format!(
            "{} {}",
            self.provider.as_str(),
            redact_url(&self.resolved_base_url(env))
        );
        for r in &self.replicas {
            k.push(',');
            k.push_str(&redact_url(r.trim_end_matches('/')));
        }
        k
    }

    /// For an OpenAI-compatible spec that leaves prefill or scoring undeclared: which
    /// query keys would declare them, for the message of a task that needs them.
    pub fn feature_hint(&self) -> Option<String> {
        if self.provider != Provider::OpenAiCompatible {
            return None;
        }
        let f = &self.features;
        let mut add = Vec::new();
        if !f.completions {
            add.push(
                "`completions=true` (continuation scoring, and prefill, through /v1/completions                  with echo and logprobs)",
            );
        }
        if !f.prefill && !f.completions {
            add.push("`prefill=true` (assistant prefill through continue_final_message)");
        }
        (!add.is_empty()).then(|| {
            format!(
                "`{self}` declares no {}; if the server supports it, add {} to the spec's query \
                 (see docs/open-weight-servers.md)",
                if f.prefill {
                    "scoring"
                } else {
                    "prefill or scoring"
                },
                add.join(" or ")
            )
        })
    }

    /// Every server of this spec in order (the base URL, then the replicas), each keyed as
    /// a spec naming that server alone would be, so specs share a server's limit.
    pub fn replica_limiter_keys(&self, env: &ProviderEnv) -> Vec<String> {
        std::iter::once(self.resolved_base_url(env))
            .chain(
                self.replicas
                    .iter()
                    .map(|r| r.trim_end_matches('/').to_string()),
            )
            .map(|b| format!("{} {}", self.provider.as_str(), redact_url(&b)))
            .collect()
    }
}

/// Strips `user:password@` from a URL so it can be logged.
pub(crate) fn redact_url(s: &str) -> String {
    if let Some(scheme_end) = s.find("://") {
        let after = &s[scheme_end + 3..];
        let host_end = after.find('/').unwrap_or(after.len());
        if let Some(at) = after[..host_end].rfind('@') {
            return format!("{}***@{}", &s[..scheme_end + 3], &after[at + 1..]);
        }
    }
    s.to_string()
}

/// Credentials and endpoint overrides, read from the environment by the CLI only.
#[derive(Clone, Default)]
pub struct ProviderEnv {
    pub anthropic_api_key: Option<ApiKey>,
    pub anthropic_base_url: Option<String>,
    pub openai_api_key: Option<ApiKey>,
    pub openai_base_url: Option<String>,
    /// Optional key for OpenAI-compatible servers that want one.
    pub compatible_api_key: Option<ApiKey>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_specs_may_carry_an_adapter_and_others_may_not() {
        let s: ModelSpec = "local:gemma-3-270m+lora=runs/r1/artifacts/adapter"
            .parse()
            .unwrap();
        assert_eq!(
            s.local_parts(),
            ("gemma-3-270m", Some("runs/r1/artifacts/adapter"))
        );
        assert_eq!(
            s.to_string(),
            "local:gemma-3-270m+lora=runs/r1/artifacts/adapter"
        );
        let plain: ModelSpec = "local:gemma-3-270m".parse().unwrap();
        assert_eq!(plain.local_parts(), ("gemma-3-270m", None));
        let e = "openai:gpt-4o+lora=x"
            .parse::<ModelSpec>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("local models only"), "{e}");
    }

    #[test]
    fn parses_every_provider() {
        let s: ModelSpec = "anthropic:claude-sonnet-4-5".parse().unwrap();
        assert_eq!(
            (s.provider, s.model.as_str()),
            (Provider::Anthropic, "claude-sonnet-4-5")
        );
        let s: ModelSpec = "openai:gpt-4o-mini".parse().unwrap();
        assert_eq!(s.provider, Provider::OpenAi);
        let s: ModelSpec = "openai-compatible:http://127.0.0.1:8000/v1/meta-llama/Llama-3.1-8B"
            .parse()
            .unwrap();
        assert_eq!(s.base_url.as_deref(), Some("http://127.0.0.1:8000/v1"));
        assert_eq!(s.model, "meta-llama/Llama-3.1-8B");
        assert_eq!(
            s.to_string(),
            "openai-compatible:http://127.0.0.1:8000/v1/meta-llama/Llama-3.1-8B"
        );
        let s: ModelSpec = "openai-compatible:http://h:1/api/qwen".parse().unwrap();
        assert_eq!(
            (s.base_url.as_deref(), s.model.as_str()),
            (Some("http://h:1/api"), "qwen")
        );
        let s: ModelSpec = "/models/x.gguf".parse().unwrap();
        assert_eq!(s.provider, Provider::Local);
    }

    #[test]
    fn rejects_bad_specs_with_a_clear_message() {
        for bad in [
            "gpt-4",
            "foo:bar",
            "openai:",
            "openai-compatible:localhost:8000/v1/m",
            "openai-compatible:http://h:1/v1/",
        ] {
            let e = bad.parse::<ModelSpec>().unwrap_err().to_string();
            assert!(e.contains("invalid model spec"), "{bad}: {e}");
        }
    }

    #[test]
    fn features_are_declared_in_the_query_and_round_trip() {
        let s: ModelSpec =
            "openai-compatible:http://h:8000/v1/org/m?prefill=true&completions=true&n=true"
                .parse()
                .unwrap();
        assert_eq!(s.model, "org/m");
        assert_eq!(s.base_url.as_deref(), Some("http://h:8000/v1"));
        assert_eq!(
            s.features,
            ServerFeatures {
                prefill: true,
                completions: true,
                n: true,
                template: None
            }
        );
        assert_eq!(s.features.format(), Some(Format::Base));
        for text in [
            "openai-compatible:http://h:8000/v1/org/m?prefill=true&completions=true&n=true",
            "openai-compatible:http://h:8000/v1/m?completions=true&template=chatml",
            "openai-compatible:http://h:8000/v1/m?completions=true&template=human-assistant",
            "openai-compatible:http://h:8000/v1/m?completions=true&template=gguf:/models/q.gguf",
            "openai-compatible:http://h:8000/v1/m?completions=true&template=gguf:qwen2.5-0.5b",
            "openai-compatible:http://a:1/v1,http://b:2/v1/m",
            "openai-compatible:http://a:1/v1,http://b:2/v1,http://c:3/api/m?n=true",
            "openai-compatible:http://h:8000/v1/m",
        ] {
            let s: ModelSpec = text.parse().unwrap();
            assert_eq!(s.to_string(), text);
            assert_eq!(s.to_string().parse::<ModelSpec>().unwrap(), s);
        }
        // Keys in another order, and `false`, print canonically.
        let s: ModelSpec = "openai-compatible:http://h:1/v1/m?n=true&prefill=false"
            .parse()
            .unwrap();
        assert_eq!(s.to_string(), "openai-compatible:http://h:1/v1/m?n=true");
        let t: ModelSpec = "openai-compatible:http://h:1/v1/m?completions=true&template=gemma"
            .parse()
            .unwrap();
        assert_eq!(t.features.format(), Some(Format::Gemma));
        let t: ModelSpec =
            "openai-compatible:http://u:pw@h:1/v1/org/m?completions=true&template=gguf:/a/b.gguf"
                .parse()
                .unwrap();
        assert_eq!(t.model, "org/m");
        assert_eq!(
            t.features.template,
            Some(TemplateName::Gguf("/a/b.gguf".into()))
        );
        assert_eq!(t.features.format(), None);
    }

    #[test]
    fn bad_queries_are_clear_errors() {
        for (bad, says) in [
            (
                "openai-compatible:http://h:1/v1/m?prefil=true",
                "unknown key `prefil`",
            ),
            (
                "openai-compatible:http://h:1/v1/m?prefill=yes",
                "true or false",
            ),
            ("openai-compatible:http://h:1/v1/m?prefill", "KEY=VALUE"),
            ("openai-compatible:http://h:1/v1/m?n=true&n=false", "twice"),
            (
                "openai-compatible:http://h:1/v1/m?completions=true&template=alpaca",
                "unknown template `alpaca`",
            ),
            (
                "openai-compatible:http://h:1/v1/m?completions=true&template=gguf:",
                "names no file",
            ),
            (
                "openai-compatible:http://h:1/v1/m?template=chatml",
                "add completions=true",
            ),
            (
                "openai-compatible:http://h:1/v1,h2:2/v1/m",
                "must start with http",
            ),
            (
                "openai-compatible:http://h:1/v1,http://h:1/v1/m",
                "named twice",
            ),
        ] {
            let e = bad.parse::<ModelSpec>().unwrap_err().to_string();
            assert!(
                e.contains("invalid model spec") && e.contains(says),
                "{bad}: {e}"
            );
        }
        let e = "openai-compatible:http://h:1/v1/m?x=1"
            .parse::<ModelSpec>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("prefill, completions, n, template"), "{e}");
    }

    #[test]
    fn replicas_share_the_first_servers_identity_and_have_limits_of_their_own() {
        let env = ProviderEnv::default();
        let s: ModelSpec = "openai-compatible:http://a:1/v1/,http://u:pw-secret@b:2/v1/m"
            .parse()
            .unwrap();
        assert_eq!(s.base_url.as_deref(), Some("http://a:1/v1"));
        assert_eq!(s.replicas, vec!["http://u:pw-secret@b:2/v1".to_string()]);
        assert_eq!(
            s.to_string(),
            "openai-compatible:http://a:1/v1,http://***@b:2/v1/m"
        );
        assert_eq!(
            s.limiter_key(&env),
            "openai-compatible http://a:1/v1,http://***@b:2/v1"
        );
        assert_eq!(
            s.replica_limiter_keys(&env),
            vec![
                "openai-compatible http://a:1/v1".to_string(),
                "openai-compatible http://***@b:2/v1".to_string()
            ]
        );
        let single: ModelSpec = "openai-compatible:http://a:1/v1/m".parse().unwrap();
        assert_eq!(single.limiter_key(&env), s.replica_limiter_keys(&env)[0]);
        assert!(single.replicas.is_empty());
    }

    #[test]
    fn hints_name_the_flags_a_spec_leaves_out() {
        let h = |s: &str| s.parse::<ModelSpec>().unwrap().feature_hint();
        let none = h("openai-compatible:http://h:1/v1/m").unwrap();
        assert!(
            none.contains("`completions=true`") && none.contains("`prefill=true`"),
            "{none}"
        );
        let p = h("openai-compatible:http://h:1/v1/m?prefill=true").unwrap();
        assert!(
            p.contains("`completions=true`") && !p.contains("`prefill=true`"),
            "{p}"
        );
        assert_eq!(
            h("openai-compatible:http://h:1/v1/m?completions=true"),
            None
        );
        assert_eq!(h("openai:gpt-4o"), None);
    }

    #[test]
    fn credentials_in_urls_never_print() {
        let s: ModelSpec = "openai-compatible:https://user:sekrit@h.example/v1/m"
            .parse()
            .unwrap();
        assert!(!s.to_string().contains("sekrit"));
        assert!(!s.limiter_key(&ProviderEnv::default()).contains("sekrit"));
        let e = "nope:https://user:sekrit@h/v1/m"
            .parse::<ModelSpec>()
            .unwrap_err()
            .to_string();
        assert!(!e.contains("sekrit"), "{e}");
    }
}
