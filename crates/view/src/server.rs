//! The HTTP side: the page and its script (built into the binary), and a read-only JSON
//! API over the catalog.
//!
//! - `GET /api/runs`: every run's summary.
//! - `GET /api/runs/{run}`: its summary, `run.json`, `results.json` and report files.
//! - `GET /api/runs/{run}/samples?stage=&offset=&limit=&error=&dataset=&score=&q=`: one
//!   page of the records that pass the filters, from the index; `q` scans the matching
//!   records' lines on disk.
//! - `GET /api/runs/{run}/sample?stage=&id=&epoch=`: one whole record, read at its offset.
//! - `GET /api/runs/{run}/file/{path}`: a file inside the run directory (figures, reports),
//!   except inside a private stage's folder.
//!
//! Every response carries a content security policy that allows only the viewer's own
//! script (model text is only ever set as text, so a transcript holding `<script>` shows
//! as text; the policy is the second line of defence), and a request whose `Host` is not
//! the loopback address it was sent to is refused (no DNS rebinding).

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::catalog::{self, Found, Indexes};
use crate::index::{Entry, Scalar};

const PAGE: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/app.css");

/// The app's policy: its own script and style, images from itself, nothing else.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none'";
/// Files from a run directory (an influence report's HTML, an SVG figure) open in a
/// sandbox: they may style themselves but never run a script.
const FILE_CSP: &str =
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:";

/// Most records one page lists.
pub const MAX_PAGE: usize = 500;

struct App {
    roots: Vec<PathBuf>,
    indexes: Mutex<Indexes>,
}

/// The viewer over `roots` (run directories or folders of them).
pub fn router(roots: Vec<PathBuf>) -> Router {
    let app = Arc::new(App {
        roots,
        indexes: Mutex::new(Indexes::default()),
    });
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", PAGE) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/app.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route("/api/runs", get(runs))
        .route("/api/runs/{run}", get(run))
        .route("/api/runs/{run}/samples", get(samples))
        .route("/api/runs/{run}/sample", get(sample))
        .route("/api/runs/{run}/file/{*path}", get(file))
        .layer(axum::middleware::from_fn(guard))
        .with_state(app)
}

/// Loopback only: the `Host` must name the loopback interface (the viewer binds
/// 127.0.0.1), so a web page elsewhere cannot reach it through DNS rebinding.
async fn guard(req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    if !matches!(name, "127.0.0.1" | "localhost" | "[::1]") {
        return (
            StatusCode::FORBIDDEN,
            "the viewer answers on 127.0.0.1 only\n",
        )
            .into_response();
    }
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CSP));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

fn json(body: Vec<u8>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

fn not_found(what: String) -> Response {
    (StatusCode::NOT_FOUND, what).into_response()
}

fn forbidden(what: String) -> Response {
    (StatusCode::FORBIDDEN, what).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
}

/// Runs blocking catalog work off the async threads.
async fn blocking<F>(app: Arc<App>, f: F) -> Response
where
    F: FnOnce(&App) -> Response + Send + 'static,
{
    tokio::task::spawn_blocking(move || f(&app))
        .await
        .unwrap_or_else(internal)
}

fn find(app: &App, run: &str) -> Option<Found> {
    catalog::scan(&app.roots).into_iter().find(|f| f.id == run)
}

async fn runs(State(app): State<Arc<App>>) -> Response {
    blocking(app, |app| {
        let mut idx = app.indexes.lock().unwrap();
        let all: Vec<catalog::Summary> = catalog::scan(&app.roots)
            .iter()
            .filter_map(|f| {
                let meta = catalog::read_json(&f.dir, "run.json");
                let results = catalog::read_json(&f.dir, "results.json");
                catalog::summary(f, &mut idx, &meta, &results)
            })
            .collect();
        json(serde_json::to_vec(&all).expect("summaries serialise"))
    })
    .await
}

async fn run(State(app): State<Arc<App>>, UrlPath(run): UrlPath<String>) -> Response {
    blocking(app, move |app| {
        let Some(found) = find(app, &run) else {
            return not_found(format!("no run {run}"));
        };
        let mut idx = app.indexes.lock().unwrap();
        let meta = catalog::read_json(&found.dir, "run.json");
        let results = catalog::read_json(&found.dir, "results.json");
        let Some(summary) = catalog::summary(&found, &mut idx, &meta, &results) else {
            return not_found(format!("{}: unreadable run.json", found.dir.display()));
        };
        let body = serde_json::json!({
            "summary": summary,
            "meta": meta,
            "results": results,
        });
        json(body.to_string().into_bytes())
    })
    .await
}

/// The filters of a samples page.
#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    #[serde(default)]
    pub stage: String,
    #[serde(default)]
    pub offset: usize,
    #[serde(default)]
    pub limit: Option<usize>,
    /// `only` (failed samples) or `none` (successful ones).
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub dataset: String,
    /// `NAME` (true or non-zero), `NAME=VALUE`, `NAME!=VALUE`, `NAME>X`, `NAME>=X`,
    /// `NAME<X`, `NAME<=X`.
    #[serde(default)]
    pub score: String,
    /// Full text, case-insensitive, over each record's JSON.
    #[serde(default)]
    pub q: String,
}

