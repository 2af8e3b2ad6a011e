//! DescribeUserScramCredentials (50) and AlterUserScramCredentials (51): SCRAM users as
//! metadata records, with Kafka's per-user errors (a user named twice, an unknown
//! mechanism, too few iterations, deleting what does not exist). Only salted keys are
//! stored; AlterUserScramCredentials carries the salted password, never the password.

use std::collections::{BTreeMap, BTreeSet};

use gregor_protocol::kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use gregor_protocol::kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use gregor_protocol::kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse,
};
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_security::{ScramCredential, ScramMechanism};

use super::{blocking, str_bytes, RequestContext};
use crate::authz::Op;
use crate::controller::ControllerCommand;
use crate::BrokerError;

type Refusal = (ResponseError, String);

const UNAUTHORIZED: &str = "Cluster authorization failed.";
/// A credential change: user, mechanism type, stored credential (`None`: delete).
type Change = (String, i8, Option<String>);

pub(crate) async fn describe(
    ctx: &RequestContext<'_>,
    request: DescribeUserScramCredentialsRequest,
) -> Result<DescribeUserScramCredentialsResponse, BrokerError> {
    // DESCRIBE on the cluster, else CLUSTER_AUTHORIZATION_FAILED for the request and each
    // user named, as Kafka answers.
    if !ctx.allowed_on_cluster(Op::Describe) {
        let (e, message) = (ResponseError::ClusterAuthorizationFailed, UNAUTHORIZED);
        let results = request.users.iter().flatten().map(|u| refused(result(u.name.as_str()), e, message)).collect();
        return Ok(DescribeUserScramCredentialsResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(str_bytes(message)))
            .with_results(results));
    }
    let image = ctx.broker.image();
    let mut by_user: BTreeMap<&str, Vec<CredentialInfo>> = BTreeMap::new();
    for ((user, mechanism), stored) in &image.scram_credentials {
        let iterations = ScramMechanism::from_type_code(*mechanism)
            .and_then(|m| ScramCredential::from_storage_string(m, stored).ok())
            .map_or(0, |c| c.iterations as i32);
        by_user
            .entry(user)
            .or_default()
            .push(CredentialInfo::default().with_mechanism(*mechanism).with_iterations(iterations));
    }
    // Kafka describes every user for a null or an empty list (librdkafka sends empty).
    let results = match request.users.as_ref().filter(|u| !u.is_empty()) {
        None => by_user.iter().map(|(user, infos)| result(user).with_credential_infos(infos.clone())).collect(),
        Some(users) => {
            let mut seen = BTreeSet::new();
            let duplicated: BTreeSet<&str> =
                users.iter().map(|u| u.name.as_str()).filter(|n| !seen.insert(*n)).collect();
            let mut answered = BTreeSet::new();
            users
                .iter()
                .map(|u| u.name.as_str())
                .filter(|n| answered.insert(*n))
                .map(|name| match by_user.get(name) {
                    _ if duplicated.contains(name) => refused(
                        result(name),
                        ResponseError::DuplicateResource,
                        "Cannot describe SCRAM credentials for the same user twice in a single request",
                    ),
                    Some(infos) => result(name).with_credential_infos(infos.clone()),
                    None => refused(
                        result(name),
                        ResponseError::ResourceNotFound,
                        "Attempt to describe a user credential that does not exist",
                    ),
                })
                .collect()
        }
    };
    Ok(DescribeUserScramCredentialsResponse::default().with_results(results))
}

fn result(user: &str) -> DescribeUserScramCredentialsResult {
    DescribeUserScramCredentialsResult::default().with_user(str_bytes(user))
}

fn refused(
    r: DescribeUserScramCredentialsResult,
    e: ResponseError,
    message: &str,
) -> DescribeUserScramCredentialsResult {
    r.with_error_code(e.code()).with_error_message(Some(str_bytes(message)))
}

