//! The OpenAPI 3.1 document of this service, generated from the API crate's types and the same
//! operation list the router routes ([`OperationKind::ALL`]). Served at `GET /openapi.json`;
//! `GET /docs` renders it.

use mgraph_deploy_api::{
    CreateBody, CreateData, DeleteData, ErrorBody, ErrorType, ExistsData, GetData, Health,
    HistoryGetBody, HistoryGetData, HistoryListBody, HistoryListData, HistoryOperation, ListBody,
    ListData, OperationKind, Plan, PresenceBody, PresenceData, PublicKeyInfo, Report, SecretBody,
    SecretsStateBody, SecretsStateData, ServiceStatus, TokenCheckBody, TokenCheckData,
    TokenOperation, Version, WorkflowBody,
};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{HttpMethod, Operation, OperationBuilder, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref,
    RefOr, ResponseBuilder,
};
use utoipa::{PartialSchema, ToSchema};

const JSON: &str = "application/json";
const HEADER_SCHEME: &str = "api_key_header";
const COOKIE_SCHEME: &str = "api_key_cookie";

/// The document. `api_key_name` is the configured header (and cookie) name of the API key.
pub fn document(api_key_name: &str) -> OpenApi {
    let mut components = ComponentsBuilder::new()
        .security_scheme(
            HEADER_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                api_key_name,
                "This service's API key (FAST_API__AUTH__API_KEY__VALUE)",
            ))),
        )
        .security_scheme(
            COOKIE_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                api_key_name,
                "The API key as a cookie of the same name, read when the header is absent",
            ))),
        );
    let mut schemas = Vec::new();
    collect::<ListBody>(&mut schemas);
    collect::<SecretBody>(&mut schemas);
    collect::<CreateBody>(&mut schemas);
    collect::<PresenceBody>(&mut schemas);
    collect::<WorkflowBody>(&mut schemas);
    collect::<Report>(&mut schemas);
    collect::<Plan>(&mut schemas);
    collect::<ErrorBody>(&mut schemas);
    collect::<Health>(&mut schemas);
    collect::<Version>(&mut schemas);
    collect::<ServiceStatus>(&mut schemas);
    collect::<PublicKeyInfo>(&mut schemas);
    for kind in OperationKind::ALL {
        let (data, collect_data): (&str, fn(&mut Schemas)) = match kind {
            OperationKind::List => ("ListData", collect::<ListData>),
            OperationKind::Get => ("GetData", collect::<GetData>),
            OperationKind::Exists => ("ExistsData", collect::<ExistsData>),
            OperationKind::Create => ("CreateData", collect::<CreateData>),
            OperationKind::Delete => ("DeleteData", collect::<DeleteData>),
            OperationKind::Presence => ("PresenceData", collect::<PresenceData>),
        };
        collect_data(&mut schemas);
        schemas.push((envelope_name(kind), envelope(data, "OperationKind")));
    }
    collect::<HistoryListBody>(&mut schemas);
    collect::<HistoryGetBody>(&mut schemas);
    collect::<HistoryListData>(&mut schemas);
    collect::<HistoryGetData>(&mut schemas);
    collect::<SecretsStateBody>(&mut schemas);
    collect::<SecretsStateData>(&mut schemas);
    collect::<HistoryOperation>(&mut schemas);
    for operation in HistoryOperation::ALL {
        schemas.push((
            history_envelope_name(operation),
            envelope(history_data(operation), "HistoryOperation"),
        ));
    }
    collect::<TokenCheckBody>(&mut schemas);
    collect::<TokenCheckData>(&mut schemas);
    collect::<TokenOperation>(&mut schemas);
    schemas.push((
        TOKEN_CHECK_ENVELOPE.to_owned(),
        envelope("TokenCheckData", "TokenOperation"),
    ));
    schemas.push(("EmptyObject".to_owned(), empty_object()));
    schemas.sort_by(|a, b| a.0.cmp(&b.0));
    schemas.dedup_by(|a, b| a.0 == b.0);
    components = components.schemas_from_iter(schemas);

    let mut paths = PathsBuilder::new()
        .path(
            "/info/health",
            PathItem::new(
                HttpMethod::Get,
                public(get(
                    "Liveness: always 200 while the process serves",
                    "Health",
                )),
            ),
        )
        .path(
            "/info/version",
            PathItem::new(HttpMethod::Get, get("This service's version", "Version")),
        )
        .path(
            "/info/status",
            PathItem::new(
                HttpMethod::Get,
                get(
                    "Name, version and runtime (local or lambda)",
                    "ServiceStatus",
                ),
            ),
        )
        .path(
            "/public-keys/github",
            PathItem::new(
                HttpMethod::Get,
                upstream_failures(
                    get(
                        "The GitHub Service's public key: seal the PAT and every value to it",
                        "PublicKeyInfo",
                    ),
                    "ErrorBody",
                ),
            ),
        )
        .path("/execute", PathItem::new(HttpMethod::Post, execute()))
        .path("/execute/plan", PathItem::new(HttpMethod::Post, plan()))
        .path(
            "/openapi.json",
            PathItem::new(
                HttpMethod::Get,
                public(
                    OperationBuilder::new()
                        .summary(Some("This document"))
                        .response(
                            "200",
                            with_request_id(
                                ResponseBuilder::new().description("OpenAPI 3.1").content(
                                    JSON,
                                    ContentBuilder::new()
                                        .schema(Some(
                                            ObjectBuilder::new().schema_type(Type::Object),
                                        ))
                                        .build(),
                                ),
                            ),
                        )
                        .build(),
                ),
            ),
        )
        .path(
            "/docs",
            PathItem::new(
                HttpMethod::Get,
                public(
                    OperationBuilder::new()
                        .summary(Some(
                            "This document, rendered (Swagger UI, served by this service)",
                        ))
                        .response(
                            "303",
                            with_request_id(
                                ResponseBuilder::new()
                                    .description("To the page at /docs/")
                                    .header(
                                        "location",
                                        HeaderBuilder::new().schema(String::schema()).build(),
                                    ),
                            ),
                        )
                        .build(),
                ),
            ),
        );
    for kind in OperationKind::ALL {
        paths = paths.path(
            kind.path(),
            PathItem::new(HttpMethod::Post, operation(kind)),
        );
    }
    paths = paths.path(
        TokenOperation::Check.path(),
        PathItem::new(HttpMethod::Post, token_check()),
    );
    for operation in HistoryOperation::ALL {
        paths = paths.path(
            operation.path(),
            PathItem::new(HttpMethod::Post, history(operation)),
        );
    }

    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("MGraph-AI Deploy Service")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Writes GitHub Actions secrets without ever being able to read them: the PAT and every value arrive sealed to the GitHub Service's public key and are passed through unchanged. Every answer carries `x-request-id`.",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components.build()))
        .security(Some([
            SecurityRequirement::new(HEADER_SCHEME, Vec::<String>::new()),
            SecurityRequirement::new(COOKIE_SCHEME, Vec::<String>::new()),
        ]))
        .build()
}

