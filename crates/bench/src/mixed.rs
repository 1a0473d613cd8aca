//! `shammie-bench mixed`: `shammie_stats::mixed_lm` against statsmodels `MixedLM` on the
//! discrim-eval model (Tamkin et al. 2023) at its full size — 70 questions × 9 ages × 3
//! genders × 5 races = 9,450 rows, p = q = 8 (intercept, age_z, 2 gender and 4 race
//! dummies; random intercept and every slope by question, unstructured covariance).
//!
//! The data are simulated from that model with a fixed seed and written as CSV to a
//! temporary directory; the Rust fit (REML unless `--ml`) is timed in-process (median of
//! `--runs`, from the row data to the result, design matrices included), and
//! `bench/mixedlm/fit_statsmodels.py` fits the same formula with statsmodels from the
//! CSV (its own timing of `fit`, plus the wall time of the whole process). Prints both
//! times, the ratio, and how far the two fits are apart (coefficients, standard errors,
//! log-likelihood) together with statsmodels' convergence flag and the largest
//! absolute score at its result.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use shammie_stats::{mixed_lm, MixedLmFit, MixedMethod};

#[derive(clap::Args)]
pub(crate) struct MixedArgs {
    /// Python with statsmodels and pandas installed (runs bench/mixedlm/fit_statsmodels.py).
    #[arg(long, default_value = "/work/.venv-ref/bin/python")]
    python: PathBuf,
    /// Skip the statsmodels side.
    #[arg(long)]
    no_python: bool,
    /// Number of questions (groups); each has 135 rows.
    #[arg(long, default_value_t = 70)]
    questions: usize,
    /// Fraction of rows dropped at random (0 keeps the balanced design).
    #[arg(long, default_value_t = 0.0)]
    drop: f64,
    /// Timed Rust fits; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// statsmodels runs (each in a fresh process); the median is reported.
    #[arg(long, default_value_t = 1)]
    python_runs: usize,
    /// Fit by ML instead of REML.
    #[arg(long)]
    ml: bool,
    /// Seed of the simulation.
    #[arg(long, default_value_t = 20231206)]
    seed: u64,
}

const AGES: [f64; 9] = [20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0];
const GENDERS: [&str; 3] = ["male", "female", "non-binary"];
const RACES: [&str; 5] = ["white", "Black", "Asian", "Hispanic", "Native American"];
/// Design columns, named as the statsmodels script reports them.
const COLUMNS: [&str; 8] = [
    "Intercept",
    "age_z",
    "gender[T.female]",
    "gender[T.non-binary]",
    "race[T.Asian]",
    "race[T.Black]",
    "race[T.Hispanic]",
    "race[T.Native American]",
];
/// True fixed effects, in `COLUMNS` order.
const BETA: [f64; 8] = [0.6, -0.25, 0.12, 0.18, 0.10, 0.30, 0.15, 0.22];
/// True random-effect SDs, in `COLUMNS` order; residual SD.
const RE_SD: [f64; 8] = [1.5, 0.25, 0.15, 0.2, 0.15, 0.2, 0.15, 0.2];
const SIGMA: f64 = 0.35;

struct Row {
    question: usize,
    age: f64,
    gender: usize,
    race: usize,
    logit: f64,
}

/// splitmix64: uniforms on (0, 1) and standard normals (Box–Muller).
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// Indicator row in `COLUMNS` order (age_z filled in later).
fn design_row(gender: usize, race: usize) -> [f64; 8] {
    let mut r = [0.0; 8];
    r[0] = 1.0;
    r[2] = (gender == 1) as u8 as f64;
    r[3] = (gender == 2) as u8 as f64;
    // COLUMNS order of the race dummies: Asian, Black, Hispanic, Native American.
    let race_col = match race {
        1 => Some(5),
        2 => Some(4),
        3 => Some(6),
        4 => Some(7),
        _ => None,
    };
    if let Some(c) = race_col {
        r[c] = 1.0;
    }
    r
}

