//! `authorize_any`, Kafka's `authorizeByResourceType` (after AuthorizerInterfaceDefaultTest
//! and the authorizeByResourceType cases of AclAuthorizerTest).

use super::*;

fn alice_may_any(authorizer: &Authorizer, operation: AclOperation) -> bool {
    authorizer.authorize_any(ALICE, HOST, operation, Topic)
}

#[test]
fn given_no_acl_when_authorizing_by_type_should_follow_allow_everyone_if_no_acl_found() {
    assert!(!alice_may_any(&Authorizer::new(vec![], false), Write));
    assert!(alice_may_any(&Authorizer::new(vec![], true), Write));
}

#[test]
fn given_super_user_when_authorizing_by_type_should_allow_despite_a_wildcard_deny() {
    let mut authorizer = authorizer([literal(Topic, WILDCARD, WILDCARD_PRINCIPAL, All, Deny)]);
    authorizer.set_super_users(vec![ALICE.to_owned()]);
    assert!(alice_may_any(&authorizer, Write));
    assert!(!authorizer.authorize_any(BOB, HOST, Write, Topic));
}

#[test]
fn given_allow_on_one_literal_when_authorizing_by_type_should_allow() {
    let authorizer = authorizer([literal(Topic, "orders", ALICE, Write, Allow)]);
    assert!(alice_may_any(&authorizer, Write));
    assert!(!alice_may_any(&authorizer, Read), "another operation");
    assert!(!alice_may_any(&authorizer, Describe), "no implied operations");
    assert!(!authorizer.authorize_any(BOB, HOST, Write, Topic), "another principal");
    assert!(!authorizer.authorize_any(ALICE, HOST, Write, Group), "another type");
}

#[test]
fn given_allow_of_all_or_for_everyone_when_authorizing_by_type_should_allow() {
    assert!(alice_may_any(&authorizer([prefixed(Topic, "o", ALICE, All, Allow)]), IdempotentWrite));
    assert!(alice_may_any(&authorizer([literal(Topic, "o", WILDCARD_PRINCIPAL, Write, Allow)]), Write));
    let by_host = authorizer([with_host(literal(Topic, "o", ALICE, Write, Allow), OTHER_HOST)]);
    assert!(!alice_may_any(&by_host, Write));
    assert!(by_host.authorize_any(ALICE, OTHER_HOST, Write, Topic));
}

#[test]
fn given_allow_and_deny_on_the_same_literal_when_authorizing_by_type_should_deny() {
    let authorizer =
        authorizer([literal(Topic, "orders", ALICE, Write, Allow), literal(Topic, "orders", ALICE, Write, Deny)]);
    assert!(!alice_may_any(&authorizer, Write));
    let other =
        authorizer_with([literal(Topic, "orders", ALICE, Write, Allow), literal(Topic, "other", ALICE, Write, Deny)]);
    assert!(alice_may_any(&other, Write), "a deny elsewhere does not cover the allowed name");
}

#[test]
fn given_deny_on_a_prefix_of_the_allowed_literal_when_authorizing_by_type_should_deny() {
    let authorizer =
        authorizer([literal(Topic, "orders", ALICE, Write, Allow), prefixed(Topic, "ord", ALICE, Write, Deny)]);
    assert!(!alice_may_any(&authorizer, Write));
    let whole =
        authorizer_with([literal(Topic, "orders", ALICE, Write, Allow), prefixed(Topic, "orders", ALICE, Write, Deny)]);
    assert!(!alice_may_any(&whole, Write), "the name itself is one of its prefixes");
    let longer = authorizer_with([
        literal(Topic, "orders", ALICE, Write, Allow),
        prefixed(Topic, "orders.eu", ALICE, Write, Deny),
    ]);
    assert!(alice_may_any(&longer, Write));
}

#[test]
fn given_allowed_prefix_and_denied_literal_when_authorizing_by_type_should_allow() {
    // Other names under the prefix stay allowed.
    let authorizer =
        authorizer([prefixed(Topic, "orders", ALICE, Write, Allow), literal(Topic, "orders", ALICE, Write, Deny)]);
    assert!(alice_may_any(&authorizer, Write));
}

