//! ACLs (`gregor acls`, kafka-acls.sh): CreateAcls, DescribeAcls and DeleteAcls with
//! Kafka's bindings and filters (`gregor_security::authorizer`).

use gregor_protocol::kafka_protocol::messages::create_acls_request::AclCreation;
use gregor_protocol::kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use gregor_protocol::kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use gregor_security::authorizer::{
    AclBinding, AclBindingFilter, AclOperation, AclPermissionType, PatternType, ResourceType,
};

use crate::client::Client;
use crate::error::{check, Result};

/// Sets the seven filter fields DescribeAclsRequest and DeleteAclsFilter share.
macro_rules! with_filter {
    ($message:expr, $f:expr) => {
        $message
            .with_resource_type_filter($f.resource_type.code())
            .with_resource_name_filter($f.resource_name.as_deref().map(s))
            .with_pattern_type_filter($f.pattern_type.code())
            .with_principal_filter($f.principal.as_deref().map(s))
            .with_host_filter($f.host.as_deref().map(s))
            .with_operation($f.operation.code())
            .with_permission_type($f.permission.code())
    };
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

fn binding(
    (resource_type, resource_name, pattern_type): (i8, &StrBytes, i8),
    (principal, host): (&StrBytes, &StrBytes),
    (operation, permission): (i8, i8),
) -> AclBinding {
    AclBinding {
        resource_type: ResourceType::from_code(resource_type),
        resource_name: resource_name.to_string(),
        pattern_type: PatternType::from_code(pattern_type),
        principal: principal.to_string(),
        host: host.to_string(),
        operation: AclOperation::from_code(operation),
        permission: AclPermissionType::from_code(permission),
    }
}

impl Client {
    /// Creates ACLs (on the controller, as Kafka's admin client sends them).
    pub async fn create_acls(&mut self, bindings: &[AclBinding]) -> Result<()> {
        let creations = bindings
            .iter()
            .map(|b| {
                AclCreation::default()
                    .with_resource_type(b.resource_type.code())
                    .with_resource_name(s(&b.resource_name))
                    .with_resource_pattern_type(b.pattern_type.code())
                    .with_principal(s(&b.principal))
                    .with_host(s(&b.host))
                    .with_operation(b.operation.code())
                    .with_permission_type(b.permission.code())
            })
            .collect();
        let response =
            self.controller().await?.send(&CreateAclsRequest::default().with_creations(creations), None).await?;
        for (r, b) in response.results.iter().zip(bindings) {
            check(r.error_code, r.error_message.as_deref(), || format!("create ACL {b}"))?;
        }
        Ok(())
    }

    /// The ACLs `filter` matches.
    pub async fn describe_acls(&mut self, f: &AclBindingFilter) -> Result<Vec<AclBinding>> {
        let request = with_filter!(DescribeAclsRequest::default(), f);
        let response = self.controller().await?.send(&request, None).await?;
        check(response.error_code, response.error_message.as_deref(), || "describe ACLs".into())?;
        Ok(response
            .resources
            .iter()
            .flat_map(|r| {
                r.acls.iter().map(move |a| {
                    binding(
                        (r.resource_type, &r.resource_name, r.pattern_type),
                        (&a.principal, &a.host),
                        (a.operation, a.permission_type),
                    )
                })
            })
            .collect())
    }

    /// Deletes every ACL `filter` matches; returns them.
    pub async fn delete_acls(&mut self, f: &AclBindingFilter) -> Result<Vec<AclBinding>> {
        let filter = with_filter!(DeleteAclsFilter::default(), f);
        let request = DeleteAclsRequest::default().with_filters(vec![filter]);
        let response = self.controller().await?.send(&request, None).await?;
        let mut deleted = Vec::new();
        for r in &response.filter_results {
            check(r.error_code, r.error_message.as_deref(), || "delete ACLs".into())?;
            deleted.extend(r.matching_acls.iter().map(|a| {
                binding(
                    (a.resource_type, &a.resource_name, a.pattern_type),
                    (&a.principal, &a.host),
                    (a.operation, a.permission_type),
                )
            }));
        }
        Ok(deleted)
    }
}
