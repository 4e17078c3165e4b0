//! Lambda mode end to end: the real binary, started with `AWS_LAMBDA_RUNTIME_API` pointing at a
//! stand-in of the Lambda Runtime API written here, is fed API Gateway HTTP API (v2), REST API
//! (v1) and Function URL events; the tests assert what it posts back to the runtime.
//!
//! The binary is `MGRAPH_DEPLOY_LAMBDA_BINARY` when set (`.ci/run` points it at the `bootstrap`
//! inside the deployment zip), else the one Cargo built for this test run.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{
    API_KEY_NAME, API_KEY_VALUE, UPSTREAM_KEY_NAME, UPSTREAM_KEY_VALUE, create_body, listing,
    repo_target, sealed_pat, sealed_value, test_env, upstream_ok,
};

const RUNTIME: &str = "/2018-06-01/runtime";
const PUBLIC_KEY: &str = "2d6f6c8e8a1b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5";

// --- the Runtime API stand-in -----------------------------------------------------------------

/// What the function posted for one invocation.
#[derive(Debug)]
enum Posted {
    Response(Value),
    Error(Value),
}

struct Invocation {
    id: String,
    deadline_ms: u128,
    event: Value,
}

#[derive(Clone)]
struct RuntimeState {
    next: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>>,
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Posted>>>>,
    init_errors: Arc<Mutex<Vec<Value>>>,
}

async fn next_invocation(State(state): State<RuntimeState>) -> impl IntoResponse {
    let invocation = state.next.lock().await.recv().await;
    let Some(invocation) = invocation else {
        return StatusCode::GONE.into_response();
    };
    let mut headers = HeaderMap::new();
    let header = |v: &str| HeaderValue::from_str(v).unwrap();
    headers.insert("lambda-runtime-aws-request-id", header(&invocation.id));
    headers.insert(
        "lambda-runtime-deadline-ms",
        header(&invocation.deadline_ms.to_string()),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        header("arn:aws:lambda:eu-west-1:123456789012:function:mgraph-deploy-test"),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        header("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"),
    );
    (headers, axum::Json(invocation.event)).into_response()
}

async fn post_response(
    State(state): State<RuntimeState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    deliver(&state, &id, Posted::Response(json_of(&body)))
}

async fn post_error(
    State(state): State<RuntimeState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    deliver(&state, &id, Posted::Error(json_of(&body)))
}

