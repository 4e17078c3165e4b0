//! Request bodies. Each operation's own fields are one type ([`ListOp`], [`SecretOp`],
//! [`CreateOp`], [`PresenceOp`]): an operation route's body is that plus `encrypted_pat`
//! ([`OperationBody`]), and a workflow step is that plus its `type` ([`WorkflowOperation`]), so
//! both are read by one grammar. Unknown members are refused, and so is `null` for any member
//! (leave an optional member out instead).

use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type,
};
use utoipa::{PartialSchema, ToSchema};

use crate::{
    EnvFallback, OperationKind, PresenceName, Scope, SealedPat, SealedValue, SecretName, Target,
    ValueFingerprint, Visibility, present, present_concurrency, present_deadline_seconds,
    present_whole_numbers,
};

/// `github:secrets:list`: every secret's metadata in one scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListOp {
    pub target: Target,
}

/// `github:secrets:get`, `exists` and `delete`: one secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretOp {
    pub target: Target,
    pub secret_name: SecretName,
}

/// `github:secrets:create`: write (create or overwrite) one secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOp {
    pub target: Target,
    pub secret_name: SecretName,
    pub encrypted_value: SealedValue,
    /// Organisation targets only. Left out: an existing secret keeps its visibility (a new one is
    /// `private`); with `repo_ids` alone, `selected`.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub visibility: Option<Visibility>,
    /// Organisation targets with visibility `selected` only: the repositories that may read it.
    #[serde(
        default,
        deserialize_with = "present_whole_numbers",
        skip_serializing_if = "Option::is_none"
    )]
    pub repo_ids: Option<Vec<u64>>,
    /// Environment targets only: `repo` writes the repository secret when the environment does
    /// not exist.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub env_fallback: Option<EnvFallback>,
    /// A keyed fingerprint of the value, computed on the client: with it, the service skips a
    /// write whose value it wrote last and that nobody changed since (`unchanged`), and tells a
    /// secret changed outside it (`drifted`).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub value_fingerprint: Option<ValueFingerprint>,
}

/// `github:secrets:presence`: which names a workflow run in this repository (and environment)
/// would see. 1 to 100 names; not for organisation targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceOp {
    #[schema(schema_with = repository_or_environment)]
    pub target: Target,
    #[schema(min_items = 1, max_items = 100)]
    pub required: Vec<PresenceName>,
}

/// The body of an operation route: the sealed PAT and the operation's fields. Written by
/// clients. Read in one pass: the members other than `encrypted_pat` are the operation's, read
/// by its own type (so they are refused as it refuses them: unknown, duplicated, `null`), and
/// `encrypted_pat` is required once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperationBody<Op> {
    pub encrypted_pat: SealedPat,
    #[serde(flatten)]
    pub op: Op,
}

impl<'de, Op: Deserialize<'de>> Deserialize<'de> for OperationBody<Op> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(OperationBodyVisitor(std::marker::PhantomData))
    }
}

struct OperationBodyVisitor<Op>(std::marker::PhantomData<Op>);

impl<'de, Op: Deserialize<'de>> serde::de::Visitor<'de> for OperationBodyVisitor<Op> {
    type Value = OperationBody<Op>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let mut pat = None;
        let op = Op::deserialize(serde::de::value::MapAccessDeserializer::new(WithoutPat {
            map,
            pat: &mut pat,
        }))?;
        let encrypted_pat = pat.ok_or_else(|| serde::de::Error::missing_field("encrypted_pat"))?;
        Ok(OperationBody { encrypted_pat, op })
    }
}

/// The members of an operation body but `encrypted_pat`, which it reads aside.
struct WithoutPat<'p, A> {
    map: A,
    pat: &'p mut Option<SealedPat>,
}

