use crate::config::{AccessCommand, LimitArgs};
use crate::credential::Token;
use crate::domain::{AccessAuthorisation, RequestedLimits};
use crate::service::{parse_limits, NewAccessRequest, Operator, RawLimits, Service, TokenChange};

use super::print_table;

fn limits(args: LimitArgs) -> anyhow::Result<RequestedLimits> {
    Ok(parse_limits(RawLimits {
        scope: args.scope,
        expires_at: args.expires_at,
        idle_expiry_days: args.idle_expiry_days,
        allowed_networks: args.allow,
        denied_networks: args.deny,
    })?)
}

pub async fn run(service: &Service, command: AccessCommand) -> anyhow::Result<()> {
    let operator = Operator::at_the_command_line();
    match command {
        AccessCommand::Create {
            name,
            description,
            limits: args,
            ..
        } => {
            let request = NewAccessRequest {
                name,
                description,
                limits: limits(args)?,
            };
            let (access, token) = service.create_access(&operator, request).await?;
            shown_once(service, &access, &token)?;
        }
        AccessCommand::List => {
            let all = service.accesses(&operator).await?;
            let rows: Vec<Vec<String>> = all.iter().map(|a| row(service, a)).collect();
            print_table(
                &[
                    "ID",
                    "NAME",
                    "STATE",
                    "SCOPE",
                    "EXPIRES",
                    "NETWORKS",
                    "CREATED BY",
                    "LAST USED",
                    "FROM (LAST 5)",
                ],
                &rows,
            )?;
        }
        AccessCommand::Show { id } => {
            let access = service.access(&operator, &id).await?;
            describe(service, &access)?;
        }
        AccessCommand::Regenerate {
            id,
            grace_seconds,
            expires_at,
            ..
        } => {
            let expiry = parse_limits(RawLimits {
                expires_at,
                ..RawLimits::default()
            })?
            .expires_at;
            let (access, token) = service
                .regenerate_access_token(
                    &operator,
                    &id,
                    TokenChange {
                        grace_seconds,
                        expires_at: expiry,
                    },
                )
                .await?;
            shown_once(service, &access, &token)?;
            if let Some(until) = access.previous_token_until {
                say!("The old token keeps working until {}.", until.to_rfc3339())?;
            } else {
                say!("The old token no longer works.")?;
            }
        }
        AccessCommand::Disable { id } => {
            let access = service.set_access_enabled(&operator, &id, false).await?;
            say!(
                "API access {} ({}) disabled; it is refused everywhere until enabled.",
                access.id,
                access.name
            )?;
        }
        AccessCommand::Enable { id } => {
            let access = service.set_access_enabled(&operator, &id, true).await?;
            say!("API access {} ({}) enabled.", access.id, access.name)?;
        }
        AccessCommand::Limits {
            id, limits: args, ..
        } => {
            let access = service
                .set_access_limits(&operator, &id, limits(args)?)
                .await?;
            describe(service, &access)?;
        }
        AccessCommand::Delete { id } => {
            let access = service.delete_access(&operator, &id).await?;
            say!(
                "API access {} ({}) deleted; its token no longer works.",
                access.id,
                access.name
            )?;
        }
    }
    Ok(())
}

/// The one place a token is printed: right after it was made.
fn shown_once(
    service: &Service,
    access: &AccessAuthorisation,
    token: &Token,
) -> anyhow::Result<()> {
    describe(service, access)?;
    say!("token:       {}", token.expose())?;
    say!("\nUse it as HTTP Basic auth, user name the ID, password the token. It is shown only now.")
}

fn describe(service: &Service, access: &AccessAuthorisation) -> anyhow::Result<()> {
    let cells = row(service, access);
    say!("id:          {}", cells[0])?;
    say!("name:        {}", cells[1])?;
    if !access.description.is_empty() {
        say!("description: {}", access.description)?;
    }
    say!("state:       {}", cells[2])?;
    say!("scope:       {}", cells[3])?;
    say!("expires:     {}", cells[4])?;
    if let Some(days) = access.limits.idle_expiry_days {
        say!("idle expiry: after {days} days unused")?;
    }
    say!("networks:    {}", cells[5])?;
    say!(
        "created:     {} by {}",
        access.created_at.to_rfc3339(),
        cells[6]
    )?;
    say!("last used:   {} from {}", cells[7], cells[8])
}

fn row(service: &Service, access: &AccessAuthorisation) -> Vec<String> {
    let state = service.access_state(access);
    let status = match (access.enabled, state.expired) {
        (false, _) => "disabled",
        (true, true) => "expired",
        (true, false) => "active",
    };
    let expires = access
        .limits
        .expires_at
        .map_or("no expiry".to_owned(), |at| at.to_rfc3339());
    let list = |nets: &[ipnet::IpNet]| {
        nets.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let networks = match (
        access.limits.allowed_networks.is_empty(),
        access.limits.denied_networks.is_empty(),
    ) {
        (true, true) => "any".to_owned(),
        (false, true) => list(&access.limits.allowed_networks),
        (true, false) => format!("any but {}", list(&access.limits.denied_networks)),
        (false, false) => format!(
            "{} but {}",
            list(&access.limits.allowed_networks),
            list(&access.limits.denied_networks)
        ),
    };
    let (used, from) = match &access.last_used {
        Some(u) => (
            u.at.to_rfc3339(),
            u.recent
                .iter()
                .map(|ip| ip.to_string())
                .collect::<Vec<_>>()
                .join(","),
        ),
        None => ("never (or not written yet)".to_owned(), "-".to_owned()),
    };
    vec![
        access.id.to_string(),
        access.name.to_string(),
        status.to_owned(),
        access.limits.scope.to_string(),
        expires,
        networks,
        access
            .created_by
            .clone()
            .unwrap_or_else(|| "the command line".to_owned()),
        used,
        if from.is_empty() {
            "-".to_owned()
        } else {
            from
        },
    ]
}
