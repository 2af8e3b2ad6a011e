//! CreateAcls (30), DescribeAcls (29) and DeleteAcls (31): ACLs as metadata records,
//! matched with Kafka's filter rules. Without an authorizer Kafka answers
//! SECURITY_DISABLED; creating and deleting need ALTER on the cluster, describing
//! DESCRIBE, as in Kafka.

use std::collections::BTreeMap;

use gregor_protocol::kafka_protocol::messages::create_acls_response::AclCreationResult;
use gregor_protocol::kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use gregor_protocol::kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use gregor_protocol::kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest,
    DescribeAclsResponse,
};
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_security::authorizer::{
    AclBinding, AclBindingFilter, AclOperation, AclPermissionType, PatternType, ResourceType,
};

use super::{blocking, str_bytes, RequestContext};
use crate::authz::{entry_of, Op};
use crate::controller::ControllerCommand;
use crate::BrokerError;

const NO_AUTHORIZER: &str = "No Authorizer is configured.";

/// Why the whole request is refused: no authorizer, or the caller may not.
fn refusal(ctx: &RequestContext<'_>, op: Op) -> Option<(ResponseError, &'static str)> {
    if !ctx.broker.authz.is_enabled() {
        return Some((ResponseError::SecurityDisabled, NO_AUTHORIZER));
    }
    (!ctx.allowed_on_cluster(op))
        .then_some((ResponseError::ClusterAuthorizationFailed, "Cluster authorization failed."))
}

pub(crate) async fn create(
    ctx: &RequestContext<'_>,
    request: CreateAclsRequest,
) -> Result<CreateAclsResponse, BrokerError> {
    let answer = |e: Option<(ResponseError, String)>| match e {
        None => AclCreationResult::default(),
        Some((e, m)) => AclCreationResult::default().with_error_code(e.code()).with_error_message(Some(str_bytes(&m))),
    };
    if let Some((e, m)) = refusal(ctx, Op::Alter) {
        let results = request.creations.iter().map(|_| answer(Some((e, m.to_owned())))).collect();
        return Ok(CreateAclsResponse::default().with_results(results));
    }
    let checked: Vec<Result<AclBinding, (ResponseError, String)>> = request
        .creations
        .iter()
        .map(|c| {
            let binding = AclBinding {
                resource_type: ResourceType::from_code(c.resource_type),
                resource_name: c.resource_name.to_string(),
                pattern_type: PatternType::from_code(c.resource_pattern_type),
                principal: c.principal.to_string(),
                host: c.host.to_string(),
                operation: AclOperation::from_code(c.operation),
                permission: AclPermissionType::from_code(c.permission_type),
            };
            binding.validate().map(|()| binding).map_err(|e| (ResponseError::InvalidRequest, e.to_string()))
        })
        .collect();
    let add: Vec<_> = checked.iter().filter_map(|c| c.as_ref().ok()).map(entry_of).collect();
    let failure = execute(ctx, add, Vec::new()).await.err();
    let results = checked.into_iter().map(|c| answer(c.err().or_else(|| failure.clone()))).collect();
    Ok(CreateAclsResponse::default().with_results(results))
}

async fn execute(
    ctx: &RequestContext<'_>,
    add: Vec<gregor_metadata::AclEntry>,
    remove: Vec<gregor_metadata::AclEntry>,
) -> Result<(), (ResponseError, String)> {
    if add.is_empty() && remove.is_empty() {
        return Ok(());
    }
    let broker = ctx.broker.clone();
    let command = ControllerCommand::AlterAcls { add, remove };
    blocking(move || broker.metadata.execute(command)).await.map(drop).map_err(|e| (e.response_error(), e.to_string()))
}

fn filter_of(
    (resource_type, name, pattern_type): (i8, Option<&StrBytes>, i8),
    (principal, host): (Option<&StrBytes>, Option<&StrBytes>),
    (operation, permission): (i8, i8),
) -> AclBindingFilter {
    AclBindingFilter {
        resource_type: ResourceType::from_code(resource_type),
        resource_name: name.map(ToString::to_string),
        pattern_type: PatternType::from_code(pattern_type),
        principal: principal.map(ToString::to_string),
        host: host.map(ToString::to_string),
        operation: AclOperation::from_code(operation),
        permission: AclPermissionType::from_code(permission),
    }
}

