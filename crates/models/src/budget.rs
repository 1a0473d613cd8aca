//! A spending cap (`--max-cost USD`): the [`Budgeted`] layer, below the cache, lets a
//! provider call through only while what this process has paid, plus what the calls in
//! flight could cost at most, plus this call's most, stays within the cap.
//!
//! A call's most is its prompt at [`WORST_BYTES_PER_TOKEN`] bytes per token (English runs
//! about four; code, numbers and other scripts fewer, rarely under two) and its reply at
//! its full `max_tokens`, at list price (times the batch discount in batch mode). While in
//! flight the call holds that much; when it returns, the hold becomes its actual cost. So
//! the cap is exceeded only if a prompt packs more tokens into its bytes than that bound,
//! and then by at most that prompt's excess. A refused call fails with
//! [`ModelError::BudgetExhausted`], which the engine treats as a stop, not as the sample's
//! failure: the sample is left unrecorded for `shammie resume`.
//!
//! Invariants: cache hits never reach this layer (they are free); a model without a price
//! cannot be capped, so [`Budget::check_price`] refuses it before anything is sent; once
//! one call is refused every later call is refused too, so a run stops at one point
//! instead of trickling on with small calls.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use shammie_core::{Capabilities, Completion, GenerateRequest, Usage};

use crate::pricing::Price;
use crate::{Model, ModelError};

/// The fewest bytes per token a prompt is assumed to have when reserving for it.
pub const WORST_BYTES_PER_TOKEN: u64 = 2;

/// A cap on what one process pays, shared by every model it opens.
#[derive(Debug)]
pub struct Budget {
    limit_usd: f64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    spent: f64,
    held: f64,
    refused: bool,
}

impl Budget {
    pub fn new(limit_usd: f64) -> Self {
        Budget {
            limit_usd,
            state: Mutex::new(State::default()),
        }
    }

    pub fn limit_usd(&self) -> f64 {
        self.limit_usd
    }

    /// Dollars paid so far by calls that returned.
    pub fn spent_usd(&self) -> f64 {
        self.state.lock().unwrap().spent
    }

    /// Whether a call has been refused (the run is stopping).
    pub fn refused(&self) -> bool {
        self.state.lock().unwrap().refused
    }

    /// A model whose price is unknown cannot be kept under a cap.
    pub fn check_price(&self, model: &str, price: Option<Price>) -> Result<(), ModelError> {
        match price {
            Some(_) => Ok(()),
            None => Err(ModelError::Config(format!(
                "--max-cost: the price of `{model}` is unknown, so its calls cannot be kept \
                 under the cap; give it in a --prices file"
            ))),
        }
    }

    fn hold(&self, most: f64) -> Result<(), ModelError> {
        let mut s = self.state.lock().unwrap();
        if s.refused || s.spent + s.held + most > self.limit_usd {
            s.refused = true;
            return Err(ModelError::BudgetExhausted {
                limit_usd: self.limit_usd,
                spent_usd: s.spent,
                needed_usd: most,
            });
        }
        s.held += most;
        Ok(())
    }

    fn settle(&self, held: f64, cost: f64) {
        let mut s = self.state.lock().unwrap();
        s.held = (s.held - held).max(0.0);
        s.spent += cost;
    }
}

/// The most `req` can cost at `price` (times `discount`), in dollars.
pub fn most_cost(req: &GenerateRequest, price: &Price, discount: f64) -> f64 {
    let bytes = request_bytes(req);
    let usage = Usage {
        input_tokens: bytes.div_ceil(WORST_BYTES_PER_TOKEN),
        output_tokens: if req.is_scoring() {
            0
        } else {
            u64::from(req.max_tokens)
        },
    };
    price.cost(&usage) * discount
}

/// Bytes of everything in `req` that the model reads: system prompt, messages, tool
/// calls and results, prefill, tool definitions and continuations to score.
pub fn request_bytes(req: &GenerateRequest) -> u64 {
    let mut n = req.system.as_deref().map_or(0, str::len);
    for m in &req.messages {
        n += m.content.len();
        for c in &m.tool_calls {
            n += c.name.len() + c.arguments.len();
        }
    }
    n += req.prefill.as_deref().map_or(0, str::len);
    for t in &req.tools {
        n += t.name.len() + t.description.len() + t.input_schema.to_string().len();
    }
    for c in &req.continuations {
        n += c.len();
    }
    n as u64
}

/// Holds each provider call's most against the [`Budget`] while it is in flight.
pub struct Budgeted {
    inner: Arc<dyn Model>,
    budget: Arc<Budget>,
    price: Price,
    /// Share of the list price actually charged (the batch discount in batch mode).
    discount: f64,
}

impl Budgeted {
    /// `price` must be known (see [`Budget::check_price`]).
    pub fn new(inner: Arc<dyn Model>, budget: Arc<Budget>, price: Price, discount: f64) -> Self {
        Budgeted {
            inner,
            budget,
            price,
            discount,
        }
    }
}

