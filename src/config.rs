//! Command-line flags, each with a `LATCHKEY_*` environment variable, and the
//! validated [`Config`] that `serve` runs with. `latchkey serve --help` is the
//! reference.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use axum::http::HeaderValue;
use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;

use crate::domain::{
    Clock, DeviceTypes, LifetimePolicy, PasswordPolicy, Requirement, SessionPolicy,
    DEFAULT_DEVICE_TYPES, MAX_MIN_PASSWORD_CHARS, MIN_PASSWORD_CHARS,
};
use crate::service::throttle::ThrottleConfig;
use crate::service::DeviceAuthorizationSettings;
use crate::store::StoreOptions;
use crate::telemetry::LogFormat;

#[derive(Parser, Debug)]
#[command(
    name = "latchkey",
    version,
    about = "Self-hosted account and device-password server",
    long_about = "Self-hosted account and device-password server.\n\nPeople and services reach the HTTP API with per-application device passwords, never with a person's main password. `latchkey serve` runs the server; the other subcommands administer the same database, and a running server notices their changes within a second.\n\nLog level: LATCHKEY_LOG (default `info` for serve, `warn` otherwise; e.g. `latchkey=debug`)."
)]
pub struct Cli {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Log output format.
    #[arg(
        long,
        env = "LATCHKEY_LOG_FORMAT",
        value_enum,
        default_value_t,
        global = true
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start; boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP server (creates a first administrator on an empty database).
    Serve(ServeArgs),
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage device passwords.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Manage API access authorisations: credentials of services that
    /// belong to no person (a time-clocking terminal, a build server).
    #[command(subcommand)]
    Access(AccessCommand),
}

const DEFAULT_DATA_DIR: &str = "./latchkey-data";

#[derive(Args, Clone)]
pub struct DatabaseArgs {
    /// Directory holding the SQLite database (latchkey.db); created if missing.
    /// [default: ./latchkey-data]
    #[arg(
        long,
        env = "LATCHKEY_DATA_DIR",
        global = true,
        conflicts_with = "database_url"
    )]
    pub data_dir: Option<PathBuf>,

    /// Database URL, e.g. sqlite:///var/lib/latchkey/latchkey.db; not together with --data-dir.
    #[arg(
        long,
        env = "LATCHKEY_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
}

impl fmt::Debug for DatabaseArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseArgs")
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .finish()
    }
}

/// `HOST:PORT`, where HOST is an IP address or a name resolved once, at start.
fn parse_listen(raw: &str) -> Result<SocketAddr, String> {
    if let Ok(address) = raw.parse() {
        return Ok(address);
    }
    let mut resolved = raw
        .to_socket_addrs()
        .map_err(|e| format!("expected HOST:PORT, e.g. 127.0.0.1:8080 or localhost:8080 ({e})"))?;
    resolved
        .next()
        .ok_or_else(|| format!("{raw} resolves to no address"))
}

/// A database URL as logs and `Debug` may show it: without its password.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:<redacted>@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=<redacted>")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

impl DatabaseArgs {
    /// Where the SQLite database lives when no URL names it.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }

    pub fn url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir().join("latchkey.db").display()),
        }
    }
}

/// For every command that sets main passwords.
#[derive(Args, Debug, Clone)]
pub struct PasswordPolicyArgs {
    /// Fewest characters (Unicode scalar values, spaces included) a new main
    /// password may have, 12 to 256. Existing shorter passwords keep working.
    #[arg(long, env = "LATCHKEY_MIN_PASSWORD_LENGTH", default_value_t = MIN_PASSWORD_CHARS as u16,
          value_parser = clap::value_parser!(u16).range(MIN_PASSWORD_CHARS as i64..=MAX_MIN_PASSWORD_CHARS as i64))]
    pub min_password_length: u16,
}

impl PasswordPolicyArgs {
    pub fn policy(&self) -> anyhow::Result<PasswordPolicy> {
        Ok(PasswordPolicy::with_min_chars(usize::from(
            self.min_password_length,
        ))?)
    }
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address (IP or host name) and port to listen on, e.g. 0.0.0.0:8080 or localhost:8080.
    #[arg(long, env = "LATCHKEY_LISTEN", default_value = "127.0.0.1:8080", value_parser = parse_listen)]
    pub listen: SocketAddr,

