//! The OpenAPI 3.1 document of the REST API, generated from the route table and the
//! request and response types with aide's model and transform helpers.
//!
//! Every row of [`routes()`] becomes one operation; [`describe`] matches [`Route`]
//! exhaustively, so a route cannot be added without documentation. Schemas come from the
//! `JsonSchema` derives of the types the handlers read and write (JSON Schema 2020-12, the
//! dialect of OpenAPI 3.1), collected under `components/schemas`, and state every limit the
//! handlers enforce with the default [`Limits`](crate::store::Limits). Error responses are
//! derived from each operation's inputs: a body brings 400, 413 and 415, an `{id}` 404;
//! every operation has 401, 403, 422 (every route refuses unknown query parameters), 429
//! (the server's per-user rate limit), 500 and 503.
//!
//! # Scopes
//!
//! The document keeps one top-level security requirement, `oidc: [openid, email, profile]`
//! (what a client such as ChatGPT is configured to ask for; the provider grants the
//! `memories:*` scopes with them for this resource). Operations do not override it; each
//! one names the scope its token must carry in its description and in the vendor extension
//! `x-required-scopes` (`memories:read` for reads, `memories:write` for changes, which
//! implies read). A token without it gets 403 `insufficient_scope`.

use std::marker::PhantomData;

use aide::generate::{GenContext, in_context};
use aide::openapi::{
    Header, Info, MediaType, OpenApi, Operation, Parameter, ParameterSchemaOrContent, PathItem,
    ReferenceOr, RequestBody, Response, SchemaObject, SecurityRequirement, SecurityScheme, Server,
    Tag,
};
use aide::operation::{
    OperationInput, OperationOutput, ParamLocation, add_parameters, parameters_from_schema,
    set_body,
};
use aide::transform::{TransformOperation, TransformResponse};
use http::Method;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::Value;

use super::error::ErrorResponse;
use super::model::{
    AccessLogPage, AccessLogParams, CategoriesResponse, CreateMemoryRequest, DeletedResponse,
    FilterMemoriesRequest, ListMemoriesParams, MemoryDetailResponse, MemoryIdPath,
    MemoryIdsRequest, MemoryPage, MemoryResponse, PauseMemoriesRequest, RelatedMemoriesResponse,
    RelatedParams, StatsResponse, UpdateMemoryRequest, UpdatedResponse, UserIdParams,
};
use super::routes::{RequiredScope, Route, RouteSpec, routes};
use crate::resource::ProtectedResource;

/// The name of the OpenID Connect security scheme in the document.
pub const OIDC_SCHEME: &str = "oidc";

/// The scopes of the document's top-level security requirement (the sign-in scopes; each
/// operation names the `memories:*` scope it needs in `x-required-scopes`).
const SIGN_IN_SCOPES: [&str; 3] = ["openid", "email", "profile"];

/// The vendor extension naming the scopes an operation's token must carry.
pub(crate) const REQUIRED_SCOPES_EXTENSION: &str = "x-required-scopes";

const TAG_MEMORIES: &str = "memories";
const TAG_STATS: &str = "stats";

/// The OpenAPI 3.1.0 document of the REST API served at `resource`'s base URL.
///
/// ```
/// use mcp_api::ProtectedResource;
/// use mcp_api::rest::openapi_document;
///
/// let resource = ProtectedResource::new("https://mcp.example.com", "https://auth.example.com");
/// let document = openapi_document(&resource);
/// assert_eq!(document["openapi"], "3.1.0");
/// assert_eq!(document["servers"][0]["url"], "https://mcp.example.com");
/// assert_eq!(
///     document["components"]["securitySchemes"]["oidc"]["openIdConnectUrl"],
///     "https://auth.example.com/.well-known/openid-configuration"
/// );
/// ```
#[must_use]
pub fn openapi_document(resource: &ProtectedResource) -> Value {
    let document = build_document(resource);
    // The model only has string-keyed maps and plain values, so serializing cannot fail.
    serde_json::to_value(&document).unwrap_or(Value::Null)
}

