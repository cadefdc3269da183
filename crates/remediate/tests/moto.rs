//! Remediation round trips against a real moto server: make the risky change through the
//! SDK, hand trailwatch the CloudTrail record AWS writes for that call, run the built-in
//! rule's plan, and check the account through the API afterwards.
//!
//! Needs the test venv (`scripts/test-deps.sh`); every call goes through a [`FaultProxy`] so
//! tests can make AWS throttle or deny a given API.

use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use serde_json::{Value, json};
use trailwatch_alert::Alert;
use trailwatch_remediate::{JobStatus, RemediationConfig, Remediator, Store};
use trailwatch_rules::testing::event_from_value;
use trailwatch_rules::{Candidate, EvalScratch, RuleSet, RuleSource, builtin_sources};
use trailwatch_testkit::aws::{group_ingress, group_with_ingress};
use trailwatch_testkit::{Fault, FaultProxy, MotoServer, Recorder};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
/// Who moto says the caller is (STS GetCallerIdentity).
const MOTO_CALLER: &str = "arn:aws:sts::123456789012:user/moto";

/// Collects what `notify` steps send.
#[derive(Default)]
struct Inbox(Mutex<Vec<Alert>>);

impl trailwatch_remediate::Notifier for Inbox {
    fn notify(&self, alert: Alert) -> Result<(), String> {
        self.0.lock().unwrap().push(alert);
        Ok(())
    }
}

impl Inbox {
    fn alerts(&self) -> Vec<Alert> {
        self.0.lock().unwrap().clone()
    }
}

struct Harness {
    _moto: MotoServer,
    proxy: FaultProxy,
    /// Straight to moto: set-up and checks never go through the fault proxy.
    sdk: SdkConfig,
    dir: tempfile::TempDir,
    rules: RuleSet,
    config: trailwatch_config::Config,
    inbox: Arc<Inbox>,
}

impl Harness {
    /// moto, a proxy in front of it, and the built-in rules (plus `extra_rules`) under a
    /// config whose `remediation:` section is `remediation` (`{endpoint}` is the proxy).
    async fn start(remediation: &str, extra_rules: &[&str]) -> Harness {
        let moto = MotoServer::start().expect("moto server");
        let proxy = FaultProxy::start(&moto.endpoint_url()).expect("fault proxy");
        let sdk = trailwatch_testkit::aws::sdk(&moto).await;
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "required_tags: [CostCenter, Team]\nremediation:\n  aws: {{endpoint_url: \"{}\"}}\n  archive: {}\n{}",
            proxy.endpoint_url(),
            dir.path().join("archive").display(),
            remediation
        );
        let config = trailwatch_config::parse("test-config.yaml", &text)
            .unwrap_or_else(|e| panic!("config: {e}\n{text}"));
        let mut sources = builtin_sources();
        for (i, rule) in extra_rules.iter().enumerate() {
            sources.push(RuleSource::new(format!("test-rule-{i}.yaml"), *rule));
        }
        let rules = RuleSet::compile(&sources, &config).unwrap_or_else(|e| panic!("rules: {e}"));
        Harness {
            _moto: moto,
            proxy,
            sdk,
            dir,
            rules,
            config,
            inbox: Arc::new(Inbox::default()),
        }
    }

    async fn remediator(&self) -> Remediator {
        let config = RemediationConfig::from_section(self.config.section("remediation"))
            .unwrap_or_else(|e| panic!("remediation config: {e}"));
        let store = Store::open(&self.dir.path().join("remediation.sqlite")).unwrap();
        let creds = Credentials::new("testing", "testing", None, None, "static");
        let mut r = Remediator::new(
            config,
            store,
            None,
            Some(self.inbox.clone() as Arc<dyn trailwatch_remediate::Notifier>),
        )
        .with_credentials(SharedCredentialsProvider::new(creds));
        assert_eq!(r.identify().await.as_deref(), Some(MOTO_CALLER));
        r
    }

    fn status(&self, job: &str) -> JobStatus {
        self.store()
            .job(job)
            .unwrap()
            .expect("the job exists")
            .status
    }

    fn store(&self) -> Store {
        Store::open(&self.dir.path().join("remediation.sqlite")).unwrap()
    }

    /// The alerts (with their plans) the rules raise for one record or envelope.
    fn alerts(&self, event: &Value) -> Vec<Alert> {
        let event = event_from_value(event, "test-event.json").unwrap();
        self.rules
            .evaluate(&event, &mut EvalScratch::default())
            .into_iter()
            .map(Candidate::into_alert)
            .filter(|a| a.remediation.is_some())
            .collect()
    }

    /// prepare → submit → run, as the service does; returns the alerts as delivered and
    /// each job's final status.
    async fn remediate(
        &self,
        rem: &Remediator,
        event: &Value,
    ) -> (Vec<Alert>, Vec<(String, JobStatus)>) {
        let mut alerts = self.alerts(event);
        assert!(!alerts.is_empty(), "no alert with a plan for {event}");
        for a in &mut alerts {
            rem.prepare(a);
        }
        rem.submit(&alerts).unwrap();
        let done = rem.run_until_idle().await.unwrap();
        (alerts, done)
    }

    fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.sdk)
    }

    fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.sdk)
    }

    fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    fn audit_statuses(&self, job: &str) -> Vec<String> {
        self.store()
            .audit_entries(Some(job))
            .unwrap()
            .into_iter()
            .map(|e| match e.step {
                Some(step) => format!("{step}:{}", e.status),
                None => e.status,
            })
            .collect()
    }
}