    /// The URL people and apps use to reach this server, e.g. https://keys.example.org
    /// (used in the first-run instructions).
    #[arg(long, env = "LATCHKEY_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Known device type ids, comma-separated; any other type is stored as "unknown".
    #[arg(long, env = "LATCHKEY_DEVICE_TYPES", value_delimiter = ',', default_values = DEFAULT_DEVICE_TYPES)]
    pub device_types: Vec<String>,

    /// The server's secret key (signs sign-in forms and trusted-browser
    /// cookies, encrypts two-factor secrets); created with mode 0600 when
    /// missing. Every node sharing a database must use the same file; back it
    /// up, apart from the database dumps: without it two-factor accounts
    /// must be reset.
    /// [default: <data-dir>/secret.key]
    #[arg(long, env = "LATCHKEY_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,

    /// Email of the first administrator, created on a database without any
    /// account (never on one that has accounts, even if none is an enabled
    /// administrator: then `serve` warns how to repair it).
    #[arg(long, env = "LATCHKEY_ADMIN_EMAIL", default_value = "admin@localhost")]
    pub admin_email: String,

    /// Origins allowed to call the API from a browser (CORS), comma-separated,
    /// e.g. https://app.example.org. None by default.
    #[arg(long, env = "LATCHKEY_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Reverse proxies (addresses or CIDR ranges, comma-separated) whose
    /// X-Forwarded-For header names the client. None by default: the TCP peer
    /// is the client.
    #[arg(long, env = "LATCHKEY_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_network)]
    pub trusted_proxies: Vec<IpNet>,

    /// Most verified credentials kept in memory.
    #[arg(long, env = "LATCHKEY_CACHE_CAPACITY", default_value_t = 100_000)]
    pub cache_capacity: usize,

    /// Seconds cached credentials are still accepted after the node stops
    /// seeing database changes (database down or unreachable); 0 = not at all.
    /// This bounds how late a revocation made elsewhere meanwhile takes effect.
    #[arg(long, env = "LATCHKEY_MAX_STALENESS_SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub max_staleness_secs: u64,

    /// Longest a device password may stay valid, in days from when its token
    /// was issued. New and changed passwords must expire within it (without
    /// an expiry they get the latest allowed), and a password valid longer
    /// is refused at use, so lowering it reaches existing ones. None by default.
    #[arg(long, env = "LATCHKEY_MAX_CREDENTIAL_LIFETIME_DAYS",
          value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub max_credential_lifetime_days: Option<u32>,

    /// Largest number of PostgreSQL connections this node opens.
    #[arg(long, env = "LATCHKEY_DATABASE_MAX_CONNECTIONS", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub database_max_connections: u32,

    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT before
    /// their connections are closed.
    #[arg(long, env = "LATCHKEY_SHUTDOWN_GRACE_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_grace_secs: u64,

    /// Seconds a client gets to send a request's head (request line and
    /// headers), from connecting or from the end of its previous request;
    /// then the connection is closed. Stalled and idle keep-alive
    /// connections cannot pile up.
    #[arg(long, env = "LATCHKEY_HEADER_READ_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_read_timeout_secs: u64,

    /// Seconds after which a request is cancelled with 408, whatever it waits for.
    #[arg(long, env = "LATCHKEY_REQUEST_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout_secs: u64,

    /// Seconds between writes of coalesced "last used" data.
    #[arg(long, env = "LATCHKEY_LAST_USED_FLUSH_SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub last_used_flush_secs: u64,

    /// Minutes without a request after which a web interface session ends.
    #[arg(long, env = "LATCHKEY_SESSION_IDLE_MINUTES", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=7 * 24 * 60))]
    pub session_idle_minutes: u64,

