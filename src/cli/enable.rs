//! `pam-totp enable` / `disable`: the sshd and sudo set-up an admin would otherwise edit by
//! hand, after backing up every file touched, refused when `doctor` finds a blocker, and
//! rolled back by itself unless confirmed from a fresh login (`pam-totp enable --confirm`).
//!
//! The rollback runs in a detached process (`enable --rollback-job DIR`) that sleeps until
//! the deadline, then restores every file byte for byte unless `DIR/confirmed` appeared. A
//! lock on `DIR/lock` orders it against `--confirm`. Non-feature: the job does not survive a
//! reboot; a change left unconfirmed across one stays, and `enable --confirm` accepts it.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::args::{self, Spec};
use super::doctor::{self, Context, Level};
use super::pamconf::{self, DiskFiles, Entry, Root};
use super::{term, Command, Error};
use crate::config::{self, DEFAULT_CENTRAL_SECRET};
use crate::store;
use crate::sys::{self, Passwd};

pub(crate) const COMMAND: Command = Command {
    name: "enable",
    summary: "as root: set up sshd or sudo to ask for the code (rolled back unless confirmed)",
    help: "Usage: pam-totp enable sshd --key-and-code|--password-and-code [--nullok]\n\
       pam-totp enable sudo [--nullok]\n\
       pam-totp enable --confirm\n\
\n\
As root, makes the change an admin would otherwise edit by hand, after backing up\n\
every file it touches in /var/lib/pam-totp/backup/:\n\
  sshd --key-and-code       public key, then the code: /etc/ssh/sshd_config.d/10-pam-totp.conf\n\
                            (UsePAM yes, KbdInteractiveAuthentication yes,\n\
                            AuthenticationMethods publickey,keyboard-interactive); in\n\
                            /etc/pam.d/sshd the password (@include common-auth) is\n\
                            commented out and pam_totp put in its place\n\
  sshd --password-and-code  password, then the code: the same drop-in without\n\
                            AuthenticationMethods (a key alone still logs in); pam_totp\n\
                            after @include common-auth\n\
  sudo                      pam_totp with the central layout (secret=/var/lib/pam-totp/\n\
                            secrets/%U) after @include common-auth in /etc/pam.d/sudo\n\
  --nullok                  users without a secret are not asked for a code (roll-out)\n\
\n\
It refuses when pam-totp doctor finds an error with the change in place, e.g. when\n\
the admin (SUDO_USER, or --user NAME) has no secret yet. sshd's effective settings\n\
are checked with sshd -t and sshd -T, and sshd is reloaded.\n\
\n\
The change is rolled back by itself unless, within the timeout (5 minutes), you log\n\
in again in a NEW session and run `pam-totp enable --confirm` there.\n\
\n\
Options:\n\
  --user NAME          the admin whose secret must exist (default: SUDO_USER, else you)\n\
  --timeout SECONDS    time to confirm (default 300)\n\
  --root DIR           for tests: work on the tree below DIR instead of / (sshd is\n\
                       neither run nor reloaded)\n\
  --rollback-job DIR   internal: the background rollback\n",
    run: run_enable,
};

pub(crate) const DISABLE: Command = Command {
    name: "disable",
    summary: "as root: undo pam-totp enable for sshd or sudo",
    help: "Usage: pam-totp disable sshd|sudo\n\
\n\
As root, removes what pam-totp enable added (the lines between its markers in\n\
/etc/pam.d/SERVICE, the commented-out lines it disabled, and for sshd the drop-in\n\
/etc/ssh/sshd_config.d/10-pam-totp.conf), after a backup in /var/lib/pam-totp/backup/.\n\
A pending rollback of the same service is cancelled.\n\
\n\
Options:\n\
  --root DIR   for tests: work on the tree below DIR instead of /\n",
    run: run_disable,
};

const ENABLE_SPEC: &[Spec] = &[
    ("key-and-code", false),
    ("password-and-code", false),
    ("nullok", false),
    ("confirm", false),
    ("user", true),
    ("timeout", true),
    ("root", true),
    ("rollback-job", true),
];

const DISABLE_SPEC: &[Spec] = &[("root", true)];

