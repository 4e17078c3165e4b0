//! The store in one DynamoDB table (`aws-sdk-dynamodb`, the standard AWS configuration from the
//! environment: `AWS_REGION`, the function's credentials, `AWS_ENDPOINT_URL_DYNAMODB`).
//!
//! One table, key `pk` and `sk` (strings), `expires_at` (epoch seconds) its TTL attribute:
//! - `EXEC#<id>` / `META`: an execution's start and, once it ended, its end;
//! - `EXEC#<id>` / `STEP#<step, 6 digits>`: a step;
//! - `TARGET#<target key>` / `<started ms, 16 digits>#<id>`: an execution of a target, read
//!   backwards for newest first;
//! - `WRITTEN#<target key>` / `<secret name>`: what the service last wrote to a secret (no
//!   `expires_at`: it stays while the secret is the service's).
//!
//! DynamoDB deletes expired items late: every read leaves out what expired.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use mgraph_deploy_api::{
    ErrorType, ExecutionStatus, HistoryCursor, OperationKind, SecretName, StepOutcome,
};

use super::{
    Finish, NewExecution, Page, StepRecord, Store, StoreError, Stored, TargetKey, TargetRef,
    Written, sort_key,
};

const BACKEND: &str = "dynamodb";

type Item = HashMap<String, AttributeValue>;

/// The store in a DynamoDB table.
#[derive(Clone)]
pub struct DynamoDb {
    client: Client,
    table: String,
}

impl std::fmt::Debug for DynamoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoDb")
            .field("table", &self.table)
            .finish()
    }
}

fn error(e: impl std::fmt::Display) -> StoreError {
    StoreError {
        backend: BACKEND,
        message: e.to_string(),
        exists: false,
    }
}

/// An SDK error with its causes (the service's code and message; never an item's content).
fn sdk_error<E: std::error::Error>(what: &str, e: E) -> StoreError {
    error(format!("{what}: {}", DisplayErrorContext(e)))
}

/// A DynamoDB client configured from the environment, as AWS's SDKs are (region, credentials,
/// `AWS_ENDPOINT_URL_DYNAMODB`), over rustls with ring.
pub async fn client() -> Client {
    use aws_smithy_http_client::tls;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await;
    Client::new(&config)
}

impl DynamoDb {
    /// The store in `table`, with the AWS configuration from the environment; checks that the
    /// table is there and answers.
    pub async fn open(table: &str) -> Result<Self, StoreError> {
        let store = Self {
            client: client().await,
            table: table.to_owned(),
        };
        store
            .client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("table {table} cannot be used"), e))?;
        Ok(store)
    }

    /// Writes `items`, 25 at a time, again for what DynamoDB left unprocessed.
    async fn write_all(&self, items: Vec<Item>) -> Result<(), StoreError> {
        for chunk in items.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|item| {
                    let put = PutRequest::builder()
                        .set_item(Some(item.clone()))
                        .build()
                        .map_err(|e| error(format!("a put request: {e}")))?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<_, StoreError>>()?;
            for attempt in 0.. {
                let answer = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(|e| sdk_error("batch write", e))?;
                requests = answer
                    .unprocessed_items
                    .and_then(|mut left| left.remove(&self.table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                if attempt == 5 {
                    return Err(error("batch write: DynamoDB kept items unprocessed"));
                }
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
        }
        Ok(())
    }

    /// Puts an execution's `META` item only when there is none (ids are never merged).
    async fn put_meta(&self, item: Item) -> Result<(), StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError {
                    exists: true,
                    ..error("an execution with this id is recorded already")
                })
            }
            Err(e) => Err(sdk_error("put", e)),
        }
    }

    /// Every item of `pk` (paginated), those expired at `now` left out.
    async fn query_all(&self, pk: &str, now: u64) -> Result<Vec<Item>, StoreError> {
        let mut items = self.query_every(pk).await?;
        items.retain(|item| number(item, "expires_at").unwrap_or(0) > now);
        Ok(items)
    }

    /// Every item of `pk` (paginated).
    async fn query_every(&self, pk: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let answer = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error("query", e))?;
            items.extend(answer.items.unwrap_or_default());
            match answer.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }
}

fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn number(item: &Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

/// The serde name of a unit variant, and back.
fn word<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .expect("a unit variant serialises as its name")
}

fn from_word<T: serde::de::DeserializeOwned>(word: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(word.to_owned())).ok()
}

fn meta_item(e: &NewExecution, finish: Option<&Finish>) -> Item {
    let mut item: Item = HashMap::from([
        ("pk".to_owned(), s(format!("EXEC#{}", e.id))),
        ("sk".to_owned(), s("META")),
        ("id".to_owned(), s(&e.id)),
        ("started_ms".to_owned(), n(e.started_ms)),
        ("route".to_owned(), s(&e.route)),
        ("total".to_owned(), n(e.total)),
        // `[[key, name], ...]`
        (
            "targets".to_owned(),
            AttributeValue::L(
                e.targets
                    .iter()
                    .map(|t| AttributeValue::L(vec![s(t.key.as_str()), s(&t.shown)]))
                    .collect(),
            ),
        ),
        ("deadline_ms".to_owned(), n(e.deadline_ms)),
        ("expires_at".to_owned(), n(e.expires_at)),
    ]);
    if let Some(caller) = &e.caller {
        item.insert("caller".to_owned(), s(caller));
    }
    if let Some(f) = finish {
        item.extend(finish_attributes(f));
    }
    item
}

fn finish_attributes(f: &Finish) -> [(String, AttributeValue); 5] {
    [
        ("finished_ms".to_owned(), n(f.finished_ms)),
        ("status".to_owned(), s(word(&f.status))),
        ("completed".to_owned(), n(f.completed)),
        ("failed".to_owned(), n(f.failed)),
        ("skipped".to_owned(), n(f.skipped)),
    ]
}

fn index_items(e: &NewExecution) -> Vec<Item> {
    e.targets
        .iter()
        .map(|t| {
            HashMap::from([
                ("pk".to_owned(), s(format!("TARGET#{}", t.key))),
                ("sk".to_owned(), s(sort_key(e.started_ms, &e.id))),
                ("execution_id".to_owned(), s(&e.id)),
                ("expires_at".to_owned(), n(e.expires_at)),
            ])
        })
        .collect()
}

fn step_item(id: &str, step: &StepRecord, expires_at: u64) -> Item {
    let mut item: Item = HashMap::from([
        ("pk".to_owned(), s(format!("EXEC#{id}"))),
        ("sk".to_owned(), s(format!("STEP#{:06}", step.step))),
        ("step".to_owned(), n(step.step)),
        ("operation".to_owned(), s(step.operation.name())),
        ("outcome".to_owned(), s(word(&step.outcome))),
        ("duration_ms".to_owned(), n(step.duration_ms)),
        ("upstream_calls".to_owned(), n(step.upstream_calls)),
        ("expires_at".to_owned(), n(expires_at)),
    ]);
    if let Some(target) = &step.target {
        item.insert("target_key".to_owned(), s(target.key.as_str()));
        item.insert("target".to_owned(), s(&target.shown));
    }
    if let Some(scope) = step.scope {
        item.insert("scope".to_owned(), s(scope.as_str()));
    }
    if let Some(name) = &step.secret_name {
        item.insert("secret_name".to_owned(), s(name.as_str()));
    }
    if let Some(error_type) = step.error_type {
        item.insert("error_type".to_owned(), s(error_type.as_str()));
    }
    item
}

