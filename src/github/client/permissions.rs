//! Users' permissions on the repository, which decide who may run commands that touch AWS.

use serde::Deserialize;

use super::transport::Method;
use super::{GitHub, GitHubError, encode};

/// A user's permission on the repository, highest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    None,
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

impl Permission {
    fn parse(s: &str) -> Permission {
        match s {
            "admin" => Permission::Admin,
            "maintain" => Permission::Maintain,
            "write" | "push" => Permission::Write,
            "triage" => Permission::Triage,
            "read" | "pull" => Permission::Read,
            _ => Permission::None,
        }
    }

    /// Write, maintain or admin: may run commands that touch AWS.
    pub fn may_deploy(self) -> bool {
        self >= Permission::Write
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::None => "none",
            Permission::Read => "read",
            Permission::Triage => "triage",
            Permission::Write => "write",
            Permission::Maintain => "maintain",
            Permission::Admin => "admin",
        }
    }
}

impl GitHub {
    /// A user's permission on the repository (`role_name` where GitHub gives it, which tells
    /// maintain and triage apart, else `permission`).
    pub async fn permission(&self, user: &str) -> Result<Permission, GitHubError> {
        #[derive(Deserialize)]
        struct P {
            permission: String,
            #[serde(default)]
            role_name: Option<String>,
        }
        let path = format!(
            "{}/collaborators/{}/permission",
            self.repo_path(),
            encode(user)
        );
        match self.call::<P>(Method::Get, &path, None).await {
            Ok(p) => Ok(Permission::parse(
                p.role_name.as_deref().unwrap_or(&p.permission),
            )),
            // Not a collaborator.
            Err(GitHubError::Api { status: 404, .. }) => Ok(Permission::None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_order_and_legacy_names() {
        assert!(Permission::parse("maintain").may_deploy());
        assert!(Permission::parse("push").may_deploy());
        assert!(!Permission::parse("triage").may_deploy());
        assert!(!Permission::parse("read").may_deploy());
        assert!(!Permission::parse("none").may_deploy());
        assert!(!Permission::parse("something new").may_deploy());
    }
}
