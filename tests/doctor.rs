//! `pam-totp doctor --root DIR` on fixture trees built at run time (owners and modes cannot
//! live in git): one broken tree per check, each asserting the exit status and the exact
//! line, and one tree where everything is right. Needs root (fixture files must be
//! root-owned, as on a real system); skipped otherwise.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

const SECRET: &str = "version = 1\nid = \"abc\"\ntype = \"totp\"\nsecret = \"JBSWY3DPEHPK3PXP\"\n";

const COMMON_AUTH: &str = "auth\t[success=1 default=ignore]\tpam_unix.so nullok\n\
auth\trequisite\t\t\tpam_deny.so\n\
auth\trequired\t\t\tpam_permit.so\n\
auth\toptional\t\t\tpam_cap.so\n";

const SSHD_PAM: &str = "@include common-auth\n\
auth [success=ok ignore=ignore default=die] pam_totp.so\n\
account required pam_nologin.so\n\
@include common-account\n";

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn module_dir() -> String {
    format!("usr/lib/{}-linux-gnu/security", std::env::consts::ARCH)
}

use common::{make_dir as mkdir, write_file as write};

/// A tree where every check passes for user root.
fn good_tree(case: &str) -> tempfile::TempDir {
    let t = tempfile::Builder::new()
        .prefix(&format!("doctor-{case}-"))
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
    write(r, "etc/pam.d/other", "auth required pam_deny.so\n", 0o644);
    write(r, "etc/pam.d/sshd", SSHD_PAM, 0o644);
    write(
        r,
        "etc/pam.d/sudo",
        "@include common-auth\nauth [success=ok ignore=ignore default=die] pam_totp.so secret=/var/lib/pam-totp/secrets/%U\n",
        0o644,
    );
    write(
        r,
        "etc/ssh/sshd_config",
        "Include /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\nUsePAM yes\n",
        0o644,
    );
    write(
        r,
        "etc/ssh/sshd_config.d/10-pam-totp.conf",
        "KbdInteractiveAuthentication yes\n",
        0o644,
    );
    write(
        r,
        &format!("{}/pam_totp.so", module_dir()),
        "\x7fELF",
        0o644,
    );
    mkdir(r, "var/lib/pam-totp/state", 0o700);
    mkdir(r, "var/lib/pam-totp/secrets", 0o700);
    write(r, "var/lib/pam-totp/secrets/0", SECRET, 0o600);
    mkdir(r, "root", 0o700);
    write(r, "root/.pam_totp", SECRET, 0o600);
    write(r, "run/systemd/timesync/synchronized", "", 0o644);
    t
}

fn doctor(root: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pam-totp"))
        .args(["doctor", "--user", "root", "--root"])
        .arg(root)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Builds the good tree, breaks it, runs doctor, checks the status and the exact line.
fn check(case: &str, status: i32, line: &str, breakage: impl FnOnce(&Path)) {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = good_tree(case);
    breakage(t.path());
    let (code, out) = doctor(t.path());
    assert!(
        out.lines().any(|l| l == line),
        "{case}: line not found\nexpected: {line}\noutput:\n{out}"
    );
    assert_eq!(code, status, "{case}: exit status\n{out}");
}

fn sshd_pam(r: &Path, text: &str) {
    write(r, "etc/pam.d/sshd", text, 0o644);
}

fn chown(p: PathBuf, uid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(uid)).unwrap();
}

#[test]
fn a_correct_installation_has_no_problems() {
    if !is_root() {
        return;
    }
    let t = good_tree("good");
    let (code, out) = doctor(t.path());
    assert_eq!(out, "doctor: no problems found\n");
    assert_eq!(code, 0);
}

#[test]
fn a_missing_module_file_is_an_error() {
    let m = module_dir();
    check(
        "module-missing",
        1,
        &format!("error: /etc/pam.d/sshd:2: /{m}/pam_totp.so does not exist: every sshd login fails (libpam cannot load the module). Fix: sudo make install, or install the package"),
        |r| fs::remove_file(r.join(format!("{m}/pam_totp.so"))).unwrap(),
    );
}

