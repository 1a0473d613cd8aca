//! `shammie influence fit|scores`: EK-FAC influence functions (`shammie_influence`) for
//! users who want factors and score matrices without a study around them. For small
//! feed-forward networks given as an architecture JSON, safetensors weights and CSV data:
//!
//! - `fit --model W.safetensors --arch A.json --train T.csv --out DIR`: the factors of every
//!   linear layer (`DIR/factors.safetensors` with kronfluence's tensor names, and
//!   `DIR/factors.json`);
//! - `scores … --query Q.csv --out DIR`: the query × training-example score matrix as
//!   `DIR/scores.npy` and `DIR/scores.csv` (fitting the factors first unless `--factors DIR`
//!   names ones already fitted), with `DIR/scores.json` saying what was computed.
//!
//! Positive scores mean the training example lowers the query's loss. Timings and counts go
//! to stderr; stdout names the files written.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use shammie_influence::ekfac::Damping;
use shammie_influence::{data, io, net::Net, Fisher};

use crate::Failure;

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(clap::Subcommand)]
pub(crate) enum What {
    /// Fit EK-FAC factors on the training data.
    Fit(FitArgs),
    /// Pairwise influence scores of queries on training examples.
    Scores(ScoresArgs),
}

#[derive(clap::Args)]
pub(crate) struct NetArgs {
    /// The network's weights: safetensors with NAME.weight (out × in) and NAME.bias.
    #[arg(long, value_name = "W.safetensors")]
    pub model: PathBuf,
    /// The architecture JSON: {"layers": [{"type": "linear", "in", "out", "name"}, {"type": "relu"|"tanh"|"gelu"}, …], "loss": "mse_sum"|"cross_entropy_sum"}.
    #[arg(long, value_name = "A.json")]
    pub arch: PathBuf,
    /// Training data: CSV with a header, the feature columns then the target column.
    #[arg(long, value_name = "T.csv")]
    pub train: PathBuf,
    /// Labels for the curvature: sampled from the model (the true Fisher, the paper's) or the data's (empirical).
    #[arg(long, default_value = "sampled", value_parser = Fisher::parse)]
    pub fisher: Fisher,
    /// Seeds the sampled labels.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The output folder.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(clap::Args)]
pub(crate) struct FitArgs {
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(clap::Args)]
pub(crate) struct ScoresArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// Query examples: CSV like the training data.
    #[arg(long, value_name = "Q.csv")]
    pub query: PathBuf,
    /// Damping: `heuristic` (0.1 × the layer's mean eigenvalue) or an absolute value.
    #[arg(long, default_value = "heuristic", value_parser = Damping::parse)]
    pub damping: Damping,
    /// Use the factors already fitted in this folder (by `fit`) instead of fitting them.
    #[arg(long, value_name = "DIR")]
    pub factors: Option<PathBuf>,
}

pub(crate) fn main(a: Args) -> Result<u8, Failure> {
    match a.what {
        What::Fit(f) => fit(f),
        What::Scores(s) => scores(s),
    }
}

fn load(n: &NetArgs) -> anyhow::Result<(Net, data::Table)> {
    let net = Net::load(&n.arch, &n.model)?;
    let train = data::read_csv(&n.train, &net)?;
    Ok((net, train))
}

#[allow(clippy::print_stdout, clippy::print_stderr)] // a command's report
fn fit(a: FitArgs) -> Result<u8, Failure> {
    let (net, train) = load(&a.net)?;
    let t0 = Instant::now();
    let factors = shammie_influence::fit_network(&net, &train, a.net.fisher, a.net.seed)?;
    let secs = t0.elapsed().as_secs_f64();
    io::save_factors(&a.net.out, &factors)
        .with_context(|| format!("writing {}", a.net.out.display()))?;
    eprintln!(
        "fitted {} layers on {} examples in {secs:.2} s ({:?} Fisher)",
        factors.len(),
        train.rows(),
        a.net.fisher
    );
    println!("{}", a.net.out.join(io::FACTORS_FILE).display());
    Ok(0)
}

#[allow(clippy::print_stdout, clippy::print_stderr)] // a command's report
fn scores(a: ScoresArgs) -> Result<u8, Failure> {
    let (net, train) = load(&a.net)?;
    let query = data::read_csv(&a.query, &net)?;
    std::fs::create_dir_all(&a.net.out)
        .with_context(|| format!("creating {}", a.net.out.display()))?;
    let t0 = Instant::now();
    let factors = match &a.factors {
        Some(dir) => io::load_factors(dir)?,
        None => {
            let f = shammie_influence::fit_network(&net, &train, a.net.fisher, a.net.seed)?;
            io::save_factors(&a.net.out, &f)?;
            f
        }
    };
    let fit_secs = t0.elapsed().as_secs_f64();
    if factors.iter().map(|f| &f.spec).ne(net.specs().iter()) {
        return Err(anyhow::anyhow!(
            "the factors were fitted for other layers than this network's"
        )
        .into());
    }
    let t1 = Instant::now();
    let s = shammie_influence::score_network(&net, &factors, a.damping, &train, &query)?;
    let score_secs = t1.elapsed().as_secs_f64();
    let npy = a.net.out.join("scores.npy");
    io::write_npy(&npy, &s)?;
    io::write_csv(&a.net.out.join("scores.csv"), &s)?;
    let meta = serde_json::json!({
        "queries": s.nrows(),
        "train": s.ncols(),
        "fisher": a.net.fisher,
        "seed": a.net.seed,
        "damping": format!("{:?}", a.damping),
        "damping_per_layer": factors.iter().map(|f| (f.spec.name.clone(), a.damping.value(f))).collect::<std::collections::BTreeMap<_, _>>(),
        "sign": "positive: the training example lowers the query's loss",
        "fit_seconds": if a.factors.is_some() { None } else { Some(fit_secs) },
        "score_seconds": score_secs,
    });
    std::fs::write(
        a.net.out.join("scores.json"),
        serde_json::to_string_pretty(&meta).expect("plain"),
    )
    .with_context(|| "writing scores.json")?;
    eprintln!(
        "{} queries × {} training examples scored in {score_secs:.2} s{}",
        s.nrows(),
        s.ncols(),
        if a.factors.is_some() {
            String::new()
        } else {
            format!(" (factors fitted in {fit_secs:.2} s)")
        }
    );
    println!("{}", npy.display());
    Ok(0)
}
