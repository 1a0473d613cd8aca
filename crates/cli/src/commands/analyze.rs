//! `shammie analyze STUDY FILE [--set key=value …] [--json] [--out DIR]`: a study's
//! statistics over data computed elsewhere, without running any model.
//!
//! The study's offline analysis comes from the registry; what file it reads and which
//! options it takes are the study's. `discrim-eval`: a JSONL or CSV table with
//! `decision_question_id`, `age`, `gender`, `race` and `logit` (or `p_yes`), optionally
//! `fill_type` and `intervention`; prints the mixed-effects discrimination scores, mean
//! differences and (with `--out`) writes the figure. `--method` and `--random` are its
//! `method` and `random` options. `sabotage`: JSONL of per-commit records (`attacked`,
//! `suspicion`, `consequential`, `confidence`); prints the deployment simulation per audit
//! budget and (with `--out`) writes its figure; its options as `--set audit=0.05,0.1`,
//! `--set bugs=3` and so on.

use std::path::PathBuf;

use crate::{render, setup, Failure};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Which study's analysis (a study that offers one, e.g. discrim-eval).
    pub study: String,
    /// The data, e.g. for discrim-eval: .jsonl (one object a line) or .csv (header row).
    pub file: PathBuf,
    /// discrim-eval: mixed-model fit, reml or ml [default: reml] (the option `method`).
    #[arg(long)]
    pub method: Option<String>,
    /// discrim-eval: random effects by question, full, slopes-age or intercept
    /// [default: full] (the option `random`).
    #[arg(long)]
    pub random: Option<String>,
    /// Analysis option, key=value (repeatable).
    #[arg(long = "set", short = 's')]
    pub sets: Vec<String>,
    /// Write the report files (the figure) into this folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Machine-readable JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn main(a: Args) -> Result<u8, Failure> {
    let offline = shammie_studies::offline_analysis(&a.study)?;
    let mut options = setup::parse_sets(&a.sets)?;
    for (key, value) in [("method", a.method), ("random", a.random)] {
        if let Some(v) = value {
            options.insert(key.to_string(), v);
        }
    }
    let analysis = offline.run(&a.study, &a.file, options)?;
    let mut written = Vec::new();
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", dir.display()))?;
        for f in &analysis.files {
            let name = f.path.rsplit('/').next().unwrap_or(&f.path);
            let p = dir.join(name);
            std::fs::write(&p, &f.content)
                .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", p.display()))?;
            written.push((p, f.description.clone()));
        }
    }
    if a.json {
        let v = serde_json::json!({
            "tables": analysis.tables,
            "files": written.iter().map(|(p, d)| serde_json::json!({"path": p, "description": d})).collect::<Vec<_>>(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(anyhow::Error::from)?
        );
    } else {
        for t in &analysis.tables {
            print!("{}", render::table(t));
            println!();
        }
        for (p, d) in &written {
            println!("{}  {d}", p.display());
        }
    }
    Ok(0)
}