    /// Hours after sign-in at which a web interface session ends, however busy.
    #[arg(long, env = "LATCHKEY_SESSION_LIFETIME_HOURS", default_value_t = 12,
          value_parser = clap::value_parser!(u64).range(1..=24 * 30))]
    pub session_lifetime_hours: u64,

    /// Minutes an app sign-in request (POST /server/api/device/authorize)
    /// waits for a person to approve it and for the app to collect its
    /// device password.
    #[arg(long, env = "LATCHKEY_DEVICE_CODE_MINUTES", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=24 * 60))]
    pub device_code_minutes: u64,

    /// Seconds an app must wait between two polls of its sign-in request
    /// at first; each poll that comes sooner adds 5 (RFC 8628).
    #[arg(long, env = "LATCHKEY_DEVICE_POLL_INTERVAL_SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub device_poll_interval_secs: u64,

    /// App sign-in requests one client address may have waiting at once.
    #[arg(long, env = "LATCHKEY_DEVICE_CODES_PER_ADDRESS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub device_codes_per_address: u32,

    #[command(flatten)]
    pub passwords: PasswordPolicyArgs,

    /// The issuer authenticator apps show beside the account when two-factor
    /// authentication is set up. [default: the host of --public-url, else "latchkey"]
    #[arg(long, env = "LATCHKEY_ISSUER")]
    pub issuer: Option<String>,

    /// Which accounts must use two-factor authentication: none, admins or
    /// all. An account it covers that has none is sent to enrol after each
    /// sign-in, and can do nothing else once the grace period is over.
    #[arg(long, env = "LATCHKEY_REQUIRE_TWO_FACTOR", default_value = "none",
          value_parser = ["none", "admins", "all"])]
    pub require_two_factor: String,

    /// Days an account covered by --require-two-factor may go on without a
    /// second factor, counted from when the setting took effect or from the
    /// account's creation, whichever is later.
    #[arg(long, env = "LATCHKEY_TWO_FACTOR_GRACE_DAYS", default_value_t = 7,
          value_parser = clap::value_parser!(u64).range(0..=365))]
    pub two_factor_grace_days: u64,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create an account. Without --password-stdin a password is generated and printed once.
    Create {
        #[arg(long)]
        email: String,
        /// Display name (default: the part of the email before '@').
        #[arg(long)]
        name: Option<String>,
        /// Make it an administrator: grant admin and synchronisation, as the
        /// first-run administrator has (so it has the Devices tab too).
        #[arg(long)]
        admin: bool,
        /// Grant a permission (synchronisation, admin); repeatable.
        #[arg(long = "permission")]
        permissions: Vec<String>,
        /// Read the main password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        passwords: PasswordPolicyArgs,
    },
    /// List accounts.
    List,
    /// Grant a permission.
    Grant {
        #[arg(long)]
        email: String,
        #[arg(long)]
        permission: String,
    },
    /// Revoke a permission; the account's devices stop working at once.
    /// Refuses to revoke admin from the last enabled administrator, unless --force.
    Revoke {
        #[arg(long)]
        email: String,
        #[arg(long)]
        permission: String,
        /// Even from the last enabled administrator, leaving nobody to
        /// administer in the web interface (until `user grant` or `user enable`).
        #[arg(long)]
        force: bool,
    },
    /// Disable an account; its devices stop working at once (they are kept).
    /// Refuses to disable the last enabled administrator, unless --force.
    Disable {
        #[arg(long)]
        email: String,
        /// Even the last enabled administrator, leaving nobody to administer
        /// in the web interface (until `user enable` or `user grant`).
        #[arg(long)]
        force: bool,
    },
    /// Enable a disabled account; its devices work again.
    Enable {
        #[arg(long)]
        email: String,
    },
    /// Delete an account: its device passwords stop working everywhere at
    /// once, its web sessions end, and it cannot be brought back. Refuses
    /// the last enabled administrator, unless --force.
    Delete {
        #[arg(long)]
        email: String,
        /// Even the last enabled administrator.
        #[arg(long)]
        force: bool,
    },
    /// Reset an account's two-factor authentication: its authenticator
    /// secret and recovery codes are deleted, and the person signs in with
    /// the password alone and can enrol again. For someone who lost both.
    #[command(name = "reset-2fa")]
    Reset2fa {
        #[arg(long)]
        email: String,
    },
    /// Clear an account's failed password attempts: after 100 in a row from
    /// browsers and apps it never signed in from, only browsers that signed
    /// in to it before may try, until this (or such a sign-in) clears them.
    Unlock {
        #[arg(long)]
        email: String,
    },
    /// Set a main password, read from the first line of standard input.
    SetPassword {
        #[arg(long)]
        email: String,
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        passwords: PasswordPolicyArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    /// List devices, of one account or of all.
    List {
        #[arg(long)]
        email: Option<String>,
    },
    /// Delete a device; its password stops working at once.
    Revoke {
        /// The device ID.
        id: String,
    },
    /// Replace a device's limits (every limit not given is removed); every
    /// server enforces them within a second.
    Limits {
        /// The device ID.
        id: String,
        #[command(flatten)]
        lifetime: LifetimeArgs,
        /// read (GET, HEAD, OPTIONS only), full (the default) or admin
        /// (administrators' devices only).
        #[arg(long)]
        scope: Option<String>,
        /// When it stops working: RFC 3339 (2027-01-31T12:00:00Z) or a date
        /// (valid through that day, UTC).
        #[arg(long)]
        expires_at: Option<String>,
        /// Stops working once unused for this many days.
        #[arg(long)]
        idle_expiry_days: Option<u32>,
        /// Only from these addresses or CIDR ranges (comma-separated).
        #[arg(long, value_delimiter = ',')]
        allow: Vec<String>,
        /// Never from these addresses or CIDR ranges (comma-separated).
        #[arg(long, value_delimiter = ',')]
        deny: Vec<String>,
    },
}

