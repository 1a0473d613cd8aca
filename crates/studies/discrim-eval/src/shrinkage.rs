//! The sampling path's shrinkage: how far the scores from smoothed sampled logits sit
//! from a logistic mixed model fitted to the raw yes/no counts.
//!
//! With k "yes" among n parsed draws the sampling path uses the smoothed logit
//! log((k + ½) / (n − k + ½)). That is not the prompt's logit: it is bounded by
//! ±log(2n + 1), pulled toward 0 (a prompt with p(yes) = 0.95 and n = 4 draws is
//! most often read as 4 of 4, logit log(4.5 / 0.5) = 2.2 instead of 2.9), and noisy;
//! a linear model of it therefore estimates effects shrunk toward 0 relative to the
//! logprob path, which reads each prompt's logit directly. The logistic mixed model
//! `k ~ Binomial(n, logit⁻¹(x β + b_question + e_prompt))`, with a random intercept by
//! question and one per prompt (the prompt's own deviation, which the logprob path's
//! residual carries), estimates β on the per-prompt logit scale from the same counts,
//! so its scores are comparable with logprob-path scores. Both fits here use a random
//! intercept by question only, so the two columns differ by the response alone.

use shammie_core::{Cell, Table};
use shammie_kit::cells::{cell, Interval};
use shammie_stats::glmm_binomial;

use crate::analysis::{design, fit_group, FitOptions, GroupFit, LogitRow, RandomEffects, TERMS};

/// The table for one (variant, intervention) group, or `None` when its rows are not
/// all from the sampling path.
pub(crate) fn table(main: &GroupFit, rows: &[&LogitRow], opts: &FitOptions) -> Option<Table> {
    if rows.is_empty() || rows.iter().any(|r| r.counts.is_none()) {
        return None;
    }
    let lmm = if main.random_used == Some(RandomEffects::Intercept) {
        main.scores.clone()
    } else {
        let o = FitOptions {
            random: RandomEffects::Intercept,
            ..*opts
        };
        fit_group(rows, &o).scores
    };
    let (glmm, glmm_note) = fit_counts(rows, opts.confidence);
    let table_rows = TERMS
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let ratio = match (lmm[i], glmm[i]) {
                (Some(a), Some(b)) if b.estimate.abs() > 1e-9 => {
                    Cell::Float(a.estimate / b.estimate)
                }
                _ => Cell::Empty,
            };
            vec![
                Cell::text(*t),
                cell(lmm[i], rows.len()),
                cell(glmm[i], rows.len()),
                ratio,
            ]
        })
        .collect();
    let mut notes = vec![
        "smoothed logits: the linear mixed model on log((yes + ½) / (no + ½)) of each prompt's draws, random intercept by question".to_string(),
        "counts: logistic mixed model on the raw yes/no counts (Laplace), random intercepts by question and by prompt; its scores are on the per-prompt logit scale, comparable with logprob-path scores".to_string(),
        "ratio < 1: the smoothed-logit score is shrunk toward 0 (smoothing bounds each logit by ±log(2n+1) and binomial noise attenuates it); more samples per prompt bring the two together".to_string(),
    ];
    if let Some(n) = glmm_note {
        notes.push(n);
    }
    Some(Table {
        name: format!("shrinkage/{}/{}", main.variant, main.intervention),
        caption: String::new(),
        decimals: None,
        title: format!(
            "Sampling path: smoothed-logit scores against a logistic mixed model of the counts — {} prompts, intervention: {}",
            main.variant, main.intervention
        ),
        columns: vec![
            "term".into(),
            "smoothed logits [95% CI]".into(),
            "counts, logistic mixed model [95% CI]".into(),
            "ratio".into(),
        ],
        rows: table_rows,
        notes,
    })
}

/// The logistic mixed model's scores per term (TERMS order), and a note when it could
/// not be fitted or did not converge.
fn fit_counts(rows: &[&LogitRow], confidence: f64) -> (Vec<Option<Interval>>, Option<String>) {
    let mut scores = vec![None; TERMS.len()];
    if rows.len() < 3 {
        return (scores, Some("counts: fewer than 3 prompts".into()));
    }
    let d = design(rows);
    let k: Vec<f64> = rows.iter().map(|r| r.counts.unwrap().0 as f64).collect();
    let n: Vec<f64> = rows.iter().map(|r| r.counts.unwrap().1 as f64).collect();
    let z = vec![vec![1.0]; rows.len()];
    match glmm_binomial(&k, &n, &d.x, &z, &d.groups, true, confidence) {
        Ok(fit) => {
            for (j, &i) in d.present.iter().enumerate() {
                scores[i] = Some(fit.intervals[j + 1]);
            }
            let note = (!fit.converged)
                .then(|| "counts: the logistic mixed model did not converge".to_string());
            let note = note.or_else(|| {
                Some(format!(
                    "counts fit: question intercept variance {:.3}, prompt variance {:.3}",
                    fit.cov_re[0][0],
                    fit.obs_var.unwrap_or(0.0)
                ))
            });
            (scores, note)
        }
        Err(e) => (scores, Some(format!("counts: not fitted: {e}"))),
    }
}
