use crate::config::UserCommand;
use crate::domain::{Account, Permission};
use crate::service::{NewAccountRequest, Operator, Service, ServiceError};

use super::{print_table, read_password_line};

pub async fn run(service: &Service, command: UserCommand) -> anyhow::Result<()> {
    let operator = Operator::at_the_command_line();
    match command {
        UserCommand::Create {
            email,
            name,
            admin,
            permissions,
            password_stdin,
            ..
        } => {
            let mut granted = permissions
                .iter()
                .map(|p| p.parse::<Permission>())
                .collect::<Result<crate::domain::Permissions, _>>()?;
            if admin {
                // As the first-run administrator: an administrator without
                // synchronisation would have no Devices tab.
                granted.insert(Permission::Admin);
                granted.insert(Permission::Synchronisation);
            }
            let password = if password_stdin {
                Some(read_password_line()?)
            } else {
                None
            };
            let (account, generated) = service
                .create_account(
                    &operator,
                    NewAccountRequest {
                        email,
                        name,
                        password,
                        permissions: granted,
                    },
                )
                .await?;
            say!(
                "Created account {} ({}).",
                account.email,
                describe(&account)
            )?;
            if let Some(password) = generated {
                say!("Main password (shown only once): {}", password.expose())?;
            }
        }
        UserCommand::List => {
            let accounts = service.accounts(&operator, "").await?;
            let devices = service.devices(&operator).await?;
            let rows: Vec<Vec<String>> = accounts
                .iter()
                .map(|a| {
                    let count = devices.iter().filter(|d| d.account_id == a.id).count();
                    vec![
                        a.email.to_string(),
                        a.name.clone(),
                        permissions(a),
                        if a.two_factor_enabled { "on" } else { "off" }.into(),
                        if a.enabled { "enabled" } else { "disabled" }.into(),
                        count.to_string(),
                    ]
                })
                .collect();
            print_table(
                &["EMAIL", "NAME", "PERMISSIONS", "2FA", "STATE", "DEVICES"],
                &rows,
            )?;
        }
        UserCommand::Grant { email, permission } => {
            let target = service.account_by_email(&operator, &email).await?.id;
            let account = service
                .set_permission(&operator, target, permission.parse()?, true)
                .await?;
            say!("{}: {}", account.email, describe(&account))?;
        }
        UserCommand::Revoke {
            email,
            permission,
            force,
        } => {
            let target = service.account_by_email(&operator, &email).await?.id;
            let account = service
                .set_permission(&operator.forcing(force), target, permission.parse()?, false)
                .await
                .map_err(suggest_force)?;
            say!("{}: {}", account.email, describe(&account))?;
        }
        UserCommand::Disable { email, force } => {
            let target = service.account_by_email(&operator, &email).await?.id;
            let account = service
                .set_enabled(&operator.forcing(force), target, false)
                .await
                .map_err(suggest_force)?;
            say!("{}: {}", account.email, describe(&account))?;
        }
        UserCommand::Delete { email, force } => {
            let target = service.account_by_email(&operator, &email).await?.id;
            let account = service
                .delete_account(&operator.forcing(force), target)
                .await
                .map_err(suggest_force)?;
            say!(
                "Account {} deleted; its device passwords no longer work.",
                account.email
            )?;
        }
        UserCommand::Enable { email } => {
            let target = service.account_by_email(&operator, &email).await?.id;
            let account = service.set_enabled(&operator, target, true).await?;
            say!("{}: {}", account.email, describe(&account))?;
        }
        UserCommand::Reset2fa { email } => {
            let account = service.reset_two_factor_by_email(&operator, &email).await?;
            if account.two_factor_enabled {
                say!("Two-factor authentication of {email} reset: it signs in with the password alone and can enrol again.")?;
            } else {
                say!("{email} had no two-factor authentication; nothing changed.")?;
            }
        }
        UserCommand::Unlock { email } => {
            let target = service.account_by_email(&operator, &email).await?.id;
            let (failures, _) = service.failed_sign_ins(&operator, target).await?;
            service.clear_failed_sign_ins(&operator, target).await?;
            say!(
                "Failed sign-in attempts of {email} cleared ({failures} in a row before); new browsers and apps may sign in again."
            )?;
        }
        UserCommand::SetPassword { email, .. } => {
            let password = read_password_line()?;
            let target = service.account_by_email(&operator, &email).await?.id;
            let (account, _) = service
                .reset_password(&operator, target, Some(password))
                .await?;
            say!(
                "Main password of {} changed; its device passwords are unchanged.",
                account.email
            )?;
        }
    }
    Ok(())
}

/// The last-administrator refusal, with the way past it.
fn suggest_force(e: ServiceError) -> anyhow::Error {
    match e {
        ServiceError::Invalid {
            code: "last_administrator",
            message,
        } => anyhow::anyhow!(
            "{message} To do it anyway, repeat the command with --force; `latchkey user grant --email … --permission admin` or `latchkey user enable --email …` repairs it later."
        ),
        other => other.into(),
    }
}

fn permissions(account: &Account) -> String {
    let names: Vec<&str> = account.permissions.iter().map(|p| p.as_str()).collect();
    if names.is_empty() {
        "-".to_owned()
    } else {
        names.join(",")
    }
}

fn describe(account: &Account) -> String {
    format!(
        "permissions: {}; {}",
        permissions(account),
        if account.enabled {
            "enabled"
        } else {
            "disabled"
        }
    )
}
