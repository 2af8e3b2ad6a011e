//! ApiVersions: the table of served APIs, straight from the dispatch table.

use gregor_protocol::kafka_protocol::messages::api_versions_response::ApiVersion;
use gregor_protocol::kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use super::RequestContext;
use crate::dispatch::supported_apis;
use crate::BrokerError;

pub(crate) fn response(error_code: i16) -> ApiVersionsResponse {
    let api_keys = supported_apis()
        .iter()
        .map(|a| {
            ApiVersion::default()
                .with_api_key(a.api_key as i16)
                .with_min_version(a.min_version)
                .with_max_version(a.max_version)
        })
        .collect();
    ApiVersionsResponse::default().with_error_code(error_code).with_api_keys(api_keys)
}

pub(crate) async fn handle(
    _ctx: &RequestContext<'_>,
    _request: ApiVersionsRequest,
) -> Result<ApiVersionsResponse, BrokerError> {
    Ok(response(0))
}
