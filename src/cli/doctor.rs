//! `pam-totp doctor`: reads the installation as sshd and sudo will see it and explains each
//! problem in one line with its fix. Errors (a login that will fail, or a second factor that
//! can be skipped) make it exit 1; warnings alone exit 0.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command as Process;

use super::args::{self, Spec};
use super::pamconf::{self, DiskFiles, Files, Root, StackLine};
use super::{term, Command, Error};
use crate::config::{self, Options};
use crate::store::{self, SecretLocation};
use crate::sys::{self, Passwd};

pub(crate) const COMMAND: Command = Command {
    name: "doctor",
    summary: "check the module, pam.d, sshd, state and secret files",
    help: "Usage: pam-totp doctor [--user NAME]\n\
\n\
Checks the installation and explains each problem in one line with its fix:\n\
the module file and its permissions; every pam.d line that loads pam_totp.so\n\
(arguments, control flags, what runs before it, nullok); sshd's UsePAM,\n\
KbdInteractiveAuthentication and AuthenticationMethods (through `sshd -T`: the\n\
first value of a setting wins); the state directory; the user's secret file\n\
(the invoking user, or NAME); clock synchronisation.\n\
\n\
Exit status: 0 when nothing is wrong (warnings may be printed), 1 when an error\n\
was found.\n\
\n\
Options:\n\
  --user NAME   check NAME's secret file (root may check anyone)\n\
  --root DIR    for tests: read DIR/etc/pam.d, DIR/etc/ssh, DIR/var/lib/pam-totp,\n\
                DIR/etc/security/pam_totp.conf and the module directories below DIR\n\
                instead of the system's (sshd -T and timedatectl are not run)\n",
    run,
};

const SPEC: &[Spec] = &[("user", true), ("root", true)];

/// Directories the module may be installed in (SPEC §1), the default one first.
pub(crate) fn module_dirs() -> Vec<String> {
    let multiarch = match std::env::consts::ARCH {
        "x86" => "i386".to_string(),
        a => a.to_string(),
    };
    vec![
        format!("/usr/lib/{multiarch}-linux-gnu/security"),
        "/usr/lib64/security".into(),
        "/lib/security".into(),
        "/lib64/security".into(),
        "/usr/lib/security".into(),
        format!("/lib/{multiarch}-linux-gnu/security"),
    ]
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    /// Logins fail, or the code can be skipped.
    Error,
    /// Worth fixing; nothing breaks.
    Warning,
}

/// One problem and its fix, in one line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Finding {
    /// Error or warning.
    pub level: Level,
    /// `where: what. Fix: how`.
    pub text: String,
}

impl Finding {
    pub(crate) fn line(&self) -> String {
        match self.level {
            Level::Error => format!("error: {}", self.text),
            Level::Warning => format!("warning: {}", self.text),
        }
    }
}

/// What doctor looks at.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    /// Files to read (with `enable`'s planned contents as overrides).
    pub files: DiskFiles,
    /// Whose secret to check.
    pub user: Option<Passwd>,
    /// Ask `sshd -T` for the effective settings (real system only).
    pub run_sshd: bool,
    /// Check the clock.
    pub clock: bool,
}

impl Context {
    fn root(&self) -> &Root {
        &self.files.root
    }
}

#[derive(Default)]
struct Report {
    findings: Vec<Finding>,
}

impl Report {
    fn error(&mut self, text: impl Into<String>) {
        self.push(Level::Error, text.into());
    }

    fn warn(&mut self, text: impl Into<String>) {
        self.push(Level::Warning, text.into());
    }

    fn push(&mut self, level: Level, text: String) {
        let f = Finding { level, text };
        if !self.findings.contains(&f) {
            self.findings.push(f);
        }
    }
}

/// A pam_totp line in some service's auth stack.
#[derive(Debug, Clone)]
struct TotpUse {
    service: String,
    line: StackLine,
}

/// The effective sshd settings.
#[derive(Debug, Clone)]
pub(crate) struct Sshd {
    pub use_pam: pamconf::Setting,
    pub kbd: pamconf::Setting,
    pub methods: pamconf::Setting,
    pub pubkey: pamconf::Setting,
}

