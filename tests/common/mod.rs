//! Shared helpers for tests that drive the built `libpam_totp.so` through the real libpam
//! with a private configuration directory (`pam_start_confdir`), no root needed.
//!
//! Every sandbox lives under [`tmp_base`]: the module's central-layout walk refuses
//! world-writable directories such as /tmp, so the base is `CARGO_TARGET_TMPDIR` when every
//! component of its path is owned by root or the user running the tests, and not writable by
//! others; otherwise (a checkout under /tmp or /var/tmp, say) root uses /run/pam-totp-tests.

#![allow(dead_code, unused_imports)]

use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use pam_totp::otp::{decode_base32, Algorithm, Mac};
use pam_totp::pam::client::{self, Responder, Session, Style};
use pam_totp::pam::ffi;
use zeroize::Zeroizing;

pub use pam_totp::pam::ffi::{
    PAM_AUTHINFO_UNAVAIL, PAM_AUTH_ERR, PAM_CONV_ERR, PAM_IGNORE, PAM_MAXTRIES, PAM_SERVICE_ERR,
    PAM_SUCCESS, PAM_SYSTEM_ERR,
};

/// A base32 secret used across tests (RFC 6238's SHA1 seed "12345678901234567890").
pub const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The built module: next to the test binary in target/<profile>/deps.
pub fn module_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let deps = exe.parent().expect("deps dir");
    for candidate in [deps.join("libpam_totp.so"), deps.join("../libpam_totp.so")] {
        if candidate.exists() {
            return candidate.canonicalize().expect("canonical module path");
        }
    }
    panic!("libpam_totp.so not found next to {}", exe.display());
}

/// The user running the tests.
pub fn me() -> (String, u32) {
    let uid = rustix::process::geteuid().as_raw();
    let pw = pam_totp::sys::getpwuid(uid).expect("current user in passwd");
    (String::from_utf8(pw.name).expect("utf-8 user name"), uid)
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The TOTP code of `secret` for the time step of `t`.
pub fn totp_at(secret: &str, t: u64, period: u64, digits: u32, alg: Algorithm) -> String {
    let mac = Mac::new(alg, &decode_base32(secret).unwrap());
    let code = mac.code(t / period, digits);
    format!("{code:0width$}", width = digits as usize)
}

/// The current SHA1 6-digit 30 s code.
pub fn totp_now(secret: &str) -> String {
    totp_at(secret, now(), 30, 6, Algorithm::Sha1)
}

/// A code that is wrong for every step near now.
pub fn wrong_code(secret: &str) -> String {
    let t = now();
    let near: Vec<String> = (0..5)
        .map(|i| totp_at(secret, t + i * 30 - 60, 30, 6, Algorithm::Sha1))
        .collect();
    (0..1_000_000u32)
        .map(|n| format!("{n:06}"))
        .find(|c| !near.contains(c))
        .unwrap()
}

/// HOTP code for a counter.
pub fn hotp(secret: &str, counter: u64) -> String {
    let mac = Mac::new(Algorithm::Sha1, &decode_base32(secret).unwrap());
    format!("{:06}", mac.code(counter, 6))
}

/// Sleeps until at least `margin` seconds remain in the current 30 s step, so a test that
/// computes a code and then logs in stays within one step.
pub fn avoid_step_edge(margin: u64) {
    let into = now() % 30;
    if into + margin >= 30 {
        std::thread::sleep(std::time::Duration::from_secs(30 - into + 1));
    }
}

/// A private PAM configuration plus secret, state and config locations.
pub struct Sandbox {
    pub root: PathBuf,
    pub confdir: PathBuf,
    pub secrets: PathBuf,
    pub state: PathBuf,
    pub config: PathBuf,
    pub user: String,
    pub uid: u32,
}

fn mkdir(p: &Path, mode: u32) {
    fs::create_dir_all(p).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Writes `text` at `root/rel` with `mode`, creating the parents (fixture trees).
pub fn write_file(root: &Path, rel: &str, text: &str, mode: u32) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, text).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Creates `root/rel` with `mode` (fixture trees).
pub fn make_dir(root: &Path, rel: &str, mode: u32) {
    mkdir(&root.join(rel), mode);
}

/// `true` when the module's own walk from `/` accepts `p` (no symlink, every component
/// owned by root or us, none writable by group or others).
fn path_is_trusted(p: &Path) -> bool {
    let me = rustix::process::geteuid().as_raw();
    pam_totp::store::open_central_dir(p, &[0, me]).is_ok()
}

/// A base directory for sandboxes that the module's central-layout walk accepts.
pub fn tmp_base() -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let _ = fs::create_dir_all(&target);
    if path_is_trusted(&target) {
        return target;
    }
    if is_root() {
        let run = PathBuf::from("/run/pam-totp-tests");
        mkdir(&run, 0o755);
        if path_is_trusted(&run) {
            return run;
        }
    }
    panic!(
        "{} has a component that is a symlink, foreign-owned or group/other-writable, which \
         the module refuses; run the tests from a checkout in a directory you own",
        target.display()
    );
}

