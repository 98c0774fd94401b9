//! `pam-totp import-google-authenticator`: converts a google-authenticator-libpam file into a
//! pam_totp secret file, saying what does not carry over, refusing what cannot.

use std::ffi::OsStr;
use std::path::{Component, Path};

use super::args::{self, Spec};
use super::enroll::{new_id, random};
use super::status::describe;
use super::target::{self, Who};
use super::{term, Command, Error};
use crate::otp::{
    hash_scratch_code, parse_google_authenticator, Algorithm, GaFile, ScratchStrength,
};
use crate::store::{
    self, open_central_dir, open_home_dir, read_file_at, walk_below, FileRules, Kind, Secret,
};
use crate::sys::FsIdentity;

pub(crate) const COMMAND: Command = Command {
    name: "import-google-authenticator",
    summary: "convert a ~/.google_authenticator file",
    help: HELP,
    run,
};

const HELP: &str = "\
Usage: pam-totp import-google-authenticator [PATH] [OPTIONS]
Convert a google-authenticator-libpam file (default: the user's ~/.google_authenticator)
into a pam_totp secret file: the secret, TOTP or HOTP, the step size, the window, the
HOTP counter and the scratch codes (stored hashed). What pam-totp does differently is
listed; a file it cannot read completely is refused and nothing is written.

Options:
  --user NAME      as root: import for another user (central layout unless --home)
  --home           with --user: write ~/.pam_totp owned by that user
  --output PATH    write the secret file here instead
  --force          replace an existing secret file
  --config FILE    read FILE instead of /etc/security/pam_totp.conf
  -h, --help       show this help
";

const SPEC: &[Spec] = &[
    ("user", true),
    ("home", false),
    ("output", true),
    ("force", false),
    ("config", true),
];

/// Reads the google-authenticator file: inside the user's home with the home rules (as
/// the user, fs-uid switched when root), elsewhere with root- or user-owned, not
/// group/other-writable directories. The file must be the user's (or root's) and private.
fn read_source(who: &Who, path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, store::Error> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(store::Error::unsafe_file(path, "not a file path"));
    };
    let rules = |owner| FileRules {
        owner,
        forbidden_mode: 0o077,
    };
    let home = &who.user.dir;
    if let Ok(rel) = parent.strip_prefix(home).map(Path::to_path_buf) {
        let _identity = if who.euid == 0 {
            Some(
                FsIdentity::switch_to(who.user.uid, who.user.gid)
                    .map_err(|_| store::Error::Identity)?,
            )
        } else {
            None
        };
        let dirs: Vec<&OsStr> = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s),
                _ => None,
            })
            .collect();
        let home_fd = open_home_dir(home, who.user.uid)?;
        let (dir, _) = walk_below(home_fd, home, &dirs, who.user.uid)?;
        return Ok(read_file_at(&dir, name, path, rules(who.user.uid))?.bytes);
    }
    let mut owners = vec![0, who.user.uid];
    if who.euid != 0 {
        owners.push(who.euid);
    }
    let dir = open_central_dir(parent, &owners)?;
    match read_file_at(&dir, name, path, rules(who.user.uid)) {
        Err(store::Error::Unsafe { reason, .. }) if reason.starts_with("owned by uid 0") => {
            Ok(read_file_at(&dir, name, path, rules(0))?.bytes)
        }
        other => Ok(other?.bytes),
    }
}