/// The document as aide's model.
fn build_document(resource: &ProtectedResource) -> OpenApi {
    with_schema_generator(|| {
        let mut document = OpenApi {
            openapi: "3.1.0".into(),
            info: info(),
            servers: vec![Server {
                url: resource.base_url().to_owned(),
                ..Server::default()
            }],
            tags: tags(),
            security: vec![security_requirement(SIGN_IN_SCOPES)],
            ..OpenApi::default()
        };
        for spec in routes() {
            add_operation(&mut document, spec);
        }
        let components = document.components.get_or_insert_with(Default::default);
        components.security_schemes.insert(
            OIDC_SCHEME.to_owned(),
            ReferenceOr::Item(oidc_scheme(resource)),
        );
        components.schemas.extend(take_schemas());
        document
    })
}

/// Runs `build` with aide's thread-local schema generator set to JSON Schema 2020-12 with
/// definitions under `#/components/schemas`, then restores the previous generator.
fn with_schema_generator<T>(build: impl FnOnce() -> T) -> T {
    let settings = SchemaSettings::draft2020_12().with(|settings| {
        settings.definitions_path = "/components/schemas".into();
    });
    let previous =
        in_context(|ctx| std::mem::replace(&mut ctx.schema, SchemaGenerator::new(settings)));
    let built = build();
    in_context(|ctx| ctx.schema = previous);
    built
}

/// The schemas collected while documenting operations.
fn take_schemas() -> Vec<(String, SchemaObject)> {
    let definitions = in_context(|ctx| ctx.schema.take_definitions(true));
    definitions
        .into_iter()
        .filter_map(|(name, value)| match Schema::try_from(value) {
            Ok(json_schema) => Some((
                name,
                SchemaObject {
                    json_schema,
                    external_docs: None,
                    example: None,
                },
            )),
            Err(_) => {
                // schemars only produces object or boolean schemas.
                tracing::error!(schema = %name, "generated schema is not a JSON schema");
                None
            }
        })
        .collect()
}

fn info() -> Info {
    Info {
        title: "Memory API".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        description: Some(
            "OpenMemory's REST API with real authorization: every operation acts on the \
             memories of the access token's subject, never on a user named in the request \
             (OpenMemory's `user_id` is accepted where its clients send it, and ignored). \
             Reads need the memories:read scope, changes memories:write (which implies \
             read); each operation names its scope in `x-required-scopes`."
                .to_owned(),
        ),
        ..Info::default()
    }
}

fn tags() -> Vec<Tag> {
    [
        (TAG_MEMORIES, "The caller's memories."),
        (TAG_STATS, "The caller's usage figures."),
    ]
    .into_iter()
    .map(|(name, description)| Tag {
        name: name.to_owned(),
        description: Some(description.to_owned()),
        ..Tag::default()
    })
    .collect()
}

fn oidc_scheme(resource: &ProtectedResource) -> SecurityScheme {
    SecurityScheme::OpenIdConnect {
        open_id_connect_url: resource.issuer_discovery_url(),
        description: Some(format!(
            "Bearer access tokens from {}, with the memories:read or memories:write scope.",
            resource.issuer()
        )),
        extensions: Default::default(),
    }
}

fn security_requirement<'a>(scopes: impl IntoIterator<Item = &'a str>) -> SecurityRequirement {
    let scopes = scopes.into_iter().map(str::to_owned).collect();
    [(OIDC_SCHEME.to_owned(), scopes)].into_iter().collect()
}

/// Documents one route and puts it under its path and method.
fn add_operation(document: &mut OpenApi, spec: &RouteSpec) {
    let mut operation = Operation::default();
    let transform = TransformOperation::new(&mut operation)
        .id(spec.route.operation_id())
        .tag(tag(spec.route));
    let _ = describe(spec.route, transform);
    add_required_scope(&mut operation, spec.scope);
    add_error_responses(&mut operation);

    let paths = document.paths.get_or_insert_with(Default::default);
    let item = paths
        .paths
        .entry(spec.path.to_owned())
        .or_insert_with(|| ReferenceOr::Item(PathItem::default()));
    let ReferenceOr::Item(item) = item else {
        return;
    };
    match operation_slot(item, &spec.method) {
        Some(slot) => *slot = Some(operation),
        None => tracing::error!(method = %spec.method, "route method cannot be documented"),
    }
}

