//! `pam-totp test SERVICE`: one real `pam_authenticate` against `/etc/pam.d/SERVICE`,
//! prompting on this terminal, so an admin sees what a login will ask before logging out.

use std::path::Path;
use zeroize::Zeroizing;

use super::args::{self, Spec};
use super::{doctor, term, Command, Error};
use crate::pam::client::{self, Responder, Session, Style};
use crate::pam::codes::code_name;
use crate::pam::ffi;
use crate::sys;

pub(crate) const COMMAND: Command = Command {
    name: "test",
    summary: "run a real PAM login against /etc/pam.d/SERVICE",
    help: "Usage: pam-totp test SERVICE [--user NAME]\n\
\n\
Runs pam_authenticate with the stack of /etc/pam.d/SERVICE (e.g. sshd, sudo), asks\n\
its questions on this terminal (answers to hidden prompts are not echoed), and\n\
reports the PAM result. Use it before logging out after a change. Nothing but\n\
what the stack itself does (a used code, a failure count) changes.\n\
\n\
Run it as root: modules such as pam_totp need root to read their state.\n\
The account stack (expiry, pam_nologin) and sshd's own settings are not run;\n\
see pam-totp doctor for those.\n\
\n\
Exit status: 0 only when PAM answered PAM_SUCCESS.\n\
\n\
Options:\n\
  --user NAME   log in as NAME (default: the invoking user)\n",
    run,
};

const SPEC: &[Spec] = &[("user", true)];

struct Terminal {
    interrupted: bool,
    failed: Option<Error>,
}

impl Responder for Terminal {
    fn respond(&mut self, style: Style, message: &str) -> Option<Zeroizing<Vec<u8>>> {
        match style {
            Style::PromptHidden | Style::PromptShown => {
                match term::read_line(message, style == Style::PromptShown) {
                    Ok(answer) => Some(answer),
                    Err(Error::Interrupted) => {
                        self.interrupted = true;
                        None
                    }
                    Err(e) => {
                        self.failed = Some(e);
                        None
                    }
                }
            }
            Style::Error | Style::Info => {
                let _ = term::say(message);
                Some(Zeroizing::new(Vec::new()))
            }
        }
    }
}

/// What a result means for the admin, in words.
fn meaning(code: i32) -> &'static str {
    match code {
        ffi::PAM_SUCCESS => "authentication succeeded",
        ffi::PAM_AUTH_ERR => {
            "authentication failed: a wrong password or code (or a file problem: run pam-totp doctor)"
        }
        ffi::PAM_MAXTRIES => {
            "too many wrong codes: the rate limit is in force (pam-totp status; as root pam-totp reset)"
        }
        ffi::PAM_AUTHINFO_UNAVAIL => {
            "a file could not be read or saved, so the stack failed closed (run pam-totp doctor)"
        }
        ffi::PAM_SERVICE_ERR => "a configuration error in the stack (run pam-totp doctor)",
        ffi::PAM_USER_UNKNOWN => "the user is unknown to a module",
        ffi::PAM_CONV_ERR => "a question was not answered",
        ffi::PAM_SYSTEM_ERR => "a module failed (see the system log)",
        ffi::PAM_ABORT => "libpam gave up (a line in the stack cannot be loaded? run pam-totp doctor)",
        _ => "authentication failed",
    }
}

fn valid_service(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+' | b'@'))
}

fn run(args: &[String]) -> Result<(), Error> {
    let p = args::parse(args, SPEC, 1)?;
    let service = p
        .positional
        .first()
        .ok_or_else(|| Error::usage("which service? e.g. pam-totp test sshd"))?;
    if !valid_service(service) {
        return Err(Error::usage(format!("\"{service}\" is not a service name")));
    }
    let file = Path::new("/etc/pam.d").join(service);
    if !file.is_file() {
        // Plain pam_start would silently use /etc/pam.d/other.
        return Err(Error::failed(format!(
            "{} does not exist (libpam would use /etc/pam.d/other instead)",
            file.display()
        )));
    }
    let user = doctor::lookup_user(p.value("user"))?;
    let name = String::from_utf8_lossy(&user.name).into_owned();
    if sys::geteuid() != 0 {
        term::note("not root: modules that need root (pam_totp's state, /etc/shadow) may fail");
    }
    sys::catch_interrupts().map_err(|e| Error::failed(format!("cannot catch signals: {e}")))?;
    term::say(&format!(
        "Testing {} as {name}; answer as at a real login.",
        file.display()
    ))?;
    let mut responder = Terminal {
        interrupted: false,
        failed: None,
    };
    let session = Session {
        service: service.clone(),
        user: user.name.clone(),
        confdir: None,
        ..Session::default()
    };
    let result = client::authenticate(&session, &mut responder).map_err(Error::failed)?;
    if responder.interrupted || sys::interrupted() {
        return Err(Error::Interrupted);
    }
    if let Some(e) = responder.failed {
        return Err(e);
    }
    let line = format!(
        "{service}: {} ({}) for {name}",
        meaning(result.code),
        code_name(result.code)
    );
    if result.code == ffi::PAM_SUCCESS {
        term::say(&line)
    } else {
        Err(Error::failed(line))
    }
}
