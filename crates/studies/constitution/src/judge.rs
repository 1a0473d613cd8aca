//! The AI-feedback comparison (Kundu et al. 2023, after Bai et al. 2022's constitutional
//! AI): a feedback model is shown a conversation, one principle and two candidate
//! responses as options (A) and (B), and its answer is read at the answer position.
//! Shared by `constitution/feedback` and anything else that asks a model to choose
//! between two responses under a principle.
//!
//! The prompt is one human turn: the conversation so far as `Human: …` / `Assistant: …`
//! lines, the principle, then `Options:\n(A) …\n(B) …`. Where the model takes a prefill
//! (local models, Anthropic) its answer starts with [`ANSWER_OPENER`]
//! (`The answer is: (`) and the next token is the letter; otherwise the prompt ends with
//! an instruction to answer with just `(A)` or `(B)`, and the letter is read after the
//! opening parenthesis. The letter is read with `shammie_kit::reader` along the path the
//! model's capabilities allow (exact scoring, top-k logprobs, sampling; the
//! `AnswerOptions` group). Soft label: p(A) = P(A) / (P(A) + P(B)).
//!
//! With `order = both` the pair is also read with the two responses swapped, and
//! `p_a` is the mean of the two readings' probabilities that the response given as `a`
//! is preferred; each order's reading is kept, with the share of the first position
//! (for position bias).

use serde::{Deserialize, Serialize};
use shammie_core::{GenerateRequest, Message, Role};
use shammie_engine::{SampleContext, SampleError};
use shammie_kit::answers::{AnswerAt, AnswerKind};
use shammie_kit::reader::{self, AnswerOptions, Labels, ReadPath, Shape};

/// Every way of reading the answer is offered (auto: scoring, else logprobs, else
/// sampling).
pub const PATHS: &[ReadPath] = &[ReadPath::Scoring, ReadPath::Logprobs, ReadPath::Sampling];

/// What the feedback model's answer starts with where it takes a prefill.
pub const ANSWER_OPENER: &str = "The answer is: (";

/// The instruction that ends the prompt of a model that takes no prefill.
pub const INSTRUCTION: &str = "Answer with just \"(A)\" or \"(B)\".";

shammie_engine::option_choice! {
    /// `order`: in which orders a pair of responses is read.
    pub enum Order { Both = "both", AsWritten = "as-written" }
}

/// How comparisons are asked and read.
#[derive(Debug, Clone)]
pub struct JudgeOptions {
    /// The answer reader's option group (path, top_logprobs, samples, temperature).
    pub answer: AnswerOptions,
    /// Read as written only, or also with the responses swapped.
    pub order: Order,
    /// Scoring and logprob paths: a comparison whose P(A)+P(B) is below this in some
    /// order is flagged `low_mass`.
    pub min_mass: f64,
    /// System prompt for the feedback model.
    pub system: Option<String>,
}

impl Default for JudgeOptions {
    fn default() -> Self {
        JudgeOptions {
            answer: AnswerOptions::default(),
            order: Order::Both,
            min_mass: 0.5,
            system: None,
        }
    }
}

/// One order's reading of a comparison.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderReading {
    /// `as written` (the response `a` shown as (A)) or `swapped` (`a` shown as (B)).
    pub order: String,
    /// The probability (scoring, logprobs) or sampled share that `a` is preferred in
    /// this order; `None` when neither letter could be read.
    pub p_a: Option<f64>,
    /// The same for the first position, (A): the position bias of this reading.
    pub p_first: Option<f64>,
    /// Scoring and logprob paths: P(A) + P(B).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mass: Option<f64>,
    /// Logprob path: the letter (`A` or `B`) absent from the top-k list, bounded by the
    /// smallest listed probability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounded: Option<String>,
    /// Sampling path: answers sampled, and how many chose (A) and (B).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub samples: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<[u32; 2]>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The result of [`compare`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The soft label: the probability that `a` is preferred, the mean over the orders
    /// read; `None` when some order could not be read.
    pub p_a: Option<f64>,
    /// The reading path: `scoring`, `logprobs` or `sampling`.
    pub path: String,
    /// The mean over the orders of the first position's share: 0.5 is no position bias.
    pub first_position: Option<f64>,
    /// Each order's reading (as written, then swapped).
    pub orders: Vec<OrderReading>,
    /// Scoring and logprob paths: P(A) + P(B), averaged over the orders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mass: Option<f64>,
    /// That mass was below `min_mass` in some order.
    #[serde(default)]
    pub low_mass: bool,
    /// Logprob path: a letter was absent from the top-k list in some order, so `p_a` is
    /// a bound.
    #[serde(default)]
    pub bounded: bool,
    /// Whether the answer opener was given as a prefill.
    #[serde(default)]
    pub prefilled: bool,
}

impl Comparison {
    /// The soft label, if it was read and is neither low-mass nor bounded.
    pub fn usable(&self) -> Option<f64> {
        self.p_a.filter(|_| !self.low_mass && !self.bounded)
    }
}

