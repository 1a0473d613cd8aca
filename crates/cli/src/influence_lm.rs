//! Influence on local language models: an [`InfluenceJob`] run on the white box
//! (`shammie_influence::lm`), shared by the lab (study `influence/queries`) and
//! `shammie influence fit|scores --model GGUF`.
//!
//! Texts become token sequences as training sees them: a chat prompt rendered in the
//! model's served template (as `shammie-train` renders a conversation), the completion
//! tokenised after it — a training document's with the end of turn (what fine-tuning on it
//! trains), a query's without (the measurement is the completion alone); a plain-text
//! document is all completion after BOS. Sequences are cut to `max_tokens`; a prompt that
//! would leave the completion less than half of them loses its oldest tokens (BOS kept).
//!
//! Resumable: under the work folder, `fit/` holds the fit's checkpoint, `factors/` the
//! fitted factors (with `factors-key.txt`, what they were fitted on) and `scores.jsonl`
//! one line per scored candidate, so a killed job neither refits nor rescores. A work
//! folder left by another job is cleared. Once a lab's job is complete its factors are
//! deleted (a language model's take gigabytes); `shammie influence fit` moves them to its
//! output folder instead.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use shammie_engine::{InfluenceJob, InfluencePrompt, InfluenceResult, InfluenceText};
use shammie_influence::checkpoint::Checkpoint;
use shammie_influence::ekfac::{Damping, LayerFactors};
use shammie_influence::lm::{self, Lm, Scored, Scorer, Sequence};
use shammie_influence::{io, Fisher};
use shammie_local::prompt::Template;
use shammie_local::white_box::WhiteBox;
use shammie_tokenizer::Tokenizer;

/// Whether a text is a training document (its chat completion ends with the end of turn)
/// or a query.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Train,
    Query,
}

/// `text` as a token sequence (module comment), at most `max_tokens` long.
pub(crate) fn sequence(
    text: &InfluenceText,
    role: Role,
    format: &Template,
    tok: &Tokenizer,
    max_tokens: usize,
) -> Result<Sequence, String> {
    let (mut ids, completion) = match &text.prompt {
        InfluencePrompt::None => (tok.encode("", true), text.completion.clone()),
        InfluencePrompt::Text(p) => (tok.encode(p, true), text.completion.clone()),
        InfluencePrompt::Chat(req) => {
            let end = if role == Role::Train {
                format.turn_end()
            } else {
                String::new()
            };
            let c = if format.is_base() {
                format!(" {}{end}", text.completion.trim())
            } else {
                format!("{}{end}", text.completion)
            };
            let prompt = format.render(req).map_err(|e| e.to_string())?;
            (shammie_local::prompt::prompt_ids(tok, &prompt), c)
        }
    };
    let c = tok.encode(&completion, false);
    if c.is_empty() {
        return Err(format!("`{}`: the completion is empty", text.id));
    }
    // A prompt too long to leave the completion half the budget loses its oldest tokens
    // (BOS kept): the completion is what is scored.
    let keep = c.len().min((max_tokens / 2).max(1));
    let budget = max_tokens.saturating_sub(keep).max(1);
    if ids.len() > budget {
        let cut = ids.len() - (budget - 1);
        ids.drain(1..cut);
    }
    let loss_from = ids.len().max(1);
    ids.extend(c);
    ids.truncate(max_tokens);
    if loss_from >= ids.len() {
        return Err(format!(
            "`{}`: max_tokens = {max_tokens} leaves no token of the completion",
            text.id
        ));
    }
    Ok(Sequence {
        id: text.id.clone(),
        ids,
        loss_from,
    })
}

