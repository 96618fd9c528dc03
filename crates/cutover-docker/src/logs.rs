//! Reassembling lines from the engine's log frames.
//!
//! A frame holds whatever one write of the process produced: part of a line,
//! or several. Callers want lines, per stream.

use crate::model::{LogLine, LogSource};

#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl LineSplitter {
    /// Adds a frame and returns the lines it completed.
    pub(crate) fn push(&mut self, source: LogSource, bytes: &[u8]) -> Vec<LogLine> {
        let buf = match source {
            LogSource::Stdout => &mut self.stdout,
            LogSource::Stderr => &mut self.stderr,
        };
        buf.extend_from_slice(bytes);
        let mut lines = Vec::new();
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let rest = buf.split_off(pos + 1);
            let line = std::mem::replace(buf, rest);
            lines.push(make_line(source, &line));
        }
        lines
    }

    /// The unterminated last lines, once the stream has ended.
    pub(crate) fn finish(&mut self) -> Vec<LogLine> {
        let mut lines = Vec::new();
        for (source, buf) in [
            (LogSource::Stdout, &mut self.stdout),
            (LogSource::Stderr, &mut self.stderr),
        ] {
            if !buf.is_empty() {
                lines.push(make_line(source, buf));
                buf.clear();
            }
        }
        lines
    }
}

fn make_line(source: LogSource, raw: &[u8]) -> LogLine {
    let mut text = String::from_utf8_lossy(raw).into_owned();
    while text.ends_with('\n') || text.ends_with('\r') {
        text.pop();
    }
    LogLine { source, text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_partial_frames_and_splits_multi_line_frames() {
        let mut s = LineSplitter::default();
        assert!(s.push(LogSource::Stdout, b"hel").is_empty());
        let lines = s.push(LogSource::Stdout, b"lo\r\nworld\npar");
        assert_eq!(
            lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
            vec!["hello", "world"]
        );
        let err = s.push(LogSource::Stderr, b"oops\n");
        assert_eq!(err[0].source, LogSource::Stderr);
        assert_eq!(err[0].text, "oops");
        let rest = s.finish();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].text, "par");
        assert!(s.finish().is_empty());
    }
}