/// The drop-in `enable sshd` writes; the Include at the top of Debian's sshd_config reads
/// it before the stock `KbdInteractiveAuthentication no`.
pub(crate) const DROP_IN: &str = "/etc/ssh/sshd_config.d/10-pam-totp.conf";
/// Backups and rollback jobs.
pub(crate) const BACKUP_DIR: &str = "/var/lib/pam-totp/backup";
const BEGIN: &str = "# pam-totp enable: begin (\"pam-totp disable\" removes these lines)";
const END: &str = "# pam-totp enable: end";
const DISABLED: &str = "#pam-totp-disabled# ";
const DROP_IN_HEADER: &str =
    "# Written by \"pam-totp enable sshd\"; \"pam-totp disable sshd\" removes it.";
const DEFAULT_TIMEOUT: u64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    KeyAndCode,
    PasswordAndCode,
    Sudo,
}

impl Mode {
    fn service(self) -> &'static str {
        match self {
            Mode::Sudo => "sudo",
            _ => "sshd",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Mode::KeyAndCode => "sshd: public key + code",
            Mode::PasswordAndCode => "sshd: password + code",
            Mode::Sudo => "sudo: password + code (central secrets)",
        }
    }
}

fn root_of(p: &args::Parsed) -> Root {
    match p.value("root") {
        Some(d) => Root::under(Path::new(d)),
        None => Root::system(),
    }
}

