//! `scale:`, `deploy.replicas:` and `deploy.mode:`: how many containers a
//! service runs. An app runs that many per color, and its new color
//! switches only once all of them pass the health gate; an accessory runs
//! one, and says so. `mode: global` is one on every node of a Swarm (one
//! on one host).

use super::*;

/// An upper bound well under what one route takes (`MAX_TARGETS`), so a
/// typo (`replicas: 300`) is an error rather than 300 containers.
pub(super) const MAX_REPLICAS: u32 = 32;

/// The replica count of a service, from `scale` and `deploy.replicas`
/// (one when neither is written).
pub(super) fn replicas(
    cx: &mut Ctx<'_>,
    scale: Option<&Value>,
    deploy: Option<&Value>,
    is_app: bool,
    p: &KeyPath,
) -> u32 {
    let from_deploy = deploy
        .and_then(Value::as_mapping)
        .and_then(|m| m.get("replicas"))
        .filter(|v| !v.is_null());
    let scale_p = p.key("scale");
    let deploy_p = p.key("deploy").key("replicas");
    let scale = scale.and_then(|v| count(cx, v, &scale_p));
    let deploy = from_deploy.and_then(|v| count(cx, v, &deploy_p));
    let (n, at) = match (scale, deploy) {
        (Some(a), Some(b)) if a != b => {
            cx.error_hint(
                &scale_p,
                format!("scale is {a} and deploy.replicas is {b}"),
                "they are one setting: write one of them",
            );
            return 1;
        }
        (Some(n), _) => (n, scale_p),
        (None, Some(n)) => (n, deploy_p),
        (None, None) => return 1,
    };
    if !is_app {
        if n != 1 {
            cx.warn(
                &at,
                format!("{n} replicas of an accessory: cutover runs one container of it"),
                Some("run more copies of a stateless service as an app (add x-cutover), which runs its replicas per color".into()),
            );
        }
        return 1;
    }
    if n == 0 || n > MAX_REPLICAS {
        cx.error_hint(
            &at,
            format!("an app runs 1 to {MAX_REPLICAS} replicas per color, not {n}"),
            if n == 0 {
                "to stop serving the app, remove it from the compose file or put it in a profile"
                    .to_string()
            } else {
                format!("set at most {MAX_REPLICAS}")
            },
        );
        return 1;
    }
    n
}

/// Whether the service runs one task per node (`deploy.mode: global`).
/// A count beside it is an error, as Swarm refuses it.
pub(super) fn global(
    cx: &mut Ctx<'_>,
    scale: Option<&Value>,
    deploy: Option<&Value>,
    p: &KeyPath,
) -> bool {
    let deploy = deploy.and_then(Value::as_mapping);
    let Some(mode) = deploy.and_then(|m| m.get("mode")).filter(|v| !v.is_null()) else {
        return false;
    };
    let mode_p = p.key("deploy").key("mode");
    let Some(mode) = cx.string(mode, &mode_p) else {
        return false;
    };
    match mode.as_str() {
        "replicated" => false,
        "global" => {
            let replicas = deploy
                .and_then(|m| m.get("replicas"))
                .filter(|v| !v.is_null());
            if let Some((key, _)) = [("deploy.replicas", replicas), ("scale", scale)]
                .into_iter()
                .find(|(_, v)| v.is_some_and(|v| !v.is_null()))
            {
                cx.error_hint(
                    &mode_p,
                    format!("a global service runs one task per node, and {key} sets a count"),
                    format!("write `mode: global` or {key}, not both"),
                );
            }
            true
        }
        other => {
            cx.error_hint(
                &mode_p,
                format!("deploy.mode {other:?} is not one cutover runs"),
                "write `replicated` (the default: deploy.replicas tasks) or `global` (one per node)",
            );
            false
        }
    }
}

fn count(cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> Option<u32> {
    let n = cx.int(v, p)?;
    match u32::try_from(n) {
        Ok(n) => Some(n),
        Err(_) => {
            cx.error(p, format!("expected a count, found {n}"));
            None
        }
    }
}
