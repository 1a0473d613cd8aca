//! What calls cost: a price table per model (built in from `data/prices.toml`, with the
//! date its prices were entered, overridable and extendable from a TOML file of the same
//! shape) and the [`Priced`] layer, which puts each call's cost in its completion's
//! `meta.cost_usd`, where the transcript keeps it.
//!
//! A call's cost is `input_tokens × input + output_tokens × output`, prices per million
//! tokens, whether or not the response came from the cache: the cache flag says whether it
//! was paid, so totals can tell paid from saved. A call answered through a batch API (its
//! `meta.batch_id` is set, `--batch`) costs that times the model's `batch` factor (0.5 for
//! both providers' batch APIs). Local models cost 0; a model with no price has no cost
//! (`None`), which totals report as unknown, never as free.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use shammie_core::{Capabilities, Completion, GenerateRequest, Usage};

use crate::spec::{ModelSpec, Provider};
use crate::{Model, ModelError};

const BUILT_IN: &str = include_str!("../data/prices.toml");

/// Prices of one model, US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    /// Share of the price a batch API charges (1: no discount).
    pub batch: f64,
}

impl Price {
    pub const FREE: Price = Price {
        input: 0.0,
        output: 0.0,
        batch: 1.0,
    };

    /// The cost of `usage`, in dollars.
    pub fn cost(&self, usage: &Usage) -> f64 {
        (usage.input_tokens as f64 * self.input + usage.output_tokens as f64 * self.output) / 1e6
    }

    /// The cost of `usage` answered through a batch API: the list cost times `batch`.
    pub fn batch_cost(&self, usage: &Usage) -> f64 {
        self.cost(usage) * self.batch
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    provider: String,
    model: String,
    input: f64,
    output: f64,
    #[serde(default = "one")]
    batch: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    as_of: Option<String>,
    #[serde(default)]
    price: Vec<Entry>,
}

/// The prices in force: the built-in table, with a user's file laid over it.
#[derive(Debug, Clone)]
pub struct PriceTable {
    /// When the built-in prices were entered (and the override file's date, if it has one).
    pub as_of: String,
    entries: Vec<(Provider, String, Price)>,
}

fn parse(text: &str, origin: &str) -> Result<File, ModelError> {
    toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| format!(":{}", 1 + text[..s.start].matches('\n').count()))
            .unwrap_or_default();
        ModelError::Config(format!("{origin}{at}: {}", e.message()))
    })
}

impl PriceTable {
    /// The built-in table.
    pub fn builtin() -> PriceTable {
        let mut t = PriceTable {
            as_of: String::new(),
            entries: Vec::new(),
        };
        t.lay_over(
            parse(BUILT_IN, "<built-in>/prices.toml").expect("the built-in prices parse"),
            "<built-in>/prices.toml",
        )
        .expect("the built-in prices are valid");
        t
    }

    /// The built-in table with `path`'s prices replacing or adding to it.
    pub fn with_file(path: &Path) -> Result<PriceTable, ModelError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ModelError::Config(format!("{shown}: cannot read: {e}")))?;
        let mut t = PriceTable::builtin();
        t.lay_over(parse(&text, &shown)?, &shown)?;
        Ok(t)
    }

    fn lay_over(&mut self, f: File, origin: &str) -> Result<(), ModelError> {
        if let Some(d) = f.as_of {
            self.as_of = if self.as_of.is_empty() {
                d
            } else {
                format!("{} (built in), {d} ({origin})", self.as_of)
            };
        }
        for e in f.price {
            let provider = match e.provider.as_str() {
                "anthropic" => Provider::Anthropic,
                "openai" => Provider::OpenAi,
                "openai-compatible" => Provider::OpenAiCompatible,
                "local" => Provider::Local,
                other => {
                    return Err(ModelError::Config(format!(
                        "{origin}: price for {}: unknown provider {other:?} (anthropic, openai, openai-compatible, local)",
                        e.model
                    )))
                }
            };
            let ok = |x: f64| x.is_finite() && x >= 0.0;
            if !(ok(e.input) && ok(e.output) && ok(e.batch) && e.batch <= 1.0) {
                return Err(ModelError::Config(format!(
                    "{origin}: price for {}: input and output must be non-negative and batch between 0 and 1",
                    e.model
                )));
            }
            let price = Price {
                input: e.input,
                output: e.output,
                batch: e.batch,
            };
            self.entries
                .retain(|(p, m, _)| !(*p == provider && *m == e.model));
            self.entries.push((provider, e.model, price));
        }
        Ok(())
    }

    /// The price of `spec`'s model: the entry with the longest matching prefix of its id
    /// under its provider; local models are free unless listed; otherwise unknown.
    pub fn price(&self, spec: &ModelSpec) -> Option<Price> {
        let best = self
            .entries
            .iter()
            .filter(|(p, m, _)| *p == spec.provider && spec.model.starts_with(m.as_str()))
            .max_by_key(|(_, m, _)| m.len())
            .map(|(_, _, price)| *price);
        best.or((spec.provider == Provider::Local).then_some(Price::FREE))
    }
}

/// The outermost layer: each completion gets its cost.
pub struct Priced {
    inner: Arc<dyn Model>,
    price: Option<Price>,
}

impl Priced {
    pub fn new(inner: Arc<dyn Model>, price: Option<Price>) -> Self {
        Priced { inner, price }
    }
}