fn run(args: &[String]) -> Result<(), Error> {
    let p = args::parse(args, SPEC, 0)?;
    let root = match p.value("root") {
        Some(d) => Root::under(Path::new(d)),
        None => Root::system(),
    };
    let user = lookup_user(p.value("user"))?;
    let ctx = Context {
        run_sshd: !root.is_fixture(),
        clock: true,
        files: DiskFiles {
            root,
            overrides: Vec::new(),
        },
        user: Some(user),
    };
    let findings = diagnose(&ctx);
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    let warnings = findings.len().saturating_sub(errors);
    for f in &findings {
        term::say(&f.line())?;
    }
    if errors > 0 {
        return Err(Error::failed(format!(
            "doctor: {errors} error(s), {warnings} warning(s)"
        )));
    }
    if warnings > 0 {
        term::say(&format!("doctor: no errors, {warnings} warning(s)"))
    } else {
        term::say("doctor: no problems found")
    }
}

/// `--user NAME` or the invoking user (the real uid; never `$USER`).
pub(crate) fn lookup_user(name: Option<&str>) -> Result<Passwd, Error> {
    let found = match name {
        Some(n) => {
            if !sys::valid_user_name(n.as_bytes()) {
                return Err(Error::usage(format!("--user {n:?}: not a valid user name")));
            }
            sys::getpwnam(n.as_bytes()).map_err(|_| Error::failed(format!("no user named \"{n}\"")))
        }
        None => {
            let uid = sys::getuid();
            sys::getpwuid(uid)
                .map_err(|_| Error::failed(format!("uid {uid} is not in the password database")))
        }
    }?;
    if name.is_some() && found.uid != sys::getuid() && sys::geteuid() != 0 {
        return Err(Error::failed(
            "--user for another user needs root (try: sudo pam-totp doctor --user NAME)",
        ));
    }
    Ok(found)
}

/// Runs every check; errors first.
pub(crate) fn diagnose(ctx: &Context) -> Vec<Finding> {
    let mut r = Report::default();
    let opts = check_config(ctx, &mut r);
    let uses = totp_uses(ctx);
    check_module(ctx, &uses, &mut r);
    let sshd = sshd_settings(ctx, &uses, &mut r);
    check_pam(ctx, &uses, sshd.as_ref(), &mut r);
    if let Some(s) = &sshd {
        check_sshd(s, &mut r);
    }
    check_state_dir(ctx, &opts, &mut r);
    check_secrets(ctx, &opts, &uses, &mut r);
    if ctx.clock {
        check_clock(ctx, &mut r);
    }
    let mut f = r.findings;
    f.sort_by_key(|x| x.level);
    f
}

fn check_config(ctx: &Context, r: &mut Report) -> Options {
    let path = ctx.root().path(config::DEFAULT_CONFIG);
    match config::load_for_cli(Some(&path)) {
        Ok(mut o) => {
            o.state_dir = ctx.root().path(&o.state_dir);
            o
        }
        Err(e) => {
            // "config file: PATH: config file: line N: …" → "line N: …"
            let full = path.display().to_string();
            let msg = e
                .to_string()
                .replace("config file: ", "")
                .replace(&format!("{full}: "), "");
            r.error(format!(
                "{}: {msg}: the module refuses every login (PAM_SERVICE_ERR). Fix: correct it (see pam_totp.conf(5))",
                config::DEFAULT_CONFIG
            ));
            let mut o = Options::default();
            o.state_dir = ctx.root().path(&o.state_dir);
            o
        }
    }
}

/// Every service file (not the common-* parts it includes) whose auth stack loads pam_totp.
fn totp_uses(ctx: &Context) -> Vec<(String, pamconf::Stack)> {
    let mut out = Vec::new();
    for service in ctx.files.list(Path::new(pamconf::PAM_D)) {
        if service.starts_with("common-") || service.starts_with('.') || service.ends_with('~') {
            continue;
        }
        let Some(stack) = pamconf::load_stack(&ctx.files, &service, "auth") else {
            continue;
        };
        if stack.lines.iter().any(|l| pamconf::is_totp(&l.module)) {
            out.push((service, stack));
        }
    }
    out
}