/// The conversation as the feedback model reads it: `Human: …` and `Assistant: …`
/// turns separated by blank lines.
pub fn render_conversation(conversation: &[Message]) -> String {
    conversation
        .iter()
        .map(|m| {
            let who = match m.role {
                Role::User => "Human",
                Role::Assistant => "Assistant",
            };
            format!("{who}: {}", m.content.trim())
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The feedback request with `first` as (A) and `second` as (B): prefilled with
/// [`ANSWER_OPENER`] when `prefilled`, else ending with [`INSTRUCTION`].
pub fn request(
    conversation: &[Message],
    first: &str,
    second: &str,
    principle: &str,
    prefilled: bool,
    system: Option<&str>,
) -> GenerateRequest {
    let mut text = format!(
        "Consider the following conversation between a human and an AI assistant:\n\n{}\n\n{}\n\nOptions:\n(A) {}\n(B) {}",
        render_conversation(conversation),
        principle.trim(),
        first.trim(),
        second.trim()
    );
    if !prefilled {
        text.push_str("\n\n");
        text.push_str(INSTRUCTION);
    }
    let mut req = GenerateRequest::user(text, 1);
    req.system = system.map(str::to_string);
    if prefilled {
        req.prefill = Some(ANSWER_OPENER.into());
    }
    req
}

/// The letters read, their surface forms, the request shapes and the answer position.
fn protocol(prefilled: bool) -> (Labels, Shape, AnswerAt) {
    let names = vec!["A".to_string(), "B".to_string()];
    // After the "(" of the opener the bare letter; otherwise "(A)", with or without a
    // leading space (a chat model's turn opens without one).
    let forms = names
        .iter()
        .map(|n| {
            if prefilled {
                vec![n.clone()]
            } else {
                vec![format!(" ({n})"), format!("({n})")]
            }
        })
        .collect();
    let openers: &'static [&'static str] = if prefilled { &[] } else { &["(", " ("] };
    (
        Labels {
            kind: AnswerKind::Letter,
            names,
            forms,
        },
        Shape {
            logprob_tokens: if prefilled { 1 } else { 2 },
            sample_tokens: 8,
            sample_prefix: if prefilled { "(" } else { "" }.into(),
        },
        AnswerAt::First { openers },
    )
}

/// Asks the `role` model which of `a` and `b` better answers `principle` after
/// `conversation` (which ends with the human turn they reply to), and reads the soft
/// label. Calls are labelled `{the context's label} {order}` (`as written`, `swapped`);
/// each reading leaves a transcript note saying what decided it.
pub async fn compare(
    cx: &SampleContext<'_>,
    role: &str,
    conversation: &[Message],
    a: &str,
    b: &str,
    principle: &str,
    opts: &JudgeOptions,
) -> Result<Comparison, SampleError> {
    let caps = cx.capabilities(role)?;
    let path = opts.answer.resolve(&caps, PATHS);
    // Scoring needs the prefill; on the other paths it is used where the model takes it.
    let prefilled = caps.prefill;
    let (labels, shape, at) = protocol(prefilled);
    let mut orders = vec![("as written", false)];
    if opts.order == Order::Both {
        orders.push(("swapped", true));
    }
    let mut c = Comparison {
        path: path.label().into(),
        prefilled,
        ..Default::default()
    };
    for (name, swapped) in orders {
        let (first, second) = if swapped { (b, a) } else { (a, b) };
        let req = request(
            conversation,
            first,
            second,
            principle,
            prefilled,
            opts.system.as_deref(),
        );
        let step = cx.sublabelled(name);
        let r = reader::read_at(&step, role, req, &labels, path, &opts.answer, &shape, at).await?;
        let mut o = OrderReading {
            order: name.to_string(),
            ..Default::default()
        };
        if r.path == ReadPath::Sampling {
            let counts = [r.values[0] as u32, r.values[1] as u32];
            o.samples = r.samples;
            o.counts = Some(counts);
            let parsed = counts[0] + counts[1];
            o.p_first = (parsed > 0).then(|| counts[0] as f64 / parsed as f64);
            cx.note(format!(
                "{name}: sampling, {} answers: A {}, B {}",
                r.samples, counts[0], counts[1]
            ));
        } else {
            cx.note(format!("{name}: {}", r.explain(&labels)));
            if let Some(pair) = r.pair(0, 1) {
                o.mass = Some(pair.mass());
                o.p_first = pair.share();
                o.bounded = pair.bounded.map(|i| labels.names[i].clone());
            }
        }
        o.p_a = o.p_first.map(|p| if swapped { 1.0 - p } else { p });
        c.orders.push(o);
    }
    let mean = |xs: Option<Vec<f64>>| xs.map(|v| v.iter().sum::<f64>() / v.len() as f64);
    c.p_a = mean(c.orders.iter().map(|o| o.p_a).collect());
    c.first_position = mean(c.orders.iter().map(|o| o.p_first).collect());
    if path != ReadPath::Sampling {
        let masses: Vec<f64> = c.orders.iter().filter_map(|o| o.mass).collect();
        c.mass = (!masses.is_empty()).then(|| masses.iter().sum::<f64>() / masses.len() as f64);
        c.low_mass = masses.iter().any(|m| *m < opts.min_mass);
        c.bounded = c.orders.iter().any(|o| o.bounded.is_some());
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_puts_everything_in_its_slot() {
        let conv = vec![
            Message::user("Hi"),
            Message::assistant("Hello."),
            Message::user(" Help? "),
        ];
        let r = request(&conv, "first", "second", "Which is kinder?", true, None);
        assert_eq!(
            r.messages[0].content,
            "Consider the following conversation between a human and an AI assistant:\n\n\
             Human: Hi\n\nAssistant: Hello.\n\nHuman: Help?\n\nWhich is kinder?\n\n\
             Options:\n(A) first\n(B) second"
        );
        assert_eq!(r.prefill.as_deref(), Some("The answer is: ("));
        let r = request(
            &conv,
            "first",
            "second",
            "Which is kinder?",
            false,
            Some("sys"),
        );
        assert!(r.messages[0]
            .content
            .ends_with("(B) second\n\nAnswer with just \"(A)\" or \"(B)\"."));
        assert_eq!((r.prefill, r.system.as_deref()), (None, Some("sys")));
    }
}