/// Names the scope in the description and in [`REQUIRED_SCOPES_EXTENSION`]. The top-level
/// security requirement stays in force: an operation-level one would replace it.
fn add_required_scope(operation: &mut Operation, scope: RequiredScope) {
    let sentence = match scope {
        RequiredScope::Read => format!(
            "Requires the `{}` scope (`{}` implies it).",
            scope.as_str(),
            RequiredScope::Write.as_str()
        ),
        RequiredScope::Write => format!("Requires the `{}` scope.", scope.as_str()),
    };
    let description = match operation.description.take() {
        Some(text) => format!("{text}\n\n{sentence}"),
        None => sentence,
    };
    operation.description = Some(description);
    operation.extensions.insert(
        REQUIRED_SCOPES_EXTENSION.to_owned(),
        Value::from(vec![scope.as_str()]),
    );
}

fn tag(route: Route) -> &'static str {
    match route {
        Route::GetStats => TAG_STATS,
        _ => TAG_MEMORIES,
    }
}

fn operation_slot<'a>(
    item: &'a mut PathItem,
    method: &Method,
) -> Option<&'a mut Option<Operation>> {
    let slot = match *method {
        Method::GET => &mut item.get,
        Method::POST => &mut item.post,
        Method::PUT => &mut item.put,
        Method::DELETE => &mut item.delete,
        Method::PATCH => &mut item.patch,
        _ => return None,
    };
    Some(slot)
}