async fn post_init_error(State(state): State<RuntimeState>, body: axum::body::Bytes) -> StatusCode {
    state.init_errors.lock().unwrap().push(json_of(&body));
    StatusCode::ACCEPTED
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

fn deliver(state: &RuntimeState, id: &str, posted: Posted) -> StatusCode {
    match state.waiting.lock().unwrap().remove(id) {
        Some(waiter) => {
            let _ = waiter.send(posted);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

/// The function under test and the Runtime API it polls.
struct Function {
    queue: mpsc::UnboundedSender<Invocation>,
    runtime: RuntimeState,
    child: Child,
    output: Arc<Mutex<Vec<u8>>>,
    upstream: MockServer,
    invocations: u32,
    /// The tasks copying its stdout and stderr into `output`.
    readers: Vec<tokio::task::JoinHandle<()>>,
    /// Makes this function's invocation ids its own: the history may be a table shared by
    /// every test.
    tag: String,
    /// The history's SQLite file's folder, when it keeps one.
    _store_dir: Option<tempfile::TempDir>,
}

/// The history the functions keep: DynamoDB, the table `MGRAPH_DYNAMODB_TABLE` names at the
/// endpoint the `AWS_*` variables name, when it is set (`deploy/lambda-check.sh` runs these tests
/// so, against moto's server), else a SQLite file of each function's own. Returns the folder of
/// that file.
fn keep_history(env: &mut HashMap<String, String>) -> Option<tempfile::TempDir> {
    match std::env::var("MGRAPH_DYNAMODB_TABLE") {
        Ok(table) => {
            env.insert("DEPLOY__STORE".into(), format!("dynamodb:{table}"));
            env.extend(std::env::vars().filter(|(k, _)| k.starts_with("AWS_")));
            None
        }
        Err(_) => {
            assert!(
                std::env::var_os("MGRAPH_REQUIRE_DYNAMODB").is_none(),
                "MGRAPH_REQUIRE_DYNAMODB is set but MGRAPH_DYNAMODB_TABLE is not"
            );
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("history.sqlite3");
            env.insert("DEPLOY__STORE".into(), format!("sqlite:{}", path.display()));
            Some(dir)
        }
    }
}

/// The backend [`keep_history`] chose.
fn history_backend() -> &'static str {
    if std::env::var_os("MGRAPH_DYNAMODB_TABLE").is_some() {
        "dynamodb"
    } else {
        "sqlite"
    }
}

/// What the function answered to one event, and whether it did so before the deadline.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    json: Value,
    raw: Value,
    before_deadline: bool,
}

fn epoch_ms(at: SystemTime) -> u128 {
    at.duration_since(UNIX_EPOCH).unwrap().as_millis()
}

impl Function {
    /// Starts the binary in Lambda mode against a fresh `wiremock` GitHub Service; `adjust` may
    /// change the service's environment.
    async fn start(adjust: impl FnOnce(&mut HashMap<String, String>)) -> Self {
        let upstream = MockServer::start().await;
        let (queue, receiver) = mpsc::unbounded_channel();
        let runtime = RuntimeState {
            next: Arc::new(tokio::sync::Mutex::new(receiver)),
            waiting: Arc::default(),
            init_errors: Arc::default(),
        };
        let app = Router::new()
            .route(&format!("{RUNTIME}/invocation/next"), get(next_invocation))
            .route(
                &format!("{RUNTIME}/invocation/{{id}}/response"),
                post(post_response),
            )
            .route(
                &format!("{RUNTIME}/invocation/{{id}}/error"),
                post(post_error),
            )
            .route(&format!("{RUNTIME}/init/error"), post(post_init_error))
            .with_state(runtime.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let mut env = test_env(&upstream.uri());
        env.insert("DEPLOY__UPSTREAM_TIMEOUT_SECONDS".into(), "5".into());
        env.insert("RUST_LOG".into(), "debug".into());
        env.insert("AWS_LAMBDA_RUNTIME_API".into(), api.to_string());
        env.insert(
            "AWS_LAMBDA_FUNCTION_NAME".into(),
            "mgraph-deploy-test".into(),
        );
        env.insert("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), "256".into());
        env.insert("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into());
        env.insert(
            "AWS_LAMBDA_LOG_GROUP_NAME".into(),
            "/aws/lambda/test".into(),
        );
        env.insert("AWS_LAMBDA_LOG_STREAM_NAME".into(), "test-stream".into());
        let store_dir = keep_history(&mut env);
        adjust(&mut env);

        let binary = std::env::var("MGRAPH_DEPLOY_LAMBDA_BINARY")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_mgraph-deploy").to_owned());
        let mut child = Command::new(&binary)
            .env_clear()
            .envs(&env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        for mut stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            readers.push(tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                while let Ok(n @ 1..) = stream.read(&mut buffer).await {
                    output.lock().unwrap().extend_from_slice(&buffer[..n]);
                }
            }));
        }
        Self {
            queue,
            runtime,
            child,
            output,
            upstream,
            invocations: 0,
            readers,
            tag: format!(
                "{:x}",
                epoch_ms(SystemTime::now()) ^ u128::from(std::process::id())
            ),
            _store_dir: store_dir,
        }
    }

    /// Waits for the function to exit; its exit status and everything it wrote.
    async fn exited(&mut self) -> (std::process::ExitStatus, String) {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the function stops")
            .unwrap();
        for reader in self.readers.drain(..) {
            reader.await.unwrap();
        }
        (status, self.output())
    }

    /// Everything the function wrote to stdout and stderr so far.
    fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Hands `event` to the function with `budget` before its deadline, and waits for what it posts.
    async fn invoke(&mut self, event: Value, budget: Duration) -> Answer {
        let deadline = SystemTime::now() + budget;
        self.invoke_with_deadline(event, epoch_ms(deadline), budget)
            .await
    }

    /// Hands `event` to the function with this `lambda-runtime-deadline-ms` header, whatever it
    /// means, and waits up to `budget` (plus a margin) for what it posts.
    async fn invoke_with_deadline(
        &mut self,
        event: Value,
        deadline_ms: u128,
        budget: Duration,
    ) -> Answer {
        self.invocations += 1;
        let id = format!("request-{}-{}", self.tag, self.invocations);
        let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms as u64);
        let (tx, rx) = oneshot::channel();
        self.runtime.waiting.lock().unwrap().insert(id.clone(), tx);
        self.queue
            .send(Invocation {
                id: id.clone(),
                deadline_ms,
                event,
            })
            .unwrap();
        let posted = tokio::select! {
            posted = rx => posted.expect("the stand-in keeps the waiter"),
            status = self.child.wait() => panic!(
                "the function exited ({status:?}) before answering {id}; init errors: {:?}; output:\n{}",
                self.runtime.init_errors.lock().unwrap(), self.output()
            ),
            () = tokio::time::sleep(budget + Duration::from_secs(30)) => panic!(
                "no answer to {id}; output:\n{}", self.output()
            ),
        };
        let before_deadline = SystemTime::now() < deadline;
        let raw = match posted {
            Posted::Response(raw) => raw,
            Posted::Error(error) => panic!(
                "the function posted an invocation error for {id}: {error}; output:\n{}",
                self.output()
            ),
        };
        answer(raw, before_deadline)
    }

    /// Invokes with a comfortable budget.
    async fn call(&mut self, event: Value) -> Answer {
        self.invoke(event, Duration::from_secs(20)).await
    }
}

/// Reads the function's response object, whichever event format it answers.
fn answer(raw: Value, before_deadline: bool) -> Answer {
    let status = raw["statusCode"].as_u64().expect("statusCode") as u16;
    let mut headers = HashMap::new();
    if let Some(multi) = raw["multiValueHeaders"].as_object() {
        for (name, values) in multi {
            let joined: Vec<&str> = values
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            headers.insert(name.to_lowercase(), joined.join(", "));
        }
    }
    if let Some(single) = raw["headers"].as_object() {
        for (name, value) in single {
            headers.insert(name.to_lowercase(), value.as_str().unwrap().to_owned());
        }
    }
    let body = raw["body"].as_str().unwrap_or_default();
    let text = if raw["isBase64Encoded"] == true {
        String::from_utf8(STANDARD.decode(body).unwrap()).unwrap()
    } else {
        body.to_owned()
    };
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        json,
        raw,
        before_deadline,
    }
}

// --- events -----------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    /// API Gateway HTTP API, payload format 2.0.
    HttpApi,
    /// API Gateway REST API, payload format 1.0.
    RestApi,
    /// A Lambda Function URL (format 2.0, from `*.lambda-url.*.on.aws`).
    FunctionUrl,
}

