//! The response cache: an SQLite file keyed by a hash of the canonical request.
//!
//! Invariants: only successful completions are stored; a stored response is committed
//! (WAL, `synchronous=NORMAL`) before the caller sees it, so a process killed at any
//! moment keeps every answer it received; the key covers the endpoint (provider, base
//! URL, model) and the whole request including its nonce, never the API key.
//!
//! The same database holds the provider batches in flight (`--batch`, [`crate::batch`]):
//! `batches` (one row per batch: the local id, the provider's id once known, provider,
//! endpoint, state `submitting` → `submitted` → `ended`, counts and times) and
//! `batch_requests` (one row per request of a pending batch: its cache key, which is also
//! its `custom_id`, and the request). A request has a `batch_requests` row exactly while
//! its batch is pending: the transaction that stores a finished batch's successful
//! results in `responses` also deletes its rows and marks the batch `ended`, so a result
//! is never both lost and unpaid-for, and a pending request is never submitted twice.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use shammie_core::{Capabilities, Completion, GenerateRequest};

use crate::{Model, ModelError};

/// Bumped when the key derivation or the stored format changes.
const KEY_VERSION: u32 = 1;

pub fn cache_key(endpoint: &str, req: &GenerateRequest) -> String {
    let canonical = serde_json::json!({"v": KEY_VERSION, "endpoint": endpoint, "request": req});
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(&canonical).expect("requests serialise"));
    hex::encode(h.finalize())
}

