//! `authorize`, `decide` and `authorized_operations`.

use super::*;

#[test]
fn given_literal_allow_when_authorizing_should_allow_only_that_resource_principal_and_operation() {
    let authorizer = authorizer([literal(Topic, "orders", ALICE, Read, Allow)]);
    assert!(alice_may(&authorizer, Read, "orders"));
    assert!(!alice_may(&authorizer, Write, "orders"));
    assert!(!alice_may(&authorizer, Read, "orders2"));
    assert!(!alice_may(&authorizer, Read, "order"));
    assert!(!authorizer.authorize(BOB, HOST, Read, Topic, "orders"));
    assert!(!authorizer.authorize(ALICE, HOST, Read, Group, "orders"), "another resource type");
}

#[test]
fn given_literal_wildcard_resource_when_authorizing_should_apply_to_every_name_of_the_type() {
    let authorizer = authorizer([literal(Topic, WILDCARD, ALICE, Write, Allow)]);
    assert!(alice_may(&authorizer, Write, "orders"));
    assert!(alice_may(&authorizer, Write, "*"));
    assert!(alice_may(&authorizer, Write, "anything.at-all_123"));
    assert!(!authorizer.authorize(ALICE, HOST, Write, TransactionalId, "orders"));
}

#[test]
fn given_prefixed_allow_when_authorizing_should_apply_to_names_starting_with_the_prefix() {
    let authorizer = authorizer([prefixed(Topic, "orders.", ALICE, Read, Allow)]);
    assert!(alice_may(&authorizer, Read, "orders."));
    assert!(alice_may(&authorizer, Read, "orders.eu"));
    assert!(alice_may(&authorizer, Read, "orders.eu.west"));
    assert!(!alice_may(&authorizer, Read, "orders"));
    assert!(!alice_may(&authorizer, Read, "Orders.eu"), "names are case-sensitive");
    assert!(!alice_may(&authorizer, Read, "xorders.eu"));
}

#[test]
fn given_prefixed_wildcard_when_authorizing_should_match_only_names_starting_with_a_star() {
    // Kafka accepts a prefixed `*` and treats it as the literal prefix "*".
    let authorizer = authorizer([prefixed(Topic, WILDCARD, ALICE, Read, Allow)]);
    assert!(!alice_may(&authorizer, Read, "orders"));
    assert!(alice_may(&authorizer, Read, "*orders"));
}

#[test]
fn given_wildcard_principal_when_authorizing_should_apply_to_every_principal_of_any_type() {
    let authorizer = authorizer([literal(Topic, "orders", WILDCARD_PRINCIPAL, Read, Allow)]);
    assert!(alice_may(&authorizer, Read, "orders"));
    assert!(authorizer.authorize(BOB, HOST, Read, Topic, "orders"));
    assert!(authorizer.authorize("User:ANONYMOUS", HOST, Read, Topic, "orders"));
    // Kafka's wildcard is `User:*` whatever the caller's principal type.
    assert!(authorizer.authorize("Group:ops", HOST, Read, Topic, "orders"));
    // `Group:*` is not a wildcard: it is a principal named `*` of type Group.
    let group_star = authorizer_with([literal(Topic, "orders", "Group:*", Read, Allow)]);
    assert!(!group_star.authorize("Group:ops", HOST, Read, Topic, "orders"));
    assert!(group_star.authorize("Group:*", HOST, Read, Topic, "orders"));
}

#[test]
fn given_host_specific_acl_when_authorizing_should_apply_only_from_that_host() {
    let authorizer = authorizer([with_host(literal(Topic, "orders", ALICE, Read, Allow), HOST)]);
    assert!(authorizer.authorize(ALICE, HOST, Read, Topic, "orders"));
    assert!(!authorizer.authorize(ALICE, OTHER_HOST, Read, Topic, "orders"));
}

#[test]
fn given_allow_everywhere_and_deny_from_one_host_when_authorizing_should_deny_from_that_host() {
    // Kafka's testDenyTakesPrecedence.
    let authorizer = authorizer([
        literal(Topic, "orders", ALICE, Read, Allow),
        with_host(literal(Topic, "orders", ALICE, Read, Deny), OTHER_HOST),
    ]);
    assert!(authorizer.authorize(ALICE, HOST, Read, Topic, "orders"));
    assert!(!authorizer.authorize(ALICE, OTHER_HOST, Read, Topic, "orders"));
    assert_eq!(authorizer.decide(ALICE, OTHER_HOST, Read, Topic, "orders"), Decision::DenyAcl);
    assert_eq!(authorizer.decide(ALICE, HOST, Read, Topic, "orders"), Decision::AllowAcl);
    assert!(
        Decision::AllowAcl.is_allowed() && !Decision::DenyAcl.is_allowed() && !Decision::NoMatchingAcl.is_allowed()
    );
}

