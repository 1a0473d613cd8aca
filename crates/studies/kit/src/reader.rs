//! One way to read an answer from a model: exact continuation scoring, the top-k
//! log-probabilities at the answer position, or sampling, chosen once per task from the
//! model's capabilities ([`ReadPath`]) with one option group ([`AnswerOptions`]).
//!
//! [`read`] takes the request that ends where the answer begins and the labels to read
//! (Yes/No, letters, or custom labels each with its surface forms) and returns a
//! [`Reading`]: per label the probability (scoring, logprobs) or the count of sampled
//! answers (sampling), the path used, and which labels were absent from a top-k list and
//! are therefore bounded by the smallest listed probability rather than known. Studies
//! turn a reading into their own statistic (a normalised p(yes), the most likely letter);
//! [`Reading::pair`] is the one way to read two answers against each other (a bounded
//! answer flagged, the pair's mass for a low-mass flag), and [`Reading::explain`] says
//! which surface forms made up each label's probability, for the transcript.

use shammie_core::{Capabilities, GenerateRequest};
use shammie_engine::{EngineError, SampleContext, SampleError};

use crate::answers::{parse_text, AnswerAt, AnswerKind};

/// `req` as sent to a model that cannot continue a prefilled answer (`prefill` false, from
/// its capabilities): without the prefill, relying on the prompt to say how the answer
/// starts and on the answer's reader to take it with or without that start.
pub fn without_prefill_unless(prefill: bool, mut req: GenerateRequest) -> GenerateRequest {
    if !prefill {
        req.prefill = None;
    }
    req
}

shammie_engine::option_choice! {
    /// How answers are read.
    pub enum ReadPath {
        /// Scoring where the model scores continuations after a prefill, else logprobs,
        /// else sampling (among the paths the task offers).
        Auto = "auto",
        Scoring = "scoring",
        Logprobs = "logprobs",
        Sampling = "sampling",
    }
}

impl ReadPath {
    /// Why a model cannot read answers this way, if it cannot.
    pub fn unsupported(self, caps: &Capabilities) -> Option<&'static str> {
        match self {
            ReadPath::Scoring if !(caps.score_continuations && caps.prefill) => {
                Some("cannot score given continuations after a prefill")
            }
            ReadPath::Logprobs if !caps.logprobs() => Some("gives no token log-probabilities"),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ReadPath::Auto => "auto",
            ReadPath::Scoring => "scoring",
            ReadPath::Logprobs => "logprobs",
            ReadPath::Sampling => "sampling",
        }
    }
}

shammie_engine::task_options! {
    /// How a task reads answers: the one option group every answer-reading task includes.
    pub struct AnswerOptions {
        /// how to read the answer: auto (exact scoring where the model scores continuations after a prefill, else top-k logprobs, else sampling), scoring, logprobs, sampling
        pub path: ReadPath = ReadPath::Auto,
        /// alternatives per token requested on the logprob path
        pub top_logprobs: u8 [1 ..= 20] = 20,
        /// answers sampled per reading on the sampling path
        pub samples: u32 [1 ..= 100_000] = 10,
        /// sampling temperature on the sampling path
        pub temperature: f64 [0.0 ..= 2.0] = 1.0,
    }
}