const SOURCES: [Source; 3] = [Source::HttpApi, Source::RestApi, Source::FunctionUrl];

/// One HTTP request, to be wrapped in an event.
#[derive(Debug, Clone)]
struct Call {
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    cookies: Vec<String>,
    body: Option<String>,
    base64_body: bool,
    /// The API Gateway stage; `None` is `$default` (HTTP API) or `prod` (REST API).
    stage: Option<&'static str>,
    /// The stage is in the path the client used (execute-api URL of a named HTTP API stage).
    stage_in_raw_path: bool,
}

impl Call {
    fn get(path: &str) -> Self {
        Self {
            method: "GET",
            path: path.to_owned(),
            headers: vec![
                ("accept".into(), "*/*".into()),
                ("user-agent".into(), "curl/8.5.0".into()),
            ],
            cookies: Vec::new(),
            body: None,
            base64_body: false,
            stage: None,
            stage_in_raw_path: false,
        }
    }

    fn post(path: &str, body: &Value) -> Self {
        let mut call = Self::get(path);
        call.method = "POST";
        call.headers
            .push(("content-type".into(), "application/json".into()));
        call.body = Some(body.to_string());
        call
    }

    fn with_key(self) -> Self {
        self.header(API_KEY_NAME, API_KEY_VALUE)
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn cookie(mut self, cookie: &str) -> Self {
        self.cookies.push(cookie.into());
        self
    }

    fn base64(mut self) -> Self {
        self.body = self.body.map(|b| STANDARD.encode(b));
        self.base64_body = true;
        self
    }

    fn stage(mut self, stage: &'static str, in_raw_path: bool) -> Self {
        self.stage = Some(stage);
        self.stage_in_raw_path = in_raw_path;
        self
    }

    fn event(&self, source: Source) -> Value {
        let now = epoch_ms(SystemTime::now());
        let mut headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let host = match source {
            Source::FunctionUrl => "abcdefghij.lambda-url.eu-west-1.on.aws",
            Source::HttpApi | Source::RestApi => "deploy.dev.mgraph.ai",
        };
        headers.insert("host".into(), host.into());
        headers.insert("x-forwarded-proto".into(), "https".into());
        match source {
            Source::RestApi => {
                let stage = self.stage.unwrap_or("prod");
                if !self.cookies.is_empty() {
                    headers.insert("cookie".into(), self.cookies.join("; ").into());
                }
                let multi: serde_json::Map<String, Value> = headers
                    .iter()
                    .map(|(k, v)| (k.clone(), json!([v])))
                    .collect();
                json!({
                    "resource": "/{proxy+}",
                    "path": self.path,
                    "httpMethod": self.method,
                    "headers": headers,
                    "multiValueHeaders": multi,
                    "queryStringParameters": null,
                    "multiValueQueryStringParameters": null,
                    "pathParameters": { "proxy": self.path.trim_start_matches('/') },
                    "stageVariables": null,
                    "requestContext": {
                        "accountId": "123456789012",
                        "apiId": "a1b2c3d4e5",
                        "resourceId": "x1y2z3",
                        "resourcePath": "/{proxy+}",
                        "httpMethod": self.method,
                        "path": format!("/{stage}{}", self.path),
                        "stage": stage,
                        "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                        "requestTimeEpoch": now,
                        "domainName": host,
                        "identity": { "sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0" },
                    },
                    "body": self.body,
                    "isBase64Encoded": self.base64_body,
                })
            }
            Source::HttpApi | Source::FunctionUrl => {
                let stage = self.stage.unwrap_or("$default");
                let raw_path = if self.stage_in_raw_path {
                    format!("/{stage}{}", self.path)
                } else {
                    self.path.clone()
                };
                let mut event = json!({
                    "version": "2.0",
                    "routeKey": "$default",
                    "rawPath": raw_path,
                    "rawQueryString": "",
                    "headers": headers,
                    "requestContext": {
                        "accountId": "123456789012",
                        "apiId": "a1b2c3d4e5",
                        "domainName": host,
                        "domainPrefix": host.split('.').next().unwrap(),
                        "http": {
                            "method": self.method,
                            "path": raw_path,
                            "protocol": "HTTP/1.1",
                            "sourceIp": "203.0.113.7",
                            "userAgent": "curl/8.5.0",
                        },
                        "requestId": "JKJaXmPLvHcESHA=",
                        "routeKey": "$default",
                        "stage": stage,
                        "time": "22/Nov/2026:10:00:00 +0000",
                        "timeEpoch": now,
                    },
                    "isBase64Encoded": self.base64_body,
                });
                if !self.cookies.is_empty() {
                    event["cookies"] = json!(self.cookies);
                }
                if let Some(body) = &self.body {
                    event["body"] = json!(body);
                }
                event
            }
        }
    }
}

fn public_key_upstream() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "public_key": PUBLIC_KEY, "algorithm": "NaCl/Curve25519/SealedBox", "timestamp": 1 }))
}