fn need_root(root: &Root, what: &str) -> Result<(), Error> {
    if !root.is_fixture() && sys::geteuid() != 0 {
        return Err(Error::failed(format!(
            "{what} needs root (try: sudo pam-totp {what})"
        )));
    }
    Ok(())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn run_enable(args: &[String]) -> Result<(), Error> {
    let p = args::parse(args, ENABLE_SPEC, 1)?;
    let root = root_of(&p);
    if let Some(dir) = p.value("rollback-job") {
        return rollback_job(&root, Path::new(dir));
    }
    if p.has("confirm") {
        if !p.positional.is_empty() || p.has("key-and-code") || p.has("password-and-code") {
            return Err(Error::usage("--confirm takes no other arguments"));
        }
        need_root(&root, "enable --confirm")?;
        return confirm(&root);
    }
    let mode = match (
        p.positional.first().map(String::as_str),
        p.has("key-and-code"),
        p.has("password-and-code"),
    ) {
        (Some("sshd"), true, false) => Mode::KeyAndCode,
        (Some("sshd"), false, true) => Mode::PasswordAndCode,
        (Some("sshd"), _, _) => {
            return Err(Error::usage(
                "enable sshd needs one of --key-and-code or --password-and-code",
            ))
        }
        (Some("sudo"), false, false) => Mode::Sudo,
        (Some("sudo"), _, _) => {
            return Err(Error::usage(
                "enable sudo takes no --key-and-code/--password-and-code",
            ))
        }
        (Some(other), _, _) => {
            return Err(Error::usage(format!(
                "cannot enable \"{other}\": sshd or sudo"
            )))
        }
        (None, _, _) => return Err(Error::usage("enable what? sshd or sudo")),
    };
    let timeout = p
        .number("timeout", 1u64..=86_400)?
        .unwrap_or(DEFAULT_TIMEOUT);
    need_root(&root, "enable")?;
    let admin = admin_user(p.value("user"))?;
    enable(&root, mode, p.has("nullok"), &admin, timeout)
}

/// The admin whose login must keep working: `--user`, else `SUDO_USER`, else the caller.
fn admin_user(flag: Option<&str>) -> Result<Passwd, Error> {
    if let Some(name) = flag {
        return doctor::lookup_user(Some(name));
    }
    if let Some(name) = std::env::var_os("SUDO_USER") {
        let name = name.to_string_lossy().into_owned();
        if sys::valid_user_name(name.as_bytes()) {
            if let Ok(u) = sys::getpwnam(name.as_bytes()) {
                return Ok(u);
            }
        }
    }
    doctor::lookup_user(None)
}

/// A file to write: its system path and new contents (`None`: remove it).
struct Change {
    path: String,
    new: Option<String>,
}

fn read_text(root: &Root, abs: &str) -> Result<Option<String>, Error> {
    match fs::read(root.path(abs)) {
        Ok(b) => String::from_utf8(b)
            .map(Some)
            .map_err(|_| Error::failed(format!("{abs}: not UTF-8 text; edit it by hand"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::failed(format!("cannot read {abs}: {e}"))),
    }
}

/// The entry a pam.d line holds (comments stripped), if any.
fn entry_of(line: &str) -> Option<Entry> {
    pamconf::parse_pam_file(Path::new("-"), line)
        .into_iter()
        .next()
        .map(|l| l.entry)
}

fn is_auth_line(line: &str) -> bool {
    match entry_of(line) {
        Some(Entry::Module { ty, .. }) | Some(Entry::Include { ty, .. }) => ty == "auth",
        Some(Entry::IncludeAll { target }) => target == "common-auth",
        _ => false,
    }
}

fn has_totp(line: &str) -> bool {
    matches!(entry_of(line), Some(Entry::Module { module, .. }) if pamconf::is_totp(&module))
}

/// The pam.d file with enable's lines added (lines kept byte for byte otherwise).
fn plan_pam(service: &str, text: &str, mode: Mode, nullok: bool) -> Result<String, Error> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    if lines
        .iter()
        .any(|l| l.starts_with(BEGIN) || l.starts_with(DISABLED))
    {
        return Err(Error::failed(format!(
            "/etc/pam.d/{service} already has lines from pam-totp enable; run pam-totp disable {service} first"
        )));
    }
    if let Some(i) = lines.iter().position(|l| has_totp(l)) {
        return Err(Error::failed(format!(
            "/etc/pam.d/{service}:{} already loads pam_totp.so; remove that line or leave the file as it is",
            i.saturating_add(1)
        )));
    }
    let null = if nullok { " nullok" } else { "" };
    let auth: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| is_auth_line(l))
        .map(|(i, _)| i)
        .collect();
    let mut out = String::with_capacity(text.len().saturating_add(512));
    match mode {
        Mode::KeyAndCode => {
            let at = auth.first().copied().unwrap_or(0);
            let after_deny = if nullok {
                "auth       required     pam_permit.so\n"
            } else {
                "auth       requisite    pam_deny.so\n"
            };
            for (i, l) in lines.iter().enumerate() {
                if i == at {
                    out.push_str(BEGIN);
                    out.push('\n');
                    out.push_str("# Key + code: sshd checked the key; the code is the only thing asked here.\n");
                    out.push_str(&format!(
                        "auth       [success=done ignore=ignore default=die]   pam_totp.so{null}\n"
                    ));
                    out.push_str(after_deny);
                    out.push_str(END);
                    out.push('\n');
                }
                if auth.contains(&i) {
                    out.push_str(DISABLED);
                }
                out.push_str(l);
            }
            if lines.is_empty() {
                return Err(Error::failed(format!("/etc/pam.d/{service} is empty")));
            }
        }
        Mode::PasswordAndCode | Mode::Sudo => {
            let Some(&last) = auth.last() else {
                return Err(Error::failed(format!(
                    "/etc/pam.d/{service} has no auth line (no password is checked): put @include common-auth in it first"
                )));
            };
            let secret = if mode == Mode::Sudo {
                format!(" secret={DEFAULT_CENTRAL_SECRET}")
            } else {
                String::new()
            };
            for (i, l) in lines.iter().enumerate() {
                out.push_str(l);
                if i == last {
                    if !l.ends_with('\n') {
                        out.push('\n');
                    }
                    out.push_str(BEGIN);
                    out.push('\n');
                    out.push_str(&format!(
                        "auth       [success=ok ignore=ignore default=die]   pam_totp.so{secret}{null}\n"
                    ));
                    out.push_str(END);
                    out.push('\n');
                }
            }
        }
    }
    Ok(out)
}

/// The pam.d file with enable's lines removed; `None` when there were none.
fn unplan_pam(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut inside = false;
    let mut changed = false;
    for l in text.split_inclusive('\n') {
        if l.starts_with(BEGIN) {
            inside = true;
            changed = true;
            continue;
        }
        if inside {
            if l.starts_with(END) {
                inside = false;
            }
            continue;
        }
        match l.strip_prefix(DISABLED) {
            Some(rest) => {
                changed = true;
                out.push_str(rest);
            }
            None => out.push_str(l),
        }
    }
    changed.then_some(out)
}

fn drop_in_text(mode: Mode, nullok: bool) -> String {
    let mut s = String::new();
    s.push_str(DROP_IN_HEADER);
    s.push('\n');
    let how = if mode == Mode::KeyAndCode {
        "--key-and-code"
    } else {
        "--password-and-code"
    };
    s.push_str(&format!(
        "# pam-totp enable sshd {how}{}\n",
        if nullok { " --nullok" } else { "" }
    ));
    s.push_str("# The first value of a setting wins: /etc/ssh/sshd_config Includes this file at its top.\n");
    s.push_str("UsePAM yes\nKbdInteractiveAuthentication yes\n");
    if mode == Mode::KeyAndCode {
        s.push_str("AuthenticationMethods publickey,keyboard-interactive\n");
    }
    s
}

fn enable(
    root: &Root,
    mode: Mode,
    nullok: bool,
    admin: &Passwd,
    timeout: u64,
) -> Result<(), Error> {
    let service = mode.service();
    let admin_name = String::from_utf8_lossy(&admin.name).into_owned();
    if let Some(p) = pending(root)? {
        return Err(Error::failed(format!(
            "an unconfirmed change is pending ({}): confirm it with pam-totp enable --confirm, or wait for its rollback",
            root.shown(&p).display()
        )));
    }
    let pam_path = format!("{}/{service}", pamconf::PAM_D);
    let Some(pam_text) = read_text(root, &pam_path)? else {
        return Err(Error::failed(format!("{pam_path} does not exist")));
    };
    let mut changes = vec![Change {
        path: pam_path.clone(),
        new: Some(plan_pam(service, &pam_text, mode, nullok)?),
    }];
    if service == "sshd" {
        if read_text(root, pamconf::SSHD_CONFIG)?.is_none() {
            return Err(Error::failed(format!(
                "{} does not exist: is openssh-server installed?",
                pamconf::SSHD_CONFIG
            )));
        }
        if let Some(existing) = read_text(root, DROP_IN)? {
            if !existing.starts_with(DROP_IN_HEADER) {
                return Err(Error::failed(format!(
                    "{DROP_IN} exists and was not written by pam-totp; move it away first"
                )));
            }
        }
        changes.push(Change {
            path: DROP_IN.into(),
            new: Some(drop_in_text(mode, nullok)),
        });
        if !root.is_fixture() {
            sshd_check().map_err(|e| {
                Error::failed(format!("refusing: sshd -t fails before any change: {e}"))
            })?;
        }
    }
    // The admin must be able to log in afterwards: a secret where the new line looks.
    let opts = config::load_for_cli(Some(&root.path(config::DEFAULT_CONFIG)))
        .map_err(|e| Error::failed(format!("refusing: {e}")))?;
    let template = if mode == Mode::Sudo {
        DEFAULT_CENTRAL_SECRET.to_string()
    } else {
        opts.secret.clone()
    };
    let (loc, u) = doctor::secret_location(root, &template, admin).map_err(Error::failed)?;
    match store::load_secret(&loc, &u, sys::geteuid()) {
        Ok(_) => {}
        Err(store::Error::NotFound(_)) | Err(store::Error::Missing(_)) => {
            let how = if mode == Mode::Sudo {
                format!("pam-totp enroll --user {admin_name} (as root)")
            } else {
                format!("pam-totp enroll (as {admin_name})")
            };
            return Err(Error::failed(format!(
                "refusing: {admin_name} has no secret yet at {} and could not log in afterwards; first run {how}",
                root.shown(&loc.display_path()).display()
            )));
        }
        Err(e) => {
            return Err(Error::failed(format!(
                "refusing: {admin_name}'s secret is not usable: {e} (see pam-totp doctor)"
            )))
        }
    }
    if mode == Mode::KeyAndCode {
        let keys = root.path(admin.dir.join(".ssh/authorized_keys"));
        if fs::metadata(&keys).map_or(true, |m| m.len() == 0) {
            term::note(&format!(
                "{} has no {}: with key + code they need a key (or an AuthorizedKeysCommand)",
                admin_name,
                root.shown(&keys).display()
            ));
        }
    }
    // Doctor on the files as they will be.
    let ctx = Context {
        files: DiskFiles {
            root: root.clone(),
            overrides: changes
                .iter()
                .map(|c| (PathBuf::from(&c.path), c.new.clone()))
                .collect(),
        },
        user: Some(admin.clone()),
        run_sshd: false,
        clock: false,
    };
    let errors: Vec<String> = doctor::diagnose(&ctx)
        .into_iter()
        .filter(|f| f.level == Level::Error)
        .map(|f| f.text)
        .collect();
    if let Some(first) = errors.first() {
        for e in errors.iter().skip(1) {
            term::note(e);
        }
        return Err(Error::failed(format!(
            "refusing: with the change in place pam-totp doctor finds: {first}"
        )));
    }
    let backup = backup(root, &changes)?;
    if let Err(e) = apply(root, &changes) {
        let _ = restore(root, &backup);
        return Err(e);
    }
    if service == "sshd" && !root.is_fixture() {
        if let Err(e) = verify_sshd(root, mode) {
            let _ = restore(root, &backup);
            return Err(Error::failed(format!(
                "refusing: {e}; every file was restored"
            )));
        }
        reload_sshd();
    }
    let deadline = now().saturating_add(timeout);
    write_pending(&backup, deadline, mode)?;
    start_rollback(root, &backup)?;
    term::say(&format!("pam-totp: enabled {}", mode.describe()))?;
    for c in &changes {
        term::say(&format!("  changed {}", c.path))?;
    }
    term::say(&format!("  backup in {}", root.shown(&backup).display()))?;
    term::say(&format!(
        "Keep this session open. Log in again in a NEW session (e.g. ssh {admin_name}@this-host, or sudo in a new terminal) and run\n  sudo pam-totp enable --confirm\nwithin {timeout} s (by {} UTC), or every file is restored by itself.",
        clock_text(deadline)
    ))
}

fn clock_text(t: u64) -> String {
    let s = t % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

fn sshd_check() -> Result<(), String> {
    let out = Process::new("/usr/sbin/sshd")
        .arg("-t")
        .output()
        .map_err(|e| format!("cannot run /usr/sbin/sshd: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(err.lines().next().unwrap_or("failed").trim().to_string())
    }
}

/// After writing: sshd accepts the files and its effective values are ours (the first
/// value wins, so an earlier file can override the drop-in).
fn verify_sshd(root: &Root, mode: Mode) -> Result<(), String> {
    sshd_check().map_err(|e| format!("sshd -t fails with the change: {e}"))?;
    let (use_pam, kbd, methods, _) = doctor::sshd_t()?;
    let parsed = pamconf::read_sshd_config(&DiskFiles {
        root: root.clone(),
        overrides: Vec::new(),
    });
    let origin = |pick: fn(&pamconf::SshdConfig) -> &pamconf::Setting| {
        parsed
            .as_ref()
            .map(|c| pick(c).to_string())
            .unwrap_or_default()
    };
    if use_pam != "yes" {
        return Err(format!(
            "sshd -T says usepam {use_pam}: an earlier value wins: {}",
            origin(|c| &c.use_pam)
        ));
    }
    if kbd != "yes" {
        return Err(format!(
            "sshd -T says kbdinteractiveauthentication {kbd}: an earlier value wins: {}",
            origin(|c| &c.kbd_interactive)
        ));
    }
    if mode == Mode::KeyAndCode && methods != "publickey,keyboard-interactive" {
        return Err(format!(
            "sshd -T says authenticationmethods {methods}: an earlier value wins: {}",
            origin(|c| &c.auth_methods)
        ));
    }
    Ok(())
}

/// SIGHUP to the listening sshd (from /run/sshd.pid), which re-reads its configuration.
fn reload_sshd() {
    let pid = fs::read_to_string("/run/sshd.pid")
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok());
    let Some(pid) = pid else {
        term::note(
            "sshd is not running (no /run/sshd.pid); it reads the new settings when started",
        );
        return;
    };
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let Some(p) = rustix::process::Pid::from_raw(pid).filter(|_| comm.trim() == "sshd") else {
        term::note("/run/sshd.pid names no sshd; reload sshd yourself");
        return;
    };
    if rustix::process::kill_process(p, rustix::process::Signal::HUP).is_err() {
        term::note("could not reload sshd; run: systemctl reload ssh");
    }
}

// ---------------------------------------------------------------------------------------
// Backups

/// `DIR/manifest` lines: `index<TAB>existed<TAB>mode<TAB>uid<TAB>gid<TAB>path`; the old
/// contents are in `DIR/<index>`.
fn backup(root: &Root, changes: &[Change]) -> Result<PathBuf, Error> {
    let base = root.path(BACKUP_DIR);
    make_private_dir(&base)?;
    let stamp = format!("{}-{}", now(), std::process::id());
    let dir = base.join(stamp);
    make_private_dir(&dir)?;
    let mut manifest = String::new();
    for (i, c) in changes.iter().enumerate() {
        let p = root.path(&c.path);
        match fs::symlink_metadata(&p) {
            Ok(md) if md.is_file() => {
                let bytes = fs::read(&p)
                    .map_err(|e| Error::failed(format!("cannot back up {}: {e}", c.path)))?;
                write_new(&dir.join(i.to_string()), &bytes, 0o600)?;
                manifest.push_str(&format!(
                    "{i}\t1\t{:o}\t{}\t{}\t{}\n",
                    md.mode() & 0o7777,
                    md.uid(),
                    md.gid(),
                    c.path
                ));
            }
            Ok(_) => {
                return Err(Error::failed(format!(
                    "{} is not a regular file; refusing to replace it",
                    c.path
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                manifest.push_str(&format!("{i}\t0\t0\t0\t0\t{}\n", c.path));
            }
            Err(e) => return Err(Error::failed(format!("cannot back up {}: {e}", c.path))),
        }
    }
    write_new(&dir.join("manifest"), manifest.as_bytes(), 0o600)?;
    Ok(dir)
}

fn make_private_dir(dir: &Path) -> Result<(), Error> {
    match fs::create_dir_all(dir) {
        Ok(()) => {}
        Err(e) => {
            return Err(Error::failed(format!(
                "cannot create {}: {e}",
                dir.display()
            )))
        }
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::failed(format!("cannot chmod {}: {e}", dir.display())))
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::failed(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::failed(format!("cannot write {}: {e}", path.display())))
}

/// Replaces `path` by `bytes` atomically (temp file, fsync, rename, fsync of the directory),
/// with the given mode and owner.
fn replace(path: &Path, bytes: &[u8], mode: u32, uid: u32, gid: u32) -> Result<(), Error> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::failed(format!("{}: no directory", path.display())))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.pam-totp-{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let result = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::failed(format!("cannot write {}: {e}", path.display()))
    })
}

fn apply(root: &Root, changes: &[Change]) -> Result<(), Error> {
    for c in changes {
        let p = root.path(&c.path);
        match &c.new {
            Some(text) => {
                let (mode, uid, gid) = fs::metadata(&p)
                    .map(|m| (m.mode() & 0o7777, m.uid(), m.gid()))
                    .unwrap_or((0o644, 0, 0));
                replace(&p, text.as_bytes(), mode, uid, gid)?;
            }
            None => match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::failed(format!("cannot remove {}: {e}", c.path))),
            },
        }
    }
    Ok(())
}

