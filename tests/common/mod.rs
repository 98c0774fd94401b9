//! Shared helpers for tests that drive the built `libpam_totp.so` through the real libpam
//! with a private configuration directory (`pam_start_confdir`), no root needed.
//!
//! Every sandbox lives under `CARGO_TARGET_TMPDIR`: the module's central-layout walk refuses
//! world-writable directories such as /tmp, and every component of the target dir is owned
//! by root or the user running the tests.

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

impl Sandbox {
    pub fn new(name: &str) -> Sandbox {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        mkdir(&base, 0o755);
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
        let mut script = Script::new(answers);
        let session = Session {
            service: service.into(),
            user: user.to_vec(),
            confdir: Some(self.confdir.clone()),
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

/// Answers prompts from a list; fails the conversation when the list runs out.
pub struct Script {
    answers: Vec<Vec<u8>>,
    pub prompts: Vec<String>,
    pub messages: Vec<String>,
}

impl Script {
    pub fn new(answers: &[&str]) -> Script {
        Script {
            answers: answers
                .iter()
                .rev()
                .map(|a| a.as_bytes().to_vec())
                .collect(),
            prompts: Vec::new(),
            messages: Vec::new(),
        }
    }
}

impl Responder for Script {
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

/// `true` when running as root (some hostile-file cases need other users).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

pub const PAM_SILENT: i32 = ffi::PAM_SILENT;
pub const PAM_DISALLOW_NULL_AUTHTOK: i32 = ffi::PAM_DISALLOW_NULL_AUTHTOK;
