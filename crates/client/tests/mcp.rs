//! `mgraph-deploy-cli mcp` driven by rmcp's own client over the child's stdio, against the
//! offline stack: every tool, its refusals, and no value, PAT or API key in any result.

mod common;

use common::*;
use mgraph_deploy_emulator::{PatKind, Scope, seed};
use mgraph_deploy_local::LocalStack;
use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::{ConfigureCommandExt as _, TokioChildProcess};
use serde_json::{Value, json};

/// The value `from_env` reads, in the server's environment.
const FROM_ENV: &str = "value-from-the-servers-environment-7f3a";

struct Agent {
    client: RunningService<RoleClient, ()>,
    /// Every result the agent received, as JSON text.
    seen: std::sync::Mutex<Vec<String>>,
}

impl Agent {
    async fn start(stack: &LocalStack, pat: PatKind) -> Self {
        let command = tokio::process::Command::new(CLI).configure(|c| {
            c.env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("DEPLOY_SERVICE__URL", &stack.service_url)
                .env("DEPLOY_SERVICE__API_KEY__NAME", &stack.api_key.name)
                .env("DEPLOY_SERVICE__API_KEY__VALUE", &stack.api_key.value)
                .env("GIT_HUB__ACCESS_TOKEN", pat.token())
                .env("AGENT_VALUE", FROM_ENV)
                .arg("mcp")
                .kill_on_drop(true);
        });
        let client = ().serve(TokioChildProcess::new(command).unwrap()).await.unwrap();
        Agent {
            client,
            seen: std::sync::Mutex::new(Vec::new()),
        }
    }

    async fn call(&self, tool: &str, arguments: Value) -> CallToolResult {
        let arguments = arguments.as_object().unwrap().clone();
        let result = self
            .client
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
            .await
            .unwrap();
        self.seen
            .lock()
            .unwrap()
            .push(serde_json::to_string(&result).unwrap());
        result
    }

    /// The structured content of a result that is not an error.
    async fn ok(&self, tool: &str, arguments: Value) -> Value {
        let result = self.call(tool, arguments).await;
        let content = result.structured_content.clone().unwrap_or_default();
        assert_ne!(result.is_error, Some(true), "{tool}: {content}");
        content
    }

    /// The structured content of a tool error.
    async fn refused(&self, tool: &str, arguments: Value) -> Value {
        let result = self.call(tool, arguments).await;
        let content = result.structured_content.clone().unwrap_or_default();
        assert_eq!(result.is_error, Some(true), "{tool}: {content}");
        content
    }

    fn assert_nothing_seen_contains(&self, secrets: &[&str]) {
        let seen = self.seen.lock().unwrap().join("\n");
        for secret in secrets {
            assert!(!seen.contains(secret), "a tool result holds a secret");
        }
    }
}