async fn upstream(function: &Function, http_method: &str, route: &str, answer: ResponseTemplate) {
    Mock::given(method(http_method))
        .and(path(route))
        .respond_with(answer)
        .mount(&function.upstream)
        .await;
}

impl Function {
    /// A function whose GitHub Service serves its public key.
    async fn serving_the_public_key() -> Self {
        let f = Self::start(|_| {}).await;
        upstream(&f, "GET", "/encryption/public-key", public_key_upstream()).await;
        f
    }

    /// A function whose GitHub Service takes 30 s to create a repository secret, well within the
    /// service's upstream timeout.
    async fn with_a_create_taking_30_seconds() -> Self {
        let f = Self::start(|env| {
            env.insert("DEPLOY__UPSTREAM_TIMEOUT_SECONDS".into(), "60".into());
        })
        .await;
        let slow = upstream_ok(201, json!({ "created": true }), &[]);
        let slow = slow.set_delay(Duration::from_secs(30));
        upstream(&f, "POST", "/github-secrets-repo/create", slow).await;
        f
    }
}

fn assert_json_answer(answer: &Answer, status: u16, context: &str) {
    assert_eq!(answer.status, status, "{context}: {}", answer.raw);
    assert_eq!(
        answer.headers.get("content-type").map(String::as_str),
        Some("application/json"),
        "{context}: {}",
        answer.raw
    );
    assert_eq!(
        answer.raw["isBase64Encoded"], false,
        "{context}: JSON goes back as text"
    );
    assert!(answer.json.is_object(), "{context}: {}", answer.raw);
    assert!(
        answer.headers.contains_key("x-request-id"),
        "{context}: {}",
        answer.raw
    );
}

