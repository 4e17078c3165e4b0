//! Logging: JSON lines in Lambda (or with `DEPLOY__LOG_FORMAT=json`), human-readable locally.
//!
//! A line is made by [`Lines`] from the event, the request being served ([`request_context`],
//! shown as the span `request`: method, route, request id) and the spans it runs in (a workflow
//! step), and written by [`LineWriter`] in one `write(2)`; on a worker thread of the local server,
//! together with the other lines of the same turn of its runtime ([`batch_this_thread`]).

use std::cell::{Cell, RefCell};
use std::fmt::{self, Write as _};
use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::sync::{Arc, PoisonError, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{DefaultFields, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::{LookupSpan, Scope};

use crate::config::LogFormat;
use crate::request_context;

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
                .fmt_fields(JsonFields::new())
                .event_format(Lines::Json)
                .finish(),
        ),
        LogFormat::Pretty => Box::new(
            builder
                .fmt_fields(DefaultFields::new())
                .event_format(Lines::Pretty)
                .finish(),
        ),
    }
}

/// The two line formats.
///
/// JSON: `{"timestamp", "level", <the event's fields, "message" among them>, "target", "span"}`,
/// where `span` holds the request's method, route and request id and the innermost span's
/// fields, with that span's `name` (`request`, or `step` inside a workflow step).
///
/// Pretty: `<timestamp> <LEVEL> <span names>: <target>: <message> <fields> <span fields>`.
#[derive(Debug, Clone, Copy)]
pub enum Lines {
    Json,
    Pretty,
}

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        match self {
            Lines::Json => json_line(ctx, &mut writer, event),
            Lines::Pretty => pretty_line(ctx, &mut writer, event),
        }
    }
}

fn json_line<S, N>(
    ctx: &FmtContext<'_, S, N>,
    writer: &mut Writer<'_>,
    event: &Event<'_>,
) -> fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let meta = event.metadata();
    writer.write_str("{\"timestamp\":\"")?;
    timestamp(writer)?;
    writer.write_str("\",\"level\":\"")?;
    writer.write_str(meta.level().as_str())?;
    writer.write_char('"')?;
    let mut fields = JsonVisitor {
        writer: &mut *writer,
        result: Ok(()),
    };
    event.record(&mut fields);
    fields.result?;
    writer.write_str(",\"target\":")?;
    quoted(writer, meta.target(), Style::Json)?;

    let opened = request_context::span_fields(|method, route, request_id| {
        writer.write_str(",\"span\":{\"method\":")?;
        quoted(writer, method, Style::Json)?;
        writer.write_str(",\"request_id\":")?;
        quoted(writer, request_id, Style::Json)?;
        writer.write_str(",\"route\":")?;
        quoted(writer, route, Style::Json)
    })
    .transpose()?
    .is_some();
    match ctx.lookup_current() {
        Some(span) => {
            let extensions = span.extensions();
            let stored = extensions
                .get::<FormattedFields<N>>()
                .map_or("", |f| f.fields.as_str());
            // The span's fields as JsonFields stored them: `{"a":1,...}`.
            let inner = stored
                .strip_prefix('{')
                .and_then(|s| s.strip_suffix('}'))
                .unwrap_or("");
            writer.write_str(if opened { "," } else { ",\"span\":{" })?;
            if !inner.is_empty() {
                writer.write_str(inner)?;
                writer.write_char(',')?;
            }
            writer.write_str("\"name\":")?;
            quoted(writer, span.name(), Style::Json)?;
            writer.write_char('}')?;
        }
        None if opened => writer.write_str(",\"name\":\"request\"}")?,
        None => {}
    }
    writer.write_str("}\n")
}