pub(crate) async fn describe(
    ctx: &RequestContext<'_>,
    r: DescribeAclsRequest,
) -> Result<DescribeAclsResponse, BrokerError> {
    if let Some((e, m)) = refusal(ctx, Op::Describe) {
        return Ok(DescribeAclsResponse::default().with_error_code(e.code()).with_error_message(Some(str_bytes(m))));
    }
    let filter = filter_of(
        (r.resource_type_filter, r.resource_name_filter.as_ref(), r.pattern_type_filter),
        (r.principal_filter.as_ref(), r.host_filter.as_ref()),
        (r.operation, r.permission_type),
    );
    if let Err(e) = filter.validate() {
        let message = Some(str_bytes(&e.to_string()));
        return Ok(DescribeAclsResponse::default().with_error_code(e.kafka_code()).with_error_message(message));
    }
    let acls = ctx.broker.authz.authorizer(&ctx.broker.image()).acls(&filter);
    let mut resources: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for b in acls {
        resources.entry((b.resource_type.code(), b.resource_name.clone(), b.pattern_type.code())).or_default().push(
            AclDescription::default()
                .with_principal(str_bytes(&b.principal))
                .with_host(str_bytes(&b.host))
                .with_operation(b.operation.code())
                .with_permission_type(b.permission.code()),
        );
    }
    let resources = resources
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(name))
                .with_pattern_type(pattern_type)
                .with_acls(acls)
        })
        .collect();
    Ok(DescribeAclsResponse::default().with_resources(resources))
}

pub(crate) async fn delete(
    ctx: &RequestContext<'_>,
    request: DeleteAclsRequest,
) -> Result<DeleteAclsResponse, BrokerError> {
    let refused = |e: ResponseError, m: &str| {
        DeleteAclsFilterResult::default().with_error_code(e.code()).with_error_message(Some(str_bytes(m)))
    };
    if let Some((e, m)) = refusal(ctx, Op::Alter) {
        let results = request.filters.iter().map(|_| refused(e, m)).collect();
        return Ok(DeleteAclsResponse::default().with_filter_results(results));
    }
    let authorizer = ctx.broker.authz.authorizer(&ctx.broker.image());
    let mut remove = Vec::new();
    let mut results: Vec<Result<Vec<AclBinding>, (ResponseError, String)>> = Vec::new();
    for f in &request.filters {
        let filter = filter_of(
            (f.resource_type_filter, f.resource_name_filter.as_ref(), f.pattern_type_filter),
            (f.principal_filter.as_ref(), f.host_filter.as_ref()),
            (f.operation, f.permission_type),
        );
        match filter.validate() {
            Ok(()) => {
                let matched = authorizer.acls(&filter);
                remove.extend(matched.iter().map(entry_of));
                results.push(Ok(matched));
            }
            Err(e) => results.push(Err((ResponseError::InvalidRequest, e.to_string()))),
        }
    }
    remove.sort();
    remove.dedup();
    let failure = execute(ctx, Vec::new(), remove).await.err();
    let results = results
        .into_iter()
        .map(|r| match (r, failure.clone()) {
            (Err((e, m)), _) | (Ok(_), Some((e, m))) => refused(e, &m),
            (Ok(matched), None) => DeleteAclsFilterResult::default().with_matching_acls(
                matched
                    .iter()
                    .map(|b| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(b.resource_type.code())
                            .with_resource_name(str_bytes(&b.resource_name))
                            .with_pattern_type(b.pattern_type.code())
                            .with_principal(str_bytes(&b.principal))
                            .with_host(str_bytes(&b.host))
                            .with_operation(b.operation.code())
                            .with_permission_type(b.permission.code())
                    })
                    .collect(),
            ),
        })
        .collect();
    Ok(DeleteAclsResponse::default().with_filter_results(results))
}
