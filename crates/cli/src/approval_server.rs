//! The pages behind approval links, served by `trailwatch run` when
//! `remediation.approval.base_url` and its signing key are set.
//!
//! `GET /remediation/{job}/{approve|reject}?sig=…` only shows the plan and a button: chat
//! tools and mail scanners open links to preview them, and a preview must not approve
//! anything. The button POSTs to the same URL, which decides. Both check the link's
//! signature first and show nothing about a job to a wrong one. Serve this behind the
//! organisation's reverse proxy and sign-in; it binds loopback by default.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use trailwatch_notify::payload::email::escape_html as escape;
use trailwatch_remediate::{JobStatus, Remediator};
use trailwatch_sources::CancellationToken;

#[derive(Clone)]
struct AppState {
    remediator: Arc<Remediator>,
    wake: Arc<tokio::sync::Notify>,
}

/// The router.
pub fn router(remediator: Arc<Remediator>, wake: Arc<tokio::sync::Notify>) -> Router {
    Router::new()
        .route("/remediation/{job}/{decision}", get(show).post(decide))
        .with_state(AppState { remediator, wake })
}

/// Serves the approval pages on `listener` until `stop`.
pub async fn serve(
    listener: std::net::TcpListener,
    remediator: Arc<Remediator>,
    wake: Arc<tokio::sync::Notify>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    axum::serve(listener, router(remediator, wake))
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
}

fn sig_of(query: Option<&str>) -> String {
    query
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("sig="))
        .unwrap_or("")
        .to_owned()
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\"><title>{t}</title></head><body style=\"font-family:sans-serif;max-width:48rem;margin:2rem auto\"><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    );
    (status, Html(html)).into_response()
}

/// Why a link gets no page about its job.
enum Refusal {
    BadLink,
    NoSuchJob,
    StoreFailed,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::BadLink => page(
                StatusCode::FORBIDDEN,
                "Link not valid",
                "<p>This approval link is not valid for that job and decision.</p>",
            ),
            Refusal::NoSuchJob => page(
                StatusCode::NOT_FOUND,
                "No such job",
                "<p>trailwatch has no such remediation job.</p>",
            ),
            Refusal::StoreFailed => page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error",
                "<p>The remediation store could not be read; see the service log.</p>",
            ),
        }
    }
}

/// Checks the decision and signature; the job when both are right.
fn checked(
    state: &AppState,
    job: &str,
    decision: &str,
    sig: &str,
) -> Result<trailwatch_remediate::Job, Refusal> {
    if !matches!(decision, "approve" | "reject")
        || !state.remediator.link_is_valid(job, decision, sig)
    {
        return Err(Refusal::BadLink);
    }
    match state.remediator.job(job) {
        Ok(Some(j)) => Ok(j),
        Ok(None) => Err(Refusal::NoSuchJob),
        Err(e) => {
            tracing::error!(error = %e, job, "approval page: cannot read the job");
            Err(Refusal::StoreFailed)
        }
    }
}