fn all_totp_lines(uses: &[(String, pamconf::Stack)]) -> Vec<TotpUse> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (service, stack) in uses {
        for l in &stack.lines {
            if pamconf::is_totp(&l.module) && seen.insert((l.line.at(), service.clone())) {
                out.push(TotpUse {
                    service: service.clone(),
                    line: l.clone(),
                });
            }
        }
    }
    out
}

fn mode_text(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

fn check_module(ctx: &Context, uses: &[(String, pamconf::Stack)], r: &mut Report) {
    let root = ctx.root();
    let dirs = module_dirs();
    let default_dir = dirs
        .iter()
        .find(|d| root.path(d).is_dir())
        .cloned()
        .unwrap_or_else(|| dirs.first().cloned().unwrap_or_default());
    let mut seen = BTreeSet::new();
    let mut found = Vec::new();
    let mut candidates: Vec<String> = dirs.iter().map(|d| format!("{d}/pam_totp.so")).collect();
    for u in all_totp_lines(uses) {
        if u.line.module.starts_with('/') {
            candidates.push(u.line.module.clone());
        }
    }
    for c in &candidates {
        let p = root.path(c);
        let Ok(md) = std::fs::metadata(&p) else {
            continue;
        };
        if !seen.insert((md.dev(), md.ino())) {
            continue;
        }
        found.push(c.clone());
        if md.uid() != 0 {
            r.error(format!(
                "{c}: owned by uid {}, not root: its owner can change the code sshd and sudo run as root. Fix: chown root:root {c}",
                md.uid()
            ));
        }
        if md.mode() & 0o022 != 0 {
            r.error(format!(
                "{c}: mode {} is writable by group or others, who can change the code sshd and sudo run as root. Fix: chmod 0644 {c}",
                mode_text(md.mode())
            ));
        }
        if let Some(dir) = Path::new(c).parent() {
            check_root_dir(root, dir, r);
        }
    }
    for u in all_totp_lines(uses) {
        let m = &u.line.module;
        let path = if m.starts_with('/') {
            m.clone()
        } else {
            format!("{default_dir}/{m}")
        };
        if !root.path(&path).exists() {
            r.error(format!(
                "{}: {path} does not exist: every {} login fails (libpam cannot load the module). Fix: sudo make install, or install the package",
                u.line.line.at(),
                u.service
            ));
        }
    }
    if found.is_empty() && uses.is_empty() {
        r.error(format!(
            "pam_totp.so is not installed in {default_dir}. Fix: sudo make install, or install the package"
        ));
    }
}

/// A directory holding code or state root runs: root-owned, not group/other-writable.
fn check_root_dir(root: &Root, dir: &Path, r: &mut Report) {
    let Ok(md) = std::fs::metadata(root.path(dir)) else {
        return;
    };
    if md.uid() != 0 || md.mode() & 0o022 != 0 {
        r.error(format!(
            "{}: directory owned by uid {} with mode {}: who can write it can replace the module. Fix: chown root:root {0}; chmod go-w {0}",
            dir.display(),
            md.uid(),
            mode_text(md.mode())
        ));
    }
}

fn sshd_settings(ctx: &Context, uses: &[(String, pamconf::Stack)], r: &mut Report) -> Option<Sshd> {
    if !uses.iter().any(|(s, _)| s == "sshd") {
        return None;
    }
    let Some(parsed) = pamconf::read_sshd_config(&ctx.files) else {
        r.warn(format!(
            "{}: cannot be read, so sshd's settings are not checked. Fix: install openssh-server, or ignore this if sshd does not run here",
            pamconf::SSHD_CONFIG
        ));
        return None;
    };
    for p in &parsed.problems {
        r.warn(format!("{p}. Fix: correct the Include line"));
    }
    let mut s = Sshd {
        use_pam: parsed.use_pam,
        kbd: parsed.kbd_interactive,
        methods: parsed.auth_methods,
        pubkey: parsed.pubkey,
    };
    if ctx.run_sshd && Path::new("/usr/sbin/sshd").exists() {
        match sshd_t() {
            Ok((use_pam, kbd, methods, pubkey)) => {
                let merge = |setting: &mut pamconf::Setting, value: String| {
                    if !setting.value.eq_ignore_ascii_case(&value) {
                        *setting = pamconf::Setting {
                            value,
                            origin: Some("sshd -T".into()),
                        };
                    }
                };
                merge(&mut s.use_pam, use_pam);
                merge(&mut s.kbd, kbd);
                merge(&mut s.methods, methods);
                merge(&mut s.pubkey, pubkey);
            }
            Err(e) => r.warn(format!(
                "sshd -T failed ({e}); the sshd_config files were read instead. Fix: run sshd -t to see why"
            )),
        }
    }
    Some(s)
}

/// Effective settings from `sshd -T`.
pub(crate) fn sshd_t() -> Result<(String, String, String, String), String> {
    let out = Process::new("/usr/sbin/sshd")
        .arg("-T")
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err.lines().next().unwrap_or("failed").trim().to_string());
    }
    pamconf::parse_sshd_t(&String::from_utf8_lossy(&out.stdout))
        .ok_or_else(|| "no usepam/kbdinteractiveauthentication in its output".to_string())
}