pub(crate) async fn alter(
    ctx: &RequestContext<'_>,
    request: AlterUserScramCredentialsRequest,
) -> Result<AlterUserScramCredentialsResponse, BrokerError> {
    if !ctx.allowed_on_cluster(Op::Alter) {
        return Ok(unauthorized_alter(&request));
    }
    let image = ctx.broker.image();
    // Every (user, mechanism) named, to find the ones named twice.
    let mut count: BTreeMap<(&str, i8), usize> = BTreeMap::new();
    let named = request.deletions.iter().map(|d| (d.name.as_str(), d.mechanism));
    for key in named.chain(request.upsertions.iter().map(|u| (u.name.as_str(), u.mechanism))) {
        *count.entry(key).or_default() += 1;
    }
    let mut outcome: BTreeMap<String, Result<Vec<Change>, Refusal>> = BTreeMap::new();
    let mut record = |user: &str, change: Result<(i8, Option<String>), Refusal>| {
        let entry = outcome.entry(user.to_owned()).or_insert_with(|| Ok(Vec::new()));
        match (entry.as_mut(), change) {
            (Ok(changes), Ok((mechanism, credential))) => changes.push((user.to_owned(), mechanism, credential)),
            (Ok(_), Err(refusal)) => *entry = Err(refusal),
            (Err(_), _) => {} // the first refusal of a user is the one answered
        }
    };
    for d in &request.deletions {
        let name = d.name.as_str();
        let change = check_common(name, d.mechanism, count[&(name, d.mechanism)]).and_then(|_| {
            if image.scram_credentials.contains_key(&(name.to_owned(), d.mechanism)) {
                Ok((d.mechanism, None))
            } else {
                Err((ResponseError::ResourceNotFound, "Attempt to delete a user credential that does not exist".into()))
            }
        });
        record(name, change);
    }
    for u in &request.upsertions {
        let name = u.name.as_str();
        let change = check_common(name, u.mechanism, count[&(name, u.mechanism)]).and_then(|mechanism| {
            let iterations = u32::try_from(u.iterations).unwrap_or(0);
            ScramCredential::from_salted_password(mechanism, &u.salted_password, &u.salt, iterations)
                .map(|c| (u.mechanism, Some(c.to_storage_string())))
                .map_err(|e| {
                    (
                        ResponseError::try_from_code(e.kafka_code()).unwrap_or(ResponseError::UnacceptableCredential),
                        e.to_string(),
                    )
                })
        });
        record(name, change);
    }
    let accepted: Vec<_> = outcome.values().filter_map(|o| o.as_ref().ok()).flatten().cloned().collect();
    let mut failure = None;
    if !accepted.is_empty() {
        let broker = ctx.broker.clone();
        let command = ControllerCommand::AlterScramCredentials { changes: accepted };
        if let Err(e) = blocking(move || broker.metadata.execute(command)).await {
            failure = Some((e.response_error(), e.to_string()));
        }
    }
    let results = outcome
        .into_iter()
        .map(|(user, o)| {
            let answer = AlterUserScramCredentialsResult::default().with_user(StrBytes::from_string(user));
            match o.err().or_else(|| failure.clone()) {
                None => answer,
                Some((e, message)) => answer.with_error_code(e.code()).with_error_message(Some(str_bytes(&message))),
            }
        })
        .collect();
    Ok(AlterUserScramCredentialsResponse::default().with_results(results))
}

/// ALTER on the cluster refused: CLUSTER_AUTHORIZATION_FAILED for every user named, in
/// name order, as Kafka answers.
fn unauthorized_alter(request: &AlterUserScramCredentialsRequest) -> AlterUserScramCredentialsResponse {
    let users: BTreeSet<&str> = request
        .deletions
        .iter()
        .map(|d| d.name.as_str())
        .chain(request.upsertions.iter().map(|u| u.name.as_str()))
        .collect();
    let code = ResponseError::ClusterAuthorizationFailed.code();
    let results = users
        .into_iter()
        .map(|user| {
            AlterUserScramCredentialsResult::default()
                .with_user(str_bytes(user))
                .with_error_code(code)
                .with_error_message(Some(str_bytes(UNAUTHORIZED)))
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}

/// The checks every deletion and upsertion passes: a name, a known mechanism, named once.
fn check_common(name: &str, mechanism: i8, times: usize) -> Result<ScramMechanism, Refusal> {
    if name.is_empty() {
        return Err((ResponseError::UnacceptableCredential, "Username must not be empty".into()));
    }
    let mechanism = ScramMechanism::from_type_code(mechanism)
        .ok_or_else(|| (ResponseError::UnsupportedSaslMechanism, "Unknown SCRAM mechanism".to_owned()))?;
    if times > 1 {
        return Err((
            ResponseError::DuplicateResource,
            "A user credential cannot be altered twice in the same request".into(),
        ));
    }
    Ok(mechanism)
}
