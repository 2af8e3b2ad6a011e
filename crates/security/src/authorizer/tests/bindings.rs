//! The enums, binding validation, filters, the ACL set and the helpers.

use std::net::IpAddr;

use super::*;

#[test]
fn given_every_enum_value_when_round_tripping_codes_and_names_should_keep_kafkas_codes() {
    let codes = |values: &[i8]| values.to_vec();
    assert_eq!(ResourceType::VALUES.iter().map(|v| v.code()).collect::<Vec<_>>(), codes(&[0, 1, 2, 3, 4, 5, 6, 7]));
    assert_eq!(PatternType::VALUES.iter().map(|v| v.code()).collect::<Vec<_>>(), codes(&[0, 1, 2, 3, 4]));
    assert_eq!(AclOperation::VALUES.iter().map(|v| v.code()).collect::<Vec<_>>(), (0..=14).collect::<Vec<i8>>());
    assert_eq!(AclPermissionType::VALUES.iter().map(|v| v.code()).collect::<Vec<_>>(), codes(&[0, 1, 2, 3]));
    for &v in AclOperation::VALUES {
        assert_eq!(AclOperation::from_code(v.code()), v);
        assert_eq!(AclOperation::parse(v.name()), Some(v));
        assert_eq!(AclOperation::parse(v.pascal_name()), Some(v));
    }
    for &v in ResourceType::VALUES {
        assert_eq!(ResourceType::from_code(v.code()), v);
        assert_eq!(ResourceType::parse(&v.pascal_name().to_lowercase()), Some(v));
    }
    assert_eq!((Topic.code(), Cluster.code(), TransactionalId.code(), ResourceType::User.code()), (2, 4, 5, 7));
    assert_eq!((Describe.code(), IdempotentWrite.code(), Allow.code(), Deny.code()), (8, 12, 3, 2));
    assert_eq!((PatternType::Literal.code(), PatternType::Prefixed.code(), PatternType::Match.code()), (3, 4, 2));
}

#[test]
fn given_unknown_codes_when_decoding_should_read_unknown() {
    assert_eq!(ResourceType::from_code(8), ResourceType::Unknown);
    assert_eq!(PatternType::from_code(-1), PatternType::Unknown);
    assert_eq!(AclOperation::from_code(15), AclOperation::Unknown);
    assert_eq!(AclPermissionType::from_code(4), AclPermissionType::Unknown);
}

#[test]
fn given_cli_spellings_when_parsing_names_should_accept_them_ignoring_case() {
    assert_eq!(ResourceType::parse("Topic"), Some(Topic));
    assert_eq!(ResourceType::parse("TOPIC"), Some(Topic));
    assert_eq!(ResourceType::parse("TransactionalId"), Some(TransactionalId));
    assert_eq!(ResourceType::parse("transactionalid"), Some(TransactionalId));
    assert_eq!(ResourceType::parse("TRANSACTIONAL_ID"), Some(TransactionalId));
    assert_eq!(ResourceType::parse("topics"), None);
    assert_eq!(AclOperation::parse("read"), Some(Read));
    assert_eq!(AclOperation::parse("DescribeConfigs"), Some(DescribeConfigs));
    assert_eq!(AclOperation::parse("describe_configs"), Some(DescribeConfigs));
    assert_eq!(AclOperation::parse("IDEMPOTENTWRITE"), Some(IdempotentWrite));
    assert_eq!(AclOperation::parse("Describe-Configs"), None);
    assert_eq!(PatternType::parse("prefixed"), Some(PatternType::Prefixed));
    assert_eq!(PatternType::parse("Match"), Some(PatternType::Match));
    assert_eq!(AclPermissionType::parse("allow"), Some(Allow));
    assert_eq!(TransactionalId.pascal_name(), "TransactionalId");
    assert_eq!(ClusterAction.pascal_name(), "ClusterAction");
    assert_eq!(TransactionalId.to_string(), "TRANSACTIONAL_ID");
}

