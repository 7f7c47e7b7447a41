//! A headless Chromium driven over the DevTools protocol: just enough of it
//! to load pages, run JavaScript, click, type and take screenshots.
//!
//! One WebSocket to the browser; the page is a target attached in "flat"
//! mode, so its commands travel on the same socket with a `sessionId`.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// How long Chromium may take to print its DevTools address.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one protocol command may take to be answered.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long Chromium may take to exit after `Browser.close`.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

pub type Result<T> = std::result::Result<T, String>;

pub struct Chromium {
    child: Child,
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
    /// Chromium's stderr, kept for failure messages.
    log: Arc<Mutex<Vec<String>>>,
    // Dropped after the browser: Chromium must not outlive its profile dir.
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts `binary` headless with a fresh profile and opens one page.
    pub fn launch(binary: &Path, window: (u32, u32)) -> Result<Chromium> {
        let profile = tempfile::tempdir().map_err(|e| format!("cannot create a profile dir: {e}"))?;
        let mut command = Command::new(binary);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--window-size={},{}", window.0, window.1))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // Its own process group, so that Drop can end the renderer and GPU
        // helpers too, not only the browser process.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        eprintln!("> {command:?}");
        let mut child = command.spawn().map_err(|e| format!("cannot start {}: {e}", binary.display()))?;

        // Chromium announces `DevTools listening on ws://...` on stderr; keep
        // draining stderr afterwards so that it never blocks on a full pipe.
        let log = Arc::new(Mutex::new(Vec::new()));
        let (address_tx, address_rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr is piped");
        let thread_log = Arc::clone(&log);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(std::result::Result::ok) {
                if let Some(rest) = line.split("DevTools listening on ").nth(1) {
                    let _ = address_tx.send(rest.trim().to_string());
                }
                thread_log.lock().unwrap().push(line);
            }
        });
        let address = match address_rx.recv_timeout(LAUNCH_TIMEOUT) {
            Ok(address) => address,
            Err(_) => {
                kill_group(&mut child);
                return Err(format!(
                    "{} printed no DevTools address within {LAUNCH_TIMEOUT:?}; stderr:\n{}",
                    binary.display(),
                    log.lock().unwrap().join("\n")
                ));
            }
        };

