//! Draining a set that lost the switch: no new requests, in-flight ones run
//! until the drain deadline, upgraded connections until the websocket
//! deadline; then `Event::Drained` tells the deploy engine the old targets
//! may be stopped.

use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use cutover_core::service::Timeouts;
use cutover_core::status::Event;
use cutover_core::target::DeadlineAction;

use crate::context::Context;
use crate::target::TargetSet;

/// Moves `set` to Draining and starts its drain task. Call after the
/// snapshot without the set is published.
pub(crate) fn retire(inner: &Arc<Context>, set: Arc<TargetSet>, timeouts: Timeouts) {
    if !set.with_lifecycle(|l| l.retire()) {
        return;
    }
    set.monitor_stop.cancel();
    // Idle pooled connections would never be used again.
    set.clear_pools();
    inner.tasks.spawn(drain(inner.clone(), set, timeouts));
}

async fn drain(inner: Arc<Context>, set: Arc<TargetSet>, timeouts: Timeouts) {
    let mut http_deadline = pin!(tokio::time::sleep(timeouts.drain));
    let mut ws_deadline = pin!(tokio::time::sleep(timeouts.websocket_drain));
    let (mut http_passed, mut ws_passed) = (false, false);
    loop {
        let (requests, upgraded) = set.load();
        if set.with_lifecycle(|l| l.observe(requests, upgraded)) {
            break;
        }
        tokio::select! {
            _ = set.idle.notified() => {}
            _ = &mut http_deadline, if !http_passed => {
                http_passed = true;
                let (requests, _) = set.load();
                if set.with_lifecycle(|l| l.http_deadline(requests)) == DeadlineAction::CutRequests {
                    tracing::warn!(
                        service = &*set.service, color = set.color.as_str(), requests,
                        "drain timeout ({:?}) passed; cutting in-flight requests", timeouts.drain
                    );
                    set.cut.cancel();
                }
            }
            _ = &mut ws_deadline, if !ws_passed => {
                ws_passed = true;
                let (_, upgraded) = set.load();
                if set.with_lifecycle(|l| l.websocket_deadline(upgraded)) == DeadlineAction::CloseUpgraded {
                    tracing::info!(
                        service = &*set.service, color = set.color.as_str(), upgraded,
                        "websocket drain timeout ({:?}) passed; closing upgraded connections", timeouts.websocket_drain
                    );
                    set.close_upgraded.cancel();
                }
            }
        }
    }
    set.clear_pools();
    let cut_requests = set.cut_requests.load(Ordering::Relaxed);
    let closed_websockets = set.closed_websockets.load(Ordering::Relaxed);
    tracing::info!(
        service = &*set.service,
        color = set.color.as_str(),
        set_id = set.id,
        cut_requests,
        closed_websockets,
        "target set drained"
    );
    inner.forget_drained(&set);
    inner.emit(Event::Drained {
        service: set.service.to_string(),
        set_id: set.id,
        color: set.color,
        version: set.version.clone(),
        cut_requests,
        closed_websockets,
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cutover_core::service::Color;
    use cutover_core::status::{Health, SetState};
    use tokio::time::Instant;

    use super::*;
    use crate::target::{InFlight, Upgraded};
    use crate::{Proxy, ProxyConfig};

    fn set(proxy: &Proxy) -> Arc<TargetSet> {
        Arc::new(TargetSet::new(
            7,
            "svc".into(),
            Color::Blue,
            Some("v1".into()),
            &["127.0.0.1:9".into(), "127.0.0.1:10".into()],
            Health::Healthy,
            &proxy.inner.shutdown,
        ))
    }

    fn timeouts() -> Timeouts {
        Timeouts {
            deploy: Duration::from_secs(60),
            drain: Duration::from_secs(30),
            websocket_drain: Duration::from_secs(300),
        }
    }

    /// Stands in for a request body or relay: ends when `token` fires,
    /// counting itself like the real ones do.
    fn cut_on<G: Send + 'static>(
        token: tokio_util::sync::CancellationToken,
        guard: G,
        count: impl FnOnce() + Send + 'static,
    ) -> tokio::task::JoinHandle<Instant> {
        tokio::spawn(async move {
            token.cancelled().await;
            count();
            drop(guard);
            Instant::now()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_cut_requests_then_close_upgraded() {
        let proxy = Proxy::new(ProxyConfig::default());
        let mut events = proxy.subscribe();
        let set = set(&proxy);
        let request = InFlight::enter(&set, 0).unwrap();
        let upgraded = Upgraded::enter(&set, 1);
        let s = set.clone();
        let req = cut_on(set.cut.clone(), request, move || {
            s.cut_requests.fetch_add(1, Ordering::Relaxed);
        });
        let s = set.clone();
        let ws = cut_on(set.close_upgraded.clone(), upgraded, move || {
            s.closed_websockets.fetch_add(1, Ordering::Relaxed);
        });

        let start = Instant::now();
        retire(&proxy.inner, set.clone(), timeouts());
        assert_eq!(set.state(), SetState::Draining);
        assert!(
            InFlight::enter(&set, 0).is_none(),
            "a draining set takes no new request"
        );

        let ev = events.recv().await.unwrap();
        assert_eq!(
            ev,
            Event::Drained {
                service: "svc".into(),
                set_id: 7,
                color: Color::Blue,
                version: Some("v1".into()),
                cut_requests: 1,
                closed_websockets: 1,
            }
        );
        assert_eq!(set.state(), SetState::Drained);
        assert_eq!(req.await.unwrap() - start, Duration::from_secs(30));
        assert_eq!(ws.await.unwrap() - start, Duration::from_secs(300));
    }

    #[tokio::test(start_paused = true)]
    async fn work_that_ends_in_time_is_not_cut() {
        let proxy = Proxy::new(ProxyConfig::default());
        let mut events = proxy.subscribe();
        let set = set(&proxy);
        let request = InFlight::enter(&set, 0).unwrap();
        let upgraded = Upgraded::enter(&set, 0);
        let start = Instant::now();
        retire(&proxy.inner, set.clone(), timeouts());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(request);
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(upgraded);
        });
        let ev = events.recv().await.unwrap();
        assert!(
            matches!(
                ev,
                Event::Drained {
                    cut_requests: 0,
                    closed_websockets: 0,
                    ..
                }
            ),
            "{ev:?}"
        );
        assert_eq!(start.elapsed(), Duration::from_secs(65));
        assert!(!set.cut.is_cancelled());
        assert!(!set.close_upgraded.is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_set_drains_at_once() {
        let proxy = Proxy::new(ProxyConfig::default());
        let mut events = proxy.subscribe();
        let set = set(&proxy);
        let start = Instant::now();
        retire(&proxy.inner, set.clone(), timeouts());
        let ev = events.recv().await.unwrap();
        assert!(matches!(ev, Event::Drained { set_id: 7, .. }), "{ev:?}");
        assert_eq!(start.elapsed(), Duration::ZERO);
        // Retiring again does nothing (no second event, no second task).
        retire(&proxy.inner, set, timeouts());
        assert!(events.try_recv().is_err());
    }
}