type Schemas = Vec<(String, RefOr<Schema>)>;

/// `T` and every schema it refers to.
fn collect<T: ToSchema>(schemas: &mut Schemas) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}

fn envelope_name(kind: OperationKind) -> String {
    let verb = kind.verb();
    format!("{}{}Envelope", verb[..1].to_uppercase(), &verb[1..])
}

fn history_envelope_name(operation: HistoryOperation) -> String {
    let verb = operation.verb();
    format!(
        "Executions{}{}Envelope",
        verb[..1].to_uppercase(),
        &verb[1..]
    )
}

fn history_data(operation: HistoryOperation) -> &'static str {
    match operation {
        HistoryOperation::List => "HistoryListData",
        HistoryOperation::Get => "HistoryGetData",
        HistoryOperation::Secrets => "SecretsStateData",
    }
}

fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

fn empty_object() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .description(Some("`{}`: the data of a failure"))
        .into()
}

/// The §1 envelope of one operation (named by the schema `operations`): `data` is its data on
/// success, `{}` on failure.
fn envelope(data: &str, operations: &str) -> RefOr<Schema> {
    let nullable = |schema: RefOr<Schema>| -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(schema)
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .into()
    };
    let string = || ObjectBuilder::new().schema_type(Type::String);
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("success", ObjectBuilder::new().schema_type(Type::Boolean))
        .required("success")
        .property("operation", nullable(reference(operations)))
        .required("operation")
        .property(
            "data",
            OneOfBuilder::new()
                .item(reference(data))
                .item(reference("EmptyObject")),
        )
        .required("data")
        .property("error", string().description(Some("Empty on success")))
        .required("error")
        .property("error_type", nullable(reference("ErrorType")))
        .required("error_type")
        .property(
            "messages",
            ObjectBuilder::new()
                .schema_type(Type::Array)
                .to_array_builder()
                .items(string())
                .build(),
        )
        .required("messages")
        .property("duration", ObjectBuilder::new().schema_type(Type::Number))
        .required("duration")
        .property("rate_limit", nullable(reference("RateLimit")))
        .required("rate_limit")
        .into()
}