impl<'de, A: serde::de::MapAccess<'de>> serde::de::MapAccess<'de> for WithoutPat<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        use serde::de::IntoDeserializer as _;
        while let Some(key) = self.map.next_key::<Key<'de>>()? {
            if key.0 != "encrypted_pat" {
                return seed.deserialize(key.0.into_deserializer()).map(Some);
            }
            if self.pat.is_some() {
                return Err(serde::de::Error::duplicate_field("encrypted_pat"));
            }
            *self.pat = Some(self.map.next_value()?);
        }
        Ok(None)
    }

    fn next_value_seed<V: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// A member's name, borrowed from the input unless it had to be unescaped.
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> serde::de::Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(key)))
            }
            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(key.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

pub type ListBody = OperationBody<ListOp>;
pub type SecretBody = OperationBody<SecretOp>;
pub type CreateBody = OperationBody<CreateOp>;
pub type PresenceBody = OperationBody<PresenceOp>;

macro_rules! operation_body_schema {
    ($op:ty, $name:literal) => {
        /// The operation's schema with `encrypted_pat` added (to each alternative).
        impl PartialSchema for OperationBody<$op> {
            fn schema() -> RefOr<Schema> {
                map_objects(<$op>::schema(), &mut |object| {
                    object
                        .properties
                        .insert("encrypted_pat".to_owned(), SealedPat::schema());
                    object.required.insert(0, "encrypted_pat".to_owned());
                })
            }
        }

        impl ToSchema for OperationBody<$op> {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed($name)
            }

            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                <$op as ToSchema>::schemas(schemas);
            }
        }
    };
}

operation_body_schema!(ListOp, "ListBody");
operation_body_schema!(SecretOp, "SecretBody");
operation_body_schema!(CreateOp, "CreateBody");
operation_body_schema!(PresenceOp, "PresenceBody");

/// `schema` with `change` applied to its object, or to each object of its alternatives.
fn map_objects(
    schema: RefOr<Schema>,
    change: &mut dyn FnMut(&mut utoipa::openapi::schema::Object),
) -> RefOr<Schema> {
    match schema {
        RefOr::T(Schema::Object(mut object)) => {
            change(&mut object);
            RefOr::T(Schema::Object(object))
        }
        RefOr::T(Schema::AnyOf(mut any_of)) => {
            any_of.items = any_of
                .items
                .into_iter()
                .map(|item| map_objects(item, change))
                .collect();
            RefOr::T(Schema::AnyOf(any_of))
        }
        other => other,
    }
}

fn repo_id() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .maximum(Some(crate::MAX_WHOLE_NUMBER))
}

fn repository_or_environment() -> RefOr<Schema> {
    Target::schema_of(&[Scope::Repo, Scope::Environment])
}

/// The options a write takes depend on its target's scope, so the schema lists each allowed
/// combination: repository; environment (with `env_fallback`); organisation keeping the
/// visibility, setting `all` or `private`, or `selected` with at least one repository id.
impl PartialSchema for CreateOp {
    fn schema() -> RefOr<Schema> {
        let base = |scope: Scope| {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
                .property("target", Target::shape_schema(scope))
                .required("target")
                .property("secret_name", SecretName::schema())
                .required("secret_name")
                .property("encrypted_value", SealedValue::schema())
                .required("encrypted_value")
                .property("value_fingerprint", ValueFingerprint::schema())
        };
        let visibility = |values: &[&str]| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(values.to_vec()))
        };
        let repo_ids = ArrayBuilder::new()
            .items(repo_id())
            .min_items(Some(1))
            .description(Some("The repositories that may read a `selected` secret"));
        AnyOfBuilder::new()
            .item(base(Scope::Repo).title(Some("repository")))
            .item(
                base(Scope::Environment)
                    .title(Some("environment"))
                    .property("env_fallback", EnvFallback::schema()),
            )
            .item(base(Scope::Org).title(Some("organisation, keeping the visibility")))
            .item(
                base(Scope::Org)
                    .title(Some("organisation, all or private"))
                    .property("visibility", visibility(&["all", "private"]))
                    .required("visibility"),
            )
            .item(
                base(Scope::Org)
                    .title(Some("organisation, selected repositories"))
                    .property("visibility", visibility(&["selected"]))
                    .property("repo_ids", repo_ids)
                    .required("repo_ids"),
            )
            .description(Some(
                "Write (create or overwrite) one secret. `visibility` and `repo_ids` are for organisation targets; `env_fallback: repo` writes the repository secret when an environment target does not exist",
            ))
            .into()
    }
}