/// The servers' lifetime policy, for the commands that set an expiry: the
/// command line opens the database, not a server, so it is told the policy
/// the same way the servers are.
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct LifetimeArgs {
    /// The servers' --max-credential-lifetime-days (the same variable): an
    /// expiry set here must fit it, as one set through a server must.
    #[arg(long, env = "LATCHKEY_MAX_CREDENTIAL_LIFETIME_DAYS",
          value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub max_credential_lifetime_days: Option<u32>,
}

impl LifetimeArgs {
    pub fn policy(self) -> LifetimePolicy {
        LifetimePolicy {
            max_days: self.max_credential_lifetime_days,
        }
    }
}

impl DeviceCommand {
    /// The lifetime policy the command must keep to.
    pub fn lifetime(&self) -> LifetimePolicy {
        match self {
            DeviceCommand::Limits { lifetime, .. } => lifetime.policy(),
            _ => LifetimePolicy::default(),
        }
    }
}

impl AccessCommand {
    /// The lifetime policy the command must keep to.
    pub fn lifetime(&self) -> LifetimePolicy {
        match self {
            AccessCommand::Create { lifetime, .. }
            | AccessCommand::Regenerate { lifetime, .. }
            | AccessCommand::Limits { lifetime, .. } => lifetime.policy(),
            _ => LifetimePolicy::default(),
        }
    }
}

/// The limits a credential is made or given with on the command line.
#[derive(Args, Debug, Clone, Default)]
pub struct LimitArgs {
    /// read (GET, HEAD, OPTIONS only), full (the default) or admin (also
    /// the admin API).
    #[arg(long)]
    pub scope: Option<String>,
    /// When it stops working: RFC 3339 (2027-01-31T12:00:00Z) or a date
    /// (valid through that day, UTC).
    #[arg(long)]
    pub expires_at: Option<String>,
    /// Stops working once unused for this many days.
    #[arg(long)]
    pub idle_expiry_days: Option<u32>,
    /// Only from these addresses or CIDR ranges (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub allow: Vec<String>,
    /// Never from these addresses or CIDR ranges (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub deny: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum AccessCommand {
    /// Make one; prints its ID and token once (the token is never shown again).
    Create {
        /// What it is for, e.g. "Time clock, hall 2".
        #[arg(long)]
        name: String,
        /// Where it is and who looks after it, shown beside it.
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        limits: LimitArgs,
        #[command(flatten)]
        lifetime: LifetimeArgs,
    },
    /// List every API access authorisation.
    List,
    /// Show one.
    Show {
        /// The API access authorisation's ID.
        id: String,
    },
    /// Give it a new token (printed once); the old one stops working at
    /// once, or after --grace-seconds.
    Regenerate {
        /// The API access authorisation's ID.
        id: String,
        /// Keep the old token working this long (at most 86400).
        #[arg(long, default_value_t = 0)]
        grace_seconds: u32,
        /// A new expiry for the new token (needed when the old one expired).
        #[arg(long)]
        expires_at: Option<String>,
        #[command(flatten)]
        lifetime: LifetimeArgs,
    },
    /// Refuse it everywhere at once, keeping it.
    Disable {
        /// The API access authorisation's ID.
        id: String,
    },
    /// Accept it again.
    Enable {
        /// The API access authorisation's ID.
        id: String,
    },
    /// Replace its limits (every limit not given is removed).
    Limits {
        /// The API access authorisation's ID.
        id: String,
        #[command(flatten)]
        limits: LimitArgs,
        #[command(flatten)]
        lifetime: LifetimeArgs,
    },
    /// Delete it; its token stops working at once.
    Delete {
        /// The API access authorisation's ID.
        id: String,
    },
}