fn check_sshd(s: &Sshd, r: &mut Report) {
    if s.use_pam.value != "yes" {
        r.error(format!(
            "sshd: UsePAM {}: sshd never runs /etc/pam.d/sshd, so no code is asked. Fix: pam-totp enable sshd, or UsePAM yes in /etc/ssh/sshd_config.d/10-pam-totp.conf",
            s.use_pam
        ));
    }
    if s.kbd.value != "yes" {
        r.error(format!(
            "sshd: KbdInteractiveAuthentication {} (the first value in sshd_config wins): sshd never shows the code prompt. Fix: pam-totp enable sshd, or KbdInteractiveAuthentication yes in /etc/ssh/sshd_config.d/10-pam-totp.conf, which is Included before it",
            s.kbd
        ));
    }
    let m = pamconf::methods(&s.methods.value);
    if m.no_kbd {
        r.error(format!(
            "sshd: AuthenticationMethods {} has no keyboard-interactive: the code is never asked. Fix: AuthenticationMethods publickey,keyboard-interactive",
            s.methods
        ));
    } else if m.some_without_kbd && !s.methods.value.eq_ignore_ascii_case("any") {
        r.warn(format!(
            "sshd: AuthenticationMethods {}: some lists log in without keyboard-interactive, so without a code. Fix: add keyboard-interactive to every list, unless that is intended",
            s.methods
        ));
    }
    if m.key_first && s.pubkey.value == "no" {
        r.error(format!(
            "sshd: AuthenticationMethods asks for a key first but PubkeyAuthentication {}: nobody can log in. Fix: PubkeyAuthentication yes",
            s.pubkey
        ));
    }
}