#[test]
fn given_valid_bindings_when_validating_should_accept_them() {
    literal(Topic, "orders", ALICE, Read, Allow).validate().unwrap();
    prefixed(Group, "app-", WILDCARD_PRINCIPAL, All, Deny).validate().unwrap();
    literal(Cluster, CLUSTER_NAME, "User:CN=broker,O=example", ClusterAction, Allow).validate().unwrap();
    literal(Topic, WILDCARD, "Group:ops", Describe, Allow).validate().unwrap();
    prefixed(Topic, WILDCARD, ALICE, Read, Allow).validate().unwrap();
    with_host(literal(Topic, "t", ALICE, Read, Allow), "10.0.0.1").validate().unwrap();
}

#[test]
fn given_bad_bindings_when_validating_should_refuse_them_with_kafkas_messages() {
    let refused = |binding: AclBinding| {
        let err = binding.validate().unwrap_err();
        assert_eq!(err.kafka_code(), 42, "{err}");
        err.to_string()
    };
    let good = literal(Topic, "orders", ALICE, Read, Allow);
    let with = |change: &dyn Fn(&mut AclBinding)| {
        let mut binding = good.clone();
        change(&mut binding);
        binding
    };
    assert_eq!(refused(with(&|b| b.resource_type = ResourceType::Any)), "Invalid resourceType ANY");
    assert_eq!(refused(with(&|b| b.resource_type = ResourceType::Unknown)), "Invalid resourceType UNKNOWN");
    assert_eq!(refused(with(&|b| b.pattern_type = PatternType::Match)), "Invalid patternType MATCH");
    assert_eq!(refused(with(&|b| b.pattern_type = PatternType::Any)), "Invalid patternType ANY");
    assert_eq!(refused(with(&|b| b.pattern_type = PatternType::Unknown)), "Invalid patternType UNKNOWN");
    assert_eq!(refused(with(&|b| b.operation = AclOperation::Any)), "Invalid operation ANY");
    assert_eq!(refused(with(&|b| b.operation = AclOperation::Unknown)), "Invalid operation UNKNOWN");
    assert_eq!(refused(with(&|b| b.permission = AclPermissionType::Any)), "Invalid permissionType ANY");
    assert_eq!(refused(with(&|b| b.permission = AclPermissionType::Unknown)), "Invalid permissionType UNKNOWN");
    assert_eq!(refused(with(&|b| b.resource_name.clear())), "Invalid empty resource name");
    assert_eq!(
        refused(literal(Cluster, "my-cluster", ALICE, Alter, Allow)),
        "The only valid name for the CLUSTER resource is kafka-cluster"
    );
    assert_eq!(
        refused(with(&|b| b.principal = "alice".to_owned())),
        "Could not parse principal from `alice` (no colon is present separating the principal type from the \
         principal name)"
    );
}

#[test]
fn given_a_binding_when_displayed_should_read_as_kafka_prints_it() {
    let binding = literal(Topic, "orders", ALICE, Read, Allow);
    assert_eq!(binding.pattern_to_string(), "ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)");
    assert_eq!(binding.entry_to_string(), "(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)");
    assert_eq!(
        binding.to_string(),
        "(pattern=ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL), \
         entry=(principal=User:alice, host=*, operation=READ, permissionType=ALLOW))"
    );
}

fn sample() -> Vec<AclBinding> {
    vec![
        literal(Topic, "foobar", ALICE, Read, Allow),
        literal(Topic, "foo", ALICE, Read, Allow),
        literal(Topic, WILDCARD, BOB, Describe, Allow),
        prefixed(Topic, "foo", ALICE, Write, Deny),
        prefixed(Topic, "foobarbaz", ALICE, Write, Allow),
        prefixed(Topic, "fob", ALICE, Write, Allow),
        with_host(literal(Group, "foobar", BOB, Read, Allow), HOST),
    ]
}

fn names(bindings: &[AclBinding]) -> Vec<String> {
    bindings
        .iter()
        .map(|b| format!("{}:{}:{}", b.resource_type.pascal_name(), b.pattern_type, b.resource_name))
        .collect()
}

