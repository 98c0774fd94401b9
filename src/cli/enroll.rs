//! `pam-totp enroll`: a new secret (160 bits from getrandom), shown as an `otpauth://` URI and
//! a QR code, confirmed with a first code, written atomically (0600), and scratch codes shown
//! once and stored only as salted hashes.

use zeroize::Zeroizing;

use super::args::{self, Spec};
use super::target::{self, Who};
use super::{qr, term, Command, Error};
use crate::otp::{
    decode_base32, encode_base32, find_match, generate_scratch_code, hash_scratch_code,
    normalize_answer, otpauth_uri, totp_step, Algorithm, Answer, Candidates, Key, Mac, Match,
    ScratchHash, ScratchStrength, UriParams,
};
use crate::store::{Kind, Secret, StateDir};
use crate::sys;

pub(crate) const COMMAND: Command = Command {
    name: "enroll",
    summary: "create a secret, show it as a QR code, write the secret file",
    help: HELP,
    run,
};

const HELP: &str = "\
Usage: pam-totp enroll [OPTIONS]
Create a secret (160 bits), show it as an otpauth:// URI and a QR code, ask for a first
code from the app, write the secret file (mode 0600) and show the scratch codes once.

Options:
  --user NAME            as root: enroll another user (central layout unless --home)
  --home                 with --user: write ~/.pam_totp owned by that user
  --secret BASE32        use this secret instead of a new one ('-': read it from stdin)
  --no-confirm           do not ask for a first code (for scripts)
  --type totp|hotp       time-based (default) or counter-based codes
  --algorithm NAME       SHA1 (default), SHA256 or SHA512
  --digits N             code length, 6-8 (default 6)
  --period SECONDS       TOTP time step (default 30)
  --window N             TOTP: steps either side, 0-3 (default 1); HOTP: look-ahead, 1-20
  --scratch-codes N      single-use scratch codes, 0-20 (default 5)
  --issuer TEXT          issuer shown by the app (default: the host name)
  --label TEXT           account shown by the app (default: user@host)
  --output PATH          write the secret file here instead
  --force                replace an existing secret file
  --config FILE          read FILE instead of /etc/security/pam_totp.conf
  -h, --help             show this help

A secret is printed only to a terminal, or back to a caller who passed it with --secret.
";

const SPEC: &[Spec] = &[
    ("user", true),
    ("home", false),
    ("secret", true),
    ("no-confirm", false),
    ("type", true),
    ("algorithm", true),
    ("digits", true),
    ("period", true),
    ("window", true),
    ("scratch-codes", true),
    ("issuer", true),
    ("label", true),
    ("output", true),
    ("force", false),
    ("config", true),
];

/// How many times a wrong first code may be typed.
const CONFIRM_TRIES: usize = 3;

/// The parameters of a new secret.
pub(crate) struct Params {
    pub kind: Kind,
    pub algorithm: Algorithm,
    pub digits: u32,
    pub window: Option<u32>,
}

fn params(a: &args::Parsed) -> Result<Params, Error> {
    let hotp = match a.value("type").map(str::to_ascii_lowercase).as_deref() {
        None | Some("totp") => false,
        Some("hotp") => true,
        Some(other) => {
            return Err(Error::usage(format!(
                "--type {other}: expected totp or hotp"
            )))
        }
    };
    let algorithm = match a.value("algorithm") {
        None => Algorithm::Sha1,
        Some(s) => Algorithm::parse(s).map_err(|_| {
            Error::usage(format!("--algorithm {s}: expected SHA1, SHA256 or SHA512"))
        })?,
    };
    let digits = a.number("digits", 6u32..=8)?.unwrap_or(6);
    let kind = if hotp {
        if a.has("period") {
            return Err(Error::usage("--period applies to --type totp only"));
        }
        Kind::Hotp { counter: 0 }
    } else {
        Kind::Totp {
            period: a.number("period", 1u64..=86_400)?.unwrap_or(30),
        }
    };
    let window = if hotp {
        a.number("window", 1u32..=20)?
    } else {
        a.number("window", 0u32..=3)?
    };
    Ok(Params {
        kind,
        algorithm,
        digits,
        window,
    })
}

