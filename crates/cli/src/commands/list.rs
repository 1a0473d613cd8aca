//! `shammie list`: studies, tasks, their options and model roles.

use crate::Failure;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Machine-readable JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn main(a: Args) -> Result<u8, Failure> {
    let studies = shammie_studies::studies();
    if a.json {
        let v: Vec<_> = studies
            .iter()
            .map(|s| {
                serde_json::json!({
                    "study": s.name, "paper": s.paper, "summary": s.summary,
                    "tasks": s.tasks.iter().map(|t| serde_json::json!({
                        "task": t.path(), "summary": t.summary,
                        "roles": (t.roles)(), "options": (t.options)(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(anyhow::Error::from)?
        );
        return Ok(0);
    }
    for s in &studies {
        println!("{} — {}", s.name, s.paper);
        println!("  {}", s.summary);
        for t in &s.tasks {
            println!("\n  {}: {}", t.path(), t.summary);
            println!("    roles:");
            for r in (t.roles)() {
                let d = r
                    .defaults_to
                    .map(|d| format!(" (default: the {d} model)"))
                    .unwrap_or_default();
                println!("      {:<12} {}{d}", r.name, r.help);
            }
            println!("    options (--set key=value):");
            for o in (t.options)() {
                let d = if o.default.is_empty() {
                    "none"
                } else {
                    o.default.as_str()
                };
                println!("      {:<14} {} [default: {d}]", o.key, o.help);
            }
        }
        println!();
    }
    Ok(0)
}
