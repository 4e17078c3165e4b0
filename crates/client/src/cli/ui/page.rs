//! The page's HTML, rendered on the server: plain forms, no script. Every text that comes from
//! outside (names, messages, paths) is escaped.

use std::fmt::Write as _;

use mgraph_deploy_api::{Envelope, PresenceScope, TokenCheckData, TokenOperation};

use super::super::preflight::{Checked, Finding, where_words};
use crate::api::{Answer, ClientError, Target};
use crate::preflight::{BUILTIN, Scan};

/// The one-line notice of the last save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::cli) enum Notice {
    Saved(String),
    Error(String),
}

/// Everything one rendering shows.
pub(super) struct View<'a> {
    pub(super) repository: &'a Target,
    pub(super) notice: Option<Notice>,
    /// `Err`: the workflow files could not be read.
    pub(super) state: Result<State, String>,
}

pub(super) struct State {
    pub(super) token: Result<Answer<Envelope<TokenCheckData, TokenOperation>>, ClientError>,
    /// The environments the workflows name.
    pub(super) environments: Vec<String>,
    /// The one shown; `None`: the repository.
    pub(super) environment: Option<String>,
    pub(super) scan: Scan,
    pub(super) checked: Result<Checked, String>,
    /// A save succeeded while this server ran.
    pub(super) wrote: bool,
    pub(super) preflight: bool,
}

/// One line of a checklist: passed, failed, or neither (optional, not known yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Pass,
    Fail,
    Neutral,
}

impl Mark {
    fn class(self) -> &'static str {
        match self {
            Mark::Pass => "pass",
            Mark::Fail => "fail",
            Mark::Neutral => "neutral",
        }
    }

    /// The symbol and its word: readable without colour.
    fn label(self) -> &'static str {
        match self {
            Mark::Pass => "✓ <span class=\"word\">passed</span>",
            Mark::Fail => "✗ <span class=\"word\">failed</span>",
            Mark::Neutral => "– <span class=\"word\">note</span>",
        }
    }
}

pub(super) fn render(view: &View<'_>) -> String {
    let repository = escape(&view.repository.to_string());
    let mut html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>Secrets &amp; Preflight · {repository}</title>\n<link rel=\"stylesheet\" href=\"/page.css\">\n</head>\n<body>\n<main>\n<header><h1>Secrets &amp; Preflight</h1><p class=\"repository\">{repository}</p></header>\n"
    );
    match &view.notice {
        Some(Notice::Saved(text)) => {
            let _ = writeln!(
                html,
                "<p id=\"notice\" class=\"notice saved\" role=\"status\">{}</p>",
                escape(text)
            );
        }
        Some(Notice::Error(text)) => {
            let _ = writeln!(
                html,
                "<p id=\"notice\" class=\"notice error\" role=\"alert\">{}</p>",
                escape(text)
            );
        }
        None => {}
    }
    match &view.state {
        Err(message) => {
            let _ = writeln!(
                html,
                "<p class=\"notice error\" role=\"alert\">The workflow files cannot be read: {}</p>",
                escape(message)
            );
        }
        Ok(state) => {
            let checks = checklist(view.repository, state);
            connections(&mut html, &checks);
            environment_selector(&mut html, state);
            required_secrets(&mut html, state);
            preflight(&mut html, state, &checks);
        }
    }
    html.push_str("</main>\n</body>\n</html>\n");
    html
}