fn pretty_line<S, N>(
    ctx: &FmtContext<'_, S, N>,
    writer: &mut Writer<'_>,
    event: &Event<'_>,
) -> fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let meta = event.metadata();
    timestamp(writer)?;
    let level = match *meta.level() {
        Level::ERROR => ("31", "ERROR"),
        Level::WARN => ("33", " WARN"),
        Level::INFO => ("32", " INFO"),
        Level::DEBUG => ("34", "DEBUG"),
        Level::TRACE => ("35", "TRACE"),
    };
    if writer.has_ansi_escapes() {
        write!(writer, " \x1b[{}m{}\x1b[0m ", level.0, level.1)?;
    } else {
        writer.write_char(' ')?;
        writer.write_str(level.1)?;
        writer.write_char(' ')?;
    }
    let in_request = request_context::span_fields(|_, _, _| ()).is_some();
    if in_request {
        writer.write_str("request:")?;
    }
    let spans = || ctx.event_scope().into_iter().flat_map(Scope::from_root);
    let mut named = in_request;
    for span in spans() {
        writer.write_str(span.name())?;
        writer.write_char(':')?;
        named = true;
    }
    if named {
        writer.write_char(' ')?;
    }
    writer.write_str(meta.target())?;
    writer.write_str(": ")?;
    let mut fields = PrettyVisitor {
        writer: &mut *writer,
        first: true,
        result: Ok(()),
    };
    event.record(&mut fields);
    fields.result?;
    request_context::span_fields(|method, route, request_id| {
        writer.write_str(" method=")?;
        writer.write_str(method)?;
        writer.write_str(" route=")?;
        quoted(writer, route, Style::Pretty)?;
        writer.write_str(" request_id=")?;
        quoted(writer, request_id, Style::Pretty)
    })
    .transpose()?;
    for span in spans() {
        let extensions = span.extensions();
        if let Some(stored) = extensions.get::<FormattedFields<N>>() {
            if !stored.fields.is_empty() {
                writer.write_char(' ')?;
                writer.write_str(&stored.fields)?;
            }
        }
    }
    writer.write_char('\n')
}

/// Writes an event's fields as `,"name":value` members.
struct JsonVisitor<'a, 'w> {
    writer: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl JsonVisitor<'_, '_> {
    fn member(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = (|| {
                self.writer.write_char(',')?;
                quoted(self.writer, field_name(field), Style::Json)?;
                self.writer.write_char(':')?;
                value(self.writer)
            })();
        }
    }
}

impl Visit for JsonVisitor<'_, '_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.member(field, |w| {
            if value.is_finite() {
                write!(w, "{value}")
            } else {
                w.write_str("null")
            }
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |w| quoted(w, value, Style::Json));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, |w| {
            w.write_char('"')?;
            write!(Escaped(&mut *w, Style::Json), "{value:?}")?;
            w.write_char('"')
        });
    }
}

/// Writes an event's fields as `message name=value ...`: strings quoted, other values as they
/// display; control characters escaped in both.
struct PrettyVisitor<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl PrettyVisitor<'_, '_> {
    fn member(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            let first = std::mem::replace(&mut self.first, false);
            self.result = (|| {
                if !first {
                    self.writer.write_char(' ')?;
                }
                if field.name() != "message" {
                    self.writer.write_str(field_name(field))?;
                    self.writer.write_char('=')?;
                }
                value(self.writer)
            })();
        }
    }
}

impl Visit for PrettyVisitor<'_, '_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.member(field, |w| Escaped(w, Style::PrettyBare).write_str(value));
        } else {
            self.member(field, |w| quoted(w, value, Style::Pretty));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, |w| {
            write!(Escaped(w, Style::PrettyBare), "{value:?}")
        });
    }
}

/// A field's name as written: without the `r#` of a raw identifier.
fn field_name(field: &Field) -> &str {
    let name = field.name();
    name.strip_prefix("r#").unwrap_or(name)
}

/// How a line escapes text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// Inside a JSON string: `"`, `\` and control characters below U+0020.
    Json,
    /// For a terminal, inside quotes: `"`, `\` and every control character (C1 ones too,
    /// which some terminals obey), so that a value can neither start a line of its own nor
    /// recolour the terminal.
    Pretty,
    /// For a terminal, unquoted (a message, a displayed value): every control character.
    PrettyBare,
}

/// `text` quoted and escaped.
fn quoted(writer: &mut impl fmt::Write, text: &str, style: Style) -> fmt::Result {
    writer.write_char('"')?;
    Escaped(&mut *writer, style).write_str(text)?;
    writer.write_char('"')
}

/// Escapes what it is given (see [`Style`]).
struct Escaped<W>(W, Style);