impl ToSchema for CreateOp {}

/// A workflow file: one sealed PAT, a default target, options and up to 256 operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowBody {
    pub credentials: Credentials,
    /// The target of every operation that names none.
    #[schema(nullable = false)]
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub target: Option<Target>,
    #[schema(nullable = false)]
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub options: Option<WorkflowOptions>,
    #[schema(min_items = 1, max_items = 256)]
    pub operations: Vec<WorkflowOperation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub github_pat: SealedPat,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowOptions {
    /// Steps running at once, 1 to 16 (steps touching the same secret or scope never overlap).
    #[schema(minimum = 1, maximum = 16)]
    #[schema(nullable = false)]
    #[serde(
        default,
        deserialize_with = "present_concurrency",
        skip_serializing_if = "Option::is_none"
    )]
    pub concurrency: Option<u64>,
    #[schema(nullable = false)]
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub on_error: Option<OnError>,
    /// 1 to 840: no step or retry starts later.
    #[schema(minimum = 1, maximum = 840)]
    #[schema(nullable = false)]
    #[serde(
        default,
        deserialize_with = "present_deadline_seconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub deadline_seconds: Option<u64>,
    /// Plan only: read the current secrets to tell creates from updates.
    #[schema(nullable = false)]
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub check_state: Option<bool>,
    /// Write every create, even one whose `value_fingerprint` says it is unchanged.
    #[schema(nullable = false)]
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub force: Option<bool>,
    /// Also delete each secret this service wrote to a target the workflow writes, that the
    /// workflow no longer names there. Needs the service's store; secrets it did not write are
    /// never deleted (the plan lists them as `unmanaged`).
    #[schema(nullable = false)]
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub prune: Option<bool>,
}

/// What to do after a step fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    #[default]
    Continue,
    Stop,
}

/// One step of a workflow: an operation's fields (the same types as the operation routes',
/// without `encrypted_pat`: the workflow's PAT is used) and its `type`. `target` may be left out
/// when the workflow has a default one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum WorkflowOperation {
    #[serde(rename = "github:secrets:list")]
    List(ListOp),
    #[serde(rename = "github:secrets:get")]
    Get(SecretOp),
    #[serde(rename = "github:secrets:exists")]
    Exists(SecretOp),
    #[serde(rename = "github:secrets:create")]
    Create(CreateOp),
    /// In a workflow, deleting a secret that is already absent succeeds with `deleted: false`.
    #[serde(rename = "github:secrets:delete")]
    Delete(SecretOp),
    #[serde(rename = "github:secrets:presence")]
    Presence(PresenceOp),
}

impl WorkflowOperation {
    /// The schema of one kind's fields, by kind: what both grammars read.
    pub fn fields_schema(kind: OperationKind) -> RefOr<Schema> {
        match kind {
            OperationKind::List => ListOp::schema(),
            OperationKind::Get | OperationKind::Exists | OperationKind::Delete => {
                SecretOp::schema()
            }
            OperationKind::Create => CreateOp::schema(),
            OperationKind::Presence => PresenceOp::schema(),
        }
    }

    /// The member names of one kind's fields.
    pub fn field_names(kind: OperationKind) -> Vec<String> {
        let mut names = Vec::new();
        map_objects(Self::fields_schema(kind), &mut |object| {
            names.extend(object.properties.keys().cloned());
        });
        names.sort();
        names.dedup();
        names
    }
}

/// Each kind's fields with `type` added and `target` optional.
impl PartialSchema for WorkflowOperation {
    fn schema() -> RefOr<Schema> {
        let mut one_of = OneOfBuilder::new();
        for kind in OperationKind::ALL {
            one_of = one_of.item(map_objects(Self::fields_schema(kind), &mut |object| {
                object.required.retain(|name| name != "target");
                object.properties.insert(
                    "type".to_owned(),
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([kind.name()]))
                        .into(),
                );
                object.required.insert(0, "type".to_owned());
            }));
        }
        one_of.into()
    }
}

impl ToSchema for WorkflowOperation {}
