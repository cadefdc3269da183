//! The recording HTTP server.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::TestkitError;

/// How the recorder answers a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Behavior {
    /// Answer with the configured success status and body (200 `{"ok":true}` by default).
    Ok,
    /// Answer with this status and an empty JSON error body.
    Status(u16),
    /// Answer 429 with a `Retry-After` header of this many seconds.
    RetryAfter(u64),
    /// Never answer (until the recorder is dropped): the client must time out.
    Hang,
    /// Answer 500 to this fraction of requests (0.0..=1.0) at random, success otherwise.
    Flaky(f64),
}

/// One request as the recorder received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The HTTP method, e.g. `POST`.
    pub method: String,
    /// The path, e.g. `/services/T000/B000/XXX`.
    pub path: String,
    /// The query string, without `?` (empty when none).
    pub query: String,
    /// The headers in arrival order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The raw body bytes.
    pub body: Vec<u8>,
    /// The status the recorder answered (0 for [`Behavior::Hang`]).
    pub status: u16,
}

impl RecordedRequest {
    /// The first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (panics with the body text if it is not JSON: test helper).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "request body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Whether the recorder answered with a 2xx status.
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

struct Inner {
    requests: Vec<RecordedRequest>,
    next: VecDeque<Behavior>,
    default: Behavior,
    ok_status: u16,
    ok_body: String,
    rng: fastrand::Rng,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Inner> {
    // A panic while holding the lock cannot leave the data inconsistent (plain pushes), so a
    // poisoned lock is still usable.
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// A recording HTTP server on 127.0.0.1 with a free port, running on its own thread.
/// Dropping it stops the server (hanging requests are cancelled).
pub struct Recorder {
    addr: SocketAddr,
    shared: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Recorder {
    /// Starts a recorder that answers 200 `{"ok":true}` to everything.
    pub fn start() -> Result<Recorder, TestkitError> {
        let std_listener =
            std::net::TcpListener::bind("127.0.0.1:0").map_err(|source| TestkitError::Io {
                what: "binding the recorder to 127.0.0.1:0".into(),
                source,
            })?;
        std_listener
            .set_nonblocking(true)
            .map_err(|source| TestkitError::Io {
                what: "setting the recorder socket non-blocking".into(),
                source,
            })?;
        let addr = std_listener
            .local_addr()
            .map_err(|source| TestkitError::Io {
                what: "reading the recorder address".into(),
                source,
            })?;
        let shared: Shared = Arc::new(Mutex::new(Inner {
            requests: Vec::new(),
            next: VecDeque::new(),
            default: Behavior::Ok,
            ok_status: 200,
            ok_body: r#"{"ok":true}"#.to_owned(),
            rng: fastrand::Rng::with_seed(0x7261_696c),
        }));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|source| TestkitError::Io {
                what: "building the recorder runtime".into(),
                source,
            })?;
        let thread = std::thread::Builder::new()
            .name(format!("recorder-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            eprintln!("recorder: cannot adopt listener: {e}");
                            return;
                        }
                    };
                    tokio::select! {
                        result = axum::serve(listener, app) => {
                            if let Err(e) = result {
                                eprintln!("recorder: server error: {e}");
                            }
                        }
                        _ = stop_rx => {}
                    }
                });
                // Dropping the runtime here cancels hanging handlers.
                runtime.shutdown_timeout(Duration::from_millis(100));
            })
            .map_err(|source| TestkitError::Io {
                what: "spawning the recorder thread".into(),
                source,
            })?;
        Ok(Recorder {
            addr,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path` (which should start with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sets how every following request is answered (until changed).
    pub fn set_behavior(&self, behavior: Behavior) {
        lock(&self.shared).default = behavior;
    }

    /// Answers the next `count` requests with `behavior`, then goes back to the default.
    pub fn push_next(&self, count: usize, behavior: Behavior) {
        let mut inner = lock(&self.shared);
        for _ in 0..count {
            inner.next.push_back(behavior.clone());
        }
    }

    /// Sets the status and JSON body of a successful answer (e.g. 202 for PagerDuty).
    pub fn set_ok_response(&self, status: u16, body: &str) {
        let mut inner = lock(&self.shared);
        inner.ok_status = status;
        inner.ok_body = body.to_owned();
    }

    /// Reseeds the random source used by [`Behavior::Flaky`].
    pub fn set_seed(&self, seed: u64) {
        lock(&self.shared).rng = fastrand::Rng::with_seed(seed);
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared).requests.clone()
    }

    /// The requests answered with 2xx so far.
    pub fn accepted(&self) -> Vec<RecordedRequest> {
        lock(&self.shared)
            .requests
            .iter()
            .filter(|r| r.accepted())
            .cloned()
            .collect()
    }

    /// Forgets the recorded requests.
    pub fn clear(&self) {
        lock(&self.shared).requests.clear();
    }

    /// Waits until at least `count` requests were answered with 2xx, or `timeout` passes;
    /// returns the accepted requests either way.
    pub fn wait_for_accepted(&self, count: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let deadline = Instant::now() + timeout;
        loop {
            let accepted = self.accepted();
            if accepted.len() >= count || Instant::now() >= deadline {
                return accepted;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn handle(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let (behavior, ok_status, ok_body) = {
        let mut inner = lock(&shared);
        let behavior = match inner.next.pop_front() {
            Some(b) => b,
            None => inner.default.clone(),
        };
        let behavior = match behavior {
            Behavior::Flaky(fraction) => {
                if inner.rng.f64() < fraction {
                    Behavior::Status(500)
                } else {
                    Behavior::Ok
                }
            }
            other => other,
        };
        let status = match &behavior {
            Behavior::Ok => inner.ok_status,
            Behavior::Status(s) => *s,
            Behavior::RetryAfter(_) => 429,
            Behavior::Hang | Behavior::Flaky(_) => 0,
        };
        inner.requests.push(RecordedRequest {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or("").to_owned(),
            headers,
            body,
            status,
        });
        (behavior, inner.ok_status, inner.ok_body.clone())
    };
    let json = HeaderValue::from_static("application/json");
    match behavior {
        Behavior::Ok | Behavior::Flaky(_) => {
            let mut response = Response::new(Body::from(ok_body));
            *response.status_mut() = StatusCode::from_u16(ok_status).unwrap_or(StatusCode::OK);
            response.headers_mut().insert(header::CONTENT_TYPE, json);
            response
        }
        Behavior::Status(status) => {
            let mut response = Response::new(Body::from(r#"{"error":"injected failure"}"#));
            *response.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            response.headers_mut().insert(header::CONTENT_TYPE, json);
            response
        }
        Behavior::RetryAfter(seconds) => {
            let mut response = Response::new(Body::from(r#"{"error":"rate limited"}"#));
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            response.headers_mut().insert(header::CONTENT_TYPE, json);
            if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            response
        }
        Behavior::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Response::new(Body::empty())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn raw_post(addr: SocketAddr, path: &str, body: &str) -> String {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: x\r\nX-Test: yes\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        let _ = stream.read_to_string(&mut out);
        out
    }

    #[test]
    fn records_requests_and_follows_behaviors() {
        let rec = Recorder::start().unwrap();
        let answer = raw_post(rec.addr(), "/a?x=1", "hello");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        rec.push_next(1, Behavior::RetryAfter(7));
        let answer = raw_post(rec.addr(), "/b", "{}");
        assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
        assert!(answer.to_ascii_lowercase().contains("retry-after: 7"));
        rec.set_behavior(Behavior::Status(503));
        assert!(raw_post(rec.addr(), "/c", "").starts_with("HTTP/1.1 503"));
        rec.set_behavior(Behavior::Ok);
        assert!(raw_post(rec.addr(), "/d", "").starts_with("HTTP/1.1 200"));

        let reqs = rec.requests();
        assert_eq!(reqs.len(), 4);
        assert_eq!(reqs[0].method, "POST");
        assert_eq!(reqs[0].path, "/a");
        assert_eq!(reqs[0].query, "x=1");
        assert_eq!(reqs[0].body, b"hello");
        assert_eq!(reqs[0].header("x-test"), Some("yes"));
        assert_eq!(
            reqs.iter().map(|r| r.status).collect::<Vec<_>>(),
            vec![200, 429, 503, 200]
        );
        assert_eq!(rec.accepted().len(), 2);
    }

    #[test]
    fn flaky_fails_roughly_the_given_fraction() {
        let rec = Recorder::start().unwrap();
        rec.set_behavior(Behavior::Flaky(0.3));
        for _ in 0..200 {
            raw_post(rec.addr(), "/f", "");
        }
        let failed = rec.requests().iter().filter(|r| r.status == 500).count();
        assert!((30..=90).contains(&failed), "failed {failed} of 200");
    }
}
