//! `pam-totp try`: the no-root demonstration. A private directory holds a PAM service file
//! naming the module by absolute path, a fresh secret, a config and the module's state; a
//! real `pam_authenticate` runs through libpam (`pam_start_confdir`), the module asks for the
//! code on this terminal, and the directory is removed at the end (also after Ctrl-C).
//!
//! Where the directory goes: the module checks every directory on the way to its secret and
//! state from `/` (owned by root or the caller, not group/other-writable), so `/tmp` (mode
//! 1777) cannot hold them. The first of `$XDG_RUNTIME_DIR` (usually `/run/user/<uid>`, 0700)
//! and the caller's home directory that passes the same check is used.

use rustix::fs::{fchmod, mkdirat, openat, statat, unlinkat, AtFlags, FileType, Mode, OFlags};
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

use super::args::{self, Spec};
use super::enroll::{random, show_secret};
use super::target::{self, Who};
use super::{term, Command, Error};
use crate::otp::{encode_base32, otpauth_uri, Algorithm, UriParams};
use crate::pam::client::{self, Responder, Session, Style};
use crate::pam::codes::code_name;
use crate::pam::ffi;
use crate::store::{open_central_dir, SecretLocation, TargetDir};
use crate::sys;

pub(crate) const COMMAND: Command = Command {
    name: "try",
    summary: "a real PAM login in a private sandbox, no root needed",
    help: HELP,
    run,
};

const HELP: &str = "\
Usage: pam-totp try [--module PATH]
A demonstration that needs no root: a private PAM configuration in a new directory (under
$XDG_RUNTIME_DIR or your home directory), a fresh secret shown as a QR code, then a real
login through libpam and the module, which asks for the code. The directory is removed
at the end; nothing else is touched.

Options:
  --module PATH    the module to load (default: the installed pam_totp.so, else
                   libpam_totp.so next to this program)
  -h, --help       show this help
";

const SPEC: &[Spec] = &[("module", true)];

const SERVICE: &str = "pam-totp-try";
const ATTEMPTS: usize = 3;

/// Characters a path may not contain to be written into a pam.d line and a `secret=`
/// template unquoted.
fn plain_path(p: &Path) -> bool {
    p.to_str().is_some_and(|s| {
        s.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'[' | b']' | b'%' | b'\\' | b'#'))
    })
}

fn find_module(flag: Option<&str>) -> Result<PathBuf, Error> {
    let candidates: Vec<PathBuf> = match flag {
        Some(p) => vec![target::absolute(p)?],
        None => {
            let mut v = vec![
                PathBuf::from(format!(
                    "/usr/lib/{}-linux-gnu/security/pam_totp.so",
                    std::env::consts::ARCH
                )),
                PathBuf::from("/usr/lib64/security/pam_totp.so"),
                PathBuf::from("/usr/lib/security/pam_totp.so"),
            ];
            if let Some(dir) = std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(Path::to_path_buf))
            {
                v.push(dir.join("libpam_totp.so"));
            }
            v
        }
    };
    for c in &candidates {
        if std::fs::metadata(c).is_ok_and(|m| m.is_file()) {
            if !plain_path(c) {
                return Err(Error::failed(format!(
                    "{}: a module path with spaces or special characters cannot go into a pam.d line",
                    c.display()
                )));
            }
            return Ok(c.clone());
        }
    }
    let looked: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
    Err(Error::failed(format!(
        "no PAM module found at {}: build it (make try) or pass --module PATH",
        looked.join(", ")
    )))
}

/// The private directory; removed, with everything in it, on drop.
struct Sandbox {
    base: OwnedFd,
    name: OsString,
    dir: OwnedFd,
    path: PathBuf,
}

