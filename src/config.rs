//! Module arguments and `/etc/security/pam_totp.conf` → [`Options`]. Module arguments
//! override the file; an unknown or malformed argument or key is an error (fail closed).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::otp::limit::{Limits, MAX_TRACKED_FAILURES};
use crate::store::{self, FileRules};

/// Default secret location (home layout).
pub const DEFAULT_SECRET: &str = "~/.pam_totp";
/// Default central secret location (`pam-totp enroll --user` as root).
pub const DEFAULT_CENTRAL_SECRET: &str = "/var/lib/pam-totp/secrets/%U";
/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/pam-totp/state";
/// Default system configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/security/pam_totp.conf";
/// Default prompt.
pub const DEFAULT_PROMPT: &str = "Verification code: ";
/// Prompt with `forward_pass`.
pub const FORWARD_PASS_PROMPT: &str = "Password & verification code: ";

/// Where the code comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FirstPass {
    /// Always prompt.
    #[default]
    Prompt,
    /// Use `PAM_AUTHTOK` when it holds a code, else prompt.
    Try,
    /// Use `PAM_AUTHTOK`; never prompt.
    Use,
}

/// Everything the flow needs to know from the admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `secret=` template.
    pub secret: String,
    /// `state_dir=`.
    pub state_dir: PathBuf,
    /// `config=`.
    pub config: PathBuf,
    /// `nullok`.
    pub nullok: bool,
    /// `window=`, overriding the secret file.
    pub window: Option<u32>,
    /// `prompt=`.
    pub prompt: String,
    /// `echo`.
    pub echo: bool,
    /// `try_first_pass` / `use_first_pass`.
    pub first_pass: FirstPass,
    /// `forward_pass`.
    pub forward_pass: bool,
    /// `debug`.
    pub debug: bool,
    /// Delay requested from libpam on failure, in milliseconds.
    pub fail_delay_ms: u32,
    /// Rate limits.
    pub limits: Limits,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            secret: DEFAULT_SECRET.into(),
            state_dir: DEFAULT_STATE_DIR.into(),
            config: DEFAULT_CONFIG.into(),
            nullok: false,
            window: None,
            prompt: DEFAULT_PROMPT.into(),
            echo: false,
            first_pass: FirstPass::Prompt,
            forward_pass: false,
            debug: false,
            fail_delay_ms: 2000,
            limits: Limits::default(),
        }
    }
}

/// A configuration problem, named so an admin can fix it from the log line alone.
#[derive(Debug)]
pub enum Error {
    /// A module argument we do not know.
    UnknownArgument(String),
    /// A known argument or key with a bad value.
    BadValue {
        /// The argument or key.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The config file could not be read safely or parsed.
    File(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownArgument(a) => write!(f, "unknown module argument \"{a}\""),
            Error::BadValue { name, reason } => write!(f, "bad value for {name}: {reason}"),
            Error::File(m) => write!(f, "config file: {m}"),
        }
    }
}

impl std::error::Error for Error {}

fn bad(name: &str, reason: impl Into<String>) -> Error {
    Error::BadValue {
        name: name.into(),
        reason: reason.into(),
    }
}

fn check_window(name: &str, w: u32) -> Result<u32, Error> {
    if w <= 20 {
        Ok(w)
    } else {
        Err(bad(name, "expected 0-3 (totp) or 1-20 (hotp)"))
    }
}

fn check_limit(name: &str, v: u32) -> Result<u32, Error> {
    if (1..=MAX_TRACKED_FAILURES as u32).contains(&v) {
        Ok(v)
    } else {
        Err(bad(name, format!("expected 1-{MAX_TRACKED_FAILURES}")))
    }
}

/// Which settings the module arguments gave explicitly (they beat the config file).
#[derive(Debug, Default)]
struct Explicit {
    secret: bool,
    state_dir: bool,
    window: bool,
    prompt: bool,
}

/// Parses module arguments (bytes from libpam) into options, without reading any file.
fn parse_args(args: &[&[u8]]) -> Result<(Options, Explicit), Error> {
    let mut o = Options::default();
    let mut ex = Explicit::default();
    for raw in args {
        let arg = std::str::from_utf8(raw)
            .map_err(|_| Error::UnknownArgument(String::from_utf8_lossy(raw).into_owned()))?;
        let (key, value) = match arg.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (arg, None),
        };
        match (key, value) {
            ("secret", Some(v)) if !v.is_empty() => {
                o.secret = v.into();
                ex.secret = true;
            }
            ("state_dir", Some(v)) if v.starts_with('/') => {
                o.state_dir = v.into();
                ex.state_dir = true;
            }
            ("state_dir", Some(_)) => return Err(bad("state_dir", "must be an absolute path")),
            ("config", Some(v)) if v.starts_with('/') => o.config = v.into(),
            ("config", Some(_)) => return Err(bad("config", "must be an absolute path")),
            ("window", Some(v)) => {
                let w = v.parse().map_err(|_| bad("window", "not a number"))?;
                o.window = Some(check_window("window", w)?);
                ex.window = true;
            }
            ("prompt", Some(v)) => {
                o.prompt = v.into();
                ex.prompt = true;
            }
            ("nullok", None) => o.nullok = true,
            ("echo", None) => o.echo = true,
            ("try_first_pass", None) => o.first_pass = FirstPass::Try,
            ("use_first_pass", None) => o.first_pass = FirstPass::Use,
            ("forward_pass", None) => o.forward_pass = true,
            ("debug", None) => o.debug = true,
            ("secret" | "state_dir" | "config" | "window" | "prompt", _) => {
                return Err(bad(key, "needs a value (name=value)"))
            }
            (
                "nullok" | "echo" | "try_first_pass" | "use_first_pass" | "forward_pass" | "debug",
                Some(_),
            ) => return Err(bad(key, "takes no value")),
            _ => return Err(Error::UnknownArgument(arg.into())),
        }
    }
    if o.forward_pass && o.first_pass != FirstPass::Prompt {
        return Err(bad(
            "forward_pass",
            "cannot be combined with try_first_pass or use_first_pass",
        ));
    }
    Ok((o, ex))
}