/// A random secret id: 16 hex characters.
pub(crate) fn new_id() -> Result<String, Error> {
    let mut r = [0u8; 8];
    random(&mut r)?;
    Ok(format!("{:016x}", u64::from_be_bytes(r)))
}

pub(crate) fn random(buf: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(buf).map_err(|e| Error::failed(format!("the OS random source failed: {e}")))
}

/// Scratch codes for display (`ABCD-EFGH-IJKL-MNOP`) and their salted hashes.
fn scratch_codes(n: u32) -> Result<(Vec<Zeroizing<String>>, Vec<ScratchHash>), Error> {
    let mut shown = Vec::new();
    let mut hashes = Vec::new();
    for _ in 0..n {
        let mut r = Zeroizing::new([0u8; 10]);
        random(r.as_mut())?;
        let code = generate_scratch_code(&r);
        let mut salt = [0u8; 16];
        random(&mut salt)?;
        hashes.push(hash_scratch_code(&code, ScratchStrength::High, salt));
        let mut grouped = Zeroizing::new(String::with_capacity(19));
        for (i, c) in code.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                grouped.push('-');
            }
            grouped.push(c);
        }
        shown.push(grouped);
    }
    Ok((shown, hashes))
}

fn now() -> Result<u64, Error> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| Error::failed("the clock is before 1970"))
}

/// The base32 secret in groups of four, for typing into an app by hand.
fn grouped_base32(b32: &str) -> Zeroizing<String> {
    let mut s = Zeroizing::new(String::with_capacity(b32.len() * 5 / 4 + 1));
    for (i, c) in b32.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            s.push(' ');
        }
        s.push(c);
    }
    s
}

/// The URI (and, on a terminal, the QR code) of a secret.
pub(crate) fn show_secret(uri: &str, b32: &str, qr_too: bool) -> Result<(), Error> {
    if qr_too {
        term::say("Scan this QR code with your authenticator app:")?;
        term::print(&qr::render(uri)?)?;
        term::say(&format!(
            "or add the key by hand: {}",
            grouped_base32(b32).as_str()
        ))?;
    }
    term::say(uri)
}

/// Asks for the first code until it matches (window 1; HOTP: the look-ahead). Returns the
/// matched step or counter.
fn confirm(mac: &Mac, p: &Params) -> Result<u64, Error> {
    for attempt in 1..=CONFIRM_TRIES {
        let raw = term::read_line("Code from the app: ", true)?;
        let answer = normalize_answer(&raw, p.digits);
        drop(raw);
        let candidates = match p.kind {
            Kind::Totp { period } => Candidates::totp(totp_step(now()?, period), 1, None),
            Kind::Hotp { counter } => Candidates::hotp(counter, p.window.unwrap_or(10)),
        };
        if let Answer::Code { value, .. } = &answer {
            if let Match::Fresh(at) = find_match(mac, p.digits, *value, candidates) {
                return Ok(at);
            }
        }
        if attempt < CONFIRM_TRIES {
            term::say(&format!(
                "That is not the current code ({} digits expected). Check the phone's clock and that it scanned this code.",
                p.digits
            ))?;
        }
    }
    Err(Error::failed(format!(
        "the code did not match {CONFIRM_TRIES} times; nothing was written"
    )))
}

/// Records the confirmation code as used, so it cannot log in a second time (root only:
/// the state directory is root's). Best effort: the secret is already written.
fn mark_used(opts: &crate::config::Options, who: &Who, id: &str, step: u64) {
    if who.euid != 0 {
        return;
    }
    let Ok(dir) = StateDir::open(&opts.state_dir, false) else {
        return;
    };
    let Ok(mut locked) = dir.lock(who.user.uid) else {
        return;
    };
    let mut st = locked.state.clone();
    st.secret_id = id.to_string();
    st.last_step = Some(step);
    st.next_counter = None;
    st.used_scratch.clear();
    if locked.save(&st).is_err() {
        term::note("could not record the confirmation code as used in the state directory");
    }
}

fn read_secret_from_stdin() -> Result<Zeroizing<String>, Error> {
    let line = term::read_line("", false)?;
    let text = String::from_utf8(line.to_vec())
        .map_err(|_| Error::failed("the secret on standard input is not base32"))?;
    Ok(Zeroizing::new(text.trim().to_string()))
}

