//! Logging, a configuration of tracing-subscriber's own formatters: JSON lines in Lambda (or with
//! `DEPLOY__LOG_FORMAT=json`), human-readable locally.
//!
//! JSON: one object per line, the event's fields (its `message` among them) at the top level,
//! `span` the innermost span the event is in and `spans` every one of them from the outside in,
//! so that the request span (`request`: method, route, request id) is on every line logged while
//! serving a request, a workflow step's (`step`) inside it.

use std::io::IsTerminal;

use tracing::{Level, Subscriber};
use tracing_subscriber::filter::{FilterExt as _, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _, Registry};

use crate::config::LogFormat;

/// The AWS SDK (the history's DynamoDB calls) logs each signed request at `trace`, with the
/// session token of Lambda's credentials in it: the signer its canonical request, the orchestrator
/// the request with its headers. Whatever `RUST_LOG` says (a directive for one of their modules
/// included), nothing of theirs is logged below `debug`, so that no credential reaches a log
/// (`tests/api/logs.rs` looks for the token at `trace`).
const AWS_CREDENTIAL_CARRIERS: [&str; 2] =
    ["aws_sigv4", "aws_smithy_runtime::client::orchestrator"];

/// Whether an event or span of `target` at `level` may carry an AWS credential.
fn carries_credentials(target: &str, level: Level) -> bool {
    level > Level::DEBUG
        && AWS_CREDENTIAL_CARRIERS.iter().any(|carrier| {
            target
                .strip_prefix(carrier)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
}

/// A subscriber writing to `writer`, without colour codes. Used by [`init`], and by tests that
/// capture the output. `filter` was checked by the configuration.
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
    let filter = EnvFilter::try_new(filter)
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .and(filter_fn(|meta| {
            !carries_credentials(meta.target(), *meta.level())
        }));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    match format {
        LogFormat::Json => Box::new(
            Registry::default().with(
                layer
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_filter(filter),
            ),
        ),
        LogFormat::Pretty => Box::new(Registry::default().with(layer.with_filter(filter))),
    }
}

/// Installs the process-wide subscriber on stderr (coloured only on a terminal), with the records
/// of libraries that log through the `log` crate (reqwest) passed to it, and a panic hook that
/// logs where a panic happened but not its message, which could carry input. Call once, first
/// thing in `main`.
pub fn init(format: LogFormat, filter: &str) {
    let ansi = std::io::stderr().is_terminal();
    let _ = build(format, filter, std::io::stderr, ansi).try_init();
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
    use std::sync::{Arc, Mutex};

    use super::*;

    /// What a subscriber wrote.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// The lines a few events make in `format`: one outside any span, one in a request span with
    /// `error` as a field, one in a step inside it.
    fn lines(format: LogFormat, error: &str) -> Vec<String> {
        let captured = Captured::default();
        tracing::subscriber::with_default(subscriber(format, "info", captured.clone()), || {
            tracing::info!(workers = 2, "listening");
            let request = tracing::info_span!(
                "request",
                method = "POST",
                route = "/execute",
                request_id = "req-1"
            );
            request.in_scope(|| {
                tracing::warn!(status = 502u16, error = %error, "upstream call failed");
                let step = tracing::info_span!("step", step = 3, secret_name = "A");
                step.in_scope(|| tracing::info!(ok = true, "workflow step"));
            });
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    /// The line without its timestamp (the first word).
    fn untimed(line: &str) -> String {
        match line.strip_prefix("{\"timestamp\":\"") {
            Some(rest) => format!("{{{}", &rest[rest.find("\",").unwrap() + 2..]),
            None => line.split_once(' ').unwrap().1.to_owned(),
        }
    }

    #[test]
    fn json_lines_carry_the_fields_the_target_the_innermost_span_and_every_span() {
        // A value that tries to break its line, or to reach a terminal.
        let error = "said \"no\"\n\u{1b}[31mred";
        let lines: Vec<String> = lines(LogFormat::Json, error)
            .iter()
            .map(|l| untimed(l))
            .collect();
        assert_eq!(
            lines,
            [
                r#"{"level":"INFO","message":"listening","workers":2,"target":"mgraph_deploy::telemetry::tests"}"#,
                r#"{"level":"WARN","message":"upstream call failed","status":502,"error":"said \"no\"\n\u001b[31mred","target":"mgraph_deploy::telemetry::tests","span":{"method":"POST","request_id":"req-1","route":"/execute","name":"request"},"spans":[{"method":"POST","request_id":"req-1","route":"/execute","name":"request"}]}"#,
                r#"{"level":"INFO","message":"workflow step","ok":true,"target":"mgraph_deploy::telemetry::tests","span":{"secret_name":"A","step":3,"name":"step"},"spans":[{"method":"POST","request_id":"req-1","route":"/execute","name":"request"},{"secret_name":"A","step":3,"name":"step"}]}"#,
            ]
        );
    }

    #[test]
    fn pretty_lines_read_level_spans_with_their_fields_target_message_then_fields() {
        // Text from outside reaches a line only through `github_service::scrub`, which leaves no
        // control character: this format does not escape a field's value.
        let lines: Vec<String> = lines(LogFormat::Pretty, "said \"no\"")
            .iter()
            .map(|l| untimed(l))
            .collect();
        assert_eq!(
            lines[0],
            " INFO mgraph_deploy::telemetry::tests: listening workers=2"
        );
        assert_eq!(
            lines[1],
            r#" WARN request{method="POST" route="/execute" request_id="req-1"}: mgraph_deploy::telemetry::tests: upstream call failed status=502 error=said "no""#
        );
        assert_eq!(
            lines.last().unwrap(),
            r#" INFO request{method="POST" route="/execute" request_id="req-1"}:step{step=3 secret_name="A"}: mgraph_deploy::telemetry::tests: workflow step ok=true"#
        );
    }
}