fn filter(pattern_type: PatternType, name: Option<&str>) -> AclBindingFilter {
    AclBindingFilter { pattern_type, resource_name: name.map(str::to_owned), ..AclBindingFilter::ANY }
}

#[test]
fn given_the_any_filter_when_listing_should_return_every_acl_in_a_deterministic_order() {
    let mut authorizer = authorizer(sample().into_iter().rev());
    assert_eq!(authorizer.len(), 7);
    assert!(!authorizer.add(sample()[0].clone()), "a duplicate is not added");
    assert_eq!(authorizer.len(), 7);
    let all = authorizer.acls(&AclBindingFilter::ANY);
    assert_eq!(
        names(&all),
        [
            "Topic:LITERAL:*",
            "Topic:LITERAL:foo",
            "Topic:LITERAL:foobar",
            "Topic:PREFIXED:fob",
            "Topic:PREFIXED:foo",
            "Topic:PREFIXED:foobarbaz",
            "Group:LITERAL:foobar"
        ]
    );
    assert_eq!(authorizer.bindings().collect::<Vec<_>>(), all);
    assert!(AclBindingFilter::ANY.validate().is_ok());
}

#[test]
fn given_match_filter_when_listing_should_return_every_acl_that_applies_to_the_name() {
    let authorizer = authorizer(sample());
    let matched =
        authorizer.acls(&AclBindingFilter { resource_type: Topic, ..filter(PatternType::Match, Some("foobar")) });
    assert_eq!(names(&matched), ["Topic:LITERAL:*", "Topic:LITERAL:foobar", "Topic:PREFIXED:foo"]);
    let all_types = authorizer.acls(&filter(PatternType::Match, Some("foobar")));
    assert_eq!(names(&all_types).last().unwrap(), "Group:LITERAL:foobar");
    assert_eq!(authorizer.acls(&filter(PatternType::Match, None)).len(), 7, "no name matches all");
}

#[test]
fn given_exact_pattern_filters_when_listing_should_compare_names_exactly() {
    let authorizer = authorizer(sample());
    assert_eq!(
        names(&authorizer.acls(&filter(PatternType::Literal, Some("foobar")))),
        ["Topic:LITERAL:foobar", "Group:LITERAL:foobar"]
    );
    assert_eq!(names(&authorizer.acls(&filter(PatternType::Prefixed, Some("foo")))), ["Topic:PREFIXED:foo"]);
    assert_eq!(
        names(&authorizer.acls(&filter(PatternType::Any, Some("foo")))),
        ["Topic:LITERAL:foo", "Topic:PREFIXED:foo"]
    );
    assert_eq!(names(&authorizer.acls(&filter(PatternType::Literal, Some("*")))), ["Topic:LITERAL:*"]);
    assert_eq!(authorizer.acls(&filter(PatternType::Prefixed, None)).len(), 3);
    assert!(authorizer.acls(&filter(PatternType::Literal, Some("fo"))).is_empty());
}

#[test]
fn given_entry_filters_when_listing_should_match_principal_host_operation_and_permission_exactly() {
    let authorizer = authorizer(sample());
    let by = |f: AclBindingFilter| names(&authorizer.acls(&f));
    let any = AclBindingFilter::ANY;
    assert_eq!(
        by(AclBindingFilter { principal: Some(BOB.into()), ..any.clone() }),
        ["Topic:LITERAL:*", "Group:LITERAL:foobar"]
    );
    assert!(by(AclBindingFilter { principal: Some(WILDCARD_PRINCIPAL.into()), ..any.clone() }).is_empty());
    assert_eq!(by(AclBindingFilter { host: Some(HOST.into()), ..any.clone() }), ["Group:LITERAL:foobar"]);
    assert_eq!(by(AclBindingFilter { permission: Deny, ..any.clone() }), ["Topic:PREFIXED:foo"]);
    assert_eq!(by(AclBindingFilter { operation: Describe, ..any.clone() }), ["Topic:LITERAL:*"]);
    assert!(by(AclBindingFilter { operation: All, ..any.clone() }).is_empty(), "no implication in filters");
    assert_eq!(by(AclBindingFilter { resource_type: Group, ..any }), ["Group:LITERAL:foobar"]);
}

