//! Email against a real SMTP server (aiosmtpd from the test venv).

mod common;

use std::time::Duration;

use common::{FAST_OUTBOX, Scratch, alert, drain};
use trailwatch_alert::Severity;
use trailwatch_notify::payload::email::{html, plain_text};
use trailwatch_testkit::SmtpServer;

/// A minimal MIME reader for the test: the parts of a multipart message as
/// (content type, decoded body).
fn parts(raw: &str) -> Vec<(String, String)> {
    let raw = raw.replace("\r\n", "\n");
    let boundary = raw
        .split("boundary=")
        .nth(1)
        .expect("a multipart boundary")
        .split(['\n', ';'])
        .next()
        .unwrap()
        .trim_matches('"')
        .to_owned();
    raw.split(&format!("--{boundary}"))
        .skip(1)
        .filter(|p| !p.starts_with("--"))
        .map(|part| {
            let (head, body) = part.trim_start_matches('\n').split_once("\n\n").unwrap();
            let header = |name: &str| {
                head.lines()
                    .find(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
                    .map(|l| l.split_once(':').unwrap().1.trim().to_owned())
                    .unwrap_or_default()
            };
            let body = body.strip_suffix('\n').unwrap_or(body);
            let decoded = match header("content-transfer-encoding").as_str() {
                "quoted-printable" => qp_decode(body),
                "base64" => {
                    use base64::Engine as _;
                    let joined: String = body.lines().collect();
                    String::from_utf8(
                        base64::engine::general_purpose::STANDARD
                            .decode(joined)
                            .unwrap(),
                    )
                    .unwrap()
                }
                _ => body.to_owned(),
            };
            (header("content-type"), decoded)
        })
        .collect()
}

fn qp_decode(text: &str) -> String {
    let text = text.replace("=\n", "");
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn multipart_message_arrives_after_temporary_failures() {
    let smtp = SmtpServer::start().unwrap();
    smtp.fail_next(2).unwrap();
    let s = Scratch::new();
    let n = s.notifier(&format!(
        "destinations:
  mail: {{ type: email, smtp_host: 127.0.0.1, port: {}, tls: none, from: 'Trailwatch <tw@example.com>', to: [sec@example.com, ops@example.com] }}
routes:
  - {{ to: [mail] }}
{FAST_OUTBOX}",
        smtp.port()
    ));
    let mut a = alert(1, Severity::High);
    a.title = "Root login from <unknown> & \"friends\" — ünïcode".into();
    a.body = "first line\nsecond <b>line</b>".into();
    n.enqueue(&a).unwrap();
    let stats = drain(&n).await;
    assert_eq!((stats.delivered, stats.retried), (1, 2));

    let messages = smtp.wait_for_messages(1, Duration::from_secs(5)).unwrap();
    assert_eq!(messages.len(), 1, "the two 451s were not stored");
    let m = &messages[0];
    assert_eq!(m.mail_from, "tw@example.com");
    assert_eq!(m.rcpt_tos, ["sec@example.com", "ops@example.com"]);
    let text = m.text();
    let id = trailwatch_notify::outbox::delivery_id("key-1", "mail");
    assert!(
        text.contains(&format!("Message-ID: <{id}@trailwatch>")),
        "{text}"
    );
    assert!(text.contains("multipart/alternative"), "{text}");
    let parts = parts(&text);
    assert_eq!(parts.len(), 2, "{text}");
    assert!(
        parts[0].0.starts_with("text/plain; charset=utf-8"),
        "{:?}",
        parts[0].0
    );
    assert!(
        parts[1].0.starts_with("text/html; charset=utf-8"),
        "{:?}",
        parts[1].0
    );
    assert_eq!(parts[0].1.trim_end(), plain_text(&a).trim_end());
    assert_eq!(parts[1].1.trim_end(), html(&a).trim_end());
    assert!(
        parts[1]
            .1
            .contains("&lt;unknown&gt; &amp; &quot;friends&quot;")
    );
    assert!(parts[1].1.contains("second &lt;b&gt;line&lt;/b&gt;"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_server_is_retried_until_dead() {
    let port = trailwatch_testkit::free_port().unwrap();
    let s = Scratch::new();
    let n = s.notifier(&format!(
        "destinations:
  mail: {{ type: email, smtp_host: 127.0.0.1, port: {port}, tls: none, from: tw@example.com, to: [sec@example.com] }}
routes:
  - {{ to: [mail] }}
outbox: {{ base_delay_ms: 5, max_attempts: 3 }}"
    ));
    n.enqueue(&alert(1, Severity::High)).unwrap();
    let stats = drain(&n).await;
    assert_eq!((stats.retried, stats.dead), (2, 1));
    assert!(n.dead_letters().unwrap()[0].last_error.contains("SMTP"));
}