fn run(argv: &[String]) -> Result<(), Error> {
    let a = args::parse(argv, SPEC, 0)?;
    let mut p = params(&a)?;
    let scratch_n = a.number("scratch-codes", 0u32..=20)?.unwrap_or(5);
    if a.has("home") && a.has("output") {
        return Err(Error::usage("--home and --output cannot be combined"));
    }
    let given = a.value("secret");
    let to_tty = term::stdout_is_tty();
    if given.is_none() && !to_tty {
        return Err(Error::failed(
            "standard output is not a terminal: refusing to print a new secret there (pass --secret to provision from a script)",
        ));
    }
    let confirming = !a.has("no-confirm");
    if confirming && !(term::stdin_is_tty() && to_tty) {
        return Err(Error::failed(
            "no terminal to ask for the first code on: pass --no-confirm (with --secret in scripts)",
        ));
    }
    let who = target::who(a.value("user"), "enroll")?;
    let opts = target::options(a.value("config"))?;
    let loc = target::write_location(&who, &opts, a.has("home"), a.value("output"))?;
    sys::catch_interrupts()
        .map_err(|e| Error::failed(format!("cannot set up signal handling: {e}")))?;
    let force = a.has("force");
    let dir = target::open_target(&who, &loc, force)?;

    let key = match given {
        Some("-") => decode_base32(&read_secret_from_stdin()?),
        Some(s) => decode_base32(s),
        None => {
            let mut bytes = Zeroizing::new(vec![0u8; 20]);
            random(&mut bytes)?;
            Key::new(bytes)
        }
    }
    .map_err(|e| Error::failed(format!("--secret: {e}")))?;
    if key.bytes().len() < 16 {
        term::note(&format!(
            "the secret has {} bits; 160 are recommended (RFC 4226 section 4)",
            key.bytes().len() * 8
        ));
    }
    let host = sys::hostname();
    let user_name = String::from_utf8_lossy(&who.user.name).into_owned();
    let b32 = encode_base32(key.bytes());
    let uri = otpauth_uri(
        &UriParams {
            hotp: matches!(p.kind, Kind::Hotp { .. }),
            issuer: a
                .value("issuer")
                .map_or_else(|| host.clone(), str::to_string),
            label: a
                .value("label")
                .map_or_else(|| format!("{user_name}@{host}"), str::to_string),
            algorithm: p.algorithm,
            digits: p.digits,
            period: match p.kind {
                Kind::Totp { period } => period,
                Kind::Hotp { .. } => 30,
            },
            counter: match p.kind {
                Kind::Hotp { counter } => counter,
                Kind::Totp { .. } => 0,
            },
        },
        &b32,
    );
    show_secret(&uri, &b32, to_tty)?;
    drop(uri);
    drop(b32);

    let mac = Mac::new(p.algorithm, &key);
    let mut confirmed_step = None;
    if confirming {
        let at = confirm(&mac, &p)?;
        match p.kind {
            // The confirmation code is used up: the first login needs the next one.
            Kind::Hotp { .. } => {
                p.kind = Kind::Hotp {
                    counter: at.saturating_add(1),
                }
            }
            Kind::Totp { .. } => confirmed_step = Some(at),
        }
    }
    let (shown, hashes) = scratch_codes(scratch_n)?;
    let secret = Secret {
        id: new_id()?,
        kind: p.kind,
        key,
        algorithm: p.algorithm,
        digits: p.digits,
        window: p.window,
        scratch: hashes,
    };
    if sys::interrupted() {
        return Err(Error::Interrupted);
    }
    target::write(&who, &loc, &dir, secret.to_toml().as_bytes(), force)?;
    drop(dir);
    if let Some(step) = confirmed_step {
        mark_used(&opts, &who, &secret.id, step);
    }
    term::say(&format!(
        "Wrote {} ({}, owner {}, mode 0600).",
        loc.display_path().display(),
        target::layout_name(&loc),
        if matches!(loc, crate::store::SecretLocation::Home { .. }) || who.euid != 0 {
            user_name.clone()
        } else {
            "root".into()
        }
    ))?;
    if !shown.is_empty() {
        term::say("Scratch codes (each works once, shown only now; keep them somewhere safe):")?;
        for c in &shown {
            term::say(&format!("  {}", c.as_str()))?;
        }
    }
    target::mismatch_note(&who, &opts, &loc);
    Ok(())
}
