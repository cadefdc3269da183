//! The remediation action catalogue. Pure: no I/O, no async.
//!
//! Every action a rule may name under `remediate:` is an [`ActionKind`]. For each one this
//! crate knows:
//! - its parameters ([`ActionKind::params`]) and the defaults that take them from the event,
//!   so a rule can write `- action: s3-make-object-private` and act on exactly the object
//!   the event names;
//! - how resolved parameters become one typed [`Request`] ([`plan`]), and which AWS calls
//!   that request makes ([`Request::calls`]), readable, for dry-run plans and the audit;
//! - the IAM permissions it needs ([`ActionKind::iam_actions`]), for `trailwatch iam-policy`.
//!
//! It also holds the pure halves of the actions: the security-group difference
//! ([`permissions::diff`]), the "is this ACL private" test ([`acl`]) and the error classes
//! that decide retries ([`ErrorClass`]). `trailwatch-remediate` makes the calls.

pub mod acl;
pub mod permissions;

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use permissions::Permission;

/// An action that a rule can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    /// Revoke exactly the ingress permissions an event added.
    Ec2RevokeIngress,
    /// Drive a group back to its required permissions (authorize the missing, revoke the extra).
    Ec2EnforceSecurityGroup,
    /// Read an object's ACL; if it grants anything beyond the owner, set it `private`.
    S3MakeObjectPrivate,
    /// Turn on all four Block Public Access settings for a bucket.
    S3BlockPublicAccess,
    /// Set an access key Inactive (reversible).
    IamDeactivateAccessKey,
    /// What an access key did in the last hours, grouped by API and resource.
    IamSummarizeKeyActivity,
    /// Tag EC2 resources (for instance, quarantine markers).
    Ec2TagResource,
    /// Stop EC2 instances.
    Ec2StopInstance,
    /// POST the decision to an external system.
    InvokeWebhook,
    /// Send a notification through trailwatch's destinations, with the workflow's results.
    Notify,
}

/// The type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// A string.
    Text,
    /// An integer.
    Integer,
    /// A list of strings (a JSON array, or one string separated by commas or spaces).
    TextList,
    /// A string-to-string map.
    TextMap,
    /// A list of permissions (see [`Permission`]).
    Permissions,
}

/// One parameter of an action.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    /// Its name under `with:`.
    pub name: &'static str,
    /// Its type.
    pub kind: ParamType,
    /// Whether the action cannot do without it.
    pub required: bool,
    /// The template it takes when the rule gives none (rendered against the alert).
    pub default: Option<&'static str>,
    /// What it means.
    pub help: &'static str,
}

const fn p(
    name: &'static str,
    kind: ParamType,
    required: bool,
    default: Option<&'static str>,
    help: &'static str,
) -> ParamSpec {
    ParamSpec {
        name,
        kind,
        required,
        default,
        help,
    }
}

use ParamType::*;

/// The group of a security-group event: by id, or (a call that named the group) the id the
/// response gives.
const GROUP_ID: ParamSpec = p(
    "group_id",
    Text,
    true,
    Some(
        "{{ record.requestParameters.groupId | default(record.requestParameters.ModifySecurityGroupRulesRequest.GroupId | default(record.responseElements.securityGroupRuleSet['items'][0].groupId | default(event.detail.resourceId | default('')))) }}",
    ),
    "the security group",
);

const REVOKE_INGRESS: &[ParamSpec] = &[
    GROUP_ID,
    p(
        "permissions",
        Permissions,
        false,
        None,
        "the permissions to revoke; without it, the one `perm`/`range` item of the alert",
    ),
    p(
        "protocol",
        Text,
        false,
        Some("{{ protocol | default('') }}"),
        "with from_port, to_port and cidr: one permission",
    ),
    p(
        "from_port",
        Integer,
        false,
        Some("{{ from_port | default('') }}"),
        "first port",
    ),
    p(
        "to_port",
        Integer,
        false,
        Some("{{ to_port | default('') }}"),
        "last port",
    ),
    p(
        "cidr",
        Text,
        false,
        Some("{{ cidr | default('') }}"),
        "the range (IPv4 or IPv6)",
    ),
];