fn with_request_id(response: ResponseBuilder) -> ResponseBuilder {
    response.header(
        "x-request-id",
        HeaderBuilder::new()
            .schema(String::schema())
            .description(Some(
                "The request's id: the client's when it is a plain identifier of at most 128 characters, else a new UUID",
            ))
            .build(),
    )
}

fn json_response(description: &str, schema: &str) -> ResponseBuilder {
    with_request_id(
        ResponseBuilder::new().description(description).content(
            JSON,
            ContentBuilder::new()
                .schema(Some(reference(schema)))
                .build(),
        ),
    )
}

fn get(summary: &str, schema: &str) -> Operation {
    let operation = OperationBuilder::new()
        .summary(Some(summary))
        .response("200", json_response("OK", schema).build());
    with_failures(operation, "ErrorBody", &[ErrorType::Unauthorized]).build()
}

/// No API key needed.
fn public(mut operation: Operation) -> Operation {
    operation.security = Some(vec![SecurityRequirement::default()]);
    operation
        .responses
        .responses
        .retain(|status, _| status != "401");
    operation
}

fn upstream_failures(operation: Operation, schema: &str) -> Operation {
    let mut builder: OperationBuilder = operation.into();
    for t in [
        ErrorType::UpstreamError,
        ErrorType::UpstreamUnavailable,
        ErrorType::UpstreamTimeout,
    ] {
        builder = builder.response(status(t), failure_response(t, schema).build());
    }
    builder.build()
}

fn status(t: ErrorType) -> String {
    t.status().as_u16().to_string()
}

fn failure_response(t: ErrorType, schema: &str) -> ResponseBuilder {
    json_response(&format!("`error_type`: {}", failure_types(t)), schema)
}

