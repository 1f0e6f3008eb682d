use crate::app::{self, shutdown_signal};
use crate::config::{Config, DatabaseArgs, ServeArgs};
use crate::service::Operator;

pub async fn run(database: &DatabaseArgs, args: &ServeArgs) -> anyhow::Result<()> {
    let config = Config::from_args(database, args)?;
    let application = app::build(config.clone()).await?;
    let base_url = application.base_url();
    if let Some((account, password)) = application
        .service()
        .ensure_administrator(&Operator::at_the_command_line(), &config.admin_email)
        .await?
    {
        // Printed once, to the terminal only; never logged.
        say!()?;
        say!("The database had no account, so a first administrator was created:")?;
        say!("    email:    {}", account.email)?;
        say!("    password: {}", password.expose())?;
        say!("This password is shown only once. Change it now, in the web interface:")?;
        say!("    {base_url}/sign-in  (Personal settings, Profile)")?;
        say!("or on the command line:")?;
        say!(
            "    latchkey user set-password --email {} --password-stdin",
            account.email
        )?;
        say!("Create a device password for an app or script with it:")?;
        say!(
            "    curl -X POST {base_url}/server/api/device -H 'Content-Type: application/json' \\\n      -d '{{\"email\":\"{}\",\"password\":\"…\",\"deviceName\":\"My script\"}}'",
            account.email
        )?;
        say!()?;
    }
    tracing::info!(address = %application.local_addr(), url = %base_url, "latchkey is listening");
    if config.public_url.is_none() && application.local_addr().ip().is_unspecified() {
        tracing::warn!(
            "listening on every interface; the address above is this machine's own. Set --public-url to the URL people and apps use to reach it"
        );
    }
    application.run_until(shutdown_signal()).await
}
