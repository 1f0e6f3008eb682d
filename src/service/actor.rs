//! Who is acting. Each proof has private fields and is made only here, by
//! authentication: a handler or command that holds one has been checked,
//! and every operation says which one it needs.

use std::fmt;
use std::sync::Arc;

use super::cache::Holder;
use crate::credential::{DeviceId, SessionDigest, TokenDigest};
use crate::domain::{
    rules, AccessAuthorisation, Account, AccountId, Device, LastUse, Permission, Permissions,
    Scope, WebSession,
};

/// A request authenticated with a device password: the device as cached,
/// and this very use of it.
#[derive(Clone, Debug)]
pub struct DeviceCaller {
    device: Arc<Device>,
    used: LastUse,
    /// The digest of the token this request presented: "Change password"
    /// replaces exactly that one, or nothing.
    presented: TokenDigest,
    holder: Arc<Holder>,
    permissions: Permissions,
    scope: Scope,
}

impl DeviceCaller {
    pub(super) fn new(
        device: Arc<Device>,
        used: LastUse,
        presented: TokenDigest,
        holder: Arc<Holder>,
        permissions: Permissions,
        scope: Scope,
    ) -> Self {
        Self {
            device,
            used,
            presented,
            holder,
            permissions,
            scope,
        }
    }

    /// The account it belongs to: email and name.
    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// The holder's permissions when the credential was checked.
    pub fn permissions(&self) -> Permissions {
        self.permissions
    }

    /// The scope it acts with (`admin` only while its holder is an administrator).
    pub fn scope(&self) -> Scope {
        self.scope
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// When and from where this request used the device.
    pub fn used(&self) -> &LastUse {
        &self.used
    }

    pub fn account_id(&self) -> AccountId {
        self.device.account_id
    }
}

/// A request authenticated with an API access authorisation: a service,
/// which belongs to no person and so acts for no account.
#[derive(Clone, Debug)]
pub struct AccessCaller {
    access: Arc<AccessAuthorisation>,
    used: LastUse,
}

impl AccessCaller {
    pub(super) fn new(access: Arc<AccessAuthorisation>, used: LastUse) -> Self {
        Self { access, used }
    }

    /// The access authorisation as cached, with this use as its last.
    pub fn access(&self) -> AccessAuthorisation {
        AccessAuthorisation {
            last_used: Some(self.used.clone()),
            ..AccessAuthorisation::clone(&self.access)
        }
    }

    pub fn id(&self) -> &crate::domain::AccessId {
        &self.access.id
    }

    pub fn name(&self) -> &str {
        self.access.name.as_str()
    }

    /// The scope it acts with: its own, no person's state can narrow it.
    pub fn scope(&self) -> Scope {
        self.access.limits.scope
    }
}

/// Whoever a request's credential proved: a person's device, or a service.
#[derive(Clone, Debug)]
pub enum Caller {
    Device(DeviceCaller),
    Access(AccessCaller),
}

impl Caller {
    pub fn scope(&self) -> Scope {
        match self {
            Caller::Device(device) => device.scope(),
            Caller::Access(access) => access.scope(),
        }
    }

    /// The holder's permissions; a service holds none.
    pub fn permissions(&self) -> Permissions {
        match self {
            Caller::Device(device) => device.permissions(),
            Caller::Access(_) => Permissions::default(),
        }
    }
}

/// A person signed in to the web interface, with a live session, whose
/// account a main password alone may still act for.
#[derive(Clone, Debug)]
pub struct Member {
    account: Account,
    session: WebSession,
    digest: SessionDigest,
}

impl Member {
    pub(super) fn new(account: Account, session: WebSession, digest: SessionDigest) -> Self {
        Self {
            account,
            session,
            digest,
        }
    }

    pub fn account(&self) -> &Account {
        &self.account
    }

    pub fn session(&self) -> &WebSession {
        &self.session
    }

    pub(super) fn session_digest(&self) -> &SessionDigest {
        &self.digest
    }

    /// The same person as an administrator, if their account is one.
    pub fn into_admin(self) -> Result<Admin, rules::Refusal> {
        rules::is_administrator(&self.account)?;
        Ok(Admin { member: self })
    }
}

impl AsRef<Member> for Member {
    fn as_ref(&self) -> &Member {
        self
    }
}

/// A signed-in administrator; made only from a [`Member`] whose account
/// was checked to be one.
#[derive(Clone, Debug)]
pub struct Admin {
    member: Member,
}

impl Admin {
    pub fn account(&self) -> &Account {
        &self.member.account
    }

