//! `constitution/pm`: a preference model trained on AI-feedback labels (Kundu et al.
//! 2023, after Bai et al. 2022; STUDIES.md §7), and how well it predicts held-out labels.
//! The method and every difference from the paper: `docs/studies/constitution.md`.
//!
//! Stages (each resumable; see `shammie_engine::pipeline`):
//! 1. `train` (lab): the preference file (as `constitution/feedback` writes it) is split
//!    into training and held-out pairs — a pair is held out when a seeded hash of its
//!    `id` falls below `heldout` — and a PM is trained on the training pairs on the
//!    `base` model: LoRA factors and a scalar reward head on the final hidden state at
//!    the reply's end of turn, loss = cross-entropy of σ(r_A − r_B) against the soft label
//!    `p_a` (`shammie_train::pm`). The PM folder is the artifact `train/pm/`, usable by
//!    `constitution/evaluate` (`pms=`) and any other study that reads rewards.
//! 2. `heldout` (lab): the PM's rewards for both replies of every held-out pair.
//!
//! Analysis, on the held-out pairs: **accuracy** — the share of pairs whose reward
//! difference points the way the AI label does (`p_a` ≠ 0.5; Wilson interval), and the
//! same against the human label where the file has one; **calibration** — the PM's
//! probability q = σ(r_A − r_B) against the soft label, per bin of q (mean label with a
//! t interval), the expected calibration error Σ (n_bin/N)·|mean q − mean p_a|, the Brier
//! score mean (q − p_a)², and the held-out loss beside its floor, the labels' mean
//! entropy.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shammie_core::{Cell, GenerateRequest, SampleRecord, Table};
use shammie_engine::{
    Analysis, DataError, Dataset, EngineError, FineTuneConfig, Lab, LabStage, OptionGroup, Options,
    PmJob, ReportFile, RoleSpec, RunView, Stage, StageOutput, Task, TrainedPm,
};
use shammie_kit::cells;
use shammie_plot::{Figure, LineChart, LinePoint};

use crate::preferences::{read_preferences, PreferenceRecord, Side};

shammie_engine::task_options! {
    /// What `constitution/pm` takes (`--set key=value`).
    pub struct PmConfig {
        /// the preference file (JSONL as constitution/feedback writes it), or a constitution/feedback run directory (its data/preferences.jsonl); none: the built-in HH-RLHF pairs with their human labels (a conventional harmlessness PM)
        pub data: Option<PathBuf> = None,
        /// use only the first N pairs of the data (0: all)
        pub max_pairs: usize = 0,
        /// share of pairs held out for evaluation (a seeded hash of each pair's id decides)
        pub heldout: f64 [0.0 ..= 0.9] = 0.2,
        /// LoRA rank
        pub rank: usize = 8,
        /// LoRA alpha
        pub alpha: f64 = 16.0,
        /// projections LoRA adapts, comma-separated
        pub targets: Vec<String> = ["q_proj", "v_proj"].map(String::from).to_vec(),
        /// peak learning rate (warm-up, then linear decay)
        pub lr: f64 = 5e-4,
        /// passes over the training pairs (the paper trains for one)
        pub epochs: f64 = 1.0,
        /// pairs per optimizer step
        pub batch: usize = 8,
        /// pack each step's pairs into forward passes of at most this many tokens (0: one pass per reply)
        pub pack_tokens: usize = 512,
        /// warm-up steps
        pub warmup: usize = 2,
        /// bins of the calibration table and figure
        pub bins: usize [1 ..= 50] = 10,
    }
}

/// The task's one model role.
pub fn roles() -> Vec<RoleSpec> {
    vec![RoleSpec {
        name: "base",
        help: "the local model the preference model is trained from (local:NAME)",
        defaults_to: None,
    }]
}

pub struct Pm {
    config: PmConfig,
    /// The preference file actually read.
    data: PathBuf,
    pairs: Vec<PreferenceRecord>,
}

