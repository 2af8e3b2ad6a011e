//! `gregor`: the broker and, later, its tools, as one binary.
#![forbid(unsafe_code)]

mod serve;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "gregor", version, about = "A Kafka-compatible streaming platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a broker (single node; data under ./gregor-data, clients on localhost:9092).
    Serve(serve::ServeArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
    };
    if let Err(message) = result {
        eprintln!("gregor: {message}");
        std::process::exit(1);
    }
}
