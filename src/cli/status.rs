//! `pam-totp status`: enrolled or not, where, the code parameters, scratch codes left, the
//! last success, the failure counters and any lockout. Never the secret.

use super::args::{self, Spec};
use super::target::{self, Who};
use super::{term, Command, Error};
use crate::config::{Options, DEFAULT_CENTRAL_SECRET};
use crate::otp::limit::{counts, limited_for};
use crate::otp::totp_step;
use crate::store::{self, load_secret, Kind, Secret, SecretLocation, State, StateDir};

pub(crate) const COMMAND: Command = Command {
    name: "status",
    summary: "show a user's enrollment, scratch codes left, failures and lockout",
    help: HELP,
    run,
};

const HELP: &str = "\
Usage: pam-totp status [--user NAME] [--config FILE]
Show whether the user is enrolled, where the secret file is, the code parameters, how
many scratch codes are left, the last successful login, the failures in the last 15
minutes and 24 hours with their limits, and any lockout. Never shows the secret.

Options:
  --user NAME      another user (needs root)
  --config FILE    read FILE instead of /etc/security/pam_totp.conf
  -h, --help       show this help
";

const SPEC: &[Spec] = &[("user", true), ("config", true)];

/// `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian, from days since the epoch).
pub(crate) fn utc(ts: u64) -> String {
    let days = ts / 86_400;
    let secs = ts % 86_400;
    // Howard Hinnant's civil_from_days, for non-negative days.
    let z = days.saturating_add(719_468);
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// `N min S s` for a wait.
pub(crate) fn duration(secs: u64) -> String {
    match (secs / 3600, secs / 60 % 60, secs % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

/// One line describing the code parameters (`window` after config overrides).
pub(crate) fn describe(secret: &Secret, opts: &Options, state: Option<&State>) -> String {
    let same = |st: &&State| st.secret_id == secret.id;
    match secret.kind {
        Kind::Totp { period } => format!(
            "TOTP, {}, {} digits, {period} s period, window ±{}",
            secret.algorithm.name(),
            secret.digits,
            opts.window.or(secret.window).unwrap_or(1)
        ),
        Kind::Hotp { counter } => format!(
            "HOTP, {}, {} digits, next counter {}, look-ahead {}",
            secret.algorithm.name(),
            secret.digits,
            state
                .filter(same)
                .and_then(|s| s.next_counter)
                .unwrap_or(counter),
            opts.window.or(secret.window).unwrap_or(10)
        ),
    }
}

fn now() -> Result<u64, Error> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| Error::failed("the clock is before 1970"))
}

/// What reading a user's secret gave.
pub(crate) enum Found {
    Enrolled(SecretLocation, Box<Secret>),
    Missing(SecretLocation),
    Broken(SecretLocation, store::Error),
}

/// Looks where the module looks; when that is the home layout and nothing is there, root
/// also looks in the central default (where `enroll --user` writes).
pub(crate) fn find_secret(who: &Who, opts: &Options) -> Result<Found, Error> {
    let primary = target::module_location(who, opts)?;
    let first = read(&primary, who);
    if let (Found::Missing(_), SecretLocation::Home { .. }, true) =
        (&first, &primary, who.euid == 0)
    {
        if let Ok(central) = SecretLocation::resolve(DEFAULT_CENTRAL_SECRET, &who.user) {
            if let found @ (Found::Enrolled(..) | Found::Broken(..)) = read(&central, who) {
                return Ok(found);
            }
        }
    }
    Ok(first)
}

fn read(loc: &SecretLocation, who: &Who) -> Found {
    match load_secret(loc, &who.user, who.euid) {
        Ok(s) => Found::Enrolled(loc.clone(), Box::new(s)),
        Err(store::Error::NotFound(_)) => Found::Missing(loc.clone()),
        Err(e) => Found::Broken(loc.clone(), e),
    }
}

fn run(argv: &[String]) -> Result<(), Error> {
    let a = args::parse(argv, SPEC, 0)?;
    let who = target::who(a.value("user"), "status")?;
    let opts = target::options(a.value("config"))?;
    let now = now()?;
    let mut lines = vec![format!("user:          {}", who.display())];
    let mut problem = None;
    let found = find_secret(&who, &opts)?;
    let state = match StateDir::open(&opts.state_dir, false) {
        Ok(dir) => match dir.peek(who.user.uid) {
            Ok(st) => Ok(Some(st)),
            Err(e) => Err(e.to_string()),
        },
        Err(store::Error::Missing(_)) => Ok(None),
        Err(e) if who.euid != 0 => Err(format!(
            "{e} (sudo pam-totp status shows failures and lockout)"
        )),
        Err(e) => Err(e.to_string()),
    };
    let st = state.as_ref().ok().and_then(Option::as_ref);
    let mut secret_for_state = None;
    match &found {
        Found::Enrolled(loc, secret) => {
            lines.push("enrolled:      yes".into());
            lines.push(format!(
                "secret file:   {} ({})",
                loc.display_path().display(),
                target::layout_name(loc)
            ));
            lines.push(format!("codes:         {}", describe(secret, &opts, st)));
            let used = st.filter(|s| s.secret_id == secret.id).map_or(0, |s| {
                secret
                    .scratch
                    .iter()
                    .filter(|h| s.used_scratch.contains(&h.id()))
                    .count()
            });
            lines.push(format!(
                "scratch codes: {} left of {}",
                secret.scratch.len().saturating_sub(used),
                secret.scratch.len()
            ));
            secret_for_state = Some(secret);
        }
        Found::Missing(loc) => {
            lines.push(format!(
                "enrolled:      no (no secret file at {})",
                loc.display_path().display()
            ));
        }
        Found::Broken(loc, e) => {
            lines.push(format!(
                "enrolled:      unknown ({})",
                target::layout_name(loc)
            ));
            lines.push(format!("secret file:   {e}"));
            problem = Some(format!("cannot read the secret file: {e}"));
        }
    }
    match &state {
        Err(e) if who.euid != 0 => {
            // The state directory is root's (0700): not an error for a user asking.
            lines.push(format!("state:         {e}"));
        }
        Err(e) => {
            lines.push(format!("state:         {e}"));
            problem.get_or_insert_with(|| format!("cannot read the state: {e}"));
        }
        Ok(st) => {
            let empty = State::default();
            let st = st.as_ref().unwrap_or(&empty);
            lines.push(format!(
                "last success:  {}",
                st.last_success.map_or_else(|| "never".into(), utc)
            ));
            let l = &opts.limits;
            let (short, daily) = counts(l, &st.failures, st.short_reset, now);
            lines.push(format!(
                "failures:      {short} in the last {} (limit {}), {daily} in the last 24 h (limit {})",
                duration(l.interval).replace(" 0 s", ""),
                l.max_failures,
                l.max_daily
            ));
            lines.push(match limited_for(l, &st.failures, st.short_reset, now) {
                Some(wait) => format!(
                    "lockout:       yes, {} left (a scratch code still works; root can run pam-totp reset)",
                    duration(wait)
                ),
                None => "lockout:       none".into(),
            });
            if let (Some(secret), Some(last)) = (secret_for_state, st.last_step) {
                if let Kind::Totp { period } = secret.kind {
                    let w = u64::from(opts.window.or(secret.window).unwrap_or(1));
                    let step = totp_step(now, period);
                    if st.secret_id == secret.id && last > step.saturating_add(w).saturating_add(2)
                    {
                        lines.push(format!(
                            "watermark:     from the future ({} steps ahead): check the clock, then run pam-totp reset",
                            last - step
                        ));
                    }
                }
            }
        }
    }
    term::print(&(lines.join("\n") + "\n"))?;
    match problem {
        Some(p) => Err(Error::failed(p)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn waits_print_in_minutes() {
        assert_eq!(duration(42), "42 s");
        assert_eq!(duration(900), "15 min 0 s");
        assert_eq!(duration(7300), "2 h 1 min");
    }
}
