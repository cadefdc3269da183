//! AWS Config and AWS Health events.
//!
//! As EventBridge delivers them (`source` `aws.config` with detail-type "Config Rules
//! Compliance Change", `source` `aws.health` with "AWS Health Event") they are ordinary
//! envelopes and pass through unchanged. AWS Config can also notify through SNS, where the
//! message is the bare `ComplianceChangeNotification`; that is turned into the EventBridge
//! shape here, so one pattern matches either way (AWS Config developer guide, "Monitoring AWS
//! Config with Amazon EventBridge" and "Example Compliance Change Notification").

use serde::Deserialize;

use crate::envelope::{EnvelopeParts, derived_uuid, normalise_time};
use crate::probe::Text;
use crate::skip::SkipReason;
use crate::{Event, Provenance};

/// `detail-type` of an AWS Config rule compliance change.
pub const DETAIL_TYPE_CONFIG_COMPLIANCE: &str = "Config Rules Compliance Change";
/// `detail-type` of an AWS Health event.
pub const DETAIL_TYPE_HEALTH: &str = "AWS Health Event";
/// `source` of AWS Config events.
pub const SOURCE_CONFIG: &str = "aws.config";
/// `source` of AWS Health events.
pub const SOURCE_HEALTH: &str = "aws.health";

#[derive(Deserialize)]
struct ConfigNotification<'a> {
    #[serde(rename = "messageType", borrow)]
    message_type: Text<'a>,
    #[serde(rename = "awsAccountId", borrow)]
    aws_account_id: Option<Text<'a>>,
    #[serde(rename = "awsRegion", borrow)]
    aws_region: Option<Text<'a>>,
    #[serde(rename = "notificationCreationTime", borrow)]
    notification_creation_time: Option<Text<'a>>,
}

/// Turns an AWS Config SNS message into the envelope EventBridge would have delivered.
///
/// The `detail` is the message verbatim (EventBridge's detail carries the same members);
/// `resources` is left empty; the id is a UUID v5 of the message text, so the same
/// notification gets the same id however it is wrapped or redelivered. Other Config message
/// types are skipped with their name.
pub(crate) fn from_config_notification(
    text: &str,
    provenance: Provenance,
) -> Result<Event, SkipReason> {
    let text = text.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\r'));
    let n: ConfigNotification<'_> =
        serde_json::from_str(text).map_err(|e| SkipReason::InvalidField {
            field: "messageType",
            msg: e.to_string(),
        })?;
    if n.message_type.as_str() != "ComplianceChangeNotification" {
        return Err(SkipReason::UnsupportedNotification(format!(
            "AWS Config {}",
            n.message_type.as_str()
        )));
    }
    let account = n
        .aws_account_id
        .ok_or(SkipReason::MissingField("awsAccountId"))?;
    let region = n.aws_region.ok_or(SkipReason::MissingField("awsRegion"))?;
    let created = n
        .notification_creation_time
        .ok_or(SkipReason::MissingField("notificationCreationTime"))?;
    let (time, _) = normalise_time(created.as_str()).ok_or_else(|| SkipReason::InvalidField {
        field: "notificationCreationTime",
        msg: format!("not an ISO 8601 time: {:?}", created.as_str()),
    })?;
    let id = derived_uuid(SOURCE_CONFIG, text);
    Ok(Event::from_parts(
        EnvelopeParts {
            id,
            detail_type: DETAIL_TYPE_CONFIG_COMPLIANCE,
            source: SOURCE_CONFIG,
            account: account.as_str(),
            region: region.as_str(),
            time,
            resources: Vec::new(),
            detail: text,
        },
        provenance,
    ))
}
