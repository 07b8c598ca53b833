//! A small SMTP server over real TCP for the tests. It records every message it
//! accepts and can be told, per recipient, to refuse, fail after DATA, drop the
//! connection or stall. Its gate holds every message at the end of DATA until the
//! test opens it, so a test can stop a sender while sends are surely in flight.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: Vec<u8>,
    /// MAIL FROM said BODY=8BITMIME.
    pub body_8bit: bool,
}

/// Parses a message as a mail client would.
pub fn parse_message(bytes: &[u8]) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default()
        .parse(bytes)
        .expect("a parsable message")
}

impl Received {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        parse_message(&self.data)
    }

    /// The plain-text part.
    pub fn text(&self) -> String {
        self.parsed().body_text(0).unwrap_or_default().to_string()
    }

    /// The first link in the plain-text part that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> String {
        let text = self.text();
        let start = text
            .find(prefix)
            .unwrap_or_else(|| panic!("no {prefix} link in {text}"));
        text[start..].split_whitespace().next().unwrap().to_string()
    }
}

/// What the server does when a recipient is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Accept,
    /// Reply to RCPT TO with this code and text.
    RcptReply(u16, String),
    /// Accept RCPT, then answer the end of DATA with this code and text.
    DataReply(u16, String),
    /// Close the connection instead of answering RCPT.
    Drop,
    /// Never answer RCPT.
    Stall,
    /// Take the whole message, then close the connection without a reply.
    DropAfterData,
}

type Rule = Box<dyn Fn(&str) -> Action + Send + Sync>;

#[derive(Clone)]
pub struct SmtpServer {
    pub port: u16,
    messages: Arc<Mutex<Vec<Received>>>,
    rule: Arc<Mutex<Rule>>,
    connections: Arc<AtomicUsize>,
    /// Sessions not yet ended.
    open: Arc<AtomicUsize>,
    /// Waited before answering the end of each message: a slow server.
    delay: Arc<Mutex<std::time::Duration>>,
    /// True while messages may pass the end of DATA.
    gate: Arc<watch::Sender<bool>>,
    /// Messages waiting at the closed gate.
    held: Arc<AtomicUsize>,
    /// Told of every message taken and every one held.
    changed: Arc<Notify>,
    /// The EHLO keywords offered.
    extensions: Arc<Mutex<Vec<String>>>,
    /// Set once the server is stopped: it listens no more, and each open
    /// session closes at its next command.
    stopped: Arc<watch::Sender<bool>>,
    /// The greeting, `220` unless a test makes the server refuse everyone.
    greeting: Arc<Mutex<String>>,
}