impl AnswerOptions {
    /// Checks the values make sense for a task offering `offered` paths (`task` names it
    /// in the error).
    pub fn validate(&self, task: &str, offered: &[ReadPath]) -> Result<(), EngineError> {
        if self.path != ReadPath::Auto && !offered.contains(&self.path) {
            return Err(EngineError::Config(format!(
                "{task}: path={} is not offered; choose auto or one of {}",
                self.path.label(),
                offered
                    .iter()
                    .map(|p| p.label())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if self.samples == 0 {
            return Err(EngineError::Config(format!(
                "{task}: samples must be at least 1"
            )));
        }
        if self.top_logprobs == 0 {
            return Err(EngineError::Config(format!(
                "{task}: top_logprobs must be at least 1"
            )));
        }
        Ok(())
    }

    /// The path used with a model of these capabilities: the configured one, or under
    /// `auto` the first of scoring, logprobs, sampling that the task offers and the
    /// model supports.
    pub fn resolve(&self, caps: &Capabilities, offered: &[ReadPath]) -> ReadPath {
        if self.path != ReadPath::Auto {
            return self.path;
        }
        [ReadPath::Scoring, ReadPath::Logprobs, ReadPath::Sampling]
            .into_iter()
            .find(|p| offered.contains(p) && p.unsupported(caps).is_none())
            .unwrap_or(ReadPath::Sampling)
    }

    /// A configuration error naming `model` when it cannot read answers along the
    /// configured path.
    pub fn check_model(&self, model: &str, caps: &Capabilities) -> Result<(), EngineError> {
        match self.path.unsupported(caps) {
            Some(why) => Err(EngineError::Config(format!(
                "{model} {why}; use --set path=auto (or path=sampling)"
            ))),
            None => Ok(()),
        }
    }
}

/// What to read: the labels, and how each may appear.
#[derive(Debug, Clone)]
pub struct Labels {
    pub kind: AnswerKind,
    /// The labels, as [`crate::answers::label_of`] names them (`Yes`, `No`; `A`, `B`, …).
    pub names: Vec<String>,
    /// Scoring path: the continuations whose probabilities make up each label (summed).
    pub forms: Vec<Vec<String>>,
}

impl Labels {
    /// Letters A, B, … for `n` choices, each scored as the bare letter.
    pub fn letters(n: usize) -> Self {
        let names: Vec<String> = (0..n)
            .map(|i| ((b'A' + i as u8) as char).to_string())
            .collect();
        Labels {
            kind: AnswerKind::Letter,
            forms: names.iter().map(|l| vec![l.clone()]).collect(),
            names,
        }
    }
}

/// How the requests of each path are shaped (studies differ in how much room an answer
/// needs).
#[derive(Debug, Clone)]
pub struct Shape {
    /// Logprob path: tokens generated (the answer position is the first non-filler one).
    pub logprob_tokens: u32,
    /// Sampling path: tokens per sampled answer.
    pub sample_tokens: u32,
    /// Sampling path: text put before each sampled answer when parsing it (e.g. the `(`
    /// a prefill ended with).
    pub sample_prefix: String,
}

/// One reading of an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub path: ReadPath,
    /// Per label: its probability (scoring: exact; logprobs: summed over surface forms in
    /// the top-k list, 0 when absent) or, on the sampling path, how many sampled answers
    /// gave it.
    pub values: Vec<f64>,
    /// Logprob path: whether any label was listed at the answer position.
    pub found: bool,
    /// Logprob path: per label, whether any of its forms was listed there.
    pub present: Vec<bool>,
    /// Logprob path: the smallest probability listed at the answer position, which
    /// bounds every label that is absent from the list.
    pub floor: Option<f64>,
    /// Sampling path: answers sampled.
    pub samples: u32,
    /// Scoring and logprob paths: per label, the surface forms that made up its
    /// probability (scoring: every form scored; logprobs: the listed tokens read as it).
    pub forms: Vec<Vec<(String, f64)>>,
}

/// Two answers read against each other ([`Reading::pair`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair {
    /// The two answers' probabilities; a bounded answer holds its bound.
    pub p: [f64; 2],
    /// Logprob path: which of the two (0 or 1) had no form in the top-k list, so that
    /// its probability is only bounded above by the smallest listed one.
    pub bounded: Option<usize>,
}

impl Pair {
    /// p[0] + p[1]: how much of the model's probability the two answers hold.
    pub fn mass(&self) -> f64 {
        self.p[0] + self.p[1]
    }
    /// p[0] / (p[0] + p[1]); `None` when both are 0.
    pub fn share(&self) -> Option<f64> {
        (self.mass() > 0.0).then(|| self.p[0] / self.mass())
    }
    /// Whether the two answers hold less than `min_mass` of the probability.
    pub fn low_mass(&self, min_mass: f64) -> bool {
        self.mass() < min_mass
    }
}

impl Reading {
    /// Labels `a` and `b` (indices into the labels) against each other, on the scoring
    /// and logprob paths: exact (scoring) or summed over listed forms (logprobs). On the
    /// logprob path an answer none of whose forms was listed takes the smallest listed
    /// probability as a bound and is flagged; if neither was listed there is nothing to
    /// read (`None`), as on the sampling path or when no label was listed at all.
    pub fn pair(&self, a: usize, b: usize) -> Option<Pair> {
        let v = |i: usize| self.values[i];
        match self.path {
            ReadPath::Scoring => Some(Pair {
                p: [v(a), v(b)],
                bounded: None,
            }),
            ReadPath::Logprobs if self.found => {
                let floor = self.floor.unwrap_or(0.0);
                match (self.present[a], self.present[b]) {
                    (true, true) => Some(Pair {
                        p: [v(a), v(b)],
                        bounded: None,
                    }),
                    (false, true) => Some(Pair {
                        p: [floor, v(b)],
                        bounded: Some(0),
                    }),
                    (true, false) => Some(Pair {
                        p: [v(a), floor],
                        bounded: Some(1),
                    }),
                    (false, false) => None,
                }
            }
            _ => None,
        }
    }

    /// One line saying what decided the reading: per label its probability and the
    /// forms that made it up (`Yes 0.0412 = " Yes" 0.0400 + "Yes" 0.0012`), labels
    /// absent from a top-k list as bounded by the floor; on the sampling path the counts.
    pub fn explain(&self, labels: &Labels) -> String {
        let parts: Vec<String> = labels
            .names
            .iter()
            .enumerate()
            .map(|(i, name)| match self.path {
                ReadPath::Sampling | ReadPath::Auto => format!("{name} {}", self.values[i]),
                ReadPath::Logprobs if !self.found || !self.present[i] => format!(
                    "{name} not listed (< {})",
                    self.floor.map_or("?".into(), |f| format!("{f:.4}"))
                ),
                _ => {
                    let forms: Vec<String> = self.forms[i]
                        .iter()
                        .map(|(f, p)| format!("{f:?} {}", prob(*p)))
                        .collect();
                    format!("{name} {} = {}", prob(self.values[i]), forms.join(" + "))
                }
            })
            .collect();
        let head = match self.path {
            ReadPath::Sampling | ReadPath::Auto => {
                format!("sampling, {} answers", self.samples)
            }
            ReadPath::Logprobs if !self.found => {
                return "logprobs: no answer listed at the answer position".into();
            }
            p => p.label().to_string(),
        };
        format!("{head}: {}", parts.join("; "))
    }

    /// Labels absent from the top-k list (logprob path), by index.
    pub fn absent(&self) -> Vec<usize> {
        if self.path != ReadPath::Logprobs || !self.found {
            return Vec::new();
        }
        (0..self.values.len())
            .filter(|&i| !self.present[i])
            .collect()
    }
}

/// A probability for a transcript line: four decimals, or two significant digits below
/// 0.0001 (so a small probability does not read as 0).
fn prob(p: f64) -> String {
    if p > 0.0 && p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

fn logsumexp(xs: &[f64]) -> f64 {
    let m = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// Reads `labels` from the answer that `req` asks for, along `path` (already resolved);
/// on the logprob path at the first generated position that is not filler
/// ([`AnswerAt::FirstNonFiller`]).
pub async fn read(
    cx: &SampleContext<'_>,
    role: &str,
    req: GenerateRequest,
    labels: &Labels,
    path: ReadPath,
    opts: &AnswerOptions,
    shape: &Shape,
) -> Result<Reading, SampleError> {
    read_at(
        cx,
        role,
        req,
        labels,
        path,
        opts,
        shape,
        AnswerAt::FirstNonFiller,
    )
    .await
}

/// [`read`], with the logprob path reading the answer at `at`.
#[allow(clippy::too_many_arguments)]
pub async fn read_at(
    cx: &SampleContext<'_>,
    role: &str,
    req: GenerateRequest,
    labels: &Labels,
    path: ReadPath,
    opts: &AnswerOptions,
    shape: &Shape,
    at: AnswerAt,
) -> Result<Reading, SampleError> {
    let caps = cx.capabilities(role)?;
    let n = labels.names.len();
    let empty = Reading {
        path,
        values: vec![0.0; n],
        found: false,
        present: vec![false; n],
        floor: None,
        samples: 0,
        forms: vec![Vec::new(); n],
    };
    match path {
        ReadPath::Scoring => {
            let flat: Vec<String> = labels.forms.iter().flatten().cloned().collect();
            let c = cx.generate(role, req.scoring(flat.clone())).await?;
            let scores = c.continuations.ok_or_else(|| {
                SampleError::Protocol("the model returned no continuation scores".into())
            })?;
            if scores.len() != flat.len() {
                return Err(SampleError::Protocol(format!(
                    "asked for {} continuation scores, got {}",
                    flat.len(),
                    scores.len()
                )));
            }
            let mut next = 0;
            let mut forms = Vec::with_capacity(n);
            let values = labels
                .forms
                .iter()
                .map(|f| {
                    let lp: Vec<f64> = scores[next..next + f.len()]
                        .iter()
                        .map(|s| s.logprob)
                        .collect();
                    next += f.len();
                    forms.push(f.iter().cloned().zip(lp.iter().map(|l| l.exp())).collect());
                    if lp.len() == 1 {
                        lp[0].exp()
                    } else {
                        logsumexp(&lp).exp()
                    }
                })
                .collect();
            Ok(Reading {
                values,
                found: true,
                present: vec![true; n],
                forms,
                ..empty
            })
        }
        ReadPath::Logprobs => {
            let mut r = req;
            r.max_tokens = shape.logprob_tokens;
            r.temperature = Some(0.0);
            r.top_logprobs = Some(opts.top_logprobs.min(caps.max_top_logprobs.max(1)));
            let c = cx.generate(role, r).await?;
            let Some(tokens) = c.logprobs.as_deref() else {
                return Ok(empty);
            };
            let Some(probs) = crate::answers::label_probs_at(labels.kind, tokens, at) else {
                return Ok(empty);
            };
            let pos = &tokens[probs.position];
            let floor = pos
                .top
                .iter()
                .map(|t| t.logprob)
                .chain(std::iter::once(pos.logprob))
                .fold(f64::INFINITY, f64::min)
                .exp();
            Ok(Reading {
                values: labels
                    .names
                    .iter()
                    .map(|l| probs.probs.get(l).copied().unwrap_or(0.0))
                    .collect(),
                present: labels
                    .names
                    .iter()
                    .map(|l| probs.probs.contains_key(l))
                    .collect(),
                forms: labels
                    .names
                    .iter()
                    .map(|l| probs.forms.get(l).cloned().unwrap_or_default())
                    .collect(),
                found: true,
                floor: Some(floor),
                ..empty
            })
        }
        ReadPath::Sampling | ReadPath::Auto => {
            let mut r = req;
            r.max_tokens = shape.sample_tokens;
            r.temperature = Some(opts.temperature);
            let mut values = vec![0.0; n];
            let mut samples = 0;
            // Each draw is labelled within the caller's step: `answer sample 3`. The draws
            // are samples of one request (nonces from its own), asked for together.
            let step = cx.label().unwrap_or("answer").to_string();
            let draws = (0..opts.samples.max(1))
                .map(|i| {
                    (
                        format!("{step} sample {}", i + 1),
                        r.nonce.wrapping_add(i as u64),
                    )
                })
                .collect();
            for c in cx.generate_n(role, r, draws).await {
                let c = c?;
                samples += 1;
                let text = format!("{}{}", shape.sample_prefix, c.text);
                if let Some(l) = parse_text(labels.kind, &text) {
                    if let Some(i) = labels.names.iter().position(|x| *x == l) {
                        values[i] += 1.0;
                    }
                }
            }
            Ok(Reading {
                path: ReadPath::Sampling,
                values,
                samples,
                ..empty
            })
        }
    }
}