#[async_trait]
impl Model for Budgeted {
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
        let most = most_cost(req, &self.price, self.discount);
        self.budget.hold(most)?;
        let r = self.inner.generate(req).await;
        // A failed call may still have been billed (a reply lost in transit); with no
        // usage to go by, the hold is kept as spent only when the provider answered.
        let cost = match &r {
            Ok(c) => self.price.cost(&c.usage) * self.discount,
            Err(_) => 0.0,
        };
        self.budget.settle(most, cost);
        r
    }
    /// All the nonces at once (one request with `n` where the provider takes it), holding
    /// `n` times the most of one.
    async fn generate_many(
        &self,
        req: &GenerateRequest,
        nonces: &[u64],
    ) -> Vec<Result<Completion, ModelError>> {
        let most = most_cost(req, &self.price, self.discount) * nonces.len() as f64;
        if let Err(e) = self.budget.hold(most) {
            return nonces.iter().map(|_| Err(e.clone())).collect();
        }
        let rs = self.inner.generate_many(req, nonces).await;
        let cost = rs
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|c| self.price.cost(&c.usage) * self.discount)
            .sum();
        self.budget.settle(most, cost);
        rs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;

    #[async_trait]
    impl Model for Echo {
        fn name(&self) -> &str {
            "test:echo"
        }
        fn endpoint(&self) -> &str {
            "test"
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                max_top_logprobs: 0,
                prefill: false,
                stop_sequences: true,
                system_prompt: true,
                multi_turn: true,
                seed: false,
                score_continuations: false,
                native_tools: false,
            }
        }
        async fn generate(&self, req: &GenerateRequest) -> Result<Completion, ModelError> {
            Ok(Completion {
                text: "ok".into(),
                logprobs: None,
                continuations: None,
                tool_calls: Vec::new(),
                stop_reason: shammie_core::StopReason::EndTurn,
                usage: Usage {
                    input_tokens: 100,
                    output_tokens: u64::from(req.max_tokens) / 2,
                },
                meta: Default::default(),
            })
        }
    }

    const PRICE: Price = Price {
        input: 2.0,
        output: 10.0,
        batch: 0.5,
    };

    #[test]
    fn the_most_a_call_costs_by_hand() {
        // 40 bytes of prompt → 20 tokens at worst; 50 tokens of reply at most.
        let mut req = GenerateRequest::user("x".repeat(30), 50);
        req.system = Some("y".repeat(10));
        let m = most_cost(&req, &PRICE, 1.0);
        let by_hand = (20.0 * 2.0 + 50.0 * 10.0) / 1e6;
        assert!((m - by_hand).abs() < 1e-15, "{m} vs {by_hand}");
        assert!((most_cost(&req, &PRICE, 0.5) - by_hand / 2.0).abs() < 1e-15);
        // Scoring generates nothing: only the prompt and the continuations are read.
        let s = GenerateRequest::user("x".repeat(30), 50).scoring(vec!["ab".into(), "c".into()]);
        let by_hand = (17.0 * 2.0) / 1e6;
        assert!((most_cost(&s, &PRICE, 1.0) - by_hand).abs() < 1e-15);
    }

    #[tokio::test]
    async fn stops_before_the_cap_and_stays_stopped() {
        // Each call: most = (10 bytes/2 = 5 tokens × $2 + 1000 × $10)/1e6 = $0.01001;
        // actual = (100 × $2 + 500 × $10)/1e6 = $0.0052.
        let budget = Arc::new(Budget::new(0.02));
        let m = Budgeted::new(Arc::new(Echo), budget.clone(), PRICE, 1.0);
        let req = GenerateRequest::user("0123456789", 1000);
        m.generate(&req).await.unwrap();
        m.generate(&req).await.unwrap();
        assert!((budget.spent_usd() - 0.0104).abs() < 1e-12);
        // 0.0104 + 0.01001 > 0.02: refused, and nothing is spent.
        let e = m.generate(&req).await.unwrap_err();
        assert!(matches!(e, ModelError::BudgetExhausted { .. }), "{e}");
        assert!(!e.is_retryable());
        assert!(budget.refused());
        // A smaller call that would fit is refused too: the run stops at one point.
        let small = GenerateRequest::user("0", 1);
        assert!(m.generate(&small).await.is_err());
        assert!((budget.spent_usd() - 0.0104).abs() < 1e-12);
    }

    #[tokio::test]
    async fn calls_in_flight_hold_their_most() {
        let budget = Arc::new(Budget::new(0.015));
        budget.hold(0.01001).unwrap();
        // Another call's most would make 0.02002 > 0.015 although nothing is spent yet.
        let m = Budgeted::new(Arc::new(Echo), budget.clone(), PRICE, 1.0);
        assert!(m
            .generate(&GenerateRequest::user("0123456789", 1000))
            .await
            .is_err());
    }

    #[tokio::test]
    async fn several_draws_hold_the_most_of_each() {
        // Three draws hold 3 × $0.01001 > $0.025: refused whole, nothing spent; two fit.
        let budget = Arc::new(Budget::new(0.025));
        let m = Budgeted::new(Arc::new(Echo), budget.clone(), PRICE, 1.0);
        let req = GenerateRequest::user("0123456789", 1000);
        let rs = m.generate_many(&req, &[0, 1, 2]).await;
        assert!(rs.iter().all(|r| r.is_err()));
        assert_eq!(budget.spent_usd(), 0.0);
        let budget = Arc::new(Budget::new(0.025));
        let m = Budgeted::new(Arc::new(Echo), budget.clone(), PRICE, 1.0);
        let rs = m.generate_many(&req, &[0, 1]).await;
        assert!(rs.iter().all(|r| r.is_ok()));
        assert!((budget.spent_usd() - 2.0 * 0.0052).abs() < 1e-12);
    }

    #[test]
    fn an_unpriced_model_cannot_be_capped() {
        let b = Budget::new(1.0);
        let e = b
            .check_price("openai-compatible:http://h/v1/m", None)
            .unwrap_err();
        assert!(e.to_string().contains("--prices"), "{e}");
        assert!(b.check_price("x", Some(PRICE)).is_ok());
    }
}
