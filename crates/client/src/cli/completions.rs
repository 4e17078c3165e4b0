//! `completions bash|zsh|fish|powershell`: clap_complete's scripts, with one repair for bash.

use std::io::Write;

/// The name the scripts complete.
const BIN: &str = "mgraph-deploy-cli";

/// Writes the completion script of `shell` for `command` to `out`.
///
/// clap_complete's bash script names each command's state in two places: the loop over the
/// words typed builds it from the binary's name with every `-` made `__`
/// (`mgraph__deploy__cli__subcmd__secret`), while the `case` that offers a command's flags
/// labels it with every `-` made `__subcmd__`. With a hyphen in the binary's name no label ever
/// matches, and nothing below the top level completes. The labels are spelled as the loop spells
/// them; a test sources the script in bash and asks it.
pub(super) fn write(
    shell: clap_complete::Shell,
    command: &mut clap::Command,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, command, BIN, &mut script);
    if shell == clap_complete::Shell::Bash {
        let text = String::from_utf8_lossy(&script);
        let label = BIN.replace('-', "__subcmd__");
        let state = BIN.replace('-', "__");
        script = text.replace(&label, &state).into_bytes();
    }
    out.write_all(&script)
}
