//! Rendering of a deploy's, rollback's or down's progress stream: a spinner
//! per step in a terminal, timestamped plain lines in CI, the events
//! verbatim with `--json`. The plain rendering is a pure function of the
//! events so that it can be tested without a terminal or a clock.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime};

use cutover_core::progress::{Outcome, ProgressEvent};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::client::ResponseStream;
use crate::error::CliError;
use crate::exit::ExitStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Json,
    Plain,
    Terminal,
}

impl Mode {
    pub fn detect(json: bool) -> Mode {
        if json {
            Mode::Json
        } else if std::io::stdout().is_terminal() {
            Mode::Terminal
        } else {
            Mode::Plain
        }
    }
}

/// `NO_COLOR` (any value, even empty) turns colour off, and so does a
/// stdout that is not a terminal.
pub fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

/// Text styles, empty when colour is off.
#[derive(Debug, Clone, Copy)]
pub struct Paint {
    pub on: bool,
}

impl Paint {
    fn wrap(self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    pub fn green(self, t: &str) -> String {
        self.wrap("32", t)
    }
    pub fn red(self, t: &str) -> String {
        self.wrap("31", t)
    }
    pub fn yellow(self, t: &str) -> String {
        self.wrap("33", t)
    }
    pub fn blue(self, t: &str) -> String {
        self.wrap("34", t)
    }
    pub fn dim(self, t: &str) -> String {
        self.wrap("2", t)
    }
    pub fn bold(self, t: &str) -> String {
        self.wrap("1", t)
    }
}

/// `1.2s`, `350ms`, `2m05s`: short, for step lines.
pub fn elapsed(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// A line of output and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub stderr: bool,
    pub text: String,
}

fn out(text: String) -> Line {
    Line {
        stderr: false,
        text,
    }
}

fn err(text: String) -> Line {
    Line { stderr: true, text }
}

/// The lines an event is shown as, without timestamps or colour: shared by
/// the plain and the terminal rendering. A failed end goes to stderr as an
/// `error:` with its hint (docs/style.md).
pub fn event_lines(event: &ProgressEvent, paint: Paint) -> Vec<Line> {
    match event {
        ProgressEvent::Unknown => Vec::new(),
        ProgressEvent::StepStarted { what, .. } => vec![out(format!("{what} ..."))],
        ProgressEvent::StepDone {
            what,
            detail,
            elapsed_ms,
            ..
        } => {
            let detail = detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            // A step that took no time (one handed to the background) shows
            // none rather than `(0ms)`.
            let took = match elapsed_ms {
                0 => String::new(),
                ms => format!(" {}", paint.dim(&format!("({})", elapsed(*ms)))),
            };
            vec![out(format!("{} {what}{detail}{took}", paint.green("done")))]
        }
        ProgressEvent::StepFailed {
            what,
            error,
            elapsed_ms,
            ..
        } => {
            // The hint of a failed step comes again with the operation's end.
            let mut lines = error.lines().filter(|l| !l.starts_with("hint: "));
            let first = lines.next().unwrap_or_default();
            let mut v = vec![out(format!(
                "{} {what}: {first} {}",
                paint.red("failed"),
                paint.dim(&format!("({})", elapsed(*elapsed_ms)))
            ))];
            v.extend(lines.map(|l| out(format!("  {l}"))));
            v
        }
        ProgressEvent::Warning { message, hint } => {
            let mut v = vec![err(format!("{} {message}", paint.yellow("warning:")))];
            v.extend(hint.iter().map(|h| err(format!("hint: {h}"))));
            v
        }
        ProgressEvent::Logs { container, lines } => {
            // The daemon sends the first and the last lines, with a `… N
            // lines …` line between when it left some out.
            if lines.is_empty() {
                return vec![out(format!("log of {container}: empty"))];
            }
            let mut v = vec![out(format!("log of {container}:"))];
            v.extend(
                lines
                    .iter()
                    .map(|l| out(format!("  {} {l}", paint.dim("|")))),
            );
            v
        }
        ProgressEvent::Output { container, line } => {
            vec![out(format!("  {container} {} {line}", paint.dim("|")))]
        }
        ProgressEvent::Switched {
            service,
            color,
            version,
        } => {
            let c = color.to_string();
            let c = match c.as_str() {
                "blue" => paint.blue(&c),
                _ => paint.green(&c),
            };
            vec![out(format!(
                "{} traffic of {service} now goes to {c} (version {version})",
                paint.bold("switched:")
            ))]
        }
        ProgressEvent::Finished {
            outcome,
            message,
            detail,
            hint,
            elapsed_ms,
        } => match outcome {
            Outcome::Ok | Outcome::UpToDate => vec![out(format!(
                "{message} {}",
                paint.dim(&format!("(in {})", elapsed(*elapsed_ms)))
            ))],
            _ => {
                let mut v: Vec<Line> = message
                    .lines()
                    .enumerate()
                    .map(|(i, l)| {
                        if i == 0 {
                            err(format!("{} {l}", paint.red("error:")))
                        } else {
                            err(format!("  {l}"))
                        }
                    })
                    .collect();
                v.extend(
                    detail
                        .iter()
                        .flat_map(|d| d.lines())
                        .map(|l| err(format!("  {l}"))),
                );
                v.extend(hint.iter().map(|h| err(format!("hint: {h}"))));
                v
            }
        },
    }
}

/// The CI rendering: every line prefixed with an RFC 3339 timestamp.
pub fn plain_lines(event: &ProgressEvent, timestamp: &str) -> Vec<Line> {
    event_lines(event, Paint { on: false })
        .into_iter()
        .map(|l| Line {
            stderr: l.stderr,
            text: format!("{timestamp} {}", l.text),
        })
        .collect()
}

pub fn rfc3339_now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Shows a stream as it arrives and returns the exit status of its end.
pub struct Renderer {
    mode: Mode,
    paint: Paint,
    multi: Option<MultiProgress>,
    bars: HashMap<u32, ProgressBar>,
    finished: Option<Outcome>,
}

impl Renderer {
    pub fn new(mode: Mode) -> Renderer {
        let multi = (mode == Mode::Terminal)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        Renderer {
            mode,
            paint: Paint {
                on: mode == Mode::Terminal && color_enabled(),
            },
            multi,
            bars: HashMap::new(),
            finished: None,
        }
    }