    /// This administrator acting on the devices of `owner`'s account.
    pub fn over(&self, owner: AccountId) -> AdminOver<'_> {
        AdminOver {
            admin: self,
            owner: Some(owner),
        }
    }

    /// This administrator acting on every account's devices.
    pub fn everyone(&self) -> AdminOver<'_> {
        AdminOver {
            admin: self,
            owner: None,
        }
    }
}

impl AsRef<Member> for Admin {
    fn as_ref(&self) -> &Member {
        &self.member
    }
}

/// An administrator managing one account's devices, or everyone's.
#[derive(Clone, Copy, Debug)]
pub struct AdminOver<'a> {
    admin: &'a Admin,
    owner: Option<AccountId>,
}

/// An administrator acting over the admin API (`/server/api/admin/…`):
/// made only by [`Service::api_administrator`](super::Service::api_administrator),
/// from a credential that holds the `admin` scope: a device password whose
/// holder is an administrator, or an API access authorisation with the
/// `admin` scope, which has no account of its own.
#[derive(Clone, Debug)]
pub struct ApiAdministrator {
    via: ApiCredential,
}

/// The credential an [`ApiAdministrator`] presented.
#[derive(Clone, Debug)]
enum ApiCredential {
    /// An administrator's device password with scope `admin`.
    Device(DeviceCaller),
    /// An API access authorisation with scope `admin`.
    Access(AccessCaller),
}

impl ApiAdministrator {
    /// Only for a caller whose effective scope is `admin`, which
    /// [`limits::effective_scope`](crate::domain::limits::effective_scope)
    /// gives only while its holder is an administrator; checked again here,
    /// so that no other path can make one.
    pub(super) fn from_device(caller: DeviceCaller) -> Result<Self, rules::Refusal> {
        if caller.scope() != Scope::Admin {
            return Err(rules::Refusal::InsufficientScope(Scope::Admin));
        }
        if !caller.permissions().contains(Permission::Admin) {
            return Err(rules::Refusal::NotAnAdministrator);
        }
        Ok(Self {
            via: ApiCredential::Device(caller),
        })
    }

    /// Only for an API access authorisation whose scope is `admin`.
    pub(super) fn from_access(caller: AccessCaller) -> Result<Self, rules::Refusal> {
        if caller.scope() != Scope::Admin {
            return Err(rules::Refusal::InsufficientScope(Scope::Admin));
        }
        Ok(Self {
            via: ApiCredential::Access(caller),
        })
    }

    /// This administrator acting on the devices of `owner`'s account.
    pub fn over(&self, owner: AccountId) -> ApiAdministratorOver<'_> {
        ApiAdministratorOver { admin: self, owner }
    }
}

/// An API administrator managing one account's devices.
#[derive(Clone, Copy, Debug)]
pub struct ApiAdministratorOver<'a> {
    admin: &'a ApiAdministrator,
    owner: AccountId,
}

/// The person at the command line. Whoever can run the binary against the
/// database holds everything already, so there is nothing more to check;
/// only the CLI makes one. Still held to the last-administrator rule, so a
/// slip does not lock everyone out of the web interface, unless forcing.
#[derive(Clone, Copy, Debug)]
pub struct Operator {
    force: bool,
}

impl Operator {
    pub const fn at_the_command_line() -> Self {
        Self { force: false }
    }

    /// The operator who, with `force`, may also take away the last enabled
    /// administrator.
    pub const fn forcing(self, force: bool) -> Self {
        Self { force }
    }

    /// The operator acting on the devices of `owner`'s account.
    pub fn over(self, owner: AccountId) -> OperatorOver {
        OperatorOver { owner }
    }
}

/// The operator managing one account's devices.
#[derive(Clone, Copy, Debug)]
pub struct OperatorOver {
    owner: AccountId,
}

/// Who acted, as logs (and the coming audit trail) name them.
#[derive(Clone, Copy, Debug)]
pub enum Acting<'a> {
    Device(&'a DeviceId),
    Access(&'a DeviceId),
    Member(&'a Account),
    Admin(&'a Account),
    /// An administrator over the admin API, with this device password.
    AdminDevice(&'a DeviceId, &'a str),
    Operator,
}

impl fmt::Display for Acting<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Acting::Device(id) => write!(f, "device {id}"),
            Acting::Access(id) => write!(f, "API access {id}"),
            Acting::Member(account) => write!(f, "{}", account.email),
            Acting::Admin(account) => write!(f, "administrator {}", account.email),
            Acting::AdminDevice(id, email) => write!(f, "administrator {email} with device {id}"),
            Acting::Operator => f.write_str("operator"),
        }
    }
}

