//! `gregor users`: SCRAM users, as `kafka-configs.sh --entity-type users --alter
//! --add-config 'SCRAM-SHA-512=[iterations=8192,password=...]'` manages them. The password
//! is salted by this command; the broker stores only the salted keys.

use std::io::BufRead;

use clap::{Args, Subcommand};
use serde_json::json;

use crate::common::{connect, emit, emit_json, run_async, table, usage, CliResult, Global, Output};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gregor users create --user alice --mechanism SCRAM-SHA-512 --password alice-secret
  echo alice-secret | gregor users create --user alice --password-stdin
  gregor users list
  gregor users delete --user alice --mechanism SCRAM-SHA-512
  gregor users list --command-config admin.properties --bootstrap-server broker:9094")]
pub(crate) struct UsersArgs {
    #[command(subcommand)]
    command: UsersCommand,
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Create a user's SCRAM credential, or replace its password.
    Create {
        #[arg(long)]
        user: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
        /// PBKDF2 iterations (Kafka accepts 4096 to 16384).
        #[arg(long, default_value_t = 8192)]
        iterations: i32,
        /// The password (visible in the process list: prefer --password-stdin).
        #[arg(long, conflicts_with = "password_stdin")]
        password: Option<String>,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Users with SCRAM credentials, and their mechanisms and iterations.
    List {
        /// Only these users (repeatable).
        #[arg(long)]
        user: Vec<String>,
    },
    /// Delete a user's credential for one mechanism.
    Delete {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
    },
}

pub(crate) fn run(args: UsersArgs, global: &Global) -> Result<(), String> {
    let global = global.clone();
    run_async(async move {
        let mut client = connect(&global.conn).await?;
        match args.command {
            UsersCommand::Create { user, mechanism, iterations, password, password_stdin } => {
                let password = match (password, password_stdin) {
                    (Some(p), _) => p,
                    (None, true) => read_stdin_line()?,
                    (None, false) => return Err(usage("give --password or --password-stdin")),
                };
                if password.is_empty() {
                    return Err(usage("the password is empty"));
                }
                client.upsert_scram_user(&user, &mechanism, iterations, &password).await?;
                emit(&format!(
                    "User {user}: {} credential set ({iterations} iterations).\n",
                    mechanism.to_ascii_uppercase()
                ))
            }
            UsersCommand::List { user } => {
                let names = (!user.is_empty()).then_some(user.as_slice());
                list(&client.scram_users(names).await?, global.output)
            }
            UsersCommand::Delete { user, mechanism } => {
                client.delete_scram_user(&user, &mechanism).await?;
                emit(&format!("User {user}: {} credential deleted.\n", mechanism.to_ascii_uppercase()))
            }
        }
    })
}

fn read_stdin_line() -> CliResult<String> {
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line).map_err(|e| usage(format!("cannot read stdin: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn list(users: &[gregor_client::ScramUser], output: Output) -> CliResult {
    if output == Output::Json {
        let value: Vec<_> = users
            .iter()
            .map(|u| {
                let credentials: Vec<_> =
                    u.credentials.iter().map(|(m, i)| json!({ "mechanism": m, "iterations": i })).collect();
                json!({ "user": u.name, "credentials": credentials })
            })
            .collect();
        return emit_json(&json!(value));
    }
    let rows: Vec<Vec<String>> = users
        .iter()
        .flat_map(|u| u.credentials.iter().map(move |(m, i)| vec![u.name.clone(), m.clone(), i.to_string()]))
        .collect();
    emit(&table(&["USER", "MECHANISM", "ITERATIONS"], &rows))
}
