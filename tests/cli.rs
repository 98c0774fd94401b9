//! The `pam-totp` binary as users and scripts see it: exit status and exact messages, file
//! modes under any umask, refusal of symlinks and existing files, import of files made by
//! Debian's `google-authenticator`, secrets accepted by the module through libpam, and `try`
//! and `enroll` driven through a pseudo-terminal.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_pam-totp");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run pam-totp")
}

/// Runs under `sh -c 'umask U; exec pam-totp ...'`.
fn run_umask(umask: &str, args: &[&str]) -> Output {
    let mut script = format!("umask {umask}; exec \"$0\"");
    for i in 1..=args.len() {
        // "${10}", not "$10" (which sh reads as "$1" followed by "0").
        script.push_str(&format!(" \"${{{i}}}\""));
    }
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sh")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// A libpam sandbox whose pam_totp.conf also tells the CLI where secrets and state are.
fn sandbox(name: &str) -> Sandbox {
    let sb = Sandbox::new(name);
    sb.write_config(&format!(
        "secret = \"{}/%U\"\nstate_dir = \"{}\"\nfail_delay_ms = 2000\n",
        sb.secrets.display(),
        sb.state.display()
    ));
    sb
}

fn cfg(sb: &Sandbox) -> String {
    sb.config.display().to_string()
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn secret_of(p: &Path) -> pam_totp::store::Secret {
    pam_totp::store::Secret::parse(&fs::read(p).unwrap(), p).unwrap()
}

fn python() -> Option<&'static str> {
    Command::new("python3")
        .arg("-c")
        .arg("import pty")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| "python3")
}

#[test]
fn help_exits_0_and_usage_errors_exit_2_with_one_line() {
    let o = run(&["--help"]);
    assert_eq!(code(&o), 0);
    for c in [
        "enroll",
        "import-google-authenticator",
        "status",
        "reset",
        "try",
    ] {
        assert!(stdout(&o).contains(c), "{c}");
        let h = run(&[c, "--help"]);
        assert_eq!(code(&h), 0, "{c}");
        assert!(
            stdout(&h).starts_with(&format!("Usage: pam-totp {c}")),
            "{c}"
        );
    }
    let o = run(&["frob"]);
    assert_eq!(code(&o), 2);
    assert_eq!(
        stderr(&o),
        "pam-totp: unknown command \"frob\" (see pam-totp --help)\n"
    );
    let o = run(&[
        "enroll",
        "--digits",
        "9",
        "--secret",
        SECRET,
        "--no-confirm",
    ]);
    assert_eq!(code(&o), 2);
    assert_eq!(
        stderr(&o),
        "pam-totp: --digits 9: expected 6-8 (see pam-totp enroll --help)\n"
    );
    let o = run(&["status", "--colour"]);
    assert_eq!(code(&o), 2);
    assert_eq!(
        stderr(&o),
        "pam-totp: unknown option \"--colour\" (see pam-totp status --help)\n"
    );
    let o = run(&["enroll", "--type", "hotp", "--period", "60", "--no-confirm"]);
    assert_eq!(code(&o), 2);
    assert_eq!(
        stderr(&o),
        "pam-totp: --period applies to --type totp only (see pam-totp enroll --help)\n"
    );
}

#[test]
fn a_new_secret_is_never_printed_into_a_pipe() {
    let sb = sandbox("cli-pipe");
    let o = run(&["enroll", "--no-confirm", "--config", &cfg(&sb)]);
    assert_eq!(code(&o), 1);
    assert_eq!(
        stderr(&o),
        "pam-totp: standard output is not a terminal: refusing to print a new secret there (pass --secret to provision from a script)\n"
    );
    assert!(stdout(&o).is_empty());
    assert!(!sb.secret_path().exists());
    let o = run(&["enroll", "--secret", SECRET, "--config", &cfg(&sb)]);
    assert_eq!(code(&o), 1);
    assert_eq!(
        stderr(&o),
        "pam-totp: no terminal to ask for the first code on: pass --no-confirm (with --secret in scripts)\n"
    );
    let o = run(&["try"]);
    assert_eq!(code(&o), 1);
    assert_eq!(
        stderr(&o),
        "pam-totp: try is interactive: run it on a terminal (standard input and output)\n"
    );
}

