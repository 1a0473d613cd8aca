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
//! For local language models (`--model` a GGUF file or `local:NAME`, no `--arch`), with
//! a JSONL corpus (`{"text"}` or `{"messages"}` per line) and JSONL queries (`{"prompt",
//! "completion"}`), through the white box (`crate::influence_lm`):
//!
//! - `fit --model M --train C.jsonl --out DIR`: factors of the MLP projections
//!   (`--modules`, `--layers`) fitted on the corpus (or a seeded sample of
//!   `--fit-sequences`), in `DIR/factors/`;
//! - `scores … --query Q.jsonl --out DIR`: per query, the influence of every corpus
//!   document (or of the `--top-n` most TF-IDF-similar to it), `DIR/scores.npy` and CSV
//!   (queries × documents, NaN where a document was not a candidate),
//!   `DIR/tokens.jsonl` (per candidate, its tokens and per-token scores),
//!   `DIR/sequences.jsonl` (the token ids both sides of a benchmark read) and
//!   `DIR/scores.json`. A killed run continues from `DIR/work/`.
//!
//! Positive scores mean the training example lowers the query's loss (raises the
//! log-probability of a query's completion). Timings and counts go to stderr; stdout names
//! the files written.

use std::path::{Path, PathBuf};
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
    /// A network's weights (safetensors with NAME.weight (out × in) and NAME.bias), or a language model (a GGUF file or local:NAME).
    #[arg(long, value_name = "W.safetensors|GGUF|local:NAME")]
    pub model: String,
    /// A network's architecture JSON: {"layers": [{"type": "linear", "in", "out", "name"}, {"type": "relu"|"tanh"|"gelu"}, …], "loss": "mse_sum"|"cross_entropy_sum"}; without it, --model is a language model.
    #[arg(long, value_name = "A.json")]
    pub arch: Option<PathBuf>,
    /// Training data: for a network, CSV with a header, the feature columns then the target column; for a language model, JSONL with {"text": …} or {"messages": […]} per line (and an optional "id").
    #[arg(long, value_name = "T.csv|C.jsonl")]
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
    /// Language models: fit on a seeded sample of this many documents (0: all).
    #[arg(long, default_value_t = 0)]
    pub fit_sequences: usize,
    /// Language models: the projections influence is computed over.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "gate_proj,up_proj,down_proj"
    )]
    pub modules: Vec<String>,
    /// Language models: the transformer layers (all when not given).
    #[arg(long, value_delimiter = ',')]
    pub layers: Vec<usize>,
    /// Language models: sequences are cut to this many tokens.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    /// How the factors file stores numbers (f32 halves it).
    #[arg(long, default_value = "f64", value_parser = io::Dtype::parse)]
    pub dtype: io::Dtype,
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
    /// Language models: score, per query, only the N documents most similar to it by TF-IDF (0: all).
    #[arg(long, default_value_t = 0)]
    pub top_n: usize,
    /// Language models: approximate each preconditioned query gradient by this rank (0: exact).
    #[arg(long, default_value_t = 32)]
    pub rank: usize,
    /// Language models: also compute each candidate's self-influence.
    #[arg(long)]
    pub self_influence: bool,
}

pub(crate) fn main(a: Args) -> Result<u8, Failure> {
    match a.what {
        What::Fit(f) => fit(f),
        What::Scores(s) => scores(s),
    }
}

fn load(n: &NetArgs) -> anyhow::Result<(Net, data::Table)> {
    let arch = n.arch.as_deref().expect("a network has an architecture");
    let net = Net::load(arch, Path::new(&n.model))?;
    let train = data::read_csv(&n.train, &net)?;
    Ok((net, train))
}

