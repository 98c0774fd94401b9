//! Whose secret, and where: the invoking user from the real uid (never `$USER` or `$HOME`),
//! `--user` for root, and the secret location the module will read.

use std::path::{Component, Path, PathBuf};

use super::Error;
use crate::config::{self, Options, DEFAULT_CENTRAL_SECRET, DEFAULT_SECRET};
use crate::store::{SecretLocation, TargetDir, WriteError};
use crate::sys::{self, LookupError, Passwd};

/// The user a command acts on.
#[derive(Debug)]
pub(crate) struct Who {
    /// From the password database.
    pub user: Passwd,
    /// This process's effective uid.
    pub euid: u32,
    /// `--user` named someone other than the caller.
    pub other: bool,
}

impl Who {
    /// `name (uid N)` for messages.
    pub fn display(&self) -> String {
        format!(
            "{} (uid {})",
            String::from_utf8_lossy(&self.user.name),
            self.user.uid
        )
    }
}

/// The calling user, or `--user NAME`, which needs root for anyone but the caller.
pub(crate) fn who(user_flag: Option<&str>, command: &str) -> Result<Who, Error> {
    let euid = sys::geteuid();
    let uid = sys::getuid();
    let me = sys::getpwuid(uid).map_err(|e| match e {
        LookupError::NotFound => {
            Error::failed(format!("uid {uid} is not in the password database"))
        }
        LookupError::Failed(errno) => Error::failed(format!(
            "cannot look up uid {uid}: {}",
            std::io::Error::from_raw_os_error(errno)
        )),
    })?;
    let Some(name) = user_flag else {
        return finish(me, euid, false);
    };
    if !sys::valid_user_name(name.as_bytes()) {
        return Err(Error::usage(format!(
            "--user {name:?}: not a valid user name"
        )));
    }
    let user = sys::getpwnam(name.as_bytes()).map_err(|e| match e {
        LookupError::NotFound => Error::failed(format!("no user named \"{name}\"")),
        LookupError::Failed(errno) => Error::failed(format!(
            "cannot look up user \"{name}\": {}",
            std::io::Error::from_raw_os_error(errno)
        )),
    })?;
    let other = user.uid != me.uid;
    if other && euid != 0 {
        return Err(Error::failed(format!(
            "--user {name} needs root (try: sudo pam-totp {command} --user {name})"
        )));
    }
    finish(user, euid, other)
}

fn finish(user: Passwd, euid: u32, other: bool) -> Result<Who, Error> {
    if !user.dir.is_absolute() {
        return Err(Error::failed(format!(
            "the home directory of {} in the password database is not absolute",
            String::from_utf8_lossy(&user.name)
        )));
    }
    Ok(Who { user, euid, other })
}

/// `pam_totp.conf` (or `--config FILE`) as the CLI sees it.
pub(crate) fn options(config_flag: Option<&str>) -> Result<Options, Error> {
    let path = config_flag.map(absolute).transpose()?;
    config::load_for_cli(path.as_deref()).map_err(|e| Error::failed(e.to_string()))
}

/// `path` made absolute against the current directory; `..` is refused.
pub(crate) fn absolute(path: &str) -> Result<PathBuf, Error> {
    let p = Path::new(path);
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(Error::usage(format!(
            "{path}: '..' is not allowed in paths"
        )));
    }
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    let cwd = std::env::current_dir()
        .map_err(|e| Error::failed(format!("cannot find the current directory: {e}")))?;
    Ok(cwd.join(p))
}

fn resolve(template: &str, user: &Passwd) -> Result<SecretLocation, Error> {
    SecretLocation::resolve(template, user)
        .map_err(|m| Error::failed(format!("pam_totp.conf: {m}")))
}

fn is_home_template(t: &str) -> bool {
    t.starts_with("~/") || t.starts_with("%h/")
}

/// Where the module looks for the user's secret (the configured `secret` template).
pub(crate) fn module_location(who: &Who, opts: &Options) -> Result<SecretLocation, Error> {
    resolve(&opts.secret, &who.user)
}

/// Where `enroll` or `import` writes: `--output PATH` exactly (home rules inside the
/// user's home, central rules elsewhere); `--home`: the home layout; root for another user:
/// the central layout (the configured template if it is central); else the configured one.
pub(crate) fn write_location(
    who: &Who,
    opts: &Options,
    home: bool,
    output: Option<&str>,
) -> Result<SecretLocation, Error> {
    if let Some(out) = output {
        let path = absolute(out)?;
        if path.file_name().is_none() {
            return Err(Error::usage(format!("--output {out}: not a file path")));
        }
        let dir = &who.user.dir;
        if dir != Path::new("/") {
            if let Ok(rel) = path.strip_prefix(dir) {
                if !rel.as_os_str().is_empty() {
                    return Ok(SecretLocation::Home {
                        home: dir.clone(),
                        rel: rel.to_path_buf(),
                    });
                }
            }
        }
        return Ok(SecretLocation::Central(path));
    }
    if home {
        let t = if is_home_template(&opts.secret) {
            opts.secret.as_str()
        } else {
            DEFAULT_SECRET
        };
        return resolve(t, &who.user);
    }
    if who.other && is_home_template(&opts.secret) {
        return resolve(DEFAULT_CENTRAL_SECRET, &who.user);
    }
    resolve(&opts.secret, &who.user)
}

/// A note when the file written is not where the module will look.
pub(crate) fn mismatch_note(who: &Who, opts: &Options, written: &SecretLocation) {
    if let Ok(module) = module_location(who, opts) {
        if &module != written {
            super::term::note(&format!(
                "the module looks for {} (secret = \"{}\" in {}); point secret= at {} for this file to be used",
                module.display_path().display(),
                opts.secret,
                opts.config.display(),
                written.display_path().display()
            ));
        }
    }
}

/// Opens the directory of the file to write and refuses an existing file without `force`,
/// before anything secret is shown.
pub(crate) fn open_target(
    who: &Who,
    loc: &SecretLocation,
    force: bool,
) -> Result<TargetDir, Error> {
    let t = TargetDir::open(loc, &who.user, who.euid)
        .map_err(|e| store_error(who, loc, &e.to_string()))?;
    match t.exists() {
        Ok(true) if !force => Err(exists_error(t.path())),
        Ok(_) => Ok(t),
        Err(e) => Err(store_error(who, loc, &e.to_string())),
    }
}

fn exists_error(path: &Path) -> Error {
    Error::failed(format!(
        "{} already exists; pass --force to replace it (the old secret then stops working)",
        path.display()
    ))
}

fn store_error(who: &Who, loc: &SecretLocation, msg: &str) -> Error {
    if who.euid != 0
        && matches!(loc, SecretLocation::Central(_))
        && msg.contains("permission denied")
    {
        return Error::failed(format!(
            "{msg} (the central layout belongs to root: sudo pam-totp enroll --user {})",
            String::from_utf8_lossy(&who.user.name)
        ));
    }
    Error::failed(msg.to_string())
}

/// Writes the secret file; maps the writer's errors to one line.
pub(crate) fn write(
    who: &Who,
    loc: &SecretLocation,
    t: &TargetDir,
    text: &[u8],
    force: bool,
) -> Result<(), Error> {
    t.write(text, force).map_err(|e| match e {
        WriteError::Exists(p) => exists_error(&p),
        WriteError::Store(e) => store_error(who, loc, &e.to_string()),
    })
}

/// `home layout` or `central layout`.
pub(crate) fn layout_name(loc: &SecretLocation) -> &'static str {
    match loc {
        SecretLocation::Home { .. } => "home layout",
        SecretLocation::Central(_) => "central layout",
    }
}