#[test]
fn given_allow_and_deny_of_the_same_operation_when_authorizing_should_deny() {
    let authorizer =
        authorizer([literal(Topic, "orders", ALICE, Write, Allow), literal(Topic, "orders", ALICE, Write, Deny)]);
    assert!(!alice_may(&authorizer, Write, "orders"));
}

#[test]
fn given_deny_on_a_prefix_and_allow_on_the_literal_when_authorizing_should_deny() {
    let authorizer =
        authorizer([literal(Topic, "orders.eu", ALICE, Read, Allow), prefixed(Topic, "orders", ALICE, Read, Deny)]);
    assert!(!alice_may(&authorizer, Read, "orders.eu"));
    // The prefix denies READ only: the allow still implies DESCRIBE.
    assert!(alice_may(&authorizer, Describe, "orders.eu"));
}

#[test]
fn given_deny_on_the_wildcard_and_allow_on_the_literal_when_authorizing_should_deny() {
    let authorizer =
        authorizer([literal(Topic, "orders", ALICE, All, Allow), literal(Topic, WILDCARD, ALICE, Write, Deny)]);
    assert!(alice_may(&authorizer, Read, "orders"));
    assert!(!alice_may(&authorizer, Write, "orders"));
}

#[test]
fn given_deny_for_wildcard_principal_when_authorizing_should_deny_every_principal() {
    let authorizer = authorizer([
        literal(Topic, "orders", ALICE, Read, Allow),
        literal(Topic, "orders", WILDCARD_PRINCIPAL, Read, Deny),
    ]);
    assert!(!alice_may(&authorizer, Read, "orders"));
}

#[test]
fn given_allow_of_operations_implying_describe_when_authorizing_describe_should_allow() {
    for operation in [Read, Write, Delete, Alter, Describe, All] {
        let authorizer = authorizer([literal(Topic, "orders", ALICE, operation, Allow)]);
        assert!(alice_may(&authorizer, Describe, "orders"), "{operation} implies DESCRIBE");
    }
    for operation in [Create, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite] {
        let authorizer = authorizer([literal(Topic, "orders", ALICE, operation, Allow)]);
        assert!(!alice_may(&authorizer, Describe, "orders"), "{operation} does not imply DESCRIBE");
    }
}

#[test]
fn given_allow_of_alter_configs_when_authorizing_describe_configs_should_allow() {
    for operation in [AlterConfigs, DescribeConfigs, All] {
        let authorizer = authorizer([literal(Topic, "orders", ALICE, operation, Allow)]);
        assert!(alice_may(&authorizer, DescribeConfigs, "orders"), "{operation} implies DESCRIBE_CONFIGS");
    }
    for operation in [Alter, Read, Write, Describe] {
        let authorizer = authorizer([literal(Topic, "orders", ALICE, operation, Allow)]);
        assert!(!alice_may(&authorizer, DescribeConfigs, "orders"), "{operation} does not imply DESCRIBE_CONFIGS");
    }
    let authorizer = authorizer([literal(Topic, "orders", ALICE, DescribeConfigs, Allow)]);
    assert!(!alice_may(&authorizer, AlterConfigs, "orders"), "the implication goes one way");
}

#[test]
fn given_describe_allowed_when_authorizing_read_should_deny() {
    let authorizer = authorizer([literal(Topic, "orders", ALICE, Describe, Allow)]);
    assert!(alice_may(&authorizer, Describe, "orders"));
    for operation in [Read, Write, Delete, Alter] {
        assert!(!alice_may(&authorizer, operation, "orders"));
    }
}

#[test]
fn given_deny_of_an_implying_operation_when_authorizing_describe_should_not_deny() {
    // A DENY implies nothing: denying READ leaves DESCRIBE to the ALLOW of WRITE.
    let authorizer =
        authorizer([literal(Topic, "orders", ALICE, Write, Allow), literal(Topic, "orders", ALICE, Read, Deny)]);
    assert!(alice_may(&authorizer, Describe, "orders"));
    assert!(!alice_may(&authorizer, Read, "orders"));
    let configs = authorizer_with([
        literal(Topic, "orders", ALICE, All, Allow),
        literal(Topic, "orders", ALICE, AlterConfigs, Deny),
    ]);
    assert!(alice_may(&configs, DescribeConfigs, "orders"));
    assert!(!alice_may(&configs, AlterConfigs, "orders"));
}

#[test]
fn given_deny_of_describe_when_authorizing_read_should_not_deny() {
    let authorizer =
        authorizer([literal(Topic, "orders", ALICE, Read, Allow), literal(Topic, "orders", ALICE, Describe, Deny)]);
    assert!(alice_may(&authorizer, Read, "orders"));
    assert!(!alice_may(&authorizer, Describe, "orders"));
}