// --- tests ------------------------------------------------------------------------------------

#[tokio::test]
async fn health_and_the_public_key_are_served_to_every_event_format() {
    let mut f = Function::serving_the_public_key().await;

    for source in SOURCES {
        let health = f.call(Call::get("/info/health").event(source)).await;
        assert_json_answer(&health, 200, &format!("{source:?} health"));
        assert_eq!(health.json, json!({ "status": "ok" }), "{source:?}");

        let key = f
            .call(Call::get("/public-keys/github").with_key().event(source))
            .await;
        assert_json_answer(&key, 200, &format!("{source:?} public key"));
        assert_eq!(
            key.json,
            json!({ "public_key": PUBLIC_KEY, "algorithm": "NaCl/Curve25519/SealedBox", "service": "github" }),
            "{source:?}"
        );
        if source != Source::RestApi {
            assert_eq!(key.raw["cookies"], json!([]), "{source:?}: {}", key.raw);
        }
    }

    let status = f
        .call(Call::get("/info/status").with_key().event(Source::HttpApi))
        .await;
    assert_eq!(status.json["environment"], "aws-lambda", "{}", status.raw);
    let requests = f.upstream.received_requests().await.unwrap();
    assert!(
        requests
            .iter()
            .all(|r| r.headers.get(UPSTREAM_KEY_NAME).unwrap() == UPSTREAM_KEY_VALUE)
    );
}

#[tokio::test]
async fn a_create_passes_the_sealed_blobs_through_unchanged_from_every_event_format() {
    let mut f = Function::start(|_| {}).await;
    upstream(
        &f,
        "POST",
        "/github-secrets-repo/create",
        upstream_ok(
            201,
            json!({ "created": true }),
            &["Secret 'AWS_REGION' created"],
        ),
    )
    .await;

    let body = create_body(repo_target(), "AWS_REGION");
    let calls = [
        (
            Source::HttpApi,
            Call::post("/operations/github/secrets/create", &body),
        ),
        (
            Source::RestApi,
            Call::post("/operations/github/secrets/create", &body),
        ),
        (
            Source::FunctionUrl,
            Call::post("/operations/github/secrets/create", &body).base64(),
        ),
    ];
    for (source, call) in calls {
        let created = f.call(call.with_key().event(source)).await;
        assert_json_answer(&created, 200, &format!("{source:?} create"));
        assert_eq!(
            created.json["data"],
            json!({ "created": true, "secret_name": "AWS_REGION", "scope": "repo" }),
            "{source:?}"
        );
        assert_eq!(created.json["success"], true);
    }

    let sent = f.upstream.received_requests().await.unwrap();
    assert_eq!(sent.len(), 3);
    for request in &sent {
        let upstream_body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(upstream_body["encrypted_pat"], sealed_pat());
        assert_eq!(
            upstream_body["request_data"]["encrypted_value"],
            sealed_value()
        );
    }
    let output = f.output();
    assert!(output.contains("request completed"), "{output}");
    assert!(
        !output.contains(&sealed_pat()[..16]) && !output.contains(&sealed_value()[..16]),
        "a sealed blob reached the function's log"
    );
}