/// A CloudTrail record as AWS writes it for an IAM user's API call.
fn record(source: &str, name: &str, request: Value, response: Value, arn: &str) -> Value {
    let user = arn.rsplit('/').next().unwrap_or("alice");
    json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": arn,
            "accountId": ACCOUNT, "accessKeyId": "AKIAEXAMPLECALLER", "userName": user},
        "eventTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "eventSource": source,
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": request,
        "responseElements": response,
        "eventID": format!("ev-{}", fastrand::u64(..)),
        "readOnly": false,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": ACCOUNT,
    })
}

const ALICE: &str = "arn:aws:iam::123456789012:user/alice";

/// Creates a group and authorizes, in one call, tcp/22 from 0.0.0.0/0 and 10.0.0.0/8 plus
/// tcp/443 from 10.1.0.0/16; returns the group id and the CloudTrail record of that call.
async fn open_group(h: &Harness, name: &str, caller: &str) -> (String, Value) {
    let group = group_with_ingress(
        &h.ec2(),
        name,
        &[(22, &["0.0.0.0/0", "10.0.0.0/8"]), (443, &["10.1.0.0/16"])],
    )
    .await;
    let event = record(
        "ec2.amazonaws.com",
        "AuthorizeSecurityGroupIngress",
        json!({"groupId": group, "ipPermissions": {"items": [
            {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
             "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}, {"cidrIp": "10.0.0.0/8"}]}},
            {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443,
             "ipRanges": {"items": [{"cidrIp": "10.1.0.0/16"}]}}]}}),
        json!({"_return": true}),
        caller,
    );
    (group, event)
}

async fn ingress(h: &Harness, group: &str) -> Vec<String> {
    group_ingress(&h.ec2(), group).await
}

/// The job id the plan of an alert was given.
fn job_of(alert: &Alert) -> String {
    alert
        .remediation
        .as_ref()
        .and_then(|r| r.job_id.clone())
        .expect("a prepared plan has a job id")
}

fn enforce(rule: &str) -> String {
    format!("  rules: {{{rule}: {{mode: enforce}}}}\n")
}

#[tokio::test]
async fn revoke_ingress_removes_exactly_the_open_permission() {
    let h = Harness::start(&enforce("ec2-security-group-ingress-open-to-world"), &[]).await;
    let rem = h.remediator().await;
    let (group, event) = open_group(&h, "web", ALICE).await;
    assert_eq!(
        ingress(&h, &group).await,
        [
            "tcp/22 0.0.0.0/0",
            "tcp/22 10.0.0.0/8",
            "tcp/443 10.1.0.0/16"
        ]
    );
    let (alerts, done) = h.remediate(&rem, &event).await;
    assert_eq!(alerts.len(), 1, "one open range, one alert");
    let plan = alerts[0].remediation.as_ref().unwrap();
    assert_eq!(plan.mode, "enforce");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].1, JobStatus::Succeeded);
    assert_eq!(
        ingress(&h, &group).await,
        ["tcp/22 10.0.0.0/8", "tcp/443 10.1.0.0/16"],
        "only tcp/22 from 0.0.0.0/0 is revoked"
    );
    let audit = h.audit_statuses(&done[0].0);
    assert_eq!(
        audit,
        [
            "planned",
            "queued",
            "started",
            "ec2-revoke-ingress:started",
            "ec2-revoke-ingress:succeeded",
            "succeeded"
        ]
    );
    let entries = h.store().audit_entries(Some(&done[0].0)).unwrap();
    let response = entries[4].response.as_ref().unwrap();
    assert_eq!(
        response["revoked"][0]["ip_ranges"],
        json!(["0.0.0.0/0"]),
        "{response}"
    );
    h.store().verify_audit().unwrap();

    // The same event again (a redelivery) is the same job: nothing runs twice.
    let (_, again) = h.remediate(&rem, &event).await;
    assert!(again.is_empty(), "{again:?}");
}

