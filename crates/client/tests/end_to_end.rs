//! Client → Deploy Service → GitHub Service emulator, all on loopback with real sealing and real
//! decryption: every scope and route, the original brief's bootstrap, PAT failure modes, key
//! rotation and upstream faults.

use std::time::Duration;

use mgraph_deploy_api::{Action, OperationKind, PresenceScope, Visibility};
use mgraph_deploy_client::{
    Answer, DeployClient, Envelope, ErrorType, Execution, Plaintext, PublicKey, Sealed, Target,
    WriteOptions,
};
use mgraph_deploy_emulator::{Fault, PatKind, Scope, seed};
use mgraph_deploy_local::{LocalStack, StackOptions};
use serde_json::{Value, json};

struct World {
    stack: LocalStack,
    client: DeployClient,
    key: PublicKey,
}

impl World {
    async fn start() -> Self {
        let stack = LocalStack::start(StackOptions::default()).await.unwrap();
        let api_key = mgraph_deploy_client::ApiKey {
            name: stack.api_key.name.clone(),
            value: stack.api_key.value.clone(),
        };
        let client =
            DeployClient::new(&stack.service_url, Some(api_key), Duration::from_secs(30)).unwrap();
        let key = client.public_key().await.unwrap();
        Self { stack, client, key }
    }

    fn pat(&self, kind: PatKind) -> Sealed {
        self.key.seal(kind.token().as_bytes())
    }

    fn seal(&self, value: &str) -> Sealed {
        Plaintext::new(value.to_owned()).seal_to(&self.key)
    }

    fn stored(&self, scope: &Scope, name: &str) -> Option<String> {
        self.stack.emulator.secret(scope, name).map(|s| s.plaintext)
    }
}

fn repo() -> Target {
    Target::repo(seed::OWNER, seed::REPO).unwrap()
}

fn environment() -> Target {
    Target::environment(seed::OWNER, seed::REPO, seed::ENVIRONMENT).unwrap()
}

fn org() -> Target {
    Target::org(seed::ORG).unwrap()
}

fn scope_of(target: &Target) -> Scope {
    match target {
        Target::Repo { owner, repo } => Scope::repo(owner.as_str(), repo.as_str()),
        Target::Environment {
            owner,
            repo,
            environment,
        } => Scope::environment(owner.as_str(), repo.as_str(), environment.as_str()),
        Target::Org { org } => Scope::org(org.as_str()),
    }
}

/// The original brief's six bootstrap secrets, with awkward but legal values.
fn bootstrap() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCOUNT_ID", "123456789012"),
        ("AWS_DEFAULT_REGION", "eu-west-2"),
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE01"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCY+EXAMPLE=KEY",
        ),
        ("FAST_API__AUTH__API_KEY__NAME", "x-api-key"),
        (
            "FAST_API__AUTH__API_KEY__VALUE",
            "multi\nline \"quoted\" ünïcode €",
        ),
    ]
}

/// Status, error type and operation of an answer, whatever its data type.
fn failure_of<D>(answer: Answer<Envelope<D>>) -> (u16, Option<ErrorType>, Option<OperationKind>) {
    (answer.status, answer.error_type, answer.operation)
}

fn expect_failure<D: std::fmt::Debug>(
    envelope: &Answer<Envelope<D>>,
    status: u16,
    error_type: &str,
) {
    assert_eq!(
        (
            envelope.status,
            envelope.error_type.map(ErrorType::as_str),
            envelope.success
        ),
        (status, Some(error_type), false),
        "{envelope:?}"
    );
    assert!(envelope.data.is_none(), "{envelope:?}");
}

/// The data of a successful answer.
fn data<D: std::fmt::Debug>(answer: &Answer<Envelope<D>>) -> &D {
    answer
        .data
        .as_ref()
        .unwrap_or_else(|| panic!("a successful answer: {answer:?}"))
}

#[tokio::test]
async fn the_brief_s_six_secret_bootstrap_through_execute_arrives_intact() {
    let w = World::start().await;
    let operations: Vec<Value> = bootstrap()
        .iter()
        .map(|(name, value)| json!({ "type": "github:secrets:create", "secret_name": name, "encrypted_value": w.seal(value) }))
        .collect();
    let workflow = json!({ "credentials": { "github_pat": w.pat(PatKind::Admin) }, "target": repo(), "operations": operations });

    let plan = w.client.plan(&json!({ "options": { "check_state": true }, "credentials": workflow["credentials"], "target": workflow["target"], "operations": workflow["operations"] })).await.unwrap();
    assert!(plan.valid);
    assert!(
        plan.plan.iter().all(|s| s.action == Action::Create),
        "{:?}",
        plan.plan
    );

    let Execution::Ran(report) = w.client.execute(&workflow).await.unwrap() else {
        panic!("workflow refused")
    };
    assert_eq!(
        (report.status, report.completed, report.failed),
        (200, 6, 0)
    );
    for (name, value) in bootstrap() {
        assert_eq!(
            w.stored(&scope_of(&repo()), name).as_deref(),
            Some(value),
            "{name}"
        );
    }
    let again = w.client.plan(&json!({ "options": { "check_state": true }, "credentials": workflow["credentials"], "target": workflow["target"], "operations": workflow["operations"] })).await.unwrap();
    assert!(again.plan.iter().all(|s| s.action == Action::Update));
}

