//! `mgraph-deploy-cli ui`: the Secrets & Preflight page on loopback, against the offline stack.
//! What it refuses, over plain HTTP; and a user's whole visit in a real browser (Debian's
//! headless Chromium driven through its chromedriver, WebDriver over loopback).

mod common;

use std::path::Path;
use std::process::Stdio;

use common::*;
use mgraph_deploy_emulator::{PatKind, Scope, seed};
use mgraph_deploy_local::LocalStack;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A workflow whose one job runs in environment `dev`, which the stack's repository does not
/// have, and references `AWS_ROLE_ARN` (and the built-in `GITHUB_TOKEN`).
const WORKFLOW: &str = "name: deploy
on: push
jobs:
  deploy:
    runs-on: ubuntu-latest
    environment: dev
    steps:
      - run: ./deploy.sh
        env:
          ROLE: ${{ secrets.AWS_ROLE_ARN }}
          TOKEN: ${{ secrets.GITHUB_TOKEN }}
";

/// The CLI serving the page, and the URL it printed.
struct Page {
    child: Child,
    url: String,
    /// `http://127.0.0.1:PORT`.
    base: String,
}

impl Page {
    async fn start(stack: &LocalStack, dir: &Path) -> Self {
        let mut child = Command::new(CLI)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DEPLOY_SERVICE__URL", &stack.service_url)
            .env("DEPLOY_SERVICE__API_KEY__NAME", &stack.api_key.name)
            .env("DEPLOY_SERVICE__API_KEY__VALUE", &stack.api_key.value)
            .env("GIT_HUB__ACCESS_TOKEN", PatKind::Admin.token())
            .args(["ui", "--no-open", "-R", REPO, "--dir"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let line = BufReader::new(stdout)
            .lines()
            .next_line()
            .await
            .unwrap()
            .expect("the CLI prints the page's URL");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        let base = url.split("/?").next().unwrap().to_owned();
        Page { child, url, base }
    }
}

fn repository_with_workflow() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::write(workflows.join("deploy.yml"), WORKFLOW).unwrap();
    dir
}

/// A client that keeps cookies off and follows no redirect: each request says exactly what it
/// carries.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The page's cookie, as its token URL sets it.
async fn cookie(page: &Page) -> String {
    let answer = http().get(&page.url).send().await.unwrap();
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()["location"], "/");
    let set = answer.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_without_the_token_or_from_another_host_or_site_are_refused_and_nothing_is_written()
 {
    let stack = stack().await;
    let dir = repository_with_workflow();
    let page = Page::start(&stack, dir.path()).await;
    let cookie = cookie(&page).await;
    let port = page.base.rsplit(':').next().unwrap();
    let save = |builder: reqwest::RequestBuilder| {
        builder
            .header("content-type", "application/x-www-form-urlencoded")
            .body("environment=&name=STOLEN&value=from-elsewhere")
    };
    let client = http();

    let cases: Vec<(&str, reqwest::RequestBuilder, u16)> = vec![
        ("no token", client.get(format!("{}/", page.base)), 403),
        (
            "a wrong token",
            client.get(format!("{}/?token=00", page.base)),
            403,
        ),
        (
            "the stylesheet without the token",
            client.get(format!("{}/page.css", page.base)),
            403,
        ),
        (
            "another Host (DNS rebinding)",
            client
                .get(format!("{}/", page.base))
                .header("host", format!("attacker.example:{port}"))
                .header("cookie", &cookie),
            421,
        ),
        (
            "a save from another site",
            save(client.post(format!("{}/save", page.base)))
                .header("cookie", &cookie)
                .header("origin", "http://attacker.example"),
            403,
        ),
        (
            "a save from another site, as Chromium labels it",
            save(client.post(format!("{}/save", page.base)))
                .header("cookie", &cookie)
                .header("sec-fetch-site", "cross-site"),
            403,
        ),
        (
            "a save that names no origin",
            save(client.post(format!("{}/save", page.base))).header("cookie", &cookie),
            403,
        ),
        (
            "a save without the token",
            save(client.post(format!("{}/save", page.base))).header("origin", &page.base),
            403,
        ),
    ];
    for (what, request, status) in cases {
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status().as_u16(), status, "{what}");
        let csp = answer.headers()["content-security-policy"]
            .to_str()
            .unwrap();
        assert!(csp.contains("default-src 'none'"), "{what}: {csp}");
        assert!(
            answer.text().await.unwrap().starts_with("Refused: "),
            "{what}"
        );
    }
    let scope = Scope::repo(seed::OWNER, seed::REPO);
    assert!(stack.emulator.secret(&scope, "STOLEN").is_none());