/// The keys of `pam_totp.conf` (SPEC §1; all optional).
#[derive(Debug, Default)]
pub struct ConfigFile {
    /// Secret location template.
    pub secret: Option<String>,
    /// State directory.
    pub state_dir: Option<String>,
    /// TOTP steps either side, or HOTP look-ahead.
    pub window: Option<u32>,
    /// Prompt text.
    pub prompt: Option<String>,
    /// Failure delay in milliseconds.
    pub fail_delay_ms: Option<u32>,
    /// Failures per `failure_interval`.
    pub max_failures: Option<u32>,
    /// Sliding interval in seconds.
    pub failure_interval: Option<u64>,
    /// Failures per 24 h.
    pub max_daily_failures: Option<u32>,
}

impl ConfigFile {
    /// Parses the text of a config file strictly; errors give a line, never content.
    pub fn parse(bytes: &[u8]) -> Result<ConfigFile, Error> {
        use crate::store::kv::{self, Value};
        if bytes.contains(&0) {
            return Err(Error::File("NUL byte".into()));
        }
        let entries = kv::parse(bytes).map_err(|e| Error::File(e.to_string()))?;
        let mut f = ConfigFile::default();
        for e in entries {
            let line = e.line;
            let small = |n: u64| {
                u32::try_from(n)
                    .map_err(|_| Error::File(format!("line {line}: {} is too large", e.key)))
            };
            match (e.key.as_str(), e.value) {
                ("secret", Value::Str(v)) => f.secret = Some(v.to_string()),
                ("state_dir", Value::Str(v)) => f.state_dir = Some(v.to_string()),
                ("prompt", Value::Str(v)) => f.prompt = Some(v.to_string()),
                ("window", Value::Int(n)) => f.window = Some(small(n)?),
                ("fail_delay_ms", Value::Int(n)) => f.fail_delay_ms = Some(small(n)?),
                ("max_failures", Value::Int(n)) => f.max_failures = Some(small(n)?),
                ("failure_interval", Value::Int(n)) => f.failure_interval = Some(n),
                ("max_daily_failures", Value::Int(n)) => f.max_daily_failures = Some(small(n)?),
                (
                    "secret" | "state_dir" | "prompt" | "window" | "fail_delay_ms" | "max_failures"
                    | "failure_interval" | "max_daily_failures",
                    _,
                ) => {
                    return Err(Error::File(format!(
                        "line {line}: {} has the wrong type",
                        e.key
                    )))
                }
                (k, _) => return Err(Error::File(format!("line {line}: unknown key {k:?}"))),
            }
        }
        Ok(f)
    }
}

/// Reads the config file with the central rules (root-owned directories; the file
/// root-owned, not group/other-writable). A missing file or directory is fine.
pub fn read_config_file(path: &Path) -> Result<ConfigFile, Error> {
    let euid = crate::sys::geteuid();
    let owners: &[u32] = if euid == 0 { &[0] } else { &[0, euid] };
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(Error::File(format!("{}: not a file path", path.display())));
    };
    let dir = match store::open_central_dir(parent, owners) {
        Ok(d) => d,
        Err(store::Error::Missing(_)) => return Ok(ConfigFile::default()),
        Err(e) => return Err(Error::File(e.to_string())),
    };
    let owner = if owners.len() == 1 { 0 } else { euid };
    let rules = FileRules {
        owner,
        forbidden_mode: 0o022,
    };
    match store::read_file_at(&dir, name, path, rules) {
        Ok(opened) => ConfigFile::parse(&opened.bytes)
            .map_err(|e| Error::File(format!("{}: {e}", path.display()))),
        // A root-owned config may also be accepted when we are not root (tests).
        Err(store::Error::Unsafe { .. }) if owners.len() == 2 => {
            let opened = store::read_file_at(
                &dir,
                name,
                path,
                FileRules {
                    owner: 0,
                    forbidden_mode: 0o022,
                },
            )
            .map_err(|e| Error::File(e.to_string()))?;
            ConfigFile::parse(&opened.bytes)
                .map_err(|e| Error::File(format!("{}: {e}", path.display())))
        }
        Err(store::Error::NotFound(_)) => Ok(ConfigFile::default()),
        Err(e) => Err(Error::File(e.to_string())),
    }
}