        let socket = match connect(&address) {
            Ok(socket) => socket,
            Err(e) => {
                kill_group(&mut child);
                return Err(e);
            }
        };
        let mut browser = Chromium { child, socket, session: String::new(), next_id: 0, log, _profile: profile };
        let target = browser.browser_call("Target.createTarget", json!({ "url": "about:blank" }))?;
        let target_id = target["targetId"].as_str().ok_or("no targetId")?.to_string();
        let attached =
            browser.browser_call("Target.attachToTarget", json!({ "targetId": target_id, "flatten": true }))?;
        browser.session = attached["sessionId"].as_str().ok_or("no sessionId")?.to_string();
        browser.call("Page.enable", json!({}))?;
        browser.call("Runtime.enable", json!({}))?;
        Ok(browser)
    }

    /// Chromium's stderr so far, for failure messages.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Sends a command to the page and returns its result.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        let session = self.session.clone();
        self.send(method, params, Some(&session))
    }

    fn browser_call(&mut self, method: &str, params: Value) -> Result<Value> {
        self.send(method, params, None)
    }

    fn send(&mut self, method: &str, params: Value, session: Option<&str>) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.socket.send(Message::text(message.to_string())).map_err(|e| format!("{method}: cannot send: {e}"))?;
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            if Instant::now() > deadline {
                return Err(format!("{method}: no answer within {COMMAND_TIMEOUT:?}"));
            }
            let message = match self.socket.read() {
                Ok(message) => message,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    continue;
                }
                Err(e) => return Err(format!("{method}: connection to Chromium failed: {e}")),
            };
            let Message::Text(text) = message else {
                continue;
            };
            let reply: Value = serde_json::from_str(&text).map_err(|e| format!("{method}: bad JSON: {e}"))?;
            // Events (no id) and answers to other commands are not ours.
            if reply["id"].as_u64() != Some(id) {
                continue;
            }
            if let Some(error) = reply.get("error") {
                return Err(format!("{method} failed: {error}"));
            }
            return Ok(reply["result"].clone());
        }
    }

    /// Evaluates `expression` in the page (promises awaited) and returns its
    /// value; a thrown exception is an error.
    pub fn eval(&mut self, expression: &str) -> Result<Value> {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        )?;
        if let Some(exception) = result.get("exceptionDetails") {
            return Err(format!("`{expression}` threw: {exception}"));
        }
        Ok(result["result"]["value"].clone())
    }

    /// Polls `expression` until it returns something truthy, and returns it.
    pub fn wait_for(&mut self, expression: &str, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let value = match self.eval(expression) {
                Ok(value) => value,
                // A page that is navigating away has no context to evaluate
                // in for a moment: that is "not yet", not a failure.
                Err(e) if is_navigating(&e) && Instant::now() <= deadline => {
                    thread::sleep(Duration::from_millis(100));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::Array(_) | Value::Object(_) => true,
            };
            if truthy {
                return Ok(value);
            }
            if Instant::now() > deadline {
                return Err(format!("`{expression}` still false after {timeout:?}"));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Loads `url` and waits until the document and its scripts are done.
    pub fn navigate(&mut self, url: &str, timeout: Duration) -> Result<()> {
        let result = self.call("Page.navigate", json!({ "url": url }))?;
        if let Some(error) = result.get("errorText") {
            return Err(format!("cannot load {url}: {error}"));
        }
        let expected = serde_json::to_string(url).unwrap();
        self.wait_for(&format!("document.readyState === 'complete' && location.href === {expected}"), timeout)?;
        Ok(())
    }

    /// A real mouse click in the middle of the first element `selector`
    /// matches, as a user's click would be (not `element.click()`).
    pub fn click(&mut self, selector: &str) -> Result<()> {
        let selector_js = serde_json::to_string(selector).unwrap();
        let rect = self.eval(&format!(
            "(() => {{ const e = document.querySelector({selector_js});
                if (!e) return null;
                e.scrollIntoView({{block: 'center'}});
                const r = e.getBoundingClientRect();
                return {{x: r.x + r.width / 2, y: r.y + r.height / 2}}; }})()"
        ))?;
        let (Some(x), Some(y)) = (rect["x"].as_f64(), rect["y"].as_f64()) else {
            return Err(format!("nothing to click: no element matches {selector}"));
        };
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            )?;
        }
        Ok(())
    }

    /// Types `text` key by key into the focused element (keydown, input,
    /// keyup for each character, as a keyboard would).
    pub fn type_text(&mut self, text: &str) -> Result<()> {
        for ch in text.chars() {
            let key = ch.to_string();
            self.call("Input.dispatchKeyEvent", json!({ "type": "keyDown", "key": key, "text": key }))?;
            self.call("Input.dispatchKeyEvent", json!({ "type": "keyUp", "key": key }))?;
        }
        Ok(())
    }

    /// Saves a PNG of the viewport to `path`.
    pub fn screenshot(&mut self, path: &Path) -> Result<()> {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }))?;
        let data = shot["data"].as_str().ok_or("screenshot without data")?;
        let png =
            data_encoding::BASE64.decode(data.as_bytes()).map_err(|e| format!("screenshot is not base64: {e}"))?;
        std::fs::write(path, png).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // Ask politely first so Chromium takes its helpers down with it;
        // then make sure, whatever state the browser is in.
        let _ = self.browser_call("Browser.close", json!({}));
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        kill_group(&mut self.child);
    }
}

/// SIGKILLs the process group `child` leads, then reaps `child`.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn connect(address: &str) -> Result<WebSocket<MaybeTlsStream<TcpStream>>> {
    let (socket, _) = tungstenite::connect(address).map_err(|e| format!("cannot connect to {address}: {e}"))?;
    // Reads wake up regularly so that every wait can check its deadline.
    if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
        stream
            .set_read_timeout(Some(Duration::from_millis(250)))
            .map_err(|e| format!("cannot set a read timeout: {e}"))?;
    }
    Ok(socket)
}

/// Whether an evaluation failed only because the page was being replaced
/// (Chrome's errors while a navigation tears the old document down).
fn is_navigating(error: &str) -> bool {
    ["Inspected target navigated or closed", "Execution context was destroyed", "Cannot find context with specified id"]
        .iter()
        .any(|m| error.contains(m))
}