impl Sandbox {
    fn create(who: &Who) -> Result<Sandbox, Error> {
        let owners: Vec<u32> = if who.euid == 0 {
            vec![0]
        } else {
            vec![0, who.euid]
        };
        let mut bases = Vec::new();
        // A convenience for the caller's own session; verified like any other candidate.
        if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
            if x.is_absolute() {
                bases.push(x);
            }
        }
        bases.push(who.user.dir.clone());
        let mut why = Vec::new();
        for base in bases {
            if !plain_path(&base) {
                why.push(format!(
                    "{}: has spaces or special characters",
                    base.display()
                ));
                continue;
            }
            let fd = match open_central_dir(&base, &owners) {
                Ok(fd) => fd,
                Err(e) => {
                    why.push(e.to_string());
                    continue;
                }
            };
            let mut r = [0u8; 6];
            random(&mut r)?;
            let name = OsString::from(format!(
                ".pam-totp-try.{}",
                r.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ));
            let path = base.join(&name);
            if let Err(e) = mkdirat(&fd, &name, Mode::from_raw_mode(0o700)) {
                why.push(format!("{}: {e}", path.display()));
                continue;
            }
            let dir = openat(
                &fd,
                &name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Error::failed(format!("{}: {e}", path.display())))?;
            let sandbox = Sandbox {
                base: fd,
                name,
                dir,
                path,
            };
            fchmod(&sandbox.dir, Mode::from_raw_mode(0o700))
                .map_err(|e| Error::failed(format!("{}: {e}", sandbox.path.display())))?;
            return Ok(sandbox);
        }
        Err(Error::failed(format!(
            "no private place for the sandbox: {}",
            why.join("; ")
        )))
    }

    fn write(&self, who: &Who, rel: &str, text: &[u8]) -> Result<(), Error> {
        let loc = SecretLocation::Central(self.path.join(rel));
        let t =
            TargetDir::open(&loc, &who.user, who.euid).map_err(|e| Error::failed(e.to_string()))?;
        t.write(text, false)
            .map_err(|e| Error::failed(e.to_string()))
    }
}

/// Removes everything below `dir` through fds (no path-based calls), at most `depth` levels.
fn remove_tree(dir: &OwnedFd, depth: u32) {
    let Ok(mut entries) = rustix::fs::Dir::read_from(dir) else {
        return;
    };
    let mut names = Vec::new();
    while let Some(Ok(e)) = entries.read() {
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(std::ffi::OsStr::from_bytes(n).to_os_string());
        }
    }
    for name in names {
        let is_dir = statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory);
        if is_dir {
            if depth > 0 {
                if let Ok(sub) = openat(
                    dir,
                    &name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    remove_tree(&sub, depth - 1);
                }
            }
            let _ = unlinkat(dir, &name, AtFlags::REMOVEDIR);
        } else {
            let _ = unlinkat(dir, &name, AtFlags::empty());
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        remove_tree(&self.dir, 4);
        let _ = unlinkat(&self.base, &self.name, AtFlags::REMOVEDIR);
        let _ = term::say(&format!("Removed the sandbox {}.", self.path.display()));
    }
}

/// Answers the module's prompts on this terminal.
struct Tty {
    error: Option<Error>,
}

impl Responder for Tty {
    fn respond(&mut self, style: Style, message: &str) -> Option<Zeroizing<Vec<u8>>> {
        let result = match style {
            Style::PromptHidden => term::read_line(message, false).map(Some),
            Style::PromptShown => term::read_line(message, true).map(Some),
            Style::Error | Style::Info => term::say(message).map(|()| None),
        };
        match result {
            Ok(answer) => answer,
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }
}

/// What a PAM code means for the login, in words.
fn meaning(code: i32) -> &'static str {
    match code {
        ffi::PAM_SUCCESS => "the login would succeed",
        ffi::PAM_AUTH_ERR => "the login would be refused (wrong, malformed or already used code)",
        ffi::PAM_MAXTRIES => {
            "the login would be refused: too many wrong codes, the rate limit is in force"
        }
        ffi::PAM_AUTHINFO_UNAVAIL => {
            "the module could not read or save its files; the login would be refused"
        }
        ffi::PAM_CONV_ERR => "no answer came; the login would be refused",
        ffi::PAM_SERVICE_ERR => "the module's arguments or configuration are wrong",
        ffi::PAM_IGNORE => "the module did not take part",
        _ => "the login would be refused",
    }
}

