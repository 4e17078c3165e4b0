//! `ui`: the Secrets & Preflight page, served by the CLI on the user's own machine.
//!
//! The page is served here, not by the Deploy Service, so that what the user types reaches only
//! this process: it seals the value exactly as `secret set` does and sends the sealed blob. A
//! compromised service could send a page a script that reads the input; a page served from
//! loopback by the user's own binary cannot be changed by it.
//!
//! Safe by construction:
//! - bound to `127.0.0.1` on a free port;
//! - every request needs the one-time random token of the URL the CLI printed: given in the URL
//!   once, it becomes a `SameSite=Strict`, `HttpOnly` cookie of this port, and the URL is
//!   replaced by one without it;
//! - `Host` must name this server (no DNS rebinding), and a request with a foreign `Origin` or
//!   from another site (`Sec-Fetch-Site`) is refused: no cross-site form can write a secret;
//! - a strict Content-Security-Policy: no script at all, styles and forms only from here;
//!   everything the page uses is in the binary;
//! - a value is sealed on arrival and dropped (zeroed) after; it is never sent back, logged or
//!   kept. The page never shows the PAT.

mod page;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Form, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use mgraph_deploy_api::{EnvironmentName, SecretName};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tower_http::set_header::SetResponseHeaderLayer;

use super::args::PatSource;
use super::output::Output;
use super::preflight::check;
use super::session::Session;
use super::{Exit, Failure, InputError};
use crate::api::{ClientError, DeployClient, Target, WriteOptions};
use crate::preflight::{BUILTIN, Reference, Scan, scan};
use crate::seal::Plaintext;

/// The most a form may carry: a secret's value is at most 48 KiB, and URL encoding can triple it.
const MAX_FORM_BYTES: usize = 256 * 1024;

/// The page's policy: no script, nothing from elsewhere, forms only to here, never framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the server's handlers share: who may ask, and the way to the worker.
struct Ui {
    token: String,
    /// `127.0.0.1:PORT` and `localhost:PORT`: the only `Host`s answered.
    hosts: [String; 2],
    /// `http://` and each of `hosts`: the only `Origin`s accepted.
    origins: [String; 2],
    cookie: String,
    jobs: mpsc::Sender<Job>,
}

/// What the handlers ask of the worker.
enum Job {
    Show {
        query: PageQuery,
        reply: oneshot::Sender<String>,
    },
    Save {
        environment: String,
        name: String,
        value: Plaintext,
        reply: oneshot::Sender<()>,
    },
}

/// The one owner of the session, on a thread of its own: one page or save at a time, in the
/// order asked. (Its calls re-seal through async closures, whose futures are not `Send`: the
/// server's handlers cannot run them.)
struct Worker {
    session: Session,
    dir: PathBuf,
    repository: Target,
    /// The one-line notice of the last save, shown once.
    notice: Option<page::Notice>,
    /// A save succeeded: the PAT can write this repository's secrets.
    wrote: bool,
}

