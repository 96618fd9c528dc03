//! Container and Swarm task logs as a stream of lines: the engine's
//! frames, split.

use crate::engine::LogStream;
use crate::error::{EngineError, ObjectKind};
use crate::logs::LineSplitter;
use crate::model::*;
use bollard::query_parameters as q;
use futures_util::stream::{self, StreamExt};

use super::DockerEngine;

pub(super) fn log_frame(output: bollard::container::LogOutput) -> (LogSource, bytes::Bytes) {
    use bollard::container::LogOutput as L;
    match output {
        L::StdErr { message } => (LogSource::Stderr, message),
        // A TTY container has one stream; it reads as stdout.
        L::StdOut { message } | L::Console { message } | L::StdIn { message } => {
            (LogSource::Stdout, message)
        }
    }
}

impl DockerEngine {
    pub(super) fn log_stream(&self, name: &str, options: &LogOptions) -> LogStream {
        let frames = self.docker.logs(name, Some(query(options)));
        self.lines(frames, ObjectKind::Container, name)
    }

    /// A Swarm task's log, wherever it runs: the managers fetch it from its
    /// node (for the cutover-swarm adapter).
    pub fn task_logs(&self, task_id: &str, options: &LogOptions) -> LogStream {
        let frames = self.docker.task_logs(task_id, Some(query(options)));
        self.lines(frames, ObjectKind::Task, task_id)
    }

    fn lines<S>(&self, frames: S, kind: ObjectKind, name: &str) -> LogStream
    where
        S: futures_util::Stream<
                Item = Result<bollard::container::LogOutput, bollard::errors::Error>,
            > + Send
            + 'static,
    {
        let host = self.host.clone();
        let name = name.to_owned();
        struct State<S> {
            frames: S,
            splitter: LineSplitter,
            ready: std::collections::VecDeque<LogLine>,
            done: bool,
        }
        let state = State {
            frames: Box::pin(frames),
            splitter: LineSplitter::default(),
            ready: Default::default(),
            done: false,
        };
        stream::unfold(state, move |mut st| {
            let host = host.clone();
            let name = name.clone();
            async move {
                loop {
                    if let Some(line) = st.ready.pop_front() {
                        return Some((Ok(line), st));
                    }
                    if st.done {
                        return None;
                    }
                    match st.frames.next().await {
                        Some(Ok(frame)) => {
                            let (source, bytes) = log_frame(frame);
                            st.ready.extend(st.splitter.push(source, &bytes));
                        }
                        Some(Err(err)) => {
                            st.done = true;
                            let err =
                                EngineError::from_bollard(err, &host, "read logs of", kind, &name);
                            return Some((Err(err), st));
                        }
                        None => {
                            st.done = true;
                            st.ready.extend(st.splitter.finish());
                        }
                    }
                }
            }
        })
        .boxed()
    }
}

fn query(options: &LogOptions) -> q::LogsOptions {
    // The engine takes whole seconds since the epoch; a time before the
    // epoch means "everything", which 0 also says.
    let since = options
        .since
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i32);
    q::LogsOptions {
        follow: options.follow,
        stdout: true,
        stderr: true,
        since,
        tail: options.tail.to_string(),
        ..Default::default()
    }
}
