//! The `latchkey` subcommands. `serve` runs the server; the others administer
//! the same database directly, and a running server notices their changes
//! within a second.

/// `println!` that returns an error when standard output cannot be written
/// (a closed pipe, a full disk) instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
            .map_err(|e| anyhow::Error::new(e).context("cannot write to standard output"))
    }};
}

mod access;
mod device;
mod serve;
mod user;

use std::io::{BufRead, ErrorKind, Write};
use std::sync::Arc;

use anyhow::Context;

use crate::config::{Cli, Command, DatabaseArgs, UserCommand};
use crate::credential::{Secret, ServerKey};
use crate::domain::PasswordPolicy;
use crate::service::{Service, Settings};
use crate::store::{self, StoreOptions};
use zeroize::Zeroizing;

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(&cli.database, &args).await,
        Command::User(command) => {
            // Creating an account may also create the database, so the first
            // administrator can exist before the first start; nothing else may.
            let create = matches!(command, UserCommand::Create { .. });
            let policy = match &command {
                UserCommand::Create { passwords, .. }
                | UserCommand::SetPassword { passwords, .. } => passwords.policy()?,
                _ => PasswordPolicy::default(),
            };
            let settings = Settings {
                password_policy: policy,
                ..Settings::default()
            };
            let service = open(&cli.database, create, settings).await?;
            let result = user::run(&service, command).await;
            service.store().close().await;
            result
        }
        Command::Device(command) => {
            let settings = Settings {
                lifetime: command.lifetime(),
                ..Settings::default()
            };
            let service = open(&cli.database, false, settings).await?;
            let result = device::run(&service, command).await;
            service.store().close().await;
            result
        }
        Command::Access(command) => {
            let settings = Settings {
                lifetime: command.lifetime(),
                ..Settings::default()
            };
            let service = open(&cli.database, false, settings).await?;
            let result = access::run(&service, command).await;
            service.store().close().await;
            result
        }
    }
}

async fn open(
    database: &DatabaseArgs,
    create: bool,
    settings: Settings,
) -> anyhow::Result<Service> {
    let url = database.url();
    let store = if create {
        store::open(&url, &StoreOptions::default()).await
    } else {
        store::open_existing(&url).await
    }
    .context("cannot open the database")?;
    // The command line signs and verifies nothing, so it needs no access
    // to the server's key file: a throwaway key stands in for it.
    Ok(Service::new(
        Arc::clone(&store),
        Settings {
            cache_capacity: 1,
            ..settings
        },
        &ServerKey::generate(),
    ))
}

/// The first line of standard input, without its line ending.
fn read_password_line() -> anyhow::Result<Secret> {
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = Secret::from(line.trim_end_matches(['\n', '\r']));
    anyhow::ensure!(!password.is_empty(), "no password on standard input");
    Ok(password)
}

/// Prints rows as aligned columns. A reader that stops early, as `| head`
/// does, closing the pipe, is no error: the listing just ends there.
fn print_table(header: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    print_table_with_note(header, rows, None)
}

/// A listing, then a paragraph about it; a reader who stopped reading
/// (`| head`) ends it quietly, as with any listing.
fn print_table_with_note(
    header: &[&str],
    rows: &[Vec<String>],
    note: Option<&str>,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let written = write_table(&mut out, header, rows).and_then(|()| match note {
        Some(note) => writeln!(out, "\n{note}").and_then(|()| out.flush()),
        None => Ok(()),
    });
    match written {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        written => written.context("cannot write to standard output"),
    }
}

fn write_table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        writeln!(out, "{}", padded.join("  ").trim_end())
    };
    line(header.to_vec())?;
    for row in rows {
        line(row.iter().map(String::as_str).collect())?;
    }
    out.flush()
}
