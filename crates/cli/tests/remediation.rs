//! Remediation through the binary: the seed scenarios end to end with `trailwatch watch
//! --once` against moto (seed 002: a Config NON_COMPLIANT notification for restricted-ssh
//! revokes port 22; seed 004: a public object made private, an exposed key deactivated with
//! its activity summary notified), approval from the command line, the audit log, and the
//! IAM policy of the full rule pack.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Run, assert_golden, repo_root, trailwatch, trailwatch_with_env};
use serde_json::{Value, json};
use trailwatch_testkit::aws::{group_ingress, group_with_ingress};
use trailwatch_testkit::{MotoServer, Recorder};

const ACCOUNT: &str = "123456789012";

struct Fixture {
    moto: MotoServer,
    recorder: Recorder,
    runtime: tokio::runtime::Runtime,
    sdk: aws_config::SdkConfig,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn start() -> Fixture {
        let moto = MotoServer::start().expect("moto server");
        let recorder = Recorder::start().unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let sdk = runtime.block_on(trailwatch_testkit::aws::sdk(&moto));
        Fixture {
            moto,
            recorder,
            runtime,
            sdk,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A config with a webhook destination and `remediation` under the section.
    fn config(&self, remediation: &str) -> PathBuf {
        let text = format!(
            "destinations:\n  hook: {{ type: webhook, url: '{hook}' }}\n\
             routes:\n  - {{ to: [hook] }}\n\
             outbox: {{ base_delay_ms: 50, max_delay_seconds: 2 }}\n\
             state: {{ dir: '{state}' }}\n\
             remediation:\n  aws: {{ endpoint_url: '{endpoint}' }}\n  archive: '{archive}'\n{remediation}",
            hook = self.recorder.url("/hook"),
            state = self.path("state").display(),
            endpoint = self.moto.endpoint_url(),
            archive = self.path("archive").display(),
        );
        let path = self.path("trailwatch.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `trailwatch ARGS` with moto's credentials.
    fn run(&self, args: &[&str]) -> Run {
        trailwatch_with_env(
            args,
            &[
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
                ("AWS_EC2_METADATA_DISABLED", "true"),
                ("AWS_CONFIG_FILE", "/dev/null"),
                ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ],
        )
    }

    fn watch_once(&self, config: &Path, logs: &Path) -> Run {
        let run = self.run(&[
            "watch",
            "--once",
            "--config",
            config.to_str().unwrap(),
            logs.to_str().unwrap(),
        ]);
        assert_eq!(
            run.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        run
    }

    fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.sdk)
    }

    /// A group open on tcp/22 to 0.0.0.0/0 and ::/0, with tcp/443 from 10.0.0.0/8 beside.
    fn open_ssh_group(&self, name: &str) -> String {
        self.runtime.block_on(group_with_ingress(
            &self.ec2(),
            name,
            &[(22, &["0.0.0.0/0", "::/0"]), (443, &["10.0.0.0/8"])],
        ))
    }

    fn ingress(&self, group: &str) -> Vec<String> {
        self.runtime.block_on(group_ingress(&self.ec2(), group))
    }
}

/// The shipped restricted-ssh example, moved into moto's account and onto `group`.
fn restricted_ssh_event(group: &str) -> Value {
    let text = std::fs::read_to_string(
        repo_root().join("examples/eventbridge/aws-config-restricted-ssh-noncompliant.json"),
    )
    .unwrap()
    .replace("sg-0fedcba9876543210", group)
    .replace("111122223333", ACCOUNT);
    serde_json::from_str(&text).unwrap()
}

fn write_json(path: &Path, value: &Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Today's org-trail date folder: records are stamped `now()`, and the key-activity lookup
/// skips date folders older than its window (a fixed date here broke the test two days on).
fn today() -> String {
    chrono::Utc::now().format("%Y/%m/%d").to_string()
}

fn job_ids(list_json: &str) -> Vec<(String, String, String)> {
    list_json
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| {
            (
                v["id"].as_str().unwrap().to_owned(),
                v["rule_id"].as_str().unwrap().to_owned(),
                v["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn seed_002_restricted_ssh_noncompliant_revokes_port_22() {
    let f = Fixture::start();
    let group = f.open_ssh_group("legacy-bastion");
    assert_eq!(
        f.ingress(&group),
        ["tcp/22 0.0.0.0/0", "tcp/22 ::/0", "tcp/443 10.0.0.0/8"]
    );
    let logs = f.path("logs");
    write_json(
        &logs.join("config/restricted-ssh.json"),
        &restricted_ssh_event(&group),
    );
    let config = f.config("  rules:\n    config-rule-noncompliant: { mode: enforce }\n");
    let run = f.watch_once(&config, &logs);
    assert!(
        run.stderr.contains(": succeeded"),
        "stderr:\n{}",
        run.stderr
    );
    assert_eq!(
        f.ingress(&group),
        ["tcp/443 10.0.0.0/8"],
        "tcp/22 from anywhere is gone, tcp/443 stays"
    );
    // The alert that was delivered says what was planned and in which mode.
    let got = f.recorder.wait_for_accepted(1, Duration::from_secs(10));
    let alert = got
        .iter()
        .map(|r| r.json())
        .find(|a| a["rule_id"] == "config-rule-noncompliant")
        .expect("the alert was delivered");
    assert_eq!(alert["remediation"]["mode"], "enforce");
    assert_eq!(alert["remediation"]["steps"][0]["resource"], json!(group));

    let state = f.path("state");
    let list = f.run(&[
        "remediation",
        "list",
        "--state",
        state.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let jobs = job_ids(&list.stdout);
    assert_eq!(
        jobs.iter()
            .filter(|(_, rule, status)| rule == "config-rule-noncompliant" && status == "succeeded")
            .count(),
        1,
        "{jobs:?}"
    );
    let log = f.run(&["remediation", "log", "--state", state.to_str().unwrap()]);
    assert_eq!(log.code, 0, "{}", log.stderr);
    assert!(log.stderr.contains("hash chain verified"), "{}", log.stderr);
    for needle in [
        "planned by",
        "queued by",
        "revoke-ssh (ec2-revoke-ingress) by",
        "succeeded",
        "rule config-rule-noncompliant event f25b47e0-ae69-4666-9568-ec5135af94ed",
        "\"revoked\"",
    ] {
        assert!(
            log.stdout.contains(needle),
            "{needle:?} not in:\n{}",
            log.stdout
        );
    }

    // A second pass over the same folder repeats nothing.
    let again = f.watch_once(&config, &logs);
    assert!(
        !again.stderr.contains("remediation rem-"),
        "{}",
        again.stderr
    );
}

/// A CloudTrail record for `name`, by alice, now.
fn cloudtrail_record(source: &str, name: &str, request: Value, id: &str) -> Value {
    json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAALICE", "accountId": ACCOUNT,
            "arn": format!("arn:aws:iam::{ACCOUNT}:user/alice"), "accessKeyId": "AKIAALICE", "userName": "alice"},
        "eventTime": now(),
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": request,
        "responseElements": null,
        "eventID": id,
        "readOnly": false,
        "eventType": "AwsApiCall",
        "managementEvent": false,
        "recipientAccountId": ACCOUNT,
    })
}

#[test]
fn seed_004_public_object_made_private_and_exposed_key_deactivated_with_its_activity() {
    let f = Fixture::start();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&f.sdk)
            .force_path_style(true)
            .build(),
    );
    let iam = aws_sdk_iam::Client::new(&f.sdk);
    let key = f.runtime.block_on(async {
        s3.create_bucket()
            .bucket("team-share")
            .send()
            .await
            .unwrap();
        s3.put_object()
            .bucket("team-share")
            .key("exports/customers.csv")
            .acl(aws_sdk_s3::types::ObjectCannedAcl::PublicRead)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(
                b"id,name\n",
            ))
            .send()
            .await
            .unwrap();
        iam.create_user().user_name("ci-bot").send().await.unwrap();
        iam.create_access_key()
            .user_name("ci-bot")
            .send()
            .await
            .unwrap()
            .access_key
            .unwrap()
            .access_key_id
    });
    let logs = f.path("logs");
    // The object's ACL made public, as CloudTrail (data events) records it.
    write_json(
        &logs.join(format!(
            "AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/{}/{ACCOUNT}_CloudTrail_us-east-1_{}_acl.json",
            today(),
            chrono::Utc::now().format("%Y%m%dT%H%MZ")
        )),
        &json!({"Records": [cloudtrail_record(
            "s3.amazonaws.com",
            "PutObjectAcl",
            json!({"bucketName": "team-share", "key": "exports/customers.csv", "acl": [""], "x-amz-acl": ["public-read"]}),
            "0b1c2d3e-0000-4000-8000-000000000004",
        )]}),
    );
    // AWS Health finds the key on GitHub.
    let health: Value = serde_json::from_str(
        &std::fs::read_to_string(
            repo_root().join("examples/eventbridge/aws-health-credentials-exposed.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let text = health.to_string().replace("111122223333", ACCOUNT).replace(
        health["detail"]["affectedEntities"][0]["entityValue"]
            .as_str()
            .unwrap(),
        &key,
    );
    write_json(
        &logs.join("health/exposed.json"),
        &serde_json::from_str(&text).unwrap(),
    );
    // What the key did in the last hours, in the archive.
    let mut activity = Vec::new();
    for (i, (name, bucket)) in [
        ("ListBuckets", ""),
        ("GetObject", "payroll"),
        ("GetObject", "payroll"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = cloudtrail_record(
            "s3.amazonaws.com",
            name,
            if bucket.is_empty() {
                json!({})
            } else {
                json!({"bucketName": bucket, "key": "2026.csv"})
            },
            &format!("0b1c2d3e-0000-4000-8000-00000000010{i}"),
        );
        r["userIdentity"]["accessKeyId"] = json!(key);
        r["userIdentity"]["userName"] = json!("ci-bot");
        activity.push(r);
    }
    write_json(
        &f.path(&format!(
            "archive/AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/{}/activity.json",
            today()
        )),
        &json!({"Records": activity}),
    );
    let config = f.config(
        "  rules:\n    s3-object-made-public: { mode: enforce }\n    iam-access-key-exposed: { mode: enforce }\n",
    );
    let run = f.watch_once(&config, &logs);

    f.runtime.block_on(async {
        let acl = s3
            .get_object_acl()
            .bucket("team-share")
            .key("exports/customers.csv")
            .send()
            .await
            .unwrap();
        assert!(
            !acl.grants().iter().any(|g| g
                .grantee()
                .and_then(|x| x.uri())
                .is_some_and(|u| u.contains("AllUsers"))),
            "the object is private again: {acl:?}\n{}",
            run.stderr
        );
        let keys = iam
            .list_access_keys()
            .user_name("ci-bot")
            .send()
            .await
            .unwrap();
        assert_eq!(
            keys.access_key_metadata()[0].status().map(|s| s.as_str()),
            Some("Inactive"),
            "{}",
            run.stderr
        );
    });
    // Delivered: the two alerts, and the notification of the key workflow with the summary.
    let got = f.recorder.wait_for_accepted(3, Duration::from_secs(10));
    let bodies: Vec<Value> = got.iter().map(|r| r.json()).collect();
    let note = bodies
        .iter()
        .find(|b| b["fields"]["remediation_outcome"] == "succeeded")
        .unwrap_or_else(|| panic!("no remediation notification in {bodies:#?}"));
    assert!(
        note["title"]
            .as_str()
            .unwrap()
            .contains(&format!("{key} deactivated")),
        "{note:#}"
    );
    let summary = note["fields"]["key_activity"].as_str().unwrap();
    assert!(
        summary.contains("GetObject")
            && summary.contains("payroll")
            && summary.contains("made 3 calls"),
        "{summary}"
    );
    assert!(
        bodies
            .iter()
            .any(|b| b["rule_id"] == "s3-object-made-public"
                && b["remediation"]["mode"] == "enforce")
    );
}

#[test]
fn approval_from_the_command_line() {
    let f = Fixture::start();
    let group = f.open_ssh_group("approve-me");
    let logs = f.path("logs");
    write_json(
        &logs.join("config/restricted-ssh.json"),
        &restricted_ssh_event(&group),
    );
    let config = f.config("  rules:\n    config-rule-noncompliant: { mode: approve }\n");
    let state = f.path("state");
    let state = state.to_str().unwrap();
    f.watch_once(&config, &logs);
    assert_eq!(f.ingress(&group).len(), 3, "nothing runs before approval");
    let list = f.run(&[
        "remediation",
        "list",
        "--state",
        state,
        "--status",
        "awaiting-approval",
    ]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(
        list.stdout
            .contains("approve: trailwatch remediation approve rem-"),
        "{}",
        list.stdout
    );
    assert!(
        list.stdout.contains("ec2:RevokeSecurityGroupIngress"),
        "{}",
        list.stdout
    );
    let job = list
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("rem-"))
        .unwrap()
        .to_owned();
    let approve = f.run(&[
        "remediation",
        "approve",
        &job,
        "--by",
        "carol",
        "--state",
        state,
    ]);
    assert_eq!(approve.code, 0, "{}", approve.stderr);
    assert!(
        approve.stdout.contains("approved by carol (cli)"),
        "{}",
        approve.stdout
    );
    let twice = f.run(&["remediation", "approve", &job, "--state", state]);
    assert_eq!(twice.code, 1);
    assert!(
        twice.stderr.contains("not awaiting approval"),
        "{}",
        twice.stderr
    );
    // The next pass runs it.
    f.watch_once(&config, &logs);
    assert_eq!(f.ingress(&group), ["tcp/443 10.0.0.0/8"]);
    let log = f.run(&[
        "remediation",
        "log",
        &job,
        "--state",
        state,
        "--format",
        "json",
    ]);
    assert_eq!(log.code, 0, "{}", log.stderr);
    let statuses: Vec<String> = log
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|e| {
            format!(
                "{}:{}",
                e["status"].as_str().unwrap(),
                e["actor"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        statuses.contains(&"approved:carol (cli)".to_owned()),
        "{statuses:?}"
    );
    assert!(
        statuses.last().unwrap().starts_with("succeeded:"),
        "{statuses:?}"
    );
    let missing = f.run(&[
        "remediation",
        "reject",
        "rem-0000000000000000",
        "--state",
        state,
    ]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("no remediation job"),
        "{}",
        missing.stderr
    );
}

#[test]
fn tampered_audit_trail_is_reported() {
    let f = Fixture::start();
    let group = f.open_ssh_group("tamper");
    let logs = f.path("logs");
    write_json(
        &logs.join("config/restricted-ssh.json"),
        &restricted_ssh_event(&group),
    );
    let config = f.config("");
    f.watch_once(&config, &logs);
    let db = f.path("state/remediation.sqlite");
    let conn = rusqlite::Connection::open(&db).unwrap();
    // The triggers refuse edits; someone with the file drops them first.
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!names.is_empty(), "the audit table has its triggers");
    assert!(
        conn.execute("UPDATE audit SET actor = 'mallory'", [])
            .is_err(),
        "an edit is refused"
    );
    for name in names {
        conn.execute(&format!("DROP TRIGGER {name}"), []).unwrap();
    }
    conn.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 1", [])
        .unwrap();
    drop(conn);
    let log = f.run(&[
        "remediation",
        "log",
        "--state",
        f.path("state").to_str().unwrap(),
    ]);
    assert_eq!(log.code, 1, "{}", log.stderr);
    assert!(log.stderr.contains("NOT intact"), "{}", log.stderr);
}

#[test]
fn iam_policy_for_the_full_pack_is_pinned() {
    let run = trailwatch(&["iam-policy"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_golden("iam-policy.json", &run.stdout);
    let policy: Value = serde_json::from_str(&run.stdout).unwrap();
    let actions: Vec<&str> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap())
        .map(|a| a.as_str().unwrap())
        .collect();
    for needed in [
        "ec2:RevokeSecurityGroupIngress",
        "s3:PutObjectAcl",
        "s3:PutBucketPublicAccessBlock",
        "iam:UpdateAccessKey",
        "ec2:CreateTags",
        "ec2:StopInstances",
    ] {
        assert!(actions.contains(&needed), "{needed} missing: {actions:?}");
    }
    assert!(!actions.iter().any(|a| a.contains('*')), "{actions:?}");
    // The rules behind it are named on stderr.
    assert!(
        run.stderr
            .contains("# iam-access-key-exposed (dry-run): iam-deactivate-access-key"),
        "{}",
        run.stderr
    );
    // Only rules that may act.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("trailwatch.yaml");
    std::fs::write(
        &config,
        "remediation:\n  rules:\n    s3-object-made-public: { mode: enforce }\n",
    )
    .unwrap();
    let only = trailwatch(&[
        "iam-policy",
        "--enforced-only",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(only.code, 0, "{}", only.stderr);
    let policy: Value = serde_json::from_str(&only.stdout).unwrap();
    assert_eq!(
        policy["Statement"],
        json!([{"Sid": "TrailwatchRemediationS3", "Effect": "Allow",
                "Action": ["s3:GetBucketTagging", "s3:GetObjectAcl", "s3:PutObjectAcl"],
                "Resource": "arn:aws:s3:::*"}])
    );
}

#[test]
fn bad_remediation_config_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("trailwatch.yaml");
    std::fs::write(
        &config,
        "remediation:\n  mode: enforce\n  approval: { expires: soon }\n",
    )
    .unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let run = trailwatch(&[
        "watch",
        "--once",
        "--config",
        config.to_str().unwrap(),
        logs.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("trailwatch.yaml") && run.stderr.contains("approval.expires"),
        "{}",
        run.stderr
    );
}
