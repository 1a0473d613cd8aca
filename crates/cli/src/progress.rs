//! Progress on stderr: the run's bar (done/total, rate, ETA, tokens, cache hits,
//! errors) on a terminal; otherwise (a log file, CI) a plain line every
//! `SHAMMIE_PROGRESS_SECS` seconds (default 10) and one at the end; the states of
//! `--batch` batches (a line when one changes, e.g. `batch msgbatch_… in_progress 120/500
//! done`, and the open ones in the bar or the plain line); and the lines of a model pull.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use shammie_engine::{Progress, ProgressEvent};
use shammie_models::{BatchEvent, BatchObserver};

/// Whether stderr gets ANSI colour: a terminal, and no `NO_COLOR`.
pub(crate) fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub(crate) struct Bar {
    bar: ProgressBar,
    /// The plain-line reporter when stderr is not a terminal.
    plain: Option<Plain>,
    tokens_in: AtomicU64,
    tokens_out: AtomicU64,
    errors: AtomicU64,
    cached: AtomicU64,
    calls: AtomicU64,
    /// Samples already done when this invocation started (resume).
    started_at: AtomicU64,
    counts: Arc<Counts>,
}

/// What the plain lines report, shared with their thread.
#[derive(Default)]
struct Counts {
    done: AtomicU64,
    /// 0: unknown.
    total: AtomicU64,
    failed: AtomicU64,
    calls: AtomicU64,
    cached: AtomicU64,
    /// A stage or the analysis, when not the samples.
    phase: Mutex<Option<String>>,
    /// A lab or reduce stage's own progress: (done, total, when it began).
    stage: Mutex<Option<(u64, u64, Instant)>>,
    /// `--batch`: the batches in flight.
    batches: Mutex<Option<Arc<BatchBoard>>>,
}

/// The states of `--batch` batches, told by the models' batch layer: one line on stderr
/// when a batch changes state, and the open batches in the bar's message or the plain
/// progress line.
#[derive(Default)]
pub(crate) struct BatchBoard {
    state: Mutex<Board>,
}

#[derive(Default)]
struct Board {
    /// Open batches by id.
    open: BTreeMap<String, BatchEvent>,
    /// The terminal bar, once a run draws one.
    bar: Option<ProgressBar>,
    /// Lines go to stderr (no bar: a log file, CI).
    plain: bool,
    quiet: bool,
}

fn batch_line(e: &BatchEvent) -> String {
    let mut l = format!(
        "batch {} {} {}/{} done",
        e.batch_id, e.status, e.done, e.total
    );
    if e.failed > 0 {
        l.push_str(&format!(", {} failed", e.failed));
    }
    l
}

impl BatchBoard {
    /// The open batches, for a progress line (`None`: there are none).
    fn line(&self) -> Option<String> {
        let st = self.state.lock().unwrap();
        (!st.open.is_empty()).then(|| {
            st.open
                .values()
                .map(batch_line)
                .collect::<Vec<_>>()
                .join(" · ")
        })
    }

    fn attach(&self, bar: ProgressBar, plain: bool, quiet: bool) {
        let mut st = self.state.lock().unwrap();
        st.bar = Some(bar);
        st.plain = plain;
        st.quiet = quiet;
    }
}

impl BatchObserver for BatchBoard {
    fn batch(&self, e: &BatchEvent) {
        let mut st = self.state.lock().unwrap();
        let changed = st
            .open
            .get(&e.batch_id)
            .is_none_or(|prev| prev.status != e.status);
        if e.finished {
            st.open.remove(&e.batch_id);
        } else {
            st.open.insert(e.batch_id.clone(), e.clone());
        }
        if changed && !st.quiet {
            let line = format!("{}: {}", e.model, batch_line(e));
            match (&st.bar, st.plain) {
                (Some(bar), false) => bar.println(line),
                _ => eprintln!("{line}"),
            }
        }
        if let Some(bar) = &st.bar {
            let open: Vec<String> = st.open.values().map(batch_line).collect();
            bar.set_message(open.join(" · "));
        }
    }
}

