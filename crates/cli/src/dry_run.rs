//! `shammie run … --dry-run`: the calls, tokens and cost a run would take, from the
//! study's protocol run on empty replies (`shammie_engine::estimate`). Sends nothing and
//! writes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use shammie_core::{LimitCounts, Usage};
use shammie_engine::{Estimate, RunOptions, Task};
use shammie_models::ModelSpec;

use crate::commands::run::Plan;
use crate::setup::{self, CallArgs};
use crate::Failure;

pub(crate) fn main(
    p: &Plan,
    task: Arc<dyn Task>,
    specs: &BTreeMap<String, ModelSpec>,
    call: &CallArgs,
) -> Result<u8, Failure> {
    let info = shammie_studies::find(&p.task)?;
    let models = setup::open_models_dry(specs, call)?.resolve(&task.roles(), &info.path())?;
    let dataset = task.dataset()?;
    let opts = RunOptions {
        epochs: p.epochs,
        limit: p.limit,
        limit_counts: LimitCounts::Units,
        max_in_flight: call.samples_in_flight(),
        seed: p.seed,
    };
    let plan = crate::commands::run::plan(&dataset, &opts);
    let rt = setup::runtime()?;
    let est = rt.block_on(shammie_engine::estimate(task, dataset, models, &opts))?;
    let prices = setup::prices(call)?;
    // The prompts' part of each role's cost, from the same price table.
    let prompt_cost: BTreeMap<&str, Option<f64>> = est
        .roles
        .iter()
        .map(|(role, r)| {
            let price = r
                .model
                .parse::<ModelSpec>()
                .ok()
                .and_then(|s| prices.price(&s));
            let c = price.map(|pr| {
                pr.cost(&Usage {
                    input_tokens: r.input_tokens,
                    output_tokens: 0,
                })
            });
            (role.as_str(), c)
        })
        .collect();
    let prompts: Option<f64> = prompt_cost.values().copied().sum();
    if call.json {
        let v = serde_json::json!({
            "dry_run": true,
            "task": p.task,
            "plan": plan,
            "estimate": est,
            "calls": est.calls(),
            "cached_calls": est.cached(),
            "cost_usd_at_most": est.cost_usd(),
            "prompt_cost_usd": prompts,
            "prices_as_of": prices.as_of,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(anyhow::Error::from)?
        );
        return Ok(0);
    }
    print!(
        "{}",
        render(
            &p.task,
            &plan,
            &est,
            prompts,
            &prices.as_of,
            call.batch.is_some()
        )
    );
    Ok(0)
}

fn money(v: Option<f64>) -> String {
    match v {
        // + 0.0: an empty float sum is -0.0.
        Some(v) => format!("${:.4}", v + 0.0),
        None => "unknown".into(),
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn render(
    task: &str,
    plan: &str,
    est: &Estimate,
    prompts: Option<f64>,
    as_of: &str,
    batch: bool,
) -> String {
    let mut out = format!(
        "dry run of {task}: nothing sent, nothing written\n{plan}; {} samples estimated\n\n",
        est.samples
    );
    let header = [
        "role",
        "model",
        "calls",
        "cached",
        "prompt tokens",
        "reply tokens (most)",
        "cost (most)",
    ];
    let mut rows: Vec<[String; 7]> = est
        .roles
        .iter()
        .map(|(role, r)| {
            [
                role.clone(),
                r.model.clone(),
                thousands(r.calls),
                thousands(r.cached),
                thousands(r.input_tokens),
                thousands(r.max_output_tokens),
                money(r.cost_usd),
            ]
        })
        .collect();
    rows.push([
        "total".into(),
        String::new(),
        thousands(est.calls()),
        thousands(est.cached()),
        thousands(est.roles.values().map(|r| r.input_tokens).sum()),
        thousands(est.roles.values().map(|r| r.max_output_tokens).sum()),
        money(est.cost_usd()),
    ]);
    let mut width = header.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(width).enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            if i < 2 {
                l.push_str(&format!("{c:<w$}"));
            } else {
                l.push_str(&format!("{c:>w$}"));
            }
        }
        l.trim_end().to_string() + "\n"
    };
    out.push_str(&line(&header.map(String::from)));
    for r in &rows {
        out.push_str(&line(r));
    }
    out.push_str(&format!(
        "\nAt list prices as of {as_of}{}: the prompts {} (estimated at ~4 bytes per token), \
         the replies at most the rest (each at its full max_tokens). Cached calls are free.\n",
        if batch {
            ", the cost column at the batch price (--batch)"
        } else {
            ""
        },
        money(prompts)
    ));
    out.push_str(
        "Calls a protocol makes only for some answers (another turn, judge votes on a \
         compliant reply) are counted as for an empty reply: the real count can be higher.\n",
    );
    if est.ended_early > 0 {
        out.push_str(&format!(
            "{} samples' protocols stopped with an error on the empty replies; their later \
             calls are not counted.\n",
            est.ended_early
        ));
    }
    for s in &est.not_estimated {
        out.push_str(&format!("not estimated: stage {s}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
