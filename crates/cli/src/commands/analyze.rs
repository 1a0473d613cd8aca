//! `shammie analyze discrim-eval FILE [--json] [--out DIR]`: a study's statistics over
//! data computed elsewhere, without running any model.
//!
//! `discrim-eval`: a JSONL or CSV table with `decision_question_id`, `age`, `gender`,
//! `race` and `logit` (or `p_yes`), optionally `fill_type` and `intervention`; prints the
//! mixed-effects discrimination scores, mean differences and (with `--out`) writes the
//! figure.

use std::path::PathBuf;

use shammie_studies::discrim::analysis::{analyze_file, FitOptions};

use crate::{render, Failure};

#[derive(clap::Args)]
pub struct Args {
    /// Which study's analysis (only `discrim-eval` has an offline entry point).
    #[arg(value_parser = ["discrim-eval"])]
    pub study: String,
    /// The data: .jsonl (one object a line) or .csv (header row).
    pub file: PathBuf,
    /// Mixed-model fit: reml or ml.
    #[arg(long, default_value = "reml", value_parser = ["reml", "ml"])]
    pub method: String,
    /// Random effects by question: full, slopes-age, intercept.
    #[arg(long, default_value = "full", value_parser = ["full", "slopes-age", "intercept"])]
    pub random: String,
    /// Write the report files (the figure) into this folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Machine-readable JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn main(a: Args) -> Result<u8, Failure> {
    let opts = FitOptions {
        method: if a.method == "ml" {
            shammie_stats::MixedMethod::Ml
        } else {
            shammie_stats::MixedMethod::Reml
        },
        random: FitOptions::parse_random(&a.random).expect("clap checked"),
        confidence: 0.95,
    };
    let analysis = analyze_file(&a.file, &opts)?;
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
