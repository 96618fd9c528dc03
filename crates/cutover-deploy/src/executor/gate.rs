//! What the deploy watches while the proxy health-gates a new container:
//! the container itself. One that exits (or is restarted by its restart
//! policy) will never pass the gate, so the deploy fails at once with its
//! exit code instead of after the whole `deploy_timeout`; and the log the
//! user sees opens with the container's first lines, where the start-up
//! message is, not only the probe's access lines at the end.

use std::time::Duration;

use cutover_core::diag::Report;
use cutover_docker::{ContainerInfo, ContainerState, Engine};

/// How often the container's state is read during the gate.
const POLL: Duration = Duration::from_millis(250);
/// Lines shown from the start and from the end of the log.
pub const HEAD_LINES: usize = 10;
pub const TAIL_LINES: usize = 30;
/// The most log lines read to find the first ones; a container that has
/// just started has written far fewer.
const READ_LINES: usize = 20_000;

/// Resolves when `slot` has stopped running: exited, died, or crashed and
/// was restarted by its policy. Pending forever while it runs.
pub async fn exited(engine: &dyn Engine, replicas: &[String]) -> Report {
    loop {
        tokio::time::sleep(POLL).await;
        for name in replicas {
            if let Ok(Some(info)) = engine.inspect_container(name).await {
                if let Some(report) = stopped(&info) {
                    return report;
                }
            }
        }
    }
}

/// Why `info`'s container will not pass its health check: it is not
/// running, or its restart policy already restarted it after a crash.
pub fn stopped(info: &ContainerInfo) -> Option<Report> {
    let slot = &info.name;
    let code = info
        .exit_code
        .map_or_else(|| "unknown".to_string(), |c| c.to_string());
    let hint = "the container's log is above; fix what stops it, then deploy again";
    if matches!(info.state, ContainerState::Exited | ContainerState::Dead) {
        return Some(
            Report::new(format!(
                "{slot} exited with code {code} before its health check passed"
            ))
            .hint(hint),
        );
    }
    (info.restart_count > 0).then(|| {
        Report::new(format!(
            "{slot} crashed (exit code {code}) and was restarted {} time(s) before its health check passed",
            info.restart_count
        ))
        .hint(hint)
    })
}

/// The first and last lines of `slot`'s log, with a line saying how many
/// lay between when some were left out.
pub async fn log_excerpt(engine: &dyn Engine, slot: &str) -> Vec<String> {
    let lines = match engine.logs_tail(slot, READ_LINES).await {
        Ok(l) => l.into_iter().map(|l| l.text).collect::<Vec<_>>(),
        Err(e) => return vec![format!("(could not read the logs: {e})")],
    };
    excerpt(lines)
}

fn excerpt(mut lines: Vec<String>) -> Vec<String> {
    if lines.len() <= HEAD_LINES + TAIL_LINES {
        return lines;
    }
    let tail = lines.split_off(lines.len() - TAIL_LINES);
    let skipped = lines.len() - HEAD_LINES;
    lines.truncate(HEAD_LINES);
    lines.push(format!("… {skipped} lines …"));
    lines.extend(tail);
    lines
}

/// When the probe's connection was refused and the log names another
/// port the process listens on, the likely mistake is `x-cutover.port`.
pub fn port_hint(detail: &str, lines: &[String], port: u16) -> Option<String> {
    if !detail.to_ascii_lowercase().contains("refused") {
        return None;
    }
    let other = lines
        .iter()
        .find_map(|l| listening_port(l).filter(|p| *p != port))?;
    Some(format!(
        "the log says the app listens on port {other}, but x-cutover.port is {port}; set x-cutover.port: {other} (or make the app listen on {port})"
    ))
}

/// A port a start-up line announces: `listening on 0.0.0.0:3000`,
/// `Listening at http://[::]:8000`, `port 5000`.
fn listening_port(line: &str) -> Option<u16> {
    let lower = line.to_ascii_lowercase();
    let at = [
        "listening",
        "listen on",
        "running on",
        "serving on",
        "started on",
        "bound to",
    ]
    .iter()
    .find_map(|w| lower.find(w))?;
    let rest = &lower[at..];
    // The last number after a `:` or the word `port`, so a version or a
    // timestamp before the announcement is not taken.
    let mut candidates = rest
        .match_indices([':', ' '])
        .filter_map(|(i, _)| {
            let digits: String = rest[i + 1..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            let preceded_by_port = rest[..i].ends_with("port");
            let after_colon = rest[i..].starts_with(':');
            ((after_colon || preceded_by_port) && !digits.is_empty())
                .then(|| digits.parse::<u16>().ok())
                .flatten()
        })
        .filter(|p| *p > 0);
    candidates.next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_excerpt_keeps_the_first_and_last_lines() {
        let lines: Vec<String> = (1..=100).map(|i| format!("line {i}")).collect();
        let e = excerpt(lines);
        assert_eq!(e.len(), HEAD_LINES + 1 + TAIL_LINES);
        assert_eq!(e[0], "line 1");
        assert_eq!(e[HEAD_LINES], "… 60 lines …");
        assert_eq!(e.last().unwrap(), "line 100");
        assert_eq!(excerpt(vec!["a".into()]), ["a"]);
    }

    #[test]
    fn a_refused_probe_and_another_listening_port_point_at_x_cutover_port() {
        let log = |l: &str| vec!["booting".to_string(), l.to_string()];
        let refused = "10.0.0.2:8080: connection refused";
        for (line, want) in [
            ("Listening on 0.0.0.0:3000", Some(3000)),
            ("INFO Listening at: http://[::]:8000 (1)", Some(8000)),
            ("server listening on port 5000", Some(5000)),
            (
                "2024-01-01T10:00:00 Running on http://127.0.0.1:4000/",
                Some(4000),
            ),
            ("Listening on 0.0.0.0:8080", None),
            ("ready", None),
        ] {
            let hint = port_hint(refused, &log(line), 8080);
            assert_eq!(hint.is_some(), want.is_some(), "{line}: {hint:?}");
            if let Some(p) = want {
                assert!(hint.unwrap().contains(&format!("port {p}")), "{line}");
            }
        }
        assert_eq!(
            port_hint("status 500", &log("Listening on :3000"), 8080),
            None
        );
    }
}