/// The pam_totp secret for a google-authenticator file, and what changes in words.
fn convert(ga: GaFile, limits: &crate::otp::limit::Limits) -> Result<(Secret, Vec<String>), Error> {
    let o = &ga.options;
    let mut notes = Vec::new();
    let (kind, window) = match (o.hotp_counter, o.totp_auth) {
        (Some(_), true) => {
            return Err(Error::failed(
                "the file has both TOTP_AUTH and HOTP_COUNTER; refusing to guess which is meant",
            ))
        }
        (None, false) => {
            return Err(Error::failed(
                "the file has neither TOTP_AUTH nor HOTP_COUNTER (google-authenticator accepts only its scratch codes with it); nothing to import",
            ))
        }
        (Some(counter), false) => {
            if o.step_size.is_some() {
                notes.push("STEP_SIZE ignored: it applies to TOTP only".to_string());
            }
            let ws = o.window_size.unwrap_or(3);
            let look = ws.clamp(1, 20);
            if look != ws {
                notes.push(format!(
                    "WINDOW_SIZE {ws} reduced to a look-ahead of {look} (pam-totp's maximum)"
                ));
            }
            (Kind::Hotp { counter }, look)
        }
        (None, true) => {
            // google-authenticator checks steps -(W-1)/2 ..= W/2 around now.
            let ws = o.window_size.unwrap_or(3);
            let behind = ws.saturating_sub(1) / 2;
            let w = behind.min(3);
            if behind > 3 {
                notes.push(format!(
                    "WINDOW_SIZE {ws} (±{behind} steps) reduced to window = 3 (±3 steps, pam-totp's maximum)"
                ));
            } else if ws % 2 == 0 {
                notes.push(format!(
                    "WINDOW_SIZE {ws} accepted one more step ahead than behind; pam-totp uses ±{w}"
                ));
            }
            if !o.disallow_reuse {
                notes.push(
                    "codes could be reused with google-authenticator (no DISALLOW_REUSE); pam-totp never accepts a code twice".to_string(),
                );
            }
            (
                Kind::Totp {
                    period: o.step_size.unwrap_or(30),
                },
                w,
            )
        }
    };
    if let Some((n, m)) = o.rate_limit {
        notes.push(format!(
            "RATE_LIMIT {n} {m} not carried over: pam-totp allows {} failed codes per {} s and {} per 24 h (pam_totp.conf)",
            limits.max_failures, limits.interval, limits.max_daily
        ));
    }
    if let Some(skew) = o.time_skew {
        notes.push(format!(
            "TIME_SKEW {skew} dropped: pam-totp does not learn clock skew; keep the clock synchronised"
        ));
    }
    if ga.key.bytes().len() < 20 {
        notes.push(format!(
            "the secret has {} bits; enrolling anew with pam-totp enroll gives 160",
            ga.key.bytes().len() * 8
        ));
    }
    let mut scratch = Vec::with_capacity(ga.scratch.len());
    for code in &ga.scratch {
        let mut salt = [0u8; 16];
        random(&mut salt)?;
        scratch.push(hash_scratch_code(code, ScratchStrength::Low, salt));
    }
    if !scratch.is_empty() {
        notes.push(format!(
            "{} scratch codes carried over, stored hashed; being 8 digits, they are not accepted while the rate limit is in force",
            scratch.len()
        ));
    }
    let secret = Secret {
        id: new_id()?,
        kind,
        key: ga.key.clone(),
        algorithm: Algorithm::Sha1,
        digits: 6,
        window: Some(window),
        scratch,
    };
    Ok((secret, notes))
}

fn run(argv: &[String]) -> Result<(), Error> {
    let a = args::parse(argv, SPEC, 1)?;
    if a.has("home") && a.has("output") {
        return Err(Error::usage("--home and --output cannot be combined"));
    }
    let who = target::who(a.value("user"), "import-google-authenticator")?;
    let opts = target::options(a.value("config"))?;
    let source = match a.positional.first() {
        Some(p) => target::absolute(p)?,
        None => who.user.dir.join(".google_authenticator"),
    };
    let bytes = read_source(&who, &source).map_err(|e| Error::failed(e.to_string()))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        Error::failed(format!(
            "{}: not a google-authenticator file (not text); nothing was written",
            source.display()
        ))
    })?;
    let ga = parse_google_authenticator(text)
        .map_err(|e| Error::failed(format!("{}: {e}; nothing was written", source.display())))?;
    let (secret, notes) = convert(ga, &opts.limits)
        .map_err(|e| Error::failed(format!("{}: {e}", source.display())))?;
    let loc = target::write_location(&who, &opts, a.has("home"), a.value("output"))?;
    let force = a.has("force");
    sys_interrupts()?;
    let dir = target::open_target(&who, &loc, force)?;
    target::write(&who, &loc, &dir, secret.to_toml().as_bytes(), force)?;
    drop(dir);
    term::say(&format!(
        "Imported {} into {} ({}): {}, {} scratch code{}.",
        source.display(),
        loc.display_path().display(),
        target::layout_name(&loc),
        describe(&secret, &crate::config::Options::default(), None),
        secret.scratch.len(),
        if secret.scratch.len() == 1 { "" } else { "s" }
    ))?;
    for n in &notes {
        term::say(&format!("  note: {n}"))?;
    }
    term::say(&format!(
        "  note: {} was left in place; remove it once logins with pam_totp work",
        source.display()
    ))?;
    target::mismatch_note(&who, &opts, &loc);
    Ok(())
}

fn sys_interrupts() -> Result<(), Error> {
    crate::sys::catch_interrupts()
        .map_err(|e| Error::failed(format!("cannot set up signal handling: {e}")))
}