#[test]
fn a_group_writable_module_is_an_error() {
    let m = module_dir();
    check(
        "module-mode",
        1,
        &format!("error: /{m}/pam_totp.so: mode 0664 is writable by group or others, who can change the code sshd and sudo run as root. Fix: chmod 0664 /{m}/pam_totp.so")
            .replace("chmod 0664", "chmod 0644"),
        |r| {
            fs::set_permissions(
                r.join(format!("{m}/pam_totp.so")),
                fs::Permissions::from_mode(0o664),
            )
            .unwrap()
        },
    );
}

#[test]
fn a_module_not_owned_by_root_is_an_error() {
    let m = module_dir();
    check(
        "module-owner",
        1,
        &format!("error: /{m}/pam_totp.so: owned by uid 1234, not root: its owner can change the code sshd and sudo run as root. Fix: chown root:root /{m}/pam_totp.so"),
        |r| chown(r.join(format!("{m}/pam_totp.so")), 1234),
    );
}

#[test]
fn a_module_in_a_writable_directory_is_an_error() {
    let m = module_dir();
    check(
        "module-dir",
        1,
        &format!("error: /{m}: directory owned by uid 0 with mode 0777: who can write it can replace the module. Fix: chown root:root /{m}; chmod go-w /{m}"),
        |r| fs::set_permissions(r.join(&m), fs::Permissions::from_mode(0o777)).unwrap(),
    );
}

#[test]
fn a_misspelled_argument_is_named_with_its_correction() {
    check(
        "misspelled",
        1,
        "error: /etc/pam.d/sshd:2: unknown pam_totp argument \"nulok\" (did you mean \"nullok\"?): the module refuses every sshd login (PAM_SERVICE_ERR). Fix: correct or remove it (see pam_totp(8))",
        |r| sshd_pam(r, &SSHD_PAM.replace("pam_totp.so", "pam_totp.so nulok")),
    );
}

#[test]
fn a_bad_argument_value_is_an_error() {
    check(
        "bad-value",
        1,
        "error: /etc/pam.d/sshd:2: bad value for window: expected 0-3 (totp) or 1-20 (hotp): the module refuses every sshd login (PAM_SERVICE_ERR). Fix: see pam_totp(8)",
        |r| sshd_pam(r, &SSHD_PAM.replace("pam_totp.so", "pam_totp.so window=99")),
    );
}

#[test]
fn a_sufficient_password_before_the_code_skips_it() {
    check(
        "sufficient",
        1,
        "error: /etc/pam.d/sshd:1: `sufficient pam_unix.so` can end the auth stack or jump past pam_totp when it succeeds, so sshd logins through it need no code: the password alone logs in. Fix: make it requisite (or @include common-auth) and put pam_totp after it",
        |r| sshd_pam(r, "auth sufficient pam_unix.so\nauth required pam_totp.so\n"),
    );
}

#[test]
fn an_optional_code_is_no_second_factor() {
    check(
        "optional",
        1,
        "error: /etc/pam.d/sshd:2: with control `optional` a failing pam_totp (auth_err, authinfo_unavail, buf_err, conv_err, maxtries, service_err, system_err) still lets sshd logins succeed: a wrong code is ignored. Fix: use [success=ok ignore=ignore default=die] (or requisite)",
        |r| sshd_pam(r, "@include common-auth\nauth optional pam_totp.so\n"),
    );
}

#[test]
fn a_mapping_that_ignores_failures_is_no_second_factor() {
    check(
        "default-ignore",
        1,
        "error: /etc/pam.d/sshd:2: with control `[success=ok default=ignore]` a failing pam_totp (auth_err, authinfo_unavail, buf_err, conv_err, maxtries, service_err, system_err) still lets sshd logins succeed: a wrong code is ignored. Fix: use [success=ok ignore=ignore default=die] (or requisite)",
        |r| sshd_pam(r, "@include common-auth\nauth [success=ok default=ignore] pam_totp.so\n"),
    );
}

