//! `shammie view [DIR…] [--port N]`: the local web viewer over run directories (or
//! folders of them; default `runs`, where `shammie run` writes). Binds 127.0.0.1 only;
//! read-only; prints its address and serves until interrupted.

use std::io::Write;
use std::path::PathBuf;

use crate::Failure;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Run directories, or folders of them (default: runs).
    pub dirs: Vec<PathBuf>,
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8321)]
    pub port: u16,
}

pub(crate) fn main(a: Args) -> Result<u8, Failure> {
    let dirs = if a.dirs.is_empty() {
        vec![PathBuf::from("runs")]
    } else {
        a.dirs
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let viewer = shammie_view::Viewer::bind(dirs.clone(), a.port).await?;
        // One write; a reader that goes away (stdout closed) must not stop the server.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "Shammie viewer: http://{}/\n  over {} (read-only; Ctrl-C to stop)",
            viewer.addr(),
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = out.flush();
        drop(out);
        viewer.serve().await?;
        Ok::<u8, Failure>(0)
    })
}
