//! The progress bar on stderr: done/total, rate, ETA, tokens, cache hits, errors.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use shammie_engine::{Progress, ProgressEvent};

pub struct Bar {
    bar: ProgressBar,
    tokens_in: AtomicU64,
    tokens_out: AtomicU64,
    errors: AtomicU64,
    cached: AtomicU64,
    calls: AtomicU64,
}

impl Bar {
    pub fn new(quiet: bool) -> Self {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr_with_hz(4)
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} ETA {eta} {msg}",
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
        }
    }

    pub fn finish(&self) {
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
                self.bar.set_message(format!(
                    "tokens {ti}/{to} calls {cl} cached {ca} errors {er}"
                ));
            }
            ProgressEvent::Analyzing => self.bar.set_message("analysing…"),
        }
    }
}