/// Puts every file of a backup back byte for byte (mode and owner included), removing
/// files that did not exist.
fn restore(root: &Root, backup: &Path) -> Result<(), Error> {
    let manifest = fs::read_to_string(backup.join("manifest"))
        .map_err(|e| Error::failed(format!("cannot read the backup manifest: {e}")))?;
    let mut first_error = None;
    for line in manifest.lines() {
        let f: Vec<&str> = line.splitn(6, '\t').collect();
        let [index, existed, mode, uid, gid, path] = f.as_slice() else {
            continue;
        };
        let target = root.path(path);
        let result = if *existed == "1" {
            let parse = |s: &str, radix| u32::from_str_radix(s, radix).unwrap_or(0);
            fs::read(backup.join(index))
                .map_err(|e| Error::failed(format!("backup of {path} unreadable: {e}")))
                .and_then(|bytes| {
                    replace(
                        &target,
                        &bytes,
                        parse(mode, 8),
                        parse(uid, 10),
                        parse(gid, 10),
                    )
                })
        } else {
            match fs::remove_file(&target) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::failed(format!("cannot remove {path}: {e}"))),
            }
        };
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

// ---------------------------------------------------------------------------------------
// Pending changes, the rollback job, --confirm

/// Who ran enable, so that --confirm can tell a fresh login: the audit session id and
/// the terminal, where known.
fn session_marks() -> Vec<String> {
    let mut marks = Vec::new();
    if let Ok(s) = fs::read_to_string("/proc/self/sessionid") {
        let s = s.trim();
        if !s.is_empty() && s != "4294967295" {
            marks.push(format!("session={s}"));
        }
    }
    let stdin = std::io::stdin();
    if sys::isatty(stdin.as_fd()) {
        if let Ok(st) = rustix::fs::fstat(stdin.as_fd()) {
            marks.push(format!("tty={}", st.st_rdev));
        }
    }
    marks
}