impl<W: fmt::Write> fmt::Write for Escaped<W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let stops = match self.1 {
            Style::Json => &STOPS_JSON,
            Style::Pretty => &STOPS_PRETTY,
            Style::PrettyBare => &STOPS_PRETTY_BARE,
        };
        let bytes = text.as_bytes();
        let mut done = 0;
        while let Some(found) = bytes[done..].iter().position(|&b| stops[usize::from(b)]) {
            let at = done + found;
            // A stop at 0xC2 is a C1 control only when followed by 0x80 to 0x9F (U+0080 to
            // U+009F); any other character starting with it is written as it is.
            let c = text[at..].chars().next().expect("a character starts here");
            if bytes[at] == 0xc2 && !c.is_control() {
                self.0.write_str(&text[done..at + c.len_utf8()])?;
                done = at + c.len_utf8();
                continue;
            }
            self.0.write_str(&text[done..at])?;
            match (c, self.1) {
                ('"', _) => self.0.write_str("\\\"")?,
                ('\\', _) => self.0.write_str("\\\\")?,
                ('\n', _) => self.0.write_str("\\n")?,
                ('\r', _) => self.0.write_str("\\r")?,
                ('\t', _) => self.0.write_str("\\t")?,
                (other, Style::Json) => write!(self.0, "\\u{:04x}", other as u32)?,
                (other, _) => write!(self.0, "\\u{{{:x}}}", other as u32)?,
            }
            done = at + c.len_utf8();
        }
        self.0.write_str(&text[done..])
    }
}

/// The bytes where [`Escaped`] stops to look, by style: control characters below U+0020,
/// and `"` and `\` inside quotes; for a terminal also DEL and the lead byte of C1 controls.
const STOPS_JSON: [bool; 256] = stops(true, false);
const STOPS_PRETTY: [bool; 256] = stops(true, true);
const STOPS_PRETTY_BARE: [bool; 256] = stops(false, true);

const fn stops(quoted: bool, terminal: bool) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = quoted;
    table[b'\\' as usize] = quoted;
    table[0x7f] = terminal;
    table[0xc2] = terminal;
    table
}