/// Summary, inputs and success response of each route.
fn describe(route: Route, operation: TransformOperation<'_>) -> TransformOperation<'_> {
    match route {
        Route::ListMemories => operation
            .summary("List memories")
            .description(
                "One page of the caller's active and paused memories. A filter no memory can \
                 match (a date range that ends before it starts, an impossible app or \
                 category) gives an empty page.",
            )
            .input::<Query<ListMemoriesParams>>()
            .response::<200, Json<MemoryPage>>(),
        Route::CreateMemory => operation
            .summary("Create a memory")
            .description(
                "Stores a memory written by the token's client, with the text as given. \
                 OpenMemory's `user_id`, `app` and `infer` are accepted and ignored.",
            )
            .input::<(Query<UserIdParams>, JsonBody<CreateMemoryRequest>)>()
            .response_with::<201, Json<MemoryResponse>, _>(|response| {
                with_header(response, "Location", "The URL path of the new memory.")
            }),
        Route::DeleteMemories => operation
            .summary("Delete memories")
            .description("Deletes the caller's memories among the ids; others are skipped.")
            .input::<(Query<UserIdParams>, JsonBody<MemoryIdsRequest>)>()
            .response::<200, Json<DeletedResponse>>(),
        Route::GetMemory => operation
            .summary("Get a memory")
            .description("One of the caller's memories; the read is recorded in its access log.")
            .input::<(Path<MemoryIdPath>, Query<UserIdParams>)>()
            .response::<200, Json<MemoryDetailResponse>>(),
        Route::UpdateMemory => operation
            .summary("Update a memory")
            .description("Replaces the text (and the metadata, if given) of a memory.")
            .input::<(
                Path<MemoryIdPath>,
                Query<UserIdParams>,
                JsonBody<UpdateMemoryRequest>,
            )>()
            .response::<200, Json<MemoryResponse>>(),
        Route::ArchiveMemories => operation
            .summary("Archive memories")
            .description("Archives the caller's memories among the ids; others are skipped.")
            .input::<(Query<UserIdParams>, JsonBody<MemoryIdsRequest>)>()
            .response::<200, Json<UpdatedResponse>>(),
        Route::PauseMemories => operation
            .summary("Pause or resume memories")
            .description(
                "Moves the caller's memories among the ids to paused (or active, or archived).",
            )
            .input::<(Query<UserIdParams>, JsonBody<PauseMemoriesRequest>)>()
            .response::<200, Json<UpdatedResponse>>(),
        Route::FilterMemories => operation
            .summary("Filter memories")
            .description(
                "One page of the caller's memories, with filters in the body. A filter no \
                 memory can match gives an empty page.",
            )
            .input::<(Query<UserIdParams>, JsonBody<FilterMemoriesRequest>)>()
            .response::<200, Json<MemoryPage>>(),
        Route::ListCategories => operation
            .summary("List categories")
            .description("The categories of the caller's memories with counts.")
            .input::<Query<UserIdParams>>()
            .response::<200, Json<CategoriesResponse>>(),
        Route::GetAccessLog => operation
            .summary("Get a memory's access log")
            .description("Who read one of the caller's memories, newest first.")
            .input::<(Path<MemoryIdPath>, Query<AccessLogParams>)>()
            .response::<200, Json<AccessLogPage>>(),
        Route::GetRelatedMemories => operation
            .summary("Get related memories")
            .description("The caller's memories that share categories (or words) with one.")
            .input::<(Path<MemoryIdPath>, Query<RelatedParams>)>()
            .response::<200, Json<RelatedMemoriesResponse>>(),
        Route::GetStats => operation
            .summary("Get usage statistics")
            .description(
                "How many memories the caller has, and per app how many it wrote and read.",
            )
            .input::<Query<UserIdParams>>()
            .response::<200, Json<StatsResponse>>(),
    }
}

/// The error responses an operation can give, from what it reads.
fn add_error_responses(operation: &mut Operation) {
    let has_body = operation.request_body.is_some();
    let has_id = operation
        .parameters
        .iter()
        .any(|parameter| matches!(parameter, ReferenceOr::Item(Parameter::Path { .. })));

    let mut transform = TransformOperation::new(operation);
    if has_body {
        transform = transform
            .response_with::<400, Json<ErrorResponse>, _>(|r| {
                r.description("`invalid_json`: the body is not JSON.")
            })
            .response_with::<413, Json<ErrorResponse>, _>(|r| {
                r.description("`payload_too_large`: the body is larger than the limit.")
            })
            .response_with::<415, Json<ErrorResponse>, _>(|r| {
                r.description("`unsupported_media_type`: the body is not application/json.")
            });
    }
    transform = transform
        .response_with::<401, NoBody, _>(|r| {
            with_header(
                r.description(
                    "No valid access token. The bearer-token layer in front of the API \
                     answers with this status and a Bearer challenge (with \
                     `resource_metadata`, and `error=\"invalid_token\"` for a bad token), \
                     without a body.",
                ),
                "WWW-Authenticate",
                "A Bearer challenge with resource_metadata.",
            )
        })
        .response_with::<403, Json<ErrorResponse>, _>(|r| {
            with_header(
                r.description(
                    "`insufficient_scope`: the token lacks the operation's scope (with a \
                     Bearer challenge); or `quota_exceeded`: the user's storage quota is \
                     reached and nothing was written.",
                ),
                "WWW-Authenticate",
                "Bearer error=\"insufficient_scope\" with the scope needed.",
            )
        });
    if has_id {
        transform = transform.response_with::<404, Json<ErrorResponse>, _>(|r| {
            r.description("`not_found`: the id is not one of the caller's memories.")
        });
    }
    let _ = transform
        .response_with::<422, Json<ErrorResponse>, _>(|r| {
            r.description(
                "`invalid_request`: a parameter or field breaks a rule or limit, or is \
                 unknown (routes without query parameters refuse any); nothing was written.",
            )
        })
        .response_with::<429, Json<ErrorResponse>, _>(|r| {
            with_header(
                r.description(
                    "`rate_limited`: the user (token subject) made more requests than the \
                     server's per-user rate limit allows.",
                ),
                "Retry-After",
                "Seconds to wait before retrying.",
            )
        })
        .response_with::<500, Json<ErrorResponse>, _>(|r| {
            r.description("`internal_error`: the memory store failed.")
        })
        .response_with::<503, Json<ErrorResponse>, _>(|r| {
            with_header(
                r.description("`service_unavailable`: the memory store is busy."),
                "Retry-After",
                "Seconds to wait before retrying.",
            )
        });
}

/// Documents a string response header.
///
/// Runs inside aide's generation context (transform closures do), so it must not call
/// `in_context` again: the header schema is written out rather than generated.
fn with_header<'t, T>(
    mut response: TransformResponse<'t, T>,
    name: &str,
    description: &str,
) -> TransformResponse<'t, T> {
    response.inner().headers.insert(
        name.to_owned(),
        ReferenceOr::Item(Header {
            description: Some(description.to_owned()),
            style: Default::default(),
            required: true,
            deprecated: None,
            format: ParameterSchemaOrContent::Schema(SchemaObject {
                json_schema: json_schema!({"type": "string"}),
                external_docs: None,
                example: None,
            }),
            example: None,
            examples: Default::default(),
            extensions: Default::default(),
        }),
    );
    response
}

// ----- Document-only input and output markers ------------------------------------------------

