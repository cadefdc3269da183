//! Whether an S3 ACL is private: seed 004 reads the ACL first and acts only when it is not.

/// One grant of an ACL, as GetObjectAcl returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The grantee's canonical user id, if it is a user.
    pub grantee_id: Option<String>,
    /// The grantee's group URI, if it is a group.
    pub grantee_uri: Option<String>,
    /// The permission (`READ`, `FULL_CONTROL`, ...).
    pub permission: String,
}

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

/// The grants that make an object public: anyone, or any AWS account holder.
pub fn public_grants(grants: &[Grant]) -> Vec<&Grant> {
    grants
        .iter()
        .filter(|g| {
            g.grantee_uri
                .as_deref()
                .is_some_and(|u| u == ALL_USERS || u == AUTHENTICATED_USERS)
        })
        .collect()
}

/// `private` means only the owner holds a grant (FULL_CONTROL).
pub fn is_private(owner_id: Option<&str>, grants: &[Grant]) -> bool {
    grants.iter().all(|g| match (&g.grantee_id, owner_id) {
        (Some(id), Some(owner)) => id == owner,
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> Grant {
        Grant {
            grantee_id: Some(id.into()),
            grantee_uri: None,
            permission: "FULL_CONTROL".into(),
        }
    }

    #[test]
    fn private_public_and_shared() {
        let everyone = Grant {
            grantee_id: None,
            grantee_uri: Some(ALL_USERS.into()),
            permission: "READ".into(),
        };
        assert!(is_private(Some("o"), &[user("o")]));
        assert!(!is_private(Some("o"), &[user("o"), everyone.clone()]));
        assert_eq!(public_grants(&[user("o"), everyone.clone()]), [&everyone]);
        // Shared with another account: not private, but not public either.
        assert!(!is_private(Some("o"), &[user("o"), user("other")]));
        assert!(public_grants(&[user("o"), user("other")]).is_empty());
    }
}