const ENFORCE_SG: &[ParamSpec] = &[
    GROUP_ID,
    p(
        "required",
        Permissions,
        false,
        None,
        "the group's required ingress; without it, `remediation.security_groups.<group>` in the config",
    ),
];

const S3_OBJECT: &[ParamSpec] = &[
    p(
        "bucket",
        Text,
        true,
        Some("{{ record.requestParameters.bucketName | default('') }}"),
        "the bucket",
    ),
    p(
        "key",
        Text,
        true,
        Some("{{ record.requestParameters.key | default('') }}"),
        "the object key",
    ),
];

const S3_BUCKET: &[ParamSpec] = &[p(
    "bucket",
    Text,
    true,
    Some("{{ record.requestParameters.bucketName | default('') }}"),
    "the bucket",
)];

const ACCESS_KEY: &[ParamSpec] = &[
    p(
        "access_key_id",
        Text,
        true,
        Some(
            "{{ record.requestParameters.accessKeyId | default(record.responseElements.accessKey.accessKeyId | default(event.detail.affectedEntities[0].entityValue | default(principal.access_key_id | default('')))) }}",
        ),
        "the key",
    ),
    p(
        "user_name",
        Text,
        false,
        Some(
            "{{ record.requestParameters.userName | default(record.responseElements.accessKey.userName | default(record.userIdentity.userName | default(''))) }}",
        ),
        "the key's user (the caller's own keys when empty)",
    ),
];

const SUMMARIZE: &[ParamSpec] = &[
    ACCESS_KEY[0],
    p("hours", Integer, false, Some("24"), "how far back to look"),
    p(
        "regions",
        TextList,
        false,
        // IAM, STS and the console record global calls in us-east-1.
        Some("{{ region }},us-east-1"),
        "the regions whose LookupEvents to read (without an archive)",
    ),
];

const TAG: &[ParamSpec] = &[
    p(
        "resource_ids",
        TextList,
        true,
        Some("{{ instances | default([]) | join(',') }}"),
        "the resources",
    ),
    p("tags", TextMap, true, None, "the tags to set"),
];

const STOP: &[ParamSpec] = &[p(
    "instance_ids",
    TextList,
    true,
    Some("{{ instances | default([]) | join(',') }}"),
    "the instances",
)];

const WEBHOOK: &[ParamSpec] = &[
    p(
        "url",
        Text,
        true,
        None,
        "where to POST the alert and the plan",
    ),
    p(
        "secret_env",
        Text,
        false,
        None,
        "an environment variable holding the HMAC-SHA256 signing secret",
    ),
];

const NOTIFY: &[ParamSpec] = &[
    p(
        "title",
        Text,
        false,
        None,
        "the notification's title (default: the workflow's outcome)",
    ),
    p(
        "severity",
        Text,
        false,
        None,
        "its severity (default: the alert's)",
    ),
];

impl ActionKind {
    /// Every action, in the order the docs list them.
    pub const ALL: [ActionKind; 10] = [
        ActionKind::Ec2RevokeIngress,
        ActionKind::Ec2EnforceSecurityGroup,
        ActionKind::S3MakeObjectPrivate,
        ActionKind::S3BlockPublicAccess,
        ActionKind::IamDeactivateAccessKey,
        ActionKind::IamSummarizeKeyActivity,
        ActionKind::Ec2TagResource,
        ActionKind::Ec2StopInstance,
        ActionKind::InvokeWebhook,
        ActionKind::Notify,
    ];

