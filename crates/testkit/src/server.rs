//! The HTTP/1.1 server: a hand-written loop over a tokio `TcpListener`
//! (Content-Length bodies, keep-alive, pipelining in order), one task per
//! connection.

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes, BytesMut};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::batch::{self, BatchState};
use crate::completions;
use crate::finetune::{self, FineTuneOutcome, FineTuneState, MockFile};
use crate::replay::{self, Recording};
use crate::wire;
use crate::{default_reply, Api, Fault, MockReply, RecordedRequest, Responder};

/// Largest request head (request line + headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted.
const MAX_BODY: usize = 32 * 1024 * 1024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Shared {
    responder: Responder,
    recordings: Vec<Recording>,
    latency: Duration,
    /// Requests answered at once (the rest wait), like a GPU server's batch slots.
    slots: Option<Arc<tokio::sync::Semaphore>>,
    api_key: Option<String>,
    record: bool,
    faults: Mutex<VecDeque<Fault>>,
    log: Mutex<Vec<RecordedRequest>>,
    received: AtomicUsize,
    succeeded: AtomicUsize,
    next_id: AtomicU64,
    fine_tune: Mutex<FineTuneState>,
    batches: Mutex<BatchState>,
}

/// Configures a [`MockServer`]; from [`MockServer::builder`].
pub struct MockBuilder {
    responder: Responder,
    recordings: Vec<Recording>,
    latency: Duration,
    slots: Option<usize>,
    api_key: Option<String>,
    port: u16,
    record: bool,
}

impl MockBuilder {
    /// At most `n` requests are answered at once; the rest wait for a slot (each slot
    /// held through the response's latency), as on a server with a fixed batch size.
    pub fn slots(mut self, n: usize) -> Self {
        self.slots = Some(n.max(1));
        self
    }

    /// Serves these recorded exchanges instead of answering ([`crate::replay`]).
    pub fn recordings(mut self, r: Vec<Recording>) -> Self {
        self.recordings = r;
        self
    }

    /// The function that answers successful requests (default:
    /// [`default_reply`]).
    pub fn responder(mut self, r: Responder) -> Self {
        self.responder = r;
        self
    }

    /// Sleep this long before every response (including fault responses,
    /// except `Reset` and `Hang`). Default: none.
    pub fn latency(mut self, d: Duration) -> Self {
        self.latency = d;
        self
    }

    /// When `Some(key)`, OpenAI requests need `Authorization: Bearer key` and
    /// Anthropic requests `x-api-key: key`; others get a 401 in the API's
    /// format. Default: `None` (any or no key accepted).
    pub fn require_api_key(mut self, key: Option<String>) -> Self {
        self.api_key = key;
        self
    }

    /// Port on 127.0.0.1 to bind (default 0: any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Whether to keep every request for [`MockServer::requests`] (default
    /// `true`). Turn off for long benchmarks; the counters still work.
    pub fn record_requests(mut self, on: bool) -> Self {
        self.record = on;
        self
    }

    /// Binds 127.0.0.1 and starts serving on the current tokio runtime.
    pub async fn start(self) -> io::Result<MockServer> {
        let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port));
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(4096)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            responder: self.responder,
            recordings: self.recordings,
            latency: self.latency,
            slots: self.slots.map(|n| Arc::new(tokio::sync::Semaphore::new(n))),
            api_key: self.api_key,
            record: self.record,
            faults: Mutex::new(VecDeque::new()),
            log: Mutex::new(Vec::new()),
            received: AtomicUsize::new(0),
            succeeded: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            fine_tune: Mutex::new(FineTuneState::default()),
            batches: Mutex::new(BatchState::default()),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(MockServer { addr, shared, task })
    }
}