fn simulate(a: &MixedArgs) -> Vec<Row> {
    let mut rng = Rng(a.seed);
    // Ψ = D C D with C the correlation matrix of 8 random vectors of length 24.
    let vecs: Vec<Vec<f64>> = (0..8)
        .map(|_| (0..24).map(|_| rng.normal()).collect())
        .collect();
    let mut psi = [[0.0; 8]; 8];
    for i in 0..8 {
        for j in 0..8 {
            let dot = |u: &[f64], v: &[f64]| u.iter().zip(v).map(|(x, y)| x * y).sum::<f64>();
            let c = dot(&vecs[i], &vecs[j])
                / (dot(&vecs[i], &vecs[i]) * dot(&vecs[j], &vecs[j])).sqrt();
            psi[i][j] = RE_SD[i] * RE_SD[j] * c;
        }
    }
    // Cholesky of Ψ.
    let mut l = [[0.0; 8]; 8];
    for i in 0..8 {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                l[i][i] = (psi[i][i] - s).sqrt();
            } else {
                l[i][j] = (psi[i][j] - s) / l[j][j];
            }
        }
    }
    let mut rows = Vec::new();
    for question in 0..a.questions {
        let e: Vec<f64> = (0..8).map(|_| rng.normal()).collect();
        let b: Vec<f64> = (0..8)
            .map(|i| (0..=i).map(|k| l[i][k] * e[k]).sum())
            .collect();
        for &age in &AGES {
            for gender in 0..3 {
                for race in 0..5 {
                    let noise = rng.normal();
                    if a.drop > 0.0 && rng.uniform() < a.drop {
                        continue;
                    }
                    let mut x = design_row(gender, race);
                    x[1] = (age - 60.0) / 25.0; // only for simulating
                    let mean: f64 = (0..8).map(|k| x[k] * (BETA[k] + b[k])).sum();
                    rows.push(Row {
                        question,
                        age,
                        gender,
                        race,
                        logit: mean + SIGMA * noise,
                    });
                }
            }
        }
    }
    rows
}