/// Serves the page until Ctrl-C.
pub(super) async fn serve(
    client: &DeployClient,
    out: Output,
    dir: &Path,
    repository: Target,
    pat: &PatSource,
    open_browser: bool,
) -> Result<Exit, Failure> {
    if !matches!(repository, Target::Repo { .. }) {
        return Err(
            InputError("the page is for a repository: pass --repo OWNER/REPO".into()).into(),
        );
    }
    scan(dir).map_err(|e| InputError(e.to_string()))?;
    let jobs = start_worker(client, pat, dir, &repository).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| InputError(format!("cannot listen on 127.0.0.1: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| InputError(format!("cannot listen on 127.0.0.1: {e}")))?
        .port();
    let token = random_token();
    let url = format!("http://127.0.0.1:{port}/?token={token}");
    let hosts = [format!("127.0.0.1:{port}"), format!("localhost:{port}")];
    let ui = Arc::new(Ui {
        origins: hosts.clone().map(|host| format!("http://{host}")),
        hosts,
        cookie: format!("mgraph_deploy_ui_{port}"),
        token,
        jobs,
    });
    if out.json {
        out.print_json(&serde_json::json!({ "url": url, "repository": repository.to_string() }));
    } else {
        println!("Secrets & Preflight page of {repository}: {url}");
        eprintln!("Serving on 127.0.0.1 only; Ctrl-C stops it.");
    }
    if open_browser {
        if let Err(e) = open_in_browser(&url) {
            eprintln!("note: could not open a browser ({e}): open the URL above yourself");
        }
    }
    axum::serve(listener, router(ui))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| InputError(format!("the page's server failed: {e}")))?;
    if !out.json {
        eprintln!("stopped");
    }
    Ok(Exit::Success)
}

/// Opens the session on the worker's thread and starts it; the way to send it jobs.
async fn start_worker(
    client: &DeployClient,
    pat: &PatSource,
    dir: &Path,
    repository: &Target,
) -> Result<mpsc::Sender<Job>, Failure> {
    let (jobs, mut queue) = mpsc::channel::<Job>(16);
    let (ready, opened) = oneshot::channel::<Result<(), Failure>>();
    let (client, pat) = (client.clone(), pat.clone());
    let (dir, repository) = (dir.to_owned(), repository.clone());
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                let _ = ready.send(Err(InputError(format!("cannot start the page: {e}")).into()));
                return;
            }
        };
        runtime.block_on(async move {
            let session = match Session::open(&client, &pat, None).await {
                Ok(session) => session,
                Err(failure) => {
                    let _ = ready.send(Err(failure));
                    return;
                }
            };
            let _ = ready.send(Ok(()));
            let mut worker = Worker {
                session,
                dir,
                repository,
                notice: None,
                wrote: false,
            };
            while let Some(job) = queue.recv().await {
                match job {
                    Job::Show { query, reply } => {
                        let _ = reply.send(worker.page(query).await);
                    }
                    Job::Save {
                        environment,
                        name,
                        value,
                        reply,
                    } => {
                        let notice = worker.write(&environment, &name, value).await;
                        worker.wrote |= matches!(notice, page::Notice::Saved(_));
                        worker.notice = Some(notice);
                        let _ = reply.send(());
                    }
                }
            }
        });
    });
    match opened.await {
        Ok(Ok(())) => Ok(jobs),
        Ok(Err(failure)) => Err(failure),
        Err(_) => Err(InputError("the page's worker stopped".into()).into()),
    }
}

fn router(ui: Arc<Ui>) -> Router {
    let headers = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // Not `no-referrer`: under it a browser names the origin of a form's POST `null`, which
        // the guard must refuse. The token is never in a URL past the first redirect.
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ];
    let mut router = Router::new()
        .route("/", get(show))
        .route("/save", post(save))
        .route("/page.css", get(stylesheet))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(middleware::from_fn_with_state(ui.clone(), guard))
        .with_state(ui);
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::overriding(
            name,
            HeaderValue::from_static(value),
        ));
    }
    router
}

/// Refuses any request that is not this page's own: another `Host`, a foreign `Origin` or
/// site, no token. Trades a token in the URL for the cookie.
async fn guard(State(ui): State<Arc<Ui>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if !host.is_some_and(|host| ui.hosts.iter().any(|h| h == host)) {
        return refused(
            StatusCode::MISDIRECTED_REQUEST,
            "this server answers only the address the CLI printed",
        );
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        if !ui.origins.iter().any(|o| o.as_bytes() == origin.as_bytes()) {
            return refused(StatusCode::FORBIDDEN, "a request from another site");
        }
    }
    let site = headers.get("sec-fetch-site").and_then(|s| s.to_str().ok());
    if site.is_some_and(|site| !matches!(site, "same-origin" | "none")) {
        return refused(StatusCode::FORBIDDEN, "a request from another site");
    }
    if request.method() != Method::GET && headers.get(header::ORIGIN).is_none() && site.is_none() {
        // A browser names the origin of every POST; a POST that names none is not the page's.
        return refused(
            StatusCode::FORBIDDEN,
            "a form sent from nowhere this page knows",
        );
    }
    let query = request.uri().query().unwrap_or_default();
    let given = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="));
    if let Some(given) = given {
        if !same(given, &ui.token) {
            return refused(StatusCode::FORBIDDEN, "a wrong token");
        }
        // The token leaves the address bar (and the history) for a cookie of this port.
        let rest: Vec<&str> = query
            .split('&')
            .filter(|pair| !pair.starts_with("token=") && !pair.is_empty())
            .collect();
        let to = if rest.is_empty() {
            request.uri().path().to_owned()
        } else {
            format!("{}?{}", request.uri().path(), rest.join("&"))
        };
        let mut response = Redirect::to(&to).into_response();
        let cookie = format!(
            "{}={}; Path=/; HttpOnly; SameSite=Strict",
            ui.cookie, ui.token
        );
        response.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).expect("a cookie of hex and plain words"),
        );
        return response;
    }
    if !has_cookie(headers, &ui.cookie, &ui.token) {
        return refused(
            StatusCode::FORBIDDEN,
            "no token: open the URL `mgraph-deploy-cli ui` printed",
        );
    }
    next.run(request).await
}