#[tokio::test]
async fn an_invalid_request_is_answered_400_without_calling_the_github_service() {
    let mut f = Function::start(|_| {}).await;
    let mut body = create_body(repo_target(), "AWS_REGION");
    body["target"]["owner"] = json!("octo org/../x");

    for source in SOURCES {
        let call = Call::post("/operations/github/secrets/create", &body).with_key();
        let refused = f.call(call.event(source)).await;
        assert_json_answer(&refused, 400, &format!("{source:?}"));
        assert_eq!(
            refused.json["error_type"], "invalid_input",
            "{}",
            refused.raw
        );
        assert!(refused.json["error"].as_str().unwrap().contains("owner"));
    }
    let broken = Call::post("/operations/github/secrets/create", &json!({}))
        .with_key()
        .event(Source::HttpApi);
    let mut broken = broken;
    broken["body"] = json!("{ not json");
    let refused = f.call(broken).await;
    assert_json_answer(&refused, 400, "unparsable body");

    let unknown = f
        .call(
            Call::get("/no/such/route")
                .with_key()
                .event(Source::HttpApi),
        )
        .await;
    assert_json_answer(&unknown, 404, "unknown route");
    assert_eq!(f.upstream.received_requests().await.unwrap().len(), 0);
}

#[tokio::test]
async fn the_api_key_is_required_and_accepted_as_a_header_or_a_cookie() {
    let mut f = Function::serving_the_public_key().await;

    for source in SOURCES {
        let missing = f.call(Call::get("/public-keys/github").event(source)).await;
        assert_json_answer(&missing, 401, &format!("{source:?} no key"));
        assert_eq!(missing.json["error_type"], "unauthorized");

        let wrong = Call::get("/public-keys/github").header(API_KEY_NAME, "not-the-key");
        let wrong = f.call(wrong.event(source)).await;
        assert_json_answer(&wrong, 401, &format!("{source:?} wrong key"));
        assert!(!wrong.raw.to_string().contains("not-the-key"));

        let cookie = Call::get("/public-keys/github")
            .cookie("theme=dark")
            .cookie(&format!("{API_KEY_NAME}={API_KEY_VALUE}"));
        let by_cookie = f.call(cookie.event(source)).await;
        assert_json_answer(&by_cookie, 200, &format!("{source:?} cookie"));

        let by_header = f
            .call(Call::get("/public-keys/github").with_key().event(source))
            .await;
        assert_json_answer(&by_header, 200, &format!("{source:?} header"));
    }
    assert_eq!(f.upstream.received_requests().await.unwrap().len(), 1); // then cached
}

#[tokio::test]
async fn an_api_gateway_stage_in_the_path_is_not_part_of_the_route() {
    let mut f = Function::serving_the_public_key().await;

    let cases = [
        // REST API: `path` has no stage, lambda_http adds it.
        (
            Source::RestApi,
            Call::get("/info/health").stage("dev", false),
        ),
        // HTTP API on a named stage through its execute-api URL: the stage is in rawPath.
        (
            Source::HttpApi,
            Call::get("/info/health").stage("dev", true),
        ),
        // HTTP API behind a custom domain mapped to a named stage: rawPath has no stage.
        (
            Source::HttpApi,
            Call::get("/info/health").stage("dev", false),
        ),
        (
            Source::HttpApi,
            Call::get("/public-keys/github")
                .with_key()
                .stage("prod", true),
        ),
    ];
    for (source, call) in cases {
        let answer = f.call(call.event(source)).await;
        assert_json_answer(&answer, 200, &format!("{source:?} {call:?}"));
    }
    let not_a_stage = f
        .call(
            Call::get("/devinfo/health")
                .with_key()
                .stage("dev", false)
                .event(Source::RestApi),
        )
        .await;
    assert_eq!(not_a_stage.status, 404, "{}", not_a_stage.raw);
}

