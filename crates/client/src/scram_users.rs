//! SCRAM users (`gregor users`, kafka-configs.sh's `--entity-type users`):
//! DescribeUserScramCredentials and AlterUserScramCredentials. The password is salted
//! here; the broker gets the salt, the iterations and the salted password only.

use gregor_protocol::kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use gregor_protocol::kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use gregor_protocol::kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use gregor_security::ScramMechanism;
use rand::RngCore;

use crate::client::Client;
use crate::error::{check, ClientError, Result};

/// A user and the SCRAM mechanisms it has credentials for, with their iterations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramUser {
    pub name: String,
    pub credentials: Vec<(String, i32)>,
}

fn mechanism(name: &str) -> Result<ScramMechanism> {
    ScramMechanism::from_name(&name.to_ascii_uppercase())
        .ok_or_else(|| ClientError::Other(format!("'{name}' is not SCRAM-SHA-256 or SCRAM-SHA-512")))
}

impl Client {
    /// The named users (all users with `None`).
    pub async fn scram_users(&mut self, users: Option<&[String]>) -> Result<Vec<ScramUser>> {
        let request = DescribeUserScramCredentialsRequest::default().with_users(users.map(|names| {
            names.iter().map(|n| UserName::default().with_name(StrBytes::from_string(n.clone()))).collect()
        }));
        let response = self.controller().await?.send(&request, None).await?;
        check(response.error_code, response.error_message.as_deref(), || "describe SCRAM users".into())?;
        response
            .results
            .into_iter()
            .map(|r| {
                check(r.error_code, r.error_message.as_deref(), || format!("describe SCRAM user '{}'", r.user))?;
                let credentials = r
                    .credential_infos
                    .iter()
                    .map(|c| {
                        let name = ScramMechanism::from_type_code(c.mechanism).map_or("UNKNOWN", |m| m.name());
                        (name.to_owned(), c.iterations)
                    })
                    .collect();
                Ok(ScramUser { name: r.user.to_string(), credentials })
            })
            .collect()
    }

    /// Creates or replaces `user`'s credential for `mechanism_name`.
    pub async fn upsert_scram_user(
        &mut self,
        user: &str,
        mechanism_name: &str,
        iterations: i32,
        password: &str,
    ) -> Result<()> {
        let m = mechanism(mechanism_name)?;
        let mut salt = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut salt);
        let salted = m.salted_password(password.as_bytes(), &salt, u32::try_from(iterations).unwrap_or(0));
        let upsertion = ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_string(user.to_owned()))
            .with_mechanism(m.type_code())
            .with_iterations(iterations)
            .with_salt(salt.to_vec().into())
            .with_salted_password(salted.into());
        self.alter_scram(AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion]), user).await
    }

    /// Deletes `user`'s credential for `mechanism_name`.
    pub async fn delete_scram_user(&mut self, user: &str, mechanism_name: &str) -> Result<()> {
        let deletion = ScramCredentialDeletion::default()
            .with_name(StrBytes::from_string(user.to_owned()))
            .with_mechanism(mechanism(mechanism_name)?.type_code());
        self.alter_scram(AlterUserScramCredentialsRequest::default().with_deletions(vec![deletion]), user).await
    }

    async fn alter_scram(&mut self, request: AlterUserScramCredentialsRequest, user: &str) -> Result<()> {
        let response = self.controller().await?.send(&request, None).await?;
        for r in &response.results {
            check(r.error_code, r.error_message.as_deref(), || format!("change SCRAM user '{user}'"))?;
        }
        Ok(())
    }
}
