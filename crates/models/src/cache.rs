//! The response cache: an SQLite file keyed by a hash of the canonical request.
//!
//! Invariants: only successful completions are stored; a stored response is committed
//! (WAL, `synchronous=NORMAL`) before the caller sees it, so a process killed at any
//! moment keeps every answer it received; the key covers the endpoint (provider, base
//! URL, model) and the whole request including its nonce, never the API key.

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
             );",
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
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
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
            c.meta.cached = true;
            c.meta.attempts = 0;
            c.meta.latency_ms = 0;
            return Ok(c);
        }
        let c = self.inner.generate(req).await?;
        self.cache.put(&key, self.inner.endpoint(), &c)?;
        Ok(c)
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