/// A JSON request body of type `T`.
struct JsonBody<T>(PhantomData<T>);

impl<T: JsonSchema> OperationInput for JsonBody<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        let json_schema = ctx.schema.subschema_for::<T>();
        let description = schema_description(ctx, &json_schema);
        let body = RequestBody {
            description,
            content: [("application/json".to_owned(), json_media_type(json_schema))]
                .into_iter()
                .collect(),
            required: true,
            extensions: Default::default(),
        };
        set_body(ctx, operation, body);
    }
}

/// Query parameters: the fields of `T`.
struct Query<T>(PhantomData<T>);

impl<T: JsonSchema> OperationInput for Query<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        let schema = ctx.schema.subschema_for::<T>();
        let mut parameters = parameters_from_schema(ctx, schema, ParamLocation::Query);
        parameters.iter_mut().for_each(drop_null_default);
        add_parameters(ctx, operation, parameters);
    }
}

/// A query string has no null: an optional parameter's `"default": null` (what schemars
/// writes for an `Option` with `#[serde(default)]`) only means "absent".
fn drop_null_default(parameter: &mut Parameter) {
    let ParameterSchemaOrContent::Schema(schema) = &mut parameter.parameter_data_mut().format
    else {
        return;
    };
    if let Some(object) = schema.json_schema.as_object_mut()
        && object.get("default") == Some(&Value::Null)
    {
        object.remove("default");
    }
}

/// Path parameters: the fields of `T`.
struct Path<T>(PhantomData<T>);

impl<T: JsonSchema> OperationInput for Path<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        let schema = ctx.schema.subschema_for::<T>();
        let parameters = parameters_from_schema(ctx, schema, ParamLocation::Path);
        add_parameters(ctx, operation, parameters);
    }
}

/// A response without a body.
struct NoBody;

impl OperationOutput for NoBody {
    type Inner = ();

    fn operation_response(_ctx: &mut GenContext, _operation: &mut Operation) -> Option<Response> {
        Some(Response::default())
    }
}

/// A JSON response body of type `T`.
struct Json<T>(PhantomData<T>);

impl<T: JsonSchema> OperationOutput for Json<T> {
    type Inner = T;

    fn operation_response(ctx: &mut GenContext, _operation: &mut Operation) -> Option<Response> {
        let json_schema = ctx.schema.subschema_for::<T>();
        let description = schema_description(ctx, &json_schema).unwrap_or_default();
        Some(Response {
            description,
            content: [("application/json".to_owned(), json_media_type(json_schema))]
                .into_iter()
                .collect(),
            ..Response::default()
        })
    }
}

fn json_media_type(json_schema: Schema) -> MediaType {
    MediaType {
        schema: Some(SchemaObject {
            json_schema,
            external_docs: None,
            example: None,
        }),
        ..MediaType::default()
    }
}

/// The `description` of a schema, following a `$ref` to its definition.
fn schema_description(ctx: &GenContext, schema: &Schema) -> Option<String> {
    ctx.resolve_schema(schema)
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    fn resource() -> ProtectedResource {
        ProtectedResource::new("https://mcp.example", "https://auth.example")
    }

    #[test]
    fn generation_reports_no_aide_errors() {
        let errors = Rc::new(RefCell::new(Vec::new()));
        let sink = Rc::clone(&errors);
        aide::generate::on_error(move |error| sink.borrow_mut().push(error.to_string()));
        let _ = build_document(&resource());
        assert!(errors.borrow().is_empty(), "{:?}", errors.borrow());
    }

    #[test]
    fn generation_is_repeatable_and_leaves_the_generator_as_it_was() {
        let first = openapi_document(&resource());
        let second = openapi_document(&resource());
        assert_eq!(first, second);
        let leftover = in_context(|ctx| ctx.schema.definitions().len());
        assert_eq!(leftover, 0);
    }

    #[test]
    fn path_parameters_are_required_strings_with_uuid_format() {
        let document = openapi_document(&resource());
        let parameters = &document["paths"]["/api/v1/memories/{id}"]["get"]["parameters"];
        assert_eq!(parameters[0]["in"], "path");
        assert_eq!(parameters[0]["name"], "id");
        assert_eq!(parameters[0]["required"], true);
        assert_eq!(parameters[0]["schema"]["format"], "uuid");
    }
}