#[test]
fn given_allowed_prefix_and_denied_prefixes_when_authorizing_by_type_should_deny_only_dominating_ones() {
    let shorter =
        authorizer([prefixed(Topic, "orders", ALICE, Write, Allow), prefixed(Topic, "ord", ALICE, Write, Deny)]);
    assert!(!alice_may_any(&shorter, Write));
    let longer =
        authorizer_with([prefixed(Topic, "ord", ALICE, Write, Allow), prefixed(Topic, "orders", ALICE, Write, Deny)]);
    assert!(alice_may_any(&longer, Write));
}

#[test]
fn given_wildcard_acls_when_authorizing_by_type_should_let_a_wildcard_deny_win() {
    let allow = authorizer([literal(Topic, WILDCARD, ALICE, Write, Allow), prefixed(Topic, "a", ALICE, Write, Deny)]);
    assert!(alice_may_any(&allow, Write), "a wildcard allow allows whatever the other denies");
    let deny =
        authorizer_with([literal(Topic, WILDCARD, ALICE, Write, Allow), literal(Topic, WILDCARD, ALICE, All, Deny)]);
    assert!(!alice_may_any(&deny, Write));
    let deny_with_literal = authorizer_with([
        literal(Topic, "orders", ALICE, Write, Allow),
        literal(Topic, WILDCARD, WILDCARD_PRINCIPAL, Write, Deny),
    ]);
    assert!(!alice_may_any(&deny_with_literal, Write));
}

#[test]
fn given_deny_of_another_operation_when_authorizing_by_type_should_ignore_it() {
    let authorizer =
        authorizer([literal(Topic, "orders", ALICE, Write, Allow), prefixed(Topic, "o", ALICE, Read, Deny)]);
    assert!(alice_may_any(&authorizer, Write));
    let other_principal =
        authorizer_with([literal(Topic, "orders", ALICE, Write, Allow), prefixed(Topic, "o", BOB, Write, Deny)]);
    assert!(alice_may_any(&other_principal, Write));
}

#[test]
fn given_allow_everyone_and_acls_elsewhere_when_authorizing_by_type_should_allow_like_kafka() {
    // Kafka first authorizes the operation on a resource named "hardcode": no ACL applies to
    // that name, so allow.everyone.if.no.acl.found allows although Alice may write nowhere.
    let mut authorizer = authorizer([literal(Topic, "orders", BOB, Write, Allow)]);
    assert!(!alice_may_any(&authorizer, Write));
    authorizer.set_allow_everyone_if_no_acl_found(true);
    assert!(alice_may_any(&authorizer, Write));
}

#[test]
fn given_any_or_unknown_arguments_when_authorizing_by_type_should_deny() {
    let authorizer = Authorizer::new(vec![ALICE.to_owned()], true);
    assert!(!authorizer.authorize_any(ALICE, HOST, AclOperation::Any, Topic));
    assert!(!authorizer.authorize_any(ALICE, HOST, AclOperation::Unknown, Topic));
    assert!(!authorizer.authorize_any(ALICE, HOST, Write, ResourceType::Any));
    assert!(!authorizer.authorize_any(ALICE, HOST, Write, ResourceType::Unknown));
}

#[test]
fn given_transactional_id_and_cluster_acls_when_authorizing_by_type_should_look_at_that_type_only() {
    let authorizer = authorizer([
        prefixed(TransactionalId, "app-", ALICE, Write, Allow),
        literal(Topic, WILDCARD, ALICE, All, Deny),
    ]);
    assert!(authorizer.authorize_any(ALICE, HOST, Write, TransactionalId));
    assert!(!authorizer.authorize_any(ALICE, HOST, Write, Topic));
    assert!(!authorizer.authorize_any(ALICE, HOST, IdempotentWrite, Cluster));
}
