//! `pam-totp enable` / `disable` / `enable --confirm` on fixture trees (`--root DIR`): the
//! files written, the byte-for-byte rollback after the timeout, disable, and the refusals.
//! Needs root (the files must be root-owned, as on a real system); skipped otherwise.
//! The real sshd login with key + code is the e2e suite's job (scripts/e2e.sh).

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "version = 1\nid = \"abc\"\ntype = \"totp\"\nsecret = \"JBSWY3DPEHPK3PXP\"\n";

const COMMON_AUTH: &str = "auth\t[success=1 default=ignore]\tpam_unix.so nullok\n\
auth\trequisite\t\t\tpam_deny.so\n\
auth\trequired\t\t\tpam_permit.so\n";

/// Debian 12's /etc/pam.d/sshd, shortened.
const SSHD_PAM: &str = "# PAM configuration for the Secure Shell service\n\
\n\
# Standard Un*x authentication.\n\
@include common-auth\n\
\n\
account    required     pam_nologin.so\n\
@include common-account\n\
session    optional     pam_mail.so standard noenv # [1]\n\
@include common-password\n";

const SUDO_PAM: &str = "#%PAM-1.0\n\
session    required   pam_limits.so\n\
@include common-auth\n\
@include common-account\n\
@include common-session-noninteractive\n";

const SSHD_CONFIG: &str = "Include /etc/ssh/sshd_config.d/*.conf\n\
KbdInteractiveAuthentication no\n\
UsePAM yes\n";

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

use common::{make_dir as mkdir, write_file as write};

fn tree(case: &str) -> tempfile::TempDir {
    let t = tempfile::Builder::new()
        .prefix(&format!("enable-{case}-"))
        .tempdir_in(common::tmp_base())
        .unwrap();
    let r = t.path();
    fs::set_permissions(r, fs::Permissions::from_mode(0o755)).unwrap();
    write(r, "etc/pam.d/common-auth", COMMON_AUTH, 0o644);
    write(
        r,
        "etc/pam.d/common-account",
        "account required pam_unix.so\n",
        0o644,
    );
    write(
        r,
        "etc/pam.d/common-password",
        "password required pam_unix.so\n",
        0o644,
    );
    write(
        r,
        "etc/pam.d/common-session-noninteractive",
        "session required pam_unix.so\n",
        0o644,
    );
    write(r, "etc/pam.d/sshd", SSHD_PAM, 0o640);
    write(r, "etc/pam.d/sudo", SUDO_PAM, 0o644);
    write(r, "etc/ssh/sshd_config", SSHD_CONFIG, 0o644);
    mkdir(r, "etc/ssh/sshd_config.d", 0o755);
    write(
        r,
        &format!(
            "usr/lib/{}-linux-gnu/security/pam_totp.so",
            std::env::consts::ARCH
        ),
        "\x7fELF",
        0o644,
    );
    mkdir(r, "var/lib/pam-totp/state", 0o700);
    mkdir(r, "var/lib/pam-totp/secrets", 0o700);
    write(r, "var/lib/pam-totp/secrets/0", SECRET, 0o600);
    mkdir(r, "root/.ssh", 0o700);
    write(
        r,
        "root/.ssh/authorized_keys",
        "ssh-ed25519 AAAA test\n",
        0o600,
    );
    write(r, "root/.pam_totp", SECRET, 0o600);
    t
}

fn cli(root: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pam-totp"))
        .args(args)
        .arg("--root")
        .arg(root)
        .stdin(Stdio::null())
        .env_remove("SUDO_USER")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Every file below `dir` with its bytes and mode, except the backup area.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, u32)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.ends_with("var/lib/pam-totp/backup") {
                continue;
            }
            let md = fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                todo.push(p);
            } else {
                out.push((p.clone(), fs::read(&p).unwrap(), md.mode()));
            }
        }
    }
    out.sort();
    out
}

