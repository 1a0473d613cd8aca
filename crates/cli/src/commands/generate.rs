//! `shammie generate --model SPEC PROMPT`: a quick look at any model. The completion goes
//! to stdout; the prompt and decode speed to stderr.

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
    eprintln!(
        "{}: {} prompt tokens, {} generated in {:.2}s ({:.1} tokens/s overall, stop: {:?})",
        model.name(),
        c.usage.input_tokens,
        c.usage.output_tokens,
        secs,
        c.usage.output_tokens as f64 / secs,
        c.stop_reason
    );
    Ok(0)
}
