//! `shammie-view`: the local web viewer for run directories (`shammie view`).
//!
//! What it shows: the runs under the folders it is given (study, task, models, date,
//! samples, failures, tokens, whether a process is writing it now), a run's result tables
//! with their intervals and its figures, and a transcript browser — every sample with its
//! scores and each model call (system prompt, messages, prefill, response, top-k
//! logprobs per token on hover), tool steps and notes — with filters by score, error and
//! dataset, full-text search, and a permalink per sample (`#/run/RUN/sample/ID?epoch=E`).
//!
//! Invariants:
//! - Read-only: only `GET` routes; nothing under a run directory is written or locked.
//! - Pages from disk: a samples file is indexed (offsets and a few fields per line,
//!   [`index::LineIndex`]) and records are read one at a time at their offset; a log is
//!   never loaded whole. The index follows a growing file, so a run in progress updates
//!   (the page polls).
//! - Safe by default: binds 127.0.0.1, refuses requests whose `Host` is not loopback,
//!   sets every piece of model text as text (never as HTML), and serves run files under a
//!   sandboxing content security policy.
//! - Offline: the page, script and style are built into the binary; no CDN.

pub mod catalog;
pub mod index;
pub mod server;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use server::router;

/// Why the viewer could not start.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("{0}: not a folder")]
    NotAFolder(PathBuf),
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("the server stopped: {0}")]
    Serve(std::io::Error),
}

/// A bound viewer, ready to serve.
pub struct Viewer {
    listener: tokio::net::TcpListener,
    roots: Vec<PathBuf>,
}

impl Viewer {
    /// Binds 127.0.0.1:`port` (0: any free port) for `roots`, each a run directory or a
    /// folder of them.
    pub async fn bind(roots: Vec<PathBuf>, port: u16) -> Result<Viewer, ViewError> {
        for r in &roots {
            if !r.is_dir() {
                return Err(ViewError::NotAFolder(r.clone()));
            }
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|source| ViewError::Bind { port, source })?;
        Ok(Viewer { listener, roots })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound socket has an address")
    }

    /// Serves until the process ends.
    pub async fn serve(self) -> Result<(), ViewError> {
        axum::serve(self.listener, router(self.roots))
            .await
            .map_err(ViewError::Serve)
    }
}