#[tokio::test]
async fn a_slow_operation_is_answered_504_before_the_invocation_deadline_and_the_function_goes_on()
{
    let mut f = Function::with_a_create_taking_30_seconds().await;

    let body = create_body(repo_target(), "AWS_REGION");
    let call = Call::post("/operations/github/secrets/create", &body).with_key();
    let slow = f
        .invoke(call.event(Source::HttpApi), Duration::from_secs(2))
        .await;

    assert!(slow.before_deadline, "answered after the deadline");
    assert_json_answer(&slow, 504, "slow create");
    assert_eq!(
        slow.headers["x-request-id"],
        format!("request-{}-1", f.tag),
        "the invocation's id"
    );
    assert_eq!(slow.json["error_type"], "deadline", "{}", slow.raw);
    assert!(
        slow.json["error"]
            .as_str()
            .unwrap()
            .contains("may or may not have taken effect")
    );
    let next = f
        .call(Call::get("/info/health").event(Source::HttpApi))
        .await;
    assert_json_answer(&next, 200, "the invocation after");
}

#[tokio::test]
async fn a_slow_workflow_reports_what_finished_before_the_invocation_deadline() {
    let mut f = Function::with_a_create_taking_30_seconds().await;
    upstream(&f, "POST", "/github-secrets-repo/list", listing(&["A"])).await;
    let other_repo = json!({ "owner": "octo-org", "repo": "other-service" });
    let workflow = json!({
        "credentials": { "github_pat": sealed_pat() },
        "target": repo_target(),
        "options": { "deadline_seconds": 25 },
        "operations": [
            { "type": "github:secrets:list" },
            { "type": "github:secrets:create", "secret_name": "SLOW", "target": other_repo,
              "encrypted_value": sealed_value() },
        ],
    });

    let call = Call::post("/execute", &workflow).with_key();
    let report = f
        .invoke(call.event(Source::HttpApi), Duration::from_secs(3))
        .await;

    assert!(report.before_deadline, "answered after the deadline");
    assert_json_answer(&report, 207, "slow workflow");
    let json = &report.json;
    assert_eq!(
        (json["completed"].as_u64(), json["failed"].as_u64()),
        (Some(1), Some(1)),
        "{json}"
    );
    assert_eq!(json["results"][0]["status"], "completed");
    let slow = &json["results"][1];
    assert_eq!(
        (&slow["status"], &slow["error_type"], &slow["attempts"]),
        (&json!("failed"), &json!("deadline"), &json!(1)),
        "{slow}"
    );
    assert!(
        slow["error"].as_str().unwrap().contains("unknown"),
        "{slow}"
    );
}

#[tokio::test]
async fn without_an_api_key_configured_the_function_fails_closed() {
    let mut f = Function::start(|env| {
        env.remove("FAST_API__AUTH__API_KEY__NAME");
        env.remove("FAST_API__AUTH__API_KEY__VALUE");
    })
    .await;

    let health = f
        .call(Call::get("/info/health").event(Source::HttpApi))
        .await;
    assert_json_answer(&health, 200, "health stays open");
    let body = create_body(repo_target(), "AWS_REGION");
    let refused = f
        .call(Call::post("/operations/github/secrets/create", &body).event(Source::HttpApi))
        .await;
    assert_json_answer(&refused, 401, "operations are locked");
    assert_eq!(f.upstream.received_requests().await.unwrap().len(), 0);
}

#[tokio::test]
async fn a_deadline_the_function_cannot_believe_is_replaced_by_the_configured_budget_with_one_warning()
 {
    let mut f = Function::start(|_| {}).await;
    upstream(
        &f,
        "POST",
        "/github-secrets-repo/create",
        upstream_ok(201, json!({ "created": true }), &[]),
    )
    .await;
    let body = create_body(repo_target(), "AWS_REGION");
    let call = Call::post("/operations/github/secrets/create", &body).with_key();

    // `cargo lambda watch` sends a duration (600000 ms) where Lambda sends an epoch time; and an
    // epoch a year ahead is no Lambda deadline either.
    let year_ahead = epoch_ms(SystemTime::now() + Duration::from_secs(365 * 86_400));
    for deadline_ms in [600_000, year_ahead] {
        let answer = f
            .invoke_with_deadline(
                call.event(Source::FunctionUrl),
                deadline_ms,
                Duration::from_secs(20),
            )
            .await;
        assert_json_answer(&answer, 200, "create under an unbelievable deadline");
    }
    let output = f.output();
    assert_eq!(
        output
            .matches("cannot be a Lambda invocation deadline")
            .count(),
        1,
        "one warning:\n{output}"
    );
}