fn write_pending(backup: &Path, deadline: u64, mode: Mode) -> Result<(), Error> {
    let mut s = format!("deadline={deadline}\nservice={}\n", mode.service());
    for m in session_marks() {
        s.push_str(&m);
        s.push('\n');
    }
    write_new(&backup.join("pending"), s.as_bytes(), 0o600)
}

fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// The backup directory of the change waiting for confirmation, if any.
fn pending(root: &Root) -> Result<Option<PathBuf>, Error> {
    let base = root.path(BACKUP_DIR);
    let Ok(rd) = fs::read_dir(&base) else {
        return Ok(None);
    };
    let mut dirs: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    dirs.sort();
    Ok(dirs.into_iter().rev().find(|d| {
        d.join("pending").is_file()
            && !d.join("confirmed").exists()
            && !d.join("rolled-back").exists()
            && !d.join("cancelled").exists()
    }))
}

/// Holds `DIR/lock` (flock) while deciding between confirm and rollback.
fn lock(dir: &Path) -> Result<File, Error> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(dir.join("lock"))
        .map_err(|e| Error::failed(format!("cannot open the backup lock: {e}")))?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| Error::failed(format!("cannot lock the backup: {e}")))?;
    Ok(f)
}

fn start_rollback(root: &Root, backup: &Path) -> Result<(), Error> {
    let exe = std::env::current_exe().map_err(|e| {
        Error::failed(format!(
            "cannot find this program to schedule the rollback: {e}"
        ))
    })?;
    let mut args: Vec<String> = vec![
        "enable".into(),
        "--rollback-job".into(),
        backup.to_string_lossy().into_owned(),
    ];
    if root.is_fixture() {
        args.push("--root".into());
        args.push(root.path("/").to_string_lossy().into_owned());
    }
    let systemd = !root.is_fixture()
        && Path::new("/run/systemd/system").is_dir()
        && Path::new("/usr/bin/systemd-run").exists();
    if systemd {
        // A transient unit outside the admin's session: logind cannot kill it at logout.
        let unit = format!(
            "pam-totp-rollback-{}",
            backup
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let status = Process::new("/usr/bin/systemd-run")
            .arg(format!("--unit={unit}"))
            .arg("--description=pam-totp enable: roll back unless confirmed")
            .arg("--quiet")
            .arg(&exe)
            .args(&args)
            .stdin(Stdio::null())
            .status();
        if status.is_ok_and(|s| s.success()) {
            let _ = fs::write(backup.join("job"), format!("unit={unit}\n"));
            return Ok(());
        }
    }
    let child = Process::new(&exe)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            let _ = restore(root, backup);
            Error::failed(format!(
                "cannot start the rollback job ({e}); every file was restored"
            ))
        })?;
    let _ = fs::write(backup.join("job"), format!("pid={}\n", child.id()));
    Ok(())
}

