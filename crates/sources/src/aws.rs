//! AWS clients from the standard credential chain, with the config's overrides.

use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::AwsSettings;

/// Loads the shared SDK configuration: credentials and region from the standard chain
/// (environment, profile, SSO, container or instance role), then `settings`' overrides.
pub async fn load(settings: &AwsSettings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url.clone());
    }
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile.clone());
    }
    loader.load().await
}

/// An S3 client; path-style addressing when `settings` ask for it or name an endpoint.
pub fn s3_client(sdk: &SdkConfig, settings: &AwsSettings) -> aws_sdk_s3::Client {
    let path_style = settings
        .force_path_style
        .unwrap_or(settings.endpoint_url.is_some());
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(path_style)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// An SQS client.
pub fn sqs_client(sdk: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(sdk)
}