/// A parsed score condition.
#[derive(Debug, Clone, PartialEq)]
pub enum ScoreTest {
    Truthy(String),
    Cmp(String, &'static str, String),
}

impl ScoreTest {
    pub fn parse(s: &str) -> Option<ScoreTest> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        for op in ["!=", ">=", "<=", "=", ">", "<"] {
            if let Some((k, v)) = s.split_once(op) {
                return Some(ScoreTest::Cmp(
                    k.trim().to_string(),
                    op,
                    v.trim().to_string(),
                ));
            }
        }
        Some(ScoreTest::Truthy(s.to_string()))
    }

    pub fn passes(&self, e: &Entry) -> bool {
        let get = |k: &str| e.scores.iter().find(|(n, _)| n == k).map(|(_, v)| v);
        match self {
            ScoreTest::Truthy(k) => match get(k) {
                Some(Scalar::Bool(b)) => *b,
                Some(Scalar::Num(x)) => *x != 0.0,
                Some(Scalar::Text(t)) => !t.is_empty(),
                None => false,
            },
            ScoreTest::Cmp(k, op, want) => {
                let Some(v) = get(k) else { return false };
                let num = match (v, want.parse::<f64>()) {
                    (Scalar::Num(x), Ok(w)) => Some((*x, w)),
                    _ => None,
                };
                match (*op, num) {
                    ("=", Some((x, w))) => x == w,
                    ("!=", Some((x, w))) => x != w,
                    (">", Some((x, w))) => x > w,
                    (">=", Some((x, w))) => x >= w,
                    ("<", Some((x, w))) => x < w,
                    ("<=", Some((x, w))) => x <= w,
                    ("=", None) => v.text() == *want,
                    ("!=", None) => v.text() != *want,
                    _ => false,
                }
            }
        }
    }
}

fn samples_file(found: &Found, stage: &str) -> Option<PathBuf> {
    catalog::sample_files(&found.dir).remove(stage)
}

async fn samples(
    State(app): State<Arc<App>>,
    UrlPath(run): UrlPath<String>,
    Query(f): Query<Filter>,
) -> Response {
    blocking(app, move |app| {
        let Some(found) = find(app, &run) else {
            return not_found(format!("no run {run}"));
        };
        if let Some(what) = catalog::private_stage(&found.dir, &f.stage) {
            // Listed as private, never indexed, searched or shown.
            return json(
                serde_json::json!({"total": 0, "matching": 0, "offset": 0, "items": [],
                "datasets": [], "scores": [], "private": what})
                .to_string()
                .into_bytes(),
            );
        }
        let Some(path) = samples_file(&found, &f.stage) else {
            return json(
                serde_json::json!({"total": 0, "matching": 0, "offset": 0, "items": [],
                "datasets": [], "scores": []})
                .to_string()
                .into_bytes(),
            );
        };
        let mut indexes = app.indexes.lock().unwrap();
        let idx = match indexes.get(&path) {
            Ok(i) => i,
            Err(e) => return internal(format!("{}: {e}", path.display())),
        };
        let test = ScoreTest::parse(&f.score);
        let pass = |e: &&Entry| {
            (match f.error.as_str() {
                "only" => e.error,
                "none" => !e.error,
                _ => true,
            }) && (f.dataset.is_empty() || e.dataset.as_deref() == Some(f.dataset.as_str()))
                && test.as_ref().is_none_or(|t| t.passes(e))
        };
        let matching: Vec<&Entry> = if f.q.trim().is_empty() {
            idx.entries().iter().filter(pass).collect()
        } else {
            match idx.search(idx.entries().iter().filter(pass), f.q.trim()) {
                Ok(m) => m,
                Err(e) => return internal(e),
            }
        };
        let limit = f.limit.unwrap_or(100).clamp(1, MAX_PAGE);
        let items: Vec<&Entry> = matching
            .iter()
            .skip(f.offset)
            .take(limit)
            .copied()
            .collect();
        let mut datasets: Vec<&str> = idx
            .entries()
            .iter()
            .filter_map(|e| e.dataset.as_deref())
            .collect();
        datasets.sort_unstable();
        datasets.dedup();
        let mut scores: Vec<&str> = idx
            .entries()
            .iter()
            .take(1000)
            .flat_map(|e| e.scores.iter().map(|(k, _)| k.as_str()))
            .collect();
        scores.sort_unstable();
        scores.dedup();
        let body = serde_json::json!({
            "total": idx.entries().len(),
            "matching": matching.len(),
            "offset": f.offset,
            "items": items,
            "datasets": datasets,
            "scores": scores,
            "unreadable": idx.unreadable,
        });
        json(body.to_string().into_bytes())
    })
    .await
}

