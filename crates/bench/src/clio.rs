//! `shammie-bench clio`: the compute of the Clio pipeline, model calls excluded, against
//! Kura's (PyPI `kura`, with its sentence-transformers embedder, scikit-learn k-means and
//! umap-learn) on the same texts, side by side: embedding N summaries with
//! all-MiniLM-L6-v2, k-means into k = √(N/2) clusters (k-means++, one restart each, at
//! most 300 iterations), the 2-D map of 2,000 sampled summaries (UMAP, 15 neighbours,
//! min_dist 0.1, 200 epochs) and the hierarchy's compute (embedding k stand-in cluster
//! names and grouping them into ⌈k/8⌉ parents).
//!
//! Each side runs in its own process (`shammie-bench clio-side`, and
//! `bench/clio/kura_pipeline.py`), which prints its step times as JSON; the runner adds
//! the process's wall time and peak memory. The texts: the built-in corpus' 400 first user
//! turns, each repeated with a variant number (`… (variant 17)`) up to N, written to a
//! file both sides read.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

#[derive(clap::Args)]
pub(crate) struct ClioArgs {
    /// Corpus sizes (comma-separated).
    #[arg(long, default_value = "10000,100000", value_delimiter = ',')]
    sizes: Vec<usize>,
    /// Python with kura and sentence-transformers installed.
    #[arg(long, default_value = "/work/venv-torch/bin/python")]
    python: PathBuf,
    /// Skip the Kura side.
    #[arg(long)]
    no_python: bool,
    /// The all-MiniLM-L6-v2 folder (`shammie models pull all-minilm-l6-v2`).
    #[arg(long)]
    minilm: Option<PathBuf>,
    /// Threads for both sides (Rust: candle's and ours; Python: torch's and OpenMP's).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Also run Shammie with the 8-bit embedder (`all-minilm-l6-v2+int8`).
    #[arg(long)]
    int8: bool,
}

#[derive(clap::Args)]
pub(crate) struct SideArgs {
    texts: PathBuf,
    minilm: PathBuf,
    /// Embed with 8-bit matrix products.
    #[arg(long)]
    int8: bool,
}

fn minilm_dir(arg: &Option<PathBuf>) -> Result<PathBuf> {
    let dir = match arg {
        Some(d) => d.clone(),
        None => PathBuf::from(std::env::var("HOME").context("HOME")?)
            .join(".cache/shammie/models/all-minilm-l6-v2"),
    };
    if !dir.join("model.safetensors").exists() {
        bail!(
            "{}: no all-MiniLM-L6-v2 here (shammie models pull all-minilm-l6-v2)",
            dir.display()
        );
    }
    Ok(dir)
}

/// N texts: the built-in corpus' first user turns with a variant number.
fn texts(n: usize) -> Result<Vec<String>> {
    let mut base = Vec::new();
    for c in shammie_study_clio::conversations::builtin().iter()? {
        let (_, c) = c?;
        if let Some(t) = c.first_user() {
            base.push(t.chars().take(400).collect::<String>());
        }
    }
    Ok((0..n)
        .map(|i| format!("{} (variant {})", base[i % base.len()], i / base.len()))
        .collect())
}

pub(crate) fn run(a: ClioArgs) -> Result<()> {
    let minilm = minilm_dir(&a.minilm)?;
    let exe = std::env::current_exe()?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/clio/kura_pipeline.py");
    let tmp = tempfile::tempdir()?;
    println!("CPU: {}", crate::local::cpu_name());
    println!(
        "| N | side | embed s | k-means s | map s | hierarchy s | total s | wall s | peak MB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &n in &a.sizes {
        let path = tmp.path().join(format!("texts-{n}.json"));
        std::fs::write(&path, serde_json::to_vec(&texts(n)?)?)?;
        let threads = a.threads.to_string();
        let mut rust = Command::new(&exe);
        rust.args(["clio-side"])
            .arg(&path)
            .arg(&minilm)
            .env("RAYON_NUM_THREADS", &threads);
        let r = side(&format!("shammie N={n}"), &mut rust)?;
        print_row(n, "Shammie", &r);
        let r8 = if a.int8 {
            let mut rust8 = Command::new(&exe);
            rust8
                .args(["clio-side", "--int8"])
                .arg(&path)
                .arg(&minilm)
                .env("RAYON_NUM_THREADS", &threads);
            let r8 = side(&format!("shammie int8 N={n}"), &mut rust8)?;
            print_row(n, "Shammie, int8 embedder", &r8);
            Some(r8)
        } else {
            None
        };
        if !a.no_python {
            let mut py = Command::new(&a.python);
            py.arg(&script)
                .arg(&path)
                .arg(&minilm)
                .env("OMP_NUM_THREADS", &threads)
                .env("MKL_NUM_THREADS", &threads)
                .env("NUMBA_NUM_THREADS", &threads)
                .env("TORCH_NUM_THREADS", &threads)
                .env("HF_HUB_OFFLINE", "1")
                .env("TOKENIZERS_PARALLELISM", "false");
            let k = side(&format!("kura N={n}"), &mut py)?;
            print_row(n, "Kura 0.5.4", &k);
            print_ratio(n, "Kura ÷ Shammie", &k, &r);
            if let Some(r8) = &r8 {
                print_ratio(n, "Kura ÷ Shammie int8", &k, r8);
            }
        }
    }
    Ok(())
}