fn demo(who: &Who, sandbox: &Sandbox, module: &Path) -> Result<(), Error> {
    let dir = &sandbox.path;
    let mut key = Zeroizing::new(vec![0u8; 20]);
    random(&mut key)?;
    let b32 = encode_base32(&key);
    let secret = crate::store::Secret {
        id: super::enroll::new_id()?,
        kind: crate::store::Kind::Totp { period: 30 },
        key: crate::otp::Key::new(key).map_err(|e| Error::failed(e.to_string()))?,
        algorithm: Algorithm::Sha1,
        digits: 6,
        window: Some(1),
        scratch: Vec::new(),
    };
    sandbox.write(who, "secret", secret.to_toml().as_bytes())?;
    sandbox.write(
        who,
        "pam_totp.conf",
        b"# pam-totp try\nfail_delay_ms = 1000\n",
    )?;
    let line = format!(
        "auth required {} secret={d}/secret state_dir={d}/state config={d}/pam_totp.conf\n",
        module.display(),
        d = dir.display()
    );
    sandbox.write(who, &format!("pam.d/{SERVICE}"), line.as_bytes())?;
    sandbox.write(who, "pam.d/other", b"auth required pam_deny.so\n")?;
    let name = String::from_utf8_lossy(&who.user.name).into_owned();
    let uri = otpauth_uri(
        &UriParams {
            hotp: false,
            issuer: "pam-totp try".into(),
            label: format!("{name}@{}", sys::hostname()),
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
            counter: 0,
        },
        &b32,
    );
    show_secret(&uri, &b32, true)?;
    term::say(&format!(
        "\nSandbox {} holds the secret, the state and pam.d/{SERVICE}:\n  {}",
        dir.display(),
        line.trim_end()
    ))?;
    term::say("Now a real login through libpam; the module asks for the code.\n")?;
    let session = Session {
        service: SERVICE.into(),
        user: who.user.name.clone(),
        confdir: Some(dir.join("pam.d")),
        flags: 0,
        rhost: None,
        skip_fail_delay: false,
    };
    let mut any_success = false;
    let mut last = ffi::PAM_AUTH_ERR;
    for attempt in 1..=ATTEMPTS {
        let mut tty = Tty { error: None };
        let r = client::authenticate(&session, &mut tty)
            .map_err(|e| Error::failed(format!("libpam: {e}")))?;
        if sys::interrupted() || matches!(tty.error, Some(Error::Interrupted)) {
            term::say("")?;
            return Err(Error::Interrupted);
        }
        last = r.code;
        term::say(&format!("{}: {}", code_name(r.code), meaning(r.code)))?;
        if let Some(e) = tty.error {
            return Err(e);
        }
        any_success |= r.code == ffi::PAM_SUCCESS;
        if attempt == ATTEMPTS {
            break;
        }
        let question = if r.code == ffi::PAM_SUCCESS {
            "\nLog in again with the same code, to see it refused as a replay? [y/N] "
        } else {
            "\nTry again? [y/N] "
        };
        let again = term::read_line(question, true)?;
        if !matches!(again.as_slice(), b"y" | b"Y" | b"yes") {
            break;
        }
    }
    if any_success {
        Ok(())
    } else {
        Err(Error::failed(format!(
            "no login succeeded (last result {})",
            code_name(last)
        )))
    }
}

fn run(argv: &[String]) -> Result<(), Error> {
    let a = args::parse(argv, SPEC, 0)?;
    if !(term::stdin_is_tty() && term::stdout_is_tty()) {
        return Err(Error::failed(
            "try is interactive: run it on a terminal (standard input and output)",
        ));
    }
    let module = find_module(a.value("module"))?;
    let who = target::who(None, "try")?;
    sys::catch_interrupts()
        .map_err(|e| Error::failed(format!("cannot set up signal handling: {e}")))?;
    let sandbox = Sandbox::create(&who)?;
    let result = demo(&who, &sandbox, &module);
    drop(sandbox);
    result
}
