//! The `pam-totp` command: one file per subcommand, each a [`Command`] in [`COMMANDS`].
//! To add a subcommand, write `src/cli/<name>.rs` with a `pub(crate) const COMMAND` and
//! add one line to the table.
//!
//! Exit status: 0 on success, 1 with one line `pam-totp: <reason>` on error, 2 on a usage
//! error, 130 when interrupted (SIGINT/SIGTERM/SIGHUP/SIGQUIT). A secret (URI, QR code,
//! scratch codes) is printed only to a terminal, or back to a caller who passed it.

use std::fmt;
use std::process::ExitCode;

mod args;
mod doctor;
mod enable;
mod enroll;
mod import;
pub mod pamconf;
mod qr;
mod reset;
mod status;
mod target;
mod term;
mod test_service;
mod try_login;

/// One subcommand.
pub(crate) struct Command {
    /// What is typed after `pam-totp`.
    pub name: &'static str,
    /// One line for `pam-totp --help`.
    pub summary: &'static str,
    /// The full `--help` text.
    pub help: &'static str,
    /// Runs it with the arguments after the name.
    pub run: fn(&[String]) -> Result<(), Error>,
}

/// Every subcommand, in the order `--help` lists them.
const COMMANDS: &[&Command] = &[
    &enroll::COMMAND,
    &import::COMMAND,
    &status::COMMAND,
    &reset::COMMAND,
    &try_login::COMMAND,
    &test_service::COMMAND,
    &doctor::COMMAND,
    &enable::COMMAND,
    &enable::DISABLE,
];

/// Why a command failed, in one line a user can act on.
#[derive(Debug)]
pub enum Error {
    /// Wrong use of the command line: exit 2.
    Usage(String),
    /// The command could not do its job: exit 1.
    Failed(String),
    /// A signal arrived; whatever was half done was undone: exit 130.
    Interrupted,
}

impl Error {
    pub(crate) fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    pub(crate) fn failed(msg: impl Into<String>) -> Self {
        Error::Failed(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Failed(m) => write!(f, "{m}"),
            Error::Interrupted => write!(f, "interrupted; nothing was written"),
        }
    }
}

impl std::error::Error for Error {}

fn top_help() -> String {
    let mut s = String::from(
        "Usage: pam-totp COMMAND [OPTIONS]\n\
         TOTP/HOTP second factor for PAM: enroll users and check their state.\n\nCommands:\n",
    );
    for c in COMMANDS {
        s.push_str(&format!("  {:<28} {}\n", c.name, c.summary));
    }
    s.push_str("\nRun 'pam-totp COMMAND --help' for a command's options. See pam-totp(1).\n");
    s
}

/// `-h`/`--help` among the options (before a `--`).
fn wants_help(args: &[String]) -> bool {
    args.iter()
        .take_while(|a| a.as_str() != "--")
        .any(|a| a == "-h" || a == "--help")
}

fn run(argv: &[String]) -> Result<(), (Error, Option<&'static str>)> {
    let Some((name, rest)) = argv.split_first() else {
        term::print(&top_help()).map_err(|e| (e, None))?;
        return Err((Error::usage("no command given"), None));
    };
    if name == "-h" || name == "--help" || name == "help" {
        return term::print(&top_help()).map_err(|e| (e, None));
    }
    let Some(cmd) = COMMANDS.iter().find(|c| c.name == name) else {
        return Err((Error::usage(format!("unknown command \"{name}\"")), None));
    };
    if wants_help(rest) {
        return term::print(cmd.help).map_err(|e| (e, Some(cmd.name)));
    }
    (cmd.run)(rest).map_err(|e| (e, Some(cmd.name)))
}

/// Runs the command line.
pub fn main() -> ExitCode {
    let mut argv = Vec::new();
    for a in std::env::args_os().skip(1) {
        match a.into_string() {
            Ok(s) => argv.push(s),
            Err(_) => {
                term::error_line("arguments must be valid UTF-8");
                return ExitCode::from(2);
            }
        }
    }
    match run(&argv) {
        Ok(()) => ExitCode::SUCCESS,
        Err((Error::Usage(m), cmd)) => {
            let see = match cmd {
                Some(c) => format!("pam-totp {c} --help"),
                None => "pam-totp --help".into(),
            };
            term::error_line(&format!("{m} (see {see})"));
            ExitCode::from(2)
        }
        Err((e @ Error::Failed(_), _)) => {
            term::error_line(&e.to_string());
            ExitCode::from(1)
        }
        Err((e @ Error::Interrupted, _)) => {
            term::error_line(&e.to_string());
            ExitCode::from(130)
        }
    }
}