#[derive(Debug, Deserialize)]
struct One {
    #[serde(default)]
    stage: String,
    id: String,
    #[serde(default = "one")]
    epoch: u32,
}

fn one() -> u32 {
    1
}

async fn sample(
    State(app): State<Arc<App>>,
    UrlPath(run): UrlPath<String>,
    Query(q): Query<One>,
) -> Response {
    blocking(app, move |app| {
        let Some(found) = find(app, &run) else {
            return not_found(format!("no run {run}"));
        };
        if catalog::private_stage(&found.dir, &q.stage).is_some() {
            return forbidden(format!(
                "the records of stage {} are private; the viewer does not show them",
                q.stage
            ));
        }
        let Some(path) = samples_file(&found, &q.stage) else {
            return not_found(format!("run {run} has no samples in stage {:?}", q.stage));
        };
        let mut indexes = app.indexes.lock().unwrap();
        let idx = match indexes.get(&path) {
            Ok(i) => i,
            Err(e) => return internal(e),
        };
        let Some(e) = idx.find(&q.id, q.epoch) else {
            return not_found(format!(
                "no sample {} (epoch {}) in run {run}",
                q.id, q.epoch
            ));
        };
        match idx.read(e) {
            Ok(raw) => json(raw),
            Err(err) => internal(err),
        }
    })
    .await
}

/// `rel` inside `dir`, refusing anything that could leave it.
pub fn inside(dir: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let full = dir.join(rel).canonicalize().ok()?;
    let root = dir.canonicalize().ok()?;
    (full.starts_with(&root) && full.is_file()).then_some(full)
}

fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
        .as_str()
    {
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "html" | "htm" => "text/html; charset=utf-8",
        "json" => "application/json; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    }
}

async fn file(
    State(app): State<Arc<App>>,
    UrlPath((run, rel)): UrlPath<(String, String)>,
) -> Response {
    blocking(app, move |app| {
        let Some(found) = find(app, &run) else {
            return not_found(format!("no run {run}"));
        };
        let Some(path) = inside(&found.dir, &rel) else {
            return not_found(format!("no file {rel} in run {run}"));
        };
        // Nothing inside a private stage's folder is served (its records, its journal).
        let stages = found.dir.join(shammie_log::STAGES_DIR);
        if let Ok(under) = path.strip_prefix(&stages) {
            let stage = under
                .components()
                .next()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .unwrap_or_default();
            if catalog::private_stage(&found.dir, &stage).is_some() {
                return forbidden(format!("the files of stage {stage} are private"));
            }
        }
        match std::fs::read(&path) {
            Ok(body) => (
                [
                    (header::CONTENT_TYPE, content_type(&path)),
                    (header::CONTENT_SECURITY_POLICY, FILE_CSP),
                ],
                body,
            )
                .into_response(),
            Err(e) => internal(e),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_filters() {
        let e = Entry {
            n: 0,
            offset: 0,
            len: 0,
            id: "a".into(),
            epoch: 1,
            error: false,
            dataset: None,
            scores: vec![
                ("correct".into(), Scalar::Bool(true)),
                ("p".into(), Scalar::Num(0.25)),
                ("path".into(), Scalar::Text("logprobs".into())),
            ],
            input_tokens: 0,
            output_tokens: 0,
        };
        let t = |s: &str| ScoreTest::parse(s).unwrap().passes(&e);
        assert!(t("correct") && t("correct=true") && !t("correct=false"));
        assert!(t("p>0.2") && t("p<=0.25") && !t("p>0.25") && t("p!=1"));
        assert!(t("path=logprobs") && !t("path=sampling") && t("path!=sampling"));
        assert!(!t("missing") && !t("missing=1"));
        assert_eq!(ScoreTest::parse("  "), None);
    }

    #[test]
    fn files_stay_inside_the_run() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("report")).unwrap();
        std::fs::write(d.path().join("report/a.svg"), "<svg/>").unwrap();
        assert!(inside(d.path(), "report/a.svg").is_some());
        assert!(inside(d.path(), "../secret.txt").is_none());
        assert!(inside(d.path(), "/etc/passwd").is_none());
        assert!(inside(d.path(), "report/../report/a.svg").is_none());
        assert!(inside(d.path(), "report").is_none());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc/passwd", d.path().join("link")).unwrap();
            assert!(inside(d.path(), "link").is_none());
        }
    }
}
