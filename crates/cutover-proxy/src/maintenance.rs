//! A route's maintenance as the data plane uses it: the page made once,
//! and a token cancelled when maintenance ends (or is replaced), which
//! releases the requests it holds.

use bytes::Bytes;
use cutover_core::maintenance::Maintenance;
use http::HeaderValue;
use tokio_util::sync::CancellationToken;

pub(crate) struct Gate {
    pub spec: Maintenance,
    pub page: Bytes,
    pub retry_after: HeaderValue,
    pub ended: CancellationToken,
}

impl Gate {
    pub fn new(spec: Maintenance) -> Gate {
        Gate {
            page: Bytes::from(spec.page()),
            retry_after: HeaderValue::from(spec.retry_after.as_secs()),
            spec,
            ended: CancellationToken::new(),
        }
    }
}