/// The background job: detach, wait for the deadline, restore unless confirmed.
fn rollback_job(root: &Root, dir: &Path) -> Result<(), Error> {
    // Its own session: no terminal, so a hang-up or ^C in the admin's shell cannot stop it.
    let _ = rustix::process::setsid();
    let text = fs::read_to_string(dir.join("pending"))
        .map_err(|e| Error::failed(format!("no pending change in {}: {e}", dir.display())))?;
    let deadline: u64 = field(&text, "deadline")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::failed("pending file without a deadline"))?;
    while now() < deadline {
        let gone = !dir.join("pending").exists();
        if gone || dir.join("confirmed").exists() || dir.join("cancelled").exists() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let _guard = lock(dir)?;
    if dir.join("confirmed").exists() || dir.join("cancelled").exists() {
        return Ok(());
    }
    let result = restore(root, dir);
    let note = match &result {
        Ok(()) => format!("rolled back at {}\n", now()),
        Err(e) => format!("rollback failed at {}: {e}\n", now()),
    };
    let _ = write_new(&dir.join("rolled-back"), note.as_bytes(), 0o600);
    if field(&text, "service") == Some("sshd") && !root.is_fixture() {
        reload_sshd();
    }
    result
}

fn confirm(root: &Root) -> Result<(), Error> {
    let Some(dir) = pending(root)? else {
        return Err(Error::failed(
            "nothing to confirm: no change of pam-totp enable is waiting (or it was rolled back)",
        ));
    };
    let text = fs::read_to_string(dir.join("pending"))
        .map_err(|e| Error::failed(format!("cannot read {}: {e}", dir.display())))?;
    let marks = session_marks();
    if marks.iter().any(|m| text.lines().any(|l| l == m)) {
        return Err(Error::failed(
            "run --confirm from a NEW login (a new ssh session, or sudo in a new terminal): this is the session that ran enable, so it proves nothing",
        ));
    }
    let _guard = lock(&dir)?;
    if dir.join("rolled-back").exists() {
        return Err(Error::failed(
            "too late: the change was rolled back; run pam-totp enable again",
        ));
    }
    write_new(
        &dir.join("confirmed"),
        format!("confirmed at {}\n", now()).as_bytes(),
        0o600,
    )?;
    stop_job(&dir);
    let service = field(&text, "service").unwrap_or("the service");
    term::say(&format!(
        "pam-totp: confirmed; {service} keeps asking for the code. The old files stay in {}",
        root.shown(&dir).display()
    ))
}