fn backups(root: &Path) -> Vec<PathBuf> {
    fs::read_dir(root.join("var/lib/pam-totp/backup"))
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const KEY_AND_CODE_PAM: &str = "# PAM configuration for the Secure Shell service\n\
\n\
# Standard Un*x authentication.\n\
# pam-totp enable: begin (\"pam-totp disable\" removes these lines)\n\
# Key + code: sshd checked the key; the code is the only thing asked here.\n\
auth       [success=done ignore=ignore default=die]   pam_totp.so\n\
auth       requisite    pam_deny.so\n\
# pam-totp enable: end\n\
#pam-totp-disabled# @include common-auth\n\
\n\
account    required     pam_nologin.so\n\
@include common-account\n\
session    optional     pam_mail.so standard noenv # [1]\n\
@include common-password\n";

const KEY_AND_CODE_DROP_IN: &str =
    "# Written by \"pam-totp enable sshd\"; \"pam-totp disable sshd\" removes it.\n\
# pam-totp enable sshd --key-and-code\n\
# The first value of a setting wins: /etc/ssh/sshd_config Includes this file at its top.\n\
UsePAM yes\n\
KbdInteractiveAuthentication yes\n\
AuthenticationMethods publickey,keyboard-interactive\n";

#[test]
fn key_and_code_writes_the_expected_files_and_a_confirmed_change_stays() {
    if !is_root() {
        return;
    }
    let t = tree("key");
    let r = t.path();
    let (code, out) = cli(
        r,
        &[
            "enable",
            "sshd",
            "--key-and-code",
            "--user",
            "root",
            "--timeout",
            "2",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("pam-totp: enabled sshd: public key + code\n"),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(r.join("etc/pam.d/sshd")).unwrap(),
        KEY_AND_CODE_PAM
    );
    assert_eq!(
        fs::metadata(r.join("etc/pam.d/sshd")).unwrap().mode() & 0o7777,
        0o640
    );
    assert_eq!(
        fs::read_to_string(r.join("etc/ssh/sshd_config.d/10-pam-totp.conf")).unwrap(),
        KEY_AND_CODE_DROP_IN
    );
    let (code, out) = cli(r, &["doctor", "--user", "root"]);
    assert_eq!(code, 0, "doctor after enable:\n{out}");
    let (code, out) = cli(r, &["enable", "--confirm"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("pam-totp: confirmed; sshd keeps asking for the code."),
        "{out}"
    );
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(
        fs::read_to_string(r.join("etc/pam.d/sshd")).unwrap(),
        KEY_AND_CODE_PAM
    );
    let b = backups(r);
    assert_eq!(b.len(), 1);
    assert!(!b[0].join("rolled-back").exists());
    let (code, out) = cli(r, &["enable", "--confirm"]);
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "pam-totp: nothing to confirm: no change of pam-totp enable is waiting (or it was rolled back)\n"
    );
}

#[test]
fn an_unconfirmed_change_is_rolled_back_byte_for_byte() {
    if !is_root() {
        return;
    }
    let t = tree("rollback");
    let r = t.path();
    let before = snapshot(r);
    let (code, out) = cli(
        r,
        &[
            "enable",
            "sshd",
            "--password-and-code",
            "--nullok",
            "--user",
            "root",
            "--timeout",
            "1",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let pam = fs::read_to_string(r.join("etc/pam.d/sshd")).unwrap();
    assert!(
        pam.contains("@include common-auth\n# pam-totp enable: begin (\"pam-totp disable\" removes these lines)\nauth       [success=ok ignore=ignore default=die]   pam_totp.so nullok\n# pam-totp enable: end\n"),
        "{pam}"
    );
    assert_ne!(snapshot(r), before);
    let b = backups(r);
    wait_for("the rollback", || b[0].join("rolled-back").exists());
    assert_eq!(snapshot(r), before);
    let (code, out) = cli(r, &["enable", "--confirm"]);
    assert_eq!(
        (code, out.starts_with("pam-totp: nothing to confirm")),
        (1, true)
    );
}

#[test]
fn sudo_enable_then_disable_restores_the_original_and_cancels_the_rollback() {
    if !is_root() {
        return;
    }
    let t = tree("sudo");
    let r = t.path();
    let before = snapshot(r);
    let (code, out) = cli(r, &["enable", "sudo", "--user", "root", "--timeout", "60"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        fs::read_to_string(r.join("etc/pam.d/sudo")).unwrap(),
        SUDO_PAM.replace(
            "@include common-auth\n",
            "@include common-auth\n# pam-totp enable: begin (\"pam-totp disable\" removes these lines)\nauth       [success=ok ignore=ignore default=die]   pam_totp.so secret=/var/lib/pam-totp/secrets/%U\n# pam-totp enable: end\n"
        )
    );
    let (code, out) = cli(r, &["enable", "sshd", "--key-and-code", "--user", "root"]);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("pam-totp: an unconfirmed change is pending"),
        "{out}"
    );
    let (code, out) = cli(r, &["disable", "sudo"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("pam-totp: restored /etc/pam.d/sudo\n"),
        "{out}"
    );
    assert_eq!(snapshot(r), before);
    let first = backups(r).into_iter().min().unwrap();
    assert!(first.join("cancelled").exists());
    let (code, _) = cli(r, &["disable", "sudo"]);
    assert_eq!(code, 1);
}

#[test]
fn disable_sshd_undoes_key_and_code() {
    if !is_root() {
        return;
    }
    let t = tree("disable");
    let r = t.path();
    let before = snapshot(r);
    let (code, out) = cli(r, &["enable", "sshd", "--key-and-code", "--user", "root"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = cli(r, &["disable", "sshd"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(snapshot(r), before);
}

#[test]
fn enable_refuses_when_the_admin_has_no_secret() {
    if !is_root() {
        return;
    }
    let t = tree("nosecret");
    let r = t.path();
    fs::remove_file(r.join("root/.pam_totp")).unwrap();
    let before = snapshot(r);
    let (code, out) = cli(r, &["enable", "sshd", "--key-and-code", "--user", "root"]);
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "pam-totp: refusing: root has no secret yet at /root/.pam_totp and could not log in afterwards; first run pam-totp enroll (as root)\n"
    );
    assert_eq!(snapshot(r), before);
}

#[test]
fn enable_refuses_when_an_earlier_sshd_file_wins() {
    if !is_root() {
        return;
    }
    let t = tree("earlier");
    let r = t.path();
    write(
        r,
        "etc/ssh/sshd_config.d/05-local.conf",
        "KbdInteractiveAuthentication no\n",
        0o644,
    );
    let before = snapshot(r);
    let (code, out) = cli(
        r,
        &["enable", "sshd", "--password-and-code", "--user", "root"],
    );
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "pam-totp: refusing: with the change in place pam-totp doctor finds: sshd: KbdInteractiveAuthentication no (/etc/ssh/sshd_config.d/05-local.conf:1) (the first value in sshd_config wins): sshd never shows the code prompt. Fix: pam-totp enable sshd, or KbdInteractiveAuthentication yes in /etc/ssh/sshd_config.d/10-pam-totp.conf, which is Included before it\n"
    );
    assert_eq!(snapshot(r), before);
}

#[test]
fn enable_refuses_a_sudo_file_without_a_first_factor() {
    if !is_root() {
        return;
    }
    let t = tree("nofirst");
    let r = t.path();
    write(r, "etc/pam.d/sudo", "account required pam_unix.so\n", 0o644);
    let (code, out) = cli(r, &["enable", "sudo", "--user", "root"]);
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "pam-totp: /etc/pam.d/sudo has no auth line (no password is checked): put @include common-auth in it first\n"
    );
}