/// An actor who administers accounts: a signed-in administrator, held to
/// the last-administrator rule, or the operator, held to it unless forcing
/// (the command line is how a server without an administrator is repaired).
pub trait Administrator: Sync {
    fn acting(&self) -> Acting<'_>;
    /// The administrator's own account, if they have one.
    fn own_account(&self) -> Option<AccountId>;
    fn keeps_an_administrator(&self) -> bool;
}

impl Administrator for Admin {
    fn acting(&self) -> Acting<'_> {
        Acting::Admin(self.account())
    }
    fn own_account(&self) -> Option<AccountId> {
        Some(self.account().id)
    }
    fn keeps_an_administrator(&self) -> bool {
        true
    }
}

impl Administrator for ApiAdministrator {
    fn acting(&self) -> Acting<'_> {
        match &self.via {
            ApiCredential::Device(caller) => {
                Acting::AdminDevice(&caller.device().id, &caller.holder().email)
            }
            ApiCredential::Access(caller) => Acting::Access(caller.id()),
        }
    }
    fn own_account(&self) -> Option<AccountId> {
        match &self.via {
            ApiCredential::Device(caller) => Some(caller.account_id()),
            ApiCredential::Access(_) => None,
        }
    }
    fn keeps_an_administrator(&self) -> bool {
        true
    }
}

impl Administrator for Operator {
    fn acting(&self) -> Acting<'_> {
        Acting::Operator
    }
    fn own_account(&self) -> Option<AccountId> {
        None
    }
    fn keeps_an_administrator(&self) -> bool {
        !self.force
    }
}

/// An actor who manages API access authorisations: administrators only,
/// in the web interface, over the admin API, or at the command line.
pub trait AccessManager: Sync {
    fn acting(&self) -> Acting<'_>;
    /// How the authorisations this actor makes name their maker.
    fn maker(&self) -> Option<String>;
}

impl AccessManager for Admin {
    fn acting(&self) -> Acting<'_> {
        Acting::Admin(self.account())
    }
    fn maker(&self) -> Option<String> {
        Some(self.account().email.to_string())
    }
}

impl AccessManager for ApiAdministrator {
    fn acting(&self) -> Acting<'_> {
        Administrator::acting(self)
    }
    fn maker(&self) -> Option<String> {
        Some(match &self.via {
            ApiCredential::Device(caller) => caller.holder().email.clone(),
            ApiCredential::Access(caller) => format!("API access {}", caller.id()),
        })
    }
}

impl AccessManager for Operator {
    fn acting(&self) -> Acting<'_> {
        Acting::Operator
    }
    fn maker(&self) -> Option<String> {
        None
    }
}

/// An actor who manages device passwords, and whose.
pub trait DeviceActor: Sync {
    fn acting(&self) -> Acting<'_>;
    /// Whose devices this actor may see and change; `None`: anyone's.
    fn owner(&self) -> Option<AccountId>;
    /// Whether this actor may manage device passwords at all.
    fn may_manage(&self) -> Result<(), rules::Refusal>;
    /// The device this actor is, and the token it presented.
    fn as_device(&self) -> Option<(&DeviceId, &TokenDigest)> {
        None
    }
    /// The actor's own device, if it is the device called `id`.
    fn itself(&self, _id: &str) -> Option<Device> {
        None
    }
    /// Whether this actor may loosen limits (change them, or move an expiry
    /// later): people may; a device password only with the `admin` scope,
    /// or any device could lift the limits its owner set on it.
    fn may_loosen_limits(&self) -> Result<(), rules::Refusal> {
        Ok(())
    }
}

impl DeviceActor for DeviceCaller {
    fn acting(&self) -> Acting<'_> {
        Acting::Device(&self.device.id)
    }
    fn may_loosen_limits(&self) -> Result<(), rules::Refusal> {
        if self.scope >= Scope::Admin {
            Ok(())
        } else {
            Err(rules::Refusal::InsufficientScope(Scope::Admin))
        }
    }
    fn owner(&self) -> Option<AccountId> {
        Some(self.account_id())
    }
    /// Checked when the request was authenticated.
    fn may_manage(&self) -> Result<(), rules::Refusal> {
        Ok(())
    }
    fn as_device(&self) -> Option<(&DeviceId, &TokenDigest)> {
        Some((&self.device.id, &self.presented))
    }
    fn itself(&self, id: &str) -> Option<Device> {
        (self.device.id.as_str() == id).then(|| Device {
            last_used: Some(self.used.clone()),
            ..Device::clone(&self.device)
        })
    }
}