/// A running mock server on 127.0.0.1. Dropping it stops the server and
/// closes every open connection.
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl MockServer {
    /// Starts a server with the default responder on a free port of
    /// 127.0.0.1. Needs a tokio runtime.
    pub async fn start() -> io::Result<MockServer> {
        MockServer::builder().start().await
    }

    pub fn builder() -> MockBuilder {
        MockBuilder {
            responder: Arc::new(default_reply),
            recordings: Vec::new(),
            latency: Duration::ZERO,
            slots: None,
            api_key: None,
            port: 0,
            record: true,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/v1` (a client appends `/chat/completions`).
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `http://127.0.0.1:PORT` (a client appends `/v1/messages`).
    pub fn anthropic_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues a fault for the next request to either API endpoint.
    pub fn push_fault(&self, f: Fault) {
        lock(&self.shared.faults).push_back(f);
    }

    /// Queues several faults, consumed in order, one per request.
    pub fn push_faults(&self, fs: impl IntoIterator<Item = Fault>) {
        lock(&self.shared.faults).extend(fs);
    }

    /// Faults still waiting in the queue.
    pub fn pending_faults(&self) -> usize {
        lock(&self.shared.faults).len()
    }

    /// Drops all queued faults.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Every request received so far, in arrival order (empty when recording
    /// is off).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.log).clone()
    }

    /// Forgets the recorded requests (the counters keep counting).
    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    /// Number of requests received (any path, any outcome).
    pub fn request_count(&self) -> usize {
        self.shared.received.load(Ordering::Relaxed)
    }

    /// How fine-tuning jobs created from now on end when polled to the end (default:
    /// [`FineTuneOutcome::Succeed`]); see [`crate::finetune`].
    pub fn set_fine_tune_outcome(&self, o: FineTuneOutcome) {
        lock(&self.shared.fine_tune).outcome = Some(o);
    }

    /// Every file uploaded to `POST /v1/files`, with its bytes.
    pub fn uploaded_files(&self) -> Vec<MockFile> {
        lock(&self.shared.fine_tune).files()
    }

    /// Number of well-formed 200 replies fully written to a client (normal
    /// answers and `Delay` faults; not `MalformedJson`).
    pub fn successful_count(&self) -> usize {
        self.shared.succeeded.load(Ordering::Relaxed)
    }

    /// The batch APIs' state ([`crate::batch`]).
    pub(crate) fn batch_state(&self) -> MutexGuard<'_, BatchState> {
        lock(&self.shared.batches)
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every
        // connection task (hung ones included).
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            res = listener.accept() => match res {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(serve_conn(stream, shared.clone()));
                }
                Err(e) => {
                    // e.g. EMFILE under heavy load: back off briefly, keep serving.
                    tracing::warn!("mock server accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

struct HttpRequest {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Bytes,
    keep_alive: bool,
}

impl HttpRequest {
    /// The body as the request log keeps it: its JSON, the text of a body that is not
    /// JSON, or null when there is none.
    fn recorded_body(&self) -> Value {
        if self.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&self.body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.body).into_owned()))
        }
    }
}

enum ReadError {
    Io,
    /// A malformed or unsupported request: answer with this status and close.
    Bad(u16, &'static str),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Io
    }
}

fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    buf[start..]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| start + p + 4)
}

/// Reads one request; `Ok(None)` on a clean end of stream between requests.
async fn read_request(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
) -> Result<Option<HttpRequest>, ReadError> {
    let mut scanned = 0;
    let head_end = loop {
        if let Some(end) = find_head_end(buf, scanned) {
            break end;
        }
        scanned = buf.len();
        if buf.len() > MAX_HEAD {
            return Err(ReadError::Bad(431, "request header too large"));
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(8192);
        }
        if stream.read_buf(buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(ReadError::Io)
            };
        }
    };

    let head = std::str::from_utf8(&buf[..head_end - 4])
        .map_err(|_| ReadError::Bad(400, "request head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && v.starts_with("HTTP/1.") => (m, t, v),
        _ => return Err(ReadError::Bad(400, "malformed request line")),
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (path, query) = (path.to_string(), query.to_string());
    let method = method.to_string();
    let http10 = version == "HTTP/1.0";

    let mut headers = Vec::new();
    let mut content_length = 0usize;
    let mut keep_alive = !http10;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or(ReadError::Bad(400, "malformed header line"))?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim().to_string();
        match name.as_str() {
            "content-length" => {
                content_length = value
                    .parse()
                    .map_err(|_| ReadError::Bad(400, "invalid Content-Length"))?;
            }
            "transfer-encoding" => {
                return Err(ReadError::Bad(
                    501,
                    "chunked request bodies are not supported; send Content-Length",
                ));
            }
            "connection" => {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    keep_alive = false;
                } else if v.contains("keep-alive") {
                    keep_alive = true;
                }
            }
            _ => {}
        }
        headers.push((name, value));
    }
    if content_length > MAX_BODY {
        return Err(ReadError::Bad(413, "request body too large"));
    }

    let total = head_end + content_length;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        while buf.len() < total {
            if stream.read_buf(buf).await? == 0 {
                return Err(ReadError::Io);
            }
        }
    }
    buf.advance(head_end);
    let body = buf.split_to(content_length).freeze();
    Ok(Some(HttpRequest {
        method,
        path,
        query,
        headers,
        body,
        keep_alive,
    }))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Overloaded",
        _ => "Status",
    }
}