/// age_z = (age − 60) / SD(age), sample SD (as the discrim analysis does).
fn age_z(rows: &[Row]) -> Vec<f64> {
    let n = rows.len() as f64;
    let mean = rows.iter().map(|r| r.age).sum::<f64>() / n;
    let sd = (rows.iter().map(|r| (r.age - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    rows.iter().map(|r| (r.age - 60.0) / sd).collect()
}

fn write_csv(path: &Path, rows: &[Row], z: &[f64]) -> Result<()> {
    let mut s = String::from("decision_question_id,age,age_z,gender,race,logit\n");
    for (r, az) in rows.iter().zip(z) {
        // `{:?}` prints the shortest representation that round-trips exactly.
        s.push_str(&format!(
            "{},{},{:?},{},{},{:?}\n",
            r.question, r.age, az, GENDERS[r.gender], RACES[r.race], r.logit
        ));
    }
    std::fs::write(path, s).with_context(|| path.display().to_string())
}

/// The Rust side, from rows to fit (design construction included).
fn fit_rust(rows: &[Row], az: &[f64], method: MixedMethod) -> Result<MixedLmFit> {
    let x: Vec<Vec<f64>> = rows
        .iter()
        .zip(az)
        .map(|(r, a)| {
            let mut d = design_row(r.gender, r.race);
            d[1] = *a;
            d.to_vec()
        })
        .collect();
    let y: Vec<f64> = rows.iter().map(|r| r.logit).collect();
    let groups: Vec<usize> = rows.iter().map(|r| r.question).collect();
    Ok(mixed_lm(&y, &x, &x, &groups, method, 0.95)?)
}

#[derive(Deserialize)]
struct PyFit {
    statsmodels: String,
    fit_seconds: f64,
    build_seconds: f64,
    converged: bool,
    llf: f64,
    scale: f64,
    max_abs_profile_score: f64,
    coef: std::collections::HashMap<String, f64>,
    se: std::collections::HashMap<String, f64>,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

pub(crate) fn run(a: MixedArgs) -> Result<()> {
    if a.runs == 0 || a.questions < 2 || !(0.0..0.9).contains(&a.drop) {
        bail!("need --runs >= 1, --questions >= 2 and 0 <= --drop < 0.9");
    }
    let method = if a.ml {
        MixedMethod::Ml
    } else {
        MixedMethod::Reml
    };
    let rows = simulate(&a);
    let az = age_z(&rows);
    let dir = tempfile::tempdir()?;
    let csv = dir.path().join("discrim_sim.csv");
    write_csv(&csv, &rows, &az)?;

    let mut times = Vec::new();
    let mut fit = None;
    for _ in 0..a.runs {
        let t = Instant::now();
        let f = fit_rust(&rows, &az, method)?;
        times.push(t.elapsed().as_secs_f64());
        fit = Some(f);
    }
    let fit = fit.expect("runs >= 1");
    let rust_s = median(&mut times);
    println!(
        "Data: {} questions, {} rows, p = q = 8 (seed {}), {:?}; CSV {}",
        a.questions,
        rows.len(),
        a.seed,
        method,
        csv.display()
    );
    println!(
        "Rust mixed_lm: median {:.4} s over {} runs (min {:.4}, max {:.4}); converged {}, {} BFGS iterations, llf {:.6}, max |gradient| {:.1e}",
        rust_s,
        a.runs,
        times[0],
        times[times.len() - 1],
        fit.converged,
        fit.iterations,
        fit.log_likelihood,
        fit.gradient_max
    );
    if a.no_python {
        return Ok(());
    }

    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/mixedlm/fit_statsmodels.py");
    let mut py_fit_s = Vec::new();
    let mut py_wall_s = Vec::new();
    let mut py: Option<PyFit> = None;
    for _ in 0..a.python_runs.max(1) {
        let mut cmd = Command::new(&a.python);
        cmd.arg(&script).arg(&csv);
        if a.ml {
            cmd.arg("--ml");
        }
        let t = Instant::now();
        let out = cmd
            .output()
            .with_context(|| format!("running {}", a.python.display()))?;
        py_wall_s.push(t.elapsed().as_secs_f64());
        if !out.status.success() {
            bail!(
                "fit_statsmodels.py failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let p: PyFit = serde_json::from_slice(&out.stdout).context("parsing statsmodels output")?;
        py_fit_s.push(p.fit_seconds);
        py = Some(p);
    }
    let py = py.expect("python_runs >= 1");
    let sm_fit = median(&mut py_fit_s);
    let sm_wall = median(&mut py_wall_s);
    println!(
        "statsmodels {} MixedLM: fit {:.3} s (building the model {:.3} s; whole process {:.3} s); converged {}, llf {:.6}, max |profile score| {:.2e}",
        py.statsmodels, sm_fit, py.build_seconds, sm_wall, py.converged, py.llf, py.max_abs_profile_score
    );
    println!(
        "ratio, statsmodels fit ÷ Rust: {:.0}× (whole statsmodels process ÷ Rust: {:.0}×)",
        sm_fit / rust_s,
        sm_wall / rust_s
    );
    let (mut dcoef, mut dse) = (0.0_f64, 0.0_f64);
    for (k, name) in COLUMNS.iter().enumerate() {
        let c = py
            .coef
            .get(*name)
            .with_context(|| format!("statsmodels output lacks {name}"))?;
        let s = py.se[*name];
        dcoef = dcoef.max((c - fit.coef[k]).abs());
        dse = dse.max((s - fit.se[k]).abs());
    }
    println!(
        "max |Δcoef| {:.2e}, max |Δse| {:.2e}, llf (Rust − statsmodels) {:+.2e}, scale {:.6} vs {:.6}",
        dcoef,
        dse,
        fit.log_likelihood - py.llf,
        fit.scale,
        py.scale
    );
    println!("\n| term | Rust coef | statsmodels coef | Rust se | statsmodels se |");
    println!("|---|---|---|---|---|");
    for (k, name) in COLUMNS.iter().enumerate() {
        println!(
            "| {name} | {:.6} | {:.6} | {:.6} | {:.6} |",
            fit.coef[k], py.coef[*name], fit.se[k], py.se[*name]
        );
    }
    Ok(())
}