#[test]
fn given_deny_of_all_when_authorizing_should_deny_every_operation() {
    let authorizer =
        authorizer([literal(Topic, "orders", ALICE, All, Allow), prefixed(Topic, "ord", ALICE, All, Deny)]);
    for &operation in Topic.supported_operations() {
        assert!(!alice_may(&authorizer, operation, "orders"), "{operation}");
    }
}

#[test]
fn given_allow_of_all_when_authorizing_should_allow_every_operation() {
    let authorizer = authorizer([literal(Cluster, CLUSTER_NAME, ALICE, All, Allow)]);
    for &operation in Cluster.supported_operations() {
        assert!(authorizer.authorize(ALICE, HOST, operation, Cluster, CLUSTER_NAME), "{operation}");
    }
}

#[test]
fn given_super_user_when_authorizing_should_allow_everything_despite_deny_acls() {
    let mut authorizer = authorizer([literal(Topic, WILDCARD, WILDCARD_PRINCIPAL, All, Deny)]);
    authorizer.set_super_users(vec!["User:admin".to_owned()]);
    assert!(authorizer.authorize("User:admin", HOST, Write, Topic, "orders"));
    assert!(authorizer.authorize("User:admin", HOST, ClusterAction, Cluster, CLUSTER_NAME));
    assert_eq!(authorizer.decide("User:admin", HOST, Read, Group, "g"), Decision::SuperUser);
    assert!(!authorizer.authorize("User:Admin", HOST, Write, Topic, "orders"), "compared exactly");
    assert!(!authorizer.authorize("Group:admin", HOST, Write, Topic, "orders"));
}

#[test]
fn given_no_acl_for_the_resource_when_authorizing_should_follow_allow_everyone_if_no_acl_found() {
    let mut authorizer = authorizer([literal(Topic, "other", BOB, Read, Allow)]);
    assert!(!alice_may(&authorizer, Read, "orders"), "denied by default");
    assert_eq!(authorizer.decide(ALICE, HOST, Read, Topic, "orders"), Decision::NoAclFound { allowed: false });
    authorizer.set_allow_everyone_if_no_acl_found(true);
    assert!(alice_may(&authorizer, Read, "orders"));
    assert!(authorizer.authorize(ALICE, HOST, Read, Group, "g"), "a type without any ACL");
    assert_eq!(authorizer.decide(ALICE, HOST, Read, Topic, "orders"), Decision::NoAclFound { allowed: true });
    assert!(Authorizer::new(vec![], true).authorize(ALICE, HOST, Write, Topic, "t"));
    assert!(!Authorizer::new(vec![], false).authorize(ALICE, HOST, Write, Topic, "t"));
}

#[test]
fn given_acls_for_other_principals_on_the_resource_when_allowing_everyone_should_still_deny() {
    let mut authorizer = authorizer([prefixed(Topic, "ord", BOB, Read, Allow)]);
    authorizer.set_allow_everyone_if_no_acl_found(true);
    assert!(!alice_may(&authorizer, Read, "orders"));
    assert_eq!(authorizer.decide(ALICE, HOST, Read, Topic, "orders"), Decision::NoMatchingAcl);
    assert!(alice_may(&authorizer, Read, "payments"), "no ACL applies to this name");
    // An ACL of another host or operation counts as an ACL of the resource too.
    let mut by_host = authorizer_with([with_host(literal(Topic, "orders", ALICE, Read, Allow), OTHER_HOST)]);
    by_host.set_allow_everyone_if_no_acl_found(true);
    assert!(!alice_may(&by_host, Read, "orders"));
    assert!(!alice_may(&by_host, Write, "orders"));
}

#[test]
fn given_removed_acl_when_authorizing_should_no_longer_apply() {
    let binding = literal(Topic, "orders", ALICE, Read, Allow);
    let mut authorizer = authorizer([binding.clone()]);
    assert!(alice_may(&authorizer, Read, "orders"));
    assert!(authorizer.remove(&binding));
    assert!(!authorizer.remove(&binding));
    assert!(!alice_may(&authorizer, Read, "orders"));
    assert!(authorizer.is_empty());
}

#[test]
fn given_many_prefixes_when_authorizing_should_find_every_applicable_one() {
    // Kafka's StandardAuthorizerTest ordering example: foobar, foob, foo, fb, fa, f.
    let mut acls: Vec<AclBinding> =
        ["gar", "foobar", "fb", "fa", "f"].into_iter().map(|name| prefixed(Topic, name, ALICE, Read, Allow)).collect();
    acls.push(literal(Topic, "foob", ALICE, Read, Allow));
    acls.push(literal(Topic, "eeee", ALICE, Read, Allow));
    acls.push(prefixed(Topic, "f", ALICE, Write, Deny));
    let authorizer = authorizer(acls);
    assert!(alice_may(&authorizer, Read, "foobar"));
    assert!(alice_may(&authorizer, Read, "fzz"), "through the prefix f");
    assert!(!alice_may(&authorizer, Write, "foobar"), "the deny on the shortest prefix is found");
    assert!(!alice_may(&authorizer, Read, "e"));
}