impl Pm {
    /// (training pairs, held-out pairs) under the run's seed, in file order.
    fn split(&self, seed: u64) -> Result<(Vec<&PreferenceRecord>, Vec<&PreferenceRecord>), String> {
        let (heldout, train): (Vec<_>, Vec<_>) = self
            .pairs
            .iter()
            .partition(|r| split_value(seed, &r.id) < self.config.heldout);
        if train.is_empty() {
            return Err(format!(
                "{}: no pair left to train on (heldout={})",
                self.data.display(),
                self.config.heldout
            ));
        }
        if self.config.heldout > 0.0 && heldout.is_empty() {
            return Err(format!(
                "{}: {} pairs, none held out at heldout={} with seed {seed}; use more pairs or a larger share",
                self.data.display(),
                train.len(),
                self.config.heldout
            ));
        }
        Ok((train, heldout))
    }
}

/// The preference file `data` names: the file itself, or a feedback run's
/// `data/preferences.jsonl`.
fn preference_file(data: &std::path::Path) -> PathBuf {
    if data.is_dir() {
        data.join("data").join("preferences.jsonl")
    } else {
        data.to_path_buf()
    }
}

/// The built-in HH-RLHF pairs as preference records with their human labels: `p_a` is 1
/// when the human-preferred reply is shown as `a`, else 0; which one is `a` is decided
/// per pair by a fixed hash of its id (so about half the pairs have the preferred reply
/// second and a PM cannot learn a position).
pub fn human_preferences() -> Result<Vec<PreferenceRecord>, EngineError> {
    let loaded = crate::pairs::load(&crate::pairs::Source::HhRlhf).map_err(EngineError::Data)?;
    Ok(loaded
        .items
        .into_iter()
        .filter_map(|it| {
            let [x, y] = it.responses?;
            let preferred = it.human?;
            let flip = split_value(0x5eed, &it.id) < 0.5;
            let (a, b, human_a) = if flip {
                (y, x, preferred == 1)
            } else {
                (x, y, preferred == 0)
            };
            Some(PreferenceRecord {
                id: it.id,
                prompt: it.conversation,
                a,
                b,
                p_a: if human_a { 1.0 } else { 0.0 },
                principle: String::new(),
                constitution: String::new(),
                human: Some(if human_a { Side::A } else { Side::B }),
                source: "hh-rlhf human labels".into(),
            })
        })
        .collect())
}