#[tokio::test]
async fn dry_run_changes_nothing_and_records_the_plan() {
    let h = Harness::start("", &[]).await;
    let rem = h.remediator().await;
    let (group, event) = open_group(&h, "web", ALICE).await;
    let (alerts, done) = h.remediate(&rem, &event).await;
    let plan = alerts[0].remediation.as_ref().unwrap();
    assert_eq!(plan.mode, "dry-run");
    assert!(done.is_empty(), "dry-run queues nothing: {done:?}");
    assert_eq!(
        ingress(&h, &group).await,
        [
            "tcp/22 0.0.0.0/0",
            "tcp/22 10.0.0.0/8",
            "tcp/443 10.1.0.0/16"
        ]
    );
    assert_eq!(h.proxy.calls("RevokeSecurityGroupIngress"), 0);
    assert_eq!(h.proxy.calls("DescribeSecurityGroups"), 0);
    let job = job_of(&alerts[0]);
    assert_eq!(h.audit_statuses(&job), ["planned", "dry-run"]);
    let entries = h.store().audit_entries(Some(&job)).unwrap();
    let request = entries[0].request.as_ref().unwrap();
    assert!(
        request["steps"][0]["calls"][1]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "ec2:RevokeSecurityGroupIngress GroupId={group} IpPermissions=[tcp 22-22 from 0.0.0.0/0]"
            )),
        "{request}"
    );
    assert_eq!(
        entries[0].rule_id,
        "ec2-security-group-ingress-open-to-world"
    );
    assert_eq!(h.status(&job), JobStatus::DryRun);
}

#[tokio::test]
async fn approval_is_needed_and_rejection_or_expiry_stops_it() {
    let h = Harness::start(
        "  mode: approve\n  approval: {expires: 1h, base_url: \"https://trailwatch.example.com\", secret_env: TRAILWATCH_TEST_APPROVAL_KEY_UNSET}\n",
        &[],
    )
    .await;
    let rem = h.remediator().await;
    let (group, event) = open_group(&h, "web", ALICE).await;
    let (alerts, done) = h.remediate(&rem, &event).await;
    assert!(done.is_empty(), "nothing runs before approval: {done:?}");
    let plan = alerts[0].remediation.as_ref().unwrap();
    assert_eq!(plan.mode, "approve");
    // No signing key in the environment: no links, the CLI approves.
    assert_eq!(plan.approve_url, None);
    let job = job_of(&alerts[0]);
    assert_eq!(h.status(&job), JobStatus::AwaitingApproval);
    assert_eq!(ingress(&h, &group).await.len(), 3);

    trailwatch_remediate::workflow::decide(&mut h.store(), &job, true, "carol").unwrap();
    let done = rem.run_until_idle().await.unwrap();
    assert_eq!(done, [(job.clone(), JobStatus::Succeeded)]);
    assert_eq!(
        ingress(&h, &group).await,
        ["tcp/22 10.0.0.0/8", "tcp/443 10.1.0.0/16"]
    );
    let entries = h.store().audit_entries(Some(&job)).unwrap();
    let approved = entries.iter().find(|e| e.status == "approved").unwrap();
    assert_eq!(approved.actor, "carol");
    // A decided job cannot be decided again.
    assert!(trailwatch_remediate::workflow::decide(&mut h.store(), &job, false, "dave").is_err());

    // A second group: rejected, so nothing changes.
    let (group2, event2) = open_group(&h, "db", ALICE).await;
    let (alerts2, _) = h.remediate(&rem, &event2).await;
    let job2 = job_of(&alerts2[0]);
    trailwatch_remediate::workflow::decide(&mut h.store(), &job2, false, "carol").unwrap();
    assert!(rem.run_until_idle().await.unwrap().is_empty());
    assert_eq!(ingress(&h, &group2).await.len(), 3);
    assert_eq!(h.status(&job2), JobStatus::Rejected);
}