#[test]
fn the_code_before_the_password_lets_anyone_lock_the_user_out() {
    check(
        "code-first",
        1,
        "error: /etc/pam.d/sshd:1: pam_totp asks for the code before any password has been checked: anyone who can reach the prompt can use up root's failure budget and lock them out. Fix: put a requisite first factor (@include common-auth) before it, or use AuthenticationMethods publickey,keyboard-interactive",
        |r| sshd_pam(r, "auth required pam_totp.so\n@include common-auth\n"),
    );
}

#[test]
fn a_code_alone_without_a_key_first_is_one_factor() {
    check(
        "code-alone",
        1,
        "error: /etc/pam.d/sshd:1: a correct code alone logs in to sshd: no password or key is checked first. Fix: put a requisite first factor (@include common-auth) before it, or set AuthenticationMethods publickey,keyboard-interactive",
        |r| {
            sshd_pam(
                r,
                "auth [success=done ignore=ignore default=die] pam_totp.so\nauth requisite pam_deny.so\n",
            )
        },
    );
}

#[test]
fn key_and_code_with_the_key_first_is_right() {
    if !is_root() {
        return;
    }
    let t = good_tree("key-and-code");
    sshd_pam(
        t.path(),
        "auth [success=done ignore=ignore default=die] pam_totp.so\nauth requisite pam_deny.so\n",
    );
    write(
        t.path(),
        "etc/ssh/sshd_config.d/10-pam-totp.conf",
        "KbdInteractiveAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\n",
        0o644,
    );
    let (code, out) = doctor(t.path());
    assert_eq!((code, out.as_str()), (0, "doctor: no problems found\n"));
}

#[test]
fn nullok_with_nothing_that_can_succeed_is_a_warning() {
    check(
        "nullok-useless",
        0,
        "warning: /etc/pam.d/sshd:1: nullok has no effect: when pam_totp ignores a user without a secret no other module lets the sshd login succeed, so they are refused anyway. Fix: remove nullok, or for a roll-out follow the line with `auth required pam_permit.so`",
        |r| {
            sshd_pam(
                r,
                "auth [success=done ignore=ignore default=die] pam_totp.so nullok\nauth requisite pam_deny.so\n",
            );
            write(
                r,
                "etc/ssh/sshd_config.d/10-pam-totp.conf",
                "KbdInteractiveAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\n",
                0o644,
            );
        },
    );
}

#[test]
fn nullok_without_a_first_factor_lets_anyone_in() {
    check(
        "nullok-alone",
        1,
        "error: /etc/pam.d/sshd:1: with nullok, a user who has no secret logs in to sshd with nothing checked at all. Fix: put a requisite first factor before it, or remove nullok",
        |r| {
            sshd_pam(
                r,
                "auth [success=ok ignore=ignore default=die] pam_totp.so nullok\nauth required pam_permit.so\n",
            )
        },
    );
}

#[test]
fn a_stack_that_can_never_succeed_is_an_error() {
    check(
        "never",
        1,
        "error: sshd: no path through the auth stack ends in success, so every login is refused. Fix: check the jumps (success=N) and requisite lines around pam_totp",
        |r| {
            sshd_pam(
                r,
                "auth [success=1 default=ignore] pam_unix.so\nauth [success=ok ignore=ignore default=die] pam_totp.so\nauth requisite pam_deny.so\n",
            )
        },
    );
}

#[test]
fn an_include_that_cannot_be_read_is_an_error() {
    check(
        "include",
        1,
        "error: /etc/pam.d/sshd:1: libpam rejects this line (cannot read included /etc/pam.d/common-auht), which fails every sshd login. Fix: correct it",
        |r| sshd_pam(r, &SSHD_PAM.replace("common-auth", "common-auht")),
    );
}

#[test]
fn use_pam_no_in_an_earlier_drop_in_wins() {
    check(
        "usepam",
        1,
        "error: sshd: UsePAM no (/etc/ssh/sshd_config.d/05-local.conf:1): sshd never runs /etc/pam.d/sshd, so no code is asked. Fix: pam-totp enable sshd, or UsePAM yes in /etc/ssh/sshd_config.d/10-pam-totp.conf",
        |r| write(r, "etc/ssh/sshd_config.d/05-local.conf", "UsePAM no\n", 0o644),
    );
}

