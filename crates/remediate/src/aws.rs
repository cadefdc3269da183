//! The AWS calls behind each action, through the AWS SDK for Rust.
//!
//! Clients make one attempt per call (the SDK's own retries are off): the workflow's retry
//! policy decides what is retried, and every attempt is audited. Each call carries the
//! `app/trailwatch-remediation` user agent, so CloudTrail shows the change was ours.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use trailwatch_actions::acl::{self, Grant};
use trailwatch_actions::{ErrorClass, Permission, Request, permissions};

use crate::config::AwsSettings;
use crate::guard::APP_NAME;

/// Why a call failed, classified for retry policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    /// The class.
    pub class: ErrorClass,
    /// The AWS error code, when there was one.
    pub code: Option<String>,
    /// What happened.
    pub message: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{code} ({}): {}", self.class, self.message),
            None => write!(f, "{}: {}", self.class, self.message),
        }
    }
}

fn call_error<E, R>(
    op: &str,
    err: aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpStatus,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    let status = err.raw_response().map(HttpStatus::status_code);
    let (code, message) = match &err {
        SdkError::ServiceError(e) => (
            e.err().code().map(str::to_owned),
            e.err().message().unwrap_or("").to_owned(),
        ),
        SdkError::TimeoutError(_) => (None, "timed out".to_owned()),
        SdkError::DispatchFailure(e) => (None, format!("dispatch failure: {e:?}")),
        other => (
            other.code().map(str::to_owned),
            aws_smithy_types::error::display::DisplayErrorContext(other).to_string(),
        ),
    };
    let class = if matches!(
        err,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_)
    ) {
        ErrorClass::Network
    } else {
        ErrorClass::classify(code.as_deref(), status)
    };
    CallError {
        class,
        code,
        message: format!("{op}: {message}"),
    }
}

/// The HTTP status of a raw response.
pub trait HttpStatus {
    /// The status code.
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// LookupEvents serves 2 requests/s per account and region and 50 events a page: a summary
/// reads at most this many pages per region, and says so when there were more.
const LOOKUP_PAGES: usize = 20;

/// What LookupEvents returned over all regions read.
#[derive(Default)]
struct Lookup {
    records: Vec<Value>,
    /// Events whose CloudTrailEvent did not parse: counted, never dropped silently.
    unreadable: usize,
    /// Regions with more pages than were read.
    truncated: Vec<String>,
}

/// SDK configuration per account and region, built once.
#[derive(Debug)]
pub struct Aws {
    settings: AwsSettings,
    credentials: Option<SharedCredentialsProvider>,
    configs: Mutex<HashMap<(String, String), aws_config::SdkConfig>>,
}

/// The clients one action needs.
struct Clients {
    conf: aws_config::SdkConfig,
    path_style: bool,
}

impl Clients {
    fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.conf)
    }
    fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.conf)
    }
    fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.conf)
            .force_path_style(self.path_style)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }
    fn cloudtrail(&self) -> aws_sdk_cloudtrail::Client {
        aws_sdk_cloudtrail::Client::new(&self.conf)
    }
}

impl Aws {
    /// From the `remediation.aws` settings (credentials from the standard chain).
    pub fn new(settings: AwsSettings) -> Aws {
        Aws {
            settings,
            credentials: None,
            configs: Mutex::new(HashMap::new()),
        }
    }

    /// With these base credentials instead of the standard chain (an embedding program
    /// that has its own, or tests against an emulator).
    pub fn with_credentials(mut self, credentials: SharedCredentialsProvider) -> Aws {
        self.credentials = Some(credentials);
        self
    }

