//! Administration: accounts, their permissions, main passwords and devices,
//! and API access authorisations.
//! Every handler takes an [`AsAdmin`](crate::http::web::session::AsAdmin); the domain
//! refuses what would leave the server without an administrator.

pub mod access;
mod account;
mod accounts;

pub use account::{
    clear_failed_sign_ins, confirm_reset_two_factor, confirm_revoke_device, delete_account,
    reset_password, reset_two_factor, revoke_device, set_enabled, set_permission, show,
};
pub use accounts::{create, list, new_account};

use crate::credential::MainPassword;
use crate::domain::{Account, Permission, Standing};
use crate::http::web::page::when;
use crate::http::web::reveal::{Reveal, RevealItem};

/// An account as the admin pages show it.
struct AccountRow {
    id: i64,
    email: String,
    name: String,
    permissions: String,
    two_factor: bool,
    /// What the two-factor requirement says about it, if anything.
    two_factor_note: String,
    enabled: bool,
    created: String,
    devices: usize,
}

impl AccountRow {
    fn new(account: &Account, devices: usize, standing: Standing) -> Self {
        let permissions: Vec<&str> = account.permissions.iter().map(Permission::as_str).collect();
        Self {
            id: account.id.0,
            email: account.email.to_string(),
            name: account.name.clone(),
            permissions: permissions.join(", "),
            two_factor: account.two_factor_enabled,
            two_factor_note: match standing {
                Standing::Fine => String::new(),
                Standing::Grace { until } => {
                    format!("required; grace period until {}", when(until))
                }
                Standing::Overdue => "required; grace period over, can only enrol".to_owned(),
            },
            enabled: account.enabled,
            created: when(account.created_at),
            devices,
        }
    }
}

/// The dialog showing a main password an administrator has to pass on.
fn main_password_shown_once(which: &str, account: &Account, password: &MainPassword) -> Reveal {
    Reveal {
        title: format!("{which} main password for {}", account.email),
        items: vec![
            RevealItem::new("shown-email", "Email address", account.email.to_string()),
            RevealItem::new("shown-password", "Main password", password.expose()),
        ],
        download: None,
    }
}