#[tokio::test]
async fn every_route_works_in_every_scope_and_values_arrive_intact() {
    let w = World::start().await;
    let pat = w.pat(PatKind::Admin);
    for target in [repo(), environment(), org()] {
        for (name, value) in bootstrap() {
            let options = WriteOptions {
                visibility: matches!(target, Target::Org { .. }).then_some(Visibility::All),
                ..Default::default()
            };
            let created = w
                .client
                .create(&pat, &target, name, &w.seal(value), &options)
                .await
                .unwrap();
            assert!(created.success, "{target} {name}: {created:?}");
            assert!(data(&created).created);
            assert_eq!(w.stored(&scope_of(&target), name).as_deref(), Some(value));
        }
        let listed = w.client.list(&pat, &target).await.unwrap();
        let names: Vec<&str> = data(&listed)
            .secrets
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names.len(), 6, "{target}: {names:?}");

        let got = w.client.get(&pat, &target, "AWS_ACCOUNT_ID").await.unwrap();
        assert_eq!(data(&got).secret.name.as_str(), "AWS_ACCOUNT_ID");
        if let Target::Org { .. } = target {
            assert_eq!(data(&got).secret.visibility, Some(Visibility::All));
        }
        let exists = w.client.exists(&pat, &target, "AWS_ACCOUNT_ID").await;
        assert!(data(&exists.unwrap()).exists);

        let deleted = w
            .client
            .delete(&pat, &target, "AWS_ACCOUNT_ID")
            .await
            .unwrap();
        assert!(data(&deleted).deleted);
        let exists = w.client.exists(&pat, &target, "AWS_ACCOUNT_ID").await;
        assert!(!data(&exists.unwrap()).exists);
        expect_failure(
            &w.client.get(&pat, &target, "AWS_ACCOUNT_ID").await.unwrap(),
            404,
            "not_found",
        );
        assert!(w.stored(&scope_of(&target), "AWS_ACCOUNT_ID").is_none());
    }
    let presence = w
        .client
        .presence(
            &pat,
            &environment(),
            &[
                "AWS_DEFAULT_REGION".into(),
                "GITHUB_TOKEN".into(),
                "AWS_ACCOUNT_ID".into(),
            ],
        )
        .await
        .unwrap();
    assert!(!data(&presence).all_present);
    let scopes: Vec<Option<PresenceScope>> =
        data(&presence).secrets.iter().map(|s| s.scope).collect();
    assert_eq!(
        scopes,
        [
            Some(PresenceScope::Environment),
            Some(PresenceScope::Builtin),
            None
        ]
    );
}