    // With the cookie and its own origin, the same save is taken.
    let answer = save(client.post(format!("{}/save", page.base)))
        .header("cookie", &cookie)
        .header("origin", &page.base)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    assert_eq!(
        stack.emulator.secret(&scope, "STOLEN").unwrap().plaintext,
        "from-elsewhere"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_never_shows_the_pat_or_a_saved_value_and_ctrl_c_stops_it() {
    let stack = stack().await;
    let dir = repository_with_workflow();
    let page = Page::start(&stack, dir.path()).await;
    let cookie = cookie(&page).await;
    let value = "s3cr3t-value-that-must-not-come-back";
    let client = http();

    let saved = client
        .post(format!("{}/save", page.base))
        .header("cookie", &cookie)
        .header("origin", &page.base)
        .form(&[
            ("environment", "dev"),
            ("name", "AWS_ROLE_ARN"),
            ("value", value),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 303);
    assert_eq!(saved.headers()["location"], "/?environment=dev");
    let html = client
        .get(format!("{}/?environment=dev&preflight=1", page.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Saved AWS_ROLE_ARN as a repo-level secret"),
        "{html}"
    );
    assert!(html.contains("All checks passed"), "{html}");
    for secret in [value, PatKind::Admin.token().as_str()] {
        assert!(!html.contains(secret), "the page shows a secret");
    }

    let pid = page.child.id().unwrap().to_string();
    let status = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let output = page.child.wait_with_output().await.unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("stopped"), "{stderr}");
    for secret in [value, PatKind::Admin.token().as_str()] {
        assert!(!stderr.contains(secret));
    }
}

/// A WebDriver session on Debian's chromedriver and headless Chromium, reaching only loopback.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

impl Browser {
    /// `None` when chromedriver is not installed and `MGRAPH_REQUIRE_BROWSER` is unset.
    async fn start() -> Option<Self> {
        let driver = Command::new("chromedriver")
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn();
        let mut driver = match driver {
            Ok(driver) => driver,
            Err(e) if std::env::var_os("MGRAPH_REQUIRE_BROWSER").is_none() => {
                eprintln!(
                    "skipped: chromedriver cannot be started ({e}); install Debian's chromium-driver, or set MGRAPH_REQUIRE_BROWSER to fail instead"
                );
                return None;
            }
            Err(e) => panic!("chromedriver: {e}"),
        };
        let mut lines = BufReader::new(driver.stdout.take().unwrap()).lines();
        let port = loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("chromedriver says its port");
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                break rest.trim_end_matches('.').to_owned();
            }
        };
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1000,1150",
                    // Nothing but loopback: every other host fails to resolve.
                    "--proxy-server=http://127.0.0.1:9",
                    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                ],
            },
        } } });
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        let browser = Browser {
            driver,
            base,
            session,
            http,
        };
        // Finding an element waits (up to 15 s) for it to appear: for the next page to load.
        browser
            .call("POST", "timeouts", json!({ "implicit": 15000 }))
            .await;
        Some(browser)
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}/{path}", self.base, self.session);
        let request = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url).json(&body),
        };
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        assert!(answer["value"].get("error").is_none(), "{path}: {answer}");
        answer["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call("POST", "url", json!({ "url": url })).await;
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .call(
                "POST",
                "element",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        found["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .unwrap_or_else(|| panic!("{css}: {found}"))
            .to_owned()
    }

    async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.call("GET", &format!("element/{element}/text"), Value::Null)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.call(
            "POST",
            &format!("element/{element}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.call("POST", &format!("element/{element}/click"), json!({}))
            .await;
    }

    async fn source(&self) -> String {
        self.call("GET", "source", Value::Null)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn forget_cookies(&self) {
        let url = format!("{}/session/{}/cookie", self.base, self.session);
        let answer = self.http.delete(url).send().await.unwrap();
        assert!(answer.status().is_success());
    }

    async fn screenshot(&self, path: &Path) {
        use base64::Engine as _;
        let png = self.call("GET", "screenshot", Value::Null).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    async fn quit(mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
        let _ = self.driver.kill().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_real_browser_a_missing_secret_is_typed_saved_to_the_repository_and_preflight_turns_green()
 {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let stack = stack().await;
    let dir = repository_with_workflow();
    let page = Page::start(&stack, dir.path()).await;
    let value = "arn:aws:iam::123456789012:role/deploy ü \"quoted\" <b>&amp;</b>";

    browser.go(&page.url).await;
    let connections = browser.text("section[aria-labelledby=connections]").await;
    assert!(
        connections.contains("GitHub token works: signed in as emulator-admin"),
        "{connections}"
    );
    assert!(connections.contains("Can read the secrets of local-owner/local-repo"));
    let row = browser.text("#row-AWS_ROLE_ARN").await;
    assert!(row.contains("Missing ✗"), "{row}");

    browser.type_into("#value-AWS_ROLE_ARN", value).await;
    browser.click("#save-AWS_ROLE_ARN").await;
    assert_eq!(
        browser.text("#notice").await,
        "Saved AWS_ROLE_ARN as a repo-level secret because GitHub environment \"dev\" does not exist."
    );
    let row = browser.text("#row-AWS_ROLE_ARN").await;
    assert!(
        row.contains("Set ✓") && row.contains("set in the repository"),
        "{row}"
    );

    browser.click("#run-preflight").await;
    let result = browser.text("#preflight-result").await;
    assert!(result.starts_with("All checks passed"), "{result}");
    let checklist = browser.text("#checklist").await;
    assert!(
        checklist.contains("AWS_ROLE_ARN (environment dev): set in the repository"),
        "{checklist}"
    );

    let html = browser.source().await;
    assert!(!html.contains("123456789012"), "the page shows the value");
    assert!(
        !html.contains(&PatKind::Admin.token()),
        "the page shows the PAT"
    );
    let stored = stack
        .emulator
        .secret(&Scope::repo(seed::OWNER, seed::REPO), "AWS_ROLE_ARN")
        .expect("the secret was written to the repository");
    assert_eq!(stored.plaintext, value);
    if let Some(path) = std::env::var_os("MGRAPH_UI_SCREENSHOT") {
        browser.screenshot(Path::new(&path)).await;
    }

    // The browser too is refused without the token.
    browser.forget_cookies().await;
    browser.go(&format!("{}/", page.base)).await;
    let refused = browser.text("body").await;
    assert!(refused.starts_with("Refused: no token"), "{refused}");
    browser.quit().await;
}