/// The connection lines (token, read, write) and every required secret, as preflight checks
/// them. The first three are the connections.
fn checklist(repository: &Target, state: &State) -> Vec<(Mark, String)> {
    let mut checks = Vec::new();
    let token = match &state.token {
        Ok(answer) => match (&answer.body.data, answer.body.success) {
            (Some(data), true) => Ok(data),
            _ => Err(format!(
                "{} ({})",
                answer.body.error,
                answer
                    .body
                    .error_type
                    .map_or("unknown", mgraph_deploy_api::ErrorType::as_str)
            )),
        },
        Err(e) => Err(e.to_string()),
    };
    match &token {
        Ok(data) => checks.push((
            Mark::Pass,
            format!("GitHub token works: signed in as {}", data.login),
        )),
        Err(why) => checks.push((Mark::Fail, format!("GitHub token: {why}"))),
    }
    let access = token.as_ref().ok().and_then(|data| data.target.as_ref());
    match access {
        Some(access) if access.can_read_secrets => {
            checks.push((Mark::Pass, format!("Can read the secrets of {repository}")))
        }
        Some(access) => checks.push((
            Mark::Fail,
            format!(
                "Cannot read the secrets of {repository}: {}",
                access.error.as_deref().unwrap_or("refused")
            ),
        )),
        None => checks.push((
            Mark::Fail,
            format!("Cannot tell whether the token can read the secrets of {repository}"),
        )),
    }
    let missing = match &state.checked {
        Ok(checked) => checked.findings.iter().any(Finding::fails),
        Err(_) => true,
    };
    checks.push(match (state.wrote, missing) {
        (true, _) => (
            Mark::Pass,
            format!("Can write the secrets of {repository}: a save succeeded"),
        ),
        (false, false) => (
            Mark::Neutral,
            "Write access: not needed, nothing is missing (GitHub shows it on the first save)"
                .to_owned(),
        ),
        (false, true) => (
            Mark::Neutral,
            "Write access: GitHub shows it on the first save".to_owned(),
        ),
    });
    match &state.checked {
        Err(message) => checks.push((Mark::Fail, format!("Secrets not checked: {message}"))),
        Ok(checked) => {
            for f in &checked.findings {
                let place = where_words(f.environment.as_deref());
                let line = match f.found_in {
                    Some(scope) => (
                        Mark::Pass,
                        format!("{} ({place}): {}", f.name, found_words(scope, f)),
                    ),
                    None if f.optional => (
                        Mark::Neutral,
                        format!(
                            "{} ({place}): missing, and optional (required: false)",
                            f.name
                        ),
                    ),
                    None => (Mark::Fail, format!("{} ({place}): missing", f.name)),
                };
                checks.push(line);
            }
            for n in &state.scan.not_passed {
                let mark = if n.optional {
                    Mark::Neutral
                } else {
                    Mark::Fail
                };
                checks.push((
                    mark,
                    format!(
                        "{}: used by {}, but {} does not pass it",
                        n.name, n.place, n.caller
                    ),
                ));
            }
        }
    }
    checks
}

fn found_words(scope: PresenceScope, f: &Finding) -> String {
    match (scope, f.shadows, f.same_value) {
        (PresenceScope::Builtin, _, _) => "built in".to_owned(),
        (PresenceScope::Repo, _, _) => "set in the repository".to_owned(),
        (PresenceScope::Environment, false, _) => "set in the environment".to_owned(),
        (PresenceScope::Environment, true, Some(false)) => {
            "set in the environment, shadowing the repository's, with a different value".to_owned()
        }
        (PresenceScope::Environment, true, _) => {
            "set in the environment, shadowing the repository's".to_owned()
        }
    }
}

fn connections(html: &mut String, checks: &[(Mark, String)]) {
    html.push_str(
        "<section aria-labelledby=\"connections\">\n<h2 id=\"connections\">Connections</h2>\n",
    );
    check_list(html, "connections-list", &checks[..3]);
    html.push_str("</section>\n");
}

fn environment_selector(html: &mut String, state: &State) {
    html.push_str("<section aria-labelledby=\"environment-heading\">\n<h2 id=\"environment-heading\">Environment</h2>\n<form method=\"get\" action=\"/\" class=\"row\">\n<label for=\"environment\">Environment</label>\n<select id=\"environment\" name=\"environment\">\n");
    let chosen = state.environment.as_deref();
    let selected = |is: bool| if is { " selected" } else { "" };
    let _ = writeln!(
        html,
        "<option value=\"\"{}>Repository (jobs without an environment)</option>",
        selected(chosen.is_none())
    );
    for e in &state.environments {
        let _ = writeln!(
            html,
            "<option value=\"{0}\"{1}>{0}</option>",
            escape(e),
            selected(chosen == Some(e.as_str()))
        );
    }
    if let Some(typed) = chosen.filter(|c| !state.environments.iter().any(|e| e == c)) {
        let _ = writeln!(
            html,
            "<option value=\"{0}\" selected>{0} (not named by the workflows)</option>",
            escape(typed)
        );
    }
    html.push_str("</select>\n<label for=\"other\">or another</label>\n<input id=\"other\" name=\"other\" type=\"text\" autocomplete=\"off\" spellcheck=\"false\" placeholder=\"e.g. staging\">\n<button type=\"submit\" id=\"show\">Show</button>\n</form>\n</section>\n");
}