    /// The name rules use.
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Ec2RevokeIngress => "ec2-revoke-ingress",
            ActionKind::Ec2EnforceSecurityGroup => "ec2-enforce-security-group",
            ActionKind::S3MakeObjectPrivate => "s3-make-object-private",
            ActionKind::S3BlockPublicAccess => "s3-block-public-access",
            ActionKind::IamDeactivateAccessKey => "iam-deactivate-access-key",
            ActionKind::IamSummarizeKeyActivity => "iam-summarize-key-activity",
            ActionKind::Ec2TagResource => "ec2-tag-resource",
            ActionKind::Ec2StopInstance => "ec2-stop-instance",
            ActionKind::InvokeWebhook => "invoke-webhook",
            ActionKind::Notify => "notify",
        }
    }

    /// The action of a name.
    pub fn from_name(name: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Its parameters.
    pub fn params(self) -> &'static [ParamSpec] {
        match self {
            ActionKind::Ec2RevokeIngress => REVOKE_INGRESS,
            ActionKind::Ec2EnforceSecurityGroup => ENFORCE_SG,
            ActionKind::S3MakeObjectPrivate => S3_OBJECT,
            ActionKind::S3BlockPublicAccess => S3_BUCKET,
            ActionKind::IamDeactivateAccessKey => ACCESS_KEY,
            ActionKind::IamSummarizeKeyActivity => SUMMARIZE,
            ActionKind::Ec2TagResource => TAG,
            ActionKind::Ec2StopInstance => STOP,
            ActionKind::InvokeWebhook => WEBHOOK,
            ActionKind::Notify => NOTIFY,
        }
    }

    /// Whether it changes the account. Guards (resource allow/deny lists, the ignore tag)
    /// apply to these; the rule's mode gates the whole job, these and the rest alike.
    pub fn mutates(self) -> bool {
        !matches!(
            self,
            ActionKind::IamSummarizeKeyActivity | ActionKind::Notify | ActionKind::InvokeWebhook
        )
    }

    /// The IAM actions it needs, for `trailwatch iam-policy`. Reads that guards make
    /// (resource tags) are included, so a guard never fails for lack of permission.
    pub fn iam_actions(self) -> &'static [&'static str] {
        match self {
            ActionKind::Ec2RevokeIngress => &[
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeTags",
                "ec2:RevokeSecurityGroupIngress",
            ],
            ActionKind::Ec2EnforceSecurityGroup => &[
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeTags",
                "ec2:RevokeSecurityGroupIngress",
            ],
            ActionKind::S3MakeObjectPrivate => {
                &["s3:GetBucketTagging", "s3:GetObjectAcl", "s3:PutObjectAcl"]
            }
            ActionKind::S3BlockPublicAccess => {
                &["s3:GetBucketTagging", "s3:PutBucketPublicAccessBlock"]
            }
            // GetAccessKeyLastUsed finds the key's user when the event does not name it.
            ActionKind::IamDeactivateAccessKey => &[
                "iam:GetAccessKeyLastUsed",
                "iam:ListUserTags",
                "iam:UpdateAccessKey",
            ],
            ActionKind::IamSummarizeKeyActivity => &["cloudtrail:LookupEvents"],
            ActionKind::Ec2TagResource => &["ec2:CreateTags", "ec2:DescribeTags"],
            ActionKind::Ec2StopInstance => &["ec2:DescribeTags", "ec2:StopInstances"],
            ActionKind::InvokeWebhook | ActionKind::Notify => &[],
        }
    }

    /// The IAM resource ARN pattern it acts on, for the policy (`*` where the API has no
    /// resource-level permissions).
    pub fn iam_resource(self) -> &'static str {
        match self {
            ActionKind::S3MakeObjectPrivate | ActionKind::S3BlockPublicAccess => "arn:aws:s3:::*",
            ActionKind::IamDeactivateAccessKey => "arn:aws:iam::*:user/*",
            _ => "*",
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why parameters do not make a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// The action name is not in the catalogue.
    #[error("unknown action {0:?}; known: {known}", known = known_names())]
    UnknownAction(String),
    /// A `with:` key the action does not take.
    #[error("action {action} has no parameter {param:?}; it takes: {takes}")]
    UnknownParam {
        /// The action.
        action: ActionKind,
        /// The parameter.
        param: String,
        /// What it takes.
        takes: String,
    },
    /// A required parameter that is missing or resolved to nothing.
    #[error("action {action}: parameter {param} is empty")]
    Missing {
        /// The action.
        action: ActionKind,
        /// The parameter.
        param: &'static str,
    },
    /// A parameter of the wrong shape.
    #[error("action {action}: parameter {param}: {reason}")]
    Invalid {
        /// The action.
        action: ActionKind,
        /// The parameter.
        param: String,
        /// Why.
        reason: String,
    },
}

fn known_names() -> String {
    ActionKind::ALL.map(ActionKind::name).join(", ")
}

