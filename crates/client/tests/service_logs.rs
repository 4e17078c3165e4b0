//! The service's log output over a whole session of real traffic (the CLI's apply, single
//! operations in every scope, PAT failures, a rotated key, bad input) carries neither a sealed
//! blob nor a plaintext value nor the PAT. The service runs in this process, so its log is
//! captured at trace level by a global subscriber; this file holds one test for that reason.

use std::io::Write;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mgraph_deploy::config::LogFormat;
use mgraph_deploy::telemetry;
use mgraph_deploy_client::{
    ApiKey, DeployClient, ErrorType, PublicKey, Sealed, Target, WriteOptions,
};
use mgraph_deploy_emulator::{PatKind, seed};
use mgraph_deploy_local::{LocalStack, StackOptions};
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

const PLAINTEXTS: [&str; 3] = [
    "plaintext-value-number-one",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCY+EXAMPLE=KEY",
    "second line of a multi-line secret",
];

#[tokio::test(flavor = "multi_thread")]
async fn the_service_log_never_carries_a_sealed_blob_a_plaintext_or_the_pat() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(telemetry::subscriber(
        LogFormat::Json,
        "mgraph_deploy=trace,tower_http=trace,reqwest=trace,hyper=trace,hyper_util=trace,rustls=trace,info",
        capture.clone(),
    ))
    .unwrap();
    // What reqwest logs through the `log` crate is captured too.
    tracing_log::LogTracer::init().unwrap();

    let stack = LocalStack::start(StackOptions::default()).await.unwrap();
    let api_key = ApiKey {
        name: stack.api_key.name.clone(),
        value: stack.api_key.value.clone(),
    };
    let client =
        DeployClient::new(&stack.service_url, Some(api_key), Duration::from_secs(30)).unwrap();
    let key: PublicKey = client.public_key().await.unwrap();
    let mut blobs: Vec<Sealed> = Vec::new();
    let mut seal = |text: &str| {
        let blob = key.seal(text.as_bytes());
        blobs.push(blob.clone());
        blob
    };
    let admin = seal(&PatKind::Admin.token());
    let expired = seal(&PatKind::Expired.token());
    let values: Vec<Sealed> = PLAINTEXTS.iter().map(|p| seal(p)).collect();
    let repo = Target::repo(seed::OWNER, seed::REPO).unwrap();
    let env = Target::environment(seed::OWNER, seed::REPO, seed::ENVIRONMENT).unwrap();
    let org = Target::org(seed::ORG).unwrap();

    for target in [&repo, &env, &org] {
        for (i, value) in values.iter().enumerate() {
            let name = format!("LOGGED_{i}");
            assert!(
                client
                    .create(&admin, target, &name, value, &WriteOptions::default())
                    .await
                    .unwrap()
                    .success
            );
            client.get(&admin, target, &name).await.unwrap();
            client.exists(&expired, target, &name).await.unwrap();
            client
                .create(&expired, target, &name, value, &WriteOptions::default())
                .await
                .unwrap();
        }
        client.list(&admin, target).await.unwrap();
        client.delete(&admin, target, "LOGGED_0").await.unwrap();
    }
    // A request the service refuses (the typed client would refuse this name itself): raw.
    let refused = reqwest::Client::new()
        .post(format!(
            "{}/operations/github/secrets/create",
            stack.service_url
        ))
        .header(&stack.api_key.name, &stack.api_key.value)
        .json(
            &json!({ "encrypted_pat": admin, "target": repo, "secret_name": "1BAD",
                       "encrypted_value": values[0] }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let workflow = json!({ "credentials": { "github_pat": admin }, "target": repo,
        "operations": values.iter().enumerate().map(|(i, v)| json!({ "type": "github:secrets:create", "secret_name": format!("WF_{i}"), "encrypted_value": v })).collect::<Vec<_>>() });
    client.execute(&workflow).await.unwrap();
    stack.emulator.rotate_key();
    let stale = client
        .create(&admin, &repo, "STALE", &values[1], &WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(stale.error_type, Some(ErrorType::DecryptionFailed));

    // And the CLI's apply, with a multi-line value.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v.env");
    std::fs::write(
        &file,
        format!(
            "A=\"{}\"\nB=\"first line\n{}\"\n",
            PLAINTEXTS[0], PLAINTEXTS[2]
        ),
    )
    .unwrap();
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_mgraph-deploy-cli"))
        .env_clear()
        .env("DEPLOY_SERVICE__URL", &stack.service_url)
        .env("DEPLOY_SERVICE__API_KEY__NAME", &stack.api_key.name)
        .env("DEPLOY_SERVICE__API_KEY__VALUE", &stack.api_key.value)
        .env("GIT_HUB__ACCESS_TOKEN", PatKind::Admin.token())
        .args([
            "apply",
            "-f",
            file.to_str().unwrap(),
            "--repo",
            "local-owner/local-repo",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(status.success());
    drop(stack);

    let log = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    assert!(
        log.matches("\"status\":201").count()
            + log.matches("status=201").count()
            + log.matches("\"status\":200").count()
            > 10,
        "the capture saw the requests:\n{log}"
    );
    assert!(
        log.contains("decryption_failed") && log.contains("invalid_pat"),
        "the capture saw the failures"
    );
    for blob in &blobs {
        for window in blob.expose().as_bytes().windows(12).step_by(4) {
            let window = std::str::from_utf8(window).unwrap();
            assert!(
                !log.contains(window),
                "a sealed blob fragment ({window}) is in the log"
            );
        }
    }
    for secret in PLAINTEXTS.iter().copied().chain([
        PatKind::Admin.token().as_str(),
        PatKind::Expired.token().as_str(),
    ]) {
        assert!(!log.contains(secret), "{secret:?} is in the log");
    }
}