    async fn base(&self, region: &str) -> aws_config::SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()))
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .connect_timeout(Duration::from_secs(5))
                    .build(),
            )
            .app_name(aws_config::AppName::new(APP_NAME).expect("a valid app name"));
        if let Some(url) = &self.settings.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(profile) = &self.settings.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(credentials) = &self.credentials {
            loader = loader.credentials_provider(credentials.clone());
        }
        loader.load().await
    }

    async fn clients(&self, account: &str, region: &str) -> Clients {
        let region = if region.is_empty() {
            "us-east-1"
        } else {
            region
        };
        let key = (account.to_owned(), region.to_owned());
        let mut cache = self.configs.lock().await;
        if !cache.contains_key(&key) {
            let base = self.base(region).await;
            let conf = match &self.settings.role_arn {
                Some(template) => {
                    let role = template.replace("{account}", account);
                    let provider = aws_config::sts::AssumeRoleProvider::builder(role)
                        .session_name(APP_NAME)
                        .configure(&base)
                        .build()
                        .await;
                    base.into_builder()
                        .credentials_provider(SharedCredentialsProvider::new(provider))
                        .build()
                }
                None => base,
            };
            cache.insert(key.clone(), conf);
        }
        Clients {
            conf: cache[&key].clone(),
            path_style: self.settings.endpoint_url.is_some(),
        }
    }

    /// Who trailwatch is (STS GetCallerIdentity), for the self-loop guard.
    pub async fn caller_arn(&self) -> Result<String, CallError> {
        let conf = self.base("us-east-1").await;
        let out = aws_sdk_sts::Client::new(&conf)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| call_error("sts:GetCallerIdentity", e))?;
        Ok(out.arn().unwrap_or_default().to_owned())
    }

    /// The resource's tag value for `key`, if it has that tag (the ignore-tag guard).
    pub async fn resource_tag(
        &self,
        account: &str,
        region: &str,
        request: &Request,
        key: &str,
    ) -> Result<Option<String>, CallError> {
        let c = self.clients(account, region).await;
        let ec2_ids: Vec<String> = match request {
            Request::Ec2RevokeIngress { group_id, .. }
            | Request::Ec2EnforceSecurityGroup { group_id, .. } => vec![group_id.clone()],
            Request::Ec2TagResource { resource_ids, .. } => resource_ids.clone(),
            Request::Ec2StopInstance { instance_ids } => instance_ids.clone(),
            Request::S3MakeObjectPrivate { bucket, .. }
            | Request::S3BlockPublicAccess { bucket } => {
                return match c.s3().get_bucket_tagging().bucket(bucket).send().await {
                    Ok(out) => Ok(out
                        .tag_set()
                        .iter()
                        .find(|t| t.key() == key)
                        .map(|t| t.value().to_owned())),
                    Err(e) => {
                        let e = call_error("s3:GetBucketTagging", e);
                        // A bucket without tags answers NoSuchTagSet.
                        if e.code.as_deref() == Some("NoSuchTagSet") {
                            Ok(None)
                        } else {
                            Err(e)
                        }
                    }
                };
            }
            Request::IamDeactivateAccessKey {
                access_key_id,
                user_name,
            } => {
                let user = match user_name {
                    Some(u) => u.clone(),
                    None => match self.key_user(&c, access_key_id).await? {
                        Some(u) => u,
                        None => return Ok(None),
                    },
                };
                let out = c
                    .iam()
                    .list_user_tags()
                    .user_name(user)
                    .send()
                    .await
                    .map_err(|e| call_error("iam:ListUserTags", e))?;
                return Ok(out
                    .tags()
                    .iter()
                    .find(|t| t.key() == key)
                    .map(|t| t.value().to_owned()));
            }
            _ => return Ok(None),
        };
        let filter = aws_sdk_ec2::types::Filter::builder()
            .name("resource-id")
            .set_values(Some(ec2_ids))
            .build();
        let key_filter = aws_sdk_ec2::types::Filter::builder()
            .name("key")
            .values(key)
            .build();
        let out = c
            .ec2()
            .describe_tags()
            .filters(filter)
            .filters(key_filter)
            .send()
            .await
            .map_err(|e| call_error("ec2:DescribeTags", e))?;
        Ok(out
            .tags()
            .iter()
            .find(|t| t.key() == Some(key))
            .map(|t| t.value().unwrap_or_default().to_owned()))
    }

    async fn key_user(
        &self,
        c: &Clients,
        access_key_id: &str,
    ) -> Result<Option<String>, CallError> {
        let out = c
            .iam()
            .get_access_key_last_used()
            .access_key_id(access_key_id)
            .send()
            .await
            .map_err(|e| call_error("iam:GetAccessKeyLastUsed", e))?;
        Ok(out.user_name().map(str::to_owned))
    }

    /// Current ingress of a group, as permissions over IP ranges (group and prefix-list
    /// references are left alone: no action touches them).
    async fn ingress(&self, c: &Clients, group_id: &str) -> Result<Vec<Permission>, CallError> {
        let out = c
            .ec2()
            .describe_security_groups()
            .group_ids(group_id)
            .send()
            .await
            .map_err(|e| call_error("ec2:DescribeSecurityGroups", e))?;
        let Some(group) = out.security_groups().first() else {
            return Err(CallError {
                class: ErrorClass::NotFound,
                code: Some("InvalidGroup.NotFound".into()),
                message: format!("ec2:DescribeSecurityGroups: no group {group_id}"),
            });
        };
        Ok(group
            .ip_permissions()
            .iter()
            .map(|p| {
                Permission {
                    protocol: p.ip_protocol().unwrap_or("-1").to_owned(),
                    from_port: p.from_port().map(i64::from).unwrap_or(-1),
                    to_port: p.to_port().map(i64::from).unwrap_or(-1),
                    ip_ranges: p
                        .ip_ranges()
                        .iter()
                        .filter_map(|r| r.cidr_ip().map(str::to_owned))
                        .collect(),
                    ipv6_ranges: p
                        .ipv6_ranges()
                        .iter()
                        .filter_map(|r| r.cidr_ipv6().map(str::to_owned))
                        .collect(),
                }
                .normalised()
            })
            .filter(|p| !(p.ip_ranges.is_empty() && p.ipv6_ranges.is_empty()))
            .collect())
    }

    /// Runs one request. `baselines` gives `ec2-enforce-security-group` its required
    /// permissions when the rule gave none; `archive` is where activity summaries look first.
    pub async fn execute(
        &self,
        account: &str,
        region: &str,
        request: &Request,
        baselines: &std::collections::BTreeMap<String, Vec<Permission>>,
        archive: Option<&std::path::Path>,
    ) -> Result<Value, CallError> {
        let c = self.clients(account, region).await;
        match request {
            Request::Ec2RevokeIngress {
                group_id,
                permissions: wanted,
            } => {
                let current = self.ingress(&c, group_id).await?;
                // Revoke what the group has of the requested permissions: exactly those,
                // and a repeat (after a crash or a retry) finds nothing left to do.
                let present = permissions::intersect(&current, wanted);
                if present.is_empty() {
                    return Ok(
                        json!({"revoked": [], "note": "none of the permissions is on the group any more"}),
                    );
                }
                revoke_ingress(&c, group_id, &present).await?;
                Ok(json!({"revoked": present}))
            }
            Request::Ec2EnforceSecurityGroup { group_id, required } => {
                let required = match required {
                    Some(r) => r.clone(),
                    None => baselines.get(group_id).cloned().ok_or_else(|| CallError {
                        class: ErrorClass::Client,
                        code: None,
                        message: format!("no required permissions for {group_id}: set remediation.security_groups.{group_id} or the step's `required`"),
                    })?,
                };
                let current = self.ingress(&c, group_id).await?;
                let (add, revoke) = permissions::diff(&current, &required);
                if !add.is_empty() {
                    c.ec2()
                        .authorize_security_group_ingress()
                        .group_id(group_id)
                        .set_ip_permissions(Some(add.iter().map(sdk_permission).collect()))
                        .send()
                        .await
                        .map_err(|e| call_error("ec2:AuthorizeSecurityGroupIngress", e))?;
                }
                if !revoke.is_empty() {
                    revoke_ingress(&c, group_id, &revoke).await?;
                }
                Ok(json!({"authorized": add, "revoked": revoke}))
            }
            Request::S3MakeObjectPrivate { bucket, key } => {
                let s3 = c.s3();
                let out = s3
                    .get_object_acl()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| call_error("s3:GetObjectAcl", e))?;
                let owner = out.owner().and_then(|o| o.id()).map(str::to_owned);
                let grants: Vec<Grant> = out
                    .grants()
                    .iter()
                    .map(|g| Grant {
                        grantee_id: g.grantee().and_then(|x| x.id()).map(str::to_owned),
                        grantee_uri: g.grantee().and_then(|x| x.uri()).map(str::to_owned),
                        permission: g
                            .permission()
                            .map(|p| p.as_str().to_owned())
                            .unwrap_or_default(),
                    })
                    .collect();
                let before: Vec<Value> = grants
                    .iter()
                    .map(|g| json!({"grantee": g.grantee_uri.clone().or(g.grantee_id.clone()), "permission": g.permission}))
                    .collect();
                if acl::is_private(owner.as_deref(), &grants) {
                    return Ok(
                        json!({"changed": false, "note": "the object was already private", "grants": before}),
                    );
                }
                s3.put_object_acl()
                    .bucket(bucket)
                    .key(key)
                    .acl(aws_sdk_s3::types::ObjectCannedAcl::Private)
                    .send()
                    .await
                    .map_err(|e| call_error("s3:PutObjectAcl", e))?;
                Ok(
                    json!({"changed": true, "grants_before": before, "public_grants": acl::public_grants(&grants).len()}),
                )
            }
            Request::S3BlockPublicAccess { bucket } => {
                let block = aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build();
                c.s3()
                    .put_public_access_block()
                    .bucket(bucket)
                    .public_access_block_configuration(block)
                    .send()
                    .await
                    .map_err(|e| call_error("s3:PutPublicAccessBlock", e))?;
                Ok(json!({"bucket": bucket, "block_public_access": "all four settings on"}))
            }
            Request::IamDeactivateAccessKey {
                access_key_id,
                user_name,
            } => {
                let user = match user_name {
                    Some(u) => Some(u.clone()),
                    None => self.key_user(&c, access_key_id).await?,
                };
                c.iam()
                    .update_access_key()
                    .access_key_id(access_key_id)
                    .set_user_name(user.clone())
                    .status(aws_sdk_iam::types::StatusType::Inactive)
                    .send()
                    .await
                    .map_err(|e| call_error("iam:UpdateAccessKey", e))?;
                Ok(json!({"access_key_id": access_key_id, "user_name": user, "status": "Inactive"}))
            }
            Request::IamSummarizeKeyActivity {
                access_key_id,
                hours,
                regions,
            } => {
                let since = chrono::Utc::now() - chrono::Duration::hours(i64::from(*hours));
                let mut found = Lookup::default();
                let source = match archive {
                    Some(dir) => {
                        found.records = crate::activity::from_archive(dir, access_key_id, since);
                        "archive".to_owned()
                    }
                    None => {
                        for r in regions {
                            let c = self.clients(account, r).await;
                            self.lookup_events(&c, r, access_key_id, since, &mut found)
                                .await?;
                        }
                        format!("cloudtrail:LookupEvents in {}", regions.join(", "))
                    }
                };
                let summary = crate::activity::summarize(&found.records);
                let mut text =
                    crate::activity::render(access_key_id, *hours, &summary, found.records.len());
                if !found.truncated.is_empty() {
                    text.push_str(&format!(
                        "Only the newest {} events per region were read in {}: there are more.\n",
                        LOOKUP_PAGES * 50,
                        found.truncated.join(", ")
                    ));
                }
                if found.unreadable > 0 {
                    text.push_str(&format!(
                        "{} events came back without a readable CloudTrail record and are not counted above.\n",
                        found.unreadable
                    ));
                }
                Ok(json!({
                    "access_key_id": access_key_id,
                    "hours": hours,
                    "source": source,
                    "events": found.records.len(),
                    "truncated_regions": found.truncated,
                    "unreadable_events": found.unreadable,
                    "by_api": summary,
                    "text": text,
                }))
            }
            Request::Ec2TagResource { resource_ids, tags } => {
                let mut call = c
                    .ec2()
                    .create_tags()
                    .set_resources(Some(resource_ids.clone()));
                for (k, v) in tags {
                    call = call.tags(aws_sdk_ec2::types::Tag::builder().key(k).value(v).build());
                }
                call.send()
                    .await
                    .map_err(|e| call_error("ec2:CreateTags", e))?;
                Ok(
                    json!({"tagged": resource_ids, "tags": tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>()}),
                )
            }
            Request::Ec2StopInstance { instance_ids } => {
                let out = c
                    .ec2()
                    .stop_instances()
                    .set_instance_ids(Some(instance_ids.clone()))
                    .send()
                    .await
                    .map_err(|e| call_error("ec2:StopInstances", e))?;
                let states: Vec<Value> = out
                    .stopping_instances()
                    .iter()
                    .map(|s| json!({"instance_id": s.instance_id(), "state": s.current_state().and_then(|c| c.name()).map(|n| n.as_str().to_owned())}))
                    .collect();
                Ok(json!({"stopping": states}))
            }
            Request::InvokeWebhook { .. } | Request::Notify { .. } => Err(CallError {
                class: ErrorClass::Client,
                code: None,
                message: "not an AWS action".into(),
            }),
        }
    }

    /// Reads one region's LookupEvents for the key into `found`.
    async fn lookup_events(
        &self,
        c: &Clients,
        region: &str,
        access_key_id: &str,
        since: chrono::DateTime<chrono::Utc>,
        found: &mut Lookup,
    ) -> Result<(), CallError> {
        let attribute = aws_sdk_cloudtrail::types::LookupAttribute::builder()
            .attribute_key(aws_sdk_cloudtrail::types::LookupAttributeKey::AccessKeyId)
            .attribute_value(access_key_id)
            .build()
            .map_err(|e| CallError {
                class: ErrorClass::Client,
                code: None,
                message: e.to_string(),
            })?;
        let mut token: Option<String> = None;
        for _ in 0..LOOKUP_PAGES {
            let page = c
                .cloudtrail()
                .lookup_events()
                .lookup_attributes(attribute.clone())
                .start_time(aws_smithy_types::DateTime::from_secs(since.timestamp()))
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| call_error("cloudtrail:LookupEvents", e))?;
            for e in page.events() {
                match e
                    .cloud_trail_event()
                    .and_then(|s| serde_json::from_str(s).ok())
                {
                    Some(record) => found.records.push(record),
                    None => found.unreadable += 1,
                }
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(());
            }
        }
        found.truncated.push(region.to_owned());
        Ok(())
    }
}

async fn revoke_ingress(
    c: &Clients,
    group_id: &str,
    permissions: &[Permission],
) -> Result<(), CallError> {
    c.ec2()
        .revoke_security_group_ingress()
        .group_id(group_id)
        .set_ip_permissions(Some(permissions.iter().map(sdk_permission).collect()))
        .send()
        .await
        .map_err(|e| call_error("ec2:RevokeSecurityGroupIngress", e))?;
    Ok(())
}

fn sdk_permission(p: &Permission) -> aws_sdk_ec2::types::IpPermission {
    let mut b = aws_sdk_ec2::types::IpPermission::builder().ip_protocol(&p.protocol);
    if p.protocol != "-1" {
        b = b.from_port(p.from_port as i32).to_port(p.to_port as i32);
    }
    for r in &p.ip_ranges {
        b = b.ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip(r).build());
    }
    for r in &p.ipv6_ranges {
        b = b.ipv6_ranges(
            aws_sdk_ec2::types::Ipv6Range::builder()
                .cidr_ipv6(r)
                .build(),
        );
    }
    b.build()
}
