//! `/v1/events` (an NDJSON stream of [`Event`]s) and the drain long-poll.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Json;
use cutover_core::status::{DrainedAnswer, Event, SetState};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::error::ApiError;
use super::Admin;

const DEFAULT_WAIT: Duration = Duration::from_secs(30);
/// Long polls are cheap, but a forgotten one should not live for days.
const MAX_WAIT: Duration = Duration::from_secs(3600);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StreamQuery {
    service: Option<String>,
}

fn event_service(event: &Event) -> &str {
    match event {
        Event::Switched { service, .. }
        | Event::Drained { service, .. }
        | Event::HealthChanged { service, .. }
        | Event::Removed { service } => service,
    }
}

/// One JSON object per line, flushed as each event happens. A client that
/// falls too far behind has its stream ended rather than silently missing
/// events: it should re-read `/v1/services` and subscribe again.
pub(super) async fn stream(State(admin): State<Admin>, Query(q): Query<StreamQuery>) -> Response {
    let rx = admin.proxy().subscribe();
    let shutdown = admin.inner.shutdown.clone();
    let stream = futures_util::stream::unfold(
        (rx, shutdown, q.service),
        |(mut rx, shutdown, filter)| async move {
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    next = rx.recv() => next,
                };
                match next {
                    Ok(event) => {
                        if filter
                            .as_deref()
                            .is_some_and(|f| f != event_service(&event))
                        {
                            continue;
                        }
                        let mut line = serde_json::to_vec(&event).expect("events always serialize");
                        line.push(b'\n');
                        return Some((
                            Ok::<_, Infallible>(Bytes::from(line)),
                            (rx, shutdown, filter),
                        ));
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(
                            missed,
                            "an event stream client fell behind; ending its stream"
                        );
                        return None;
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    );
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .expect("static headers are valid")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WaitQuery {
    timeout: Option<String>,
}

enum Lookup {
    Pending(SetState),
    Done(SetState),
    Gone,
}

fn lookup(admin: &Admin, set_id: u64) -> Lookup {
    // The set is looked up by id across all services: a removed service's
    // sets still drain, and ids are unique in the daemon.
    for service in admin.proxy().status() {
        for set in std::iter::once(&service.active).chain(service.draining.iter()) {
            if set.id == set_id {
                return match set.state {
                    SetState::Drained => Lookup::Done(SetState::Drained),
                    other => Lookup::Pending(other),
                };
            }
        }
    }
    Lookup::Gone
}

fn state_name(state: SetState) -> &'static str {
    match state {
        SetState::Active => "active",
        SetState::Draining => "draining",
        SetState::Drained => "drained",
    }
}

pub(super) fn parse_timeout(raw: Option<&str>) -> Result<Duration, ApiError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_WAIT);
    };
    let timeout = humantime::parse_duration(raw).map_err(|e| {
        ApiError::bad_request(format!("timeout: invalid duration {raw:?}: {e}"))
            .with_hint("write a duration like 30s, 2m or 500ms")
    })?;
    if timeout > MAX_WAIT {
        return Err(ApiError::bad_request(format!(
            "timeout: {raw} is longer than the maximum of 1h"
        ))
        .with_hint("poll again after a timeout instead"));
    }
    Ok(timeout)
}

/// Returns when the set is drained (at once if it already is), or after
/// `timeout` with `drained: false`.
pub(super) async fn wait_drained(
    State(admin): State<Admin>,
    Path((service, set_id)): Path<(String, u64)>,
    Query(q): Query<WaitQuery>,
) -> Result<Json<DrainedAnswer>, ApiError> {
    let timeout = parse_timeout(q.timeout.as_deref())?;
    let answer = |drained: bool, state: &str| DrainedAnswer {
        service: service.clone(),
        set_id,
        drained,
        state: state.into(),
        cut_requests: None,
        closed_websockets: None,
    };
    // Subscribe before looking: a drain that happens between the look and
    // the subscription would otherwise be missed and the call would hang.
    let mut rx = admin.proxy().subscribe();
    let mut pending = match lookup(&admin, set_id) {
        Lookup::Pending(state) => state,
        Lookup::Done(state) => return Ok(Json(answer(true, state_name(state)))),
        Lookup::Gone => return Ok(Json(answer(true, "gone"))),
    };
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => return Ok(Json(answer(false, state_name(pending)))),
            _ = admin.inner.shutdown.cancelled() => return Err(shutting_down()),
            next = rx.recv() => match next {
                Ok(Event::Drained { set_id: id, cut_requests, closed_websockets, .. }) if id == set_id => {
                    let mut done = answer(true, "drained");
                    done.cut_requests = Some(cut_requests);
                    done.closed_websockets = Some(closed_websockets);
                    return Ok(Json(done));
                }
                Ok(_) => {}
                // Missed events: the status is the truth, look again.
                Err(RecvError::Lagged(_)) => match lookup(&admin, set_id) {
                    Lookup::Pending(state) => pending = state,
                    Lookup::Done(state) => return Ok(Json(answer(true, state_name(state)))),
                    Lookup::Gone => return Ok(Json(answer(true, "gone"))),
                },
                Err(RecvError::Closed) => return Err(shutting_down()),
            },
        }
    }
}

fn shutting_down() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the daemon is shutting down",
    )
    .with_hint("wait for it to come back and ask again")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout(None).unwrap(), DEFAULT_WAIT);
        assert_eq!(
            parse_timeout(Some("250ms")).unwrap(),
            Duration::from_millis(250)
        );
        assert!(parse_timeout(Some("soon"))
            .unwrap_err()
            .report
            .message
            .starts_with("timeout: invalid duration"));
        assert!(parse_timeout(Some("2h")).is_err());
    }
}
