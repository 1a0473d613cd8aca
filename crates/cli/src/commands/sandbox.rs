//! `shammie sandbox run --env DIR|NAME [--keep OUT] -- COMMAND…`: one command in an
//! environment's sandbox (a folder, or a built-in environment such as
//! `reward-tampering/counter-file`) (`shammie_sandbox`), as a study would run a model's command —
//! for debugging an environment and for tests. The command's stdout and stderr are
//! printed as they came back (capped as in a study), what it changed in the home
//! directory is listed on stderr, `--keep` writes the final home tree out, and the exit
//! status is the command's. Refuses to run anything where the sandbox is unavailable.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use shammie_sandbox::{ChangeKind, Limits, Sandbox, Tree};

use crate::Failure;

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(clap::Subcommand)]
pub(crate) enum What {
    /// Run one shell command in a fresh sandbox whose home directory is the environment's
    /// files.
    Run(RunArgs),
}

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// The environment: a directory whose contents become /home/user, or a built-in
    /// environment by name — `tool-use-flattery` (its first variant) or
    /// `tool-use-flattery/mfa-poetry` (`shammie list` names the studies that have them).
    #[arg(long, value_name = "DIR|NAME")]
    pub env: String,
    /// Write the home directory as the command left it to this (new or empty) folder.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    /// Wall-clock limit in seconds.
    #[arg(long, default_value_t = 20)]
    pub timeout: u64,
    /// The command (joined with spaces and run by `sh -c` in /home/user).
    #[arg(trailing_var_arg = true, required = true, num_args = 1..)]
    pub command: Vec<String>,
}

pub(crate) fn main(a: Args) -> Result<u8, Failure> {
    let What::Run(a) = a.what;
    let dir = PathBuf::from(&a.env);
    let files = if dir.is_dir() {
        Tree::from_dir(&dir).with_context(|| format!("reading the environment {}", a.env))?
    } else {
        shammie_study_subterfuge::builtin_home(&a.env).map_err(anyhow::Error::msg)?
    };
    let limits = Limits {
        wall: Duration::from_secs(a.timeout.max(1)),
        ..Limits::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (out, episode) = rt.block_on(async {
        let sb = Sandbox::new(limits).await?;
        let mut ep = sb.episode(files);
        let out = ep.run(&a.command.join(" ")).await?;
        Ok::<_, anyhow::Error>((out, ep))
    })?;
    print!("{}", out.stdout);
    eprint!("{}", out.stderr);
    if out.stdout_truncated() {
        eprintln!(
            "[stdout: {} bytes, the first {} shown]",
            out.stdout_bytes,
            out.stdout.len()
        );
    }
    if out.stderr_truncated() {
        eprintln!(
            "[stderr: {} bytes, the first {} shown]",
            out.stderr_bytes,
            out.stderr.len()
        );
    }
    if out.timed_out {
        eprintln!("[timed out after {} s]", a.timeout);
    }
    if let Some(n) = &out.note {
        eprintln!("[{n}]");
    }
    for c in episode.changes() {
        let k = match c.kind {
            ChangeKind::Added => "added",
            ChangeKind::Modified => "modified",
            ChangeKind::Deleted => "deleted",
        };
        eprintln!("[{k}: {}]", c.path);
    }
    if let Some(dir) = &a.keep {
        episode.state().write_to(dir)?;
        eprintln!("[home directory written to {}]", dir.display());
    }
    Ok(out.exit_code.map(|c| c.clamp(0, 255) as u8).unwrap_or(1))
}