#[test]
fn given_resource_acls_when_computing_authorized_operations_should_set_the_allowed_bits() {
    let bits = |ops: &[AclOperation]| ops.iter().fold(0, |bits, op| bits | (1 << op.code()));
    let authorizer = authorizer([
        literal(Topic, "orders", ALICE, Read, Allow),
        literal(Topic, "orders", ALICE, AlterConfigs, Allow),
        literal(Group, "g", ALICE, All, Allow),
        literal(Group, "g", ALICE, Delete, Deny),
        literal(Cluster, CLUSTER_NAME, ALICE, IdempotentWrite, Allow),
        literal(TransactionalId, "tx", ALICE, Write, Allow),
    ]);
    let ops = |resource_type, name| authorizer.authorized_operations(ALICE, HOST, resource_type, name);
    assert_eq!(ops(Topic, "orders"), bits(&[Read, Describe, AlterConfigs, DescribeConfigs]));
    assert_eq!(ops(Topic, "orders"), 8 + 256 + 1024 + 2048);
    assert_eq!(ops(Group, "g"), bits(&[Read, Describe]));
    assert_eq!(ops(Cluster, CLUSTER_NAME), bits(&[IdempotentWrite]));
    assert_eq!(ops(TransactionalId, "tx"), bits(&[Write, Describe]));
    assert_eq!(ops(Topic, "unknown"), 0);
    assert_eq!(authorizer.authorized_operations(BOB, HOST, Topic, "orders"), 0);
}

#[test]
fn given_all_allowed_or_super_user_when_computing_authorized_operations_should_set_every_supported_bit() {
    let mut authorizer = authorizer([literal(Topic, WILDCARD, ALICE, All, Allow)]);
    authorizer.set_super_users(vec!["User:admin".to_owned()]);
    let supported = |resource_type: ResourceType| {
        resource_type.supported_operations().iter().fold(0, |bits, op| bits | (1 << op.code()))
    };
    assert_eq!(authorizer.authorized_operations(ALICE, HOST, Topic, "t"), supported(Topic));
    assert_eq!(supported(Topic), 0b1101_1111_1000, "READ..ALTER_CONFIGS but CLUSTER_ACTION");
    for resource_type in [Topic, Group, Cluster, TransactionalId, ResourceType::DelegationToken, ResourceType::User] {
        assert_eq!(authorizer.authorized_operations("User:admin", HOST, resource_type, "x"), supported(resource_type));
    }
    assert_eq!(supported(Cluster), 0b1_1111_1010_0000);
}

#[test]
fn given_no_acl_found_when_computing_authorized_operations_should_follow_the_default() {
    let mut authorizer = Authorizer::new(vec![], true);
    assert_eq!(authorizer.authorized_operations(ALICE, HOST, Group, "g"), 0b1_0100_1000);
    authorizer.set_allow_everyone_if_no_acl_found(false);
    assert_eq!(authorizer.authorized_operations(ALICE, HOST, Group, "g"), 0);
    assert_eq!(authorizer.authorized_operations(ALICE, HOST, ResourceType::Any, "g"), 0);
}

#[test]
fn given_random_acls_when_computing_authorized_operations_should_agree_with_authorize() {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let names = ["a", "ab", "abc", "b", WILDCARD];
    let principals = [ALICE, BOB, WILDCARD_PRINCIPAL];
    let ops = [All, Read, Write, Delete, Alter, Describe, DescribeConfigs, AlterConfigs, Create];
    for _ in 0..200 {
        let mut authorizer = Authorizer::new(vec![], next(2) == 0);
        for _ in 0..next(6) {
            let pattern = if next(2) == 0 { PatternType::Literal } else { PatternType::Prefixed };
            let permission = if next(3) == 0 { Deny } else { Allow };
            let binding = acl(Topic, names[next(5)], pattern, principals[next(3)], ops[next(ops.len())], permission);
            authorizer.add(with_host(binding, [WILDCARD, HOST, OTHER_HOST][next(3)]));
        }
        for name in ["a", "abc", "abd", "b", "c", WILDCARD] {
            let expected = Topic
                .supported_operations()
                .iter()
                .filter(|&&op| alice_may(&authorizer, op, name))
                .fold(0, |bits, op| bits | (1 << op.code()));
            assert_eq!(authorizer.authorized_operations(ALICE, HOST, Topic, name), expected, "{name}: {authorizer:?}");
        }
    }
}