impl Sandbox {
    pub fn new(name: &str) -> Sandbox {
        let base = tmp_base();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let root = base.join(format!("{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        mkdir(&root, 0o700);
        let (user, uid) = me();
        let sb = Sandbox {
            confdir: root.join("pam.d"),
            secrets: root.join("secrets"),
            state: root.join("state"),
            config: root.join("pam_totp.conf"),
            root,
            user,
            uid,
        };
        mkdir(&sb.confdir, 0o755);
        mkdir(&sb.secrets, 0o700);
        // The state directory is created by the module itself on first use.
        fs::write(sb.confdir.join("other"), "auth required pam_deny.so\n").unwrap();
        // A small failure delay: libpam's delay is recorded, not slept, by the client.
        sb.write_config("fail_delay_ms = 2000\n");
        sb.service("totp", "");
        sb
    }

    /// Writes the system config file the services point at (mode 0644).
    pub fn write_config(&self, text: &str) {
        fs::write(&self.config, text).unwrap();
        fs::set_permissions(&self.config, fs::Permissions::from_mode(0o644)).unwrap();
    }

    /// The module arguments pointing at this sandbox.
    pub fn base_args(&self) -> String {
        format!(
            "secret={}/%U state_dir={} config={}",
            self.secrets.display(),
            self.state.display(),
            self.config.display()
        )
    }

    /// Writes a service file with one pam_totp line (plus `extra` arguments).
    pub fn service(&self, name: &str, extra: &str) {
        self.service_lines(
            name,
            &format!(
                "auth required {} {} {extra}\n",
                module_path().display(),
                self.base_args()
            ),
        );
    }

    /// Writes a service file verbatim; `@MODULE@` is replaced by the module path.
    pub fn service_lines(&self, name: &str, text: &str) {
        let text = text.replace("@MODULE@", &module_path().display().to_string());
        fs::write(self.confdir.join(name), text).unwrap();
    }

    pub fn secret_path(&self) -> PathBuf {
        self.secrets.join(self.uid.to_string())
    }

    pub fn state_path(&self) -> PathBuf {
        self.state.join(format!("{}.state", self.uid))
    }

    /// Writes the user's central secret file, mode 0600.
    pub fn write_secret(&self, toml: &str) {
        let p = self.secret_path();
        let _ = fs::remove_file(&p);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .unwrap();
        std::io::Write::write_all(&mut f, toml.as_bytes()).unwrap();
    }

    /// A TOTP secret file with `extra` TOML lines.
    pub fn enroll_totp(&self, extra: &str) {
        self.write_secret(&format!(
            "version = 1\nid = \"test-1\"\ntype = \"totp\"\nsecret = \"{SECRET}\"\n{extra}"
        ));
    }

    /// Authenticates as the sandbox user with scripted answers.
    pub fn auth(&self, service: &str, answers: &[&str]) -> Outcome {
        self.auth_as(service, self.user.as_bytes(), answers, 0)
    }

    pub fn auth_as(&self, service: &str, user: &[u8], answers: &[&str], flags: i32) -> Outcome {
        let bytes: Vec<&[u8]> = answers.iter().map(|a| a.as_bytes()).collect();
        auth_raw(&self.confdir, service, user, &bytes, flags)
    }

    /// The state as the store reads it.
    pub fn state(&self) -> pam_totp::store::State {
        pam_totp::store::StateDir::open(&self.state, false)
            .and_then(|d| d.peek(self.uid))
            .unwrap_or_default()
    }

    /// Bytes of a file, or None.
    pub fn read(&self, p: &Path) -> Option<Vec<u8>> {
        fs::read(p).ok()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// What one authentication looked like from the application's side.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub delay_usec: u32,
    pub prompts: Vec<String>,
    pub messages: Vec<String>,
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        pam_totp::pam::codes::code_name(self.code)
    }
}

/// `true` when running as root (some hostile-file cases need other users).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

pub const PAM_SILENT: i32 = ffi::PAM_SILENT;
pub const PAM_DISALLOW_NULL_AUTHTOK: i32 = ffi::PAM_DISALLOW_NULL_AUTHTOK;

// ---------------------------------------------------------------------------------------
// Helpers for the adversarial and crash tests (SECURITY.md §6). Additive only.
// ---------------------------------------------------------------------------------------

/// Answers prompts from a list of byte strings (non-UTF-8, embedded NUL, …); fails the
/// conversation when the list runs out.
pub struct ByteScript {
    answers: Vec<Vec<u8>>,
    pub prompts: Vec<String>,
    pub messages: Vec<String>,
}

impl ByteScript {
    pub fn new(answers: &[&[u8]]) -> ByteScript {
        ByteScript {
            answers: answers.iter().rev().map(|a| a.to_vec()).collect(),
            prompts: Vec::new(),
            messages: Vec::new(),
        }
    }
}

impl Responder for ByteScript {
    fn respond(&mut self, style: Style, message: &str) -> Option<Zeroizing<Vec<u8>>> {
        match style {
            Style::PromptHidden | Style::PromptShown => {
                self.prompts.push(message.to_string());
                self.answers.pop().map(Zeroizing::new)
            }
            Style::Error | Style::Info => {
                self.messages.push(message.to_string());
                None
            }
        }
    }
}

/// One `pam_authenticate` through a private config dir with raw byte answers.
pub fn auth_raw(
    confdir: &Path,
    service: &str,
    user: &[u8],
    answers: &[&[u8]],
    flags: i32,
) -> Outcome {
    let mut script = ByteScript::new(answers);
    let session = Session {
        service: service.into(),
        user: user.to_vec(),
        confdir: Some(confdir.to_path_buf()),
        flags,
        rhost: Some("192.0.2.1".into()),
        skip_fail_delay: true,
    };
    let r = client::authenticate(&session, &mut script).expect("pam_start");
    Outcome {
        code: r.code,
        delay_usec: r.fail_delay_usec,
        prompts: script.prompts,
        messages: script.messages,
    }
}

impl Sandbox {
    /// Authenticates `user` with raw byte answers.
    pub fn auth_bytes(&self, service: &str, user: &[u8], answers: &[&[u8]], flags: i32) -> Outcome {
        auth_raw(&self.confdir, service, user, answers, flags)
    }

    /// Writes a service file whose pam_totp line uses `secret_arg` instead of the central
    /// sandbox secret (e.g. `secret=~/.pam_totp` for the home layout), plus `extra`.
    pub fn service_with_secret(&self, name: &str, secret_arg: &str, extra: &str) {
        self.service_lines(
            name,
            &format!(
                "auth required @MODULE@ {secret_arg} state_dir={} config={} {extra}\n",
                self.state.display(),
                self.config.display()
            ),
        );
    }

    /// The state file of any uid in this sandbox.
    pub fn state_path_of(&self, uid: u32) -> PathBuf {
        self.state.join(format!("{uid}.state"))
    }
}

/// The `Uid:`, `Gid:` and `Groups:` lines of a `/proc/.../status` text (real, effective,
/// saved and filesystem ids, and supplementary groups).
pub fn id_lines(status: &str) -> String {
    status
        .lines()
        .filter(|l| l.starts_with("Uid:") || l.starts_with("Gid:") || l.starts_with("Groups:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The id lines of the calling thread.
pub fn my_thread_ids() -> String {
    id_lines(&fs::read_to_string("/proc/thread-self/status").unwrap_or_default())
}

/// The id lines of every thread of this process, by tid.
pub fn all_thread_ids() -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc/self/task") {
        for e in rd.flatten() {
            let tid = e.file_name().to_string_lossy().into_owned();
            if let Ok(s) = fs::read_to_string(e.path().join("status")) {
                out.push((tid, id_lines(&s)));
            }
        }
    }
    out
}

/// Open descriptors of this process and what they point at.
pub fn open_fds() -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    if let Ok(rd) = fs::read_dir("/proc/self/fd") {
        for e in rd.flatten() {
            let target = fs::read_link(e.path())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            out.insert(e.file_name().to_string_lossy().into_owned(), target);
        }
    }
    // The read_dir handle itself shows up as a dangling entry. Sockets are left out: the
    // only one is glibc's connection to /dev/log, which syslog(3) (behind pam_syslog) opens,
    // keeps and reopens as a process-wide libc state when a syslog daemon comes or goes;
    // the module itself opens no sockets.
    out.retain(|_, t| !t.is_empty() && !t.starts_with("/proc/") && !t.starts_with("socket:"));
    out
}

/// Names ending in `.tmp` in a directory (none when it does not exist).
pub fn tmp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

/// What a path holds, safely: the bytes of a regular file (the first MiB, then size and
/// mtime), or the type, inode and mode of anything else — never reading a FIFO or device.
pub fn snapshot_file(p: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let m = fs::symlink_metadata(p).ok()?;
    if !m.file_type().is_file() {
        return Some(
            format!(
                "{:?} ino={} mode={:o} rdev={}",
                m.file_type(),
                m.ino(),
                m.mode(),
                m.rdev()
            )
            .into_bytes(),
        );
    }
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(p)
        .ok()?;
    let mut out = Vec::new();
    f.take(1 << 20).read_to_end(&mut out).ok()?;
    if m.len() > 1 << 20 {
        out.extend_from_slice(format!("…size={} mtime={}", m.len(), m.mtime()).as_bytes());
    }
    Some(out)
}

/// A snapshot for the invariants of SECURITY.md §6, checked after every call:
/// I1 watched files byte-identical (or, for state files allowed to change, still parsing),
/// I3 every thread's ids as before, I4 the same descriptors open and none left pointing
/// into the watched directories, I5 no temp files in the watched directories.
pub struct Invariants {
    files: Vec<(PathBuf, Option<Vec<u8>>)>,
    dirs: Vec<PathBuf>,
    fds: std::collections::BTreeMap<String, String>,
    ids: String,
}

impl Invariants {
    /// Snapshots `files` and the process; `dirs` are scanned for temp files and fds.
    pub fn take(files: &[PathBuf], dirs: &[PathBuf]) -> Invariants {
        Invariants {
            files: files
                .iter()
                .map(|p| (p.clone(), snapshot_file(p)))
                .collect(),
            dirs: dirs.to_vec(),
            fds: open_fds(),
            ids: id_lines(&fs::read_to_string("/proc/self/status").unwrap()),
        }
    }

    /// Checks I1, I3, I4, I5. `may_change` lists state files a legitimate attempt may have
    /// rewritten: they must then decode (checksum and format hold).
    pub fn check(&self, ctx: &str, may_change: &[PathBuf]) {
        for (p, before) in &self.files {
            let now = snapshot_file(p);
            if &now == before {
                continue;
            }
            assert!(
                may_change.contains(p),
                "I1 [{ctx}]: {} changed ({:?} -> {:?} bytes)",
                p.display(),
                before.as_ref().map(Vec::len),
                now.as_ref().map(Vec::len)
            );
            let bytes = now.unwrap_or_else(|| panic!("I1 [{ctx}]: {} vanished", p.display()));
            assert!(
                pam_totp::store::decode_state_file(&bytes).is_ok(),
                "I1 [{ctx}]: {} changed and does not parse",
                p.display()
            );
        }
        self.check_process(ctx);
    }

    /// I3, I4, I5 only.
    pub fn check_process(&self, ctx: &str) {
        for (tid, ids) in all_thread_ids() {
            assert_eq!(ids, self.ids, "I3 [{ctx}]: thread {tid} ids changed");
        }
        let fds = open_fds();
        assert_eq!(fds, self.fds, "I4 [{ctx}]: descriptors differ");
        for d in &self.dirs {
            let inside = d.display().to_string();
            assert!(
                !fds.values().any(|t| t.starts_with(&inside)),
                "I4 [{ctx}]: a descriptor into {inside} is still open"
            );
            assert_eq!(
                tmp_files(d),
                Vec::<String>::new(),
                "I5 [{ctx}]: temp files in {inside}"
            );
        }
    }
}

/// I7 and I8 for one call: it came back within the lock timeout + 1 s, and no panic reached
/// the host (a caught panic is `PAM_SYSTEM_ERR`, an uncaught one would have killed us).
pub fn assert_bounded(ctx: &str, r: &Outcome, elapsed: std::time::Duration) {
    let bound = pam_totp::store::LOCK_TIMEOUT + std::time::Duration::from_secs(1);
    assert!(elapsed < bound, "I7 [{ctx}]: took {elapsed:?}");
    assert_ne!(r.code, PAM_SYSTEM_ERR, "I8 [{ctx}]: {r:?}");
    assert_ne!(r.code, ffi::PAM_ABORT, "I8 [{ctx}]: {r:?}");
}

/// A base32 secret distinct per `n` (for tests with several users).
pub fn secret_for(n: u8) -> String {
    let bytes: Vec<u8> = (0..20u8)
        .map(|i| i.wrapping_mul(7).wrapping_add(n))
        .collect();
    pam_totp::otp::encode_base32(&bytes).to_string()
}

/// The TOML of a TOTP secret file.
pub fn totp_toml(secret: &str) -> String {
    format!("version = 1\nid = \"test-1\"\ntype = \"totp\"\nsecret = \"{secret}\"\n")
}

/// A throwaway system user for root-only tests, removed (with its home) on drop.
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

fn run_retrying(cmd: &str, args: &[&str]) -> bool {
    run_retrying_why(cmd, args).is_ok()
}

/// Runs useradd/userdel, retrying for up to 60 s while another process on the machine holds
/// the passwd/group/shadow locks (e2e suites add and remove users too).
fn run_retrying_why(cmd: &str, args: &[&str]) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..300 {
        match std::process::Command::new(cmd).args(args).output() {
            Ok(o) if o.status.success() => return Ok(()),
            Ok(o) => {
                last = format!(
                    "{}: {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                let busy = o.status.code() == Some(10)
                    || last.contains("lock")
                    || last.contains("try again");
                if !busy {
                    return Err(last);
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!("still busy after 60 s: {last}"))
}

static USER_COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestUser {
    /// Creates a user `ptadv<pid>x<n>` with its home at `home` (not created; see
    /// [`TestUser::make_home`]). `extra` are more useradd options.
    pub fn create(home: Option<&Path>, extra: &[&str]) -> TestUser {
        let n = USER_COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("ptadv{}x{n}", std::process::id());
        let home = home
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(format!("/home/{name}")));
        Self::create_named(&name, &home, extra)
    }

    /// Creates a user with a given name (`--badname` allows upper case).
    pub fn create_named(name: &str, home: &Path, extra: &[&str]) -> TestUser {
        let home_s = home.display().to_string();
        let mut args = vec!["-M", "-N", "-s", "/usr/sbin/nologin", "-d", home_s.as_str()];
        args.extend_from_slice(extra);
        args.push(name);
        if let Err(why) = run_retrying_why("useradd", &args) {
            panic!("useradd {name}: {why}");
        }
        let pw = pam_totp::sys::getpwnam(name.as_bytes()).expect("new user in passwd");
        TestUser {
            name: name.to_string(),
            uid: pw.uid,
            gid: pw.gid,
            home: home.to_path_buf(),
        }
    }

    /// Creates the home directory owned by the user with `mode`.
    pub fn make_home(&self, mode: u32) {
        fs::create_dir_all(&self.home).unwrap();
        std::os::unix::fs::chown(&self.home, Some(self.uid), Some(self.gid)).unwrap();
        fs::set_permissions(&self.home, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Writes `rel` below the home with `mode`, owned by `owner` (default the user).
    pub fn write(&self, rel: &str, text: &[u8], mode: u32, owner: Option<u32>) -> PathBuf {
        let p = self.home.join(rel);
        let _ = fs::remove_file(&p);
        fs::write(&p, text).unwrap();
        let uid = owner.unwrap_or(self.uid);
        std::os::unix::fs::chown(&p, Some(uid), Some(self.gid)).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    /// Creates a directory below the home, owned by the user.
    pub fn mkdir(&self, rel: &str, mode: u32) -> PathBuf {
        let p = self.home.join(rel);
        fs::create_dir_all(&p).unwrap();
        std::os::unix::fs::chown(&p, Some(self.uid), Some(self.gid)).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // Only homes this test created under /home or the target dir are removed.
        let _ = run_retrying("userdel", &["-f", &self.name]);
        if self.home.starts_with("/home") || self.home.starts_with(tmp_base()) {
            let _ = fs::remove_dir_all(&self.home);
        }
    }
}