impl DeviceActor for Member {
    fn acting(&self) -> Acting<'_> {
        Acting::Member(&self.account)
    }
    fn owner(&self) -> Option<AccountId> {
        Some(self.account.id)
    }
    fn may_manage(&self) -> Result<(), rules::Refusal> {
        rules::may_use_device_passwords(&self.account.permissions)
    }
}

impl DeviceActor for AdminOver<'_> {
    fn acting(&self) -> Acting<'_> {
        Acting::Admin(self.admin.account())
    }
    fn owner(&self) -> Option<AccountId> {
        self.owner
    }
    fn may_manage(&self) -> Result<(), rules::Refusal> {
        Ok(())
    }
}

impl DeviceActor for ApiAdministrator {
    fn acting(&self) -> Acting<'_> {
        Administrator::acting(self)
    }
    fn owner(&self) -> Option<AccountId> {
        None
    }
    fn may_manage(&self) -> Result<(), rules::Refusal> {
        Ok(())
    }
}

impl DeviceActor for ApiAdministratorOver<'_> {
    fn acting(&self) -> Acting<'_> {
        Administrator::acting(self.admin)
    }
    fn owner(&self) -> Option<AccountId> {
        Some(self.owner)
    }
    fn may_manage(&self) -> Result<(), rules::Refusal> {
        Ok(())
    }
}

impl DeviceActor for Operator {
    fn acting(&self) -> Acting<'_> {
        Acting::Operator
    }
    fn owner(&self) -> Option<AccountId> {
        None
    }
    fn may_manage(&self) -> Result<(), rules::Refusal> {
        Ok(())
    }
}

impl DeviceActor for OperatorOver {
    fn acting(&self) -> Acting<'_> {
        Acting::Operator
    }
    fn owner(&self) -> Option<AccountId> {
        Some(self.owner)
    }
    fn may_manage(&self) -> Result<(), rules::Refusal> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::Token;
    use crate::domain::{DeviceName, Timestamp};

    fn caller(scope: Scope, permissions: &[Permission]) -> DeviceCaller {
        let at = Timestamp::from_millis(0);
        let device = Device {
            id: DeviceId::generate(),
            account_id: AccountId(7),
            name: DeviceName::parse("script").unwrap(),
            device_type: "unknown".into(),
            created_at: at,
            last_used: None,
            limits: Default::default(),
            token_issued_at: at,
            previous_token_until: None,
        };
        let used = LastUse {
            at,
            ip: None,
            user_agent: None,
            recent: Default::default(),
        };
        let holder = Holder {
            email: "boss@example.org".into(),
            name: "boss".into(),
        };
        DeviceCaller::new(
            Arc::new(device),
            used,
            Token::generate().digest(),
            Arc::new(holder),
            permissions.iter().copied().collect(),
            scope,
        )
    }

    #[test]
    fn only_an_administrators_admin_scope_device_is_an_api_administrator() {
        let both = [Permission::Admin, Permission::Synchronisation];
        for scope in [Scope::Read, Scope::Full] {
            assert_eq!(
                ApiAdministrator::from_device(caller(scope, &both)).unwrap_err(),
                rules::Refusal::InsufficientScope(Scope::Admin)
            );
        }
        assert_eq!(
            ApiAdministrator::from_device(caller(Scope::Admin, &[Permission::Synchronisation]))
                .unwrap_err(),
            rules::Refusal::NotAnAdministrator
        );
        let admin = ApiAdministrator::from_device(caller(Scope::Admin, &both)).unwrap();
        assert_eq!(admin.own_account(), Some(AccountId(7)));
        assert!(admin.keeps_an_administrator());
        assert_eq!(DeviceActor::owner(&admin), None);
        assert_eq!(
            DeviceActor::owner(&admin.over(AccountId(3))),
            Some(AccountId(3))
        );
        let acting = Administrator::acting(&admin).to_string();
        assert!(
            acting.starts_with("administrator boss@example.org with device "),
            "{acting}"
        );
    }
}
