//! A fault-injecting proxy in front of moto: forwards every request, except that the next
//! N calls of a chosen API action get a chosen error (throttling, AccessDenied, a 500), the
//! way AWS answers them. moto itself never throttles or denies, so this is how tests show
//! what is retried and what is not, while every successful call still reaches moto.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::TestkitError;

/// An error to answer with.
#[derive(Debug, Clone)]
pub struct Fault {
    /// HTTP status.
    pub status: u16,
    /// The body (AWS's XML error document for the protocol).
    pub body: String,
}

impl Fault {
    /// An EC2-protocol error (`<Response><Errors><Error>...`).
    pub fn ec2(status: u16, code: &str, message: &str) -> Fault {
        Fault {
            status,
            body: format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>"
            ),
        }
    }

    /// An AWS query-protocol error (IAM, STS: `<ErrorResponse>...`).
    pub fn query(status: u16, code: &str, message: &str) -> Fault {
        Fault {
            status,
            body: format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>"
            ),
        }
    }
}

#[derive(Default)]
struct Inner {
    faults: HashMap<String, Vec<Fault>>,
    calls: HashMap<String, usize>,
}

struct Proxy {
    upstream: String,
    client: reqwest::Client,
    inner: Mutex<Inner>,
}

/// The running proxy.
pub struct FaultProxy {
    addr: SocketAddr,
    proxy: Arc<Proxy>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (e.g. moto's endpoint URL) on a free loopback port.
    pub fn start(upstream: &str) -> Result<FaultProxy, TestkitError> {
        let io = |what: &str| {
            let what = what.to_owned();
            move |source| TestkitError::Io { what, source }
        };
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").map_err(io("binding the fault proxy"))?;
        listener
            .set_nonblocking(true)
            .map_err(io("setting the proxy socket non-blocking"))?;
        let addr = listener
            .local_addr()
            .map_err(io("reading the proxy address"))?;
        let proxy = Arc::new(Proxy {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .map_err(|e| TestkitError::Io {
                    what: "building the proxy client".into(),
                    source: std::io::Error::other(e),
                })?,
            inner: Mutex::new(Inner::default()),
        });
        let app = Router::new()
            .fallback(forward)
            .with_state(Arc::clone(&proxy));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(io("building the proxy runtime"))?;
        let thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = stop_rx => {}
                    }
                });
                runtime.shutdown_timeout(Duration::from_millis(100));
            })
            .map_err(io("spawning the proxy thread"))?;
        Ok(FaultProxy {
            addr,
            proxy,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The proxy's endpoint URL.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next `times` calls of `action` (e.g. `RevokeSecurityGroupIngress`) get `fault`.
    pub fn fail(&self, action: &str, times: usize, fault: Fault) {
        let mut inner = self.proxy.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .faults
            .entry(action.to_owned())
            .or_default()
            .extend(std::iter::repeat_n(fault, times));
    }

    /// How many calls of `action` arrived (failed or forwarded).
    pub fn calls(&self, action: &str) -> usize {
        let inner = self.proxy.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.calls.get(action).copied().unwrap_or(0)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The API action of a query-protocol request (form body or query string), or the JSON
/// protocol's `X-Amz-Target`.
fn action_of(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Option<String> {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.rsplit('.').next().map(str::to_owned);
    }
    let text = String::from_utf8_lossy(body);
    let query = uri.query().unwrap_or("");
    text.split('&')
        .chain(query.split('&'))
        .find_map(|kv| kv.strip_prefix("Action="))
        .map(str::to_owned)
}

async fn forward(
    State(proxy): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let action = action_of(&uri, &headers, &body);
    if let Some(action) = &action {
        let mut inner = proxy.inner.lock().unwrap_or_else(|p| p.into_inner());
        *inner.calls.entry(action.clone()).or_default() += 1;
        if let Some(queue) = inner.faults.get_mut(action)
            && !queue.is_empty()
        {
            let fault = queue.remove(0);
            let status =
                StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, [("content-type", "text/xml")], fault.body).into_response();
        }
    }
    let url = format!(
        "{}{}",
        proxy.upstream,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let mut req = proxy.client.request(method, url).body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            req = req.header(name, value);
        }
    }
    match req.send().await {
        Ok(resp) => {
            let status =
                StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut out = HeaderMap::new();
            for (name, value) in resp.headers() {
                if name != "content-length" && name != "transfer-encoding" && name != "connection" {
                    out.insert(name.clone(), value.clone());
                }
            }
            let bytes = resp.bytes().await.unwrap_or_default();
            (status, out, bytes).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("fault proxy: {e}")).into_response(),
    }
}
