//! The Python-backed servers start, answer and stop.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use trailwatch_testkit::{MotoServer, SmtpServer};

/// Speaks just enough SMTP to send one message; returns the final reply line.
fn send(port: u16, body: &str) -> String {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut reply = || loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.as_bytes().get(3) == Some(&b' ') {
            return line.trim_end().to_owned();
        }
    };
    assert!(reply().starts_with("220"));
    for cmd in [
        "EHLO test",
        "MAIL FROM:<a@example.com>",
        "RCPT TO:<b@example.com>",
        "DATA",
    ] {
        write!(writer, "{cmd}\r\n").unwrap();
        let r = reply();
        assert!(r.starts_with('2') || r.starts_with('3'), "{cmd}: {r}");
    }
    write!(writer, "{body}\r\n.\r\n").unwrap();
    let result = reply();
    write!(writer, "QUIT\r\n").unwrap();
    result
}

#[test]
fn smtp_server_stores_messages_and_can_fail_temporarily() {
    let smtp = SmtpServer::start().unwrap();
    smtp.fail_next(1).unwrap();
    assert!(send(smtp.port(), "Subject: one\r\n\r\nhello").starts_with("451"));
    assert!(send(smtp.port(), "Subject: two\r\n\r\nhello again").starts_with("250"));
    let messages = smtp.wait_for_messages(1, Duration::from_secs(5)).unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].mail_from, "a@example.com");
    assert_eq!(messages[0].rcpt_tos, ["b@example.com"]);
    assert!(messages[0].text().contains("Subject: two"));
}

#[test]
fn moto_server_is_ready_and_resets() {
    let moto = MotoServer::start().unwrap();
    assert!(moto.endpoint_url().starts_with("http://127.0.0.1:"));
    moto.reset().unwrap();
    let port = moto.port();
    drop(moto);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "moto still listening after drop"
    );
}