fn check_pam(
    ctx: &Context,
    uses: &[(String, pamconf::Stack)],
    sshd: Option<&Sshd>,
    r: &mut Report,
) {
    let user = ctx.user.as_ref().map_or_else(
        || "the user".to_string(),
        |u| String::from_utf8_lossy(&u.name).into_owned(),
    );
    for u in all_totp_lines(uses) {
        let args: Vec<&[u8]> = u.line.args.iter().map(|a| a.as_bytes()).collect();
        match config::check_args(&args) {
            Ok(_) => {}
            Err(config::Error::UnknownArgument(a)) => {
                let hint = pamconf::nearest(&a, &pamconf::TOTP_ARGS)
                    .map(|n| format!(" (did you mean \"{n}\"?)"))
                    .unwrap_or_default();
                r.error(format!(
                    "{}: unknown pam_totp argument \"{a}\"{hint}: the module refuses every {} login (PAM_SERVICE_ERR). Fix: correct or remove it (see pam_totp(8))",
                    u.line.line.at(),
                    u.service
                ));
            }
            Err(e) => r.error(format!(
                "{}: {e}: the module refuses every {} login (PAM_SERVICE_ERR). Fix: see pam_totp(8)",
                u.line.line.at(),
                u.service
            )),
        }
    }
    for (service, stack) in uses {
        for (at, reason) in &stack.broken {
            r.error(format!(
                "{at}: libpam rejects this line ({reason}), which fails every {service} login. Fix: correct it"
            ));
        }
        let a = pamconf::analyse(&stack.lines);
        let line = |i: usize| stack.lines.get(i);
        let key_first =
            service == "sshd" && sshd.is_some_and(|s| pamconf::methods(&s.methods.value).key_first);
        if a.truncated {
            r.warn(format!(
                "{service}: the auth stack has too many paths to check them all. Fix: simplify it"
            ));
        }
        if !a.can_succeed {
            r.error(format!(
                "{service}: no path through the auth stack ends in success, so every login is refused. Fix: check the jumps (success=N) and requisite lines around pam_totp"
            ));
        }
        for &i in &a.skipped_by {
            let Some(l) = line(i) else { continue };
            let base = pamconf::module_base(&l.module);
            if base == "pam_rootok" {
                // Only root gets past it, and root needs no code to become anyone.
                continue;
            }
            let text = format!(
                "{}: `{} {}` can end the auth stack or jump past pam_totp when it succeeds, so {service} logins through it need no code",
                l.line.at(),
                l.control.text,
                l.module
            );
            if pamconf::FIRST_FACTORS.contains(&base) || base == "pam_permit" {
                r.error(format!(
                    "{text}: the password alone logs in. Fix: make it requisite (or @include common-auth) and put pam_totp after it"
                ));
            } else {
                r.warn(format!(
                    "{text}. Fix: remove the skip unless it is intended"
                ));
            }
        }
        let mut failing: Vec<(usize, Vec<&str>)> = Vec::new();
        for &(i, code) in &a.failure_ignored {
            match failing.iter_mut().find(|(j, _)| *j == i) {
                Some((_, v)) => v.push(code),
                None => failing.push((i, vec![code])),
            }
        }
        for (i, codes) in failing {
            let Some(l) = line(i) else { continue };
            r.error(format!(
                "{}: with control `{}` a failing pam_totp ({}) still lets {service} logins succeed: a wrong code is ignored. Fix: use [success=ok ignore=ignore default=die] (or requisite)",
                l.line.at(),
                l.control.text,
                codes.join(", ")
            ));
        }
        for &i in &a.code_alone {
            let Some(l) = line(i) else { continue };
            if key_first {
                continue;
            }
            r.error(format!(
                "{}: a correct code alone logs in to {service}: no password or key is checked first. Fix: put a requisite first factor (@include common-auth) before it{}",
                l.line.at(),
                if service == "sshd" { ", or set AuthenticationMethods publickey,keyboard-interactive" } else { "" }
            ));
        }
        for &i in &a.before_first_factor {
            let Some(l) = line(i) else { continue };
            if key_first || a.code_alone.contains(&i) {
                continue;
            }
            let text = format!(
                "{}: pam_totp asks for the code before any password has been checked: anyone who can reach the prompt can use up {user}'s failure budget and lock them out. Fix: put a requisite first factor (@include common-auth) before it{}",
                l.line.at(),
                if service == "sshd" { ", or use AuthenticationMethods publickey,keyboard-interactive" } else { "" }
            );
            let forward = l.args.iter().any(|x| x == "forward_pass");
            if service == "sshd" && !forward {
                r.error(text);
            } else {
                r.warn(text);
            }
        }
        for &i in &a.nullok_alone {
            let Some(l) = line(i) else { continue };
            if key_first {
                continue;
            }
            r.error(format!(
                "{}: with nullok, a user who has no secret logs in to {service} with nothing checked at all. Fix: put a requisite first factor before it, or remove nullok",
                l.line.at()
            ));
        }
        for &i in &a.nullok_useless {
            let Some(l) = line(i) else { continue };
            r.warn(format!(
                "{}: nullok has no effect: when pam_totp ignores a user without a secret no other module lets the {service} login succeed, so they are refused anyway. Fix: remove nullok, or for a roll-out follow the line with `auth required pam_permit.so`",
                l.line.at()
            ));
        }
    }
}