fn required_secrets(html: &mut String, state: &State) {
    let chosen = state.environment.as_deref();
    let _ = write!(
        html,
        "<section aria-labelledby=\"required\">\n<h2 id=\"required\">Required secrets <span class=\"where\">{}</span></h2>\n",
        escape(&where_words(chosen))
    );
    let checked = match &state.checked {
        Ok(checked) => checked,
        Err(message) => {
            let _ = write!(
                html,
                "<p class=\"notice error\" role=\"alert\">The secrets could not be checked: {}</p>\n</section>\n",
                escape(message)
            );
            return;
        }
    };
    let here: Vec<&Finding> = checked
        .findings
        .iter()
        .filter(|f| f.environment.as_deref() == chosen)
        .collect();
    if here.is_empty() {
        html.push_str("<p>The workflows reference no secret here.</p>\n");
    } else {
        html.push_str("<table>\n<thead><tr><th scope=\"col\">Secret</th><th scope=\"col\">Status</th><th scope=\"col\">Used in</th></tr></thead>\n<tbody>\n");
        for f in here {
            let name = escape(&f.name);
            let _ = write!(
                html,
                "<tr id=\"row-{name}\"><th scope=\"row\">{name}</th><td>"
            );
            match f.found_in {
                Some(scope) => {
                    let _ = write!(
                        html,
                        "<span class=\"pass\">Set ✓</span> <span class=\"detail\">{}</span>",
                        escape(&found_words(scope, f))
                    );
                }
                None => {
                    let label = if f.optional {
                        "Missing (optional)"
                    } else {
                        "Missing ✗"
                    };
                    let _ = write!(
                        html,
                        "<span class=\"fail\">{label}</span>\n<form method=\"post\" action=\"/save\" class=\"save\">\n<input type=\"hidden\" name=\"environment\" value=\"{env}\">\n<input type=\"hidden\" name=\"name\" value=\"{name}\">\n<label for=\"value-{name}\">Value of {name}</label>\n<input id=\"value-{name}\" name=\"value\" type=\"password\" autocomplete=\"off\" spellcheck=\"false\" required>\n<button type=\"submit\" id=\"save-{name}\">Save</button>\n</form>",
                        env = escape(chosen.unwrap_or_default())
                    );
                }
            }
            let _ = writeln!(html, "</td><td>{}</td></tr>", escape(&f.places.join(", ")));
        }
        let _ = writeln!(
            html,
            "<tr id=\"row-{BUILTIN}\"><th scope=\"row\">{BUILTIN}</th><td><span class=\"pass\">Set ✓</span> <span class=\"detail\">built in: GitHub gives it to every run, and it is never set</span></td><td></td></tr>"
        );
        html.push_str("</tbody>\n</table>\n");
    }
    if !checked.notes.is_empty() {
        html.push_str("<ul class=\"notes\">\n");
        for note in &checked.notes {
            let _ = writeln!(html, "<li>{}</li>", escape(note));
        }
        html.push_str("</ul>\n");
    }
    html.push_str("<p class=\"hint\">Values are sealed by this program on your machine before they leave it; this page never shows one.</p>\n</section>\n");
}

fn preflight(html: &mut String, state: &State, checks: &[(Mark, String)]) {
    let env = escape(state.environment.as_deref().unwrap_or_default());
    let _ = write!(
        html,
        "<section aria-labelledby=\"preflight\">\n<h2 id=\"preflight\">Preflight</h2>\n<form method=\"get\" action=\"/\">\n<input type=\"hidden\" name=\"environment\" value=\"{env}\">\n<input type=\"hidden\" name=\"preflight\" value=\"1\">\n<button type=\"submit\" id=\"run-preflight\">Run preflight</button>\n</form>\n"
    );
    if state.preflight {
        check_list(html, "checklist", checks);
        let failed = checks.iter().filter(|(m, _)| *m == Mark::Fail).count();
        let passed = checks.iter().filter(|(m, _)| *m == Mark::Pass).count();
        let (class, text) = if failed == 0 {
            ("pass", format!("All checks passed ({passed})."))
        } else {
            (
                "fail",
                format!("{failed} of {} checks failed.", passed + failed),
            )
        };
        let _ = writeln!(
            html,
            "<p id=\"preflight-result\" class=\"result {class}\" role=\"status\">{text}</p>"
        );
    }
    html.push_str("</section>\n");
}

/// A list of checks, each with its mark.
fn check_list(html: &mut String, id: &str, checks: &[(Mark, String)]) {
    let _ = writeln!(html, "<ul class=\"checks\" id=\"{id}\">");
    for (mark, text) in checks {
        let _ = writeln!(
            html,
            "<li class=\"{}\"><span class=\"mark\">{}</span> {}</li>",
            mark.class(),
            mark.label(),
            escape(text)
        );
    }
    html.push_str("</ul>\n");
}

/// Text made safe inside HTML text and attribute values.
pub(in crate::cli) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_quotes_are_escaped_in_text_and_attributes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
