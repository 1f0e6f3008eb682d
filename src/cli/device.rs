use crate::config::DeviceCommand;
use crate::service::{parse_limits, Operator, RawLimits, Service};

use super::print_table_with_note;

pub async fn run(service: &Service, command: DeviceCommand) -> anyhow::Result<()> {
    let operator = Operator::at_the_command_line();
    match command {
        DeviceCommand::List { email } => {
            let accounts = service.accounts(&operator, "").await?;
            let devices = match email {
                Some(email) => {
                    let owner = service.account_by_email(&operator, &email).await?.id;
                    service.devices(&operator.over(owner)).await?
                }
                None => service.devices(&operator).await?,
            };
            let rows: Vec<Vec<String>> = devices
                .into_iter()
                .map(|d| {
                    let email = accounts
                        .iter()
                        .find(|a| a.id == d.account_id)
                        .map(|a| a.email.to_string())
                        .unwrap_or_default();
                    let (used, from) = match &d.last_used {
                        Some(u) => (
                            u.at.to_rfc3339(),
                            u.ip.map(|ip| ip.to_string()).unwrap_or_default(),
                        ),
                        // Servers write last use in batches: a device
                        // used just now may have nothing written yet.
                        None => ("none recorded".to_owned(), String::new()),
                    };
                    let state = service.device_state(&d);
                    let expires = match (state.expired, d.limits.expires_at) {
                        (true, _) => "expired".to_owned(),
                        (false, Some(at)) => at.to_rfc3339(),
                        (false, None) => "no expiry".to_owned(),
                    };
                    let recent = d
                        .last_used
                        .as_ref()
                        .map(|u| {
                            u.recent
                                .iter()
                                .map(|ip| ip.to_string())
                                .collect::<Vec<_>>()
                                .join(",")
                        })
                        .filter(|r| !r.is_empty())
                        .unwrap_or(from);
                    vec![
                        d.id.to_string(),
                        email,
                        d.name.to_string(),
                        d.device_type.to_string(),
                        d.created_at.to_rfc3339(),
                        d.limits.scope.to_string(),
                        expires,
                        used,
                        recent,
                    ]
                })
                .collect();
            let any = !rows.is_empty();
            print_table_with_note(
                &[
                    "ID",
                    "ACCOUNT",
                    "NAME",
                    "TYPE",
                    "CREATED",
                    "SCOPE",
                    "EXPIRES",
                    "LAST USED",
                    "FROM (LAST 5)",
                ],
                &rows,
                any.then_some("LAST USED is what the servers have written: each writes it every --last-used-flush-secs (5 s by default), so uses in the last few seconds may not show yet."),
            )?;
        }
        DeviceCommand::Revoke { id } => {
            let device = service.delete_device(&operator, &id).await?;
            say!(
                "Device {} deleted; its password no longer works.",
                device.id
            )?;
        }
        DeviceCommand::Limits {
            id,
            scope,
            expires_at,
            idle_expiry_days,
            allow,
            deny,
            ..
        } => {
            let limits = parse_limits(RawLimits {
                scope,
                expires_at,
                idle_expiry_days,
                allowed_networks: allow,
                denied_networks: deny,
            })?;
            let device = service.set_device_limits(&operator, &id, limits).await?;
            say!(
                "Device {} now has scope {}{}.",
                device.id,
                device.limits.scope,
                device
                    .limits
                    .expires_at
                    .map(|at| format!(" and expires {}", at.to_rfc3339()))
                    .unwrap_or_default()
            )?;
        }
    }
    Ok(())
}