#[tokio::test]
async fn approval_expires() {
    let h = Harness::start("  mode: approve\n  approval: {expires: 1s}\n", &[]).await;
    let rem = h.remediator().await;
    let (group, event) = open_group(&h, "web", ALICE).await;
    let (alerts, _) = h.remediate(&rem, &event).await;
    let job = job_of(&alerts[0]);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let err = trailwatch_remediate::workflow::decide(&mut h.store(), &job, true, "carol")
        .unwrap_err()
        .to_string();
    assert!(err.contains("expired"), "{err}");
    assert!(rem.run_until_idle().await.unwrap().is_empty());
    assert_eq!(ingress(&h, &group).await.len(), 3);
    assert_eq!(h.status(&job), JobStatus::Expired);
}

#[tokio::test]
async fn trailwatch_own_event_is_ignored() {
    let h = Harness::start(&enforce("ec2-security-group-ingress-open-to-world"), &[]).await;
    let rem = h.remediator().await;
    // The call came from moto's caller: the principal trailwatch itself runs as.
    let (group, event) = open_group(&h, "web", MOTO_CALLER).await;
    let (alerts, done) = h.remediate(&rem, &event).await;
    let plan = alerts[0].remediation.as_ref().unwrap();
    let why = plan.skipped.as_deref().unwrap_or_default();
    assert!(why.contains("trailwatch's own"), "{why}");
    assert!(done.is_empty());
    assert_eq!(ingress(&h, &group).await.len(), 3);
    assert_eq!(h.proxy.calls("RevokeSecurityGroupIngress"), 0);
    let job = job_of(&alerts[0]);
    assert_eq!(h.audit_statuses(&job), ["planned", "skipped"]);
}

#[tokio::test]
async fn throttling_is_retried_and_access_denied_is_not() {
    let h = Harness::start(&enforce("ec2-security-group-ingress-open-to-world"), &[]).await;
    let rem = h.remediator().await;
    let (group, event) = open_group(&h, "web", ALICE).await;
    h.proxy.fail(
        "RevokeSecurityGroupIngress",
        2,
        Fault::ec2(503, "RequestLimitExceeded", "Request limit exceeded."),
    );
    let (_, done) = h.remediate(&rem, &event).await;
    assert_eq!(done[0].1, JobStatus::Succeeded);
    assert_eq!(h.proxy.calls("RevokeSecurityGroupIngress"), 3);
    assert_eq!(ingress(&h, &group).await.len(), 2);
    let audit = h.audit_statuses(&done[0].0);
    assert_eq!(
        audit
            .iter()
            .filter(|s| *s == "ec2-revoke-ingress:retrying")
            .count(),
        2,
        "{audit:?}"
    );

    let (group2, event2) = open_group(&h, "db", ALICE).await;
    h.proxy.fail(
        "RevokeSecurityGroupIngress",
        5,
        Fault::ec2(
            403,
            "UnauthorizedOperation",
            "You are not authorized to perform this operation.",
        ),
    );
    let (_, done2) = h.remediate(&rem, &event2).await;
    assert_eq!(done2[0].1, JobStatus::Failed);
    assert_eq!(
        h.proxy.calls("RevokeSecurityGroupIngress"),
        4,
        "AccessDenied is tried once"
    );
    assert_eq!(ingress(&h, &group2).await.len(), 3);
    let entries = h.store().audit_entries(Some(&done2[0].0)).unwrap();
    let failed = entries
        .iter()
        .find(|e| e.status == "failed" && e.step.is_some())
        .unwrap();
    let reason = failed.reason.as_deref().unwrap();
    assert!(
        reason.contains("UnauthorizedOperation") && reason.contains("not retried"),
        "{reason}"
    );
}