/// Every error type answered with `t`'s status.
fn failure_types(t: ErrorType) -> String {
    ErrorType::ALL
        .into_iter()
        .filter(|o| o.status() == t.status() && *o != ErrorType::Stopped)
        .map(|o| format!("`{}`", o.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds the responses of `types`, and the failures every route can answer: a wrong method
/// (405), a body over the limit on operation routes (400), a bug (500).
fn with_failures(
    mut operation: OperationBuilder,
    schema: &str,
    types: &[ErrorType],
) -> OperationBuilder {
    for t in types
        .iter()
        .copied()
        .chain([ErrorType::MethodNotAllowed, ErrorType::InternalError])
    {
        let mut response = failure_response(t, schema);
        if t == ErrorType::RateLimited {
            response = response.header(
                "retry-after",
                HeaderBuilder::new()
                    .schema(u64::schema())
                    .description(Some(
                        "Seconds until GitHub's rate limit resets (1 to 3600), when known",
                    ))
                    .build(),
            );
        }
        operation = operation.response(status(t), response.build());
    }
    operation
}

fn request_body(
    schema: &str,
    description: &str,
    example: serde_json::Value,
) -> utoipa::openapi::request_body::RequestBody {
    RequestBodyBuilder::new()
        .description(Some(description))
        .required(Some(utoipa::openapi::Required::True))
        .content(
            JSON,
            ContentBuilder::new()
                .schema(Some(reference(schema)))
                .example(Some(example))
                .build(),
        )
        .build()
}

/// Stand-ins for sealed blobs in the examples: standard base64 that says what to put there.
/// Sealed boxes differ with every key, so no example can hold a working one.
const EXAMPLE_PAT: &str =
    "PASTE/HERE/the/output/of/printf+PAT+then+mgraph+deploy+cli+seal/for+the+GitHub+PAT+A";
const EXAMPLE_VALUE: &str =
    "PASTE/HERE/the/output/of/printf+VALUE+then+mgraph+deploy+cli+seal/for+the+value+";

/// The example body of `kind`: the local stack's repository (`mgraph-deploy-local`), names a
/// first try can use as they are, and blob stand-ins to replace.
fn example(kind: OperationKind) -> serde_json::Value {
    let repository = serde_json::json!({ "owner": "local-owner", "repo": "local-repo" });
    let mut body = serde_json::json!({ "encrypted_pat": EXAMPLE_PAT, "target": repository });
    match kind {
        OperationKind::List => {}
        OperationKind::Get | OperationKind::Exists | OperationKind::Delete => {
            body["secret_name"] = "API_KEY".into();
        }
        OperationKind::Create => {
            body["secret_name"] = "API_KEY".into();
            body["encrypted_value"] = EXAMPLE_VALUE.into();
        }
        OperationKind::Presence => {
            body["target"]["environment"] = "production".into();
            body["required"] = serde_json::json!(["API_KEY", "GITHUB_TOKEN"]);
        }
    }
    body
}

/// The example workflow: a write, then a check that it is there.
fn workflow_example() -> serde_json::Value {
    serde_json::json!({
        "credentials": { "github_pat": EXAMPLE_PAT },
        "target": { "owner": "local-owner", "repo": "local-repo" },
        "operations": [
            { "type": "github:secrets:create", "secret_name": "API_KEY", "encrypted_value": EXAMPLE_VALUE },
            { "type": "github:secrets:exists", "secret_name": "API_KEY" },
        ],
    })
}

fn operation(kind: OperationKind) -> Operation {
    let (body, summary) = match kind {
        OperationKind::List => (
            "ListBody",
            "List the secrets of a scope (names and dates, never values)",
        ),
        OperationKind::Get => ("SecretBody", "One secret's metadata"),
        OperationKind::Exists => ("SecretBody", "Whether a secret exists"),
        OperationKind::Create => ("CreateBody", "Create or overwrite a secret"),
        OperationKind::Delete => ("SecretBody", "Delete a secret"),
        OperationKind::Presence => (
            "PresenceBody",
            "Which names a workflow run in this repository (and environment) would see",
        ),
    };
    let envelope = envelope_name(kind);
    let operation = OperationBuilder::new()
        .operation_id(Some(kind.verb()))
        .summary(Some(summary))
        .description(Some(format!(
            "`{}`. The body is read as JSON whatever its Content-Type; every answer is the envelope.",
            kind.name()
        )))
        .request_body(Some(request_body(
            body,
            "The sealed PAT, the target and the operation's fields. The example's blobs are stand-ins: replace each with the output of `mgraph-deploy-cli seal` (the PAT, then the value, on its stdin)",
            example(kind),
        )))
        .response("200", json_response("Done", &envelope).build());
    let types: Vec<ErrorType> = ErrorType::ALL
        .into_iter()
        .filter(|t| {
            !matches!(
                t,
                ErrorType::Stopped | ErrorType::MethodNotAllowed | ErrorType::InternalError
            )
        })
        .collect();
    let mut seen = Vec::new();
    let types: Vec<ErrorType> = types
        .into_iter()
        .filter(|t| {
            let fresh = !seen.contains(&t.status());
            seen.push(t.status());
            fresh
        })
        .collect();
    with_failures(operation, &envelope, &types).build()
}

/// The example body of a history route.
fn history_example(operation: HistoryOperation) -> serde_json::Value {
    match operation {
        HistoryOperation::List => serde_json::json!({
            "encrypted_pat": EXAMPLE_PAT,
            "target": { "owner": "local-owner", "repo": "local-repo" },
            "limit": 20,
        }),
        HistoryOperation::Get => serde_json::json!({
            "encrypted_pat": EXAMPLE_PAT,
            "id": "PASTE-an-id-from-executions-list",
        }),
        HistoryOperation::Secrets => serde_json::json!({
            "encrypted_pat": EXAMPLE_PAT,
            "target": { "owner": "local-owner", "repo": "local-repo" },
        }),
    }
}

fn history(operation: HistoryOperation) -> Operation {
    let (body, summary, description) = match operation {
        HistoryOperation::Secrets => (
            "SecretsStateBody",
            "Each secret of a target, against what this service wrote",
            "Every secret GitHub lists in the target, and every one this service wrote there: `in_sync` (this service wrote it last, by its value's fingerprint, and GitHub's `updated_at` has not moved), `drifted` (changed outside this service since), `missing` (deleted outside it), `unconfirmed` (written without a fingerprint, or the write's end never confirmed), `unmanaged` (not written by this service: never pruned). Shown only when the sealed PAT can list the target's secrets (the same check as `list`, and its failures).",
        ),
        HistoryOperation::List => (
            "HistoryListBody",
            "A target's executions, newest first",
            "Every `/execute`, create, delete and refusal that touched the target, with its summary; `next_cursor` continues the list. Shown only when the sealed PAT can list the target's secrets (the same check as `list`, and its failures).",
        ),
        HistoryOperation::Get => (
            "HistoryGetBody",
            "One execution and its steps",
            "The steps on targets whose secrets the sealed PAT can list; `not_found` when it can list none of them, or the id is unknown or expired. A PAT that is invalid or sealed to another key, a rate limit or an upstream failure is answered as `list` answers it.",
        ),
    };
    let envelope = history_envelope_name(operation);
    let op = OperationBuilder::new()
        .operation_id(Some(format!("executions_{}", operation.verb())))
        .summary(Some(summary))
        .description(Some(format!(
            "`{}`. {description} The history holds names, targets, outcomes, times and counts, never a value, a blob or a PAT. POST, so that the sealed PAT never goes in a URL.",
            operation.name()
        )))
        .request_body(Some(request_body(
            body,
            "The sealed PAT and what to read. The example's PAT is a stand-in: replace it with the output of `mgraph-deploy-cli seal`",
            history_example(operation),
        )))
        .response("200", json_response("Done", &envelope).build());
    let types = [
        ErrorType::InvalidInput,
        ErrorType::Unauthorized,
        ErrorType::InvalidPat,
        ErrorType::DecryptionFailed,
        ErrorType::Forbidden,
        ErrorType::NotFound,
        ErrorType::RateLimited,
        ErrorType::UpstreamError,
        ErrorType::HistoryUnavailable,
        ErrorType::UpstreamTimeout,
    ];
    with_failures(op, &envelope, &types).build()
}

const TOKEN_CHECK_ENVELOPE: &str = "TokenCheckEnvelope";

fn token_check() -> Operation {
    let operation = TokenOperation::Check;
    let op = OperationBuilder::new()
        .operation_id(Some(format!("token_{}", operation.verb())))
        .summary(Some("Whose PAT this is, and whether it can read a target's secrets"))
        .description(Some(format!(
            "`{}`. As `gh auth status`: the GitHub Service tests the sealed PAT against GitHub (`GET /user`, `GET /rate_limit`) and this answers with its login and rate limit. With a `target`, one `list` there tells whether the PAT can read that target's secrets (`data.target`); a list refused for the PAT's own reason (`forbidden`, `not_found`, `invalid_pat`) is `can_read_secrets: false`, any other failure fails the check. GitHub does not tell whether a PAT can write secrets until it writes one. POST, so that the sealed PAT never goes in a URL.",
            operation.name()
        )))
        .request_body(Some(request_body(
            "TokenCheckBody",
            "The sealed PAT, and optionally a target. The example's PAT is a stand-in: replace it with the output of `mgraph-deploy-cli seal`",
            serde_json::json!({
                "encrypted_pat": EXAMPLE_PAT,
                "target": { "owner": "local-owner", "repo": "local-repo" },
            }),
        )))
        .response("200", json_response("Done", TOKEN_CHECK_ENVELOPE).build());
    let types = [
        ErrorType::InvalidInput,
        ErrorType::Unauthorized,
        ErrorType::DecryptionFailed,
        ErrorType::RateLimited,
        ErrorType::UpstreamError,
        ErrorType::UpstreamUnavailable,
        ErrorType::UpstreamTimeout,
    ];
    with_failures(op, TOKEN_CHECK_ENVELOPE, &types).build()
}

fn execute() -> Operation {
    let operation = OperationBuilder::new()
        .operation_id(Some("execute"))
        .summary(Some("Run a workflow"))
        .description(Some(
            "Runs every operation of a valid workflow: 200 when all completed, 207 otherwise. An invalid workflow runs nothing and is answered 422 with its plan and every error.",
        ))
        .request_body(Some(request_body(
            "WorkflowBody",
            "The workflow file. The example's blobs are stand-ins: replace each with the output of `mgraph-deploy-cli seal`",
            workflow_example(),
        )))
        .response("200", json_response("Every step completed", "Report").build())
        .response("207", json_response("Some step failed or was skipped", "Report").build())
        .response("422", json_response("Invalid workflow: nothing ran", "Plan").build());
    with_failures(operation, "ErrorBody", &[ErrorType::Unauthorized]).build()
}

fn plan() -> Operation {
    let operation = OperationBuilder::new()
        .operation_id(Some("plan"))
        .summary(Some("Plan a workflow without running it"))
        .request_body(Some(request_body(
            "WorkflowBody",
            "The workflow file. The example's blobs are stand-ins: replace each with the output of `mgraph-deploy-cli seal`",
            workflow_example(),
        )))
        .response(
            "200",
            json_response("A valid workflow's plan", "Plan").build(),
        )
        .response(
            "422",
            json_response("Invalid workflow: its errors", "Plan").build(),
        );
    with_failures(operation, "ErrorBody", &[ErrorType::Unauthorized]).build()
}