pub struct ResponseCache {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl ResponseCache {
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| ModelError::Cache(format!("cannot create {}: {e}", dir.display())))?;
        }
        let err = |e: rusqlite::Error| ModelError::Cache(format!("{}: {e}", path.display()));
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS responses (
                 key TEXT PRIMARY KEY,
                 endpoint TEXT NOT NULL,
                 response TEXT NOT NULL,
                 created_at INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS batches (
                 id TEXT PRIMARY KEY,
                 provider_id TEXT,
                 provider TEXT NOT NULL,
                 endpoint TEXT NOT NULL,
                 state TEXT NOT NULL,
                 requests INTEGER NOT NULL,
                 submitted_at INTEGER NOT NULL,
                 ended_at INTEGER
             );
             CREATE TABLE IF NOT EXISTS batch_requests (
                 batch TEXT NOT NULL,
                 cache_key TEXT NOT NULL,
                 request TEXT NOT NULL,
                 PRIMARY KEY (batch, cache_key)
             );
             CREATE INDEX IF NOT EXISTS batches_pending ON batches (endpoint, state);",
        )
        .map_err(err)?;
        Ok(Self {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self, key: &str) -> Result<Option<Completion>, ModelError> {
        let conn = self.conn.lock().unwrap();
        let row: Option<String> = conn
            .prepare_cached("SELECT response FROM responses WHERE key = ?1")
            .and_then(|mut st| st.query_row(params![key], |r| r.get(0)).optional())
            .map_err(|e| ModelError::Cache(e.to_string()))?;
        match row {
            None => Ok(None),
            // An entry that no longer parses (older format) is treated as a miss.
            Some(s) => Ok(serde_json::from_str(&s).ok()),
        }
    }

    pub fn put(&self, key: &str, endpoint: &str, c: &Completion) -> Result<(), ModelError> {
        let json = serde_json::to_string(c).expect("completions serialise");
        let now = now();
        let conn = self.conn.lock().unwrap();
        conn.prepare_cached(
            "INSERT OR REPLACE INTO responses (key, endpoint, response, created_at) VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut st| st.execute(params![key, endpoint, json, now]))
        .map_err(|e| ModelError::Cache(e.to_string()))?;
        Ok(())
    }

    pub fn len(&self) -> Result<u64, ModelError> {
        let conn = self.conn.lock().unwrap();
        conn.query_row("SELECT COUNT(*) FROM responses", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| ModelError::Cache(e.to_string()))
    }

    pub fn is_empty(&self) -> Result<bool, ModelError> {
        Ok(self.len()? == 0)
    }

    /// Records a batch and its requests (`(cache key, request as JSON)`) in one
    /// transaction: in state `submitting` before the provider has it (OpenAI, whose
    /// batches can be found again by the local id), or `submitted` with the provider's
    /// id once it has it (Anthropic).
    pub(crate) fn begin_batch(
        &self,
        b: &BatchRecord,
        requests: &[(String, String)],
    ) -> Result<(), ModelError> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction().map_err(cache_err)?;
        tx.execute(
            "INSERT INTO batches (id, provider_id, provider, endpoint, state, requests, submitted_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                b.id,
                b.provider_id,
                b.provider,
                b.endpoint,
                b.state,
                requests.len() as i64,
                now()
            ],
        )
        .map_err(cache_err)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO batch_requests (batch, cache_key, request) VALUES (?1, ?2, ?3)",
                )
                .map_err(cache_err)?;
            for (key, req) in requests {
                st.execute(params![b.id, key, req]).map_err(cache_err)?;
            }
        }
        tx.commit().map_err(cache_err)
    }

    /// The provider accepted batch `id` under `provider_id`.
    pub(crate) fn batch_submitted(&self, id: &str, provider_id: &str) -> Result<(), ModelError> {
        let conn = self.conn.lock().unwrap();
        conn.execute(
            "UPDATE batches SET provider_id = ?2, state = 'submitted' WHERE id = ?1",
            params![id, provider_id],
        )
        .map(drop)
        .map_err(cache_err)
    }

    /// Batch `id` has ended: in one transaction its successful results (cache key,
    /// completion) go into `responses`, its requests are forgotten and it is marked ended.
    pub(crate) fn finish_batch(
        &self,
        id: &str,
        endpoint: &str,
        results: &[(String, Completion)],
    ) -> Result<(), ModelError> {
        let now = now();
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction().map_err(cache_err)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO responses (key, endpoint, response, created_at) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(cache_err)?;
            for (key, c) in results {
                let json = serde_json::to_string(c).expect("completions serialise");
                st.execute(params![key, endpoint, json, now])
                    .map_err(cache_err)?;
            }
        }
        tx.execute("DELETE FROM batch_requests WHERE batch = ?1", params![id])
            .map_err(cache_err)?;
        tx.execute(
            "UPDATE batches SET state = 'ended', ended_at = ?2 WHERE id = ?1",
            params![id, now],
        )
        .map_err(cache_err)?;
        tx.commit().map_err(cache_err)
    }

    /// Forgets a batch the provider never took (its submission failed, or it is not
    /// found): its requests may be submitted again.
    pub(crate) fn forget_batch(&self, id: &str) -> Result<(), ModelError> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction().map_err(cache_err)?;
        tx.execute("DELETE FROM batch_requests WHERE batch = ?1", params![id])
            .map_err(cache_err)?;
        tx.execute("DELETE FROM batches WHERE id = ?1", params![id])
            .map_err(cache_err)?;
        tx.commit().map_err(cache_err)
    }

    /// The batches not yet ended, of `endpoint` (all when `None`), oldest first.
    pub fn pending_batches(&self, endpoint: Option<&str>) -> Result<Vec<BatchRecord>, ModelError> {
        let conn = self.conn.lock().unwrap();
        let mut st = conn
            .prepare_cached(
                "SELECT id, provider_id, provider, endpoint, state, requests FROM batches
                 WHERE state != 'ended' AND (?1 IS NULL OR endpoint = ?1)
                 ORDER BY submitted_at, id",
            )
            .map_err(cache_err)?;
        let rows = st
            .query_map(params![endpoint], |r| {
                Ok(BatchRecord {
                    id: r.get(0)?,
                    provider_id: r.get(1)?,
                    provider: r.get(2)?,
                    endpoint: r.get(3)?,
                    state: r.get(4)?,
                    requests: r.get::<_, i64>(5)? as u64,
                })
            })
            .map_err(cache_err)?;
        rows.collect::<Result<_, _>>().map_err(cache_err)
    }

    /// The requests of a pending batch: (cache key, request as JSON).
    pub(crate) fn batch_requests(&self, id: &str) -> Result<Vec<(String, String)>, ModelError> {
        let conn = self.conn.lock().unwrap();
        let mut st = conn
            .prepare_cached(
                "SELECT cache_key, request FROM batch_requests WHERE batch = ?1 ORDER BY rowid",
            )
            .map_err(cache_err)?;
        let rows = st
            .query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(cache_err)?;
        rows.collect::<Result<_, _>>().map_err(cache_err)
    }
}

