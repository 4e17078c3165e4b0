//! Upstream error texts may carry credential material (the GitHub Service has been seen echoing a
//! decrypted PAT inside a header-value error). Before any upstream text reaches a response or a log,
//! it passes through [`scrub`].

const MAX_LEN: usize = 300;
const TOKEN_PREFIXES: [&str; 6] = ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"];

/// Replaces every credential-like run (a GitHub token, or 40+ characters of base64/token alphabet)
/// with `[redacted]`, drops control characters and caps the length.
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_LEN + 4));
    let in_run = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-');
    let mut run_start = None;
    for (at, c) in text.char_indices() {
        if in_run(c) {
            run_start.get_or_insert(at);
            continue;
        }
        if let Some(start) = run_start.take() {
            push_run(&mut out, &text[start..at]);
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    if let Some(start) = run_start {
        push_run(&mut out, &text[start..]);
    }
    if out.len() > MAX_LEN && out.chars().count() > MAX_LEN {
        out = out.chars().take(MAX_LEN).collect::<String>() + "…";
    }
    out
}

/// A run of token characters (ASCII), or `[redacted]` when it looks like a credential.
fn push_run(out: &mut String, run: &str) {
    let has_prefix = |prefix: &str| {
        run.as_bytes()
            .windows(prefix.len())
            .any(|w| w.eq_ignore_ascii_case(prefix.as_bytes()))
    };
    let looks_secret = run.len() >= 40 || TOKEN_PREFIXES.iter().any(|p| has_prefix(p));
    out.push_str(if looks_secret { "[redacted]" } else { run });
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn keeps_ordinary_upstream_messages() {
        assert_eq!(
            scrub("Secret 'AWS_ACCOUNT_ID' not found"),
            "Secret 'AWS_ACCOUNT_ID' not found"
        );
        assert_eq!(
            scrub("GitHub API error: 429 Error"),
            "GitHub API error: 429 Error"
        );
    }

    #[test]
    fn redacts_tokens_and_long_base64_runs() {
        let leaked = "Invalid header value: 'token ghp_surrogate_admin_AAAAAAAAAAAAAAAAAAAA_n'";
        assert!(!scrub(leaked).contains("ghp_"));
        assert_eq!(scrub("a GHO_short one"), "a [redacted] one");
        assert_eq!(scrub("x-github_PAT_1y"), "[redacted]");
        let blob = "Z".repeat(44) + "==";
        assert_eq!(
            scrub(&format!("bad blob {blob} here")),
            "bad blob [redacted] here"
        );
    }

    #[test]
    fn caps_the_length_and_removes_line_breaks() {
        let s = scrub(&"word ".repeat(200));
        assert!(s.chars().count() <= 301);
        assert!(!scrub("a\nb").contains('\n'));
    }
}
