//! `gregor acls`: kafka-acls.sh. Adds, lists and removes ACLs with the same flags:
//! principals and hosts to allow or deny, operations, and resources (topic, group,
//! cluster, transactional id) with a literal or prefixed pattern; `--producer` and
//! `--consumer` expand to the ACLs those clients need, as kafka-acls.sh does.

use clap::{Args, Subcommand};
use gregor_security::authorizer::{
    check_operation_supported, AclBinding, AclBindingFilter, AclOperation, AclPermissionType, PatternType,
    ResourceType, CLUSTER_NAME,
};
use serde_json::json;

use crate::common::{connect, emit, emit_json, run_async, table, usage, CliResult, Global, Output};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gregor acls add --allow-principal User:alice --operation Read --operation Describe --topic orders
  gregor acls add --allow-principal User:alice --consumer --topic orders --group billing
  gregor acls add --allow-principal User:svc --producer --topic orders- --resource-pattern-type prefixed
  gregor acls add --deny-principal User:mallory --operation All --topic '*'
  gregor acls list --topic orders --resource-pattern-type match
  gregor acls remove --allow-principal User:alice --operation Read --topic orders")]
pub(crate) struct AclsArgs {
    #[command(subcommand)]
    command: AclsCommand,
}

#[derive(Debug, Subcommand)]
enum AclsCommand {
    /// Add ACLs: every principal × host × operation × resource given.
    Add(AclSpec),
    /// List the ACLs that match the resource, principal and pattern type given (all by default).
    List(AclSpec),
    /// Remove the ACLs that match, as kafka-acls.sh --remove.
    Remove(AclSpec),
}

#[derive(Debug, Args)]
struct AclSpec {
    #[arg(long, value_name = "PRINCIPAL")]
    allow_principal: Vec<String>,
    #[arg(long, value_name = "PRINCIPAL")]
    deny_principal: Vec<String>,
    /// Hosts of the allow ACLs (default `*`).
    #[arg(long, value_name = "HOST")]
    allow_host: Vec<String>,
    /// Hosts of the deny ACLs (default `*`).
    #[arg(long, value_name = "HOST")]
    deny_host: Vec<String>,
    /// Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs,
    /// AlterConfigs, IdempotentWrite, All (repeatable).
    #[arg(long, value_name = "OPERATION")]
    operation: Vec<String>,
    #[arg(long)]
    topic: Vec<String>,
    #[arg(long)]
    group: Vec<String>,
    #[arg(long)]
    transactional_id: Vec<String>,
    #[arg(long)]
    cluster: bool,
    /// literal or prefixed for add; also any and match for list and remove.
    #[arg(long, value_name = "TYPE")]
    resource_pattern_type: Option<String>,
    /// A principal to list ACLs of (list only).
    #[arg(long, value_name = "PRINCIPAL")]
    principal: Option<String>,
    /// WRITE, DESCRIBE and CREATE on the topics (and WRITE on the transactional ids).
    #[arg(long)]
    producer: bool,
    /// READ and DESCRIBE on the topics, READ on the groups.
    #[arg(long)]
    consumer: bool,
}

pub(crate) fn run(args: AclsArgs, global: &Global) -> Result<(), String> {
    let global = global.clone();
    run_async(async move {
        let mut client = connect(&global.conn).await?;
        match args.command {
            AclsCommand::Add(spec) => {
                let bindings = bindings(&spec)?;
                client.create_acls(&bindings).await?;
                emit(&format!("Added {} ACL(s).\n", bindings.len()))
            }
            AclsCommand::List(spec) => {
                let mut found = Vec::new();
                for filter in filters(&spec, true)? {
                    found.extend(client.describe_acls(&filter).await?);
                }
                print(&found, global.output)
            }
            AclsCommand::Remove(spec) => {
                let mut removed = Vec::new();
                for filter in filters(&spec, false)? {
                    removed.extend(client.delete_acls(&filter).await?);
                }
                emit(&format!("Removed {} ACL(s).\n", removed.len()))
            }
        }
    })
}

fn parse_operation(text: &str) -> CliResult<AclOperation> {
    AclOperation::parse(text).ok_or_else(|| usage(format!("'{text}' is not an ACL operation")))
}

/// Every resource named, with the pattern type (`default` when none is given).
fn resources(spec: &AclSpec, default: PatternType) -> CliResult<Vec<(ResourceType, String, PatternType)>> {
    let pattern = match &spec.resource_pattern_type {
        None => default,
        Some(p) => PatternType::parse(p).ok_or_else(|| usage(format!("'{p}' is not a resource pattern type")))?,
    };
    let mut out = Vec::new();
    out.extend(spec.topic.iter().map(|t| (ResourceType::Topic, t.clone(), pattern)));
    out.extend(spec.group.iter().map(|g| (ResourceType::Group, g.clone(), pattern)));
    out.extend(spec.transactional_id.iter().map(|t| (ResourceType::TransactionalId, t.clone(), pattern)));
    if spec.cluster {
        out.push((ResourceType::Cluster, CLUSTER_NAME.to_owned(), PatternType::Literal));
    }
    Ok(out)
}