/// A provider batch as the cache database records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
    /// Shammie's id for the batch (also in an OpenAI batch's `metadata`).
    pub id: String,
    /// The provider's id (`msgbatch_…`, `batch_…`); `None` while being submitted.
    pub provider_id: Option<String>,
    /// `anthropic` or `openai`.
    pub provider: String,
    /// The model endpoint whose requests it holds (as in cache keys).
    pub endpoint: String,
    /// `submitting`, `submitted` or `ended`.
    pub state: String,
    /// How many requests it holds.
    pub requests: u64,
}

fn cache_err(e: rusqlite::Error) -> ModelError {
    ModelError::Cache(e.to_string())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Serves repeated requests from the cache; stores each new success before returning it.
pub struct Cached {
    inner: Arc<dyn Model>,
    cache: Arc<ResponseCache>,
}

impl Cached {
    pub fn new(inner: Arc<dyn Model>, cache: Arc<ResponseCache>) -> Self {
        Self { inner, cache }
    }
}

#[async_trait]
impl Model for Cached {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn endpoint(&self) -> &str {
        self.inner.endpoint()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn rendered_prompt(&self, req: &GenerateRequest) -> Option<String> {
        self.inner.rendered_prompt(req)
    }
    async fn generate(&self, req: &GenerateRequest) -> Result<Completion, ModelError> {
        let key = cache_key(self.inner.endpoint(), req);
        if let Some(mut c) = self.cache.get(&key)? {
            c.meta.from_cache();
            return Ok(c);
        }
        let c = self.inner.generate(req).await?;
        // A batched answer was stored by the batch layer with the rest of its batch.
        if c.meta.batch_id.is_none() {
            self.cache.put(&key, self.inner.endpoint(), &c)?;
        }
        Ok(c)
    }
    /// Serves the nonces the cache holds and forwards only the others, in one call; each
    /// answer is stored under its own nonce's key (the key `generate` would use).
    async fn generate_many(
        &self,
        req: &GenerateRequest,
        nonces: &[u64],
    ) -> Vec<Result<Completion, ModelError>> {
        let endpoint = self.inner.endpoint();
        let mut out: Vec<Option<Result<Completion, ModelError>>> = Vec::with_capacity(nonces.len());
        let mut keys = Vec::with_capacity(nonces.len());
        let mut misses = Vec::new();
        for (i, &n) in nonces.iter().enumerate() {
            let mut r = req.clone();
            r.nonce = n;
            let key = cache_key(endpoint, &r);
            match self.cache.get(&key) {
                Ok(Some(mut c)) => {
                    c.meta.from_cache();
                    out.push(Some(Ok(c)));
                }
                Ok(None) => {
                    out.push(None);
                    misses.push(i);
                }
                Err(e) => out.push(Some(Err(e))),
            }
            keys.push(key);
        }
        if !misses.is_empty() {
            let ns: Vec<u64> = misses.iter().map(|&i| nonces[i]).collect();
            let answers = self.inner.generate_many(req, &ns).await;
            for (&i, a) in misses.iter().zip(answers) {
                out[i] = Some(a.and_then(|c| {
                    if c.meta.batch_id.is_none() {
                        self.cache.put(&keys[i], endpoint, &c)?;
                    }
                    Ok(c)
                }));
            }
        }
        out.into_iter()
            .map(|o| o.unwrap_or_else(|| Err(ModelError::Malformed("no answer".into()))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_depends_on_everything_that_changes_the_answer() {
        let r = GenerateRequest::user("hi", 5);
        let base = cache_key("openai x m", &r);
        assert_eq!(base, cache_key("openai x m", &r.clone()));
        assert_ne!(base, cache_key("openai x m2", &r));
        let mut r2 = r.clone();
        r2.nonce = 1;
        assert_ne!(base, cache_key("openai x m", &r2));
        let mut r3 = r.clone();
        r3.temperature = Some(1.0);
        assert_ne!(base, cache_key("openai x m", &r3));
        assert_eq!(base.len(), 64);
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.sqlite");
        let c = Completion {
            text: "yes".into(),
            logprobs: None,
            continuations: None,
            tool_calls: Vec::new(),
            stop_reason: shammie_core::StopReason::EndTurn,
            usage: Default::default(),
            meta: Default::default(),
        };
        ResponseCache::open(&p).unwrap().put("k", "e", &c).unwrap();
        let again = ResponseCache::open(&p).unwrap();
        assert_eq!(again.get("k").unwrap().unwrap().text, "yes");
        assert!(again.get("other").unwrap().is_none());
        assert_eq!(again.len().unwrap(), 1);
    }
}
