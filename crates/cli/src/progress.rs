//! Progress on stderr: the run's bar (done/total, rate, ETA, tokens, cache hits,
//! errors) and the lines of a model pull.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use shammie_engine::{Progress, ProgressEvent};

pub(crate) struct Bar {
    bar: ProgressBar,
    tokens_in: AtomicU64,
    tokens_out: AtomicU64,
    errors: AtomicU64,
    cached: AtomicU64,
    calls: AtomicU64,
    /// Samples already done when this invocation started (resume).
    started_at: AtomicU64,
}

fn human(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=9_999_999 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

impl Bar {
    pub(crate) fn new(quiet: bool) -> Self {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr_with_hz(4)
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} ETA {eta} {msg}",
            )
            .unwrap(),
        );
        bar.enable_steady_tick(Duration::from_millis(250));
        Bar {
            bar,
            tokens_in: AtomicU64::new(0),
            tokens_out: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            cached: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            started_at: AtomicU64::new(0),
        }
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn event(&self, e: ProgressEvent) {
        match e {
            ProgressEvent::Started {
                total,
                already_done,
            } => {
                if let Some(t) = total {
                    self.bar.set_length(t);
                }
                self.bar.set_position(already_done);
                self.started_at.store(already_done, Ordering::Relaxed);
                self.bar.reset_eta();
            }
            ProgressEvent::SampleDone {
                failed,
                calls,
                cached_calls,
                paid,
            } => {
                let ti = self
                    .tokens_in
                    .fetch_add(paid.input_tokens, Ordering::Relaxed)
                    + paid.input_tokens;
                let to = self
                    .tokens_out
                    .fetch_add(paid.output_tokens, Ordering::Relaxed)
                    + paid.output_tokens;
                let er =
                    self.errors.fetch_add(u64::from(failed), Ordering::Relaxed) + u64::from(failed);
                let ca = self.cached.fetch_add(cached_calls, Ordering::Relaxed) + cached_calls;
                let cl = self.calls.fetch_add(calls, Ordering::Relaxed) + calls;
                self.bar.inc(1);
                let secs = self.bar.elapsed().as_secs_f64().max(1e-3);
                let done_here = self
                    .bar
                    .position()
                    .saturating_sub(self.started_at.load(Ordering::Relaxed));
                self.bar.set_message(format!(
                    "{:.1}/s · tokens in {} out {} · calls {cl} (cached {ca}) · errors {er}",
                    done_here as f64 / secs,
                    human(ti),
                    human(to),
                ));
            }
            ProgressEvent::StageStarted {
                name,
                kind,
                index,
                count,
            } => {
                self.bar
                    .println(format!("stage {}/{count}: {name} ({kind})", index + 1));
                self.bar.set_position(0);
                self.bar.set_message(format!("{name}…"));
            }
            ProgressEvent::StageSkipped { name } => {
                self.bar
                    .println(format!("stage {name}: done earlier, skipped"));
            }
            ProgressEvent::StageProgress { done, total } => {
                self.bar.set_length(total);
                self.bar.set_position(done);
            }
            ProgressEvent::Analyzing => self.bar.set_message("analysing…"),
        }
    }
}

/// Progress of a model pull (`shammie models pull`, or a missing model pulled before a
/// run), on stderr.
pub(crate) fn pull_progress(p: shammie_hub::Progress) {
    use shammie_hub::Progress::*;
    let mut e = std::io::stderr();
    match p {
        Resolving { source } => {
            let _ = writeln!(e, "trying {source}");
        }
        Downloading { what, done, total } => {
            let mb = |b: u64| b as f64 / 1048576.0;
            let _ = match total {
                Some(t) => write!(e, "\r  {what}: {:.1}/{:.1} MiB   ", mb(done), mb(t)),
                None => write!(e, "\r  {what}: {:.1} MiB   ", mb(done)),
            };
            if total == Some(done) {
                let _ = writeln!(e);
            }
        }
        Verifying { what } => {
            let _ = writeln!(e, "verifying {what}");
        }
        Done { path } => {
            let _ = writeln!(e, "ready: {}", path.display());
        }
    }
}
