//! Logging: JSON lines in Lambda (or with `DEPLOY__LOG_FORMAT=json`), human-readable locally.

use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::sync::{Arc, PoisonError, RwLock};

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// A subscriber writing to `writer`, without colour codes. Used by [`init`], and by tests that
/// capture the output.
pub fn subscriber<W>(
    format: LogFormat,
    filter: &str,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    build(format, filter, writer, false)
}

fn build<W>(
    format: LogFormat,
    filter: &str,
    writer: W,
    ansi: bool,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    match format {
        LogFormat::Json => Box::new(
            builder
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .flatten_event(true)
                .finish(),
        ),
        LogFormat::Pretty => Box::new(builder.compact().finish()),
    }
}

/// Log lines to a file descriptor, each in one `write(2)` without a lock shared by the threads
/// that log: `std::io::stderr()` locks, and the local server's worker threads, each logging two
/// lines per request, then waited on each other in `futex` about once per request (issue 14).
/// The kernel keeps a write of at most [`ATOMIC_WRITE`] bytes whole on a pipe, and any write
/// whole on a regular file; a longer line takes an exclusive lock, so that no other line can be
/// written into the middle of it.
#[derive(Debug)]
pub struct LineWriter {
    file: std::fs::File,
    long_line: RwLock<()>,
}

/// `PIPE_BUF`: the longest write a pipe keeps whole (POSIX guarantees 512; Linux gives 4096).
const ATOMIC_WRITE: usize = if cfg!(target_os = "linux") { 4096 } else { 512 };

impl LineWriter {
    pub fn new(file: std::fs::File) -> Self {
        Self {
            file,
            long_line: RwLock::new(()),
        }
    }

    /// A writer on this process's stderr (a duplicate of its descriptor); `None` when it cannot
    /// be duplicated.
    fn stderr() -> Option<Self> {
        let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
        Some(Self::new(std::fs::File::from(fd)))
    }
}

impl Write for &LineWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.write_all(line)?;
        Ok(line.len())
    }

    fn write_all(&mut self, line: &[u8]) -> std::io::Result<()> {
        if line.len() <= ATOMIC_WRITE {
            let _others_too = self
                .long_line
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            (&self.file).write_all(line)
        } else {
            let _alone = self
                .long_line
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            (&self.file).write_all(line)
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether `filter` is a valid `RUST_LOG` filter, or why not.
pub fn check_filter(filter: &str) -> Result<(), String> {
    EnvFilter::try_new(filter)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Installs the process-wide subscriber on stderr (coloured only on a terminal), and a panic
/// hook that logs where a panic happened but not its message, which could carry input. Call
/// once, first thing in `main`.
pub fn init(format: LogFormat, filter: &str) {
    let ansi = std::io::stderr().is_terminal();
    let subscriber = match LineWriter::stderr() {
        Some(lines) => build(format, filter, Arc::new(lines), ansi),
        None => build(format, filter, std::io::stderr, ansi),
    };
    let _ = tracing::subscriber::set_global_default(subscriber);
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(
            location,
            "panic (its message is not logged: it could carry input)"
        );
    }));
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    #[test]
    fn lines_logged_from_many_threads_at_once_arrive_whole_short_and_long() {
        // A pipe, as under systemd or a container runtime, read while the threads write.
        let (mut reader, writer) = std::io::pipe().unwrap();
        let lines = Arc::new(LineWriter::new(std::fs::File::from(
            std::os::fd::OwnedFd::from(writer),
        )));
        let read = std::thread::spawn(move || {
            let mut written = String::new();
            reader.read_to_string(&mut written).unwrap();
            written
        });
        let subscriber: Arc<dyn Subscriber + Send + Sync> =
            Arc::from(subscriber(LogFormat::Json, "info", lines.clone()));
        // Longer than a pipe's atomic write, and short ones, from four threads at once.
        let sizes = [10, 300, 3_000, 100_000];
        std::thread::scope(|scope| {
            for (thread, size) in sizes.into_iter().enumerate() {
                let subscriber = subscriber.clone();
                scope.spawn(move || {
                    let text = "x".repeat(size);
                    tracing::subscriber::with_default(subscriber, || {
                        for n in 0..200 {
                            tracing::info!(thread, n, text, "line");
                        }
                    });
                });
            }
        });
        drop((subscriber, lines));
        let written = read.join().unwrap();
        let mut count = [0; 4];
        for line in written.lines() {
            let event: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a line is not whole: {e}: {:.200}", line));
            let thread = event["thread"].as_u64().unwrap() as usize;
            assert_eq!(event["text"].as_str().unwrap().len(), sizes[thread]);
            count[thread] += 1;
        }
        assert_eq!(count, [200; 4]);
    }
}
