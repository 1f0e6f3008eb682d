//! Starts chromedriver on a free port and opens Chromium sessions through it.
//! Every browser gets a fresh profile directory; everything started here is
//! stopped by its process id when the test ends, whether it passed or not.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tempfile::TempDir;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A running chromedriver; killed on drop.
pub struct Driver {
    process: Child,
    url: String,
}

enum Scripts {
    On,
    Off,
}

/// A Chromium session with its own profile.
pub struct Browser {
    pub client: Client,
    profile: TempDir,
}

/// Whether the browser tests can run here. Prints a loud SKIP when not,
/// and fails instead under LATCHKEY_TEST_STRICT=1.
pub fn available(test: &str) -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "{test}: {} missing (apt-get install chromium chromium-driver)",
        missing.join(" and ")
    );
    if std::env::var("LATCHKEY_TEST_STRICT").as_deref() == Ok("1") {
        panic!("{message}");
    }
    eprintln!("\n*** SKIP {message} ***\n");
    false
}

impl Driver {
    pub async fn start() -> Self {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let process = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver {
            process,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        driver
    }

    pub async fn browser(&self) -> Browser {
        self.open_browser(Scripts::On).await
    }

    /// A Chromium that runs no page script at all, as with JavaScript
    /// turned off in its settings. WebDriver's own scripts still run.
    pub async fn browser_without_scripts(&self) -> Browser {
        self.open_browser(Scripts::Off).await
    }

    async fn open_browser(&self, scripts: Scripts) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        // 2 is "block", as the setting "Don't allow sites to use JavaScript".
        let prefs = match scripts {
            Scripts::On => json!({}),
            Scripts::Off => json!({ "profile.managed_default_content_settings.javascript": 2 }),
        };
        let mut capabilities = Capabilities::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": prefs,
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session starts");
        Browser { client, profile }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver takes its Chromium processes with it.
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for Browser {
    /// A test that panicked never reached `close`: stop this browser's
    /// Chromium processes, found by their unique profile directory.
    fn drop(&mut self) {
        let marker = format!("--user-data-dir={}", self.profile.path().display());
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            if String::from_utf8_lossy(&cmdline).contains(&marker) {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
    }
}

impl Browser {
    /// Ends the session; Chromium quits.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    /// Goes to an address; WebDriver waits for the page to load.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// The element, once it is there.
    pub async fn element(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
    }

    pub async fn click(&self, css: &str) {
        self.element(css).await.click().await.unwrap();
    }

    /// Clicks something that loads a new page (a link, a submit button) and
    /// waits until the new page has replaced the old one, so nothing is read
    /// off the page being left.
    pub async fn click_to_load(&self, css: &str) {
        self.leaving().await;
        self.click(css).await;
        self.arrived().await;
    }

    /// Runs a script in the page and returns what it returns.
    pub async fn script(&self, js: &str) -> serde_json::Value {
        self.client.execute(js, vec![]).await.unwrap()
    }

    /// Resizes the window, e.g. to a phone's width.
    pub async fn resize(&self, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.unwrap();
    }

    /// Marks the current page, so [`Browser::arrived`] can tell it is gone.
    pub async fn leaving(&self) {
        self.client
            .execute("document.documentElement.dataset.leaving = 'yes';", vec![])
            .await
            .unwrap();
    }

    /// Waits until a page without the [`Browser::leaving`] mark has loaded.
    pub async fn arrived(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let loaded = self
                .client
                .execute(
                    "return document.readyState === 'complete' && !document.documentElement.dataset.leaving;",
                    vec![],
                )
                .await;
            if matches!(loaded, Ok(serde_json::Value::Bool(true))) {
                return;
            }
            assert!(Instant::now() < deadline, "no new page loaded");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn text(&self, css: &str) -> String {
        self.element(css).await.text().await.unwrap()
    }

    /// Types into whatever has the focus, as a keyboard would.
    pub async fn press(&self, keys: &str) {
        self.client
            .active_element()
            .await
            .unwrap()
            .send_keys(keys)
            .await
            .unwrap();
    }

    /// The id of the element with the focus.
    pub async fn focused_id(&self) -> String {
        self.client
            .active_element()
            .await
            .unwrap()
            .attr("id")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    pub async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .is_empty()
    }

    pub async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    /// Waits until the address shows `path`: a closed dialog puts its page's
    /// address back from its `close` event, which the browser fires in a
    /// task of its own, after the dialog is already gone.
    pub async fn wait_for_path(&self, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let now = self.path().await;
            if now == path {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the address stayed {now}, not {path}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn sign_in(&self, base: &str, email: &str, password: &str) {
        self.open(&format!("{base}/sign-in")).await;
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.click_to_load("form[action='/sign-in'] button[type='submit']")
            .await;
    }
}
