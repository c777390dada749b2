//! Who is calling: what `auth.*` in a policy expression reads.
//!
//! ```
//! use pylon_workers::policy::AuthContext;
//! let alice = AuthContext::user("alice").with_roles(["editor"]);
//! assert!(alice.has_role("editor") && !alice.is_admin);
//! assert_eq!(AuthContext::anonymous().user_id, None);
//! ```

/// The caller as the edge authenticated it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AuthContext {
    /// `None` for anonymous callers.
    pub user_id: Option<String>,
    /// Admins pass every policy.
    pub is_admin: bool,
    pub tenant_id: Option<String>,
    pub roles: Vec<String>,
}

impl AuthContext {
    pub fn anonymous() -> Self {
        AuthContext::default()
    }

    pub fn user(id: impl Into<String>) -> Self {
        AuthContext {
            user_id: Some(id.into()),
            ..AuthContext::default()
        }
    }

    pub fn admin() -> Self {
        AuthContext {
            is_admin: true,
            ..AuthContext::default()
        }
    }

    pub fn with_roles<S: Into<String>>(mut self, roles: impl IntoIterator<Item = S>) -> Self {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant.into());
        self
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}
