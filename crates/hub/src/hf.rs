//! The Hugging Face hub: `{hf_url}/{repo}/resolve/{revision}/{file}`, with an optional
//! bearer token (sent only there, never logged or put in a message).

use std::fs;
use std::path::PathBuf;

use crate::cache::{self, Cleanup};
use crate::error::io_err;
use crate::http;
use crate::install::{self, Ctx, Staged};
use crate::registry::{Artifact, HfSource};
use crate::{HubError, Progress};

fn file_url(base: &str, src: &HfSource, remote: &str) -> String {
    format!(
        "{}/{}/resolve/{}/{remote}",
        base.trim_end_matches('/'),
        src.repo,
        src.revision
    )
}

pub(crate) async fn fetch(ctx: &Ctx<'_>, src: &HfSource) -> Result<PathBuf, HubError> {
    let token = ctx.cfg.hf_token.as_deref();
    let mut cleanup = Cleanup::default();
    match ctx.artifact {
        Artifact::File(spec) => {
            let (remote, _) = src.files.first().ok_or_else(|| HubError::InvalidSpec {
                spec: ctx.model.to_string(),
                reason: format!("Hugging Face source {} lists no file", src.repo),
            })?;
            let final_path = ctx.dir.join(&spec.path);
            let parent = final_path.parent().unwrap_or(ctx.dir);
            fs::create_dir_all(parent).map_err(io_err(parent))?;
            let partial = cleanup.track(cache::partial_path(&final_path))?;
            let url = file_url(&ctx.cfg.hf_url, src, remote);
            let got = http::download(
                ctx.client,
                &url,
                token,
                &partial,
                spec.size,
                remote,
                ctx.progress,
            )
            .await?;
            ctx.report(Progress::Verifying {
                what: spec.path.clone(),
            });
            install::check_file(
                &format!("{} from {url}", spec.path),
                spec,
                &got.sha256,
                got.size,
            )?;
            install::finish_file(ctx, &mut cleanup, &partial, spec, &got.sha256)
        }
        Artifact::Folder(files) => {
            let staging = cleanup.track(cache::partial_path(ctx.dir))?;
            fs::create_dir_all(&staging).map_err(io_err(&staging))?;
            let mut staged = Vec::new();
            for (remote, local) in &src.files {
                let required = files.iter().any(|f| &f.path == local && f.required);
                let dest = staging.join(local);
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent).map_err(io_err(parent))?;
                }
                let url = file_url(&ctx.cfg.hf_url, src, remote);
                let size = files.iter().find(|f| &f.path == local).and_then(|f| f.size);
                match http::download(ctx.client, &url, token, &dest, size, remote, ctx.progress)
                    .await
                {
                    Ok(got) => staged.push(Staged {
                        path: local.clone(),
                        sha256: got.sha256,
                        size: got.size,
                    }),
                    Err(HubError::HttpStatus { status: 404, .. }) if !required => {
                        cache::remove(&dest)?;
                    }
                    Err(e) => return Err(e),
                }
            }
            install::finish_folder(ctx, &mut cleanup, &staging, files, &staged)
        }
    }
}
