//! `pam-totp reset`: as root, clear a user's failure counters and lockout, and a replay
//! watermark from the future, under the state lock.

use super::args::{self, Spec};
use super::status::{find_secret, Found};
use super::{target, term, Command, Error};
use crate::otp::limit::limited_for;
use crate::otp::totp_step;
use crate::store::{Kind, StateDir};

pub(crate) const COMMAND: Command = Command {
    name: "reset",
    summary: "as root: clear a user's lockout and failure counters",
    help: HELP,
    run,
};

const HELP: &str = "\
Usage: pam-totp reset [--user NAME] [--config FILE]
As root: clear the user's failure counters and lockout, and a replay watermark left in
the future by a clock that was ahead. The secret and the scratch codes are kept.

Options:
  --user NAME      the user (default: the calling user)
  --config FILE    read FILE instead of /etc/security/pam_totp.conf
  -h, --help       show this help
";

const SPEC: &[Spec] = &[("user", true), ("config", true)];

fn run(argv: &[String]) -> Result<(), Error> {
    let a = args::parse(argv, SPEC, 0)?;
    let who = target::who(a.value("user"), "reset")?;
    if who.euid != 0 {
        let name = String::from_utf8_lossy(&who.user.name).into_owned();
        return Err(Error::failed(format!(
            "reset needs root (try: sudo pam-totp reset --user {name})"
        )));
    }
    let opts = target::options(a.value("config"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| Error::failed("the clock is before 1970"))?;
    let secret = match find_secret(&who, &opts)? {
        Found::Enrolled(_, s) => Some(s),
        Found::Missing(_) => None,
        Found::Broken(_, e) => {
            term::note(&format!(
                "{e}: a watermark from the future cannot be checked without the secret file"
            ));
            None
        }
    };
    let dir = StateDir::open(&opts.state_dir, false).map_err(|e| Error::failed(e.to_string()))?;
    let mut locked = dir
        .lock(who.user.uid)
        .map_err(|e| Error::failed(e.to_string()))?;
    let mut st = locked.state.clone();
    let mut done = Vec::new();
    if !st.failures.is_empty() {
        let was_limited = limited_for(&opts.limits, &st.failures, st.short_reset, now).is_some();
        done.push(format!(
            "cleared {} recorded failure{}{}",
            st.failures.len(),
            if st.failures.len() == 1 { "" } else { "s" },
            if was_limited {
                " (the lockout is lifted)"
            } else {
                ""
            }
        ));
        st.failures.clear();
    }
    st.short_reset = 0;
    if let (Some(secret), Some(last)) = (&secret, st.last_step) {
        if let Kind::Totp { period } = secret.kind {
            let w = u64::from(opts.window.or(secret.window).unwrap_or(1));
            let step = totp_step(now, period);
            if st.secret_id == secret.id && last > step.saturating_add(w).saturating_add(2) {
                done.push(format!(
                    "cleared a replay watermark {} steps in the future",
                    last - step
                ));
                st.last_step = None;
            }
        }
    }
    if st != locked.state {
        locked
            .save(&st)
            .map_err(|e| Error::failed(format!("could not save the state: {e}")))?;
    }
    drop(locked);
    if done.is_empty() {
        term::say(&format!(
            "Nothing to reset for {}: no failures, no lockout.",
            who.display()
        ))
    } else {
        term::say(&format!("Reset {}: {}.", who.display(), done.join("; ")))
    }
}
