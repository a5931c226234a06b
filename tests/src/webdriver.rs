//! A minimal W3C WebDriver client driving Debian's headless Chromium through chromedriver, for
//! the browser test. Only what the test needs: navigate, find, click, read text.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Paths of the browser and its driver (Debian's `chromium` and `chromium-driver` packages).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// See [`CHROMIUM`].
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver process and one browser session; both end when dropped.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    profile: std::path::PathBuf,
}

/// A page element.
#[derive(Debug, Clone)]
pub struct Element(String);

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0)).and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl Browser {
    /// Starts chromedriver on loopback and a headless Chromium session.
    ///
    /// # Errors
    ///
    /// When Chromium or chromedriver is missing or does not start.
    pub async fn start() -> Result<Self, String> {
        for path in [CHROMIUM, CHROMEDRIVER] {
            if !std::path::Path::new(path).exists() {
                return Err(format!(
                    "{path} is missing: install Debian's chromium and chromium-driver (bash .ci/run does)"
                ));
            }
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start chromedriver: {e}"))?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder().no_proxy().build().map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            if Instant::now() > deadline {
                return Err("chromedriver did not start".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = std::env::temp_dir().join(format!("azad-chromium-{}-{port}", std::process::id()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-extensions", "--window-size=1200,900", format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let mut browser = Self { driver, base, session: String::new(), http, profile };
        let created = browser.command(reqwest::Method::POST, "/session", Some(caps)).await?;
        browser.session = created["sessionId"].as_str().ok_or("no session id")?.to_owned();
        Ok(browser)
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let value: Value = response.json().await.map_err(|e| e.to_string())?;
        let value = value.get("value").cloned().unwrap_or(Value::Null);
        if let Some(error) = value.get("error").and_then(Value::as_str) {
            return Err(format!("{error}: {}", value.get("message").and_then(Value::as_str).unwrap_or_default()));
        }
        Ok(value)
    }

    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens a URL.
    ///
    /// # Errors
    ///
    /// A WebDriver error.
    pub async fn goto(&self, url: &str) -> Result<(), String> {
        self.command(reqwest::Method::POST, &self.path("/url"), Some(json!({ "url": url }))).await.map(drop)
    }

    /// The current URL.
    ///
    /// # Errors
    ///
    /// A WebDriver error.
    pub async fn url(&self) -> Result<String, String> {
        Ok(self.command(reqwest::Method::GET, &self.path("/url"), None).await?.as_str().unwrap_or_default().to_owned())
    }

    /// Waits (up to 15 s) for an element matching a CSS selector.
    ///
    /// # Errors
    ///
    /// When no such element appears.
    pub async fn find(&self, css: &str) -> Result<Element, String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found = self
                .command(
                    reqwest::Method::POST,
                    &self.path("/element"),
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            if let Ok(v) = found
                && let Some(id) = v.get(ELEMENT).and_then(Value::as_str)
            {
                return Ok(Element(id.to_owned()));
            }
            if Instant::now() > deadline {
                let url = self.url().await.unwrap_or_default();
                return Err(format!("no element `{css}` on {url}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks an element.
    ///
    /// # Errors
    ///
    /// A WebDriver error.
    pub async fn click(&self, element: &Element) -> Result<(), String> {
        self.command(reqwest::Method::POST, &self.path(&format!("/element/{}/click", element.0)), Some(json!({})))
            .await
            .map(drop)
    }

    /// The visible text of an element.
    ///
    /// # Errors
    ///
    /// A WebDriver error.
    pub async fn text(&self, element: &Element) -> Result<String, String> {
        Ok(self
            .command(reqwest::Method::GET, &self.path(&format!("/element/{}/text", element.0)), None)
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Finds an element and returns its text.
    ///
    /// # Errors
    ///
    /// When it is missing.
    pub async fn text_of(&self, css: &str) -> Result<String, String> {
        let element = self.find(css).await?;
        self.text(&element).await
    }

    /// Finds an element and clicks it.
    ///
    /// # Errors
    ///
    /// When it is missing.
    pub async fn click_on(&self, css: &str) -> Result<(), String> {
        let element = self.find(css).await?;
        self.click(&element).await
    }

    /// Waits (up to 15 s) until the text of the element matching `css` satisfies `done`, and
    /// returns it (for pages that update in place, like Swagger UI's response panel).
    ///
    /// # Errors
    ///
    /// When it never does, with the last text seen.
    pub async fn wait_for_text(&self, css: &str, done: impl Fn(&str) -> bool) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut last = String::new();
        loop {
            if let Ok(text) = self.text_of(css).await {
                if done(&text) {
                    return Ok(text);
                }
                last = text;
            }
            if Instant::now() > deadline {
                return Err(format!("`{css}` still reads {last:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs a script in the page (`return …` gives its value).
    ///
    /// # Errors
    ///
    /// A WebDriver error (a script exception included).
    pub async fn execute(&self, script: &str) -> Result<Value, String> {
        self.command(reqwest::Method::POST, &self.path("/execute/sync"), Some(json!({"script": script, "args": []})))
            .await
    }

    /// The handles of the open windows (tabs and pop-ups).
    ///
    /// # Errors
    ///
    /// A WebDriver error.
    pub async fn windows(&self) -> Result<Vec<String>, String> {
        let v = self.command(reqwest::Method::GET, &self.path("/window/handles"), None).await?;
        Ok(v.as_array().into_iter().flatten().filter_map(|h| h.as_str().map(str::to_owned)).collect())
    }

    /// The current window's handle.
    ///
    /// # Errors
    ///
    /// A WebDriver error.
    pub async fn window(&self) -> Result<String, String> {
        Ok(self
            .command(reqwest::Method::GET, &self.path("/window"), None)
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Waits (up to 15 s) for a window other than `known` to open, and switches to it.
    ///
    /// # Errors
    ///
    /// When none opens.
    pub async fn switch_to_new_window(&self, known: &[String]) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(handle) = self.windows().await?.into_iter().find(|h| !known.contains(h)) {
                self.switch_to_window(&handle).await?;
                return Ok(handle);
            }
            if Instant::now() > deadline {
                return Err("no new window opened".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Makes `handle` the window that commands act on.
    ///
    /// # Errors
    ///
    /// A WebDriver error.
    pub async fn switch_to_window(&self, handle: &str) -> Result<(), String> {
        self.command(reqwest::Method::POST, &self.path("/window"), Some(json!({ "handle": handle }))).await.map(drop)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let url = format!("{}/session/{}", self.base, self.session);
            // Best effort: a blocking delete from a runtime thread is not allowed; chromedriver
            // ends the browser when it is killed anyway.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
                if let Ok(rt) = rt {
                    let _ = rt.block_on(reqwest::Client::new().delete(url).send());
                }
            })
            .join();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