fn check_state_dir(ctx: &Context, opts: &Options, r: &mut Report) {
    let root = ctx.root();
    let dir = &opts.state_dir;
    let shown = root.shown(dir);
    match std::fs::symlink_metadata(dir) {
        Err(_) => {
            let parent_ok = dir.parent().is_some_and(|p| p.is_dir());
            if parent_ok {
                r.warn(format!(
                    "{}: missing; the module creates it at the first login. Fix: mkdir -m 0700 {0}",
                    shown.display()
                ));
            } else {
                r.error(format!(
                    "{}: missing, and so is its parent: every login fails (PAM_AUTHINFO_UNAVAIL). Fix: mkdir -p -m 0700 {0}",
                    shown.display()
                ));
            }
        }
        Ok(md) if !md.is_dir() => r.error(format!(
            "{}: not a directory (or a symlink): every login fails. Fix: replace it by a directory, root:root 0700",
            shown.display()
        )),
        Ok(md) => {
            if md.uid() != 0 {
                r.error(format!(
                    "{}: owned by uid {}, not root: that user can reset anyone's failure counters. Fix: chown root:root {0}",
                    shown.display(),
                    md.uid()
                ));
            } else if md.mode() & 0o077 != 0 {
                r.error(format!(
                    "{}: mode {}, expected 0700. Fix: chmod 0700 {0}",
                    shown.display(),
                    mode_text(md.mode())
                ));
            } else if let Err(e) = store::open_central_dir(dir, &[0]) {
                r.error(format!(
                    "{e}: every login fails. Fix: make each directory above it root-owned and not group/other-writable"
                ));
            }
        }
    }
    let secrets = root.path("/var/lib/pam-totp/secrets");
    if let Ok(md) = std::fs::symlink_metadata(&secrets) {
        if !md.is_dir() || md.uid() != 0 {
            r.error(
                "/var/lib/pam-totp/secrets: not a root-owned directory: central secrets there are refused. Fix: chown root:root /var/lib/pam-totp/secrets; chmod 0700 /var/lib/pam-totp/secrets",
            );
        } else if md.mode() & 0o022 != 0 {
            r.error(format!(
                "/var/lib/pam-totp/secrets: mode {}: writable by group or others, so central secrets there are refused. Fix: chmod 0700 /var/lib/pam-totp/secrets",
                mode_text(md.mode())
            ));
        } else if md.mode() & 0o077 != 0 {
            r.warn(format!(
                "/var/lib/pam-totp/secrets: mode {}, expected 0700: others can see who is enrolled. Fix: chmod 0700 /var/lib/pam-totp/secrets",
                mode_text(md.mode())
            ));
        }
    }
}

/// The secret location of `user` for a `secret=` template, inside the checked tree.
pub(crate) fn secret_location(
    root: &Root,
    template: &str,
    user: &Passwd,
) -> Result<(SecretLocation, Passwd), String> {
    let loc = SecretLocation::resolve(template, user)?;
    let mut u = user.clone();
    u.dir = root.path(&user.dir);
    let loc = match loc {
        SecretLocation::Home { rel, .. } => SecretLocation::Home {
            home: u.dir.clone(),
            rel,
        },
        SecretLocation::Central(p) => SecretLocation::Central(root.path(p)),
    };
    Ok((loc, u))
}