/// FNV-1a (64-bit) of `seed` then `id`, finalised as MurmurHash3 does, as a number in [0, 1): which pairs are held out
/// depends only on the seed and the ids, not on the file's order.
pub fn split_value(seed: u64, id: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.to_le_bytes().iter().chain(id.as_bytes()) {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // MurmurHash3's finaliser: FNV alone leaves ids that differ in their last characters
    // close together in the high bits.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

pub fn build(opts: Options) -> Result<Arc<dyn Task>, EngineError> {
    let config = PmConfig::from_options(opts)?;
    let (file, mut all) = match &config.data {
        Some(data) => {
            let file = preference_file(data);
            let all = read_preferences(&file).map_err(EngineError::Data)?;
            (file, all)
        }
        None => (
            PathBuf::from(crate::pairs::HH_BUILTIN_NAME),
            human_preferences()?,
        ),
    };
    if config.max_pairs > 0 {
        all.truncate(config.max_pairs);
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(r) = all.iter().find(|r| !seen.insert(r.id.as_str())) {
        return Err(EngineError::Config(format!(
            "{}: the id `{}` appears twice (ids decide the held-out split)",
            file.display(),
            r.id
        )));
    }
    if all.is_empty() {
        return Err(EngineError::Config(format!(
            "{}: no preference pairs",
            file.display()
        )));
    }
    Ok(Arc::new(Pm {
        config,
        data: file,
        pairs: all,
    }))
}

const TRAIN: &str = "train";
const HELDOUT: &str = "heldout";
const TRAINED: &str = "train/trained.json";
const REWARDS: &str = "heldout/rewards.jsonl";

/// A request holding a preference record's conversation.
pub fn request(prompt: &[shammie_core::Message]) -> GenerateRequest {
    let mut req = GenerateRequest::user("", 0);
    req.messages = prompt.to_vec();
    req
}

/// The PM the `train` stage produced.
pub fn trained(run: &RunView) -> Result<TrainedPm, String> {
    let bytes = run.artifact(TRAINED).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{TRAINED}: {e}"))
}

struct Train {
    shared: Arc<Pm>,
}

impl LabStage for Train {
    fn name(&self) -> &str {
        TRAIN
    }
    fn run(&self, run: &RunView, lab: &dyn Lab, out: &mut StageOutput) -> Result<(), String> {
        let c = &self.shared.config;
        let base = run
            .info()
            .models
            .get("base")
            .cloned()
            .ok_or("the run has no base model")?;
        let (train, _) = self.shared.split(run.seed())?;
        let mut lines = Vec::new();
        for r in train {
            serde_json::to_writer(&mut lines, r).expect("plain values");
            lines.push(b'\n');
        }
        let name = format!("{TRAIN}/pairs.jsonl");
        out.write(&name, &lines)?;
        let job = PmJob {
            base,
            data: out.artifact_path(&name)?,
            config: FineTuneConfig {
                rank: c.rank,
                alpha: c.alpha,
                dropout: 0.0,
                targets: c.targets.clone(),
                lr: c.lr,
                epochs: c.epochs,
                batch: c.batch,
                pack_tokens: c.pack_tokens,
                warmup: c.warmup,
                seed: run.seed(),
            },
        };
        let work = out.work_dir()?;
        let t = lab.train_pm(&job, &work, out)?;
        out.write(
            TRAINED,
            &serde_json::to_vec_pretty(&t).expect("plain values"),
        )?;
        Ok(())
    }
}

/// One held-out pair's rewards.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeldoutReward {
    pub id: String,
    pub p_a: f64,
    #[serde(default)]
    pub human: Option<Side>,
    pub r_a: f64,
    pub r_b: f64,
}

struct Heldout {
    shared: Arc<Pm>,
}

impl LabStage for Heldout {
    fn name(&self) -> &str {
        HELDOUT
    }
    fn run(&self, run: &RunView, lab: &dyn Lab, out: &mut StageOutput) -> Result<(), String> {
        let pm = trained(run)?;
        let (_, pairs) = self.shared.split(run.seed())?;
        let mut items = Vec::with_capacity(2 * pairs.len());
        for r in &pairs {
            let req = request(&r.prompt);
            items.push((req.clone(), r.a.clone()));
            items.push((req, r.b.clone()));
        }
        let rewards = if items.is_empty() {
            Vec::new()
        } else {
            lab.rewards(&pm.path, &items)?
        };
        let mut lines = Vec::new();
        for (i, r) in pairs.iter().enumerate() {
            let h = HeldoutReward {
                id: r.id.clone(),
                p_a: r.p_a,
                human: r.human,
                r_a: rewards[2 * i],
                r_b: rewards[2 * i + 1],
            };
            writeln!(
                lines,
                "{}",
                serde_json::to_string(&h).expect("plain values")
            )
            .expect("memory");
        }
        out.write(REWARDS, &lines)?;
        Ok(())
    }
}

#[async_trait]
impl Task for Pm {
    fn study(&self) -> &str {
        "constitution"
    }
    fn name(&self) -> &str {
        "pm"
    }
    fn roles(&self) -> Vec<RoleSpec> {
        roles()
    }
    fn config(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.config).expect("config serialises");
        v["data_file"] = serde_json::json!(self.data);
        v["pairs"] = serde_json::json!(self.pairs.len());
        v
    }
    fn inputs(&self) -> Vec<PathBuf> {
        self.config
            .data
            .iter()
            .map(|d| preference_file(d))
            .collect()
    }
    /// The pairs (split into training and held-out pairs by the stages, under the run's
    /// seed); the stages do the work.
    fn dataset(&self) -> Result<Dataset, DataError> {
        Ok(Dataset {
            total: Some(self.pairs.len() as u64),
            units: Some(self.pairs.len() as u64),
            unit_name: "pair",
            samples: Box::new(std::iter::empty()),
        })
    }
    fn stages(&self) -> Option<Vec<Stage>> {
        let me = Arc::new(Pm {
            config: self.config.clone(),
            data: self.data.clone(),
            pairs: self.pairs.clone(),
        });
        Some(vec![
            Stage::Lab(Arc::new(Train { shared: me.clone() })),
            Stage::Lab(Arc::new(Heldout { shared: me })),
        ])
    }
    fn analyze_stages(&self, run: &RunView) -> Result<Analysis, String> {
        let t = trained(run)?;
        let bytes = run.artifact(REWARDS).map_err(|e| e.to_string())?;
        let rows = String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| {
                serde_json::from_str::<HeldoutReward>(l).map_err(|e| format!("{REWARDS}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (train, _) = self.split(run.seed())?;
        let mut a = analyze(&t, &rows, train.len(), self.config.bins);
        // The engine's caption counts samples; this task's units are pairs.
        let caption = run.info().caption(&format!(
            "{} training pairs, {} held out",
            train.len(),
            rows.len()
        ));
        for table in &mut a.tables {
            table.caption = caption.clone();
        }
        Ok(a)
    }
    fn analyze(
        &self,
        _records: &mut dyn Iterator<Item = SampleRecord>,
        _run: &shammie_engine::RunInfo,
    ) -> Result<Analysis, String> {
        Err("constitution/pm is analysed by its stages".into())
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The cross-entropy of probability `q` against soft label `p`, in nats.
fn cross_entropy(p: f64, q: f64) -> f64 {
    let q = q.clamp(1e-12, 1.0 - 1e-12);
    -(p * q.ln() + (1.0 - p) * (1.0 - q).ln())
}

/// One calibration bin: pairs whose q falls in [lo, hi).
#[derive(Debug, Clone, PartialEq)]
pub struct Bin {
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
    pub mean_q: f64,
    pub mean_p: f64,
    /// t interval of the mean label (None with fewer than 2 pairs).
    pub p_interval: Option<cells::Interval>,
}

/// Calibration bins of (q, p) pairs over [0, 1] in `bins` equal widths (q = 1 in the
/// last); empty bins are left out.
pub fn calibration(qp: &[(f64, f64)], bins: usize) -> Vec<Bin> {
    let mut out = Vec::new();
    for b in 0..bins {
        let (lo, hi) = (b as f64 / bins as f64, (b + 1) as f64 / bins as f64);
        let inside: Vec<&(f64, f64)> = qp
            .iter()
            .filter(|(q, _)| *q >= lo && (*q < hi || (b + 1 == bins && *q <= 1.0)))
            .collect();
        if inside.is_empty() {
            continue;
        }
        let n = inside.len();
        let ps: Vec<f64> = inside.iter().map(|(_, p)| *p).collect();
        out.push(Bin {
            lo,
            hi,
            n,
            mean_q: inside.iter().map(|(q, _)| q).sum::<f64>() / n as f64,
            mean_p: ps.iter().sum::<f64>() / n as f64,
            p_interval: shammie_stats::mean_ci_t(&ps, 0.95)
                .ok()
                .map(|e| e.interval()),
        });
    }
    out
}

/// Expected calibration error: Σ (n_bin / N)·|mean q − mean p| over the bins.
pub fn ece(bins: &[Bin]) -> f64 {
    let total: usize = bins.iter().map(|b| b.n).sum();
    bins.iter()
        .map(|b| b.n as f64 / total as f64 * (b.mean_q - b.mean_p).abs())
        .sum()
}

fn analyze(t: &TrainedPm, rows: &[HeldoutReward], n_train: usize, bins: usize) -> Analysis {
    let opt = |x: Option<f64>| x.map(Cell::Float).unwrap_or(Cell::Empty);
    let mut tables = vec![Table::new(
        "training",
        "Preference model training",
        ["pairs", "steps", "first loss", "last loss", "first accuracy", "last accuracy"]
            .map(String::from)
            .to_vec(),
        vec![vec![
            Cell::Int(n_train as i64),
            Cell::Int(t.steps as i64),
            opt(t.first_loss),
            opt(t.last_loss),
            opt(t.first_accuracy),
            opt(t.last_accuracy),
        ]],
        vec![
            "Loss: the mean over a step's pairs of −p·log σ(r_A − r_B) − (1 − p)·log σ(r_B − r_A), p the soft label; accuracy: the share of the step's pairs ranked the label's way (labels at 0.5 left out), before the step's update.".into(),
            format!("The PM folder: {}", t.path),
        ],
    )];
    let qp: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| (sigmoid(r.r_a - r.r_b), r.p_a))
        .collect();
    let decided: Vec<&HeldoutReward> = rows.iter().filter(|r| r.p_a != 0.5).collect();
    let right = decided
        .iter()
        .filter(|r| (r.r_a > r.r_b) == (r.p_a > 0.5))
        .count();
    let human: Vec<(&HeldoutReward, Side)> = rows
        .iter()
        .filter_map(|r| r.human.map(|h| (r, h)))
        .collect();
    let human_right = human
        .iter()
        .filter(|(r, h)| (r.r_a > r.r_b) == (*h == Side::A))
        .count();
    let n = rows.len();
    let loss = qp.iter().map(|(q, p)| cross_entropy(*p, *q)).sum::<f64>() / n.max(1) as f64;
    let floor = qp.iter().map(|(_, p)| cross_entropy(*p, *p)).sum::<f64>() / n.max(1) as f64;
    let brier = qp.iter().map(|(q, p)| (q - p).powi(2)).sum::<f64>() / n.max(1) as f64;
    let bins_v = calibration(&qp, bins);
    let mut rows_t = vec![vec![
        Cell::Text("AI labels".into()),
        cells::share(right, decided.len()),
        Cell::Int((n - decided.len()) as i64),
    ]];
    if !human.is_empty() {
        rows_t.push(vec![
            Cell::Text("human labels".into()),
            cells::share(human_right, human.len()),
            Cell::Int(0),
        ]);
    }
    tables.push(Table::new(
        "accuracy",
        "Held-out accuracy",
        ["against", "accuracy", "ties left out"].map(String::from).to_vec(),
        rows_t,
        vec![
            "Accuracy: the share of held-out pairs whose reward difference r_A − r_B has the sign of the label (AI: p_a − 0.5; human: the reply the source's human preferred); 95% Wilson interval; n = pairs.".into(),
            "AI labels at exactly 0.5 express no preference and are left out (counted).".into(),
        ],
    ));
    if n > 0 {
        tables.push(Table::new(
            "calibration",
            "Held-out calibration",
            ["pairs", "loss", "loss floor", "Brier", "ECE"].map(String::from).to_vec(),
            vec![vec![
                Cell::Int(n as i64),
                Cell::Float(loss),
                Cell::Float(floor),
                Cell::Float(brier),
                Cell::Float(ece(&bins_v)),
            ]],
            vec![
                "q = σ(r_A − r_B), the PM's probability that A is preferred; p = the soft label. Loss: mean cross-entropy of q against p (nats); its floor, the labels' mean entropy, is what a perfectly calibrated PM would reach. Brier: mean (q − p)². ECE: Σ over bins of q (see the bins table) of (n_bin/N)·|mean q − mean p|.".into(),
            ],
        ));
        tables.push(Table::new(
            "calibration_bins",
            "Calibration by bin of the PM's probability",
            ["q from", "q to", "pairs", "mean q", "mean label"]
                .map(String::from)
                .to_vec(),
            bins_v
                .iter()
                .map(|b| {
                    vec![
                        Cell::Float(b.lo),
                        Cell::Float(b.hi),
                        Cell::Int(b.n as i64),
                        Cell::Float(b.mean_q),
                        cells::cell(
                            Some(b.p_interval.unwrap_or(cells::point(b.mean_p))),
                            b.n,
                        ),
                    ]
                })
                .collect(),
            vec!["Mean label: the mean soft label p_a of the bin's pairs with a 95% t interval; a calibrated PM has mean label ≈ mean q in every bin.".into()],
        ));
    }
    let mut files = Vec::new();
    if !bins_v.is_empty() {
        let points: Vec<LinePoint> = bins_v
            .iter()
            .map(|b| {
                let p = LinePoint::new(b.mean_q, b.mean_p);
                match b.p_interval {
                    Some(i) => p.ci(i.lo.max(0.0), i.hi.min(1.0)),
                    None => p,
                }
            })
            .collect();
        let chart = LineChart::new("Held-out calibration")
            .x_label("PM probability that A is preferred, σ(r_A − r_B)")
            .y_label("mean soft label p_a")
            .x_range(0.0, 1.0)
            .y_range(0.0, 1.0)
            .series("perfect calibration", [(0.0, 0.0), (1.0, 1.0)])
            .series("PM (bins of q)", points);
        let fig = Figure::single(chart).note(format!(
            "{n} held-out pairs; shaded: 95% t intervals of the bin's mean label"
        ));
        files.push(ReportFile {
            path: "report/calibration.svg".into(),
            description: "held-out calibration of the preference model".into(),
            content: fig.to_svg().into_bytes(),
        });
    }
    Analysis { tables, files }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// By hand: q = [0.05, 0.15, 0.12, 0.95], p = [0.1, 0.3, 0.1, 0.8], 10 bins: bin 0
    /// {0.05 → p 0.1}, bin 1 {0.15, 0.12 → mean q 0.135, mean p 0.2}, bin 9 {0.95 → 0.8}.
    /// ECE = ¼·0.05 + ½·0.065 + ¼·0.15 = 0.0125 + 0.0325 + 0.0375 = 0.0825.
    #[test]
    fn calibration_and_ece_by_hand() {
        let qp = [(0.05, 0.1), (0.15, 0.3), (0.12, 0.1), (0.95, 0.8)];
        let b = calibration(&qp, 10);
        assert_eq!(b.len(), 3);
        assert_eq!((b[0].n, b[1].n, b[2].n), (1, 2, 1));
        assert!((b[1].mean_q - 0.135).abs() < 1e-12 && (b[1].mean_p - 0.2).abs() < 1e-12);
        assert_eq!(b[2].lo, 0.9);
        assert!((ece(&b) - 0.0825).abs() < 1e-12, "{}", ece(&b));
        // q = 1 falls in the last bin.
        assert_eq!(calibration(&[(1.0, 1.0)], 4)[0].lo, 0.75);
    }

    /// The split depends on the seed and the id only, and holds out about the share asked.
    #[test]
    fn the_split_is_seeded_by_id() {
        let ids: Vec<String> = (0..2000).map(|i| format!("pair-{i}")).collect();
        let held = ids.iter().filter(|i| split_value(7, i) < 0.2).count();
        assert!((350..450).contains(&held), "{held}");
        assert_eq!(split_value(7, "x"), split_value(7, "x"));
        assert_ne!(split_value(7, "x"), split_value(8, "x"));
    }

    /// The default data: every usable HH-RLHF pair, hard labels that agree with the human
    /// label, the preferred reply first in about half of them.
    #[test]
    fn human_preferences_are_hard_labels_in_both_positions() {
        let all = human_preferences().unwrap();
        assert_eq!(all.len(), 2299);
        let first = all.iter().filter(|r| r.p_a == 1.0).count();
        assert!((1000..1300).contains(&first), "{first}");
        for r in &all {
            assert!(r.p_a == 0.0 || r.p_a == 1.0);
            assert_eq!(r.human == Some(Side::A), r.p_a == 1.0);
            assert_eq!(r.prompt.last().unwrap().role, shammie_core::Role::User);
        }
        // Built with no options: the built-in pairs, nothing read from disk.
        let t = build(Options::new("constitution/pm", Default::default())).unwrap();
        assert!(t.inputs().is_empty());
        assert_eq!(t.config()["pairs"], 2299);
    }

    #[test]
    fn cross_entropy_floor_is_the_entropy() {
        // H(0.9) = −0.9 ln 0.9 − 0.1 ln 0.1 = 0.325083.
        assert!((cross_entropy(0.9, 0.9) - 0.325083).abs() < 1e-6);
        assert!(cross_entropy(0.9, 0.6) > cross_entropy(0.9, 0.9));
    }
}