#[test]
fn given_unknown_filter_fields_when_validating_should_refuse_with_kafkas_messages() {
    let message = |f: AclBindingFilter| {
        let err = f.validate().unwrap_err();
        assert_eq!(err.kafka_code(), 42);
        err.to_string()
    };
    let any = AclBindingFilter::ANY;
    assert_eq!(
        message(AclBindingFilter { resource_type: ResourceType::Unknown, ..any.clone() }),
        "Unknown patternFilter."
    );
    assert_eq!(
        message(AclBindingFilter { pattern_type: PatternType::Unknown, ..any.clone() }),
        "Unknown patternFilter."
    );
    assert_eq!(message(AclBindingFilter { operation: AclOperation::Unknown, ..any.clone() }), "Unknown entryFilter.");
    assert_eq!(message(AclBindingFilter { permission: AclPermissionType::Unknown, ..any }), "Unknown entryFilter.");
}

#[test]
fn given_filters_when_removing_matching_should_remove_and_return_what_they_select() {
    let mut authorizer = authorizer(sample());
    let exact = AclBindingFilter::exact(&sample()[3]);
    assert_eq!(authorizer.remove_matching(&exact), vec![sample()[3].clone()]);
    assert!(authorizer.remove_matching(&exact).is_empty());
    assert_eq!(authorizer.len(), 6);
    assert!(alice_may(&authorizer, Write, "foobarbaz1"), "the deny is gone");
    let removed = authorizer.remove_matching(&filter(PatternType::Match, Some("foobar")));
    assert_eq!(names(&removed), ["Topic:LITERAL:*", "Topic:LITERAL:foobar", "Group:LITERAL:foobar"]);
    assert_eq!(authorizer.len(), 3);
    authorizer.remove_matching(&AclBindingFilter::ANY);
    assert!(authorizer.is_empty());
    assert_eq!(authorizer.bindings().count(), 0);
}

#[test]
fn given_super_users_setting_when_parsed_should_split_on_semicolons() {
    assert_eq!(
        parse_super_users("User:admin; User:CN=broker,O=example ;;").unwrap(),
        ["User:admin", "User:CN=broker,O=example"]
    );
    assert!(parse_super_users("").unwrap().is_empty());
    let err = parse_super_users("User:admin;admin").unwrap_err();
    assert_eq!(err.to_string(), "super.users: expected a string in format principalType:principalName but got admin");
    assert_eq!(err.kafka_code(), -1);
}

#[test]
fn given_client_addresses_when_formatted_should_read_as_java_prints_them() {
    let host = |text: &str| host_address(text.parse::<IpAddr>().unwrap());
    assert_eq!(host("192.168.0.1"), "192.168.0.1");
    assert_eq!(host("::1"), "0:0:0:0:0:0:0:1");
    assert_eq!(host("2001:db8::ff00:42:8329"), "2001:db8:0:0:0:ff00:42:8329");
    assert_eq!(host("::ffff:10.0.0.7"), "10.0.0.7");
}

#[test]
fn given_operations_per_resource_type_when_checked_for_the_cli_should_refuse_unsupported_ones() {
    assert!(check_operation_supported(Topic, Read).is_ok());
    assert!(check_operation_supported(Group, All).is_ok());
    assert!(check_operation_supported(Cluster, IdempotentWrite).is_ok());
    let err = check_operation_supported(Group, Write).unwrap_err();
    assert_eq!(err.to_string(), "ResourceType Group only supports operations Read, Describe, Delete, All");
    assert_eq!(TransactionalId.supported_operations(), &[Describe, Write]);
    assert!(ResourceType::Any.supported_operations().is_empty());
}