/// `10.0.0.0/8`, or a single address such as `127.0.0.1`.
fn parse_network(raw: &str) -> Result<IpNet, String> {
    let raw = raw.trim();
    raw.parse::<IpNet>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{raw:?} is neither an IP address nor a CIDR range"))
}

/// The host of the public URL (without port), or "latchkey" without one.
fn issuer_of(public_url: Option<&str>) -> String {
    public_url
        .and_then(|url| url.split_once("://").map(|(_, rest)| rest))
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default())
        .map(|authority| {
            authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host)
        })
        .map(|host| match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => host.split(':').next().unwrap_or_default(),
        })
        .filter(|host| !host.is_empty())
        .unwrap_or("latchkey")
        .to_owned()
}

/// Everything `serve` needs, validated.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub secret_key_file: PathBuf,
    pub public_url: Option<String>,
    pub device_types: DeviceTypes,
    pub admin_email: String,
    pub cors_origins: Vec<HeaderValue>,
    pub trusted_proxies: Vec<IpNet>,
    pub cache_capacity: usize,
    pub last_used_flush: Duration,
    pub shutdown_grace: Duration,
    pub request_timeout: Duration,
    pub header_read_timeout: Duration,
    pub throttle: ThrottleConfig,
    pub max_staleness: Duration,
    pub store: StoreOptions,
    /// How long web interface sessions last.
    pub sessions: SessionPolicy,
    /// What new main passwords must be.
    pub password_policy: PasswordPolicy,
    /// App sign-in requests.
    pub device_authorizations: DeviceAuthorizationSettings,
    /// The issuer name in authenticator apps.
    pub issuer: String,
    pub require_two_factor: Requirement,
    pub two_factor_grace: Duration,
    /// `--max-credential-lifetime-days`.
    pub lifetime: LifetimePolicy,
    /// The system clock, or a test's.
    pub clock: Clock,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field("secret_key_file", &self.secret_key_file)
            .field("public_url", &self.public_url)
            .field("device_types", &self.device_types)
            .field("admin_email", &self.admin_email)
            .field("cors_origins", &self.cors_origins)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("cache_capacity", &self.cache_capacity)
            .field("last_used_flush", &self.last_used_flush)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("request_timeout", &self.request_timeout)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("throttle", &self.throttle)
            .field("max_staleness", &self.max_staleness)
            .field("store", &self.store)
            .field("sessions", &self.sessions)
            .field("password_policy", &self.password_policy)
            .field("device_authorizations", &self.device_authorizations)
            .field("issuer", &self.issuer)
            .field("require_two_factor", &self.require_two_factor)
            .field("two_factor_grace", &self.two_factor_grace)
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

