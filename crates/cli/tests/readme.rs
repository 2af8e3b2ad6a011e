//! Contract: every `gregor` command line the README and the cluster and operations docs
//! show names subcommands and flags that exist (each checked against `--help`), so the
//! docs cannot drift from the binary. Values and positional arguments are not checked.
#![allow(unreachable_pub)]

use std::process::Command;

fn help(path: &[String]) -> Option<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_gregor")).args(path).arg("--help").output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `gregor ...` lines of the fenced code blocks of `text`, continuations joined.
fn command_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    let mut pending = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        let line = line.trim();
        let (body, continues) = match line.strip_suffix('\\') {
            Some(body) => (body, true),
            None => (line, false),
        };
        pending.push_str(body);
        pending.push(' ');
        if !continues {
            let whole = std::mem::take(&mut pending);
            if whole.trim_start().starts_with("gregor ") {
                out.push(whole.trim().to_owned());
            }
        }
    }
    out
}

/// Whether `path` is a subcommand path: its help's usage line names it.
fn usage_names(path: &[String]) -> bool {
    help(path).is_some_and(|h| {
        h.lines().find(|l| l.starts_with("Usage:")).is_some_and(|usage| {
            let words: Vec<&str> = usage.split_whitespace().skip(2).collect();
            words.len() >= path.len() && words[..path.len()].iter().zip(path).all(|(w, p)| w == p)
        })
    })
}

/// Checks one command line; returns what is wrong with it.
fn check(line: &str) -> Result<(), String> {
    let tokens: Vec<&str> =
        line.split_whitespace().skip(1).take_while(|t| !matches!(*t, "|" | ">" | ">>" | "&&" | "#" | "&")).collect();
    let mut path: Vec<String> = Vec::new();
    let mut flags: Vec<&str> = Vec::new();
    let mut frozen = false;
    let mut after_flag = false;
    for token in tokens {
        if token.starts_with('-') && token.len() > 1 {
            flags.push(token.split('=').next().unwrap_or(token));
            after_flag = !token.contains('=');
            continue;
        }
        let was_value = std::mem::take(&mut after_flag);
        if frozen || was_value {
            continue;
        }
        let mut longer = path.clone();
        longer.push(token.to_owned());
        if usage_names(&longer) {
            path = longer;
        } else if help(&path).is_some_and(|h| h.contains("\nCommands:")) {
            // A command with subcommands takes no positional argument: a typo.
            return Err(format!("`gregor {}` has no subcommand {token}", path.join(" ")));
        } else {
            frozen = true;
        }
    }
    if path.is_empty() {
        return Err("names no subcommand".into());
    }
    let text = help(&path).ok_or_else(|| format!("`gregor {} --help` fails", path.join(" ")))?;
    for flag in flags {
        let known = if flag.starts_with("--") {
            text.contains(flag)
        } else {
            text.contains(&format!("{flag},")) || text.contains(&format!("{flag} "))
        };
        if !known {
            return Err(format!("`gregor {}` has no flag {flag}", path.join(" ")));
        }
    }
    Ok(())
}

#[test]
fn every_command_the_docs_show_exists() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let mut checked = 0;
    let mut wrong = Vec::new();
    for doc in ["README.md", "docs/cluster.md", "docs/operations.md"] {
        let text = std::fs::read_to_string(format!("{root}/{doc}")).expect("the doc exists");
        for line in command_lines(&text) {
            checked += 1;
            if let Err(why) = check(&line) {
                wrong.push(format!("{doc}: {line}\n    {why}"));
            }
        }
    }
    assert!(checked > 20, "found only {checked} command lines");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_misspelt_flag_or_subcommand_is_caught() {
    assert!(check("gregor topics describe orders --partitionz 3").is_err());
    assert!(check("gregor topix list").is_err());
    assert!(check("gregor storage formatt -t X").is_err());
    assert!(check("gregor --bootstrap-server localhost:9092 cluster quorum -o json").is_ok());
}
