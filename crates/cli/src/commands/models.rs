//! `shammie models pull NAME|hf:OWNER/REPO/FILE|PATH` and `shammie models list`.

use crate::progress::pull_progress;
use crate::setup::hub_config;
use crate::Failure;

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(clap::Subcommand)]
pub(crate) enum Cmd {
    /// Download and verify a model into the model cache (nothing to do if it is there).
    Pull {
        /// A known model (see `shammie models list`), hf:OWNER/REPO/FILE[#sha256=HEX], or a path.
        name: String,
    },
    /// The known models and where they are installed.
    List {
        /// Machine-readable JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn main(a: Args) -> Result<u8, Failure> {
    let cfg = hub_config();
    match a.cmd {
        Cmd::Pull { name } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let path = rt.block_on(shammie_hub::pull(&cfg, &name, &pull_progress))?;
            println!("{}", path.display());
        }
        Cmd::List { json } => {
            let entries = shammie_hub::list(&cfg);
            if json {
                let v: Vec<_> = entries
                    .iter()
                    .map(|m| {
                        serde_json::json!({
                            "name": m.name, "aliases": m.aliases, "kind": format!("{:?}", m.kind),
                            "description": m.description, "licence": m.licence, "size": m.size,
                            "sha256": m.sha256, "installed": m.installed,
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&v).map_err(anyhow::Error::from)?
                );
            } else {
                println!("model cache: {}", cfg.cache_dir.display());
                for m in entries {
                    println!(
                        "{:<18} {:>7.1} MB  {:<12} {}",
                        m.name,
                        m.size as f64 / 1e6,
                        m.installed
                            .as_ref()
                            .map(|_| "installed")
                            .unwrap_or("not pulled"),
                        m.description
                    );
                }
                println!("\nAlso: hf:OWNER/REPO/FILE.gguf (from the Hugging Face hub), or a path to a .gguf file.");
            }
        }
    }
    Ok(0)
}
