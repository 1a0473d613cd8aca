//! `shammie compare RUN_A RUN_B [--json]`: two runs of the same task on the same samples
//! (other models, prompts or interventions), metric by metric.
//!
//! - **Table metrics.** The task's own analysis is run on each run's records of the
//!   samples both runs finished. Every estimate cell both results have (same table, row
//!   and column) gives a difference B − A, with a paired percentile bootstrap interval:
//!   the shared units (a question with all its samples, as the task's dataset groups
//!   them) are resampled with replacement, the same draw for both runs, and both analyses
//!   rerun on the draw (a unit drawn k times enters its k-th copy under epoch + k·10⁶, so
//!   analyses that pair samples by epoch keep copies apart).
//! - **Scores.** Every number or yes/no score both runs recorded: the mean in each run
//!   and the paired mean difference with a t interval over shared samples; for yes/no
//!   scores, the samples that flipped, each way.
//!
//! Refused, with the reason: runs of different tasks and runs without shared finished
//! samples. A multi-stage task's analysis reads stage artifacts, not records alone, so
//! for it only the scores are compared (over every stage's samples, ids `STAGE/ID`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use rand::{Rng, SeedableRng};
use shammie_core::{Cell, RunInfo, SampleRecord, Table};
use shammie_engine::Task;
use shammie_log::RunDir;

use crate::Failure;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The first run (the baseline).
    pub a: PathBuf,
    /// The second run.
    pub b: PathBuf,
    /// Bootstrap resamples for the table metrics' intervals.
    #[arg(long, default_value_t = 200)]
    pub resamples: usize,
    /// Seed of the bootstrap (default: the first run's seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Machine-readable JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// A shared unit: its samples in each run.
struct Unit {
    a: Vec<SampleRecord>,
    b: Vec<SampleRecord>,
}

/// An estimate cell's place in the results.
type Key = (String, String, String);

fn estimates(tables: &[Table]) -> BTreeMap<Key, f64> {
    let mut out = BTreeMap::new();
    for t in tables {
        for row in &t.rows {
            let label: Vec<String> = row
                .iter()
                .filter_map(|c| match c {
                    Cell::Text(s) => Some(s.clone()),
                    _ => None,
                })
                .collect();
            let label = label.join(" · ");
            for (i, c) in row.iter().enumerate() {
                let v = match c {
                    Cell::Estimate { estimate, .. } => *estimate,
                    _ => continue,
                };
                if v.is_finite() {
                    let col = t.columns.get(i).cloned().unwrap_or_default();
                    out.insert((t.name.clone(), label.clone(), col), v);
                }
            }
        }
    }
    out
}

fn analyze(
    task: &dyn Task,
    records: Vec<SampleRecord>,
    info: &RunInfo,
) -> anyhow::Result<BTreeMap<Key, f64>> {
    let a = task
        .analyze(&mut records.into_iter(), info)
        .map_err(|e| anyhow!("the analysis failed: {e}"))?;
    Ok(estimates(&a.tables))
}

/// The finished records of a run: `samples.jsonl`, or for a multi-stage task every
/// stage's, their ids prefixed `STAGE/`.
fn load(run: &RunDir, stages: Option<&[String]>) -> anyhow::Result<Vec<SampleRecord>> {
    let mut out = Vec::new();
    let mut keep = |r: SampleRecord, stage: Option<&str>| {
        if r.error.is_none() {
            let mut r = r;
            if let Some(s) = stage {
                r.id = format!("{s}/{}", r.id);
            }
            out.push(r);
        }
    };
    match stages {
        None => {
            for r in run.records()? {
                keep(r?, None);
            }
        }
        Some(names) => {
            for s in names {
                let Ok(dir) = run.stage(s) else { continue };
                let Ok(records) = dir.records() else { continue };
                for r in records {
                    keep(r?, Some(s));
                }
            }
        }
    }
    Ok(out)
}