#[test]
fn debians_keyboard_interactive_no_wins_without_a_drop_in() {
    check(
        "kbd",
        1,
        "error: sshd: KbdInteractiveAuthentication no (/etc/ssh/sshd_config:2) (the first value in sshd_config wins): sshd never shows the code prompt. Fix: pam-totp enable sshd, or KbdInteractiveAuthentication yes in /etc/ssh/sshd_config.d/10-pam-totp.conf, which is Included before it",
        |r| fs::remove_file(r.join("etc/ssh/sshd_config.d/10-pam-totp.conf")).unwrap(),
    );
}

#[test]
fn challenge_response_is_the_same_setting() {
    check(
        "challenge",
        1,
        "error: sshd: KbdInteractiveAuthentication no (/etc/ssh/sshd_config.d/00-old.conf:1) (the first value in sshd_config wins): sshd never shows the code prompt. Fix: pam-totp enable sshd, or KbdInteractiveAuthentication yes in /etc/ssh/sshd_config.d/10-pam-totp.conf, which is Included before it",
        |r| {
            write(
                r,
                "etc/ssh/sshd_config.d/00-old.conf",
                "ChallengeResponseAuthentication no\n",
                0o644,
            )
        },
    );
}

#[test]
fn authentication_methods_without_keyboard_interactive_never_ask() {
    check(
        "methods",
        1,
        "error: sshd: AuthenticationMethods publickey (/etc/ssh/sshd_config.d/10-pam-totp.conf:2) has no keyboard-interactive: the code is never asked. Fix: AuthenticationMethods publickey,keyboard-interactive",
        |r| {
            write(
                r,
                "etc/ssh/sshd_config.d/10-pam-totp.conf",
                "KbdInteractiveAuthentication yes\nAuthenticationMethods publickey\n",
                0o644,
            )
        },
    );
}

#[test]
fn a_state_directory_open_to_others_is_an_error() {
    check(
        "state-mode",
        1,
        "error: /var/lib/pam-totp/state: mode 0755, expected 0700. Fix: chmod 0700 /var/lib/pam-totp/state",
        |r| {
            fs::set_permissions(
                r.join("var/lib/pam-totp/state"),
                fs::Permissions::from_mode(0o755),
            )
            .unwrap()
        },
    );
}

#[test]
fn a_state_directory_owned_by_a_user_is_an_error() {
    check(
        "state-owner",
        1,
        "error: /var/lib/pam-totp/state: owned by uid 1234, not root: that user can reset anyone's failure counters. Fix: chown root:root /var/lib/pam-totp/state",
        |r| chown(r.join("var/lib/pam-totp/state"), 1234),
    );
}

#[test]
fn a_missing_state_directory_is_created_at_the_first_login() {
    check(
        "state-missing",
        0,
        "warning: /var/lib/pam-totp/state: missing; the module creates it at the first login. Fix: mkdir -m 0700 /var/lib/pam-totp/state",
        |r| fs::remove_dir(r.join("var/lib/pam-totp/state")).unwrap(),
    );
}

#[test]
fn a_readable_secrets_directory_is_a_warning() {
    check(
        "secrets-dir",
        0,
        "warning: /var/lib/pam-totp/secrets: mode 0755, expected 0700: others can see who is enrolled. Fix: chmod 0700 /var/lib/pam-totp/secrets",
        |r| {
            fs::set_permissions(
                r.join("var/lib/pam-totp/secrets"),
                fs::Permissions::from_mode(0o755),
            )
            .unwrap()
        },
    );
}

#[test]
fn a_user_without_a_secret_cannot_log_in() {
    check(
        "no-secret",
        1,
        "error: /root/.pam_totp: root has no secret, so cannot log in (sshd). Fix: pam-totp enroll (as root)",
        |r| fs::remove_file(r.join("root/.pam_totp")).unwrap(),
    );
}