#[async_trait]
impl Model for Priced {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn endpoint(&self) -> &str {
        self.inner.endpoint()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn rendered_prompt(&self, req: &GenerateRequest) -> Option<String> {
        self.inner.rendered_prompt(req)
    }
    async fn generate(&self, req: &GenerateRequest) -> Result<Completion, ModelError> {
        let mut c = self.inner.generate(req).await?;
        c.meta.cost_usd = self.price.map(|p| match c.meta.batch_id {
            Some(_) => p.batch_cost(&c.usage),
            None => p.cost(&c.usage),
        });
        Ok(c)
    }
    async fn generate_many(
        &self,
        req: &GenerateRequest,
        nonces: &[u64],
    ) -> Vec<Result<Completion, ModelError>> {
        let mut out = self.inner.generate_many(req, nonces).await;
        for c in out.iter_mut().flatten() {
            c.meta.cost_usd = self.price.map(|p| match c.meta.batch_id {
                Some(_) => p.batch_cost(&c.usage),
                None => p.cost(&c.usage),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> ModelSpec {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_within_the_provider() {
        let t = PriceTable::builtin();
        assert_eq!(t.as_of, "2026-12-06");
        let p = t.price(&spec("openai:gpt-4o-mini-2024-07-18")).unwrap();
        assert_eq!((p.input, p.output), (0.15, 0.6));
        let p = t.price(&spec("openai:gpt-4o-2024-08-06")).unwrap();
        assert_eq!((p.input, p.output), (2.5, 10.0));
        let p = t
            .price(&spec("anthropic:claude-sonnet-4-5-20250929"))
            .unwrap();
        assert_eq!((p.input, p.output, p.batch), (3.0, 15.0, 0.5));
        assert_eq!(
            t.price(&spec("anthropic:gpt-4o")),
            None,
            "not across providers"
        );
        assert_eq!(t.price(&spec("openai:unheard-of")), None);
        assert_eq!(t.price(&spec("local:gemma-3-270m")), Some(Price::FREE));
        assert_eq!(
            t.price(&spec("openai-compatible:http://127.0.0.1:8000/v1/gpt-4o")),
            None,
            "a self-hosted server's price is unknown unless listed"
        );
    }

    #[test]
    fn cost_by_hand() {
        let p = Price {
            input: 3.0,
            output: 15.0,
            batch: 0.5,
        };
        // 1,200 × $3/M + 300 × $15/M = 0.0036 + 0.0045.
        let c = p.cost(&Usage {
            input_tokens: 1200,
            output_tokens: 300,
        });
        assert!((c - 0.0081).abs() < 1e-15, "{c}");
    }

    #[test]
    fn batched_calls_cost_the_batch_share() {
        let p = Price {
            input: 3.0,
            output: 15.0,
            batch: 0.5,
        };
        let usage = Usage {
            input_tokens: 1200,
            output_tokens: 300,
        };
        // (1,200 × $3/M + 300 × $15/M) × 0.5 = 0.0081 × 0.5.
        assert!((p.batch_cost(&usage) - 0.00405).abs() < 1e-15);
        // Through the layer: a completion with a batch id gets the discounted cost.
        struct Fixed(Option<String>);
        #[async_trait]
        impl Model for Fixed {
            fn name(&self) -> &str {
                "fixed"
            }
            fn endpoint(&self) -> &str {
                "fixed"
            }
            fn capabilities(&self) -> Capabilities {
                Capabilities {
                    max_top_logprobs: 0,
                    prefill: false,
                    stop_sequences: false,
                    system_prompt: false,
                    multi_turn: false,
                    seed: false,
                    score_continuations: false,
                    native_tools: false,
                }
            }
            async fn generate(&self, _: &GenerateRequest) -> Result<Completion, ModelError> {
                let mut c = Completion {
                    text: String::new(),
                    logprobs: None,
                    continuations: None,
                    tool_calls: Vec::new(),
                    stop_reason: shammie_core::StopReason::EndTurn,
                    usage: Usage {
                        input_tokens: 1200,
                        output_tokens: 300,
                    },
                    meta: Default::default(),
                };
                c.meta.batch_id = self.0.clone();
                Ok(c)
            }
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let req = GenerateRequest::user("hi", 5);
        let cost = |batch: Option<&str>| {
            let m = Priced::new(Arc::new(Fixed(batch.map(String::from))), Some(p));
            rt.block_on(m.generate(&req))
                .unwrap()
                .meta
                .cost_usd
                .unwrap()
        };
        assert!((cost(None) - 0.0081).abs() < 1e-15);
        assert!((cost(Some("msgbatch_1")) - 0.00405).abs() < 1e-15);
    }

    #[test]
    fn a_file_overrides_and_extends() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("p.toml");
        std::fs::write(
            &f,
            "as_of = \"2027-01-01\"\n[[price]]\nprovider = \"openai\"\nmodel = \"gpt-4o\"\ninput = 1\noutput = 2\n\n[[price]]\nprovider = \"openai-compatible\"\nmodel = \"llama\"\ninput = 0.1\noutput = 0.1\n",
        )
        .unwrap();
        let t = PriceTable::with_file(&f).unwrap();
        assert_eq!(t.price(&spec("openai:gpt-4o")).unwrap().input, 1.0);
        assert_eq!(t.price(&spec("openai:gpt-4o-mini")).unwrap().input, 0.15);
        assert_eq!(
            t.price(&spec("openai-compatible:http://h:1/v1/llama-3-8b"))
                .unwrap()
                .output,
            0.1
        );
        assert!(t.as_of.contains("2027-01-01"));
        std::fs::write(
            &f,
            "[[price]]\nprovider = \"openai\"\nmodel = \"x\"\ninput = 1\nouptut = 2\n",
        )
        .unwrap();
        let e = PriceTable::with_file(&f).unwrap_err().to_string();
        assert!(e.contains("p.toml:5") && e.contains("ouptut"), "{e}");
    }
}