/// Copies of a unit drawn more than once: epochs moved out of the way.
fn copy(records: &[SampleRecord], k: usize) -> impl Iterator<Item = SampleRecord> + '_ {
    records.iter().map(move |r| {
        let mut r = r.clone();
        r.epoch += (k as u32) * 1_000_000;
        r
    })
}

fn scalar(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Bool(b) => Some(f64::from(u8::from(*b))),
        serde_json::Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

pub(crate) fn main(a: Args) -> Result<u8, Failure> {
    let (run_a, meta_a) = RunDir::open(&a.a).with_context(|| format!("{}", a.a.display()))?;
    let (run_b, meta_b) = RunDir::open(&a.b).with_context(|| format!("{}", a.b.display()))?;
    if (meta_a.study.as_str(), meta_a.task.as_str())
        != (meta_b.study.as_str(), meta_b.task.as_str())
    {
        return Err(anyhow!(
            "not comparable: {} is a run of {}/{}, {} of {}/{}",
            a.a.display(),
            meta_a.study,
            meta_a.task,
            a.b.display(),
            meta_b.study,
            meta_b.task
        )
        .into());
    }
    let task: Arc<dyn Task> = shammie_studies::find(&format!("{}/{}", meta_a.study, meta_a.task))?
        .build(meta_a.options.clone())?;
    // A multi-stage task's analysis reads stage artifacts, not records alone: its
    // per-sample scores are compared, its tables are not.
    let stages: Option<Vec<String>> = task
        .stages()
        .map(|st| st.iter().map(|s| s.name().to_string()).collect());
    let staged = stages.is_some();
    let recs_a = load(&run_a, stages.as_deref()).with_context(|| format!("{}", a.a.display()))?;
    let recs_b = load(&run_b, stages.as_deref()).with_context(|| format!("{}", a.b.display()))?;
    // Units as the task's dataset groups samples (a sample not in it is its own unit).
    let mut unit_of: HashMap<String, String> = HashMap::new();
    if let Ok(ds) = task.dataset() {
        for s in ds.samples.flatten() {
            unit_of.insert(s.id.clone(), s.unit_key().to_string());
        }
    }
    let unit = |id: &str| unit_of.get(id).cloned().unwrap_or_else(|| id.to_string());
    let key = |r: &SampleRecord| (r.id.clone(), r.epoch);
    let in_b: HashMap<(String, u32), &SampleRecord> = recs_b.iter().map(|r| (key(r), r)).collect();
    let mut units: BTreeMap<(String, u32), Unit> = BTreeMap::new();
    let mut pairs: Vec<(&SampleRecord, &SampleRecord)> = Vec::new();
    for r in &recs_a {
        if let Some(rb) = in_b.get(&key(r)) {
            let u = units.entry((unit(&r.id), r.epoch)).or_insert(Unit {
                a: Vec::new(),
                b: Vec::new(),
            });
            u.a.push(r.clone());
            u.b.push((*rb).clone());
            pairs.push((r, rb));
        }
    }
    pairs.sort_by(|x, y| (&x.0.id, x.0.epoch).cmp(&(&y.0.id, y.0.epoch)));
    if pairs.is_empty() {
        return Err(anyhow!(
            "not comparable: the runs share no finished sample (same id and epoch); {} has {}, {} has {}",
            a.a.display(),
            recs_a.len(),
            a.b.display(),
            recs_b.len()
        ).into());
    }
    let seed = a.seed.unwrap_or(meta_a.seed);
    let info = RunInfo::seed(seed);
    let units: Vec<Unit> = units.into_values().collect();
    let all_a: Vec<SampleRecord> = units.iter().flat_map(|u| u.a.iter().cloned()).collect();
    let all_b: Vec<SampleRecord> = units.iter().flat_map(|u| u.b.iter().cloned()).collect();
    let (est_a, est_b) = if staged {
        (BTreeMap::new(), BTreeMap::new())
    } else {
        (
            analyze(&*task, all_a, &info)?,
            analyze(&*task, all_b, &info)?,
        )
    };
    let resamples = if staged { 0 } else { a.resamples };
    let shared_keys: Vec<Key> = est_a
        .keys()
        .filter(|k| est_b.contains_key(*k))
        .cloned()
        .collect();
    let mut draws: BTreeMap<Key, Vec<f64>> = BTreeMap::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..resamples {
        let mut count = vec![0usize; units.len()];
        for _ in 0..units.len() {
            count[rng.gen_range(0..units.len())] += 1;
        }
        let (mut ra, mut rb) = (Vec::new(), Vec::new());
        for (u, &c) in units.iter().zip(&count) {
            for k in 0..c {
                ra.extend(copy(&u.a, k));
                rb.extend(copy(&u.b, k));
            }
        }
        let (ea, eb) = (analyze(&*task, ra, &info)?, analyze(&*task, rb, &info)?);
        for k in &shared_keys {
            if let (Some(x), Some(y)) = (ea.get(k), eb.get(k)) {
                draws.entry(k.clone()).or_default().push(y - x);
            }
        }
    }
    let mut metric_rows = Vec::new();
    let mut metric_json = Vec::new();
    for k in &shared_keys {
        let (x, y) = (est_a[k], est_b[k]);
        let mut d = draws.remove(k).unwrap_or_default();
        d.sort_by(f64::total_cmp);
        let ci = (d.len() >= 2).then(|| {
            (
                shammie_stats::percentile_linear(&d, 0.025).unwrap_or(f64::NAN),
                shammie_stats::percentile_linear(&d, 0.975).unwrap_or(f64::NAN),
            )
        });
        let diff = match ci {
            Some((lo, hi)) => Cell::estimate(y - x, lo, hi, units.len() as u64),
            None => Cell::Float(y - x),
        };
        metric_rows.push(vec![
            Cell::text(&k.0),
            Cell::text(&k.1),
            Cell::text(&k.2),
            Cell::Float(x),
            Cell::Float(y),
            diff,
        ]);
        metric_json.push(serde_json::json!({
            "table": k.0, "row": k.1, "column": k.2, "a": x, "b": y, "difference": y - x,
            "lo": ci.map(|c| c.0), "hi": ci.map(|c| c.1), "resamples": d.len(),
        }));
    }
    // Scores.
    let mut names: Vec<String> = pairs
        .iter()
        .flat_map(|(ra, rb)| {
            ra.scores
                .iter()
                .filter(|(k, v)| {
                    scalar(v).is_some() && rb.scores.get(*k).and_then(scalar).is_some()
                })
                .map(|(k, _)| k.clone())
                .collect::<Vec<_>>()
        })
        .collect();
    names.sort();
    names.dedup();
    let mut score_rows = Vec::new();
    let mut score_json = Vec::new();
    for n in &names {
        let mut xs = Vec::new();
        let mut diffs = Vec::new();
        let mut flips: (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
        let mut boolean = true;
        for (ra, rb) in &pairs {
            let (Some(va), Some(vb)) = (ra.scores.get(n), rb.scores.get(n)) else {
                continue;
            };
            let (Some(x), Some(y)) = (scalar(va), scalar(vb)) else {
                continue;
            };
            boolean &= va.is_boolean() && vb.is_boolean();
            xs.push((x, y));
            diffs.push(y - x);
            let who = format!("{} (epoch {})", ra.id, ra.epoch);
            if x != y {
                if x > y {
                    flips.0.push(who);
                } else {
                    flips.1.push(who);
                }
            }
        }
        let m = |f: &dyn Fn(&(f64, f64)) -> f64| xs.iter().map(f).sum::<f64>() / xs.len() as f64;
        let (mean_a, mean_b) = (m(&|p| p.0), m(&|p| p.1));
        let ci = shammie_stats::mean_ci_t(&diffs, 0.95).ok();
        score_rows.push(vec![
            Cell::text(n),
            Cell::Int(xs.len() as i64),
            Cell::Float(mean_a),
            Cell::Float(mean_b),
            match ci {
                Some(e) => Cell::estimate(e.estimate, e.lo, e.hi, xs.len() as u64),
                None => Cell::Float(mean_b - mean_a),
            },
            if boolean {
                Cell::text(format!("{} / {}", flips.0.len(), flips.1.len()))
            } else {
                Cell::Empty
            },
        ]);
        score_json.push(serde_json::json!({
            "score": n, "pairs": xs.len(), "mean_a": mean_a, "mean_b": mean_b,
            "difference": mean_b - mean_a, "lo": ci.map(|e| e.lo), "hi": ci.map(|e| e.hi),
            "flipped_to_false": if boolean { Some(&flips.0) } else { None },
            "flipped_to_true": if boolean { Some(&flips.1) } else { None },
        }));
    }
    if a.json {
        let v = serde_json::json!({
            "a": a.a, "b": a.b, "study": meta_a.study, "task": meta_a.task,
            "shared_samples": pairs.len(), "shared_units": units.len(),
            "only_a": recs_a.len() - pairs.len(), "only_b": recs_b.len() - pairs.len(),
            "resamples": resamples, "seed": seed, "tables_compared": !staged,
            "metrics": metric_json, "scores": score_json,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let caption = format!(
        "A = {}, B = {} · {} shared samples in {} units · seed {seed}",
        a.a.display(),
        a.b.display(),
        pairs.len(),
        units.len()
    );
    let metrics = Table {
        name: "metrics".into(),
        title: format!("{}/{}: table metrics, B − A", meta_a.study, meta_a.task),
        caption: caption.clone(),
        decimals: None,
        columns: ["table", "row", "column", "A", "B", "B − A [95% CI]"]
            .map(String::from)
            .to_vec(),
        rows: metric_rows,
        notes: vec![if staged {
            format!(
                "{}/{} is a multi-stage task: its analysis reads stage artifacts, so its tables are not compared; the scores below cover every stage's samples (ids STAGE/ID).",
                meta_a.study, meta_a.task
            )
        } else {
            format!(
                "The task's analysis on each run's records of the shared samples; intervals: paired percentile bootstrap over shared units ({} resamples), n = units.",
                a.resamples
            )
        }],
    };
    let scores = Table {
        name: "scores".into(),
        title: "Per-sample scores, B − A".into(),
        caption,
        decimals: None,
        columns: [
            "score",
            "pairs",
            "mean A",
            "mean B",
            "B − A [95% CI]",
            "flipped true→false / false→true",
        ]
        .map(String::from)
        .to_vec(),
        rows: score_rows,
        notes: vec![
            "Paired mean difference over shared samples with a t interval (yes/no scores as 0/1)."
                .into(),
        ],
    };
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    writeln!(out, "{}", crate::render::table(&metrics))?;
    writeln!(out, "{}", crate::render::table(&scores))?;
    let only = (recs_a.len() - pairs.len(), recs_b.len() - pairs.len());
    if only != (0, 0) {
        writeln!(
            out,
            "Left out: {} finished samples only in A, {} only in B.",
            only.0, only.1
        )?;
    }
    let flips: Vec<&serde_json::Value> = score_json
        .iter()
        .filter(|s| {
            s["flipped_to_false"]
                .as_array()
                .is_some_and(|f| !f.is_empty())
                || s["flipped_to_true"]
                    .as_array()
                    .is_some_and(|f| !f.is_empty())
        })
        .collect();
    for s in flips {
        for (dir, field) in [
            ("true→false", "flipped_to_false"),
            ("false→true", "flipped_to_true"),
        ] {
            let ids: Vec<&str> = s[field]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|v| v.as_str())
                .collect();
            if !ids.is_empty() {
                let shown = ids.iter().take(20).copied().collect::<Vec<_>>().join(", ");
                let more = if ids.len() > 20 {
                    format!(" … and {} more (--json lists all)", ids.len() - 20)
                } else {
                    String::new()
                };
                writeln!(
                    out,
                    "{} {dir}: {shown}{more}",
                    s["score"].as_str().unwrap_or("")
                )?;
            }
        }
    }
    Ok(0)
}