impl Counts {
    fn line(&self, elapsed: Duration) -> String {
        if let Some((done, total, since)) = *self.stage.lock().unwrap() {
            let phase = self.phase.lock().unwrap().clone().unwrap_or_default();
            let secs = since.elapsed().as_secs_f64();
            let eta = if done > 0 && total >= done {
                format!(
                    " · ETA {}s",
                    (secs / done as f64 * (total - done) as f64).round()
                )
            } else {
                String::new()
            };
            return format!(
                "progress: {phase}: {done}/{total}{eta} · elapsed {}s",
                elapsed.as_secs()
            );
        }
        let (done, total) = (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        );
        let of = if total > 0 {
            format!("{done}/{total}")
        } else {
            done.to_string()
        };
        let phase = self
            .phase
            .lock()
            .unwrap()
            .as_ref()
            .map(|p| format!(" · {p}"))
            .unwrap_or_default();
        format!(
            "progress: {of} samples · failed {} · calls {} (cached {}) · elapsed {}s{phase}{}",
            self.failed.load(Ordering::Relaxed),
            self.calls.load(Ordering::Relaxed),
            self.cached.load(Ordering::Relaxed),
            elapsed.as_secs(),
            self.batches
                .lock()
                .unwrap()
                .as_ref()
                .and_then(|b| b.line())
                .map(|l| format!(" · {l}"))
                .unwrap_or_default()
        )
    }
}

fn interval() -> Duration {
    let secs = std::env::var("SHAMMIE_PROGRESS_SECS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(10.0);
    Duration::from_secs_f64(secs)
}

/// A thread printing [`Counts::line`] every `every` until stopped, then once more.
struct Plain {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    stopped: AtomicBool,
}

impl Plain {
    fn start(counts: Arc<Counts>, every: Duration) -> Self {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let s = stop.clone();
        let t0 = Instant::now();
        let thread = std::thread::spawn(move || {
            let (lock, cv) = &*s;
            let mut stopped = lock.lock().unwrap();
            loop {
                let (g, timeout) = cv.wait_timeout(stopped, every).unwrap();
                stopped = g;
                if *stopped {
                    break;
                }
                if timeout.timed_out() {
                    eprintln!("{}", counts.line(t0.elapsed()));
                }
            }
            eprintln!("{}", counts.line(t0.elapsed()));
        });
        Plain {
            stop,
            thread: Mutex::new(Some(thread)),
            stopped: AtomicBool::new(false),
        }
    }

    fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        *self.stop.0.lock().unwrap() = true;
        self.stop.1.notify_all();
        if let Some(t) = self.thread.lock().unwrap().take() {
            let _ = t.join();
        }
    }
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
        let terminal = std::io::stderr().is_terminal();
        let target = if quiet || !terminal {
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
        let counts = Arc::new(Counts::default());
        let plain = (!quiet && !terminal).then(|| Plain::start(counts.clone(), interval()));
        Bar {
            bar,
            plain,
            counts,
            tokens_in: AtomicU64::new(0),
            tokens_out: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            cached: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            started_at: AtomicU64::new(0),
        }
    }

    /// Shows the states of `--batch` batches (told to `board`) with this bar.
    pub(crate) fn with_batches(self, board: Arc<BatchBoard>, quiet: bool) -> Self {
        board.attach(self.bar.clone(), self.plain.is_some(), quiet);
        *self.counts.batches.lock().unwrap() = Some(board);
        self
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
        if let Some(p) = &self.plain {
            p.stop();
        }
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
                self.counts
                    .total
                    .store(total.unwrap_or(0), Ordering::Relaxed);
                self.counts.done.store(already_done, Ordering::Relaxed);
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
                self.counts.done.fetch_add(1, Ordering::Relaxed);
                self.counts
                    .failed
                    .fetch_add(u64::from(failed), Ordering::Relaxed);
                self.counts.calls.fetch_add(calls, Ordering::Relaxed);
                self.counts
                    .cached
                    .fetch_add(cached_calls, Ordering::Relaxed);
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
                *self.counts.phase.lock().unwrap() =
                    Some(format!("stage {}/{count} {name}", index + 1));
                *self.counts.stage.lock().unwrap() = None;
                if self.plain.is_some() {
                    eprintln!("stage {}/{count}: {name} ({kind})", index + 1);
                }
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
                let mut st = self.counts.stage.lock().unwrap();
                let since = st.map_or_else(Instant::now, |(_, _, t)| t);
                *st = Some((done, total, since));
            }
            ProgressEvent::Analyzing => {
                *self.counts.stage.lock().unwrap() = None;
                *self.counts.phase.lock().unwrap() = Some("analysing".into());
                self.bar.set_message("analysing…")
            }
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