#[tokio::test]
async fn public_object_is_made_private() {
    let h = Harness::start(&enforce("s3-object-made-public"), &[]).await;
    let rem = h.remediator().await;
    let s3 = h.s3();
    s3.create_bucket()
        .bucket("shared-docs")
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket("shared-docs")
        .key("reports/q3 draft.pdf")
        .acl(aws_sdk_s3::types::ObjectCannedAcl::PublicRead)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"%PDF-1.7"))
        .send()
        .await
        .unwrap();
    let public = |acl: &aws_sdk_s3::operation::get_object_acl::GetObjectAclOutput| {
        acl.grants().iter().any(|g| {
            g.grantee()
                .and_then(|x| x.uri())
                .is_some_and(|u| u.ends_with("/global/AllUsers"))
        })
    };
    let acl = s3
        .get_object_acl()
        .bucket("shared-docs")
        .key("reports/q3 draft.pdf")
        .send()
        .await
        .unwrap();
    assert!(public(&acl));
    let event = record(
        "s3.amazonaws.com",
        "PutObject",
        json!({"bucketName": "shared-docs", "Host": "shared-docs.s3.amazonaws.com",
               "key": "reports/q3 draft.pdf", "x-amz-acl": ["public-read"]}),
        Value::Null,
        ALICE,
    );
    let (_, done) = h.remediate(&rem, &event).await;
    assert_eq!(done[0].1, JobStatus::Succeeded);
    let acl = s3
        .get_object_acl()
        .bucket("shared-docs")
        .key("reports/q3 draft.pdf")
        .send()
        .await
        .unwrap();
    assert!(!public(&acl), "{acl:?}");
    let entries = h.store().audit_entries(Some(&done[0].0)).unwrap();
    let response = entries.iter().find_map(|e| e.response.clone()).unwrap();
    assert_eq!(response["changed"], json!(true), "{response}");

    // A later event for the now private object: the ACL is read first and nothing changes.
    let mut again = event.clone();
    again["eventID"] = json!("ev-again");
    let (alerts, done) = h.remediate(&rem, &again).await;
    assert_eq!(done[0].1, JobStatus::Succeeded);
    let job = job_of(&alerts[0]);
    let entries = h.store().audit_entries(Some(&job)).unwrap();
    let response = entries.iter().find_map(|e| e.response.clone()).unwrap();
    assert_eq!(response["changed"], json!(false), "{response}");
}

