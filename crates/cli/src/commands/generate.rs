//! `shammie generate --model SPEC PROMPT [--raw]`: a quick look at any model. The completion goes
//! to stdout; the speed to stderr (for local models prompt reading and decoding apart).

use std::time::Instant;

use shammie_core::GenerateRequest;

use crate::setup::{self, CallArgs};
use crate::Failure;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The prompt (a single user message).
    pub prompt: String,
    /// Model spec, e.g. local:gemma-3-270m or openai:gpt-4o-mini.
    #[arg(long, short = 'm', default_value = "local:gemma-3-270m")]
    pub model: String,
    #[arg(long, default_value_t = 128, value_parser = crate::setup::at_least_one::<u32>, allow_negative_numbers = true)]
    pub max_tokens: u32,
    #[arg(long, default_value_t = 1.0, value_parser = crate::setup::temperature, allow_negative_numbers = true)]
    pub temperature: f64,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Show the top-K alternatives of each generated token.
    #[arg(long)]
    pub logprobs: Option<u8>,
    /// Text the answer must start with (assistant prefill).
    #[arg(long)]
    pub prefill: Option<String>,
    #[arg(long)]
    pub system: Option<String>,
    /// Plain continuation of PROMPT as it stands (a base model's use): no chat format,
    /// no Human/Assistant turns, no stop at the end of a turn. Local models and
    /// openai-compatible servers with completions=true.
    #[arg(long, conflicts_with_all = ["system", "prefill"])]
    pub raw: bool,
    #[command(flatten)]
    pub call: CallArgs,
}

pub(crate) fn main(a: Args) -> Result<u8, Failure> {
    let specs = setup::parse_role_specs(std::slice::from_ref(&a.model))?;
    let mut call = a.call.clone();
    call.no_cache = true;
    let models = setup::open_models(&specs, &call)?;
    let model = models.get("target").expect("one model").clone();
    let mut req = GenerateRequest::user(a.prompt.clone(), a.max_tokens);
    req.temperature = Some(a.temperature);
    req.seed = a.seed;
    req.top_logprobs = a.logprobs;
    req.prefill = a.prefill.clone();
    req.system = a.system.clone();
    req.raw = a.raw;
    let rt = setup::runtime()?;
    let t0 = Instant::now();
    let c = rt.block_on(model.generate(&req))?;
    let secs = t0.elapsed().as_secs_f64();
    if a.call.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&c).map_err(anyhow::Error::from)?
        );
    } else {
        println!("{}{}", a.prefill.as_deref().unwrap_or(""), c.text);
        if let Some(lps) = &c.logprobs {
            for t in lps {
                let alts: Vec<String> = t
                    .top
                    .iter()
                    .map(|x| format!("{:?} {:.3}", x.token, x.logprob))
                    .collect();
                eprintln!("{:?} {:.3} | {}", t.token, t.logprob, alts.join(", "));
            }
        }
    }
    eprintln!("{}", speed_line(model.name(), &c, secs));
    Ok(0)
}

/// Tokens and time, with prompt reading and decoding apart where the model timed them
/// (local models); `secs` is the whole call.
fn speed_line(name: &str, c: &shammie_core::Completion, secs: f64) -> String {
    let (n_in, n_out) = (c.usage.input_tokens, c.usage.output_tokens);
    let rate = |n: u64, s: f64| {
        if s > 0.0 {
            format!("{:.1} tokens/s", n as f64 / s)
        } else {
            "–".to_string()
        }
    };
    match (c.meta.prompt_secs, c.meta.decode_secs) {
        (Some(p), Some(d)) => format!(
            "{name}: prompt {n_in} tokens in {p:.3}s ({}); decode {n_out} tokens in {d:.3}s ({}); \
             {secs:.2}s in all (stop: {:?})",
            rate(n_in, p),
            rate(n_out.saturating_sub(1), d),
            c.stop_reason
        ),
        _ => format!(
            "{name}: {n_in} prompt tokens, {n_out} generated in {secs:.2}s ({} overall, stop: {:?})",
            rate(n_out, secs),
            c.stop_reason
        ),
    }
}
