//! A fake package index and Hugging Face hub on 127.0.0.1, and wheels built in the test.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Cursor, Write};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How the fake server answers one path.
#[derive(Clone)]
pub(crate) enum Reply {
    /// 200 with this body.
    Body(Vec<u8>),
    /// This status, empty body.
    Status(u16),
    /// Announces the whole body's length but closes after `send` bytes.
    Truncated { body: Vec<u8>, send: usize },
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub path: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Clone)]
pub(crate) struct FakeServer {
    pub base: String,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeServer {
    /// Starts serving on an ephemeral loopback port; stops with the test's runtime.
    pub(crate) async fn start() -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = FakeServer {
            base,
            routes: Arc::default(),
            seen: Arc::default(),
        };
        let s = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let s = s.clone();
                tokio::spawn(async move { s.serve(stream).await });
            }
        });
        server
    }

    async fn serve(&self, mut stream: tokio::net::TcpStream) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if buf.len() > 64 * 1024 {
                return;
            }
        }
        let head = String::from_utf8_lossy(&buf).into_owned();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let path = request_line
            .split(' ')
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let headers = lines
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        self.seen.lock().unwrap().push(Seen {
            path: path.clone(),
            headers,
        });
        let reply = self
            .routes
            .lock()
            .unwrap()
            .get(&path)
            .cloned()
            .unwrap_or(Reply::Status(404));
        let (status, body, send) = match reply {
            Reply::Body(b) => {
                let n = b.len();
                (200, b, n)
            }
            Reply::Status(s) => (s, Vec::new(), 0),
            Reply::Truncated { body, send } => (200, body, send),
        };
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(&body[..send]).await;
        let _ = stream.flush().await;
        let _ = stream.shutdown().await;
    }

    pub(crate) fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_string(), reply);
    }

    pub(crate) fn unroute(&self, path: &str) {
        self.routes.lock().unwrap().remove(path);
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub(crate) fn clear_seen(&self) {
        self.seen.lock().unwrap().clear();
    }

    /// Publishes `wheel` as release `version` of `package`, with the index's sha256 digest
    /// `digest` (the wheel's own unless overridden).
    pub(crate) fn publish_with_digest(
        &self,
        package: &str,
        version: &str,
        wheel_name: &str,
        wheel: Vec<u8>,
        digest: &str,
    ) {
        let file_path = format!("/files/{wheel_name}");
        let files = serde_json::json!([
            {
                "filename": format!("{}-{version}.tar.gz", package.replace('-', "_")),
                "url": format!("{}/files/sdist.tar.gz", self.base),
                "packagetype": "sdist",
                "digests": { "sha256": "0".repeat(64) },
                "size": 10,
                "yanked": false
            },
            {
                "filename": wheel_name,
                "url": format!("{}{file_path}", self.base),
                "packagetype": "bdist_wheel",
                "digests": { "sha256": digest, "md5": "00" },
                "size": wheel.len(),
                "yanked": false
            }
        ]);
        // PyPI's project document. The latest release (`info.version`, files in `urls`) is
        // a newer 9.9.9 whose wheel is not served, so a pinned pull must pick its version
        // from `releases`.
        let newer = wheel_name.replace(&format!("-{version}-"), "-9.9.9-");
        let json = serde_json::json!({
            "info": { "name": package, "version": "9.9.9" },
            "urls": [{
                "filename": newer,
                "url": format!("{}/files/{newer}", self.base),
                "packagetype": "bdist_wheel",
                "digests": { "sha256": "1".repeat(64) },
                "size": 1,
                "yanked": false
            }],
            "releases": { version: files },
        })
        .to_string()
        .into_bytes();
        self.route(&format!("/pypi/{package}/json"), Reply::Body(json));
        self.route(&file_path, Reply::Body(wheel));
    }

    /// Publishes a wheel with its true digest; returns the wheel file's name.
    pub(crate) fn publish(&self, package: &str, version: &str, wheel: Vec<u8>) -> String {
        let name = wheel_name(package, version);
        let digest = sha256(&wheel);
        self.publish_with_digest(package, version, &name, wheel, &digest);
        name
    }
}

pub(crate) fn wheel_name(package: &str, version: &str) -> String {
    format!("{}-{version}-py3-none-any.whl", package.replace('-', "_"))
}

pub(crate) fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A zip archive (a wheel, or a zip inside one) with these members, deflated.
pub(crate) fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in members {
        w.start_file(*name, opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}