    /// One raw NDJSON line from the daemon.
    pub fn line(&mut self, raw: &str) -> Result<(), CliError> {
        if raw.trim().is_empty() {
            return Ok(());
        }
        let event: ProgressEvent = serde_json::from_str(raw).map_err(|e| {
            CliError::failure(format!(
                "the daemon sent a progress event this cutover does not understand: {e}"
            ))
            .with_hint("the daemon may be another version of cutover; compare `cutover --version` with GET /v1/health")
        })?;
        if self.mode == Mode::Json {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{}", raw.trim_end());
            let _ = stdout.flush();
        } else {
            self.show(&event);
        }
        if let ProgressEvent::Finished { outcome, .. } = event {
            self.finished = Some(outcome);
        }
        Ok(())
    }

    fn show(&mut self, event: &ProgressEvent) {
        match (self.mode, &self.multi) {
            (Mode::Terminal, Some(multi)) => match event {
                ProgressEvent::StepStarted { id, what } => {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {msg} {elapsed:.dim}")
                            .expect("a valid template"),
                    );
                    bar.set_message(what.clone());
                    bar.enable_steady_tick(Duration::from_millis(100));
                    self.bars.insert(*id, bar);
                }
                ProgressEvent::StepDone { id, .. } | ProgressEvent::StepFailed { id, .. } => {
                    let text = event_lines(event, self.paint)
                        .into_iter()
                        .map(|l| l.text)
                        .collect::<Vec<_>>()
                        .join("\n");
                    // A finished step becomes a plain line above the
                    // spinners still running, so nothing redraws it later.
                    if let Some(bar) = self.bars.remove(id) {
                        bar.finish_and_clear();
                        multi.remove(&bar);
                    }
                    let _ = multi.println(text);
                }
                _ => {
                    for line in event_lines(event, self.paint) {
                        if line.stderr {
                            multi.suspend(|| eprintln!("{}", line.text));
                        } else {
                            let _ = multi.println(&line.text);
                        }
                    }
                }
            },
            _ => {
                // A closed pipe (`| head`) must not stop reading the stream:
                // the exit code still has to be the outcome's.
                for line in plain_lines(event, &rfc3339_now()) {
                    if line.stderr {
                        let _ = writeln!(std::io::stderr(), "{}", line.text);
                    } else {
                        let _ = writeln!(std::io::stdout(), "{}", line.text);
                    }
                }
            }
        }
    }