async fn show(
    State(state): State<AppState>,
    Path((job, decision)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let sig = sig_of(query.as_deref());
    let found = match checked(&state, &job, &decision, &sig) {
        Ok(j) => j,
        Err(r) => return r.into_response(),
    };
    let alert = &found.alert;
    let mut calls = String::new();
    if let Some(plan) = &alert.remediation {
        for step in &plan.steps {
            for call in &step.calls {
                calls.push_str(&format!("<li><code>{}</code></li>", escape(call)));
            }
        }
    }
    let who = alert
        .principal
        .arn
        .as_deref()
        .unwrap_or(&alert.principal.name);
    let mut body = format!(
        "<p><b>{}</b></p><p>Rule <code>{}</code>, event <code>{}</code>, account {} region {}, by {}.</p><p>Planned calls:</p><ul>{calls}</ul><p>Status: <b>{}</b></p>",
        escape(&alert.title),
        escape(&alert.rule_id),
        escape(&alert.event_id),
        escape(&alert.account),
        escape(&alert.region),
        escape(who),
        found.status.as_str(),
    );
    if found.status == JobStatus::AwaitingApproval {
        let label = if decision == "approve" {
            "Approve and run"
        } else {
            "Reject"
        };
        // A relative action posts to this same path, also behind a proxy that adds a prefix.
        body.push_str(&format!(
            "<form method=\"post\" action=\"?sig={}\"><button type=\"submit\">{label}</button></form>",
            escape(&sig)
        ));
    } else {
        body.push_str("<p>This job is no longer waiting for a decision.</p>");
    }
    page(StatusCode::OK, &format!("Remediation {job}"), &body)
}

async fn decide(
    State(state): State<AppState>,
    Path((job, decision)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let sig = sig_of(query.as_deref());
    if let Err(r) = checked(&state, &job, &decision, &sig) {
        return r.into_response();
    }
    match state.remediator.decide_signed(&job, &decision, &sig) {
        Ok(status) => {
            if status == JobStatus::Queued {
                state.wake.notify_one();
            }
            let text = if decision == "approve" {
                "<p>Approved. The remediation runs within seconds; its outcome is notified and written to the audit trail.</p>"
            } else {
                "<p>Rejected. Nothing will run.</p>"
            };
            page(StatusCode::OK, &format!("{job}: {}", status.as_str()), text)
        }
        Err(e) => page(
            StatusCode::CONFLICT,
            "Not decided",
            &format!("<p>{}</p>", escape(&e.to_string())),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use trailwatch_rules::{Candidate, EvalScratch, RuleSet, builtin_sources};

    /// One HTTP/1.1 request; returns (status, body).
    async fn http(addr: std::net::SocketAddr, method: &str, target: &str) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.unwrap();
        let status = raw[9..12].parse().unwrap();
        let body = raw
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    #[tokio::test]
    async fn a_link_shows_the_plan_and_only_a_post_decides() {
        let dir = tempfile::tempdir().unwrap();
        // Cargo sets CARGO_PKG_NAME for every test process: it stands in for the key.
        let config = trailwatch_config::parse(
            "t.yaml",
            "remediation:\n  mode: approve\n  approval: {base_url: 'https://tw.example', secret_env: CARGO_PKG_NAME}\n",
        )
        .unwrap();
        let rem_config =
            trailwatch_remediate::RemediationConfig::from_section(config.section("remediation"))
                .unwrap();
        let store =
            trailwatch_remediate::Store::open(&dir.path().join("remediation.sqlite")).unwrap();
        let remediator = Arc::new(Remediator::new(rem_config, store, None, None));
        assert!(remediator.links_enabled());
        let rules = RuleSet::compile(&builtin_sources(), &config).unwrap();
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/eventbridge/aws-config-restricted-ssh-noncompliant.json"
        ))
        .unwrap();
        let event: serde_json::Value = serde_json::from_str(&text).unwrap();
        let event = trailwatch_rules::testing::event_from_value(&event, "t.json").unwrap();
        let mut alert = rules
            .evaluate(&event, &mut EvalScratch::default())
            .into_iter()
            .map(Candidate::into_alert)
            .find(|a| a.remediation.is_some())
            .unwrap();
        remediator.prepare(&mut alert);
        remediator.submit(std::slice::from_ref(&alert)).unwrap();
        let plan = alert.remediation.clone().unwrap();
        let job = plan.job_id.clone().unwrap();
        let approve = plan.approve_url.unwrap();
        let target = approve
            .strip_prefix("https://tw.example")
            .unwrap()
            .to_owned();

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let wake = Arc::new(tokio::sync::Notify::new());
        let server = tokio::spawn(serve(listener, remediator.clone(), wake, stop.clone()));

        let (status, body) = http(addr, "GET", &target).await;
        assert_eq!(status, 200, "{body}");
        assert!(
            body.contains("Approve and run") && body.contains("sg-0fedcba9876543210"),
            "{body}"
        );
        assert!(body.contains("ec2:RevokeSecurityGroupIngress"), "{body}");
        let status_of = || remediator.job(&job).unwrap().unwrap().status;
        assert_eq!(
            status_of(),
            JobStatus::AwaitingApproval,
            "a GET decides nothing"
        );

        // A link for reject cannot approve; a forged signature shows nothing.
        let forged = target.replace("/approve?", "/reject?");
        let (status, body) = http(addr, "POST", &forged).await;
        assert_eq!(status, 403);
        assert!(!body.contains("sg-0fedcba9876543210"), "{body}");
        let (status, _) = http(addr, "GET", &format!("/remediation/{job}/approve?sig=00")).await;
        assert_eq!(status, 403);
        assert_eq!(status_of(), JobStatus::AwaitingApproval);

        let (status, body) = http(addr, "POST", &target).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(status_of(), JobStatus::Queued);
        let (status, _) = http(addr, "POST", &target).await;
        assert_eq!(status, 409, "decided once");
        stop.cancel();
        server.await.unwrap().unwrap();
    }

    #[test]
    fn finds_the_signature() {
        assert_eq!(sig_of(Some("a=1&sig=abc")), "abc");
        assert_eq!(sig_of(None), "");
    }
}
