//! Upstream error texts may carry credential material (the GitHub Service has been seen echoing a
//! decrypted PAT inside a header-value error). Before any upstream text reaches a response or a log,
//! it passes through [`scrub`].

const MAX_LEN: usize = 300;
const TOKEN_PREFIXES: [&str; 6] = ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"];

/// Replaces every credential-like run (a GitHub token, or 40+ characters of base64/token alphabet)
/// with `[redacted]`, drops control characters and caps the length.
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_LEN));
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let lower = run.to_ascii_lowercase();
        let looks_secret = run.len() >= 40 || TOKEN_PREFIXES.iter().any(|p| lower.contains(p));
        out.push_str(if looks_secret { "[redacted]" } else { run });
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-') {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(if c.is_control() { ' ' } else { c });
        }
    }
    flush(&mut run, &mut out);
    if out.chars().count() > MAX_LEN {
        out = out.chars().take(MAX_LEN).collect::<String>() + "…";
    }
    out
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
