use std::fmt;
use std::str::FromStr;

use crate::http::ApiKey;
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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelSpec {
    pub provider: Provider,
    pub model: String,
    /// Base URL for `openai-compatible` (without credentials); `None` elsewhere.
    pub base_url: Option<String>,
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
            }),
            "openai" => Ok(ModelSpec {
                provider: Provider::OpenAi,
                model: rest.into(),
                base_url: None,
            }),
            "local" => Ok(ModelSpec {
                provider: Provider::Local,
                model: rest.into(),
                base_url: None,
            }),
            "openai-compatible" | "openai_compatible" | "compat" => {
                if !(rest.starts_with("http://") || rest.starts_with("https://")) {
                    return Err(bad("the address must start with http:// or https://"));
                }
                let (base, model) = if let Some(i) = rest.find("/v1/") {
                    (&rest[..i + 3], &rest[i + 4..])
                } else {
                    let scheme_end = rest.find("://").unwrap() + 3;
                    match rest[scheme_end..].rfind('/') {
                        Some(j) => (&rest[..scheme_end + j], &rest[scheme_end + j + 1..]),
                        None => return Err(bad("no model name after the server address")),
                    }
                };
                if model.is_empty() {
                    return Err(bad("no model name after the server address"));
                }
                match reqwest::Url::parse(base) {
                    Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => {}
                    Ok(_) => return Err(bad("the server address has no host")),
                    Err(e) => {
                        return Err(bad(&format!("the server address is not a valid URL ({e})")))
                    }
                }
                Ok(ModelSpec {
                    provider: Provider::OpenAiCompatible,
                    model: model.into(),
                    base_url: Some(base.to_string()),
                })
            }
            _ => Err(bad(&format!("unknown provider `{prov}`"))),
        }
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.base_url {
            Some(b) => write!(
                f,
                "{}:{}/{}",
                self.provider.as_str(),
                redact_url(b),
                self.model
            ),
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

    /// Requests to the same server share one concurrency limit.
    pub fn limiter_key(&self, env: &ProviderEnv) -> String {
        format!(
            "{} {}",
            self.provider.as_str(),
            redact_url(&self.resolved_base_url(env))
        )
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
