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

use crate::handle::Inner;
use crate::target::TargetSet;

/// Moves `set` to Draining and starts its drain task. Call after the
/// snapshot without the set is published.
pub(crate) fn retire(inner: &Arc<Inner>, set: Arc<TargetSet>, timeouts: Timeouts) {
    if !set.with_lifecycle(|l| l.retire()) {
        return;
    }
    set.monitor_stop.cancel();
    // Idle pooled connections would never be used again.
    set.clear_pools();
    inner.tasks.spawn(drain(inner.clone(), set, timeouts));
}

async fn drain(inner: Arc<Inner>, set: Arc<TargetSet>, timeouts: Timeouts) {
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