/// Ends the rollback job early (it would also exit by itself on seeing the marker).
fn stop_job(dir: &Path) {
    let Ok(job) = fs::read_to_string(dir.join("job")) else {
        return;
    };
    if let Some(unit) = field(&job, "unit") {
        let _ = Process::new("systemctl")
            .args(["stop", unit])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        return;
    }
    let Some(pid) = field(&job, "pid").and_then(|p| p.trim().parse::<i32>().ok()) else {
        return;
    };
    // Only our job: its command line names this backup directory.
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let ours = String::from_utf8_lossy(&cmdline).contains(&*dir.to_string_lossy())
        && String::from_utf8_lossy(&cmdline).contains("--rollback-job");
    if let (true, Some(p)) = (ours, rustix::process::Pid::from_raw(pid)) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
    }
}

fn run_disable(args: &[String]) -> Result<(), Error> {
    let p = args::parse(args, DISABLE_SPEC, 1)?;
    let root = root_of(&p);
    let service = match p.positional.first().map(String::as_str) {
        Some(s @ ("sshd" | "sudo")) => s,
        Some(other) => {
            return Err(Error::usage(format!(
                "cannot disable \"{other}\": sshd or sudo"
            )))
        }
        None => return Err(Error::usage("disable what? sshd or sudo")),
    };
    need_root(&root, "disable")?;
    let pam_path = format!("{}/{service}", pamconf::PAM_D);
    let mut changes = Vec::new();
    if let Some(text) = read_text(&root, &pam_path)? {
        if let Some(new) = unplan_pam(&text) {
            changes.push(Change {
                path: pam_path.clone(),
                new: Some(new),
            });
        }
    }
    if service == "sshd" {
        if let Some(text) = read_text(&root, DROP_IN)? {
            if text.starts_with(DROP_IN_HEADER) {
                changes.push(Change {
                    path: DROP_IN.into(),
                    new: None,
                });
            } else {
                term::note(&format!(
                    "{DROP_IN} was not written by pam-totp; left alone"
                ));
            }
        }
    }
    if changes.is_empty() {
        return Err(Error::failed(format!(
            "nothing to disable: {pam_path} has no lines from pam-totp enable"
        )));
    }
    // A pending rollback of this service would later put back the same old files.
    if let Some(dir) = pending(&root)? {
        let text = fs::read_to_string(dir.join("pending")).unwrap_or_default();
        if field(&text, "service") == Some(service) {
            let _guard = lock(&dir)?;
            let _ = write_new(&dir.join("cancelled"), b"cancelled by disable\n", 0o600);
            stop_job(&dir);
        }
    }
    let backup = backup(&root, &changes)?;
    if let Err(e) = apply(&root, &changes) {
        let _ = restore(&root, &backup);
        return Err(e);
    }
    if service == "sshd" && !root.is_fixture() {
        reload_sshd();
    }
    for c in &changes {
        term::say(&format!("pam-totp: restored {}", c.path))?;
    }
    if let Some(text) = read_text(&root, &pam_path)? {
        if let Some(i) = text.split_inclusive('\n').position(has_totp) {
            term::note(&format!(
                "{pam_path}:{} still loads pam_totp.so (not written by enable); remove it by hand if you want",
                i.saturating_add(1)
            ));
        }
    }
    term::say(&format!("  backup in {}", root.shown(&backup).display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSHD: &str = "# comment\n@include common-auth\naccount required pam_nologin.so\n@include common-account\n";

    #[test]
    fn key_and_code_replaces_the_password_and_disable_restores_it() {
        let new = plan_pam("sshd", SSHD, Mode::KeyAndCode, false).unwrap();
        assert!(new.contains("#pam-totp-disabled# @include common-auth\n"));
        assert!(new.contains("pam_totp.so\nauth       requisite    pam_deny.so\n"));
        assert_eq!(unplan_pam(&new).as_deref(), Some(SSHD));
    }

    #[test]
    fn password_and_code_goes_after_common_auth() {
        let new = plan_pam("sshd", SSHD, Mode::PasswordAndCode, true).unwrap();
        let i = new.find("@include common-auth").unwrap();
        let j = new.find("pam_totp.so nullok").unwrap();
        assert!(i < j);
        assert_eq!(unplan_pam(&new).as_deref(), Some(SSHD));
        assert!(plan_pam("sshd", &new, Mode::PasswordAndCode, true).is_err());
    }

    #[test]
    fn a_file_without_a_first_factor_is_refused_for_password_and_code() {
        assert!(plan_pam("sudo", "account required pam_unix.so\n", Mode::Sudo, false).is_err());
    }
}
