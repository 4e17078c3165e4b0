//! `auth status`: whose PAT this is and whether it can read a target's secrets, as `gh auth
//! status` says who is logged in.

use std::path::Path;

use mgraph_deploy_api::{RateLimit, TokenCheckData};
use serde_json::json;

use super::args::{PatSource, TargetArgs};
use super::output::Output;
use super::session::{Session, pat_origin};
use super::{Exit, Failure};
use crate::api::{DeployClient, Target};

pub(super) async fn status(
    client: &DeployClient,
    out: Output,
    target: &TargetArgs,
    pat: &PatSource,
) -> Result<Exit, Failure> {
    let target = checked_target(target)?;
    let origin = pat_origin(pat);
    let mut session = Session::open(client, pat, None).await?;
    let envelope = session
        .resealing(async |c, s| c.check_token(&s.pat, target.as_ref()).await)
        .await?;
    let readable = |data: &TokenCheckData| data.target.as_ref().is_none_or(|t| t.can_read_secrets);
    if out.json {
        if let (true, Some(data)) = (envelope.success, &envelope.data) {
            out.print_json(&json!({
                "success": true,
                "login": data.login,
                "pat_from": origin,
                "rate_limit": data.rate_limit,
                "target": data.target,
            }));
            return Ok(Exit::unless(!readable(data)));
        }
    }
    Ok(out.envelope(
        &envelope,
        |data| Exit::unless(!readable(data)),
        |data| {
            println!("✓ Logged in to GitHub as {} ({origin})", data.login);
            if let Some(rate) = &data.rate_limit {
                println!("  {}", rate_words(rate));
            }
            match &data.target {
                Some(access) if access.can_read_secrets => {
                    println!("✓ Can read the secrets of {}", access.target);
                    eprintln!(
                        "note: GitHub tells whether a PAT can also write secrets only when it writes one (a fine-grained PAT needs the Secrets permission set to \"Read and write\")"
                    );
                }
                Some(access) => println!(
                    "✗ Cannot read the secrets of {}: {}",
                    access.target,
                    access.error.as_deref().unwrap_or("refused")
                ),
                None => {}
            }
        },
    ))
}

/// The target to try: the flags' when any is given; else the repository of `GH_REPO` or the
/// git origin when there is one, and none otherwise (the login is still checked).
fn checked_target(args: &TargetArgs) -> Result<Option<Target>, Failure> {
    let named = args.repo.is_some() || args.environment.is_some() || args.org.is_some();
    match args.resolve_in(Path::new(".")) {
        Ok((target, note)) => {
            if let Some(note) = note {
                eprintln!("{note}");
            }
            Ok(Some(target))
        }
        Err(e) if named => Err(e.into()),
        Err(_) => Ok(None),
    }
}

/// `Rate limit: 4999 of 5000 requests left this hour`.
fn rate_words(rate: &RateLimit) -> String {
    match (rate.remaining, rate.limit) {
        (Some(remaining), Some(limit)) => {
            format!("Rate limit: {remaining} of {limit} requests left this hour")
        }
        _ => "Rate limit: not reported".to_owned(),
    }
}