#[tokio::test]
async fn a_workflow_run_in_lambda_mode_is_read_back_from_the_history_step_by_step() {
    let mut f = Function::start(|_| {}).await;
    upstream(
        &f,
        "POST",
        "/github-secrets-repo/create",
        upstream_ok(201, json!({ "created": true }), &[]),
    )
    .await;
    upstream(&f, "POST", "/github-secrets-repo/list", listing(&[])).await;
    let id = format!("lambda-history-{}", f.tag);
    let workflow = json!({
        "credentials": { "github_pat": sealed_pat() }, "target": repo_target(),
        "operations": [
            { "type": "github:secrets:create", "secret_name": "AWS_REGION", "encrypted_value": sealed_value() },
            { "type": "github:secrets:create", "secret_name": "API_TOKEN", "encrypted_value": sealed_value() },
        ] });
    let report = f
        .call(
            Call::post("/execute", &workflow)
                .with_key()
                .header("x-request-id", &id)
                .event(Source::HttpApi),
        )
        .await;
    assert_json_answer(&report, 200, "workflow");
    assert!(
        report.json.get("messages").is_none(),
        "no note: recorded. {}",
        report.raw
    );

    let read = json!({ "encrypted_pat": sealed_pat(), "id": id });
    let got = f
        .call(
            Call::post("/executions/get", &read)
                .with_key()
                .event(Source::FunctionUrl),
        )
        .await;
    assert_json_answer(&got, 200, "history");
    let execution = &got.json["data"]["execution"];
    assert_eq!(execution["status"], "completed", "{execution}");
    assert_eq!(execution["caller"], API_KEY_NAME);
    let names: Vec<&str> = execution["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["secret_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["AWS_REGION", "API_TOKEN"]);

    let status = f
        .call(Call::get("/info/status").with_key().event(Source::HttpApi))
        .await;
    assert_eq!(
        status.json["history"],
        json!({ "store": history_backend(), "state": "ok" })
    );
}

#[tokio::test]
async fn in_lambda_mode_an_unset_store_keeps_no_history_and_says_so_once() {
    let mut f = Function::start(|env| {
        env.remove("DEPLOY__STORE");
    })
    .await;
    let status = f
        .call(Call::get("/info/status").with_key().event(Source::HttpApi))
        .await;
    assert_eq!(
        status.json["history"],
        json!({ "store": "none", "state": "off" })
    );
    let read = json!({ "encrypted_pat": sealed_pat(), "target": repo_target() });
    let listed = f
        .call(
            Call::post("/executions/list", &read)
                .with_key()
                .event(Source::HttpApi),
        )
        .await;
    assert_json_answer(&listed, 503, "no history");
    assert_eq!(listed.json["error_type"], "history_unavailable");
    let output = f.output();
    assert_eq!(
        output
            .matches("DEPLOY__STORE is unset in AWS Lambda")
            .count(),
        1,
        "one warning:\n{output}"
    );
}

#[tokio::test]
async fn a_store_that_cannot_be_used_stops_the_function_at_start_naming_the_variable() {
    let mut f = Function::start(|env| {
        // Nothing listens on port 9 of loopback.
        env.insert("DEPLOY__STORE".into(), "dynamodb:no-such-table".into());
        env.insert(
            "AWS_ENDPOINT_URL_DYNAMODB".into(),
            "http://127.0.0.1:9".into(),
        );
        for (k, v) in [
            ("AWS_REGION", "eu-west-2"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ] {
            env.insert(k.into(), v.into());
        }
    })
    .await;
    let (status, output) = f.exited().await;
    assert_eq!(status.code(), Some(2), "{output}");
    assert!(
        output.contains("DEPLOY__STORE") && output.contains("no-such-table"),
        "{output}"
    );
}