    /// Reads the whole stream; the exit status is the outcome's.
    pub async fn run(mut self, mut stream: ResponseStream) -> Result<ExitStatus, CliError> {
        while let Some(line) = stream.line().await? {
            self.line(&line)?;
        }
        for (_, bar) in self.bars.drain() {
            bar.abandon();
        }
        match self.finished {
            Some(outcome) => Ok(ExitStatus::from(outcome)),
            None => Err(CliError::failure(
                "the daemon ended the progress stream before the operation finished",
            )
            .with_hint("the operation may still be running in the daemon: see `cutover status` and `cutover history`, and the daemon's log")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_core::service::Color;

    fn canned() -> Vec<ProgressEvent> {
        vec![
            ProgressEvent::StepStarted {
                id: 1,
                what: "create network demo_default".into(),
            },
            ProgressEvent::StepDone {
                id: 1,
                what: "create network demo_default".into(),
                detail: None,
                elapsed_ms: 12,
            },
            ProgressEvent::Warning {
                message: "redis publishes 0.0.0.0:6379 with no password".into(),
                hint: Some("remove `ports:` so only the app network reaches it".into()),
            },
            ProgressEvent::StepStarted {
                id: 2,
                what: "start demo-web-green".into(),
            },
            ProgressEvent::StepDone {
                id: 2,
                what: "start demo-web-green".into(),
                detail: Some("10.0.3.7:8080".into()),
                elapsed_ms: 1_250,
            },
            ProgressEvent::StepStarted {
                id: 3,
                what: "wait for demo-web-green to be healthy".into(),
            },
            ProgressEvent::StepFailed {
                id: 3,
                what: "wait for demo-web-green to be healthy".into(),
                error: "not healthy within 60s\n10.0.3.7:8080: GET /up returned 500".into(),
                elapsed_ms: 60_000,
            },
            ProgressEvent::Logs {
                container: "demo-web-green".into(),
                lines: vec!["starting".into(), "redis: connection refused".into()],
            },
            ProgressEvent::Finished {
                outcome: Outcome::Failed,
                message: "web did not become healthy within 60s".into(),
                detail: None,
                hint: Some("the last 2 lines of demo-web-green's log are above; the old version is still serving".into()),
                elapsed_ms: 61_300,
            },
        ]
    }

    fn render(events: &[ProgressEvent]) -> String {
        events
            .iter()
            .flat_map(|e| plain_lines(e, "2026-01-02T03:04:05Z"))
            .map(|l| format!("{} {}", if l.stderr { "err" } else { "out" }, l.text))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_failed_deploy_in_ci() {
        insta::assert_snapshot!(render(&canned()));
    }

    #[test]
    fn a_successful_deploy_in_ci() {
        let events = [
            ProgressEvent::Switched {
                service: "web".into(),
                color: Color::Green,
                version: "3f2a9c1".into(),
            },
            ProgressEvent::Finished {
                outcome: Outcome::Ok,
                message: "deployed web 3f2a9c1 (green)".into(),
                detail: None,
                hint: None,
                elapsed_ms: 4_200,
            },
        ];
        insta::assert_snapshot!(render(&events));
    }

    #[test]
    fn a_background_step_and_an_empty_log_say_what_they_are() {
        let events = [
            ProgressEvent::StepStarted {
                id: 4,
                what: "retire demo-web-blue in the background".into(),
            },
            ProgressEvent::StepDone {
                id: 4,
                what: "retire demo-web-blue in the background".into(),
                detail: Some(
                    "requests get up to 30s and WebSockets up to 5m to drain, then it is stopped and kept"
                        .into(),
                ),
                elapsed_ms: 0,
            },
            ProgressEvent::Logs {
                container: "demo-web-green".into(),
                lines: Vec::new(),
            },
        ];
        insta::assert_snapshot!(render(&events), @r"
        out 2026-01-02T03:04:05Z retire demo-web-blue in the background ...
        out 2026-01-02T03:04:05Z done retire demo-web-blue in the background: requests get up to 30s and WebSockets up to 5m to drain, then it is stopped and kept
        out 2026-01-02T03:04:05Z log of demo-web-green: empty
        ");
    }

    /// A newer daemon may send events and outcomes this build does not know:
    /// the stream is still followed to its end, and an unknown end is not a
    /// success.
    #[test]
    fn a_newer_daemons_stream_is_followed() {
        let mut r = Renderer::new(Mode::Plain);
        r.line(r#"{"event":"step_started","id":1,"what":"start web-green"}"#)
            .unwrap();
        r.line(r#"{"event":"canary_weight","service":"web","percent":10}"#)
            .unwrap();
        let unknown: ProgressEvent =
            serde_json::from_str(r#"{"event":"canary_weight","percent":10}"#).unwrap();
        assert_eq!(unknown, ProgressEvent::Unknown);
        assert!(event_lines(&unknown, Paint { on: false }).is_empty());
        assert_eq!(r.finished, None);

        r.line(r#"{"event":"finished","outcome":"paused","message":"web paused at 10%","hint":null,"elapsed_ms":5}"#)
            .unwrap();
        assert_eq!(r.finished, Some(Outcome::Unknown));
        assert_eq!(ExitStatus::from(Outcome::Unknown), ExitStatus::Failure);
        let done: ProgressEvent = serde_json::from_str(
            r#"{"event":"finished","outcome":"paused","message":"web paused at 10%","hint":null,"elapsed_ms":5}"#,
        )
        .unwrap();
        let lines = event_lines(&done, Paint { on: false });
        assert_eq!(lines.len(), 1);
        assert!(lines[0].stderr);
        assert_eq!(lines[0].text, "error: web paused at 10%");

        // A line that is not an event at all is still refused, with the hint.
        let err = r.line("{not json").unwrap_err().to_string();
        assert!(err.contains("does not understand"), "{err}");
    }

    #[test]
    fn plain_lines_have_no_control_characters() {
        for e in canned() {
            for l in plain_lines(&e, &rfc3339_now()) {
                assert!(!l.text.chars().any(|c| c.is_control()), "{:?}", l.text);
            }
        }
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let ts = rfc3339_now();
        assert!(humantime::parse_rfc3339(&ts).is_ok(), "{ts}");
    }

    #[test]
    fn elapsed_is_short() {
        assert_eq!(elapsed(350), "350ms");
        assert_eq!(elapsed(1_250), "1.2s");
        assert_eq!(elapsed(125_000), "2m05s");
    }
}