fn stored(stack: &LocalStack, scope: &Scope, name: &str) -> Option<String> {
    stack.emulator.secret(scope, name).map(|s| s.plaintext)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_lists_every_tool_with_its_arguments_and_each_says_it_never_returns_values() {
    let stack = stack().await;
    let agent = Agent::start(&stack, PatKind::Admin).await;

    let info = agent.client.peer_info().unwrap();
    assert_eq!(info.server_info.name, "mgraph-deploy-cli");
    let tools = agent.client.list_all_tools().await.unwrap();
    let expected = [
        ("list_secrets", vec!["repo", "org", "environment"]),
        ("check_presence", vec!["names", "repo", "environment"]),
        ("preflight", vec!["dir", "repo"]),
        (
            "plan_apply",
            vec![
                "file",
                "repo",
                "org",
                "environment",
                "env_fallback",
                "prune",
                "force",
                "confirm",
            ],
        ),
        (
            "apply",
            vec![
                "file",
                "repo",
                "org",
                "environment",
                "env_fallback",
                "prune",
                "force",
                "confirm",
            ],
        ),
        (
            "set_secret",
            vec![
                "name",
                "repo",
                "org",
                "environment",
                "from_env",
                "from_file",
                "generate",
            ],
        ),
        ("history", vec!["repo", "org", "environment", "limit"]),
        ("status", vec!["repo", "org", "environment"]),
    ];
    assert_eq!(tools.len(), expected.len());
    for (name, arguments) in expected {
        let tool = tools
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no tool {name}"));
        let description = tool.description.as_deref().unwrap_or_default();
        assert!(
            description.to_lowercase().contains("never"),
            "{name}: {description}"
        );
        let properties = tool.input_schema["properties"].as_object().unwrap();
        for argument in arguments {
            assert!(properties.contains_key(argument), "{name}: no {argument}");
        }
    }
    agent.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn values_from_the_environment_a_file_and_a_generator_are_written_and_never_returned() {
    let stack = stack().await;
    let agent = Agent::start(&stack, PatKind::Admin).await;
    let scope = Scope::repo(seed::OWNER, seed::REPO);
    let dir = tempfile::tempdir().unwrap();
    let file_value = "value-from-a-local-file-91c2";
    let file = write_file(dir.path(), "value.txt", file_value);

    let set = agent
        .ok(
            "set_secret",
            json!({ "name": "FROM_ENV", "repo": REPO, "from_env": "AGENT_VALUE" }),
        )
        .await;
    assert_eq!(set["result"]["data"]["scope"], "repo", "{set}");
    agent
        .ok(
            "set_secret",
            json!({ "name": "from_file", "repo": REPO, "from_file": file }),
        )
        .await;
    let generated = agent
        .ok(
            "set_secret",
            json!({ "name": "GENERATED", "repo": REPO, "generate": { "length": 48, "alphabet": "base64url" } }),
        )
        .await;
    assert_eq!(
        generated["generated"],
        json!({ "length": 48, "alphabet": "base64url", "shown": false })
    );

    assert_eq!(
        stored(&stack, &scope, "FROM_ENV").as_deref(),
        Some(FROM_ENV)
    );
    assert_eq!(
        stored(&stack, &scope, "FROM_FILE").as_deref(),
        Some(file_value)
    );
    let value = stored(&stack, &scope, "GENERATED").unwrap();
    assert_eq!(value.len(), 48);
    assert!(
        value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );

    let presence = agent
        .ok(
            "check_presence",
            json!({ "names": ["FROM_ENV", "FROM_FILE", "GENERATED", "GITHUB_TOKEN"], "repo": REPO }),
        )
        .await;
    assert_eq!(
        presence["result"]["data"]["all_present"], true,
        "{presence}"
    );
    let listed = agent.ok("list_secrets", json!({ "repo": REPO })).await;
    let names: Vec<&str> = listed["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(names.contains(&"GENERATED"), "{listed}");

    agent.assert_nothing_seen_contains(&[
        FROM_ENV,
        file_value,
        &value,
        &PatKind::Admin.token(),
        &stack.api_key.value,
    ]);
    agent.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prune_is_only_planned_until_the_agent_confirms_it() {
    let stack = stack().await;
    let agent = Agent::start(&stack, PatKind::Admin).await;
    let scope = Scope::repo(seed::OWNER, seed::REPO);
    let dir = tempfile::tempdir().unwrap();
    let both = write_file(dir.path(), "both.env", "KEEP_ME=1\nDROP_ME=2\n");
    let one = write_file(dir.path(), "one.env", "KEEP_ME=1\n");

    let applied = agent
        .ok("apply", json!({ "file": both, "repo": REPO }))
        .await;
    assert_eq!(applied["result"]["completed"], 2, "{applied}");
    let planned = agent
        .ok(
            "plan_apply",
            json!({ "file": one, "repo": REPO, "prune": true }),
        )
        .await;
    assert!(planned["result"]["plan"].is_array(), "{planned}");

    let unconfirmed = agent
        .ok("apply", json!({ "file": one, "repo": REPO, "prune": true }))
        .await;
    assert_eq!(unconfirmed["confirmation_needed"], true, "{unconfirmed}");
    assert_eq!(unconfirmed["would_delete"], json!(["DROP_ME"]));
    assert!(
        stored(&stack, &scope, "DROP_ME").is_some(),
        "deleted without confirm"
    );

    let confirmed = agent
        .ok(
            "apply",
            json!({ "file": one, "repo": REPO, "prune": true, "confirm": true }),
        )
        .await;
    assert!(
        confirmed.get("confirmation_needed").is_none(),
        "{confirmed}"
    );
    assert!(stored(&stack, &scope, "DROP_ME").is_none());
    assert!(stored(&stack, &scope, "KEEP_ME").is_some());

    let history = agent
        .ok("history", json!({ "repo": REPO, "limit": 5 }))
        .await;
    assert!(
        history.to_string().contains("DROP_ME") || history["exit_code"] == 0,
        "{history}"
    );
    let status = agent.ok("status", json!({ "repo": REPO })).await;
    assert!(status.to_string().contains("KEEP_ME"), "{status}");
    agent.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn preflight_reads_the_workflows_on_this_machine() {
    let stack = stack().await;
    let agent = Agent::start(&stack, PatKind::Admin).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
    write_file(
        &dir.path().join(".github/workflows"),
        "ci.yml",
        "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ secrets.NEEDED_BY_CI }}\n",
    );

    let found = agent
        .ok(
            "preflight",
            json!({ "dir": dir.path().to_str().unwrap(), "repo": REPO }),
        )
        .await;
    assert_eq!(found["result"]["ok"], false, "{found}");
    assert_eq!(found["result"]["secrets"][0]["name"], "NEEDED_BY_CI");
    assert_eq!(found["result"]["secrets"][0]["present"], false);
    agent.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_are_tool_errors_with_the_cli_s_own_words() {
    let stack = stack().await;
    let agent = Agent::start(&stack, PatKind::Admin).await;

    let no_source = agent
        .refused("set_secret", json!({ "name": "ANY", "repo": REPO }))
        .await;
    assert_eq!(no_source["error_type"], "value_needed");
    assert!(
        no_source["error"]
            .as_str()
            .unwrap()
            .contains("mgraph-deploy-cli ui")
    );

    // A misspelt argument never quietly changes where a value goes.
    let typo = agent
        .call(
            "set_secret",
            json!({ "name": "TYPO", "repo": REPO, "enviroment": "production", "generate": { "length": 10 } }),
        )
        .await;
    assert_eq!(typo.is_error, Some(true), "{typo:?}");
    assert!(
        stack
            .emulator
            .secret(&Scope::repo(seed::OWNER, seed::REPO), "TYPO")
            .is_none()
    );

    for (tool, arguments) in [
        ("list_secrets", json!({ "repo": "--org=evil/x" })),
        ("list_secrets", json!({ "repo": REPO, "org": "local-org" })),
        (
            "list_secrets",
            json!({ "org": "local-org", "environment": "prod" }),
        ),
        (
            "set_secret",
            json!({ "name": "GITHUB_X", "repo": REPO, "from_env": "AGENT_VALUE" }),
        ),
        (
            "set_secret",
            json!({ "name": "TWO", "repo": REPO, "from_env": "AGENT_VALUE", "generate": { "length": 10 } }),
        ),
        (
            "set_secret",
            json!({ "name": "SHORT", "repo": REPO, "generate": { "length": 4 } }),
        ),
        (
            "set_secret",
            json!({ "name": "UNSET", "repo": REPO, "from_env": "NOT_SET_ANYWHERE" }),
        ),
        ("apply", json!({ "file": "-", "repo": REPO })),
        (
            "set_secret",
            json!({ "name": "LEAK", "repo": REPO, "from_env": "GIT_HUB__ACCESS_TOKEN" }),
        ),
        (
            "set_secret",
            json!({ "name": "LEAK", "repo": REPO, "from_env": "DEPLOY_SERVICE__API_KEY__VALUE" }),
        ),
        ("check_presence", json!({ "names": [], "repo": REPO })),
    ] {
        let refused = agent.refused(tool, arguments.clone()).await;
        assert_eq!(
            refused["error_type"], "invalid_input",
            "{arguments}: {refused}"
        );
    }
    // A file the CLI refuses: its own message, with line and column.
    let dir = tempfile::tempdir().unwrap();
    let bad = write_file(dir.path(), "bad.env", "GOOD=1\n1BAD=2\n");
    let refused = agent
        .refused("apply", json!({ "file": bad, "repo": REPO }))
        .await;
    assert!(
        refused["error"].as_str().unwrap().contains("line 2"),
        "{refused}"
    );
    agent.client.cancel().await.unwrap();

    // A PAT GitHub rejects: the service's error type, as the CLI reports it.
    let agent = Agent::start(&stack, PatKind::Expired).await;
    let refused = agent.refused("list_secrets", json!({ "repo": REPO })).await;
    assert_eq!(refused["error_type"], "invalid_pat", "{refused}");
    agent.assert_nothing_seen_contains(&[&PatKind::Expired.token()]);
    agent.client.cancel().await.unwrap();
}