/// The current time as RFC 3339 in UTC with microseconds (`2026-12-05T23:05:30.599778Z`). The
/// part up to the second is made once a second per thread.
fn timestamp(writer: &mut impl fmt::Write) -> fmt::Result {
    thread_local! {
        static SECOND: Cell<(u64, [u8; 20])> = const { Cell::new((u64::MAX, [0; 20])) };
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let second = now.as_secs();
    let (cached, mut prefix) = SECOND.get();
    if cached != second {
        prefix = date_time(second);
        SECOND.set((second, prefix));
    }
    let prefix = std::str::from_utf8(&prefix).expect("made of ASCII digits and separators");
    write!(writer, "{prefix}{:06}Z", now.subsec_micros())
}

/// `YYYY-MM-DDTHH:MM:SS.` of `seconds` since the Unix epoch, in UTC (years up to 9999).
fn date_time(seconds: u64) -> [u8; 20] {
    let days = seconds / 86_400;
    let of_day = seconds % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = (year_of_era + era * 400 + u64::from(month <= 2)).min(9999);
    let mut text = [0u8; 20];
    let mut put = |at: usize, value: u64, width: usize| {
        let mut value = value;
        for i in (0..width).rev() {
            text[at + i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, of_day / 3600, 2);
    put(14, of_day / 60 % 60, 2);
    put(17, of_day % 60, 2);
    for (at, separator) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
    ] {
        text[at] = separator;
    }
    text
}

/// Log lines to a file descriptor, each in one `write(2)` without a lock shared by the threads
/// that log: `std::io::stderr()` locks, and the local server's worker threads, each logging two
/// lines per request, then waited on each other in `futex` about once per request (issue 14).
/// The kernel keeps a write of at most [`ATOMIC_WRITE`] bytes whole on a pipe, and any write
/// whole on a regular file; a longer line takes an exclusive lock, so that no other line can be
/// written into the middle of it.
///
/// On a thread that [batches](batch_this_thread), lines are kept and written together, up to
/// [`ATOMIC_WRITE`] bytes in one write, when the thread calls [`flush_this_thread`].
#[derive(Debug, Clone)]
pub struct LineWriter {
    sink: Arc<Sink>,
}

#[derive(Debug)]
struct Sink {
    file: std::fs::File,
    long_line: RwLock<()>,
}

/// `PIPE_BUF`: the longest write a pipe keeps whole (POSIX guarantees 512; Linux gives 4096).
const ATOMIC_WRITE: usize = if cfg!(target_os = "linux") { 4096 } else { 512 };

impl Sink {
    fn write_lines(&self, lines: &[u8]) -> std::io::Result<()> {
        if lines.len() <= ATOMIC_WRITE {
            let _others_too = self
                .long_line
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            (&self.file).write_all(lines)
        } else {
            let _alone = self
                .long_line
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            (&self.file).write_all(lines)
        }
    }
}

thread_local! {
    /// Whether this thread batches its lines.
    static BATCHING: Cell<bool> = const { Cell::new(false) };
    /// The lines this thread has not written yet, and where they go.
    static PENDING: RefCell<Option<(Arc<Sink>, Vec<u8>)>> = const { RefCell::new(None) };
}

/// Lines this thread logs from now on are kept until [`flush_this_thread`] (the local server's
/// worker runtimes call it each time before they wait for I/O) or until the next line would not
/// fit in one atomic write; the guard flushes and stops batching when dropped. A line is then
/// late by at most one turn of the runtime; a process killed with `SIGKILL` loses those.
pub fn batch_this_thread() -> BatchGuard {
    BATCHING.with(|b| b.set(true));
    BatchGuard {
        _not_send: std::marker::PhantomData,
    }
}

/// Stops batching on its thread (see [`batch_this_thread`]).
#[derive(Debug)]
pub struct BatchGuard {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for BatchGuard {
    fn drop(&mut self) {
        flush_this_thread();
        BATCHING.with(|b| b.set(false));
    }
}

/// Writes the lines this thread kept.
pub fn flush_this_thread() {
    let _ = PENDING.try_with(|pending| {
        if let Some((sink, lines)) = pending.borrow_mut().as_mut() {
            if !lines.is_empty() {
                let _ = sink.write_lines(lines);
                lines.clear();
            }
        }
    });
}

impl LineWriter {
    pub fn new(file: std::fs::File) -> Self {
        Self {
            sink: Arc::new(Sink {
                file,
                long_line: RwLock::new(()),
            }),
        }
    }

    /// A writer on this process's stderr (a duplicate of its descriptor); `None` when it cannot
    /// be duplicated.
    fn stderr() -> Option<Self> {
        let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
        Some(Self::new(std::fs::File::from(fd)))
    }

    /// Keeps `line` with this thread's pending lines; `false` when the thread does not batch.
    fn keep(&self, line: &[u8]) -> bool {
        if !BATCHING.with(Cell::get) || line.len() > ATOMIC_WRITE {
            return false;
        }
        PENDING
            .try_with(|pending| {
                let mut pending = pending.borrow_mut();
                let (sink, lines) = pending
                    .get_or_insert_with(|| (self.sink.clone(), Vec::with_capacity(ATOMIC_WRITE)));
                if !Arc::ptr_eq(sink, &self.sink) || lines.len() + line.len() > ATOMIC_WRITE {
                    let _ = sink.write_lines(lines);
                    lines.clear();
                    *sink = self.sink.clone();
                }
                lines.extend_from_slice(line);
            })
            .is_ok()
    }
}

impl Write for &LineWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.write_all(line)?;
        Ok(line.len())
    }

    fn write_all(&mut self, line: &[u8]) -> std::io::Result<()> {
        if self.keep(line) {
            return Ok(());
        }
        flush_this_thread();
        self.sink.write_lines(line)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LineWriter {
    type Writer = &'a LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self
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
        Some(lines) => build(format, filter, lines, ansi),
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
    fn timestamps_are_rfc_3339_in_utc_across_leap_days_and_centuries() {
        let at = |seconds| String::from_utf8(date_time(seconds).to_vec()).unwrap();
        assert_eq!(at(0), "1970-01-01T00:00:00.");
        assert_eq!(at(951_782_399), "2000-02-28T23:59:59.");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00.");
        assert_eq!(at(1_795_356_724), "2026-11-22T14:12:04.");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00.");
        assert_eq!(at(253_402_300_799), "9999-12-31T23:59:59.");
        // The same second as tracing-subscriber's own clock, read just before.
        let mut theirs = String::new();
        tracing_subscriber::fmt::time::FormatTime::format_time(
            &tracing_subscriber::fmt::time::SystemTime,
            &mut Writer::new(&mut theirs),
        )
        .unwrap();
        let mut ours = String::new();
        timestamp(&mut ours).unwrap();
        assert_eq!(ours.len(), "2026-12-05T23:05:30.599778Z".len(), "{ours}");
        assert!(
            theirs[..19] == ours[..19] || theirs[..17] == ours[..17],
            "{theirs} {ours}"
        );
    }

    #[test]
    fn values_cannot_break_a_line_or_reach_the_terminal_unescaped() {
        let text = "a\"b\\c\nd\u{1b}[31me\u{9b}f\u{7f}g\u{e9}\u{a9}";
        let mut json = String::new();
        quoted(&mut json, text, Style::Json).unwrap();
        assert_eq!(serde_json::from_str::<String>(&json).unwrap(), text);
        let mut pretty = String::new();
        quoted(&mut pretty, text, Style::Pretty).unwrap();
        assert_eq!(
            pretty,
            "\"a\\\"b\\\\c\\nd\\u{1b}[31me\\u{9b}f\\u{7f}g\u{e9}\u{a9}\""
        );
        let mut bare = String::new();
        Escaped(&mut bare, Style::PrettyBare)
            .write_str(text)
            .unwrap();
        assert_eq!(bare, "a\"b\\c\\nd\\u{1b}[31me\\u{9b}f\\u{7f}g\u{e9}\u{a9}");
    }

    /// What a subscriber wrote.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Captured {
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

    /// The lines a few events make in `format`, each without its timestamp.
    async fn lines(format: LogFormat) -> Vec<String> {
        let captured = Captured::default();
        let _default =
            tracing::subscriber::set_default(subscriber(format, "info", captured.clone()));
        tracing::info!(workers = 2, "listening");
        request_context::scope(
            http::Method::POST,
            Arc::from("/execute"),
            "req-1".to_owned(),
            async {
                tracing::warn!(status = 502u16, error = %"said \"no\"", "upstream call failed");
                let step = tracing::info_span!("step", step = 3, secret_name = "A");
                step.in_scope(|| tracing::info!(ok = true, "workflow step"));
            },
        )
        .await;
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| {
                let at = line.find("Z").expect("a timestamp");
                assert_eq!(
                    at,
                    "2026-12-05T23:05:30.599778".len() + line.find("20").unwrap()
                );
                line.replacen(&line[line.find("20").unwrap()..=at], "T", 1)
            })
            .collect()
    }

    #[tokio::test]
    async fn json_lines_carry_the_fields_the_target_and_the_request_and_step_as_span() {
        assert_eq!(
            lines(LogFormat::Json).await,
            [
                r#"{"timestamp":"T","level":"INFO","message":"listening","workers":2,"target":"mgraph_deploy::telemetry::tests"}"#,
                r#"{"timestamp":"T","level":"WARN","message":"upstream call failed","status":502,"error":"said \"no\"","target":"mgraph_deploy::telemetry::tests","span":{"method":"POST","request_id":"req-1","route":"/execute","name":"request"}}"#,
                r#"{"timestamp":"T","level":"INFO","message":"workflow step","ok":true,"target":"mgraph_deploy::telemetry::tests","span":{"method":"POST","request_id":"req-1","route":"/execute","secret_name":"A","step":3,"name":"step"}}"#,
            ]
        );
    }

    #[tokio::test]
    async fn pretty_lines_read_level_spans_target_message_then_fields() {
        assert_eq!(
            lines(LogFormat::Pretty).await,
            [
                r#"T  INFO mgraph_deploy::telemetry::tests: listening workers=2"#,
                r#"T  WARN request: mgraph_deploy::telemetry::tests: upstream call failed status=502 error=said "no" method=POST route="/execute" request_id="req-1""#,
                r#"T  INFO request:step: mgraph_deploy::telemetry::tests: workflow step ok=true method=POST route="/execute" request_id="req-1" step=3 secret_name="A""#,
            ]
        );
    }

    #[test]
    fn lines_logged_from_many_threads_at_once_arrive_whole_short_and_long() {
        // A pipe, as under systemd or a container runtime, read while the threads write.
        let (mut reader, writer) = std::io::pipe().unwrap();
        let lines = LineWriter::new(std::fs::File::from(std::os::fd::OwnedFd::from(writer)));
        let read = std::thread::spawn(move || {
            let mut written = String::new();
            reader.read_to_string(&mut written).unwrap();
            written
        });
        let subscriber: Arc<dyn Subscriber + Send + Sync> =
            Arc::from(subscriber(LogFormat::Json, "info", lines.clone()));
        // Longer than a pipe's atomic write, and short ones, from four threads at once; two of
        // them batch their lines.
        let sizes = [10, 300, 3_000, 100_000];
        std::thread::scope(|scope| {
            for (thread, size) in sizes.into_iter().enumerate() {
                let subscriber = subscriber.clone();
                scope.spawn(move || {
                    let _batching = (thread % 2 == 1).then(batch_this_thread);
                    let text = "x".repeat(size);
                    tracing::subscriber::with_default(subscriber, || {
                        for n in 0..200 {
                            tracing::info!(thread, n, text, "line");
                            if n % 7 == 0 {
                                flush_this_thread();
                            }
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
