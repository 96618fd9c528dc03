//! The OAuth flow whose state lives in Redis: a state issued before a
//! deploy must be redeemable after it, once.

use crate::*;

pub(crate) fn query_param(location: &str, key: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

pub(crate) async fn oauth_get(
    shared: &Shared,
    path: &str,
) -> Option<(StatusCode, http::HeaderMap)> {
    let mut s = connect(&shared.target, shared.args.timeout).await.ok()?;
    request(&mut s, &shared.target, path, shared.args.timeout)
        .await
        .ok()
        .map(|(st, h, _)| (st, h))
}

/// Redeems a state, then replays it: the first use must be accepted, the replay refused.
pub(crate) async fn oauth_redeem(shared: &Shared, state: &str, carried: bool) {
    let path = format!("/api/v1/open/oauth/callback?state={state}");
    let first = oauth_get(shared, &path).await;
    let second = oauth_get(shared, &path).await;
    let mut o = shared.oauth.lock().unwrap();
    if carried {
        o.carried_across_deploy += 1;
    }
    // Only the app's own answers are a verdict on the state: a 2xx/3xx
    // accepts it, a 4xx refuses it. No answer, or a 5xx (a proxy with no
    // upstream, an app without Redis), says nothing about the state and is
    // an error; counting a 502 on the replay as "accepted twice" would blame
    // the app for the proxy's outage.
    match first.map(|(st, _)| verdict(st)) {
        Some(Verdict::Accepted) => o.accepted += 1,
        Some(Verdict::Refused) => o.refused += 1,
        None | Some(Verdict::NoAnswer) => o.errors += 1,
    }
    match second.map(|(st, _)| verdict(st)) {
        Some(Verdict::Refused) => o.second_use_refused += 1,
        Some(Verdict::Accepted) => o.second_use_accepted += 1,
        None | Some(Verdict::NoAnswer) => o.errors += 1,
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Accepted,
    Refused,
    NoAnswer,
}

pub(crate) fn verdict(st: StatusCode) -> Verdict {
    if st.is_success() || st.is_redirection() {
        Verdict::Accepted
    } else if st.is_client_error() {
        Verdict::Refused
    } else {
        Verdict::NoAnswer
    }
}

pub(crate) fn last_transition_ms(shared: &Shared) -> Option<f64> {
    let h = shared.http.lock().unwrap();
    // The first entry is the initial version, not a switch.
    (h.transitions.len() > 1)
        .then(|| h.transitions.last().map(|(t, _)| *t))
        .flatten()
}

pub(crate) async fn oauth_loop(shared: Arc<Shared>) {
    let interval = shared.args.oauth_interval;
    let mut pending: Vec<(String, f64)> = Vec::new();
    let mut tick = tokio::time::interval(interval);
    while shared.running() {
        tick.tick().await;
        if !shared.running() {
            break;
        }
        if let Some((st, headers)) = oauth_get(&shared, "/api/v1/open/oauth/start").await {
            let state = headers
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| query_param(l, "state"));
            match (st.is_redirection(), state) {
                (true, Some(s)) => {
                    let mut o = shared.oauth.lock().unwrap();
                    o.supported = true;
                    o.issued += 1;
                    pending.push((s, shared.now_ms()));
                }
                _ if st == StatusCode::NOT_FOUND => {
                    tracing::info!(
                        "no OAuth endpoint at /api/v1/open/oauth/start; OAuth check skipped"
                    );
                    return;
                }
                _ => shared.oauth.lock().unwrap().errors += 1,
            }
        } else {
            shared.oauth.lock().unwrap().errors += 1;
        }
        if let Some(switch) = last_transition_ms(&shared) {
            let (carried, rest): (Vec<_>, Vec<_>) = pending
                .into_iter()
                .partition(|(_, issued)| *issued < switch);
            pending = rest;
            for (s, _) in carried {
                oauth_redeem(&shared, &s, true).await;
            }
        }
    }
    for (s, _) in pending {
        oauth_redeem(&shared, &s, false).await;
    }
}