#[tokio::test]
async fn pat_failures_map_to_the_documented_error_types_on_every_verb() {
    let w = World::start().await;
    let value = w.seal("v");
    let cases = [
        (PatKind::Expired, 401, "invalid_pat"),
        (PatKind::Invalid, 401, "invalid_pat"),
        (PatKind::NoScopes, 403, "forbidden"),
        (PatKind::EnvOnly, 403, "forbidden"),
        (PatKind::RateLimited, 429, "rate_limited"),
    ];
    for (kind, status, error_type) in cases {
        let pat = w.pat(kind);
        let t = repo();
        let answers = [
            failure_of(w.client.list(&pat, &t).await.unwrap()),
            failure_of(w.client.get(&pat, &t, "X").await.unwrap()),
            failure_of(w.client.exists(&pat, &t, "X").await.unwrap()),
            failure_of(
                w.client
                    .create(&pat, &t, "X", &value, &WriteOptions::default())
                    .await
                    .unwrap(),
            ),
            failure_of(w.client.delete(&pat, &t, "X").await.unwrap()),
        ];
        for (status_got, error_type_got, operation) in answers {
            assert_eq!(
                (status_got, error_type_got.map(ErrorType::as_str)),
                (status, Some(error_type)),
                "{kind:?} {operation:?}"
            );
        }
    }
    // A PAT without admin:org on an organisation; a read-only PAT writing (the upstream's 500
    // cannot be diagnosed further than "the PAT can read but the write failed").
    expect_failure(
        &w.client
            .list(&w.pat(PatKind::RepoWrite), &org())
            .await
            .unwrap(),
        403,
        "forbidden",
    );
    let read_only = w
        .client
        .create(
            &w.pat(PatKind::RepoRead),
            &repo(),
            "X",
            &value,
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    expect_failure(&read_only, 502, "upstream_ambiguous");
    assert!(read_only.error.contains("write"), "{}", read_only.error);

    // GitHub's primary rate limit, spent.
    w.stack
        .emulator
        .github(|gh| gh.exhaust_rate_limit(&PatKind::Admin.token(), Duration::from_secs(120)));
    expect_failure(
        &w.client
            .list(&w.pat(PatKind::Admin), &repo())
            .await
            .unwrap(),
        429,
        "rate_limited",
    );
}

#[tokio::test]
async fn missing_repositories_environments_and_organisations_are_not_found_and_env_fallback_writes_the_repo()
 {
    let w = World::start().await;
    let pat = w.pat(PatKind::Admin);
    let value = w.seal("v");
    let no_repo = Target::repo(seed::OWNER, "nope").unwrap();
    let no_env = Target::environment(seed::OWNER, seed::REPO, "staging").unwrap();
    let no_org = Target::org("nope-org").unwrap();
    for target in [&no_repo, &no_env, &no_org] {
        expect_failure(
            &w.client.list(&pat, target).await.unwrap(),
            404,
            "not_found",
        );
        expect_failure(
            &w.client
                .create(&pat, target, "X", &value, &WriteOptions::default())
                .await
                .unwrap(),
            404,
            "not_found",
        );
        expect_failure(
            &w.client.exists(&pat, target, "X").await.unwrap(),
            404,
            "not_found",
        );
    }
    let fallback = WriteOptions {
        env_fallback: true,
        ..Default::default()
    };
    let written = w
        .client
        .create(&pat, &no_env, "FALLBACK", &w.seal("fb"), &fallback)
        .await
        .unwrap();
    assert_eq!(
        (data(&written).scope, data(&written).env_fallback),
        (mgraph_deploy_api::Scope::Repo, true)
    );
    assert_eq!(
        w.stored(&scope_of(&repo()), "FALLBACK").as_deref(),
        Some("fb")
    );
}

#[tokio::test]
async fn a_rotated_upstream_key_is_reported_as_decryption_failed_and_the_next_key_works() {
    let w = World::start().await;
    w.stack.emulator.rotate_key();
    let stale = w
        .client
        .create(
            &w.pat(PatKind::Admin),
            &repo(),
            "X",
            &w.seal("v"),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    expect_failure(&stale, 422, "decryption_failed");
    assert!(
        stale.error.contains("/public-keys/github"),
        "{}",
        stale.error
    );

    let fresh = w.client.public_key().await.unwrap();
    assert_ne!(fresh, w.key, "the service dropped its cached key");
    assert_eq!(fresh.to_hex(), w.stack.emulator.public_key_hex());
    let pat = fresh.seal(PatKind::Admin.token().as_bytes());
    let ok = w
        .client
        .create(
            &pat,
            &repo(),
            "X",
            &fresh.seal(b"v"),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    assert!(ok.success, "{ok:?}");
}

#[tokio::test]
async fn upstream_faults_are_retried_inside_a_workflow_and_reported_precisely_on_single_operations()
{
    let w = World::start().await;
    let pat = w.pat(PatKind::Admin);
    w.stack.emulator.fail_next(Fault::Status(503), 1);
    expect_failure(
        &w.client.list(&pat, &repo()).await.unwrap(),
        502,
        "upstream_error",
    );
    // A connection dropped before any answer is sent once more on a new connection; a second
    // drop is reported.
    w.stack.emulator.fail_next(Fault::Reset, 1);
    let recovered = w.client.list(&pat, &repo()).await.unwrap();
    assert!(recovered.success, "{recovered:?}");
    w.stack.emulator.fail_next(Fault::Reset, 2);
    let reset = w.client.list(&pat, &repo()).await.unwrap();
    assert!(!reset.success && reset.status >= 500, "{reset:?}");

    w.stack.emulator.fail_next(Fault::Status(503), 1);
    w.stack.emulator.fail_next(Fault::Reset, 2);
    let workflow = json!({ "credentials": { "github_pat": pat }, "target": repo(), "options": { "concurrency": 1 },
        "operations": [ { "type": "github:secrets:create", "secret_name": "RETRIED", "encrypted_value": w.seal("r") } ] });
    let Execution::Ran(report) = w.client.execute(&workflow).await.unwrap() else {
        panic!("refused")
    };
    assert_eq!(
        (report.completed, report.results[0].attempts),
        (1, 3),
        "{report:?}"
    );
    assert_eq!(
        w.stored(&scope_of(&repo()), "RETRIED").as_deref(),
        Some("r")
    );
}

#[tokio::test]
async fn the_info_routes_answer_through_the_typed_client() {
    let w = World::start().await;
    assert_eq!(w.client.health().await.unwrap().status, "ok");
    let status = w.client.status().await.unwrap();
    assert_eq!(
        (status.name.as_str(), status.environment.as_str()),
        ("mgraph_ai_service_deploy", "local")
    );
    assert_eq!(w.client.version().await.unwrap().version, status.version);
    assert_eq!(w.key.to_hex(), w.stack.emulator.public_key_hex());
}