fn encode_response(
    status: u16,
    extra: &[(&'static str, String)],
    body: &[u8],
    keep_alive: bool,
) -> Vec<u8> {
    use std::io::Write;
    let mut out = Vec::with_capacity(body.len() + 256);
    let _ = write!(
        out,
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: {}\r\n",
        reason(status),
        body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    for (k, v) in extra {
        let _ = write!(out, "{k}: {v}\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

enum Action {
    Respond {
        delay: Duration,
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
        success: bool,
    },
    Reset,
    Hang,
}

fn error_action(
    api: Api,
    status: u16,
    message: &str,
    headers: Vec<(&'static str, String)>,
) -> Action {
    Action::Respond {
        delay: Duration::ZERO,
        status,
        headers,
        body: serde_json::to_vec(&wire::error_body(api, status, message)).unwrap_or_default(),
        success: false,
    }
}

/// Seconds for a `Retry-After` header: `"2"`, `"0.05"`.
fn retry_after_value(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

impl Shared {
    fn record(&self, req: &HttpRequest, body: Value, fault: Option<String>, status: u16) {
        if self.record {
            lock(&self.log).push(RecordedRequest {
                method: req.method.clone(),
                path: req.path.clone(),
                headers: req.headers.clone(),
                body,
                fault,
                status,
            });
        }
    }

    /// Decides the outcome of one request (synchronously, at arrival).
    fn handle(&self, req: &HttpRequest) -> Action {
        self.received.fetch_add(1, Ordering::Relaxed);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Some((status, body)) = replay::answer(&self.recordings, &req.path, &req.body) {
            let sent = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            self.record(req, sent, None, status);
            return Action::Respond {
                delay: Duration::ZERO,
                status,
                headers: Vec::new(),
                body: serde_json::to_vec(&body).unwrap_or_default(),
                success: status == 200,
            };
        }
        if batch::is_batch_path(&req.path) {
            return self.handle_batch(req, id);
        }
        if finetune::is_fine_tune_path(&req.path) {
            return self.handle_fine_tune(req, id);
        }
        let api_path = match req.path.as_str() {
            "/v1/chat/completions" | "/v1/completions" => Some(Api::OpenAi),
            "/v1/messages" => Some(Api::Anthropic),
            _ => None,
        };
        let err_api = api_path.unwrap_or(if req.path.starts_with("/v1/messages") {
            Api::Anthropic
        } else {
            Api::OpenAi
        });
        let body_json: Result<Value, _> = if req.body.is_empty() {
            Ok(Value::Null)
        } else {
            serde_json::from_slice(&req.body)
        };
        let recorded_body = || match &body_json {
            Ok(v) => v.clone(),
            Err(_) => Value::String(String::from_utf8_lossy(&req.body).into_owned()),
        };
        let id_header = |api: Api| -> (&'static str, String) {
            match api {
                Api::OpenAi => ("x-request-id", format!("req_mock{id:012}")),
                Api::Anthropic => ("request-id", format!("req_mock{id:012}")),
            }
        };

        let Some(api) = api_path.filter(|_| req.method == "POST") else {
            let (status, msg) = if api_path.is_some() {
                (
                    405,
                    format!("Method {} not allowed for {}", req.method, req.path),
                )
            } else {
                (404, format!("Unknown path: {} {}", req.method, req.path))
            };
            self.record(req, recorded_body(), None, status);
            return error_action(err_api, status, &msg, vec![id_header(err_api)]);
        };

        let fault = lock(&self.faults).pop_front();
        let label = fault.as_ref().map(Fault::label);
        let delay =
            match self.transport_fault(fault.as_ref(), req, recorded_body, api, id_header(api)) {
                Err(action) => return action,
                Ok(d) => d,
            };
        if let Some(Fault::MalformedJson) = fault {
            // Half of a real response: valid HTTP, invalid JSON.
            let mut body = match self.success_body(api, req, body_json.as_ref().ok(), id) {
                Ok(b) => b,
                Err(_) => br#"{"id":"mock","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Ye"#.to_vec(),
            };
            body.truncate(body.len() / 2);
            self.record(req, recorded_body(), label, 200);
            return Action::Respond {
                delay: Duration::ZERO,
                status: 200,
                headers: vec![id_header(api)],
                body,
                success: false,
            };
        }

        if let Some(key) = &self.api_key {
            let ok = match api {
                Api::OpenAi => {
                    header(&req.headers, "authorization")
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .map(str::trim)
                        == Some(key.as_str())
                }
                Api::Anthropic => header(&req.headers, "x-api-key") == Some(key.as_str()),
            };
            if !ok {
                self.record(req, recorded_body(), label, 401);
                let msg = match api {
                    Api::OpenAi => "Incorrect API key provided (mock server).",
                    Api::Anthropic => "invalid x-api-key",
                };
                return with_delay(error_action(api, 401, msg, vec![id_header(api)]), delay);
            }
        }

        let parsed_body = match &body_json {
            Ok(v) => v,
            Err(e) => {
                self.record(req, recorded_body(), label, 400);
                let msg = format!("We could not parse the JSON body of your request: {e}");
                return with_delay(error_action(api, 400, &msg, vec![id_header(api)]), delay);
            }
        };
        match self.success_body(api, req, Some(parsed_body), id) {
            Ok(body) => {
                self.record(req, recorded_body(), label, 200);
                Action::Respond {
                    delay,
                    status: 200,
                    headers: vec![id_header(api)],
                    body,
                    success: true,
                }
            }
            Err(msg) => {
                self.record(req, recorded_body(), label, 400);
                with_delay(error_action(api, 400, &msg, vec![id_header(api)]), delay)
            }
        }
    }

    /// What a queued fault does before a route answers, the same on every route: a delay
    /// to wait (`Ok`), or the whole answer (`Err`): a reset or hang, a 429 (with its
    /// `Retry-After`), an overload (529 on Anthropic's API, 503 on OpenAI's) or a given
    /// status. A malformed body is left to the route, which knows what half a response of
    /// its own looks like.
    fn transport_fault(
        &self,
        fault: Option<&Fault>,
        req: &HttpRequest,
        recorded_body: impl Fn() -> Value,
        api: Api,
        id_header: (&'static str, String),
    ) -> Result<Duration, Action> {
        let label = fault.map(Fault::label);
        let status = match fault {
            None | Some(Fault::MalformedJson) => return Ok(Duration::ZERO),
            Some(Fault::Delay(d)) => return Ok(*d),
            Some(Fault::Reset) => {
                self.record(req, recorded_body(), label, 0);
                return Err(Action::Reset);
            }
            Some(Fault::Hang) => {
                self.record(req, recorded_body(), label, 0);
                return Err(Action::Hang);
            }
            Some(Fault::RateLimit { retry_after }) => {
                self.record(req, recorded_body(), label, 429);
                let mut h = vec![id_header];
                if let Some(d) = retry_after {
                    h.push(("retry-after", retry_after_value(*d)));
                }
                return Err(error_action(api, 429, wire::default_message(api, 429), h));
            }
            Some(Fault::Overloaded) => match api {
                Api::Anthropic => 529,
                Api::OpenAi => 503,
            },
            Some(Fault::Status(status)) => *status,
        };
        self.record(req, recorded_body(), label, status);
        Err(error_action(
            api,
            status,
            wire::default_message(api, status),
            vec![id_header],
        ))
    }

    /// The fine-tuning API ([`crate::finetune`]): the same fault queue and key check as
    /// the chat APIs, in OpenAI's error format.
    fn handle_fine_tune(&self, req: &HttpRequest, id: u64) -> Action {
        let api = Api::OpenAi;
        let id_header = ("x-request-id", format!("req_mock{id:012}"));
        let recorded_body = || req.recorded_body();
        let fault = lock(&self.faults).pop_front();
        let label = fault.as_ref().map(Fault::label);
        let delay = match self.transport_fault(
            fault.as_ref(),
            req,
            recorded_body,
            api,
            id_header.clone(),
        ) {
            Err(action) => return action,
            Ok(d) => d,
        };
        if let Some(Fault::MalformedJson) = fault {
            self.record(req, recorded_body(), label, 200);
            return Action::Respond {
                delay: Duration::ZERO,
                status: 200,
                headers: vec![id_header],
                body: br#"{"object":"fine_tuning.job","id":"ftjob-"#.to_vec(),
                success: false,
            };
        }
        if let Some(key) = &self.api_key {
            let given = header(&req.headers, "authorization")
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            if given != Some(key.as_str()) {
                self.record(req, recorded_body(), label, 401);
                let msg = "Incorrect API key provided (mock server).";
                return with_delay(error_action(api, 401, msg, vec![id_header]), delay);
            }
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let result = lock(&self.fine_tune).handle(
            &req.method,
            &req.path,
            &req.query,
            header(&req.headers, "content-type"),
            &req.body,
            now,
        );
        match result {
            Ok(v) => {
                self.record(req, recorded_body(), label, 200);
                Action::Respond {
                    delay,
                    status: 200,
                    headers: vec![id_header],
                    body: serde_json::to_vec(&v).unwrap_or_default(),
                    success: true,
                }
            }
            Err((s, msg)) => {
                self.record(req, recorded_body(), label, s);
                with_delay(error_action(api, s, &msg, vec![id_header]), delay)
            }
        }
    }

    /// The batch APIs ([`crate::batch`]): the same fault queue and key check as the chat
    /// APIs; each request of a new batch answered by [`Shared::success_body`].
    fn handle_batch(&self, req: &HttpRequest, id: u64) -> Action {
        let api = batch::api_of(&req.path);
        let id_header = match api {
            Api::OpenAi => ("x-request-id", format!("req_mock{id:012}")),
            Api::Anthropic => ("request-id", format!("req_mock{id:012}")),
        };
        let recorded_body = || req.recorded_body();
        let fault = lock(&self.faults).pop_front();
        let label = fault.as_ref().map(Fault::label);
        let delay = match self.transport_fault(
            fault.as_ref(),
            req,
            recorded_body,
            api,
            id_header.clone(),
        ) {
            Err(action) => return action,
            Ok(d) => d,
        };
        if let Some(Fault::MalformedJson) = fault {
            self.record(req, recorded_body(), label, 200);
            return Action::Respond {
                delay: Duration::ZERO,
                status: 200,
                headers: vec![id_header],
                body: br#"{"id":"batch_"#.to_vec(),
                success: false,
            };
        }
        if let Some(key) = &self.api_key {
            let ok = match api {
                Api::OpenAi => {
                    header(&req.headers, "authorization")
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .map(str::trim)
                        == Some(key.as_str())
                }
                Api::Anthropic => header(&req.headers, "x-api-key") == Some(key.as_str()),
            };
            if !ok {
                self.record(req, recorded_body(), label, 401);
                return with_delay(
                    error_action(api, 401, "invalid API key (mock server)", vec![id_header]),
                    delay,
                );
            }
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let host = header(&req.headers, "host")
            .unwrap_or("127.0.0.1")
            .to_string();
        let answer = |api: Api, params: &Value| -> Result<Value, String> {
            let n = self.next_id.fetch_add(1, Ordering::Relaxed);
            let body = self.success_body(api, req, Some(params), n)?;
            serde_json::from_slice(&body).map_err(|e| e.to_string())
        };
        let result = {
            let mut batches = lock(&self.batches);
            let mut files = lock(&self.fine_tune);
            batches.handle(
                &req.method,
                &req.path,
                &req.query,
                &req.body,
                now,
                &host,
                &mut files,
                &answer,
            )
        };
        match result {
            Ok(reply) => {
                self.record(req, recorded_body(), label, 200);
                let body = match reply {
                    batch::Reply::Json(v) => serde_json::to_vec(&v).unwrap_or_default(),
                    batch::Reply::Bytes(b) => b,
                };
                Action::Respond {
                    delay,
                    status: 200,
                    headers: vec![id_header],
                    body,
                    success: true,
                }
            }
            Err((s, msg)) => {
                self.record(req, recorded_body(), label, s);
                with_delay(error_action(api, s, &msg, vec![id_header]), delay)
            }
        }
    }

    /// Parses the body and runs the responder; `Err` is a 400 message.
    fn success_body(
        &self,
        api: Api,
        req: &HttpRequest,
        body: Option<&Value>,
        id: u64,
    ) -> Result<Vec<u8>, String> {
        let body = body.cloned().unwrap_or(Value::Null);
        if req.path == "/v1/completions" {
            let created = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let v = completions::success(body, req.headers.clone(), &self.responder, id, created)?;
            return serde_json::to_vec(&v).map_err(|e| e.to_string());
        }
        let parsed = wire::parse_request(api, body, req.headers.clone())?;
        let value = match api {
            Api::OpenAi => {
                let n = parsed
                    .raw
                    .get("n")
                    .and_then(Value::as_u64)
                    .unwrap_or(1)
                    .max(1);
                let mut replies: Vec<MockReply> =
                    (0..n).map(|_| (self.responder)(&parsed)).collect();
                let created = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                wire::openai_success(&parsed, &mut replies, id, created)
            }
            Api::Anthropic => {
                let mut reply = (self.responder)(&parsed);
                wire::anthropic_success(&parsed, &mut reply, id)
            }
        };
        serde_json::to_vec(&value).map_err(|e| e.to_string())
    }
}

fn with_delay(a: Action, d: Duration) -> Action {
    match a {
        Action::Respond {
            delay,
            status,
            headers,
            body,
            success,
        } => Action::Respond {
            delay: delay + d,
            status,
            headers,
            body,
            success,
        },
        other => other,
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn serve_conn(mut stream: TcpStream, shared: Arc<Shared>) {
    let mut buf = BytesMut::with_capacity(8192);
    loop {
        let req = match read_request(&mut stream, &mut buf).await {
            Ok(Some(r)) => r,
            Ok(None) | Err(ReadError::Io) => return,
            Err(ReadError::Bad(status, msg)) => {
                shared.received.fetch_add(1, Ordering::Relaxed);
                let body = serde_json::to_vec(&wire::error_body(Api::OpenAi, status, msg))
                    .unwrap_or_default();
                let _ = stream
                    .write_all(&encode_response(status, &[], &body, false))
                    .await;
                return;
            }
        };
        match shared.handle(&req) {
            Action::Respond {
                delay,
                status,
                headers,
                body,
                success,
            } => {
                let slot = match &shared.slots {
                    Some(s) => s.clone().acquire_owned().await.ok(),
                    None => None,
                };
                let wait = delay + shared.latency;
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                let bytes = encode_response(status, &headers, &body, req.keep_alive);
                let written = stream.write_all(&bytes).await;
                drop(slot);
                if written.is_err() {
                    return;
                }
                if success {
                    shared.succeeded.fetch_add(1, Ordering::Relaxed);
                }
                if !req.keep_alive {
                    let _ = stream.shutdown().await;
                    return;
                }
            }
            Action::Reset => {
                // SO_LINGER 0 makes close() send RST instead of FIN.
                let _ = stream.set_zero_linger();
                drop(stream);
                return;
            }
            Action::Hang => {
                // Say nothing; discard input until the client goes away.
                let mut sink = [0u8; 1024];
                loop {
                    match stream.read(&mut sink).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            }
        }
    }
}
