//! Crash consistency and panics (SECURITY.md §6 rows 24, 25, 45; SPEC §5). Needs the
//! test-only fault points: `cargo test --features fault-injection --test crash` (best with
//! its own `CARGO_TARGET_DIR`, so the fault-injection module never replaces the normal one).
//!
//! Each authentication that is meant to die runs in a CHILD process: this test binary
//! re-executed with `PAM_TOTP_TEST_CHILD` set runs only `child_host`, which plays a PAM
//! application (one or more `pam_authenticate` calls), writes what it saw to a file and
//! exits without printing anything of its own.
#![cfg(feature = "fault-injection")]

mod common;

use common::*;
use pam_totp::store::decode_state_file;
use std::collections::HashMap;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const CHILD_ENV: &str = "PAM_TOTP_TEST_CHILD";
const SEP: char = '\u{1f}';

/// The child side. Spec: result file, confdir, service, user, flags, answers…
#[test]
fn child_host() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    // A deliberate abort must not leave core files behind.
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Core,
        rustix::process::Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    );
    let f: Vec<&str> = spec.split(SEP).collect();
    let (result, confdir, service, user) = (f[0], Path::new(f[1]), f[2], f[3].as_bytes());
    let flags: i32 = f[4].parse().unwrap();
    let ids = fs::read_to_string("/proc/self/status")
        .map(|s| id_lines(&s))
        .unwrap();
    let mut out = String::new();
    for (i, answer) in f[5..].iter().enumerate() {
        let r = auth_raw(confdir, service, user, &[answer.as_bytes()], flags);
        let same = fs::read_to_string("/proc/self/status")
            .map(|s| id_lines(&s))
            .unwrap()
            == ids;
        out.push_str(&format!(
            "code{i}={}\nmessages{i}={}\nprompts{i}={}\nids{i}={same}\n",
            r.code,
            r.messages.len(),
            r.prompts.len()
        ));
        // Only the first call is the faulty one.
        std::env::remove_var("PAM_TOTP_PANIC");
        fs::write(result, &out).unwrap();
    }
    std::process::exit(0);
}

struct ChildRun {
    out: Output,
    result: HashMap<String, String>,
}

fn child_cmd(
    sb: &Sandbox,
    fault: &[(&str, &str)],
    service: &str,
    flags: i32,
    answers: &[String],
) -> Command {
    let result = sb.root.join("child-result");
    let _ = fs::remove_file(&result);
    let mut spec = format!(
        "{}{SEP}{}{SEP}{service}{SEP}{}{SEP}{flags}",
        result.display(),
        sb.confdir.display(),
        sb.user
    );
    for a in answers {
        spec.push(SEP);
        spec.push_str(a);
    }
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_host",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ])
    .env(CHILD_ENV, spec)
    .env_remove("PAM_TOTP_CRASH_AT")
    .env_remove("PAM_TOTP_PANIC")
    .env_remove("RUST_BACKTRACE")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in fault {
        cmd.env(k, v);
    }
    cmd
}