/// How long a test waits for the server before it fails.
const PATIENCE: Duration = Duration::from_secs(60);

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = SmtpServer {
            port,
            messages: Default::default(),
            rule: Arc::new(Mutex::new(Box::new(|_| Action::Accept))),
            connections: Default::default(),
            open: Default::default(),
            delay: Default::default(),
            gate: Arc::new(watch::channel(true).0),
            held: Default::default(),
            changed: Default::default(),
            extensions: Arc::new(Mutex::new(
                ["8BITMIME", "SMTPUTF8", "PIPELINING", "SIZE 10000000"]
                    .map(String::from)
                    .to_vec(),
            )),
            stopped: Arc::new(watch::channel(false).0),
            greeting: Arc::new(Mutex::new("220 test.local ESMTP ready".into())),
        };
        let s = server.clone();
        let mut stopped = server.stopped.subscribe();
        tokio::spawn(async move {
            loop {
                // Stopping drops the listener: new connections are refused.
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    _ = stopped.wait_for(|s| *s) => return,
                };
                let Ok((stream, _)) = accepted else { return };
                s.connections.fetch_add(1, Ordering::SeqCst);
                s.open.fetch_add(1, Ordering::SeqCst);
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = s.session(stream).await;
                    s.open.fetch_sub(1, Ordering::SeqCst);
                    s.changed.notify_waiters();
                });
            }
        });
        server
    }

    /// Stops the server as a crashed relay would: connections are refused, and
    /// each open session closes at its next command, without a reply.
    pub fn stop(&self) {
        self.stopped.send_replace(true);
    }

    /// Greets every connection with this line instead of 220: `421 …` refuses
    /// everyone from the start.
    pub fn set_greeting(&self, line: &str) {
        *self.greeting.lock().unwrap() = line.to_string();
    }

    /// Decides, per recipient address, how to answer.
    pub fn set_rule(&self, rule: impl Fn(&str) -> Action + Send + Sync + 'static) {
        *self.rule.lock().unwrap() = Box::new(rule);
    }

    /// Offers these EHLO keywords (by default 8BITMIME, SMTPUTF8, PIPELINING, SIZE).
    pub fn set_extensions(&self, keywords: &[&str]) {
        *self.extensions.lock().unwrap() = keywords.iter().map(|k| k.to_string()).collect();
    }

    /// Makes every message take at least `delay` to be accepted.
    pub fn set_delay(&self, delay: std::time::Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    /// From now on, every message waits at the end of DATA until [`Self::open_gate`].
    pub fn close_gate(&self) {
        self.gate.send_replace(false);
    }

    pub fn open_gate(&self) {
        self.gate.send_replace(true);
    }

    /// Messages waiting at the closed gate now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// Waits (bounded) until `held` messages wait at the gate.
    pub async fn wait_held(&self, held: usize) {
        self.wait_until(|s| s.held() >= held, &format!("{held} held messages"))
            .await;
    }

    /// Waits (bounded) until the server has taken `n` messages; a sender runs meanwhile.
    pub async fn wait_for(&self, n: usize) {
        self.wait_until(|s| s.len() >= n, &format!("{n} messages"))
            .await;
    }

    /// Waits (bounded) until every session has ended: after a client is killed,
    /// whatever it had sent in full has been taken.
    pub async fn wait_idle(&self) {
        self.wait_until(
            |s| s.open.load(Ordering::SeqCst) == 0,
            "every session to end",
        )
        .await;
    }

    async fn wait_until(&self, done: impl Fn(&SmtpServer) -> bool, what: &str) {
        let waited = tokio::time::timeout(PATIENCE, async {
            loop {
                let changed = self.changed.notified();
                if done(self) {
                    return;
                }
                changed.await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "waited {PATIENCE:?} for {what}; the server has {} messages and holds {}",
            self.len(),
            self.held()
        );
    }

    pub fn len(&self) -> usize {
        self.messages.lock().unwrap().len()
    }

    pub fn messages(&self) -> Vec<Received> {
        self.messages.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.messages.lock().unwrap().clear();
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Messages received per recipient address.
    pub fn count_for(&self, address: &str) -> usize {
        self.messages()
            .iter()
            .filter(|m| m.rcpt_to.iter().any(|r| r == address))
            .count()
    }

    async fn session(&self, stream: TcpStream) -> std::io::Result<()> {
        // Replies go out one by one: without this, Nagle's algorithm holds the reply
        // to a pipelined RCPT until the client's delayed ACK, 40 ms later.
        stream.set_nodelay(true)?;
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        let greeting = self.greeting.lock().unwrap().clone();
        write
            .write_all(format!("{greeting}\r\n").as_bytes())
            .await?;
        if !greeting.starts_with("220") {
            return Ok(());
        }
        let mut mail_from = String::new();
        let mut rcpt_to = Vec::new();
        let mut data_reply: Option<(u16, String)> = None;
        let mut drop_after_data = false;
        let mut body_8bit = false;
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            if *self.stopped.borrow() {
                return Ok(());
            }
            let command = line.trim_end().to_string();
            let upper = command.to_ascii_uppercase();
            if upper.starts_with("EHLO") {
                let mut reply = String::from("250-test.local\r\n");
                let keywords = self.extensions.lock().unwrap().clone();
                for (i, k) in keywords.iter().enumerate() {
                    let sep = if i + 1 == keywords.len() { ' ' } else { '-' };
                    reply.push_str(&format!("250{sep}{k}\r\n"));
                }
                write.write_all(reply.as_bytes()).await?;
            } else if upper.starts_with("HELO") {
                write.write_all(b"250 test.local\r\n").await?;
            } else if upper.starts_with("MAIL FROM:") {
                mail_from = address_of(&command[10..]);
                body_8bit = upper.contains("BODY=8BITMIME");
                rcpt_to.clear();
                data_reply = None;
                drop_after_data = false;
                write.write_all(b"250 2.1.0 Ok\r\n").await?;
            } else if upper.starts_with("RCPT TO:") {
                let rcpt = address_of(&command[8..]);
                let action = (self.rule.lock().unwrap())(&rcpt);
                match action {
                    Action::Accept => {
                        rcpt_to.push(rcpt);
                        write.write_all(b"250 2.1.5 Ok\r\n").await?;
                    }
                    Action::RcptReply(code, text) => {
                        write
                            .write_all(format!("{code} {text}\r\n").as_bytes())
                            .await?;
                    }
                    Action::DataReply(code, text) => {
                        rcpt_to.push(rcpt);
                        data_reply = Some((code, text));
                        write.write_all(b"250 2.1.5 Ok\r\n").await?;
                    }
                    Action::Drop => return Ok(()),
                    Action::DropAfterData => {
                        rcpt_to.push(rcpt);
                        drop_after_data = true;
                        write.write_all(b"250 2.1.5 Ok\r\n").await?;
                    }
                    Action::Stall => {
                        std::future::pending::<()>().await;
                    }
                }
            } else if upper == "DATA" {
                if rcpt_to.is_empty() {
                    write
                        .write_all(b"554 5.5.1 No valid recipients\r\n")
                        .await?;
                    continue;
                }
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = Vec::new();
                loop {
                    let mut raw = Vec::new();
                    if lines.read_until(b'\n', &mut raw).await? == 0 {
                        return Ok(());
                    }
                    if raw == b".\r\n" {
                        break;
                    }
                    // Undo dot-stuffing.
                    let raw = if raw.starts_with(b"..") {
                        raw[1..].to_vec()
                    } else {
                        raw
                    };
                    data.extend_from_slice(&raw);
                }
                if drop_after_data {
                    return Ok(());
                }
                let delay = *self.delay.lock().unwrap();
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let mut gate = self.gate.subscribe();
                if !*gate.borrow_and_update() {
                    self.held.fetch_add(1, Ordering::SeqCst);
                    self.changed.notify_waiters();
                    let _ = gate.wait_for(|open| *open).await;
                    self.held.fetch_sub(1, Ordering::SeqCst);
                }
                match data_reply.take() {
                    Some((code, text)) => {
                        write
                            .write_all(format!("{code} {text}\r\n").as_bytes())
                            .await?;
                    }
                    None => {
                        let n = {
                            let mut messages = self.messages.lock().unwrap();
                            messages.push(Received {
                                mail_from: mail_from.clone(),
                                rcpt_to: rcpt_to.clone(),
                                data,
                                body_8bit,
                            });
                            messages.len()
                        };
                        self.changed.notify_waiters();
                        write
                            .write_all(format!("250 2.0.0 Ok: queued as T{n}\r\n").as_bytes())
                            .await?;
                    }
                }
                rcpt_to.clear();
            } else if upper == "RSET" {
                rcpt_to.clear();
                write.write_all(b"250 2.0.0 Ok\r\n").await?;
            } else if upper == "NOOP" {
                write.write_all(b"250 2.0.0 Ok\r\n").await?;
            } else if upper == "QUIT" {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            } else {
                write
                    .write_all(b"502 5.5.2 Command not recognized\r\n")
                    .await?;
            }
        }
    }
}

fn address_of(arg: &str) -> String {
    let arg = arg.trim();
    let inner = arg
        .strip_prefix('<')
        .and_then(|a| a.split_once('>'))
        .map(|(a, _)| a)
        .unwrap_or(arg);
    inner.to_string()
}