fn has_cookie(headers: &HeaderMap, name: &str, token: &str) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(n, v)| n == name && same(v, token))
}

/// Compares in time independent of where they differ.
fn same(given: &str, token: &str) -> bool {
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn refused(status: StatusCode, why: &str) -> Response {
    (status, format!("Refused: {why}.\n")).into_response()
}

/// 32 random bytes, hex.
fn random_token() -> String {
    use crypto_box::aead::rand_core::RngCore as _;
    let mut bytes = [0u8; 32];
    crypto_box::aead::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Opens `url` in the user's browser: `$BROWSER` when set, else the platform's opener.
fn open_in_browser(url: &str) -> std::io::Result<()> {
    let mut command = match std::env::var("BROWSER").ok().filter(|b| !b.is_empty()) {
        Some(browser) => std::process::Command::new(browser),
        None if cfg!(target_os = "macos") => std::process::Command::new("open"),
        None if cfg!(windows) => {
            let mut c = std::process::Command::new("cmd");
            c.args(["/C", "start", ""]);
            c
        }
        None => std::process::Command::new("xdg-open"),
    };
    command
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(drop)
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("page.css"),
    )
        .into_response()
}

/// The page's query: the environment shown (empty: the repository), one typed instead, and
/// whether to show the preflight checklist.
#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    other: Option<String>,
    #[serde(default)]
    preflight: Option<String>,
}

async fn show(
    State(ui): State<Arc<Ui>>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let (reply, page) = oneshot::channel();
    if ui.jobs.send(Job::Show { query, reply }).await.is_err() {
        return stopped();
    }
    match page.await {
        Ok(html) => Html(html).into_response(),
        Err(_) => stopped(),
    }
}

fn stopped() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "The page's worker stopped: restart `mgraph-deploy-cli ui`.\n",
    )
        .into_response()
}

impl Worker {
    /// The page for `query`: the connections, the environment's required secrets, and the
    /// checklist when asked.
    async fn page(&mut self, query: PageQuery) -> String {
        let mut notice = self.notice.take();
        let typed = query
            .other
            .as_deref()
            .map(str::trim)
            .filter(|o| !o.is_empty());
        let asked = typed.or(query
            .environment
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty()));
        let environment = match asked.map(EnvironmentName::try_from) {
            None => None,
            Some(Ok(name)) => Some(name.as_str().to_owned()),
            Some(Err(e)) => {
                notice = Some(page::Notice::Error(format!("That environment name {e}.")));
                None
            }
        };
        let state = match scan(&self.dir) {
            Err(e) => Err(e.to_string()),
            Ok(scan) => {
                let repository = &self.repository;
                let token = self
                    .session
                    .resealing(async |c, s| c.check_token(&s.pat, Some(repository)).await)
                    .await;
                let environments = named_environments(&scan);
                let environment = environment.or_else(|| default_environment(&scan));
                let scan = with_environment(scan, environment.as_deref());
                let checked = check(&mut self.session, &scan, &self.repository)
                    .await
                    .map_err(failure_words);
                Ok(page::State {
                    token,
                    environments,
                    environment,
                    scan,
                    checked,
                    wrote: self.wrote,
                    preflight: query.preflight.is_some(),
                })
            }
        };
        let view = page::View {
            repository: &self.repository,
            notice,
            state,
        };
        page::render(&view)
    }
}

/// The environments the workflows name, sorted.
fn named_environments(scan: &Scan) -> Vec<String> {
    scan.by_environment().into_keys().flatten().collect()
}

/// The first environment the workflows name; the repository when they name none.
fn default_environment(scan: &Scan) -> Option<String> {
    named_environments(scan).into_iter().next()
}