fn child(
    sb: &Sandbox,
    fault: &[(&str, &str)],
    service: &str,
    flags: i32,
    answers: &[String],
) -> ChildRun {
    let out = child_cmd(sb, fault, service, flags, answers)
        .output()
        .unwrap();
    let result = fs::read_to_string(sb.root.join("child-result"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    ChildRun { out, result }
}

/// What libtest itself prints for one test run with `-q` before our child exits.
fn only_libtest(stdout: &[u8]) -> bool {
    let s = String::from_utf8_lossy(stdout);
    s.lines().all(|l| l.is_empty() || l == "running 1 test")
}

fn hotp_sandbox(name: &str) -> Sandbox {
    let sb = Sandbox::new(name);
    sb.write_secret(&format!(
        "version = 1\nid = \"h\"\ntype = \"hotp\"\nsecret = \"{SECRET}\"\nwindow = 20\n"
    ));
    sb
}

fn next_counter(sb: &Sandbox) -> Option<Option<u64>> {
    fs::read(sb.state_path()).ok().map(|b| {
        decode_state_file(&b)
            .unwrap_or_else(|e| panic!("torn or empty state after a crash: {e}"))
            .2
            .next_counter
    })
}

#[test]
fn a_crash_at_every_write_point_leaves_the_old_or_the_new_state_and_nobody_locked_out() {
    for point in [
        "after-pwrite",
        "after-create-write",
        "after-create-fsync",
        "after-rename",
    ] {
        let sb = hotp_sandbox("crash");
        let mut c = 0u64;
        if point == "after-pwrite" {
            // The state file must exist for the in-place A/B write.
            assert_eq!(sb.auth("totp", &[&hotp(SECRET, 0)]).name(), "PAM_SUCCESS");
            c = 1;
        }
        let old = next_counter(&sb);
        let run = child(
            &sb,
            &[("PAM_TOTP_CRASH_AT", point)],
            "totp",
            0,
            &[hotp(SECRET, c)],
        );
        assert_eq!(
            run.out.status.signal(),
            Some(libc::SIGABRT),
            "{point}: the child did not die at the fault point (module built without \
             --features fault-injection?): {:?}",
            run.out
        );
        // Old or new, never torn or empty.
        let now_state = next_counter(&sb);
        let new = Some(Some(c + 1));
        assert!(
            now_state == old || now_state == new,
            "{point}: {now_state:?} is neither {old:?} nor {new:?}"
        );
        if point == "after-rename" {
            assert_eq!(
                now_state, new,
                "{point}: renamed means the new state is in place"
            );
        }
        let which = if now_state == new { "new" } else { "old" };
        eprintln!(
            "{point}: the next login sees the {which} state; temp files: {:?}",
            tmp_files(&sb.state)
        );
        // Nobody is locked out: the next code works, and a stale temp file blocks nothing.
        let r = sb.auth("totp", &[&hotp(SECRET, c + 1)]);
        assert_eq!(r.name(), "PAM_SUCCESS", "{point}: {r:?}");
        assert_eq!(next_counter(&sb), Some(Some(c + 2)));
        assert!(
            tmp_files(&sb.state).is_empty(),
            "{point}: a temp file survived the next login"
        );
        // The crashed code was never reported as a success; it is not usable any more
        // either way (the counter moved past it).
        assert_eq!(sb.auth("totp", &[&hotp(SECRET, c)]).name(), "PAM_AUTH_ERR");
    }
}

#[test]
fn sigkill_at_random_moments_never_leaves_a_torn_state() {
    let sb = hotp_sandbox("sigkill");
    let mut last = 0u64;
    for round in 0..8u64 {
        let answers: Vec<String> = (last..last + 200).map(|c| hotp(SECRET, c)).collect();
        let mut ch = child_cmd(&sb, &[], "totp", 0, &answers).spawn().unwrap();
        // Spread the kills over the first logins, the file creation included.
        std::thread::sleep(std::time::Duration::from_millis(3 + round * 37 % 150));
        ch.kill().unwrap();
        let _ = ch.wait();
        let counter = next_counter(&sb).flatten().unwrap_or(0);
        assert!(
            counter >= last,
            "24: the counter went back from {last} to {counter}"
        );
        last = counter;
    }
    eprintln!("24: {last} logins saved across 8 SIGKILLs");
    assert_eq!(
        sb.auth("totp", &[&hotp(SECRET, last)]).name(),
        "PAM_SUCCESS"
    );
    assert!(tmp_files(&sb.state).is_empty());
}

#[test]
fn a_torn_newer_slot_falls_back_to_the_older_state_and_two_torn_slots_fail_closed() {
    use std::os::unix::fs::FileExt;
    let sb = hotp_sandbox("torn");
    assert_eq!(sb.auth("totp", &[&hotp(SECRET, 0)]).name(), "PAM_SUCCESS");
    assert_eq!(sb.auth("totp", &[&hotp(SECRET, 1)]).name(), "PAM_SUCCESS");
    let bytes = fs::read(sb.state_path()).unwrap();
    let (slot, seq, st) = decode_state_file(&bytes).unwrap();
    assert_eq!(st.next_counter, Some(2));
    // Tear the newer slot as a power cut in the middle of its pwrite would: its first
    // half new, the rest old junk.
    let f = fs::OpenOptions::new()
        .write(true)
        .open(sb.state_path())
        .unwrap();
    let off = (slot * 4096 + 40) as u64;
    f.write_all_at(&[0xee; 1000], off).unwrap();
    let torn = fs::read(sb.state_path()).unwrap();
    let (old_slot, old_seq, old) = decode_state_file(&torn).unwrap();
    assert_eq!((old_slot, old_seq), (1 - slot, seq - 1));
    assert_eq!(old.next_counter, Some(1), "the older state is used");
    // The module sees the older state: counter 1 is accepted again (that success was never
    // durable), and the torn slot is the one rewritten.
    assert_eq!(sb.auth("totp", &[&hotp(SECRET, 1)]).name(), "PAM_SUCCESS");
    let (s2, seq2, st2) = decode_state_file(&fs::read(sb.state_path()).unwrap()).unwrap();
    assert_eq!((s2, seq2, st2.next_counter), (slot, seq, Some(2)));
    // Both slots torn: fail closed, file left for the admin.
    f.write_all_at(&[0u8; 100], 30).unwrap();
    f.write_all_at(&[0u8; 100], 4096 + 30).unwrap();
    let before = fs::read(sb.state_path()).unwrap();
    assert_eq!(
        sb.auth("totp", &[&hotp(SECRET, 2)]).name(),
        "PAM_AUTHINFO_UNAVAIL"
    );
    assert_eq!(fs::read(sb.state_path()).unwrap(), before);
    // A truncated file (power cut during the first creation on a filesystem without
    // rename ordering) also fails closed.
    f.set_len(4096).unwrap();
    assert_eq!(
        sb.auth("totp", &[&hotp(SECRET, 2)]).name(),
        "PAM_AUTHINFO_UNAVAIL"
    );
}

#[test]
fn an_injected_panic_is_system_err_silent_and_the_host_lives_on() {
    for flags in [0, PAM_SILENT] {
        let sb = Sandbox::new("panic");
        sb.enroll_totp("");
        avoid_step_edge(5);
        let code = totp_now(SECRET);
        let run = child(
            &sb,
            &[("PAM_TOTP_PANIC", "1")],
            "totp",
            flags,
            &[code.clone(), code.clone()],
        );
        assert!(run.out.status.success(), "45: the host died: {:?}", run.out);
        assert!(
            run.out.stderr.is_empty(),
            "45: printed to the host's stderr: {}",
            String::from_utf8_lossy(&run.out.stderr)
        );
        assert!(
            only_libtest(&run.out.stdout),
            "45: printed to the host's stdout: {}",
            String::from_utf8_lossy(&run.out.stdout)
        );
        let r = &run.result;
        assert_eq!(r["code0"], PAM_SYSTEM_ERR.to_string(), "45: {r:?}");
        assert_eq!(r["ids0"], "true", "45: fs ids not restored");
        assert_eq!(r["messages0"], "0", "45: a message under flags {flags:#x}");
        // The panic unwound through the state lock and recorded nothing: the same code
        // now succeeds in the same process.
        assert_eq!(r["code1"], PAM_SUCCESS.to_string(), "45: {r:?}");
        assert_eq!(r["ids1"], "true");
    }
}

#[test]
fn an_injected_panic_in_the_home_layout_restores_the_fsuid() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let sb = Sandbox::new("panic-home");
    let u = TestUser::create(None, &[]);
    u.make_home(0o700);
    let s = secret_for(42);
    u.write(".pam_totp", totp_toml(&s).as_bytes(), 0o600, None);
    sb.service_with_secret("home", "secret=~/.pam_totp", "");
    let result = sb.root.join("child-result");
    let spec = format!(
        "{}{SEP}{}{SEP}home{SEP}{}{SEP}0{SEP}{}",
        result.display(),
        sb.confdir.display(),
        u.name,
        totp_now(&s)
    );
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_host",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(CHILD_ENV, spec)
        .env("PAM_TOTP_PANIC", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = fs::read_to_string(result).unwrap();
    assert!(text.contains(&format!("code0={PAM_SYSTEM_ERR}")), "{text}");
    assert!(text.contains("ids0=true"), "{text}");
}
