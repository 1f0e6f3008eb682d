use crate::config::DeviceCommand;
use crate::credential::DeviceId;
use crate::service::{Service, ServiceError};

use super::print_table;

pub async fn run(service: &Service, command: DeviceCommand) -> anyhow::Result<()> {
    match command {
        DeviceCommand::List { email } => {
            let accounts = service.accounts().await?;
            let owner = match email {
                Some(email) => Some(service.account_by_email(&email).await?.id),
                None => None,
            };
            let rows: Vec<Vec<String>> = service
                .devices(owner)
                .await?
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
                        None => ("never".to_owned(), String::new()),
                    };
                    vec![
                        d.id.to_string(),
                        email,
                        d.name.to_string(),
                        d.device_type,
                        d.created_at.to_rfc3339(),
                        used,
                        from,
                    ]
                })
                .collect();
            print_table(
                &[
                    "ID",
                    "ACCOUNT",
                    "NAME",
                    "TYPE",
                    "CREATED",
                    "LAST USED",
                    "FROM",
                ],
                &rows,
            );
        }
        DeviceCommand::Revoke { id } => {
            let id = DeviceId::parse(&id).map_err(|_| ServiceError::DeviceNotFound)?;
            service.revoke_device(&id).await?;
            println!("Device {id} deleted; its password no longer works.");
        }
    }
    Ok(())
}
