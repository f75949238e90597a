//! A minimal W3C WebDriver client: enough to open pages, find elements, click, type and read.
//! Each [`Browser`] starts its own driver process on a free port and its own profile.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use crate::process::{free_port, wait_until, ChildGuard};

/// The browsers the tests drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Debian's `chromium` through `chromedriver`.
    Chromium,
    /// Debian's `firefox-esr` through `geckodriver` (from crates.io).
    Firefox,
}

/// The W3C element reference key.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    session_url: String,
    // Fields drop in order: the driver (and its browser) go before their folder is removed.
    _driver: ChildGuard,
    _profile: tempfile::TempDir,
}

#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    pub async fn start(engine: Engine) -> anyhow::Result<Self> {
        let port = free_port()?;
        let profile = tempfile::tempdir()?;
        let mut driver = match engine {
            Engine::Chromium => {
                let mut cmd = Command::new("chromedriver");
                // Chromium's own scratch folders (~80 MB a run) go inside the profile, removed with it.
                let scratch = profile.path().join("tmp");
                std::fs::create_dir_all(&scratch)?;
                cmd.arg(format!("--port={port}"))
                    .arg("--silent")
                    .env("TMPDIR", &scratch)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                ChildGuard::spawn("chromedriver", &mut cmd)?
            }
            Engine::Firefox => {
                let mut cmd = Command::new("geckodriver");
                // Firefox is chatty on stderr about the closed network; keep the test output readable.
                cmd.args(["--port", &port.to_string(), "--log", "fatal"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                ChildGuard::spawn("geckodriver", &mut cmd)?
            }
        };
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        wait_until("the WebDriver server", Duration::from_secs(20), || {
            let http = http.clone();
            let url = format!("{base}/status");
            async move { http.get(url).send().await.is_ok() }
        })
        .await?;
        driver.check_alive()?;
        let capabilities = match engine {
            Engine::Chromium => json!({
                "browserName": "chrome",
                "goog:loggingPrefs": { "browser": "ALL" },
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--no-first-run", "--disable-quic",
                        format!("--user-data-dir={}", profile.path().display()),
                    ]
                }
            }),
            Engine::Firefox => json!({
                "browserName": "firefox",
                "moz:firefoxOptions": {
                    "binary": "/usr/bin/firefox-esr",
                    "args": ["-headless", "-profile", profile.path().display().to_string()]
                }
            }),
        };
        let response: Value = http
            .post(format!("{base}/session"))
            .json(&json!({ "capabilities": { "alwaysMatch": capabilities } }))
            .send()
            .await?
            .json()
            .await?;
        let session = response["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("the driver refused a session: {response}"))?;
        Ok(Self {
            http,
            session_url: format!("{base}/session/{session}"),
            _profile: profile,
            _driver: driver,
        })
    }

    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.session_url);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response: Value =
            request.send().await?.json().await.with_context(|| format!("{url}: not JSON"))?;
        if let Some(error) = response["value"]["error"].as_str() {
            bail!("WebDriver {path}: {error}: {}", response["value"]["message"]);
        }
        Ok(response["value"].clone())
    }

    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.command(reqwest::Method::POST, "/url", Some(json!({ "url": url }))).await.map(drop)
    }

    pub async fn current_url(&self) -> anyhow::Result<String> {
        let value = self.command(reqwest::Method::GET, "/url", None).await?;
        value.as_str().map(str::to_owned).ok_or_else(|| anyhow!("no URL"))
    }

    /// With `SCREENSHOT_DIR` set, saves the page as `<dir>/<name>.png` (for a person to look at
    /// what a test saw); otherwise does nothing.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<()> {
        use base64::Engine as _;
        let Some(dir) = std::env::var_os("SCREENSHOT_DIR") else { return Ok(()) };
        // Tall enough for a whole page of the console.
        self.command(reqwest::Method::POST, "/window/rect", Some(json!({ "width": 1280, "height": 1800 })))
            .await?;
        let value = self.command(reqwest::Method::GET, "/screenshot", None).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().ok_or_else(|| anyhow!("no screenshot"))?)?;
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("{name}.png")), png)?;
        Ok(())
    }

    /// Chooses, among the cards a page lists (several cards in the readers), the one whose label
    /// starts with `name` ("Lee Example’s card", "A blank card").
    pub async fn choose_card(&self, name: &str) -> anyhow::Result<()> {
        let script = format!(
            "const l = Array.from(document.querySelectorAll('[data-testid=card-choice] label')).find(l => l.textContent.startsWith({name:?})); \
             if (!l) return false; l.click(); return true;"
        );
        anyhow::ensure!(self.execute(&script).await? == true, "no card named {name:?} to choose");
        Ok(())
    }

    pub async fn find(&self, css: &str) -> anyhow::Result<Element> {
        let value = self
            .command(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await?;
        value[ELEMENT_KEY]
            .as_str()
            .map(|id| Element(id.to_owned()))
            .ok_or_else(|| anyhow!("{css}: no element"))
    }

    pub async fn text(&self, element: &Element) -> anyhow::Result<String> {
        let value = self.command(reqwest::Method::GET, &format!("/element/{}/text", element.0), None).await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    pub async fn click(&self, element: &Element) -> anyhow::Result<()> {
        self.command(reqwest::Method::POST, &format!("/element/{}/click", element.0), Some(json!({})))
            .await
            .map(drop)
    }

    pub async fn type_into(&self, element: &Element, text: &str) -> anyhow::Result<()> {
        self.command(
            reqwest::Method::POST,
            &format!("/element/{}/value", element.0),
            Some(json!({ "text": text })),
        )
        .await
        .map(drop)
    }

    /// Replaces the text of the field matching `css`, as a person typing would.
    pub async fn fill(&self, css: &str, text: &str) -> anyhow::Result<()> {
        self.clear(css).await?;
        let element = self.find(css).await?;
        self.type_into(&element, text).await
    }

    /// Clicks the element matching `css`.
    pub async fn click_on(&self, css: &str) -> anyhow::Result<()> {
        let element = self.find(css).await?;
        self.click(&element).await
    }

    /// Empties the field matching `css` the way a person deleting its text would (an `input`
    /// event follows, so the page's state sees it; WebDriver's own clear sends none).
    pub async fn clear(&self, css: &str) -> anyhow::Result<()> {
        let css = serde_json::to_string(css)?;
        self.execute(&format!(
            "const e = document.querySelector({css}); e.value = ''; e.dispatchEvent(new Event('input', {{ bubbles: true }}));"
        ))
        .await
        .map(drop)
    }

    pub async fn execute(&self, script: &str) -> anyhow::Result<Value> {
        self.command(reqwest::Method::POST, "/execute/sync", Some(json!({ "script": script, "args": [] })))
            .await
    }

    /// Waits until the element matching `css` exists and its text contains `expected`.
    pub async fn wait_for_text(&self, css: &str, expected: &str) -> anyhow::Result<String> {
        let mut last = String::new();
        for _ in 0..200 {
            if let Ok(element) = self.find(css).await {
                last = self.text(&element).await.unwrap_or_default();
                if last.contains(expected) {
                    return Ok(last);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let url = self.current_url().await.unwrap_or_default();
        let body = self.execute("return document.documentElement.outerHTML").await.unwrap_or_default();
        let body: String = body.as_str().unwrap_or_default().chars().take(2000).collect();
        // Chromium's console (ignored where the driver has no log endpoint).
        let console = self
            .command(reqwest::Method::POST, "/se/log", Some(json!({ "type": "browser" })))
            .await
            .map(|v| v.to_string())
            .unwrap_or_default();
        bail!("{css} never showed {expected:?}; last text: {last:?}\nat {url}:\n{body}\nconsole: {console}")
    }

    /// Runs axe-core (from `frontend/node_modules`, installed by the test command) on the page
    /// and returns its serious and critical violations, and any heading that skips a level, one
    /// line each.
    pub async fn accessibility_violations(&self) -> anyhow::Result<Vec<String>> {
        let path = crate::workspace_root().join("frontend/node_modules/axe-core/axe.min.js");
        let source = std::fs::read_to_string(&path)
            .with_context(|| format!("{} is missing: run scripts/test.sh (npm ci)", path.display()))?;
        self.execute(&format!("{source}\nreturn true;")).await?;
        // WebDriver waits for a returned promise.
        let found = self
            .execute(
                "return axe.run(document, { resultTypes: ['violations'] }).then(r => r.violations \
                   .filter(v => v.impact === 'serious' || v.impact === 'critical' || v.id === 'heading-order') \
                   .map(v => v.impact + ' ' + v.id + ': ' + v.help + ' — ' + v.nodes.map(n => n.target.join(' ')).join(', ')));",
            )
            .await?;
        Ok(found
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default())
    }

    /// Fails with the list if axe finds serious or critical problems on the page.
    pub async fn assert_accessible(&self, page: &str) -> anyhow::Result<()> {
        let violations = self.accessibility_violations().await?;
        anyhow::ensure!(
            violations.is_empty(),
            "accessibility problems on {page}:\n{}",
            violations.join("\n")
        );
        Ok(())
    }

    /// Ends the session (the driver process itself is killed on drop).
    pub async fn quit(self) -> anyhow::Result<()> {
        self.http.delete(&self.session_url).send().await?;
        Ok(())
    }
}