fn read_meta(item: &Item) -> Option<Stored> {
    let finish = match (number(item, "finished_ms"), text(item, "status")) {
        (Some(finished_ms), Some(status)) => Some(Finish {
            finished_ms,
            status: from_word::<ExecutionStatus>(&status)?,
            completed: number(item, "completed").unwrap_or(0),
            failed: number(item, "failed").unwrap_or(0),
            skipped: number(item, "skipped").unwrap_or(0),
        }),
        _ => None,
    };
    let targets = item
        .get("targets")
        .and_then(|v| v.as_l().ok())
        .map(|list| {
            list.iter()
                .filter_map(|v| match v.as_l().ok()?.as_slice() {
                    [key, shown] => TargetRef::read(key.as_s().ok()?, shown.as_s().ok()?.clone()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Stored {
        start: NewExecution {
            id: text(item, "id")?,
            started_ms: number(item, "started_ms")?,
            caller: text(item, "caller"),
            route: text(item, "route")?,
            total: number(item, "total")?,
            targets,
            deadline_ms: number(item, "deadline_ms")?,
            expires_at: number(item, "expires_at")?,
        },
        finish,
        steps: Vec::new(),
    })
}

fn read_step(item: &Item) -> Option<StepRecord> {
    let target = match (text(item, "target_key"), text(item, "target")) {
        (Some(key), Some(shown)) => TargetRef::read(&key, shown),
        _ => None,
    };
    Some(StepRecord {
        step: number(item, "step")?,
        operation: from_word::<OperationKind>(&text(item, "operation")?)?,
        target,
        scope: text(item, "scope").and_then(|w| from_word(&w)),
        secret_name: text(item, "secret_name").and_then(|n| n.try_into().ok()),
        outcome: from_word::<StepOutcome>(&text(item, "outcome")?)?,
        error_type: text(item, "error_type").and_then(|w| from_word::<ErrorType>(&w)),
        duration_ms: number(item, "duration_ms").unwrap_or(0),
        upstream_calls: number(item, "upstream_calls").unwrap_or(0),
    })
}

fn written_key(target: &TargetKey, name: &SecretName) -> [(String, AttributeValue); 2] {
    [
        ("pk".to_owned(), s(format!("WRITTEN#{target}"))),
        ("sk".to_owned(), s(name.as_str())),
    ]
}

fn written_item(w: &Written) -> Item {
    let mut item: Item = written_key(&w.target.key, &w.name).into_iter().collect();
    item.extend([
        ("target".to_owned(), s(&w.target.shown)),
        ("execution_id".to_owned(), s(&w.execution)),
        ("claim".to_owned(), s(&w.claim)),
        ("written_ms".to_owned(), n(w.written_ms)),
    ]);
    let optional = [
        (
            "fingerprint",
            w.fingerprint.as_ref().map(|f| f.as_str().to_owned()),
        ),
        ("settings", w.settings.clone()),
        ("updated_at", w.updated_at.clone()),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            item.insert(name.to_owned(), s(value));
        }
    }
    item
}

fn read_written(item: &Item) -> Option<Written> {
    let key = text(item, "pk")?;
    let target = TargetRef::read(key.strip_prefix("WRITTEN#")?, text(item, "target")?)?;
    Some(Written {
        target,
        name: SecretName::try_from(text(item, "sk")?).ok()?,
        execution: text(item, "execution_id")?,
        claim: text(item, "claim")?,
        written_ms: number(item, "written_ms")?,
        // A fingerprint this version cannot read is none: the next write writes.
        fingerprint: text(item, "fingerprint").and_then(|f| f.try_into().ok()),
        settings: text(item, "settings"),
        updated_at: text(item, "updated_at"),
    })
}

impl Store for DynamoDb {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn begin(&self, execution: NewExecution) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            self.put_meta(meta_item(&execution, None)).await?;
            self.write_all(index_items(&execution)).await
        }
        .boxed()
    }

    fn step(
        &self,
        id: String,
        step: StepRecord,
        expires_at: u64,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(step_item(&id, &step, expires_at)))
                .send()
                .await
                .map(drop)
                .map_err(|e| sdk_error("put", e))
        }
        .boxed()
    }

    fn finish(&self, id: String, finish: Finish) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(format!("EXEC#{id}")))
                .key("sk", s("META"))
                .condition_expression("attribute_exists(pk)")
                .update_expression(
                    "SET finished_ms = :finished_ms, #status = :status, completed = :completed, failed = :failed, skipped = :skipped",
                )
                .expression_attribute_names("#status", "status");
            for (name, value) in finish_attributes(&finish) {
                update = update.expression_attribute_values(format!(":{name}"), value);
            }
            update
                .send()
                .await
                .map(drop)
                .map_err(|e| sdk_error("update", e))
        }
        .boxed()
    }

    fn record(&self, execution: Stored) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let start = &execution.start;
            self.put_meta(meta_item(start, execution.finish.as_ref()))
                .await?;
            let mut items = index_items(start);
            items.extend(
                execution
                    .steps
                    .iter()
                    .map(|step| step_item(&start.id, step, start.expires_at)),
            );
            self.write_all(items).await
        }
        .boxed()
    }

    fn list(
        &self,
        target: TargetKey,
        limit: usize,
        cursor: Option<HistoryCursor>,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<Page, StoreError>> {
        async move {
            let now = now_ms / 1000;
            let pk = format!("TARGET#{target}");
            // Newest first; one more than asked, to know whether a page follows.
            let mut keys: Vec<(String, String)> = Vec::new();
            let mut start: Option<Item> = cursor.map(|c| {
                HashMap::from([("pk".to_owned(), s(&pk)), ("sk".to_owned(), s(c.as_str()))])
            });
            loop {
                let answer = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(&pk))
                    .scan_index_forward(false)
                    .limit((limit + 1 - keys.len()) as i32)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| sdk_error("query", e))?;
                keys.extend(answer.items.unwrap_or_default().iter().filter_map(|item| {
                    (number(item, "expires_at").unwrap_or(0) > now)
                        .then(|| Some((text(item, "sk")?, text(item, "execution_id")?)))
                        .flatten()
                }));
                match answer.last_evaluated_key {
                    Some(key) if !key.is_empty() && keys.len() <= limit => start = Some(key),
                    _ => break,
                }
            }
            let more = keys.len() > limit;
            keys.truncate(limit);
            let mut metas: HashMap<String, Stored> = HashMap::new();
            if !keys.is_empty() {
                let wanted: Vec<Item> = keys
                    .iter()
                    .map(|(_, id)| {
                        HashMap::from([
                            ("pk".to_owned(), s(format!("EXEC#{id}"))),
                            ("sk".to_owned(), s("META")),
                        ])
                    })
                    .collect();
                let mut request = Some(
                    KeysAndAttributes::builder()
                        .set_keys(Some(wanted))
                        .build()
                        .map_err(|e| error(format!("a batch get request: {e}")))?,
                );
                for attempt in 0.. {
                    let Some(asked) = request.take() else { break };
                    let answer = self
                        .client
                        .batch_get_item()
                        .request_items(&self.table, asked)
                        .send()
                        .await
                        .map_err(|e| sdk_error("batch get", e))?;
                    for item in answer
                        .responses
                        .and_then(|mut r| r.remove(&self.table))
                        .unwrap_or_default()
                    {
                        if let Some(meta) = read_meta(&item).filter(|m| m.start.expires_at > now) {
                            metas.insert(meta.start.id.clone(), meta);
                        }
                    }
                    request = answer
                        .unprocessed_keys
                        .and_then(|mut left| left.remove(&self.table))
                        .filter(|left| !left.keys.is_empty());
                    if request.is_some() && attempt == 5 {
                        return Err(error("batch get: DynamoDB kept keys unprocessed"));
                    }
                }
            }
            let next = keys
                .last()
                .filter(|_| more)
                .and_then(|(sk, _)| HistoryCursor::try_from(sk.clone()).ok());
            Ok(Page {
                executions: keys
                    .into_iter()
                    .filter_map(|(_, id)| metas.remove(&id))
                    .collect(),
                next,
            })
        }
        .boxed()
    }

    fn get(&self, id: String, now_ms: u64) -> BoxFuture<'_, Result<Option<Stored>, StoreError>> {
        async move {
            let items = self.query_all(&format!("EXEC#{id}"), now_ms / 1000).await?;
            let Some(mut execution) = items
                .iter()
                .find(|item| text(item, "sk").as_deref() == Some("META"))
                .and_then(read_meta)
            else {
                return Ok(None);
            };
            execution.steps = items
                .iter()
                .filter(|item| text(item, "sk").is_some_and(|sk| sk.starts_with("STEP#")))
                .filter_map(read_step)
                .collect();
            execution.steps.sort_by_key(|step| step.step);
            Ok(Some(execution))
        }
        .boxed()
    }

    fn claim(&self, written: Written) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(written_item(&written)))
                .send()
                .await
                .map(drop)
                .map_err(|e| sdk_error("put", e))
        }
        .boxed()
    }

    fn confirm(
        &self,
        target: TargetKey,
        name: SecretName,
        claim: String,
        updated_at: String,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            let update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(written_key(&target, &name).into_iter().collect()))
                .condition_expression("claim = :claim")
                .update_expression("SET updated_at = :updated_at")
                .expression_attribute_values(":claim", s(claim))
                .expression_attribute_values(":updated_at", s(updated_at))
                .send()
                .await;
            match update {
                Ok(_) => Ok(true),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                {
                    Ok(false)
                }
                Err(e) => Err(sdk_error("update", e)),
            }
        }
        .boxed()
    }

    fn written(
        &self,
        target: TargetKey,
        name: SecretName,
    ) -> BoxFuture<'_, Result<Option<Written>, StoreError>> {
        async move {
            let answer = self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(written_key(&target, &name).into_iter().collect()))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| sdk_error("get", e))?;
            Ok(answer.item.as_ref().and_then(read_written))
        }
        .boxed()
    }

    fn written_in(&self, target: TargetKey) -> BoxFuture<'_, Result<Vec<Written>, StoreError>> {
        async move {
            let items = self.query_every(&format!("WRITTEN#{target}")).await?;
            Ok(items.iter().filter_map(read_written).collect())
        }
        .boxed()
    }

    fn forget(&self, target: TargetKey, name: SecretName) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(written_key(&target, &name).into_iter().collect()))
                .send()
                .await
                .map(drop)
                .map_err(|e| sdk_error("delete", e))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    /// The DynamoDB actions this module's calls need (`client.put_item()` is `PutItem`).
    fn actions_called() -> std::collections::BTreeSet<String> {
        let source = include_str!("dynamodb.rs");
        let source = &source[..source.find("#[cfg(test)]").expect("this module")];
        let mut actions = std::collections::BTreeSet::new();
        for (at, _) in source.match_indices(".client") {
            let rest = source[at + ".client".len()..].trim_start();
            let Some(call) = rest.strip_prefix('.') else {
                continue;
            };
            let name: String = call
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let pascal: String = name
                .split('_')
                .map(|word| word[..1].to_ascii_uppercase() + &word[1..])
                .collect();
            actions.insert(format!("dynamodb:{pascal}"));
        }
        actions
    }

    /// The `dynamodb:` actions a policy file allows.
    fn actions_allowed(policy: &str) -> std::collections::BTreeSet<String> {
        policy
            .lines()
            .filter_map(|line| line.trim().strip_prefix("- dynamodb:"))
            .map(|action| format!("dynamodb:{action}"))
            .collect()
    }

    #[test]
    fn the_function_role_allows_exactly_the_calls_the_store_makes_and_its_boundary_all_of_them() {
        let called = actions_called();
        assert!(called.contains("dynamodb:DescribeTable"), "{called:?}");
        let role = actions_allowed(include_str!("../../deploy/template.yaml"));
        assert_eq!(role, called, "deploy/template.yaml");
        // The boundary also holds what CloudFormation needs to manage the table.
        let boundary = actions_allowed(include_str!("../../deploy/github-oidc.yaml"));
        let missing: Vec<_> = called.difference(&boundary).collect();
        assert!(
            missing.is_empty(),
            "deploy/github-oidc.yaml lacks {missing:?}"
        );
    }
}