#[allow(clippy::print_stdout, clippy::print_stderr)] // a command's report
fn fit(a: FitArgs) -> Result<u8, Failure> {
    if a.net.arch.is_none() {
        return lm_fit(a);
    }
    let (net, train) = load(&a.net)?;
    let t0 = Instant::now();
    let factors = shammie_influence::fit_network(&net, &train, a.net.fisher, a.net.seed)?;
    let secs = t0.elapsed().as_secs_f64();
    io::save_factors(&a.net.out, &factors, a.net.dtype)
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
    if a.net.arch.is_none() {
        return lm_scores(a);
    }
    let (net, train) = load(&a.net)?;
    let query = data::read_csv(&a.query, &net)?;
    std::fs::create_dir_all(&a.net.out)
        .with_context(|| format!("creating {}", a.net.out.display()))?;
    let t0 = Instant::now();
    let factors = match &a.factors {
        Some(dir) => io::load_factors(dir)?,
        None => {
            let f = shammie_influence::fit_network(&net, &train, a.net.fisher, a.net.seed)?;
            io::save_factors(&a.net.out, &f, a.net.dtype)?;
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

/// The language model `--model` names: a GGUF file, or a local model's name.
fn lm_file(model: &str) -> anyhow::Result<PathBuf> {
    let p = Path::new(model);
    if p.extension().is_some_and(|e| e == "gguf") || p.is_file() {
        return Ok(p.to_path_buf());
    }
    let spec = if model.starts_with("local:") {
        model.to_string()
    } else {
        format!("local:{model}")
    };
    Ok(crate::commands::train::model_file(&spec)?.1)
}

/// The job the language-model commands run: the corpus (and its fitting sample), the
/// queries and the candidates (every document, or the TF-IDF top-N of each query).
fn lm_job(
    n: &NetArgs,
    queries: Option<&Path>,
    top_n: usize,
    damping: Damping,
    rank: usize,
    self_influence: bool,
) -> anyhow::Result<(shammie_engine::InfluenceJob, Vec<usize>, usize)> {
    use shammie_study_influence::corpus;
    let docs = corpus::load_corpus(Some(&n.train))?.docs;
    if docs.is_empty() {
        anyhow::bail!("{}: no documents", n.train.display());
    }
    let queries = match queries {
        Some(q) => corpus::load_queries(Some(q))?.1,
        None => Vec::new(),
    };
    // The fitting sample and the candidates, chosen as the study chooses them.
    use shammie_study_influence::queries::{fit_sample, select_candidates};
    let fit = fit_sample(docs.len(), n.fit_sequences, n.seed)
        .into_iter()
        .map(|i| docs[i].clone())
        .collect();
    let candidates: Vec<usize> = if top_n == 0 || top_n >= docs.len() {
        (0..docs.len()).collect()
    } else {
        select_candidates(&docs, &queries, top_n)
            .into_iter()
            .map(|c| c.index)
            .collect()
    };
    let job = shammie_engine::InfluenceJob {
        model: n.model.clone(),
        fit,
        queries,
        candidates: candidates.iter().map(|&i| docs[i].clone()).collect(),
        config: shammie_engine::InfluenceConfig {
            fisher: match n.fisher {
                Fisher::Sampled => "sampled".into(),
                Fisher::Empirical => "empirical".into(),
            },
            damping: match damping {
                Damping::Absolute(x) => Some(x),
                Damping::MeanEigenvalue(_) => None,
            },
            modules: n.modules.clone(),
            layers: (!n.layers.is_empty()).then(|| n.layers.clone()),
            rank: (rank > 0).then_some(rank),
            max_tokens: n.max_tokens,
            self_influence,
            seed: n.seed,
        },
    };
    Ok((job, candidates, docs.len()))
}

fn lm_load(
    model: &str,
) -> anyhow::Result<(
    shammie_local::white_box::WhiteBox,
    shammie_local::prompt::Template,
    shammie_tokenizer::Tokenizer,
)> {
    let path = lm_file(model)?;
    let (mut wb, format, tok) = crate::commands::train::load(&path)?;
    wb.set_frozen(true)?;
    Ok((wb, format, tok))
}

/// Progress on stderr, a line at most every 10 s.
#[allow(clippy::print_stderr)]
fn reporter(what: &'static str) -> impl FnMut(u64, u64) {
    let mut last = Instant::now();
    let t0 = Instant::now();
    move |d, t| {
        if last.elapsed().as_secs() >= 10 || d == t {
            eprintln!("{what}: {d}/{t} ({:.0} s)", t0.elapsed().as_secs_f64());
            last = Instant::now();
        }
    }
}

#[allow(clippy::print_stdout, clippy::print_stderr)] // a command's report
fn lm_fit(a: FitArgs) -> Result<u8, Failure> {
    let n = &a.net;
    let (job, _, _) = lm_job(n, None, 0, Damping::default(), 0, false)?;
    let (mut wb, format, tok) = lm_load(&n.model)?;
    let work = n.out.join("work");
    let t0 = Instant::now();
    let factors =
        crate::influence_lm::fit(&job, &mut wb, &format, &tok, &work, &mut reporter("fit"))
            .map_err(|e| anyhow::anyhow!(e))?;
    let dir = n.out.join("factors");
    if n.dtype == io::Dtype::F64 {
        crate::influence_lm::move_factors(&work, &dir).map_err(|e| anyhow::anyhow!(e))?;
    } else {
        io::save_factors(&dir, &factors, n.dtype)?;
        crate::influence_lm::drop_factors(&work);
    }
    eprintln!(
        "fitted {} projections on {} sequences ({} tokens) in {:.1} s",
        factors.len(),
        job.fit.len(),
        factors.first().map_or(0, |f| f.tokens),
        t0.elapsed().as_secs_f64()
    );
    println!("{}", dir.join(io::FACTORS_FILE).display());
    Ok(0)
}

#[allow(clippy::print_stdout, clippy::print_stderr)] // a command's report
fn lm_scores(a: ScoresArgs) -> Result<u8, Failure> {
    let n = &a.net;
    let (job, candidates, documents) = lm_job(
        n,
        Some(&a.query),
        a.top_n,
        a.damping,
        a.rank,
        a.self_influence,
    )?;
    if job.queries.is_empty() {
        return Err(anyhow::anyhow!("{}: no queries", a.query.display()).into());
    }
    let (mut wb, format, tok) = lm_load(&n.model)?;
    std::fs::create_dir_all(&n.out).with_context(|| format!("creating {}", n.out.display()))?;
    let work = n.out.join("work");
    let r = crate::influence_lm::run(
        &job,
        &mut wb,
        &format,
        &tok,
        &work,
        a.factors.as_deref(),
        &mut reporter("influence"),
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    // Queries × every document, NaN where a document was not a candidate.
    let mut m = faer::Mat::from_fn(r.scores.len(), documents, |_, _| f64::NAN);
    for (q, row) in r.scores.iter().enumerate() {
        for (c, &d) in candidates.iter().enumerate() {
            m[(q, d)] = row[c];
        }
    }
    let npy = n.out.join("scores.npy");
    io::write_npy(&npy, &m)?;
    io::write_csv(&n.out.join("scores.csv"), &m)?;
    let mut tokens = String::new();
    for (c, &d) in candidates.iter().enumerate() {
        let line = serde_json::json!({
            "document": d,
            "id": job.candidates[c].id,
            "tokens": r.tokens[c],
            "completion_start": r.completion_start[c],
            "scores": r.token_scores.iter().map(|q| &q[c]).collect::<Vec<_>>(),
            "self_influence": r.self_influence.as_ref().map(|s| s[c]),
        });
        tokens.push_str(&line.to_string());
        tokens.push('\n');
    }
    std::fs::write(n.out.join("tokens.jsonl"), tokens).context("writing tokens.jsonl")?;
    let seqs = crate::influence_lm::render(&job, &format, &tok).map_err(|e| anyhow::anyhow!(e))?;
    let mut lines = String::new();
    for (set, v) in [
        ("fit", &seqs.fit),
        ("train", &seqs.candidates),
        ("query", &seqs.queries),
    ] {
        for s in v {
            let line =
                serde_json::json!({"set": set, "id": s.id, "ids": s.ids, "loss_from": s.loss_from});
            lines.push_str(&line.to_string());
            lines.push('\n');
        }
    }
    std::fs::write(n.out.join("sequences.jsonl"), lines).context("writing sequences.jsonl")?;
    let meta = serde_json::json!({
        "queries": job.queries.iter().map(|q| &q.id).collect::<Vec<_>>(),
        "query_logprobs": r.query_logprobs,
        "documents": documents,
        "candidates": candidates,
        "fit_sequences": r.fit_sequences,
        "fit_tokens": r.fit_tokens,
        "layers": r.layers,
        "config": job.config,
        "sign": "positive: training on the document raises the log-probability of the query's completion",
        "fit_seconds": r.fit_seconds,
        "score_seconds": r.score_seconds,
    });
    std::fs::write(
        n.out.join("scores.json"),
        serde_json::to_string_pretty(&meta).expect("plain"),
    )
    .context("writing scores.json")?;
    eprintln!(
        "{} queries × {} candidates of {} documents scored in {:.1} s (factors: {:.1} s)",
        r.scores.len(),
        candidates.len(),
        documents,
        r.score_seconds,
        r.fit_seconds
    );
    println!("{}", npy.display());
    Ok(0)
}