fn check_secrets(ctx: &Context, opts: &Options, uses: &[(String, pamconf::Stack)], r: &mut Report) {
    let Some(user) = &ctx.user else { return };
    let name = String::from_utf8_lossy(&user.name).into_owned();
    // template → (nullok on every line using it, services)
    let mut templates: Vec<(String, bool, Vec<String>)> = Vec::new();
    for u in all_totp_lines(uses) {
        let template = u
            .line
            .args
            .iter()
            .find_map(|a| a.strip_prefix("secret="))
            .map_or_else(|| opts.secret.clone(), str::to_string);
        let nullok = u.line.args.iter().any(|a| a == "nullok");
        match templates.iter_mut().find(|(t, _, _)| *t == template) {
            Some((_, n, s)) => {
                *n &= nullok;
                if !s.contains(&u.service) {
                    s.push(u.service.clone());
                }
            }
            None => templates.push((template, nullok, vec![u.service.clone()])),
        }
    }
    let enabled = !templates.is_empty();
    if !enabled {
        templates.push((opts.secret.clone(), true, Vec::new()));
    }
    for (template, nullok, services) in templates {
        let (loc, u) = match secret_location(ctx.root(), &template, user) {
            Ok(x) => x,
            Err(e) => {
                r.error(format!("{e}. Fix: correct the secret= template"));
                continue;
            }
        };
        let shown = ctx.root().shown(&loc.display_path());
        let via = if services.is_empty() {
            String::new()
        } else {
            format!(" ({})", services.join(", "))
        };
        let euid = sys::geteuid();
        if euid != 0 && matches!(loc, SecretLocation::Central(_)) {
            r.warn(format!(
                "{}: only root can check {name}'s central secret. Fix: sudo pam-totp doctor",
                shown.display()
            ));
            continue;
        }
        match store::load_secret(&loc, &u, euid) {
            Ok(_) => {}
            Err(store::Error::NotFound(_)) | Err(store::Error::Missing(_)) => {
                let enroll = if matches!(loc, SecretLocation::Central(_)) {
                    format!("pam-totp enroll --user {name} (as root)")
                } else {
                    format!("pam-totp enroll (as {name})")
                };
                if !enabled {
                    r.warn(format!(
                        "{}: {name} has no secret yet. Fix: {enroll}",
                        shown.display()
                    ));
                } else if nullok {
                    r.warn(format!(
                        "{}: {name} has no secret, so logs in without a code (nullok){via}. Fix: {enroll}",
                        shown.display()
                    ));
                } else {
                    r.error(format!(
                        "{}: {name} has no secret, so cannot log in{via}. Fix: {enroll}",
                        shown.display()
                    ));
                }
            }
            Err(store::Error::Unsafe { path, reason }) => {
                let owner = if matches!(loc, SecretLocation::Central(_)) {
                    "root:root".to_string()
                } else {
                    name.clone()
                };
                r.error(format!(
                    "{}: {reason}: the module refuses {name}'s logins{via}. Fix: chown {owner} and chmod 0600 the file (0700 for its directories, none writable by others)",
                    ctx.root().shown(&path).display()
                ));
            }
            Err(store::Error::Garbled { path, reason }) => r.error(format!(
                "{}: garbled ({reason}): {name}'s logins fail{via}. Fix: enroll again (pam-totp enroll --force)",
                ctx.root().shown(&path).display()
            )),
            Err(e) => r.error(format!(
                "{}: {e}: {name}'s logins fail{via}. Fix: correct the file or its directory",
                shown.display()
            )),
        }
    }
}

fn check_clock(ctx: &Context, r: &mut Report) {
    let root = ctx.root();
    if !root.is_fixture() {
        if let Ok(out) = Process::new("timedatectl")
            .args(["show", "-p", "NTPSynchronized", "--value"])
            .output()
        {
            if out.status.success() {
                match String::from_utf8_lossy(&out.stdout).trim() {
                    "yes" => return,
                    "no" => {
                        r.warn(
                            "the clock is not synchronised (timedatectl: NTPSynchronized=no): codes are refused once it drifts by more than a step. Fix: timedatectl set-ntp true, or install chrony or systemd-timesyncd",
                        );
                        return;
                    }
                    _ => {}
                }
            }
        }
    }
    if root.path("/run/systemd/timesync/synchronized").exists() {
        return;
    }
    r.warn(
        "cannot tell whether the clock is synchronised (no timedatectl answer, no /run/systemd/timesync/synchronized). Fix: check that NTP (chrony, ntpd or systemd-timesyncd) runs",
    );
}
