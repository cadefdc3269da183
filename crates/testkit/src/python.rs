//! Servers that run as Python child processes from the test venv: aiosmtpd and moto.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{TestkitError, free_port};

/// The venv directory: `$TRAILWATCH_VENV`, or `$HOME/.cache/trailwatch/venv`.
pub fn venv_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TRAILWATCH_VENV") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    Path::new(&home).join(".cache/trailwatch/venv")
}

/// The Python interpreter to use: the venv's, else `python3` on `PATH`.
pub fn python_path() -> PathBuf {
    let venv_python = venv_dir().join("bin/python");
    if venv_python.exists() {
        venv_python
    } else {
        PathBuf::from("python3")
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TestkitError {
    let what = what.into();
    move |source| TestkitError::Io { what, source }
}

/// A child process with its output going to files in a temporary directory.
struct ChildServer {
    name: &'static str,
    child: Child,
    dir: tempfile::TempDir,
}

impl ChildServer {
    fn spawn(name: &'static str, mut command: Command) -> Result<ChildServer, TestkitError> {
        let dir = tempfile::tempdir().map_err(io_err("creating a temporary directory"))?;
        let stdout = std::fs::File::create(dir.path().join("stdout.log"))
            .map_err(io_err("creating stdout.log"))?;
        let stderr = std::fs::File::create(dir.path().join("stderr.log"))
            .map_err(io_err("creating stderr.log"))?;
        command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .current_dir(dir.path());
        let child = command.spawn().map_err(|source| TestkitError::Io {
            what: format!(
                "spawning {name} ({:?}); is the test venv installed? Run scripts/test-deps.sh (venv: {})",
                command.get_program(),
                venv_dir().display()
            ),
            source,
        })?;
        Ok(ChildServer { name, child, dir })
    }

    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
        let start = text.len().saturating_sub(2000);
        let start = (start..=text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text[start..].trim().to_owned()
    }

    /// Polls `probe` until it succeeds, the child exits, or `timeout` passes.
    fn wait_ready(
        &mut self,
        timeout: Duration,
        mut probe: impl FnMut() -> Result<(), String>,
    ) -> Result<(), TestkitError> {
        let deadline = Instant::now() + timeout;
        let mut last: String;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(TestkitError::ChildExited {
                    server: self.name,
                    status: status.to_string(),
                    venv: venv_dir().display().to_string(),
                    stderr: self.stderr_tail(),
                });
            }
            match probe() {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
            if Instant::now() >= deadline {
                return Err(TestkitError::NotReady {
                    server: self.name,
                    seconds: timeout.as_secs(),
                    detail: format!("{last}; stderr: {}", self.stderr_tail()),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.0 exchange with a loopback server; returns (status, body).
fn http_raw(port: u16, method: &str, path: &str) -> Result<(u16, String), String> {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// The moto AWS emulator (`moto_server`) on a free loopback port.
pub struct MotoServer {
    port: u16,
    _server: ChildServer,
}

impl MotoServer {
    /// Starts `moto_server -H 127.0.0.1 -p PORT` from the venv (or `python3 -m moto.server`)
    /// and waits up to 60 s for `GET /moto-api/` to answer 200.
    pub fn start() -> Result<MotoServer, TestkitError> {
        let port = free_port()?;
        let moto_bin = venv_dir().join("bin/moto_server");
        let mut command = if moto_bin.exists() {
            Command::new(moto_bin)
        } else {
            let mut c = Command::new(python_path());
            c.args(["-m", "moto.server"]);
            c
        };
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let mut server = ChildServer::spawn("moto_server", command)?;
        server.wait_ready(Duration::from_secs(60), || {
            match http_raw(port, "GET", "/moto-api/")? {
                (200, _) => Ok(()),
                (status, _) => Err(format!("GET /moto-api/ answered {status}")),
            }
        })?;
        Ok(MotoServer {
            port,
            _server: server,
        })
    }

    /// `http://127.0.0.1:PORT`, the endpoint URL for the AWS SDK.
    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Wipes all emulated AWS state (`POST /moto-api/reset`).
    pub fn reset(&self) -> Result<(), TestkitError> {
        match http_raw(self.port, "POST", "/moto-api/reset") {
            Ok((200, _)) => Ok(()),
            Ok((status, body)) => Err(TestkitError::NotReady {
                server: "moto_server",
                seconds: 0,
                detail: format!("reset answered {status}: {body}"),
            }),
            Err(detail) => Err(TestkitError::NotReady {
                server: "moto_server",
                seconds: 0,
                detail,
            }),
        }
    }
}

const SMTP_HANDLER: &str = r#"
import json, os, sys, threading
from aiosmtpd.controller import Controller

class Saver:
    def __init__(self, out):
        self.out = out
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        fail = os.path.join(self.out, "fail_next")
        try:
            with open(fail) as f:
                left = int(f.read().strip() or 0)
        except FileNotFoundError:
            left = 0
        if left > 0:
            with open(fail, "w") as f:
                f.write(str(left - 1))
            return "451 4.3.0 Injected temporary failure"
        self.n += 1
        base = os.path.join(self.out, "%06d" % self.n)
        with open(base + ".json", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}, f)
        with open(base + ".tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(base + ".tmp", base + ".eml")
        return "250 Message accepted for delivery"

host, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
controller = Controller(Saver(out), hostname=host, port=port)
controller.start()
print("READY", flush=True)
threading.Event().wait()
"#;

/// One message the SMTP server accepted.
#[derive(Debug, Clone)]
pub struct SmtpMessage {
    /// The envelope sender (`MAIL FROM`).
    pub mail_from: String,
    /// The envelope recipients (`RCPT TO`).
    pub rcpt_tos: Vec<String>,
    /// The message bytes exactly as received after `DATA`.
    pub raw: Vec<u8>,
}

impl SmtpMessage {
    /// The raw message as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

/// An aiosmtpd server (plain SMTP, no TLS or AUTH) on a free loopback port that writes
/// every accepted message to a directory.
pub struct SmtpServer {
    port: u16,
    maildir: tempfile::TempDir,
    _server: ChildServer,
}

impl SmtpServer {
    /// Starts aiosmtpd with the venv's Python and waits up to 30 s for its `220` banner.
    pub fn start() -> Result<SmtpServer, TestkitError> {
        let maildir = tempfile::tempdir().map_err(io_err("creating the mail directory"))?;
        let script = maildir.path().join("handler.py");
        std::fs::write(&script, SMTP_HANDLER).map_err(io_err("writing handler.py"))?;
        let port = free_port()?;
        let mut command = Command::new(python_path());
        command
            .arg(&script)
            .arg("127.0.0.1")
            .arg(port.to_string())
            .arg(maildir.path());
        let mut server = ChildServer::spawn("aiosmtpd", command)?;
        server.wait_ready(Duration::from_secs(30), || {
            let mut stream =
                TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .map_err(|e| e.to_string())?;
            let mut banner = [0u8; 3];
            stream
                .read_exact(&mut banner)
                .map_err(|e| format!("banner: {e}"))?;
            let _ = stream.write_all(b"QUIT\r\n");
            if &banner == b"220" {
                Ok(())
            } else {
                Err(format!("banner {:?}", String::from_utf8_lossy(&banner)))
            }
        })?;
        Ok(SmtpServer {
            port,
            maildir,
            _server: server,
        })
    }

    /// The port (host is 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Answers `451` (temporary failure) to the next `count` messages.
    pub fn fail_next(&self, count: u32) -> Result<(), TestkitError> {
        std::fs::write(self.maildir.path().join("fail_next"), count.to_string())
            .map_err(io_err("writing fail_next"))
    }

    /// The messages accepted so far, in arrival order.
    pub fn messages(&self) -> Result<Vec<SmtpMessage>, TestkitError> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.maildir.path())
            .map_err(io_err("reading the mail directory"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        let mut out = Vec::new();
        for eml in names {
            let raw = std::fs::read(&eml).map_err(io_err(format!("reading {}", eml.display())))?;
            let meta = std::fs::read_to_string(eml.with_extension("json"))
                .map_err(io_err(format!("reading the envelope of {}", eml.display())))?;
            let meta: serde_json::Value = serde_json::from_str(&meta).unwrap_or_default();
            out.push(SmtpMessage {
                mail_from: meta["mail_from"].as_str().unwrap_or_default().to_owned(),
                rcpt_tos: meta["rcpt_tos"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                raw,
            });
        }
        Ok(out)
    }

    /// Waits until at least `count` messages arrived or `timeout` passes.
    pub fn wait_for_messages(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<SmtpMessage>, TestkitError> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages()?;
            if messages.len() >= count || Instant::now() >= deadline {
                return Ok(messages);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