/// `scan`, with `environment` checked too when the workflows do not name it: a job whose
/// environment they do not fix (none, or one computed by an expression) may run there, so what
/// such jobs reference is what it needs.
fn with_environment(mut scan: Scan, environment: Option<&str>) -> Scan {
    let Some(environment) = environment else {
        return scan;
    };
    if named_environments(&scan).iter().any(|e| e == environment) {
        return scan;
    }
    let unfixed: Vec<Reference> = scan
        .references
        .iter()
        .filter(|r| r.environment.is_none())
        .map(|r| Reference {
            environment: Some(environment.to_owned()),
            ..r.clone()
        })
        .collect();
    scan.references.extend(unfixed);
    scan
}

fn failure_words(failure: Failure) -> String {
    match failure {
        Failure::Input(InputError(message)) => message,
        Failure::Client(e) => e.to_string(),
    }
}

/// The save form. No `Debug`: it holds a value.
#[derive(Deserialize)]
struct SaveForm {
    #[serde(default)]
    environment: String,
    name: String,
    value: String,
}

async fn save(
    State(ui): State<Arc<Ui>>,
    form: Result<Form<SaveForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return refused(StatusCode::BAD_REQUEST, "the form is incomplete");
    };
    let value = Plaintext::new(form.value);
    let environment = form.environment.trim().to_owned();
    let back = if environment.is_empty() {
        "/".to_owned()
    } else {
        let mut back = reqwest::Url::parse("http://127.0.0.1/").expect("a fixed URL");
        back.query_pairs_mut()
            .append_pair("environment", &environment);
        format!("/?{}", back.query().unwrap_or_default())
    };
    let (reply, saved) = oneshot::channel();
    let job = Job::Save {
        environment,
        name: form.name,
        value,
        reply,
    };
    if ui.jobs.send(job).await.is_err() || saved.await.is_err() {
        return stopped();
    }
    Redirect::to(&back).into_response()
}

impl Worker {
    /// Seals and writes one value: an environment secret, or the repository's when that
    /// environment does not exist. The notice says where it went.
    async fn write(&mut self, environment: &str, name: &str, value: Plaintext) -> page::Notice {
        let name = match SecretName::try_from(name.trim()) {
            Ok(name) => name,
            Err(_) if name.trim().eq_ignore_ascii_case(BUILTIN) => {
                return page::Notice::Error(format!(
                    "{BUILTIN} is built in: GitHub gives it to every run, and it cannot be set."
                ));
            }
            Err(e) => return page::Notice::Error(format!("That secret name {e}.")),
        };
        if value.expose().is_empty() {
            return page::Notice::Error(format!(
                "The value of {name} is empty: nothing was saved."
            ));
        }
        let Target::Repo { owner, repo } = &self.repository else {
            unreachable!("serve takes a repository")
        };
        let target = if environment.is_empty() {
            self.repository.clone()
        } else {
            match EnvironmentName::try_from(environment) {
                Ok(environment) => Target::Environment {
                    owner: owner.clone(),
                    repo: repo.clone(),
                    environment,
                },
                Err(e) => return page::Notice::Error(format!("That environment name {e}.")),
            }
        };
        let options = WriteOptions {
            env_fallback: !environment.is_empty(),
            fingerprint: Some(self.session.fingerprints.of(&name, &value)),
            ..WriteOptions::default()
        };
        let written = self
            .session
            .resealing(async |c, s| {
                c.create(
                    &s.pat,
                    &target,
                    name.as_str(),
                    &value.seal_to(&s.key),
                    &options,
                )
                .await
            })
            .await;
        drop(value);
        match written {
            Ok(answer) => match (&answer.body.data, answer.body.success) {
                (Some(_), true) if environment.is_empty() => {
                    page::Notice::Saved(format!("Saved {name} as a repository secret."))
                }
                (Some(data), true) if data.env_fallback => page::Notice::Saved(format!(
                    "Saved {name} as a repo-level secret because GitHub environment \"{environment}\" does not exist."
                )),
                (Some(_), true) => page::Notice::Saved(format!(
                    "Saved {name} as an environment secret for \"{environment}\"."
                )),
                _ => page::Notice::Error(format!(
                    "{name} was not saved: {} ({}).",
                    answer.body.error,
                    answer
                        .body
                        .error_type
                        .map_or("unknown", mgraph_deploy_api::ErrorType::as_str)
                )),
            },
            Err(e @ (ClientError::Interrupted { .. } | ClientError::Timeout(_))) => {
                page::Notice::Error(format!(
                    "{name} may or may not have been saved: {e}. Reload the page to see."
                ))
            }
            Err(e) => page::Notice::Error(format!("{name} was not saved: {e}.")),
        }
    }
}