/// A row of ratios, each of Kura's figures over Shammie's.
fn print_ratio(n: usize, label: &str, k: &Side, r: &Side) {
    let ratio = |x: f64, y: f64| if y > 0.0 { x / y } else { f64::NAN };
    println!(
        "| {n} | {label} | {:.2}× | {:.2}× | {:.2}× | {:.2}× | {:.2}× | {:.2}× | {:.2}× |",
        ratio(k.steps[0], r.steps[0]),
        ratio(k.steps[1], r.steps[1]),
        ratio(k.steps[2], r.steps[2]),
        ratio(k.steps[3], r.steps[3]),
        ratio(k.steps.iter().sum(), r.steps.iter().sum()),
        ratio(k.wall, r.wall),
        ratio(k.peak_mb, r.peak_mb),
    );
}

struct Side {
    steps: [f64; 4],
    wall: f64,
    peak_mb: f64,
}

fn print_row(n: usize, who: &str, s: &Side) {
    println!(
        "| {n} | {who} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} |",
        s.steps[0],
        s.steps[1],
        s.steps[2],
        s.steps[3],
        s.steps.iter().sum::<f64>(),
        s.wall,
        s.peak_mb
    );
}

fn side(label: &str, cmd: &mut Command) -> Result<Side> {
    let out_path = tempfile::NamedTempFile::new()?.into_temp_path();
    cmd.env("CLIO_BENCH_OUT", &out_path);
    let m = crate::measure(label, 1, 1, cmd)?;
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out_path)?)
        .with_context(|| format!("{label}: step times"))?;
    let step = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    Ok(Side {
        steps: [
            step("embed"),
            step("kmeans"),
            step("map"),
            step("hierarchy"),
        ],
        wall: m.wall_s,
        peak_mb: m.max_rss_mb,
    })
}

/// The Shammie side, in its own process: the same computations the study's stages run.
pub(crate) fn side_main(a: SideArgs) -> Result<()> {
    use shammie_study_clio::kmeans::{self, Points};
    let texts: Vec<String> = serde_json::from_slice(&std::fs::read(&a.texts)?)?;
    let n = texts.len();
    let t = Instant::now();
    let precision = if a.int8 {
        shammie_embed::Precision::Int8
    } else {
        shammie_embed::Precision::F32
    };
    let e = shammie_embed::Embedder::load_with(&a.minilm, precision)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vectors = e.embed(&refs)?;
    let embed = t.elapsed().as_secs_f64();
    let dim = vectors[0].len();
    let flat: Vec<f32> = vectors.concat();

    let t = Instant::now();
    let k = kmeans::default_k(n);
    let c = kmeans::kmeans(Points::new(&flat, dim), k, 1, 300, 0);
    let kmeans_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let sample: Vec<f32> = (0..n.min(2000))
        .flat_map(|i| {
            let j = i * n / n.min(2000);
            flat[j * dim..(j + 1) * dim].to_vec()
        })
        .collect();
    let xy = shammie_study_clio::projection::umap(&sample, dim, Default::default());
    let map = t.elapsed().as_secs_f64();

    // The hierarchy's compute: k stand-in names (each cluster's first member) embedded,
    // then grouped.
    let t = Instant::now();
    let mut first = vec![usize::MAX; k];
    for (i, &a) in c.assignment.iter().enumerate() {
        if first[a] == usize::MAX {
            first[a] = i;
        }
    }
    let names: Vec<&str> = first
        .iter()
        .filter(|&&i| i != usize::MAX)
        .map(|&i| refs[i])
        .collect();
    let nv = e.embed(&names)?.concat();
    let _ = kmeans::kmeans(
        Points::new(&nv, dim),
        names.len().div_ceil(8).max(1),
        1,
        300,
        0,
    );
    let hierarchy = t.elapsed().as_secs_f64();

    std::fs::write(
        std::env::var("CLIO_BENCH_OUT").context("CLIO_BENCH_OUT")?,
        serde_json::to_vec(&serde_json::json!({
            "embed": embed, "kmeans": kmeans_s, "map": map, "hierarchy": hierarchy,
            "k": k, "inertia": c.inertia, "points": xy.len(),
        }))?,
    )?;
    Ok(())
}