/// Applies a config file under the module arguments.
fn apply(o: &mut Options, ex: &Explicit, f: ConfigFile) -> Result<(), Error> {
    if let (Some(v), false) = (f.secret, ex.secret) {
        o.secret = v;
    }
    if let (Some(v), false) = (f.state_dir, ex.state_dir) {
        if !v.starts_with('/') {
            return Err(bad("state_dir", "must be an absolute path"));
        }
        o.state_dir = v.into();
    }
    if let (Some(v), false) = (f.window, ex.window) {
        o.window = Some(check_window("window", v)?);
    }
    if let (Some(v), false) = (f.prompt, ex.prompt) {
        o.prompt = v;
    }
    if let Some(v) = f.fail_delay_ms {
        if v > 10_000 {
            return Err(bad("fail_delay_ms", "expected 0-10000"));
        }
        o.fail_delay_ms = v;
    }
    if let Some(v) = f.max_failures {
        o.limits.max_failures = check_limit("max_failures", v)?;
    }
    if let Some(v) = f.failure_interval {
        if !(1..=86_400).contains(&v) {
            return Err(bad("failure_interval", "expected 1-86400 seconds"));
        }
        o.limits.interval = v;
    }
    if let Some(v) = f.max_daily_failures {
        o.limits.max_daily = check_limit("max_daily_failures", v)?;
    }
    Ok(())
}

/// Module arguments, then the config file they name, into options.
pub fn load(args: &[&[u8]]) -> Result<Options, Error> {
    let (mut o, ex) = parse_args(args)?;
    let file = read_config_file(&o.config)?;
    apply(&mut o, &ex, file)?;
    Ok(o)
}

/// The CLI's view: the config file (or `--config`) with no module arguments.
pub fn load_for_cli(config: Option<&Path>) -> Result<Options, Error> {
    let mut o = Options::default();
    if let Some(c) = config {
        o.config = c.to_path_buf();
    }
    let file = read_config_file(&o.config)?;
    apply(&mut o, &Explicit::default(), file)?;
    Ok(o)
}

/// Parses arguments alone (for `doctor` and tests).
pub fn check_args(args: &[&[u8]]) -> Result<Options, Error> {
    parse_args(args).map(|(o, _)| o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<Options, Error> {
        let v: Vec<&[u8]> = a.iter().map(|s| s.as_bytes()).collect();
        check_args(&v)
    }

    #[test]
    fn every_documented_argument_is_accepted() {
        let o = args(&[
            "secret=/var/lib/pam-totp/secrets/%U",
            "state_dir=/tmp/s",
            "config=/etc/x.conf",
            "nullok",
            "window=2",
            "prompt=Code please: ",
            "echo",
            "try_first_pass",
            "debug",
        ])
        .unwrap();
        assert_eq!(o.secret, "/var/lib/pam-totp/secrets/%U");
        assert_eq!(o.state_dir, PathBuf::from("/tmp/s"));
        assert!(o.nullok && o.echo && o.debug);
        assert_eq!(o.window, Some(2));
        assert_eq!(o.prompt, "Code please: ");
        assert_eq!(o.first_pass, FirstPass::Try);
        assert!(args(&["forward_pass"]).unwrap().forward_pass);
        assert_eq!(
            args(&["use_first_pass"]).unwrap().first_pass,
            FirstPass::Use
        );
    }

    #[test]
    fn unknown_misspelled_or_malformed_arguments_are_errors() {
        for a in [
            "nulok",
            "window=abc",
            "window=21",
            "window",
            "nullok=1",
            "state_dir=relative",
            "secret=",
            "\u{e9}",
        ] {
            assert!(args(&[a]).is_err(), "{a}");
        }
        assert!(args(&["forward_pass", "use_first_pass"]).is_err());
        assert!(matches!(args(&["nulok"]), Err(Error::UnknownArgument(a)) if a == "nulok"));
    }

    #[test]
    fn arguments_override_the_config_file() {
        let (mut o, ex) = parse_args(&[b"window=2"]).unwrap();
        let f = ConfigFile::parse(b"window = 3\nmax_failures = 7\nstate_dir = \"/x\"\n").unwrap();
        apply(&mut o, &ex, f).unwrap();
        assert_eq!(o.window, Some(2));
        assert_eq!(o.limits.max_failures, 7);
        assert_eq!(o.state_dir, PathBuf::from("/x"));
    }

    #[test]
    fn config_files_with_unknown_keys_or_bad_values_are_errors() {
        assert!(ConfigFile::parse(b"colour = 1\n").is_err());
        assert!(ConfigFile::parse(b"window = \"x\"\n").is_err());
        let (mut o, ex) = parse_args(&[]).unwrap();
        let f = ConfigFile::parse(b"max_daily_failures = 1000\n").unwrap();
        assert!(apply(&mut o, &ex, f).is_err());
    }
}