#[tokio::test]
async fn public_bucket_gets_all_four_public_access_blocks() {
    let h = Harness::start(&enforce("s3-bucket-made-public"), &[]).await;
    let rem = h.remediator().await;
    let s3 = h.s3();
    s3.create_bucket()
        .bucket("open-bucket")
        .send()
        .await
        .unwrap();
    s3.put_bucket_acl()
        .bucket("open-bucket")
        .acl(aws_sdk_s3::types::BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    let event = record(
        "s3.amazonaws.com",
        "PutBucketAcl",
        json!({"bucketName": "open-bucket", "Host": "open-bucket.s3.amazonaws.com", "acl": [""], "x-amz-acl": ["public-read"]}),
        Value::Null,
        ALICE,
    );
    let (_, done) = h.remediate(&rem, &event).await;
    assert_eq!(done[0].1, JobStatus::Succeeded);
    let pab = s3
        .get_public_access_block()
        .bucket("open-bucket")
        .send()
        .await
        .unwrap()
        .public_access_block_configuration
        .unwrap();
    assert_eq!(pab.block_public_acls(), Some(true));
    assert_eq!(pab.ignore_public_acls(), Some(true));
    assert_eq!(pab.block_public_policy(), Some(true));
    assert_eq!(pab.restrict_public_buckets(), Some(true));
}

/// A user with an access key; returns the key id.
async fn user_with_key(h: &Harness, user: &str) -> String {
    let iam = h.iam();
    iam.create_user().user_name(user).send().await.unwrap();
    iam.create_access_key()
        .user_name(user)
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap()
        .access_key_id
}

async fn key_status(h: &Harness, user: &str, key: &str) -> String {
    let keys = h
        .iam()
        .list_access_keys()
        .user_name(user)
        .send()
        .await
        .unwrap();
    keys.access_key_metadata()
        .iter()
        .find(|k| k.access_key_id() == Some(key))
        .and_then(|k| k.status())
        .map(|s| s.as_str().to_owned())
        .unwrap()
}

/// The AWS Health event AWS sends when it finds a key in public.
fn key_exposed(key: &str) -> Value {
    json!({
        "version": "0",
        "id": format!("health-{key}"),
        "detail-type": "AWS Health Event",
        "source": "aws.health",
        "account": ACCOUNT,
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": REGION,
        "resources": [],
        "detail": {
            "eventArn": "arn:aws:health:global::event/AWS_RISK_CREDENTIALS_EXPOSED_XXXX",
            "service": "RISK",
            "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED",
            "eventTypeCategory": "issue",
            "eventDescription": [{"language": "en_US", "latestDescription": format!("Your AWS Access Key {key} is exposed publicly on github.com.")}],
            "affectedEntities": [{"entityValue": key}]
        }
    })
}

/// Writes what the key did recently into the archive folder, as a CloudTrail log file.
fn archive_activity(h: &Harness, key: &str) {
    let dir = h
        .dir
        .path()
        .join("archive/AWSLogs/123456789012/CloudTrail/us-east-1");
    std::fs::create_dir_all(&dir).unwrap();
    let now = chrono::Utc::now();
    let mut records = Vec::new();
    for (i, (source, name, bucket)) in [
        ("s3.amazonaws.com", "ListBuckets", ""),
        ("s3.amazonaws.com", "GetObject", "payroll"),
        ("s3.amazonaws.com", "GetObject", "payroll"),
        ("iam.amazonaws.com", "CreateUser", ""),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = record(
            source,
            name,
            if bucket.is_empty() {
                json!({})
            } else {
                json!({"bucketName": bucket, "key": "2026.csv"})
            },
            Value::Null,
            "arn:aws:iam::123456789012:user/ci-bot",
        );
        r["userIdentity"]["accessKeyId"] = json!(key);
        r["eventTime"] = json!(
            (now - chrono::Duration::minutes(30 - i as i64))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        records.push(r);
    }
    std::fs::write(
        dir.join("123456789012_CloudTrail_us-east-1_activity.json"),
        serde_json::to_vec(&json!({"Records": records})).unwrap(),
    )
    .unwrap();
}

#[tokio::test]
async fn exposed_key_is_deactivated_summarized_and_reported() {
    let h = Harness::start(&enforce("iam-access-key-exposed"), &[]).await;
    let rem = h.remediator().await;
    let key = user_with_key(&h, "ci-bot").await;
    archive_activity(&h, &key);
    assert_eq!(key_status(&h, "ci-bot", &key).await, "Active");
    let (_, done) = h.remediate(&rem, &key_exposed(&key)).await;
    assert_eq!(
        done[0].1,
        JobStatus::Succeeded,
        "{:?}",
        h.audit_statuses(&done[0].0)
    );
    assert_eq!(key_status(&h, "ci-bot", &key).await, "Inactive");
    let sent = h.inbox.alerts();
    assert_eq!(sent.len(), 1, "one notification");
    let note = &sent[0];
    assert!(note.title.contains("deactivated"), "{}", note.title);
    assert_eq!(note.fields["remediation_outcome"], "succeeded");
    let activity = &note.fields["key_activity"];
    assert!(
        activity.contains("GetObject") && activity.contains("payroll"),
        "{activity}"
    );
    assert!(
        note.body
            .contains("deactivate (iam-deactivate-access-key): ok"),
        "{}",
        note.body
    );
    assert!(note.remediation.is_none());
    assert_eq!(
        h.audit_statuses(&done[0].0)
            .into_iter()
            .filter(|s| s.ends_with(":succeeded"))
            .collect::<Vec<_>>(),
        [
            "deactivate:succeeded",
            "summarize:succeeded",
            "notify:succeeded"
        ]
    );
}

#[tokio::test]
async fn failing_step_takes_the_catch_path() {
    let h = Harness::start(&enforce("iam-access-key-exposed"), &[]).await;
    let rem = h.remediator().await;
    let key = user_with_key(&h, "ci-bot").await;
    h.proxy.fail(
        "UpdateAccessKey",
        10,
        Fault::query(
            403,
            "AccessDenied",
            "User is not authorized to perform: iam:UpdateAccessKey",
        ),
    );
    let (_, done) = h.remediate(&rem, &key_exposed(&key)).await;
    assert_eq!(done[0].1, JobStatus::Failed);
    assert_eq!(
        h.proxy.calls("UpdateAccessKey"),
        1,
        "AccessDenied is not retried"
    );
    assert_eq!(key_status(&h, "ci-bot", &key).await, "Active");
    let sent = h.inbox.alerts();
    assert_eq!(sent.len(), 1, "the catch step notified");
    assert!(
        sent[0].title.contains("could NOT be deactivated"),
        "{}",
        sent[0].title
    );
    assert!(sent[0].body.contains("AccessDenied"), "{}", sent[0].body);
    assert_eq!(sent[0].fields["remediation_outcome"], "failed");
    let audit = h.audit_statuses(&done[0].0);
    assert!(
        audit.contains(&"deactivation-failed:succeeded".to_owned()),
        "{audit:?}"
    );
    assert!(
        !audit.iter().any(|s| s.starts_with("summarize:")),
        "the main path stopped: {audit:?}"
    );
}

#[tokio::test]
async fn instance_without_required_tags_is_tagged_and_stopped() {
    let h = Harness::start(&enforce("ec2-instance-missing-required-tags"), &[]).await;
    let rem = h.remediator().await;
    let ec2 = h.ec2();
    let image = ec2.describe_images().send().await.unwrap().images()[0]
        .image_id()
        .unwrap()
        .to_owned();
    let run = ec2
        .run_instances()
        .image_id(&image)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    let id = run.instances()[0].instance_id().unwrap().to_owned();
    let event = record(
        "ec2.amazonaws.com",
        "RunInstances",
        json!({"instancesSet": {"items": [{"imageId": image, "minCount": 1, "maxCount": 1}]}, "instanceType": "t3.micro"}),
        json!({"instancesSet": {"items": [{"instanceId": id, "imageId": image}]}}),
        ALICE,
    );
    let (alerts, done) = h.remediate(&rem, &event).await;
    assert_eq!(
        done[0].1,
        JobStatus::Succeeded,
        "{:?}",
        h.audit_statuses(&done[0].0)
    );
    assert_eq!(alerts[0].fields["missing_tags"], "CostCenter,Team");
    let described = ec2
        .describe_instances()
        .instance_ids(&id)
        .send()
        .await
        .unwrap();
    let instance = &described.reservations()[0].instances()[0];
    let tag = instance
        .tags()
        .iter()
        .find(|t| t.key() == Some("trailwatch:missing-tags"))
        .and_then(|t| t.value());
    assert_eq!(tag, Some("CostCenter,Team"));
    let state = instance
        .state()
        .and_then(|s| s.name())
        .unwrap()
        .as_str()
        .to_owned();
    assert!(matches!(state.as_str(), "stopping" | "stopped"), "{state}");
}

#[tokio::test]
async fn ignore_tag_guard_leaves_the_resource_alone() {
    let h = Harness::start(&enforce("ec2-security-group-ingress-open-to-world"), &[]).await;
    let rem = h.remediator().await;
    let (group, event) = open_group(&h, "bastion", ALICE).await;
    h.ec2()
        .create_tags()
        .resources(&group)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("trailwatch:ignore")
                .value("bastion, approved by security")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (_, done) = h.remediate(&rem, &event).await;
    assert_eq!(done[0].1, JobStatus::Skipped);
    assert_eq!(ingress(&h, &group).await.len(), 3);
    let entries = h.store().audit_entries(Some(&done[0].0)).unwrap();
    let why = entries.last().unwrap().reason.clone().unwrap();
    assert!(why.contains("trailwatch:ignore"), "{why}");
}

/// A rule that drives any change to a watched group back to its required ingress.
fn enforce_group_rule() -> &'static str {
    r#"
id: enforce
title: Security group drifted from its baseline
severity: high
match:
  detail:
    eventSource: [ec2.amazonaws.com]
    eventName: [AuthorizeSecurityGroupIngress, RevokeSecurityGroupIngress]
    errorCode: [{exists: false}]
alert:
  title: "{{ record.requestParameters.groupId }} changed by {{ principal.name }}"
  resources: ["{{ record.requestParameters.groupId }}"]
remediate:
  steps:
    - action: ec2-enforce-security-group
      retry: {max_attempts: 2, backoff: 100ms}
"#
}

#[tokio::test]
async fn group_is_driven_back_to_its_required_permissions() {
    let h = Harness::start("", &[enforce_group_rule()]).await;
    let (group, event) = open_group(&h, "app", ALICE).await;
    // The group id is only known once moto made it, so this remediator's config is written
    // now. The baseline: tcp/443 from 10.1.0.0/16 (kept), tcp/80 from 10.2.0.0/16 (missing).
    let text = format!(
        "remediation:\n  aws: {{endpoint_url: \"{}\"}}\n{}  security_groups:\n    {group}:\n      - {{protocol: tcp, from_port: 443, to_port: 443, ip_ranges: [10.1.0.0/16]}}\n      - {{protocol: tcp, from_port: 80, to_port: 80, ip_ranges: [10.2.0.0/16]}}\n",
        h.proxy.endpoint_url(),
        enforce("enforce"),
    );
    let config = trailwatch_config::parse("test-config.yaml", &text).unwrap();
    let rem_config = RemediationConfig::from_section(config.section("remediation")).unwrap();
    let rem = Remediator::new(rem_config, h.store(), None, None).with_credentials(
        SharedCredentialsProvider::new(Credentials::new(
            "testing", "testing", None, None, "static",
        )),
    );
    let (_, done) = h.remediate(&rem, &event).await;
    assert_eq!(
        done.len(),
        1,
        "the enforce rule's job (open-to-world stays dry-run)"
    );
    assert_eq!(
        done[0].1,
        JobStatus::Succeeded,
        "{:?}",
        h.audit_statuses(&done[0].0)
    );
    assert_eq!(
        ingress(&h, &group).await,
        ["tcp/443 10.1.0.0/16", "tcp/80 10.2.0.0/16"]
    );
    let entries = h.store().audit_entries(Some(&done[0].0)).unwrap();
    let response = entries.iter().find_map(|e| e.response.clone()).unwrap();
    assert_eq!(
        response["authorized"].as_array().unwrap().len(),
        1,
        "{response}"
    );
    assert_eq!(response["revoked"][0]["from_port"], json!(22), "{response}");
}

#[tokio::test]
async fn webhook_step_hands_over_the_decision_signed() {
    let recorder = Recorder::start().unwrap();
    let rule = format!(
        r#"
id: hand-over
title: Hand the open group to the change system
severity: high
match:
  detail:
    eventSource: [ec2.amazonaws.com]
    eventName: [AuthorizeSecurityGroupIngress]
alert:
  title: "{{{{ record.requestParameters.groupId }}}} changed"
remediate:
  steps:
    - action: invoke-webhook
      with: {{url: "{}", secret_env: CARGO_PKG_NAME}}
"#,
        recorder.url("/decide")
    );
    let h = Harness::start(&enforce("hand-over"), &[&rule]).await;
    let rem = h.remediator().await;
    let (_, event) = open_group(&h, "web", ALICE).await;
    let (_, done) = h.remediate(&rem, &event).await;
    let mine = done
        .iter()
        .find(|(id, _)| h.store().job(id).unwrap().unwrap().alert.rule_id == "hand-over")
        .unwrap();
    assert_eq!(mine.1, JobStatus::Succeeded);
    let got = recorder.wait_for_accepted(1, std::time::Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    let body = got[0].json();
    assert_eq!(body["alert"]["rule_id"], "hand-over");
    assert_eq!(body["job_id"], json!(mine.0));
    let sig = got[0].header("x-trailwatch-signature").unwrap();
    // Cargo sets CARGO_PKG_NAME for every test process: it stands in for the secret.
    let key = std::env::var("CARGO_PKG_NAME").unwrap();
    assert_eq!(
        sig,
        format!(
            "sha256={}",
            trailwatch_remediate::approval::sign_body(key.as_bytes(), &got[0].body)
        )
    );
}
