//! CloudTrail digest files (`CloudTrail-Digest/`): set aside for a later integrity check.
//! They are never events and never errors.

use serde::Deserialize;

use crate::Provenance;
use crate::skip::SkipReason;

/// One log file a digest vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestLogFile {
    /// Bucket of the log file.
    pub s3_bucket: String,
    /// Key of the log file.
    pub s3_object: String,
    /// Hex hash of the log file (of its uncompressed content).
    pub hash_value: String,
    /// Hash algorithm, `SHA-256`.
    pub hash_algorithm: String,
    /// Newest event time in the file.
    #[serde(default)]
    pub newest_event_time: Option<String>,
    /// Oldest event time in the file.
    #[serde(default)]
    pub oldest_event_time: Option<String>,
}

/// A CloudTrail digest file: the fields a later integrity check needs, and the text itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestFile {
    /// Where it came from.
    pub provenance: Provenance,
    /// The parsed fields.
    pub fields: DigestFields,
    /// The digest text as read (its hash is part of what is signed).
    pub raw: String,
}

/// The fields of a digest file (CloudTrail user guide, "CloudTrail digest file structure").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestFields {
    /// Account the digest belongs to.
    #[serde(default)]
    pub aws_account_id: Option<String>,
    /// Start of the hour covered.
    pub digest_start_time: String,
    /// End of the hour covered.
    pub digest_end_time: String,
    /// Where this digest itself was written.
    #[serde(default, rename = "digestS3Bucket")]
    pub digest_s3_bucket: Option<String>,
    /// Key of this digest.
    #[serde(default, rename = "digestS3Object")]
    pub digest_s3_object: Option<String>,
    /// Fingerprint of the key that signed it.
    #[serde(default)]
    pub digest_public_key_fingerprint: Option<String>,
    /// Signature algorithm, `SHA256withRSA`.
    #[serde(default)]
    pub digest_signature_algorithm: Option<String>,
    /// Newest event time covered.
    #[serde(default)]
    pub newest_event_time: Option<String>,
    /// Oldest event time covered.
    #[serde(default)]
    pub oldest_event_time: Option<String>,
    /// Bucket of the previous digest (chain).
    #[serde(default, rename = "previousDigestS3Bucket")]
    pub previous_digest_s3_bucket: Option<String>,
    /// Key of the previous digest.
    #[serde(default, rename = "previousDigestS3Object")]
    pub previous_digest_s3_object: Option<String>,
    /// Hash of the previous digest.
    #[serde(default)]
    pub previous_digest_hash_value: Option<String>,
    /// Algorithm of that hash.
    #[serde(default)]
    pub previous_digest_hash_algorithm: Option<String>,
    /// Signature of the previous digest.
    #[serde(default)]
    pub previous_digest_signature: Option<String>,
    /// The log files delivered in the hour.
    pub log_files: Vec<DigestLogFile>,
}

/// Parses a digest file.
pub(crate) fn parse(text: &str, provenance: Provenance) -> Result<DigestFile, SkipReason> {
    let fields: DigestFields =
        serde_json::from_str(text).map_err(|e| SkipReason::InvalidField {
            field: "digest",
            msg: e.to_string(),
        })?;
    Ok(DigestFile {
        provenance,
        fields,
        raw: text.to_owned(),
    })
}