#[test]
fn a_missing_central_secret_is_named_with_the_service() {
    check(
        "no-central",
        1,
        "error: /var/lib/pam-totp/secrets/0: root has no secret, so cannot log in (sudo). Fix: pam-totp enroll --user root (as root)",
        |r| fs::remove_file(r.join("var/lib/pam-totp/secrets/0")).unwrap(),
    );
}

#[test]
fn a_secret_readable_by_others_is_refused() {
    check(
        "secret-mode",
        1,
        "error: /root/.pam_totp: mode 0644, expected no bits of 0077 and no setuid/setgid/sticky: the module refuses root's logins (sshd). Fix: chown root and chmod 0600 the file (0700 for its directories, none writable by others)",
        |r| {
            fs::set_permissions(r.join("root/.pam_totp"), fs::Permissions::from_mode(0o644))
                .unwrap()
        },
    );
}

#[test]
fn a_symlinked_secret_is_refused() {
    check(
        "secret-link",
        1,
        "error: /root/.pam_totp: is a symlink: the module refuses root's logins (sshd). Fix: chown root and chmod 0600 the file (0700 for its directories, none writable by others)",
        |r| {
            fs::rename(r.join("root/.pam_totp"), r.join("root/elsewhere")).unwrap();
            symlink("elsewhere", r.join("root/.pam_totp")).unwrap();
        },
    );
}

#[test]
fn a_garbled_secret_is_an_error() {
    check(
        "secret-garbled",
        1,
        "error: /root/.pam_totp: garbled (line 1: expected '=' after the key): root's logins fail (sshd). Fix: enroll again (pam-totp enroll --force)",
        |r| write(r, "root/.pam_totp", "this is not toml\n", 0o600),
    );
}

#[test]
fn a_bad_config_file_is_an_error() {
    check(
        "config",
        1,
        "error: /etc/security/pam_totp.conf: line 1: unknown key \"colour\": the module refuses every login (PAM_SERVICE_ERR). Fix: correct it (see pam_totp.conf(5))",
        |r| write(r, "etc/security/pam_totp.conf", "colour = 1\n", 0o644),
    );
}

#[test]
fn an_unknown_clock_state_is_a_warning() {
    check(
        "clock",
        0,
        "warning: cannot tell whether the clock is synchronised (no timedatectl answer, no /run/systemd/timesync/synchronized). Fix: check that NTP (chrony, ntpd or systemd-timesyncd) runs",
        |r| fs::remove_file(r.join("run/systemd/timesync/synchronized")).unwrap(),
    );
}

#[test]
fn the_shipped_pam_d_and_sshd_files_have_no_errors() {
    if !is_root() {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (pam, sshd) in [
        ("sshd-key-and-code", "pam-totp.conf"),
        ("sshd-password-and-code", "pam-totp-password-and-code.conf"),
        (
            "sshd-password-and-code-one-prompt",
            "pam-totp-password-and-code.conf",
        ),
        ("sshd-skip-group", "pam-totp-password-and-code.conf"),
        ("sshd-skip-network", "pam-totp-password-and-code.conf"),
    ] {
        let t = good_tree(pam);
        let r = t.path();
        fs::copy(
            repo.join("config/pam.d").join(pam),
            r.join("etc/pam.d/sshd"),
        )
        .unwrap();
        fs::copy(repo.join("config/pam.d/sudo"), r.join("etc/pam.d/sudo")).unwrap();
        fs::copy(
            repo.join("config/sshd_config.d").join(sshd),
            r.join("etc/ssh/sshd_config.d/10-pam-totp.conf"),
        )
        .unwrap();
        for f in ["common-account", "common-session", "common-password"] {
            write(r, &format!("etc/pam.d/{f}"), "", 0o644);
        }
        write(r, "etc/pam.d/common-session-noninteractive", "", 0o644);
        let (code, out) = doctor(r);
        assert_eq!(code, 0, "{pam}:\n{out}");
        assert!(!out.contains("error:"), "{pam}:\n{out}");
    }
}
