//! Amazon SNS against moto server: message attributes, an SQS subscription that reads back
//! what was published, a FIFO topic, and recovery from a missing topic.

mod common;

use aws_sdk_sns::config::{BehaviorVersion, Credentials, Region};
use common::{FAST_OUTBOX, Scratch, alert, drain};
use serde_json::json;
use trailwatch_alert::{Alert, Severity};
use trailwatch_notify::RetrySelector;
use trailwatch_testkit::MotoServer;

async fn sns_client(moto: &MotoServer) -> aws_sdk_sns::Client {
    let conf = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto.endpoint_url())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "static"))
        .load()
        .await;
    aws_sdk_sns::Client::new(&conf)
}

/// Calls moto's SQS with the JSON protocol (no SQS SDK needed to read back what SNS sent).
async fn sqs(moto: &MotoServer, action: &str, body: serde_json::Value) -> serde_json::Value {
    let response = reqwest::Client::new()
        .post(moto.endpoint_url())
        .header("X-Amz-Target", format!("AmazonSQS.{action}"))
        .header("Content-Type", "application/x-amz-json-1.0")
        // moto picks the service from the credential scope; it does not check signatures.
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "SQS {action}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

fn config(s: &Scratch, moto: &MotoServer, topic_arn: &str) -> String {
    let id = s.secret("key-id", "testing");
    let secret = s.secret("secret-key", "testing");
    format!(
        "destinations:
  topic: {{ type: sns, topic_arn: '{topic_arn}', endpoint_url: '{}', access_key_id_file: '{id}', secret_access_key_file: '{secret}' }}
routes:
  - {{ to: [topic] }}
{FAST_OUTBOX}",
        moto.endpoint_url()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_with_attributes_then_recover_from_a_missing_topic() {
    let moto = MotoServer::start().unwrap();
    let client = sns_client(&moto).await;
    let arn = "arn:aws:sns:us-east-1:123456789012:trailwatch-alerts";

    // The topic does not exist yet: SNS says NotFound, which is permanent.
    let s = Scratch::new();
    let n = s.notifier(&config(&s, &moto, arn));
    let a = alert(1, Severity::High);
    n.enqueue(&a).unwrap();
    let stats = drain(&n).await;
    assert_eq!(stats.dead, 1);
    let dead = n.dead_letters().unwrap();
    assert!(dead[0].last_error.contains("AWS"), "{}", dead[0].last_error);

    // Create it, subscribe an SQS queue, and resend the dead letter.
    let topic = client
        .create_topic()
        .name("trailwatch-alerts")
        .send()
        .await
        .unwrap();
    assert_eq!(topic.topic_arn(), Some(arn));
    let queue = sqs(&moto, "CreateQueue", json!({ "QueueName": "readback" })).await;
    let queue_url = queue["QueueUrl"].as_str().unwrap().to_owned();
    client
        .subscribe()
        .topic_arn(arn)
        .protocol("sqs")
        .endpoint("arn:aws:sqs:us-east-1:123456789012:readback")
        .send()
        .await
        .unwrap();
    assert_eq!(
        n.retry_dead(&RetrySelector::Destination("topic".into()))
            .unwrap(),
        1
    );
    let stats = drain(&n).await;
    assert_eq!(stats.delivered, 1);

    let received = sqs(
        &moto,
        "ReceiveMessage",
        json!({ "QueueUrl": queue_url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1 }),
    )
    .await;
    let messages = received["Messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    let envelope: serde_json::Value =
        serde_json::from_str(messages[0]["Body"].as_str().unwrap()).unwrap();
    assert_eq!(envelope["Type"], "Notification");
    assert_eq!(envelope["TopicArn"], arn);
    assert_eq!(envelope["Subject"], "[HIGH] Alert number 1");
    let message: Alert = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    assert_eq!(message, a);
    let attrs = &envelope["MessageAttributes"];
    assert_eq!(attrs["severity"]["Type"], "String", "{envelope}");
    assert_eq!(attrs["severity"]["Value"], "high");
    assert_eq!(attrs["rule_id"]["Value"], "sg-open");
    assert_eq!(attrs["account"]["Value"], "111122223333");
}

#[tokio::test(flavor = "multi_thread")]
async fn fifo_topics_get_a_group_and_deduplication_id() {
    let moto = MotoServer::start().unwrap();
    let client = sns_client(&moto).await;
    let topic = client
        .create_topic()
        .name("alerts.fifo")
        .attributes("FifoTopic", "true")
        .send()
        .await
        .unwrap();
    let arn = topic.topic_arn().unwrap().to_owned();
    let s = Scratch::new();
    let n = s.notifier(&config(&s, &moto, &arn));
    assert!(matches!(
        &n.config().destinations["topic"].kind,
        trailwatch_notify::config::DestinationKind::Sns(c) if c.fifo
    ));
    // Without MessageGroupId a FIFO publish is refused, so acceptance shows it was sent.
    n.enqueue_batch(&[alert(1, Severity::Low), alert(2, Severity::Critical)])
        .unwrap();
    let stats = drain(&n).await;
    assert_eq!((stats.delivered, stats.dead), (2, 0));
}