impl Config {
    /// Defaults for a database, listening on an ephemeral loopback port.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.into(),
            secret_key_file: PathBuf::from(DEFAULT_DATA_DIR).join("secret.key"),
            public_url: None,
            device_types: DeviceTypes::default(),
            admin_email: "admin@localhost".to_owned(),
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            cache_capacity: 100_000,
            last_used_flush: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            throttle: ThrottleConfig::default(),
            max_staleness: Duration::from_secs(5),
            store: StoreOptions::default(),
            sessions: SessionPolicy::default(),
            password_policy: PasswordPolicy::default(),
            device_authorizations: DeviceAuthorizationSettings::default(),
            issuer: "latchkey".to_owned(),
            require_two_factor: Requirement::None,
            two_factor_grace: Duration::from_secs(7 * 86_400),
            lifetime: LifetimePolicy::default(),
            clock: Clock::default(),
        }
    }

    pub fn from_args(database: &DatabaseArgs, serve: &ServeArgs) -> anyhow::Result<Self> {
        let public_url = match &serve.public_url {
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                Some(url.trim_end_matches('/').to_owned())
            }
            Some(url) => {
                anyhow::bail!("--public-url must start with http:// or https://, got {url:?}")
            }
            None => None,
        };
        let cors_origins = serve
            .cors_origins
            .iter()
            .map(|o| o.trim())
            .filter(|o| !o.is_empty())
            .map(|o| {
                anyhow::ensure!(
                    (o.starts_with("https://") || o.starts_with("http://")) && !o.ends_with('/'),
                    "--cors-origins takes origins like https://app.example.org, got {o:?}"
                );
                Ok(HeaderValue::from_str(o)?)
            })
            .collect::<anyhow::Result<_>>()?;
        anyhow::ensure!(
            serve.cache_capacity > 0,
            "--cache-capacity must be at least 1"
        );
        Ok(Self {
            listen: serve.listen,
            database_url: database.url(),
            secret_key_file: serve
                .secret_key_file
                .clone()
                .unwrap_or_else(|| database.data_dir().join("secret.key")),
            device_types: DeviceTypes::new(&serve.device_types),
            admin_email: serve.admin_email.clone(),
            cors_origins,
            trusted_proxies: serve.trusted_proxies.clone(),
            cache_capacity: serve.cache_capacity,
            last_used_flush: Duration::from_secs(serve.last_used_flush_secs),
            shutdown_grace: Duration::from_secs(serve.shutdown_grace_secs),
            request_timeout: Duration::from_secs(serve.request_timeout_secs),
            header_read_timeout: Duration::from_secs(serve.header_read_timeout_secs),
            throttle: ThrottleConfig::default(),
            max_staleness: Duration::from_secs(serve.max_staleness_secs),
            store: StoreOptions {
                max_connections: serve.database_max_connections,
                ..StoreOptions::default()
            },
            sessions: SessionPolicy {
                idle: Duration::from_secs(serve.session_idle_minutes * 60),
                absolute: Duration::from_secs(serve.session_lifetime_hours * 3600),
            },
            password_policy: serve.passwords.policy()?,
            device_authorizations: DeviceAuthorizationSettings {
                lifetime: Duration::from_secs(serve.device_code_minutes * 60),
                interval: Duration::from_secs(serve.device_poll_interval_secs),
                per_address: serve.device_codes_per_address,
            },
            issuer: match &serve.issuer {
                Some(issuer) if !issuer.trim().is_empty() => issuer.trim().to_owned(),
                Some(_) => anyhow::bail!("--issuer must not be empty"),
                None => issuer_of(public_url.as_deref()),
            },
            require_two_factor: Requirement::parse(&serve.require_two_factor)
                .ok_or_else(|| anyhow::anyhow!("--require-two-factor takes none, admins or all"))?,
            two_factor_grace: Duration::from_secs(serve.two_factor_grace_days * 86_400),
            lifetime: LifetimePolicy {
                max_days: serve.max_credential_lifetime_days,
            },
            clock: Clock::system(),
            public_url,
        })
    }

    /// Whether browsers reach this server over HTTPS only, so cookies may
    /// say `Secure`.
    pub fn https(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://"))
    }

    /// Where people reach this server: the public URL, else the bound
    /// address, with loopback standing in for "every interface" (which no
    /// browser can open).
    pub fn base_url(&self, bound: SocketAddr) -> String {
        if let Some(url) = &self.public_url {
            return url.clone();
        }
        let mut reachable = bound;
        match bound.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => reachable.set_ip(Ipv4Addr::LOCALHOST.into()),
            IpAddr::V6(ip) if ip.is_unspecified() => reachable.set_ip(Ipv6Addr::LOCALHOST.into()),
            _ => {}
        }
        format!("http://{reachable}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_database_password() {
        let config =
            Config::new("postgres://latchkey:hunter2@db.internal:5432/latchkey?sslmode=require");
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains(
                "postgres://latchkey:<redacted>@db.internal:5432/latchkey?sslmode=require"
            ),
            "{shown}"
        );
        assert_eq!(
            redact_url("postgres://db/latchkey?user=me&password=hunter2"),
            "postgres://db/latchkey?user=me&password=<redacted>"
        );
        assert_eq!(redact_url("postgres://me@db/x"), "postgres://me@db/x");
        assert_eq!(
            redact_url("sqlite:///var/lib/l.db"),
            "sqlite:///var/lib/l.db"
        );
        // An @ in the password does not leak its first part.
        assert_eq!(
            redact_url("postgres://me:a@b@db/x"),
            "postgres://me:<redacted>@db/x"
        );
    }
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let cli = Cli::try_parse_from(["latchkey", "serve"]).unwrap();
        let Command::Serve(serve) = cli.command else {
            panic!()
        };
        let config = Config::from_args(&cli.database, &serve).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert!(config.database_url.ends_with("latchkey-data/latchkey.db"));
        assert_eq!(config.device_types.resolve(Some("ios")), "ios");
        assert_eq!(config.sessions.idle, Duration::from_secs(30 * 60));
        assert_eq!(config.sessions.absolute, Duration::from_secs(12 * 3600));
        assert!(!config.https());
    }

    #[test]
    fn app_sign_in_settings() {
        let parse = |args: &[&str]| {
            let cli = Cli::try_parse_from([&["latchkey", "serve"], args].concat())?;
            let Command::Serve(serve) = cli.command else {
                panic!()
            };
            Ok::<_, clap::Error>(Config::from_args(&cli.database, &serve).unwrap())
        };
        let defaults = parse(&[]).unwrap().device_authorizations;
        assert_eq!(defaults.lifetime, Duration::from_secs(600));
        assert_eq!(defaults.interval, Duration::from_secs(5));
        assert_eq!(defaults.per_address, 10);
        let set = parse(&[
            "--device-code-minutes",
            "3",
            "--device-poll-interval-secs",
            "2",
            "--device-codes-per-address",
            "4",
        ])
        .unwrap()
        .device_authorizations;
        assert_eq!(set.lifetime, Duration::from_secs(180));
        assert_eq!(set.interval, Duration::from_secs(2));
        assert_eq!(set.per_address, 4);
        for bad in [
            ["--device-code-minutes", "0"],
            ["--device-poll-interval-secs", "0"],
            ["--device-codes-per-address", "0"],
        ] {
            assert!(parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn web_sessions_and_secure_cookies() {
        let cli = Cli::try_parse_from([
            "latchkey",
            "serve",
            "--session-idle-minutes",
            "5",
            "--session-lifetime-hours",
            "1",
            "--public-url",
            "https://keys.example.org/",
        ])
        .unwrap();
        let Command::Serve(serve) = cli.command else {
            panic!()
        };
        let config = Config::from_args(&cli.database, &serve).unwrap();
        assert_eq!(config.sessions.idle, Duration::from_secs(300));
        assert_eq!(config.sessions.absolute, Duration::from_secs(3600));
        assert!(config.https());
        assert!(Cli::try_parse_from(["latchkey", "serve", "--session-idle-minutes", "0"]).is_err());
    }

    #[test]
    fn the_minimum_password_length_is_12_to_256() {
        let serve = |extra: &[&str]| {
            let cli = Cli::try_parse_from([&["latchkey", "serve"], extra].concat())?;
            let Command::Serve(serve) = cli.command else {
                panic!()
            };
            Ok::<_, clap::Error>(Config::from_args(&cli.database, &serve).unwrap())
        };
        assert_eq!(serve(&[]).unwrap().password_policy.min_chars(), 12);
        assert_eq!(
            serve(&["--min-password-length", "16"])
                .unwrap()
                .password_policy
                .min_chars(),
            16
        );
        assert_eq!(
            serve(&["--min-password-length", "256"])
                .unwrap()
                .password_policy
                .min_chars(),
            256
        );
        for bad in ["11", "257", "0", "twelve"] {
            let err = serve(&["--min-password-length", bad]).unwrap_err();
            assert!(
                err.to_string().contains("--min-password-length"),
                "{bad}: {err}"
            );
        }
        // The commands that set passwords take it too; the others do not.
        for command in [
            &["user", "create", "--email", "a@b.org"][..],
            &[
                "user",
                "set-password",
                "--email",
                "a@b.org",
                "--password-stdin",
            ],
        ] {
            let args = [&["latchkey"], command, &["--min-password-length", "20"]].concat();
            assert!(Cli::try_parse_from(&args).is_ok(), "{args:?}");
            let args = [&["latchkey"], command, &["--min-password-length", "8"]].concat();
            assert!(Cli::try_parse_from(&args).is_err(), "{args:?}");
        }
        assert!(
            Cli::try_parse_from(["latchkey", "user", "list", "--min-password-length", "20"])
                .is_err()
        );
    }

    #[test]
    fn two_factor_settings() {
        let config = |extra: &[&str]| {
            let cli = Cli::try_parse_from([&["latchkey", "serve"], extra].concat()).unwrap();
            let Command::Serve(serve) = cli.command else {
                panic!()
            };
            Config::from_args(&cli.database, &serve).unwrap()
        };
        let plain = config(&[]);
        assert_eq!(plain.issuer, "latchkey");
        assert_eq!(plain.require_two_factor, Requirement::None);
        assert_eq!(plain.two_factor_grace, Duration::from_secs(7 * 86_400));
        assert_eq!(
            config(&["--public-url", "https://keys.example.org:8443/x"]).issuer,
            "keys.example.org"
        );
        assert_eq!(
            config(&[
                "--public-url",
                "https://k.example.org",
                "--issuer",
                "Example Keys"
            ])
            .issuer,
            "Example Keys"
        );
        let strict = config(&[
            "--require-two-factor",
            "admins",
            "--two-factor-grace-days",
            "0",
        ]);
        assert_eq!(strict.require_two_factor, Requirement::Admins);
        assert_eq!(strict.two_factor_grace, Duration::ZERO);
        assert!(
            Cli::try_parse_from(["latchkey", "serve", "--require-two-factor", "some"]).is_err()
        );
    }

    #[test]
    fn trusted_proxies_take_addresses_and_ranges() {
        let cli = Cli::try_parse_from([
            "latchkey",
            "serve",
            "--trusted-proxies",
            "127.0.0.1, 10.0.0.0/8,::1",
        ])
        .unwrap();
        let Command::Serve(serve) = cli.command else {
            panic!()
        };
        let shown: Vec<String> = serve
            .trusted_proxies
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(shown, ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]);
        assert!(
            Cli::try_parse_from(["latchkey", "serve", "--trusted-proxies", "proxy.local"]).is_err()
        );
    }

    #[test]
    fn rejects_bad_values() {
        let cli =
            Cli::try_parse_from(["latchkey", "serve", "--public-url", "keys.example.org"]).unwrap();
        let Command::Serve(serve) = cli.command else {
            panic!()
        };
        assert!(Config::from_args(&cli.database, &serve).is_err());
        assert!(Cli::try_parse_from(["latchkey", "serve", "--listen", "nope"]).is_err());
    }

    #[test]
    fn listen_takes_host_names() {
        let cli = Cli::try_parse_from(["latchkey", "serve", "--listen", "localhost:8080"]).unwrap();
        let Command::Serve(serve) = cli.command else {
            panic!()
        };
        assert!(serve.listen.ip().is_loopback());
        assert_eq!(serve.listen.port(), 8080);
    }

    #[test]
    fn data_dir_and_database_url_are_not_both_taken() {
        let both = Cli::try_parse_from([
            "latchkey",
            "--data-dir",
            "/tmp/x",
            "--database-url",
            "sqlite:///tmp/y.db",
            "serve",
        ]);
        assert!(both.is_err());
    }

    #[test]
    fn the_sign_in_address_is_one_a_browser_can_open() {
        let config = Config::new("sqlite::memory:");
        assert_eq!(
            config.base_url("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            config.base_url("[::]:8080".parse().unwrap()),
            "http://[::1]:8080"
        );
        assert_eq!(
            config.base_url("192.0.2.7:8080".parse().unwrap()),
            "http://192.0.2.7:8080"
        );
    }
}