/// Checks a rule's `with:` keys against the action (at rule load).
pub fn check_param_names<'a>(
    action: ActionKind,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), ActionError> {
    for name in names {
        if !action.params().iter().any(|p| p.name == name) {
            return Err(ActionError::UnknownParam {
                action,
                param: name.to_owned(),
                takes: action
                    .params()
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(())
}

/// The typed request an action makes, after its parameters resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Request {
    /// `ec2-revoke-ingress`.
    Ec2RevokeIngress {
        /// The group.
        group_id: String,
        /// Exactly what to revoke.
        permissions: Vec<Permission>,
    },
    /// `ec2-enforce-security-group`.
    Ec2EnforceSecurityGroup {
        /// The group.
        group_id: String,
        /// The required ingress (`None`: from the config).
        required: Option<Vec<Permission>>,
    },
    /// `s3-make-object-private`.
    S3MakeObjectPrivate {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// `s3-block-public-access`.
    S3BlockPublicAccess {
        /// The bucket.
        bucket: String,
    },
    /// `iam-deactivate-access-key`.
    IamDeactivateAccessKey {
        /// The key.
        access_key_id: String,
        /// Its user (`None`: the caller's own).
        user_name: Option<String>,
    },
    /// `iam-summarize-key-activity`.
    IamSummarizeKeyActivity {
        /// The key.
        access_key_id: String,
        /// How far back.
        hours: u32,
        /// The regions to look in when there is no archive (LookupEvents is regional).
        regions: Vec<String>,
    },
    /// `ec2-tag-resource`.
    Ec2TagResource {
        /// The resources.
        resource_ids: Vec<String>,
        /// The tags.
        tags: Vec<(String, String)>,
    },
    /// `ec2-stop-instance`.
    Ec2StopInstance {
        /// The instances.
        instance_ids: Vec<String>,
    },
    /// `invoke-webhook`.
    InvokeWebhook {
        /// The URL.
        url: String,
        /// The signing secret's environment variable.
        secret_env: Option<String>,
    },
    /// `notify`.
    Notify {
        /// The title.
        title: Option<String>,
        /// The severity.
        severity: Option<String>,
    },
}

impl Request {
    /// The action this request belongs to.
    pub fn kind(&self) -> ActionKind {
        match self {
            Request::Ec2RevokeIngress { .. } => ActionKind::Ec2RevokeIngress,
            Request::Ec2EnforceSecurityGroup { .. } => ActionKind::Ec2EnforceSecurityGroup,
            Request::S3MakeObjectPrivate { .. } => ActionKind::S3MakeObjectPrivate,
            Request::S3BlockPublicAccess { .. } => ActionKind::S3BlockPublicAccess,
            Request::IamDeactivateAccessKey { .. } => ActionKind::IamDeactivateAccessKey,
            Request::IamSummarizeKeyActivity { .. } => ActionKind::IamSummarizeKeyActivity,
            Request::Ec2TagResource { .. } => ActionKind::Ec2TagResource,
            Request::Ec2StopInstance { .. } => ActionKind::Ec2StopInstance,
            Request::InvokeWebhook { .. } => ActionKind::InvokeWebhook,
            Request::Notify { .. } => ActionKind::Notify,
        }
    }

    /// The resource it acts on, as guards and the audit name it.
    pub fn resource(&self) -> String {
        match self {
            Request::Ec2RevokeIngress { group_id, .. }
            | Request::Ec2EnforceSecurityGroup { group_id, .. } => group_id.clone(),
            Request::S3MakeObjectPrivate { bucket, key } => format!("s3://{bucket}/{key}"),
            Request::S3BlockPublicAccess { bucket } => format!("s3://{bucket}"),
            Request::IamDeactivateAccessKey { access_key_id, .. }
            | Request::IamSummarizeKeyActivity { access_key_id, .. } => access_key_id.clone(),
            Request::Ec2TagResource { resource_ids, .. } => resource_ids.join(","),
            Request::Ec2StopInstance { instance_ids } => instance_ids.join(","),
            Request::InvokeWebhook { url, .. } => url.clone(),
            Request::Notify { .. } => String::new(),
        }
    }

    /// The calls it makes, readable (for the dry-run plan and the audit trail).
    pub fn calls(&self) -> Vec<String> {
        match self {
            Request::Ec2RevokeIngress {
                group_id,
                permissions,
            } => vec![
                format!("ec2:DescribeSecurityGroups GroupIds=[{group_id}]"),
                format!(
                    "ec2:RevokeSecurityGroupIngress GroupId={group_id} IpPermissions=[{}] (those of them the group has)",
                    permissions
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ],
            Request::Ec2EnforceSecurityGroup { group_id, required } => vec![
                format!("ec2:DescribeSecurityGroups GroupIds=[{group_id}]"),
                match required {
                    Some(r) => format!(
                        "then ec2:AuthorizeSecurityGroupIngress / ec2:RevokeSecurityGroupIngress GroupId={group_id} for the difference from [{}]",
                        r.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                    None => format!(
                        "then ec2:AuthorizeSecurityGroupIngress / ec2:RevokeSecurityGroupIngress GroupId={group_id} for the difference from its configured baseline"
                    ),
                },
            ],
            Request::S3MakeObjectPrivate { bucket, key } => vec![
                format!("s3:GetObjectAcl Bucket={bucket} Key={key}"),
                format!("if not private: s3:PutObjectAcl Bucket={bucket} Key={key} ACL=private"),
            ],
            Request::S3BlockPublicAccess { bucket } => vec![format!(
                "s3:PutPublicAccessBlock Bucket={bucket} BlockPublicAcls=true IgnorePublicAcls=true BlockPublicPolicy=true RestrictPublicBuckets=true"
            )],
            Request::IamDeactivateAccessKey {
                access_key_id,
                user_name,
            } => vec![format!(
                "iam:UpdateAccessKey AccessKeyId={access_key_id}{} Status=Inactive",
                user_name
                    .as_ref()
                    .map(|u| format!(" UserName={u}"))
                    .unwrap_or_default()
            )],
            Request::IamSummarizeKeyActivity {
                access_key_id,
                hours,
                regions,
            } => vec![format!(
                "archive, else cloudtrail:LookupEvents AttributeKey=AccessKeyId AttributeValue={access_key_id} over the last {hours} h in {}",
                regions.join(", ")
            )],
            Request::Ec2TagResource { resource_ids, tags } => vec![format!(
                "ec2:CreateTags Resources=[{}] Tags=[{}]",
                resource_ids.join(", "),
                tags.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
            Request::Ec2StopInstance { instance_ids } => vec![format!(
                "ec2:StopInstances InstanceIds=[{}]",
                instance_ids.join(", ")
            )],
            Request::InvokeWebhook { url, .. } => vec![format!("POST {url}")],
            Request::Notify { .. } => vec!["notify the rule's destinations".to_owned()],
        }
    }
}

/// Turns resolved parameters into a request, or says which parameter is missing or wrong.
pub fn plan(action: ActionKind, params: &Map<String, Value>) -> Result<Request, ActionError> {
    let get = Params { action, params };
    Ok(match action {
        ActionKind::Ec2RevokeIngress => {
            let group_id = get.text("group_id")?;
            let permissions = match get.permissions("permissions")? {
                Some(list) => list,
                None => vec![
                    Permission::single(
                        &get.text("protocol")?,
                        get.integer("from_port")?,
                        get.integer("to_port")?,
                        &get.text("cidr")?,
                    )
                    .map_err(|reason| get.invalid("cidr", reason))?,
                ],
            };
            if permissions.is_empty() {
                return Err(get.invalid("permissions", "nothing to revoke".into()));
            }
            Request::Ec2RevokeIngress {
                group_id,
                permissions,
            }
        }
        ActionKind::Ec2EnforceSecurityGroup => Request::Ec2EnforceSecurityGroup {
            group_id: get.text("group_id")?,
            required: get.permissions("required")?,
        },
        ActionKind::S3MakeObjectPrivate => Request::S3MakeObjectPrivate {
            bucket: get.text("bucket")?,
            key: get.text("key")?,
        },
        ActionKind::S3BlockPublicAccess => Request::S3BlockPublicAccess {
            bucket: get.text("bucket")?,
        },
        ActionKind::IamDeactivateAccessKey => Request::IamDeactivateAccessKey {
            access_key_id: get.text("access_key_id")?,
            user_name: get.optional_text("user_name"),
        },
        ActionKind::IamSummarizeKeyActivity => {
            let hours = get.integer("hours")?;
            if !(1..=24 * 90).contains(&hours) {
                return Err(get.invalid("hours", format!("{hours} is not within 1..=2160")));
            }
            let mut regions = get.text_list("regions")?;
            regions.sort();
            regions.dedup();
            Request::IamSummarizeKeyActivity {
                access_key_id: get.text("access_key_id")?,
                hours: hours as u32,
                regions,
            }
        }
        ActionKind::Ec2TagResource => {
            let tags = get.text_map("tags")?;
            if tags.is_empty() {
                return Err(ActionError::Missing {
                    action,
                    param: "tags",
                });
            }
            Request::Ec2TagResource {
                resource_ids: get.text_list("resource_ids")?,
                tags,
            }
        }
        ActionKind::Ec2StopInstance => Request::Ec2StopInstance {
            instance_ids: get.text_list("instance_ids")?,
        },
        ActionKind::InvokeWebhook => {
            let url = get.text("url")?;
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(get.invalid("url", format!("{url:?} is not an http(s) URL")));
            }
            Request::InvokeWebhook {
                url,
                secret_env: get.optional_text("secret_env"),
            }
        }
        ActionKind::Notify => Request::Notify {
            title: get.optional_text("title"),
            severity: get.optional_text("severity"),
        },
    })
}

struct Params<'a> {
    action: ActionKind,
    params: &'a Map<String, Value>,
}

impl Params<'_> {
    fn invalid(&self, param: &str, reason: String) -> ActionError {
        ActionError::Invalid {
            action: self.action,
            param: param.to_owned(),
            reason,
        }
    }

    fn optional_text(&self, name: &str) -> Option<String> {
        match self.params.get(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    }

    fn text(&self, name: &'static str) -> Result<String, ActionError> {
        self.optional_text(name).ok_or(ActionError::Missing {
            action: self.action,
            param: name,
        })
    }

    fn integer(&self, name: &'static str) -> Result<i64, ActionError> {
        match self.params.get(name) {
            Some(Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| self.invalid(name, format!("{n} is not an integer"))),
            Some(Value::String(s)) if !s.trim().is_empty() => s
                .trim()
                .parse()
                .map_err(|_| self.invalid(name, format!("{s:?} is not an integer"))),
            _ => Err(ActionError::Missing {
                action: self.action,
                param: name,
            }),
        }
    }

    fn text_list(&self, name: &'static str) -> Result<Vec<String>, ActionError> {
        let list: Vec<String> = match self.params.get(name) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(Value::String(s)) => s
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        if list.is_empty() {
            return Err(ActionError::Missing {
                action: self.action,
                param: name,
            });
        }
        Ok(list)
    }

    fn text_map(&self, name: &'static str) -> Result<Vec<(String, String)>, ActionError> {
        match self.params.get(name) {
            Some(Value::Object(map)) => Ok(map
                .iter()
                .map(|(k, v)| {
                    let v = v
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string());
                    (k.clone(), v)
                })
                .collect()),
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(other) => Err(self.invalid(name, format!("expected a map, got {other}"))),
        }
    }

    fn permissions(&self, name: &str) -> Result<Option<Vec<Permission>>, ActionError> {
        match self.params.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => serde_json::from_value::<Vec<Permission>>(value.clone())
                .map_err(|e| self.invalid(name, e.to_string()))
                .and_then(|list| {
                    for p in &list {
                        p.validate().map_err(|reason| self.invalid(name, reason))?;
                    }
                    Ok(Some(list))
                }),
        }
    }
}

/// What kind of failure an AWS call (or request) met; retry policies name these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorClass {
    /// Throttled (`Throttling`, `RequestLimitExceeded`, HTTP 429, `SlowDown`, ...).
    Throttling,
    /// The service failed (HTTP 5xx, `InternalError`, `ServiceUnavailable`).
    Server,
    /// No answer: connection refused, reset, or timed out.
    Network,
    /// Not allowed (`AccessDenied`, `UnauthorizedOperation`): retrying cannot help.
    AccessDenied,
    /// The resource is not there.
    NotFound,
    /// Any other client error (bad parameters and the like).
    Client,
}

impl ErrorClass {
    /// The class of an AWS error code and HTTP status (`None` when there was no response).
    pub fn classify(code: Option<&str>, status: Option<u16>) -> ErrorClass {
        let code = code.unwrap_or("");
        const THROTTLING: &[&str] = &[
            "Throttling",
            "ThrottlingException",
            "ThrottledException",
            "RequestThrottledException",
            "TooManyRequestsException",
            "ProvisionedThroughputExceededException",
            "TransactionInProgressException",
            "RequestLimitExceeded",
            "BandwidthLimitExceeded",
            "LimitExceededException",
            "RequestThrottled",
            "SlowDown",
            "PriorRequestNotComplete",
            "EC2ThrottledException",
        ];
        const DENIED: &[&str] = &[
            "AccessDenied",
            "AccessDeniedException",
            "UnauthorizedOperation",
            "UnauthorizedAccess",
            "AuthFailure",
            "InvalidClientTokenId",
            "ExpiredToken",
            "SignatureDoesNotMatch",
        ];
        if THROTTLING.contains(&code) || status == Some(429) {
            ErrorClass::Throttling
        } else if DENIED.contains(&code) || status == Some(403) {
            ErrorClass::AccessDenied
        } else if code.ends_with(".NotFound")
            || code.starts_with("NoSuch")
            || code == "NotFound"
            || status == Some(404)
        {
            ErrorClass::NotFound
        } else if matches!(
            code,
            "InternalError" | "InternalFailure" | "ServiceUnavailable" | "Unavailable"
        ) || status.is_some_and(|s| s >= 500)
        {
            ErrorClass::Server
        } else if status.is_none() && code.is_empty() {
            ErrorClass::Network
        } else {
            ErrorClass::Client
        }
    }

    /// Its name in retry policies.
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Throttling => "throttling",
            ErrorClass::Server => "server",
            ErrorClass::Network => "network",
            ErrorClass::AccessDenied => "access-denied",
            ErrorClass::NotFound => "not-found",
            ErrorClass::Client => "client",
        }
    }

    /// The class of a name.
    pub fn from_name(name: &str) -> Option<ErrorClass> {
        [
            ErrorClass::Throttling,
            ErrorClass::Server,
            ErrorClass::Network,
            ErrorClass::AccessDenied,
            ErrorClass::NotFound,
            ErrorClass::Client,
        ]
        .into_iter()
        .find(|c| c.name() == name)
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn names_round_trip() {
        for kind in ActionKind::ALL {
            assert_eq!(ActionKind::from_name(kind.name()), Some(kind));
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, json!(kind.name()));
        }
        assert_eq!(ActionKind::from_name("rm-rf"), None);
    }

    #[test]
    fn revoke_ingress_from_one_item() {
        let req = plan(
            ActionKind::Ec2RevokeIngress,
            &params(json!({"group_id": "sg-1", "protocol": "tcp", "from_port": "22", "to_port": "22", "cidr": "0.0.0.0/0"})),
        )
        .unwrap();
        assert_eq!(
            req.calls()[1],
            "ec2:RevokeSecurityGroupIngress GroupId=sg-1 IpPermissions=[tcp 22-22 from 0.0.0.0/0] (those of them the group has)"
        );
        let v6 = plan(
            ActionKind::Ec2RevokeIngress,
            &params(json!({"group_id": "sg-1", "protocol": "-1", "from_port": -1, "to_port": -1, "cidr": "::/0"})),
        )
        .unwrap();
        let Request::Ec2RevokeIngress { permissions, .. } = v6 else {
            panic!()
        };
        assert_eq!(permissions[0].ipv6_ranges, ["::/0"]);
        assert!(permissions[0].ip_ranges.is_empty());
    }

    #[test]
    fn explicit_permissions_win_and_are_checked() {
        let req = plan(
            ActionKind::Ec2RevokeIngress,
            &params(json!({"group_id": "sg-1", "permissions": [{"protocol": "tcp", "from_port": 22, "to_port": 22, "ip_ranges": ["0.0.0.0/0"]}]})),
        )
        .unwrap();
        assert_eq!(req.resource(), "sg-1");
        let bad = plan(
            ActionKind::Ec2RevokeIngress,
            &params(json!({"group_id": "sg-1", "permissions": [{"protocol": "tcp", "from_port": 22, "to_port": 22, "ip_ranges": ["not-a-cidr"]}]})),
        )
        .unwrap_err();
        assert!(bad.to_string().contains("not-a-cidr"), "{bad}");
    }

    #[test]
    fn missing_and_bad_params_are_named() {
        let err = plan(
            ActionKind::S3MakeObjectPrivate,
            &params(json!({"bucket": "b", "key": " "})),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "action s3-make-object-private: parameter key is empty"
        );
        let err = plan(
            ActionKind::IamSummarizeKeyActivity,
            &params(json!({"access_key_id": "AKIA", "hours": "x"})),
        )
        .unwrap_err();
        assert!(err.to_string().contains("\"x\" is not an integer"), "{err}");
        let err =
            check_param_names(ActionKind::S3BlockPublicAccess, ["bucket", "acl"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("no parameter \"acl\"; it takes: bucket"),
            "{err}"
        );
        let err = plan(
            ActionKind::InvokeWebhook,
            &params(json!({"url": "file:///etc/passwd"})),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not an http(s) URL"), "{err}");
    }

    #[test]
    fn key_activity_reads_each_region_once() {
        let req = plan(
            ActionKind::IamSummarizeKeyActivity,
            &params(json!({"access_key_id": "AKIA1", "hours": 6, "regions": "us-east-1,eu-west-1,us-east-1"})),
        )
        .unwrap();
        assert_eq!(
            req,
            Request::IamSummarizeKeyActivity {
                access_key_id: "AKIA1".into(),
                hours: 6,
                regions: vec!["eu-west-1".into(), "us-east-1".into()],
            }
        );
        assert!(req.calls()[0].ends_with("over the last 6 h in eu-west-1, us-east-1"));
    }

    #[test]
    fn lists_accept_strings_and_arrays() {
        let a = plan(
            ActionKind::Ec2StopInstance,
            &params(json!({"instance_ids": "i-1, i-2"})),
        )
        .unwrap();
        let b = plan(
            ActionKind::Ec2StopInstance,
            &params(json!({"instance_ids": ["i-1", "i-2"]})),
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.resource(), "i-1,i-2");
        assert!(
            plan(
                ActionKind::Ec2StopInstance,
                &params(json!({"instance_ids": ""}))
            )
            .is_err()
        );
    }

    #[test]
    fn every_action_has_a_default_or_documented_params_and_policy() {
        for kind in ActionKind::ALL {
            for spec in kind.params() {
                assert!(!spec.help.is_empty(), "{kind} {}", spec.name);
            }
            if kind.mutates() {
                assert!(!kind.iam_actions().is_empty(), "{kind}");
            }
        }
    }

    #[test]
    fn error_classes() {
        use ErrorClass::*;
        let cases: &[(Option<&str>, Option<u16>, ErrorClass)] = &[
            (Some("RequestLimitExceeded"), Some(503), Throttling),
            (Some("Throttling"), Some(400), Throttling),
            (None, Some(429), Throttling),
            (Some("AccessDenied"), Some(403), AccessDenied),
            (Some("UnauthorizedOperation"), Some(400), AccessDenied),
            (Some("InvalidGroup.NotFound"), Some(400), NotFound),
            (Some("NoSuchKey"), Some(404), NotFound),
            (Some("InternalError"), Some(500), Server),
            (None, Some(502), Server),
            (None, None, Network),
            (Some("InvalidParameterValue"), Some(400), Client),
        ];
        for (code, status, want) in cases {
            assert_eq!(
                ErrorClass::classify(*code, *status),
                *want,
                "{code:?} {status:?}"
            );
        }
        for class in [
            "throttling",
            "server",
            "network",
            "access-denied",
            "not-found",
            "client",
        ] {
            assert_eq!(ErrorClass::from_name(class).unwrap().name(), class);
        }
    }
}