/// The operations for a resource: `--producer` / `--consumer` expand as kafka-acls.sh does.
fn operations_for(spec: &AclSpec, resource: ResourceType) -> CliResult<Vec<AclOperation>> {
    let mut ops: Vec<AclOperation> = spec.operation.iter().map(|o| parse_operation(o)).collect::<CliResult<_>>()?;
    match resource {
        ResourceType::Topic if spec.producer => {
            ops.extend([AclOperation::Write, AclOperation::Describe, AclOperation::Create])
        }
        ResourceType::TransactionalId if spec.producer => ops.extend([AclOperation::Write, AclOperation::Describe]),
        ResourceType::Topic if spec.consumer => ops.extend([AclOperation::Read, AclOperation::Describe]),
        ResourceType::Group if spec.consumer => ops.push(AclOperation::Read),
        _ => {}
    }
    ops.sort_by_key(|o| o.code());
    ops.dedup();
    Ok(ops)
}

fn bindings(spec: &AclSpec) -> CliResult<Vec<AclBinding>> {
    let resources = resources(spec, PatternType::Literal)?;
    if resources.is_empty() {
        return Err(usage("name a resource: --topic, --group, --transactional-id or --cluster"));
    }
    let entries = principals(spec);
    if entries.is_empty() {
        return Err(usage("give --allow-principal or --deny-principal"));
    }
    let mut out = Vec::new();
    for (resource_type, name, pattern_type) in resources {
        let ops = operations_for(spec, resource_type)?;
        if ops.is_empty() {
            return Err(usage("give --operation (or --producer / --consumer)"));
        }
        for op in &ops {
            check_operation_supported(resource_type, *op).map_err(|e| usage(e.to_string()))?;
        }
        for (principal, host, permission) in &entries {
            out.extend(ops.iter().map(|op| AclBinding {
                resource_type,
                resource_name: name.clone(),
                pattern_type,
                principal: principal.clone(),
                host: host.clone(),
                operation: *op,
                permission: *permission,
            }));
        }
    }
    for b in &out {
        b.validate().map_err(|e| usage(e.to_string()))?;
    }
    Ok(out)
}

/// `(principal, host, permission)` of every allow and deny entry.
fn principals(spec: &AclSpec) -> Vec<(String, String, AclPermissionType)> {
    let hosts = |h: &[String]| if h.is_empty() { vec!["*".to_owned()] } else { h.to_vec() };
    let mut out = Vec::new();
    for (names, host_list, permission) in [
        (&spec.allow_principal, hosts(&spec.allow_host), AclPermissionType::Allow),
        (&spec.deny_principal, hosts(&spec.deny_host), AclPermissionType::Deny),
    ] {
        for p in names {
            out.extend(host_list.iter().map(|h| (p.clone(), h.clone(), permission)));
        }
    }
    out
}

/// Filters for list and remove: per resource (or every resource), per principal entry.
fn filters(spec: &AclSpec, listing: bool) -> CliResult<Vec<AclBindingFilter>> {
    let default = if listing { PatternType::Any } else { PatternType::Literal };
    let mut resources: Vec<(ResourceType, Option<String>, PatternType)> =
        resources(spec, default)?.into_iter().map(|(t, n, p)| (t, Some(n), p)).collect();
    if resources.is_empty() {
        resources.push((ResourceType::Any, None, PatternType::Any));
    }
    let entries = principals(spec);
    let mut out = Vec::new();
    for (resource_type, name, pattern_type) in resources {
        let base = AclBindingFilter { resource_type, resource_name: name, pattern_type, ..AclBindingFilter::ANY };
        if entries.is_empty() {
            out.push(AclBindingFilter { principal: spec.principal.clone(), ..base.clone() });
            continue;
        }
        let ops = operations_for(spec, resource_type)?;
        for (principal, host, permission) in &entries {
            let entry = AclBindingFilter {
                principal: Some(principal.clone()),
                host: Some(host.clone()),
                permission: *permission,
                ..base.clone()
            };
            if ops.is_empty() {
                out.push(entry);
            } else {
                out.extend(ops.iter().map(|op| AclBindingFilter { operation: *op, ..entry.clone() }));
            }
        }
    }
    Ok(out)
}

fn print(acls: &[AclBinding], output: Output) -> CliResult {
    if output == Output::Json {
        let list: Vec<_> = acls
            .iter()
            .map(|b| {
                json!({
                    "resource_type": b.resource_type.pascal_name(), "resource_name": b.resource_name,
                    "pattern_type": b.pattern_type.name(), "principal": b.principal, "host": b.host,
                    "operation": b.operation.pascal_name(), "permission": b.permission.pascal_name(),
                })
            })
            .collect();
        return emit_json(&json!(list));
    }
    let rows: Vec<Vec<String>> = acls
        .iter()
        .map(|b| {
            vec![
                b.resource_type.pascal_name().to_owned(),
                b.resource_name.clone(),
                b.pattern_type.name().to_owned(),
                b.principal.clone(),
                b.host.clone(),
                b.operation.pascal_name().to_owned(),
                b.permission.pascal_name().to_owned(),
            ]
        })
        .collect();
    emit(&table(&["RESOURCE-TYPE", "NAME", "PATTERN", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION"], &rows))
}