/// FNV-1a of `bytes`, as hex: what a work folder was made for.
fn key(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn read_key(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The job's sequences, rendered.
pub(crate) struct Rendered {
    pub fit: Vec<Sequence>,
    pub queries: Vec<Sequence>,
    pub candidates: Vec<Sequence>,
}

pub(crate) fn render(
    job: &InfluenceJob,
    format: &Template,
    tok: &Tokenizer,
) -> Result<Rendered, String> {
    let n = job.config.max_tokens;
    let all = |v: &[InfluenceText], role| {
        v.iter()
            .map(|t| sequence(t, role, format, tok, n))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(Rendered {
        fit: all(&job.fit, Role::Train)?,
        queries: all(&job.queries, Role::Query)?,
        candidates: all(&job.candidates, Role::Train)?,
    })
}

/// What the factors of `job` depend on.
fn fit_key(job: &InfluenceJob, fit: &[Sequence]) -> String {
    let c = &job.config;
    key(
        serde_json::to_string(&(&job.model, fit, &c.fisher, &c.modules, &c.layers, c.seed))
            .expect("plain values")
            .as_bytes(),
    )
}

/// Marks `work` as holding factors for `job`'s fit: clears what another fit left.
fn claim(work: &Path, key: &str) -> Result<(), String> {
    std::fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
    let file = work.join("fit-key.txt");
    if read_key(&file).as_deref() != Some(key) {
        for d in [work.join("factors"), work.join("fit")] {
            if d.exists() {
                std::fs::remove_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
            }
        }
        std::fs::write(&file, key).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(())
}

/// The factors of `job`'s fit on `lm`: those already under `work`, or fitted there
/// (continuing a checkpoint); with the seconds spent fitting.
fn factors(
    job: &InfluenceJob,
    lm: &Lm<'_>,
    fit: &[Sequence],
    work: &Path,
    progress: &mut dyn FnMut(u64, u64),
    total: u64,
) -> Result<(Vec<LayerFactors>, f64), String> {
    let c = &job.config;
    let fisher = Fisher::parse(&c.fisher)?;
    if fit.is_empty() {
        return Err("no sequences to fit the factors on".into());
    }
    claim(work, &fit_key(job, fit))?;
    let dir = work.join("factors");
    let n_fit = lm::batch_ranges(fit, lm::FIT_BATCH_TOKENS).len() as u64;
    if dir.join(io::FACTORS_META).exists() {
        progress(2 * n_fit, total);
        return Ok((io::load_factors(&dir).map_err(|e| e.to_string())?, 0.0));
    }
    let t0 = Instant::now();
    let fit_dir = work.join("fit");
    let ckpt = Checkpoint::new(&fit_dir, Duration::from_secs(120));
    let f = lm
        .fit(fit, fisher, c.seed, Some(&ckpt), &mut |d, _| {
            progress(d as u64, total)
        })
        .map_err(|e| e.to_string())?;
    io::save_factors(&dir, &f, io::Dtype::F64).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&fit_dir);
    Ok((f, t0.elapsed().as_secs_f64()))
}

fn tapped<'a>(job: &InfluenceJob, wb: &'a mut WhiteBox) -> Result<Lm<'a>, String> {
    let c = &job.config;
    let modules: Vec<&str> = c.modules.iter().map(String::as_str).collect();
    let (taps, specs) = lm::tap(wb, &modules, c.layers.as_deref()).map_err(|e| e.to_string())?;
    Ok(Lm {
        wb,
        taps,
        specs,
        batch_tokens: lm::FIT_BATCH_TOKENS,
    })
}

/// Fits (or finds under `work`) the factors of `job`'s fit.
pub(crate) fn fit(
    job: &InfluenceJob,
    wb: &mut WhiteBox,
    format: &Template,
    tok: &Tokenizer,
    work: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Vec<LayerFactors>, String> {
    let seqs = render(job, format, tok)?;
    let lm = tapped(job, wb)?;
    let n_fit = lm::batch_ranges(&seqs.fit, lm::FIT_BATCH_TOKENS).len() as u64;
    Ok(factors(job, &lm, &seqs.fit, work, progress, 2 * n_fit)?.0)
}

/// Runs `job` on `wb` (module comment), with the factors in `given` when there are
/// some; `progress(done, total)` over the fit's batches (both passes) and the candidates.
pub(crate) fn run(
    job: &InfluenceJob,
    wb: &mut WhiteBox,
    format: &Template,
    tok: &Tokenizer,
    work: &Path,
    given: Option<&Path>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<InfluenceResult, String> {
    std::fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
    let c = &job.config;
    let damping = c.damping.map_or(Damping::default(), Damping::Absolute);
    let seqs = render(job, format, tok)?;
    if seqs.queries.is_empty() {
        return Err("no queries".into());
    }
    let lm = tapped(job, wb)?;
    let n_fit = lm::batch_ranges(&seqs.fit, lm::FIT_BATCH_TOKENS).len() as u64;
    let total = 2 * n_fit + seqs.candidates.len() as u64;
    let (factors, fit_seconds) = match given {
        // Factors fitted elsewhere (`shammie influence fit`), read where they are.
        Some(dir) => {
            progress(2 * n_fit, total);
            (io::load_factors(dir).map_err(|e| e.to_string())?, 0.0)
        }
        None => factors(job, &lm, &seqs.fit, work, progress, total)?,
    };
    let fit_key = fit_key(job, &seqs.fit);
    let score_key = key(serde_json::to_string(&(
        &fit_key,
        &seqs.queries,
        &seqs.candidates,
        &c.damping,
        &c.rank,
        c.self_influence,
    ))
    .expect("plain values")
    .as_bytes());
    let t1 = Instant::now();
    let scorer =
        Scorer::new(&lm, &factors, damping, &seqs.queries, c.rank).map_err(|e| e.to_string())?;
    let mut query_logprobs = Vec::with_capacity(seqs.queries.len());
    for q in &seqs.queries {
        query_logprobs.push(lm.logprob(q).map_err(|e| e.to_string())?);
    }
    // Candidates already scored by an earlier, killed attempt at the same job.
    let log = work.join("scores.jsonl");
    let log_key = work.join("scores-key.txt");
    let mut done: Vec<Option<Scored>> = vec![None; seqs.candidates.len()];
    if read_key(&log_key).as_deref() == Some(score_key.as_str()) {
        if let Ok(text) = std::fs::read_to_string(&log) {
            for line in text.lines() {
                // A line cut short by a kill is scored again.
                if let Ok((i, s)) = serde_json::from_str::<(usize, Scored)>(line) {
                    if i < done.len() {
                        done[i] = Some(s);
                    }
                }
            }
        }
    } else {
        let _ = std::fs::remove_file(&log);
        std::fs::write(&log_key, &score_key).map_err(|e| format!("{}: {e}", log_key.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    for (i, seq) in seqs.candidates.iter().enumerate() {
        if done[i].is_none() {
            let s = scorer
                .score(seq, c.self_influence)
                .map_err(|e| e.to_string())?;
            let line = serde_json::to_string(&(i, &s)).expect("plain values");
            writeln!(f, "{line}").map_err(|e| format!("{}: {e}", log.display()))?;
            done[i] = Some(s);
        }
        progress(2 * n_fit + i as u64 + 1, total);
    }
    let scored: Vec<Scored> = done
        .into_iter()
        .map(|s| s.expect("every candidate scored"))
        .collect();
    let nq = seqs.queries.len();
    let pieces = |ids: &[u32]| {
        let mut d = tok.decode_stream();
        ids.iter().map(|&id| d.push(id)).collect::<Vec<_>>()
    };
    Ok(InfluenceResult {
        scores: (0..nq)
            .map(|q| scored.iter().map(|s| s.tokens[q].iter().sum()).collect())
            .collect(),
        tokens: seqs.candidates.iter().map(|s| pieces(&s.ids)).collect(),
        token_scores: (0..nq)
            .map(|q| scored.iter().map(|s| s.tokens[q].clone()).collect())
            .collect(),
        completion_start: seqs.candidates.iter().map(|s| s.loss_from).collect(),
        self_influence: c.self_influence.then(|| {
            scored
                .iter()
                .map(|s| s.self_influence.unwrap_or(f64::NAN))
                .collect()
        }),
        query_logprobs,
        layers: factors.iter().map(|f| f.spec.name.clone()).collect(),
        fit_sequences: seqs.fit.len(),
        fit_tokens: factors.first().map_or(0, |f| f.tokens),
        fit_seconds,
        score_seconds: t1.elapsed().as_secs_f64(),
    })
}

/// Deletes the factors kept under `work` (after a complete job).
pub(crate) fn drop_factors(work: &Path) {
    let _ = std::fs::remove_dir_all(work.join("factors"));
    let _ = std::fs::remove_file(work.join("fit-key.txt"));
}

/// Moves the factors kept under `work` to `dir` (as `shammie influence fit` leaves them).
pub(crate) fn move_factors(work: &Path, dir: &Path) -> Result<(), String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::rename(work.join("factors"), dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let _ = std::fs::remove_file(work.join("fit-key.txt"));
    Ok(())
}