#[test]
fn files_are_0600_and_new_directories_0700_under_umask_000_and_077() {
    let sb = sandbox("cli-umask");
    for umask in ["000", "077", "022"] {
        let out = sb.root.join(format!("u{umask}/nested/secret"));
        let o = run_umask(
            umask,
            &[
                "enroll",
                "--secret",
                SECRET,
                "--no-confirm",
                "--scratch-codes",
                "2",
                "--output",
                out.to_str().unwrap(),
                "--config",
                &cfg(&sb),
            ],
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(mode(&out), 0o600, "umask {umask}");
        assert_eq!(mode(out.parent().unwrap()), 0o700, "umask {umask}");
        assert_eq!(mode(out.parent().unwrap().parent().unwrap()), 0o700);
        assert_eq!(fs::metadata(&out).unwrap().uid(), sb.uid);
        let s = secret_of(&out);
        assert_eq!(
            s.key.bytes(),
            pam_totp::otp::decode_base32(SECRET).unwrap().bytes()
        );
        assert_eq!(s.scratch.len(), 2);
        assert_eq!(s.id.len(), 16);
        let names: Vec<_> = fs::read_dir(out.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temp file left: {names:?}");
    }
}

#[test]
fn provisioning_with_a_given_secret_prints_the_uri_and_scratch_codes_back() {
    let sb = sandbox("cli-provision");
    let o = run(&[
        "enroll",
        "--secret",
        SECRET,
        "--no-confirm",
        "--issuer",
        "Example Co",
        "--label",
        "alice@example",
        "--digits",
        "8",
        "--algorithm",
        "sha256",
        "--window",
        "2",
        "--config",
        &cfg(&sb),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!("otpauth://totp/Example%20Co:alice@example?secret={SECRET}&issuer=Example%20Co&algorithm=SHA256&digits=8&period=30")
    );
    assert_eq!(
        lines[1],
        format!(
            "Wrote {} (central layout, owner {}, mode 0600).",
            sb.secret_path().display(),
            if is_root() {
                "root".to_string()
            } else {
                sb.user.clone()
            }
        )
    );
    assert_eq!(
        lines[2],
        "Scratch codes (each works once, shown only now; keep them somewhere safe):"
    );
    assert_eq!(lines.len(), 3 + 5);
    for l in &lines[3..] {
        let c = l.trim();
        assert_eq!(c.len(), 19, "{c}");
        assert!(!fs::read_to_string(sb.secret_path())
            .unwrap()
            .contains(&c.replace('-', "")));
    }
    assert_eq!(stderr(&o), "");
    let s = secret_of(&sb.secret_path());
    assert_eq!(s.digits, 8);
    assert_eq!(s.window, Some(2));
    assert_eq!(s.algorithm, pam_totp::otp::Algorithm::Sha256);
}

#[test]
fn an_existing_secret_is_kept_without_force_and_replaced_with_it() {
    let sb = sandbox("cli-exists");
    let base = [
        "enroll",
        "--secret",
        SECRET,
        "--no-confirm",
        "--scratch-codes",
        "0",
    ];
    let c = cfg(&sb);
    let mut args = base.to_vec();
    args.extend(["--config", &c]);
    assert_eq!(code(&run(&args)), 0);
    let before = fs::read(sb.secret_path()).unwrap();
    let o = run(&args);
    assert_eq!(code(&o), 1);
    assert_eq!(
        stderr(&o),
        format!(
            "pam-totp: {} already exists; pass --force to replace it (the old secret then stops working)\n",
            sb.secret_path().display()
        )
    );
    assert!(
        stdout(&o).is_empty(),
        "nothing secret shown before refusing"
    );
    assert_eq!(fs::read(sb.secret_path()).unwrap(), before);
    args.push("--force");
    assert_eq!(code(&run(&args)), 0);
    assert_ne!(secret_of(&sb.secret_path()).id, {
        pam_totp::store::Secret::parse(&before, Path::new("x"))
            .unwrap()
            .id
    });
}

#[test]
fn a_symlink_at_the_target_or_on_its_path_is_refused() {
    let sb = sandbox("cli-symlink");
    let victim = sb.root.join("victim");
    fs::write(&victim, "keep").unwrap();
    std::os::unix::fs::symlink(&victim, sb.secret_path()).unwrap();
    for force in [false, true] {
        let mut args = vec!["enroll", "--secret", SECRET, "--no-confirm"];
        let c = cfg(&sb);
        args.extend(["--config", &c]);
        if force {
            args.push("--force");
        }
        let o = run(&args);
        assert_eq!(code(&o), 1);
        assert_eq!(
            stderr(&o),
            format!(
                "pam-totp: {}: unsafe: is a symlink; refusing to write through or over it\n",
                sb.secret_path().display()
            )
        );
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
    }
    // A symlinked directory on the way.
    let real = sb.root.join("real");
    fs::create_dir(&real).unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&real, sb.root.join("link")).unwrap();
    let out = sb.root.join("link/secret");
    let o = run(&[
        "enroll",
        "--secret",
        SECRET,
        "--no-confirm",
        "--output",
        out.to_str().unwrap(),
        "--config",
        &cfg(&sb),
    ]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("link: unsafe: not a directory (or a symlink)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(fs::read_dir(&real).unwrap().count(), 0);
}

fn scratch_codes(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.starts_with("  ") && l.trim().len() == 19)
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn an_enrolled_secret_and_its_scratch_codes_are_accepted_by_the_module_through_libpam() {
    let sb = sandbox("cli-libpam");
    let o = run(&[
        "enroll",
        "--secret",
        SECRET,
        "--no-confirm",
        "--scratch-codes",
        "2",
        "--config",
        &cfg(&sb),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let scratch = scratch_codes(&stdout(&o));
    assert_eq!(scratch.len(), 2);
    avoid_step_edge(3);
    let r = sb.auth("totp", &[&totp_now(SECRET)]);
    assert_eq!(r.name(), "PAM_SUCCESS", "{r:?}");
    let r = sb.auth("totp", &[&scratch[0]]);
    assert_eq!(r.name(), "PAM_SUCCESS", "{r:?}");
    let r = sb.auth("totp", &[&scratch[0]]);
    assert_eq!(r.name(), "PAM_AUTH_ERR", "{r:?}");
    let st = run(&["status", "--config", &cfg(&sb)]);
    assert_eq!(code(&st), 0, "{}", stderr(&st));
    let text = stdout(&st);
    assert!(text.contains("enrolled:      yes\n"), "{text}");
    assert!(text.contains("scratch codes: 1 left of 2\n"), "{text}");
    assert!(
        text.contains("codes:         TOTP, SHA1, 6 digits, 30 s period, window ±1\n"),
        "{text}"
    );
    assert!(!text.contains(SECRET));
}

#[test]
fn status_shows_failures_and_lockout_and_reset_clears_them() {
    let sb = sandbox("cli-status");
    let o = run(&["status", "--config", &cfg(&sb)]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains(&format!(
        "enrolled:      no (no secret file at {})\n",
        sb.secret_path().display()
    )));
    let c = cfg(&sb);
    assert_eq!(
        code(&run(&[
            "enroll",
            "--secret",
            SECRET,
            "--no-confirm",
            "--config",
            &c
        ])),
        0
    );
    let wrong = wrong_code(SECRET);
    for _ in 0..5 {
        assert_eq!(sb.auth("totp", &[&wrong]).name(), "PAM_AUTH_ERR");
    }
    assert_eq!(sb.auth("totp", &[&wrong]).name(), "PAM_MAXTRIES");
    let o = run(&["status", "--config", &c]);
    let text = stdout(&o);
    assert!(
        text.contains(
            "failures:      5 in the last 15 min (limit 5), 5 in the last 24 h (limit 8)\n"
        ),
        "{text}"
    );
    assert!(text.contains("lockout:       yes, 1"), "{text}");
    assert!(text.contains("last success:  never\n"), "{text}");
    let o = run(&["reset", "--config", &c]);
    if !is_root() {
        assert_eq!(code(&o), 1);
        assert_eq!(
            stderr(&o),
            format!(
                "pam-totp: reset needs root (try: sudo pam-totp reset --user {})\n",
                sb.user
            )
        );
        return;
    }
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "Reset {} (uid {}): cleared 5 recorded failures (the lockout is lifted).\n",
            sb.user, sb.uid
        )
    );
    let text = stdout(&run(&["status", "--config", &c]));
    assert!(text.contains("lockout:       none\n"), "{text}");
    assert!(
        text.contains("failures:      0 in the last 15 min"),
        "{text}"
    );
    let o = run(&["reset", "--config", &c]);
    assert_eq!(
        stdout(&o),
        format!(
            "Nothing to reset for {} (uid {}): no failures, no lockout.\n",
            sb.user, sb.uid
        )
    );
    avoid_step_edge(3);
    assert_eq!(sb.auth("totp", &[&totp_now(SECRET)]).name(), "PAM_SUCCESS");
}

#[test]
fn reset_clears_a_watermark_from_the_future() {
    if !is_root() {
        eprintln!("skipped: reset needs root");
        return;
    }
    let sb = sandbox("cli-future");
    let c = cfg(&sb);
    assert_eq!(
        code(&run(&[
            "enroll",
            "--secret",
            SECRET,
            "--no-confirm",
            "--config",
            &c
        ])),
        0
    );
    // A login with the code of a day ahead (a phone clock that was wrong) needs window 3
    // and a clock ahead; simulate its effect directly in the state.
    let id = secret_of(&sb.secret_path()).id;
    let dir = pam_totp::store::StateDir::open(&sb.state, true).unwrap();
    let mut locked = dir.lock(sb.uid).unwrap();
    let st = pam_totp::store::State {
        secret_id: id,
        last_step: Some(now() / 30 + 2880),
        ..Default::default()
    };
    locked.save(&st).unwrap();
    drop(locked);
    let text = stdout(&run(&["status", "--config", &c]));
    assert!(
        text.contains("watermark:     from the future (2880 steps ahead)"),
        "{text}"
    );
    avoid_step_edge(3);
    assert_eq!(
        sb.auth("totp", &[&totp_now(SECRET)]).name(),
        "PAM_AUTHINFO_UNAVAIL"
    );
    let o = run(&["reset", "--config", &c]);
    assert_eq!(
        stdout(&o),
        format!(
            "Reset {} (uid {}): cleared a replay watermark 2880 steps in the future.\n",
            sb.user, sb.uid
        )
    );
    assert_eq!(sb.auth("totp", &[&totp_now(SECRET)]).name(), "PAM_SUCCESS");
}

/// Runs Debian's `google-authenticator` to make a file, or `None` when it is missing.
fn google_authenticator(path: &Path, args: &[&str]) -> Option<String> {
    let o = Command::new("google-authenticator")
        .args(args)
        .args(["-f", "-q", "-Q", "NONE", "-s"])
        .arg(path)
        .stdin(Stdio::null())
        .output();
    match o {
        Ok(o) if o.status.success() => {
            let text = fs::read_to_string(path).unwrap();
            Some(text.lines().next().unwrap().to_string())
        }
        Ok(o) => panic!(
            "google-authenticator failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => {
            eprintln!("skipped: google-authenticator (libpam-google-authenticator) not installed");
            None
        }
    }
}

fn ga_dir(sb: &Sandbox) -> PathBuf {
    let d = sb.root.join("ga");
    fs::create_dir_all(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
    d
}

#[test]
fn a_totp_file_made_by_google_authenticator_is_imported_with_its_scratch_codes() {
    let sb = sandbox("cli-ga-totp");
    let ga = ga_dir(&sb).join("totp");
    let Some(secret) = google_authenticator(
        &ga,
        &["-t", "-d", "-r", "3", "-R", "30", "-w", "3", "-e", "3"],
    ) else {
        return;
    };
    let ga_text = fs::read_to_string(&ga).unwrap();
    let ga_scratch: Vec<&str> = ga_text.lines().filter(|l| l.len() == 8).collect();
    assert_eq!(ga_scratch.len(), 3);
    let o = run(&[
        "import-google-authenticator",
        ga.to_str().unwrap(),
        "--config",
        &cfg(&sb),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "Imported {} into {} (central layout): TOTP, SHA1, 6 digits, 30 s period, window ±1, 3 scratch codes.\n\
             \x20 note: RATE_LIMIT 3 30 not carried over: pam-totp allows 5 failed codes per 900 s and 8 per 24 h (pam_totp.conf)\n\
             \x20 note: the secret has 128 bits; enrolling anew with pam-totp enroll gives 160\n\
             \x20 note: 3 scratch codes carried over, stored hashed; being 8 digits, they are not accepted while the rate limit is in force\n\
             \x20 note: {} was left in place; remove it once logins with pam_totp work\n",
            ga.display(),
            sb.secret_path().display(),
            ga.display()
        )
    );
    let s = secret_of(&sb.secret_path());
    assert_eq!(s.window, Some(1));
    assert!(s
        .scratch
        .iter()
        .all(|h| h.strength == pam_totp::otp::ScratchStrength::Low));
    assert!(!fs::read_to_string(sb.secret_path())
        .unwrap()
        .contains(ga_scratch[0]));
    avoid_step_edge(3);
    assert_eq!(sb.auth("totp", &[&totp_now(&secret)]).name(), "PAM_SUCCESS");
    assert_eq!(sb.auth("totp", &[ga_scratch[1]]).name(), "PAM_SUCCESS");
    assert_eq!(sb.auth("totp", &[ga_scratch[1]]).name(), "PAM_AUTH_ERR");
    // Existing file: refused without --force.
    let o = run(&[
        "import-google-authenticator",
        ga.to_str().unwrap(),
        "--config",
        &cfg(&sb),
    ]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).ends_with(
        "already exists; pass --force to replace it (the old secret then stops working)\n"
    ));
}

#[test]
fn a_hotp_file_made_by_google_authenticator_is_imported_with_its_counter() {
    let sb = sandbox("cli-ga-hotp");
    let ga = ga_dir(&sb).join("hotp");
    let Some(secret) = google_authenticator(&ga, &["-c", "-u", "-w", "5", "-e", "0"]) else {
        return;
    };
    let o = run(&[
        "import-google-authenticator",
        ga.to_str().unwrap(),
        "--config",
        &cfg(&sb),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o)
            .contains(": HOTP, SHA1, 6 digits, next counter 1, look-ahead 5, 0 scratch codes.\n"),
        "{}",
        stdout(&o)
    );
    let s = secret_of(&sb.secret_path());
    assert_eq!(s.kind, pam_totp::store::Kind::Hotp { counter: 1 });
    assert_eq!(s.window, Some(5));
    assert!(s.scratch.is_empty());
    assert_eq!(sb.auth("totp", &[&hotp(&secret, 0)]).name(), "PAM_AUTH_ERR");
    assert_eq!(sb.auth("totp", &[&hotp(&secret, 3)]).name(), "PAM_SUCCESS");
    assert_eq!(sb.auth("totp", &[&hotp(&secret, 3)]).name(), "PAM_AUTH_ERR");
    assert_eq!(sb.auth("totp", &[&hotp(&secret, 4)]).name(), "PAM_SUCCESS");
}

#[test]
fn a_wide_window_and_allowed_reuse_are_reported_when_imported() {
    let sb = sandbox("cli-ga-wide");
    let ga = ga_dir(&sb).join("wide");
    if google_authenticator(&ga, &["-t", "-D", "-u", "-S", "60", "-w", "17", "-e", "0"]).is_none() {
        return;
    }
    let o = run(&[
        "import-google-authenticator",
        ga.to_str().unwrap(),
        "--config",
        &cfg(&sb),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("TOTP, SHA1, 6 digits, 60 s period, window ±3, 0 scratch codes."),
        "{text}"
    );
    assert!(text.contains("  note: WINDOW_SIZE 17 (±8 steps) reduced to window = 3 (±3 steps, pam-totp's maximum)\n"), "{text}");
    assert!(text.contains("  note: codes could be reused with google-authenticator (no DISALLOW_REUSE); pam-totp never accepts a code twice\n"), "{text}");
    assert_eq!(
        secret_of(&sb.secret_path()).kind,
        pam_totp::store::Kind::Totp { period: 60 }
    );
}

#[test]
fn a_garbled_google_authenticator_file_is_refused_and_nothing_is_written() {
    let sb = sandbox("cli-ga-bad");
    let dir = ga_dir(&sb);
    let cases = [
        ("JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" PAM_MAGIC 1\n", "line 3: unknown option PAM_MAGIC; nothing was written"),
        ("JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\nhello\n", "line 3: neither an option nor an 8-digit scratch code; nothing was written"),
        ("not base32!\n\" TOTP_AUTH\n", "line 1: secret is not valid base32; nothing was written"),
        ("JBSWY3DPEHPK3PXP\n12345678\n", "the file has neither TOTP_AUTH nor HOTP_COUNTER (google-authenticator accepts only its scratch codes with it); nothing to import"),
    ];
    for (i, (text, msg)) in cases.iter().enumerate() {
        let p = dir.join(format!("bad{i}"));
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o400)).unwrap();
        let o = run(&[
            "import-google-authenticator",
            p.to_str().unwrap(),
            "--config",
            &cfg(&sb),
        ]);
        assert_eq!(code(&o), 1);
        assert_eq!(stderr(&o), format!("pam-totp: {}: {msg}\n", p.display()));
        assert!(!sb.secret_path().exists());
    }
    let p = dir.join("open");
    fs::write(&p, "JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    let o = run(&[
        "import-google-authenticator",
        p.to_str().unwrap(),
        "--config",
        &cfg(&sb),
    ]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("unsafe: mode 0644"), "{}", stderr(&o));
}

#[test]
fn another_user_needs_root_and_root_writes_their_file_root_owned() {
    let sb = sandbox("cli-other");
    let out = sb.root.join("other/secret");
    let o = run(&[
        "enroll",
        "--user",
        "nobody",
        "--secret",
        SECRET,
        "--no-confirm",
        "--output",
        out.to_str().unwrap(),
        "--config",
        &cfg(&sb),
    ]);
    if !is_root() {
        assert_eq!(code(&o), 1);
        assert_eq!(
            stderr(&o),
            "pam-totp: --user nobody needs root (try: sudo pam-totp enroll --user nobody)\n"
        );
        return;
    }
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let meta = fs::metadata(&out).unwrap();
    assert_eq!((meta.uid(), meta.gid(), mode(&out)), (0, 0, 0o600));
    let o = run(&["status", "--user", "no/body"]);
    assert_eq!(code(&o), 2);
    let o = run(&["status", "--user", "no-such-user-xyz"]);
    assert_eq!(code(&o), 1);
    assert_eq!(stderr(&o), "pam-totp: no user named \"no-such-user-xyz\"\n");
}

const PTY_DRIVER: &str = r#"
import os, pty, sys, re, time, hmac, hashlib, struct, base64, select, signal

def totp(b32, t):
    key = base64.b32decode(b32 + "=" * (-len(b32) % 8))
    h = hmac.new(key, struct.pack(">Q", int(t // 30)), hashlib.sha1).digest()
    o = h[-1] & 15
    return "%06d" % ((struct.unpack(">I", h[o:o+4])[0] & 0x7fffffff) % 1000000)

script = sys.argv[1]
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
buf = b""
seen = b""
def expect(pat, timeout=30):
    global buf, seen
    end = time.time() + timeout
    while True:
        m = re.search(pat, buf)
        if m:
            seen += buf[:m.end()]; buf = buf[m.end():]
            return m
        r, _, _ = select.select([fd], [], [], max(0, end - time.time()))
        if not r:
            sys.stdout.write((seen + buf).decode(errors="replace"))
            raise SystemExit("timeout waiting for %r" % pat)
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            sys.stdout.write((seen + buf).decode(errors="replace"))
            raise SystemExit("EOF waiting for %r" % pat)
        buf += data
def send(s):
    os.write(fd, s.encode() + b"\r")
def code():
    if time.time() % 30 > 26: time.sleep(5)
    return totp(secret, time.time())

m = expect(rb"secret=([A-Z2-7]+)&")
secret = m.group(1).decode()
if script == "try":
    expect(rb"Verification code: ")
    c = code()
    send(c)
    expect(rb"PAM_SUCCESS: the login would succeed\r?\n")
    expect(rb"\[y/N\] ")
    send("y")
    expect(rb"Verification code: ")
    send(c)
    expect(rb"PAM_AUTH_ERR[^\n]*\n")
    expect(rb"\[y/N\] ")
    send("n")
    expect(rb"Removed the sandbox [^\n]*\n")
elif script == "try-interrupt":
    expect(rb"Verification code: ")
    os.kill(pid, signal.SIGINT)
    expect(rb"Removed the sandbox [^\n]*\n")
elif script == "enroll":
    expect(rb"Code from the app: ")
    send("000000" if code() != "000000" else "111111")
    expect(rb"That is not the current code")
    expect(rb"Code from the app: ")
    send(code())
    expect(rb"Scratch codes[^\n]*\n")
elif script == "enroll-interrupt":
    expect(rb"Code from the app: ")
    os.kill(pid, signal.SIGINT)
try:
    while True:
        d = os.read(fd, 4096)
        if not d: break
        buf += d
except OSError:
    pass
_, status = os.waitpid(pid, 0)
sys.stdout.write((seen + buf).decode(errors="replace"))
print("\nEXIT %d" % os.waitstatus_to_exitcode(status))
"#;

/// Runs the binary on a pseudo-terminal with a scripted user; (transcript, exit code).
fn pty(script: &str, args: &[&str], runtime_dir: &Path) -> Option<(String, i32)> {
    let py = python()?;
    let o = Command::new(py)
        .arg("-c")
        .arg(PTY_DRIVER)
        .arg(script)
        .arg(BIN)
        .args(args)
        .env("XDG_RUNTIME_DIR", runtime_dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let exit = text
        .trim_end()
        .rsplit_once("EXIT ")
        .and_then(|(_, n)| n.trim().parse().ok())
        .unwrap_or(-1);
    Some((text, exit))
}

fn runtime_dir(sb: &Sandbox) -> PathBuf {
    let d = sb.root.join("run");
    fs::create_dir_all(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
    d
}

#[test]
fn try_logs_in_through_libpam_on_a_terminal_and_refuses_the_replayed_code() {
    let sb = sandbox("cli-try");
    let run_dir = runtime_dir(&sb);
    let module = module_path();
    let Some((text, exit)) = pty(
        "try",
        &["try", "--module", module.to_str().unwrap()],
        &run_dir,
    ) else {
        eprintln!("skipped: python3 with pty not available");
        return;
    };
    assert_eq!(exit, 0, "{text}");
    assert!(text.contains("Scan this QR code"), "{text}");
    assert!(text.contains("▀"), "{text}");
    assert!(
        text.contains("PAM_SUCCESS: the login would succeed"),
        "{text}"
    );
    assert!(
        text.contains("This code was already used; wait for the next one"),
        "{text}"
    );
    assert!(
        text.contains("PAM_AUTH_ERR: the login would be refused"),
        "{text}"
    );
    assert_eq!(
        fs::read_dir(&run_dir).unwrap().count(),
        0,
        "sandbox removed"
    );
}

#[test]
fn try_interrupted_at_the_prompt_removes_its_sandbox() {
    let sb = sandbox("cli-try-int");
    let run_dir = runtime_dir(&sb);
    let module = module_path();
    let Some((text, exit)) = pty(
        "try-interrupt",
        &["try", "--module", module.to_str().unwrap()],
        &run_dir,
    ) else {
        return;
    };
    assert_eq!(exit, 130, "{text}");
    assert_eq!(
        fs::read_dir(&run_dir).unwrap().count(),
        0,
        "sandbox removed"
    );
}

#[test]
fn interactive_enroll_confirms_a_code_before_writing_and_writes_nothing_when_interrupted() {
    let sb = sandbox("cli-enroll-pty");
    let run_dir = runtime_dir(&sb);
    let c = cfg(&sb);
    let Some((text, exit)) = pty("enroll-interrupt", &["enroll", "--config", &c], &run_dir) else {
        return;
    };
    assert_eq!(exit, 130, "{text}");
    assert!(
        text.contains("pam-totp: interrupted; nothing was written"),
        "{text}"
    );
    assert_eq!(fs::read_dir(&sb.secrets).unwrap().count(), 0);
    let (text, exit) = pty(
        "enroll",
        &["enroll", "--scratch-codes", "1", "--config", &c],
        &run_dir,
    )
    .unwrap();
    assert_eq!(exit, 0, "{text}");
    assert!(text.contains("Scan this QR code"), "{text}");
    assert!(
        text.contains(&format!("Wrote {}", sb.secret_path().display())),
        "{text}"
    );
    assert_eq!(mode(&sb.secret_path()), 0o600);
    assert_eq!(secret_of(&sb.secret_path()).scratch.len(), 1);
}
