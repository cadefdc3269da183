//! AWS-side fixtures for tests against a [`MotoServer`]: SDK set-up, queues, a bucket whose
//! notifications go to a queue, uploads, and real-shaped corpora from `../shared`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;

use crate::MotoServer;

/// The SDK configuration for a moto server (static test credentials, us-east-1).
pub async fn sdk(moto: &MotoServer) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto.endpoint_url())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "static"))
        .load()
        .await
}

/// Creates a queue and returns its URL.
pub async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    sqs.create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

/// The queue's ARN.
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    attrs.attributes.unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone()
}

/// Visible + in-flight messages.
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let n = |k: A| {
        attrs
            .get(&k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    n(A::ApproximateNumberOfMessages) + n(A::ApproximateNumberOfMessagesNotVisible)
}

/// A bucket whose ObjectCreated notifications go to the queue.
pub async fn bucket_with_notification(
    s3: &aws_sdk_s3::Client,
    sqs: &aws_sdk_sqs::Client,
    bucket: &str,
    queue_url: &str,
) {
    use aws_sdk_s3::types::{Event as S3Event, NotificationConfiguration, QueueConfiguration};
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    let arn = queue_arn(sqs, queue_url).await;
    let conf = NotificationConfiguration::builder()
        .queue_configurations(
            QueueConfiguration::builder()
                .queue_arn(arn)
                .events(S3Event::from("s3:ObjectCreated:*"))
                .build()
                .unwrap(),
        )
        .build();
    s3.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(conf)
        .send()
        .await
        .unwrap();
}

/// Uploads files under their keys.
pub async fn upload(s3: &aws_sdk_s3::Client, bucket: &str, files: &[(String, PathBuf)]) {
    for (key, path) in files {
        let body = aws_sdk_s3::primitives::ByteStream::from(std::fs::read(path).unwrap());
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(body)
            .send()
            .await
            .unwrap();
    }
}

/// Creates a security group and authorizes `permissions` in one call, each as
/// (tcp port, CIDRs, IPv4 or IPv6 by their form); returns the group id.
pub async fn group_with_ingress(
    ec2: &aws_sdk_ec2::Client,
    name: &str,
    permissions: &[(i32, &[&str])],
) -> String {
    use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range};
    let group = ec2
        .create_security_group()
        .group_name(name)
        .description("trailwatch test")
        .send()
        .await
        .unwrap()
        .group_id
        .unwrap();
    let mut call = ec2.authorize_security_group_ingress().group_id(&group);
    for (port, cidrs) in permissions {
        let mut p = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(*port)
            .to_port(*port);
        for c in *cidrs {
            p = if c.contains(':') {
                p.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(*c).build())
            } else {
                p.ip_ranges(IpRange::builder().cidr_ip(*c).build())
            };
        }
        call = call.ip_permissions(p.build());
    }
    call.send().await.unwrap();
    group
}

/// A group's ingress as sorted `tcp/PORT CIDR` strings.
pub async fn group_ingress(ec2: &aws_sdk_ec2::Client, group: &str) -> Vec<String> {
    let out = ec2
        .describe_security_groups()
        .group_ids(group)
        .send()
        .await
        .unwrap();
    let mut rules = Vec::new();
    for p in out.security_groups()[0].ip_permissions() {
        let (proto, port) = (p.ip_protocol().unwrap_or("?"), p.from_port().unwrap_or(-1));
        let v4 = p.ip_ranges().iter().filter_map(|r| r.cidr_ip());
        let v6 = p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6());
        for cidr in v4.chain(v6) {
            rules.push(format!("{proto}/{port} {cidr}"));
        }
    }
    rules.sort();
    rules
}

/// Polls `cond` every 100 ms until it holds or `timeout` passes; returns whether it held.
pub async fn wait_until(timeout: Duration, mut cond: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A corpus from `../shared/tools/make-corpus` (100 records per file, plus `extra` flags), or
/// `None` with a printed note when the shared folder is absent.
pub fn make_corpus(records: u64, seed: u64, extra: &[&str]) -> Option<tempfile::TempDir> {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tools/make-corpus");
    if !tool.exists() {
        eprintln!(
            "note: {} is absent; skipping this test's corpus part",
            tool.display()
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&tool)
        .args([
            "--records",
            &records.to_string(),
            "--per-file",
            "100",
            "--seed",
            &seed.to_string(),
        ])
        .args(extra)
        .arg("--out")
        .arg(dir.path())
        .output()
        .expect("running make-corpus");
    assert!(
        out.status.success(),
        "make-corpus failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(dir)
}

/// Every `.json.gz` under `dir`, as (key relative to dir, path), sorted.
pub fn corpus_files(dir: &Path) -> Vec<(String, PathBuf)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else if path.to_string_lossy().ends_with(".json.gz") {
                let key = path
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((key, path));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
