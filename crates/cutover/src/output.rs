//! Human-readable renderings of the daemon's answers.

use std::fmt::Write;

use cutover_core::status::{Health, ServiceStatus, TargetSetStatus};

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
        return "no services; deploy one with the control API (PUT /v1/services/NAME)\n".into();
    }
    let rows: Vec<[String; 5]> = services
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
            [
                s.name.clone(),
                s.active.color.to_string(),
                s.active.version.clone().unwrap_or_else(|| "-".into()),
                routes,
                targets(&s.active),
            ]
        })
        .collect();
    let header = ["SERVICE", "COLOR", "VERSION", "ROUTES", "TARGETS"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: [&str; 5]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<width$}  ", width = widths[i]);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut out, header);
    for (row, service) in rows.iter().zip(services) {
        line(&mut out, [&row[0], &row[1], &row[2], &row[3], &row[4]]);
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
