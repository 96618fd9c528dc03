//! Human-readable renderings of the daemon's answers.

use cutover_core::tls::CertificateStatus;
use std::fmt::Write;

use cutover_core::compose::EnvChanges;
use cutover_core::plan::{
    ConfigChange, DeployReason, ImageAction, Plan, RecreateReason, StartReason, Step,
};
use cutover_core::report::{AppStatus, HistoryEntry, ProjectStatus, ProjectSummary, StagedVersion};
use cutover_core::service::Color;
use cutover_core::status::{Health, ServiceStatus, TargetSetStatus};

use crate::progress::Paint;

mod nodes;
pub use nodes::nodes_table;

fn health(h: Health) -> &'static str {
    match h {
        Health::Unknown => "unknown",
        Health::Healthy => "healthy",
        Health::Unhealthy => "unhealthy",
    }
}

fn targets(set: &TargetSetStatus) -> String {
    set.targets
        .iter()
        .map(|t| format!("{} ({})", t.addr, health(t.health)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line per service, then one indented line per draining set.
pub fn services_table(services: &[ServiceStatus]) -> String {
    if services.is_empty() {
        return "no services; deploy a compose project with `cutover deploy`, or a service with the control API (PUT /v1/services/NAME)\n".into();
    }
    let rows: Vec<Vec<String>> = services
        .iter()
        .map(|s| {
            let routes = match (s.config.hosts.is_empty(), &s.config.path_prefix) {
                (true, None) => "*".to_string(),
                (true, Some(p)) => format!("*{p}"),
                (false, p) => s
                    .config
                    .hosts
                    .iter()
                    .map(|h| format!("{h}{}", p.as_deref().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(","),
            };
            vec![
                s.name.clone(),
                s.active.color.to_string(),
                s.active.version.clone().unwrap_or_else(|| "-".into()),
                routes,
                targets(&s.active),
            ]
        })
        .collect();
    let header = ["SERVICE", "COLOR", "VERSION", "ROUTES", "TARGETS"];
    let laid_out = table(&header, &rows, "");
    let mut lines = laid_out.lines();
    let mut out = String::new();
    if let Some(head) = lines.next() {
        out.push_str(head);
        out.push('\n');
    }
    for (line, service) in lines.zip(services) {
        out.push_str(line);
        out.push('\n');
        for set in &service.draining {
            let _ = writeln!(
                out,
                "  draining set {} ({}, {}): {}",
                set.id,
                set.color,
                set.version.as_deref().unwrap_or("-"),
                targets(set)
            );
        }
    }
    out
}

/// Lays rows out in columns two spaces apart; the last column is not padded.
/// Cells may be painted: colour codes take no room on the screen, so they
/// do not count towards a column's width.
pub fn table(header: &[&str], rows: &[Vec<String>], indent: &str) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(display_width(cell));
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut text = String::from(indent);
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                text.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(display_width(cell));
                text.push_str(cell);
                text.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// Columns `text` takes in a terminal: characters outside ANSI escape
/// sequences (`ESC [ ... letter`, which is all [`Paint`] writes).
fn display_width(text: &str) -> usize {
    let mut width = 0;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            width += 1;
        }
    }
    width
}

/// `3m ago`, from Unix milliseconds.
fn ago(since_ms: u64, now_ms: u64) -> String {
    let secs = now_ms.saturating_sub(since_ms) / 1000;
    match secs {
        0..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{}m ago", secs / 60),
        3600..=86_399 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

/// Apps, accessories and networks of one project; `paint` colours the colors.
pub fn project_status(s: &ProjectStatus, paint: Paint, now_ms: u64) -> String {
    let mut out = format!("project {}", s.project);
    if let Some(busy) = &s.busy {
        let what = match busy.operation.as_str() {
            "" => "an operation",
            op => op,
        };
        out.push_str(&format!(" ({what} running)"));
    }
    out.push('\n');
    if s.apps.is_empty() && s.accessories.is_empty() {
        out.push_str("  nothing deployed; deploy it with `cutover deploy`\n");
    }
    if !s.apps.is_empty() {
        let rows: Vec<Vec<String>> = s
            .apps
            .iter()
            .map(|a| {
                let kept = if a.kept.is_empty() {
                    "-".to_string()
                } else {
                    a.kept
                        .iter()
                        .map(|k| {
                            if k.stopping {
                                format!("{} (stopping)", k.version)
                            } else if k.retiring {
                                format!("{} (draining)", k.version)
                            } else if k.killed {
                                format!("{} (stopped, killed)", k.version)
                            } else {
                                format!("{} (stopped)", k.version)
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                match &a.live {
                    Some(l) => vec![
                        a.service.clone(),
                        match l.color {
                            Color::Blue => paint.blue(l.color.as_str()),
                            Color::Green => paint.green(l.color.as_str()),
                        },
                        l.version.clone(),
                        l.health
                            .map(|h| health(h).to_string())
                            .unwrap_or_else(|| "not routed".into()),
                        l.since_ms
                            .map(|t| ago(t, now_ms))
                            .unwrap_or_else(|| "-".into()),
                        kept,
                        a.draining_connections.to_string(),
                        l.container.clone(),
                    ],
                    None => vec![
                        a.service.clone(),
                        "-".into(),
                        "-".into(),
                        "not live".into(),
                        "-".into(),
                        kept,
                        a.draining_connections.to_string(),
                        "-".into(),
                    ],
                }
            })
            .collect();
        out.push_str(&table(
            &[
                "APP",
                "COLOR",
                "VERSION",
                "HEALTH",
                "SINCE",
                "KEPT",
                "DRAINING",
                "CONTAINER",
            ],
            &rows,
            "  ",
        ));
        for a in &s.apps {
            for k in a.kept.iter().filter(|k| k.killed) {
                out.push_str(&format!(
                    "  {} {} version {} did not exit within its stop_grace_period after SIGTERM and was killed (exit 137): its PID 1 probably ignores signals; use `init: true`, or `exec` the app from a shell entrypoint (or it ran out of memory)\n",
                    paint.yellow("!"),
                    a.service,
                    k.version
                ));
            }
            if let Some(st) = &a.staged {
                out.push_str(&staged_line(a, st, paint));
            }
            if let Some(m) = &a.maintenance {
                out.push_str(&format!(
                    "  {} {} is in maintenance (since {}): {}; `cutover maintenance off` serves again\n",
                    paint.yellow("!"),
                    a.service,
                    ago(m.since_ms, now_ms),
                    match m.hold {
                        Some(h) => format!("requests are held up to {}", humantime::format_duration(h)),
                        None => "requests get a 503 page".into(),
                    }
                ));
            }
        }
    }
    if !s.accessories.is_empty() {
        let rows: Vec<Vec<String>> = s
            .accessories
            .iter()
            .map(|a| {
                let state = match &a.health {
                    Some(h) => format!("{} ({h})", a.state),
                    None => a.state.clone(),
                };
                vec![
                    a.service.clone(),
                    state,
                    a.image.clone(),
                    if a.published.is_empty() {
                        "-".into()
                    } else {
                        a.published.join(",")
                    },
                    a.container.clone(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["ACCESSORY", "STATE", "IMAGE", "PUBLISHED", "CONTAINER"],
            &rows,
            "  ",
        ));
    }
    if !s.networks.is_empty() {
        let rows: Vec<Vec<String>> = s
            .networks
            .iter()
            .map(|n| {
                vec![
                    n.name.clone(),
                    if n.external { "external" } else { "cutover" }.into(),
                    if n.attached.is_empty() {
                        "-".into()
                    } else {
                        n.attached.join(", ")
                    },
                ]
            })
            .collect();
        out.push_str(&table(&["NETWORK", "OWNER", "ATTACHED"], &rows, "  "));
    }
    out
}

pub fn history_table(project: &str, entries: &[HistoryEntry]) -> String {
    if entries.is_empty() {
        return format!("no deploys of project {project} yet\n");
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(e.time_ms);
            vec![
                humantime::format_rfc3339_seconds(time).to_string(),
                e.operation.clone(),
                e.service.clone().unwrap_or_else(|| "-".into()),
                e.version.clone().unwrap_or_else(|| "-".into()),
                e.color.map_or("-", Color::as_str).to_string(),
                e.result.as_str().to_string(),
                crate::progress::elapsed(e.duration_ms),
                e.error
                    .as_deref()
                    .and_then(|m| m.lines().next())
                    .unwrap_or("")
                    .to_string(),
            ]
        })
        .collect();
    table(
        &[
            "TIME",
            "OPERATION",
            "SERVICE",
            "VERSION",
            "COLOR",
            "RESULT",
            "TOOK",
            "ERROR",
        ],
        &rows,
        "",
    )
}

fn env_keys(c: &EnvChanges) -> Vec<String> {
    let mut parts = Vec::new();
    if !c.added.is_empty() {
        parts.push(format!("added {}", c.added.join(", ")));
    }
    if !c.changed.is_empty() {
        parts.push(format!("changed {}", c.changed.join(", ")));
    }
    if !c.removed.is_empty() {
        parts.push(format!("removed {}", c.removed.join(", ")));
    }
    parts
}

fn config_change(c: &ConfigChange) -> String {
    if c.fields.is_empty() && c.env.is_empty() {
        return "configuration changed".into();
    }
    let mut s = format!("changed: {}", c.fields.join(", "));
    let env = env_keys(&c.env);
    if !env.is_empty() {
        s.push_str(&format!("; env keys {}, values not shown", env.join("; ")));
    }
    s
}

fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

/// The plan as steps in the order the deploy runs them. Env values never
/// appear: only the keys that changed.
/// The hooks each app the plan deploys will run, from the compose file the
/// deploy sends; nothing when none has any.
pub fn plan_hooks(
    plan: &Plan,
    hooks: &std::collections::BTreeMap<String, cutover_core::compose::Hooks>,
) -> String {
    let mut out = String::new();
    for step in &plan.steps {
        let Step::DeployApp { service, .. } = step else {
            continue;
        };
        let Some(h) = hooks.get(service) else {
            continue;
        };
        for (hook, when) in [
            (&h.pre_deploy, "pre_deploy, before it starts"),
            (&h.post_deploy, "post_deploy, after the switch"),
            (&h.on_failure, "on_failure, if its deploy fails"),
        ] {
            if let Some(hook) = hook {
                out.push_str(&format!("  {service} runs {when}: {}\n", hook.shown()));
            }
        }
    }
    out
}

pub fn plan_text(project: &str, plan: &Plan) -> String {
    let mut out = format!("plan for project {project}:\n");
    let built = |service: &str| {
        plan.images.iter().any(|i| {
            matches!(i.action, ImageAction::Build { .. }) && i.services.iter().any(|s| s == service)
        })
    };
    for image in &plan.images {
        let services = image.services.join(", ");
        let line = match &image.action {
            ImageAction::Build { context } => {
                format!("build {} for {services} from {context}", image.image)
            }
            ImageAction::Pull { local: Some(id) } => format!(
                "pull {} for {services} (on this host as {} now)",
                image.image,
                short_id(id)
            ),
            ImageAction::Pull { local: None } => {
                format!("pull {} for {services} (not on this host)", image.image)
            }
            ImageAction::Local { id } => format!(
                "use {} for {services} (on this host, {})",
                image.image,
                short_id(id)
            ),
        };
        out.push_str(&format!("  {line}\n"));
    }
    for step in &plan.steps {
        let line = match step {
            Step::CreateNetwork { name, .. } => format!("create network {name}"),
            Step::CreateVolume { name, .. } => format!("create volume {name}"),
            Step::StartAccessory {
                service,
                container,
                reason,
            } => format!(
                "start accessory {service} as {container} ({})",
                match reason {
                    StartReason::Missing => "not created yet",
                    StartReason::Stopped => "stopped",
                }
            ),
            Step::RecreateAccessory {
                service,
                container,
                reason,
            } => format!(
                "recreate accessory {service} as {container} ({})",
                match reason {
                    RecreateReason::ConfigChanged(c) => config_change(c),
                    RecreateReason::ImageChanged { from, to } =>
                        format!("image {} -> {}", short_id(from), short_id(to)),
                }
            ),
            Step::LeaveAccessory { service, container } => {
                format!("keep accessory {service} running as {container} (unchanged)")
            }
            Step::StartGateway {
                service,
                name,
                networks,
                replace,
            } => format!(
                "{} gateway {name}, answering for {service} on {}{}",
                if *replace { "replace" } else { "start" },
                networks.join(", "),
                if *replace {
                    " (its port, networks or names changed; task by task, new ones first)"
                } else {
                    ""
                }
            ),
            Step::DeployApp {
                service,
                color,
                container,
                version,
                reuse,
                reason,
                replicas,
            } => {
                let mut s = format!("deploy app {service} to {color} as {container}");
                if *replicas > 1 {
                    s.push_str(&format!(" and {} more replicas", replicas - 1));
                }
                if let Some(v) = version {
                    s.push_str(&format!(", version {v}"));
                }
                s.push_str(&format!(
                    " ({})",
                    match reason {
                        DeployReason::New => "first deploy".to_string(),
                        DeployReason::ImageChanged { from, to } =>
                            format!("image {} -> {}", short_id(from), short_id(to)),
                        DeployReason::ConfigChanged(c) => config_change(c),
                        DeployReason::Forced => "--force".into(),
                    }
                ));
                if let Some(r) = reuse {
                    s.push_str(&format!("; restarts kept container {r}"));
                }
                s
            }
            Step::AppUpToDate {
                service,
                color,
                version,
            } if built(service) => format!(
                "app {service} is up to date ({color}, version {version}) unless its build gives a new image"
            ),
            Step::AppUpToDate {
                service,
                color,
                version,
            } => format!("app {service} is up to date ({color}, version {version})"),
            Step::UpdateRoute { service, changed } => format!(
                "update how the proxy routes to {service}: {}",
                changed.join(", ")
            ),
            Step::RemoveOldVersions {
                service,
                containers,
            } => format!(
                "after the deploy, remove old versions of {service}: {}",
                containers.join(", ")
            ),
        };
        out.push_str(&format!("  {line}\n"));
    }
    if plan.is_noop() {
        out.push_str("nothing to do: everything is up to date\n");
    }
    for w in &plan.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}

/// The deployed projects, after the services table; nothing when none.
pub fn projects_table(projects: &[ProjectSummary]) -> String {
    if projects.is_empty() {
        return String::new();
    }
    let rows: Vec<Vec<String>> = projects
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.containers.to_string(),
                p.running.to_string(),
            ]
        })
        .collect();
    format!(
        "\n{}hint: `cutover status -p NAME` shows a project's apps, accessories and networks\n",
        table(&["PROJECT", "CONTAINERS", "RUNNING"], &rows, "")
    )
}

/// The certificates the daemon serves or is ordering; nothing when none.
pub fn certificates_table(certs: &[CertificateStatus]) -> String {
    if certs.is_empty() {
        return String::new();
    }
    let at = |t: Option<std::time::SystemTime>| {
        t.map_or("-".to_string(), |t| {
            humantime::format_rfc3339_seconds(t).to_string()
        })
    };
    let rows: Vec<Vec<String>> = certs
        .iter()
        .map(|c| {
            vec![
                c.hosts.join(","),
                c.source.clone(),
                c.issuer.clone().unwrap_or_else(|| "-".into()),
                at(c.not_after),
                // Marks a time drawn in the CA's renewal window (ARI).
                match c.renewal_window {
                    Some(_) => format!("{} (ARI)", at(c.next_renewal)),
                    None => at(c.next_renewal),
                },
                c.last_error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    format!(
        "\n{}",
        table(
            &[
                "CERTIFICATE",
                "SOURCE",
                "ISSUER",
                "NOT AFTER",
                "NEXT RENEWAL",
                "LAST ERROR"
            ],
            &rows,
            ""
        )
    )
}

/// `  > web v5 is staged in athens-web-green (canary 10%): 40 requests, 0 errors
/// (live: 400 requests, 2 errors); `cutover promote` or `cutover abort``
fn staged_line(a: &AppStatus, st: &StagedVersion, paint: Paint) -> String {
    let counts = |requests: u64, errors: u64| {
        format!(
            "{requests} request{}, {errors} error{}",
            if requests == 1 { "" } else { "s" },
            if errors == 1 { "" } else { "s" }
        )
    };
    let live = a
        .live
        .as_ref()
        .map(|l| format!(" (live: {})", counts(l.requests, l.errors)))
        .unwrap_or_default();
    let hosts = if st.preview_hosts.is_empty() {
        String::new()
    } else {
        format!(", at {}", st.preview_hosts.join(", "))
    };
    format!(
        "  {} {} {} is staged in {} ({}{hosts}): {}{live}; `cutover promote` puts it live, `cutover abort` drops it\n",
        paint.yellow(">"),
        a.service,
        st.version,
        st.container,
        st.mode.describe(),
        counts(st.requests, st.errors),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_show_their_dates_and_last_error() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let certs = [
            CertificateStatus {
                hosts: vec!["shop.example.com".into()],
                services: vec!["shop/web".into()],
                source: "acme".into(),
                issuer: Some("R11".into()),
                not_after: Some(t),
                next_renewal: Some(t),
                renewal_window: Some(cutover_core::tls::RenewalWindow {
                    start: t,
                    end: t,
                    explanation: None,
                }),
                last_error: None,
            },
            CertificateStatus {
                hosts: vec!["new.example.com".into()],
                services: vec![],
                source: "acme".into(),
                issuer: None,
                not_after: None,
                next_renewal: None,
                renewal_window: None,
                last_error: Some("Http01 validation failed: connection refused".into()),
            },
        ];
        insta::assert_snapshot!(certificates_table(&certs), @r"
        CERTIFICATE       SOURCE  ISSUER  NOT AFTER             NEXT RENEWAL                LAST ERROR
        shop.example.com  acme    R11     2027-01-15T08:00:00Z  2027-01-15T08:00:00Z (ARI)
        new.example.com   acme    -       -                     -                           Http01 validation failed: connection refused
        ");
        assert_eq!(certificates_table(&[]), "");
    }

    fn sample() -> ProjectStatus {
        serde_json::from_value(serde_json::json!({
            "project": "athens",
            "apps": [{
                "service": "backend",
                "route": "athens/backend",
                "live": {
                    "color": "green", "version": "3f2a9c1", "version_id": "ab12",
                    "container": "athens-backend-green", "health": "healthy",
                    "since_ms": 1_000_000, "targets": []
                },
                "kept": [
                    {"version": "1e0d7b2", "version_id": "cd34", "container": "athens-backend-blue", "released_ms": 2, "retiring": true},
                    {"version": "0a9f3e1", "version_id": "ef56", "container": "athens-backend-ef56", "released_ms": 1, "killed": true}
                ],
                "draining_connections": 2,
                "maintenance": {"message": "back soon", "retry_after": "1m", "since_ms": 1_060_000}
            }],
            "accessories": [{
                "service": "redis", "container": "athens-redis", "state": "running",
                "health": "healthy", "image": "redis:7", "published": []
            }],
            "networks": [{"name": "athens_app-network", "external": false,
                          "attached": ["athens-redis", "athens-backend-green"]}],
            "busy": null,
            "a_field_from_a_newer_daemon": true
        }))
        .unwrap()
    }

    #[test]
    fn project_status_text() {
        let text = project_status(&sample(), Paint { on: false }, 1_000_000 + 180_000);
        insta::assert_snapshot!(text, @r"
        project athens
          APP      COLOR  VERSION  HEALTH   SINCE   KEPT                                           DRAINING  CONTAINER
          backend  green  3f2a9c1  healthy  3m ago  1e0d7b2 (draining), 0a9f3e1 (stopped, killed)  2         athens-backend-green
          ! backend version 0a9f3e1 did not exit within its stop_grace_period after SIGTERM and was killed (exit 137): its PID 1 probably ignores signals; use `init: true`, or `exec` the app from a shell entrypoint (or it ran out of memory)
          ! backend is in maintenance (since 2m ago): requests get a 503 page; `cutover maintenance off` serves again
          ACCESSORY  STATE              IMAGE    PUBLISHED  CONTAINER
          redis      running (healthy)  redis:7  -          athens-redis
          NETWORK             OWNER    ATTACHED
          athens_app-network  cutover  athens-redis, athens-backend-green
        ");
    }

    #[test]
    fn painted_cells_line_up_like_plain_ones() {
        let plain = project_status(&sample(), Paint { on: false }, 1_000_000 + 180_000);
        let painted = project_status(&sample(), Paint { on: true }, 1_000_000 + 180_000);
        assert_ne!(plain, painted, "the sample paints its color column");
        let strip = |t: &str| {
            t.replace("\x1b[32m", "")
                .replace("\x1b[33m", "")
                .replace("\x1b[34m", "")
                .replace("\x1b[0m", "")
        };
        assert_eq!(strip(&painted), plain);
        assert_eq!(display_width("\x1b[32mgreen\x1b[0m"), 5);
    }

    #[test]
    fn history_text() {
        let entries: Vec<HistoryEntry> = serde_json::from_value(serde_json::json!([
            {"time_ms": 1_764_000_000_000u64, "project": "athens", "operation": "deploy",
             "service": "backend", "version": "42", "color": "green", "result": "ok",
             "duration_ms": 8_400, "error": null},
            {"time_ms": 1_764_000_600_000u64, "project": "athens", "operation": "deploy",
             "service": null, "version": null, "color": null, "result": "lock_timeout",
             "duration_ms": 30_000, "error": "project athens is busy\nhint: wait",
             "a_field_from_a_newer_daemon": 1}
        ]))
        .unwrap();
        insta::assert_snapshot!(history_table("athens", &entries), @r"
        TIME                  OPERATION  SERVICE  VERSION  COLOR  RESULT        TOOK   ERROR
        2025-11-24T16:00:00Z  deploy     backend  42       green  ok            8.4s
        2025-11-24T16:10:00Z  deploy     -        -        -      lock_timeout  30.0s  project athens is busy
        ");
    }

    #[test]
    fn plan_text_names_env_keys_never_values() {
        let plan: Plan = serde_json::from_value(serde_json::json!({
            "steps": [
                {"step": "leave_accessory", "service": "redis", "container": "athens-redis"},
                {"step": "deploy_app", "service": "backend", "color": "green",
                 "container": "athens-backend-green", "version": "9c1",
                 "reuse": null,
                 "reason": {"kind": "config_changed", "fields": ["environment"],
                            "env": {"added": ["REDIS_PASSWORD"], "removed": [], "changed": ["REDIS_HOST"]}}},
                {"step": "remove_old_versions", "service": "backend", "containers": ["athens-backend-1e0d7b2"]}
            ],
            "warnings": [{"message": "redis publishes 0.0.0.0:6379 with no password", "hint": "remove `ports:`"}]
        }))
        .unwrap();
        insta::assert_snapshot!(plan_text("athens", &plan), @r"
        plan for project athens:
          keep accessory redis running as athens-redis (unchanged)
          deploy app backend to green as athens-backend-green, version 9c1 (changed: environment; env keys added REDIS_PASSWORD; changed REDIS_HOST, values not shown)
          after the deploy, remove old versions of backend: athens-backend-1e0d7b2
        warning: redis publishes 0.0.0.0:6379 with no password
        hint: remove `ports:`
        ");
    }
}
