//! The built module through the real libpam, one test per row of SPEC §3 and the
//! concurrency promises of SPEC §4. No root needed.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

#[test]
fn a_correct_code_succeeds_and_the_watermark_is_saved() {
    let sb = Sandbox::new("ok");
    sb.enroll_totp("");
    avoid_step_edge(3);
    let r = sb.auth("totp", &[&totp_now(SECRET)]);
    assert_eq!(r.name(), "PAM_SUCCESS", "{r:?}");
    assert_eq!(r.prompts, vec!["Verification code: "]);
    let st = sb.state();
    assert_eq!(st.last_step, Some(now() / 30));
    assert_eq!(st.secret_id, "test-1");
    let mode = fs::metadata(sb.state_path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_wrong_code_is_refused_counted_and_delayed() {
    let sb = Sandbox::new("wrong");
    sb.enroll_totp("");
    let r = sb.auth("totp", &[&wrong_code(SECRET)]);
    assert_eq!(r.name(), "PAM_AUTH_ERR");
    // libpam randomises the requested 2 s (seen: 1.6 to 2.6 s).
    assert!((1_000_000..=3_000_000).contains(&r.delay_usec), "{r:?}");
    assert_eq!(sb.state().failures.len(), 1);
    // Wrong codes get no hint beyond the failure itself.
    assert!(r.messages.is_empty(), "{r:?}");
}

#[test]
fn a_malformed_answer_is_refused_without_counting_or_touching_state() {
    let sb = Sandbox::new("malformed");
    sb.enroll_totp("");
    for answer in ["", "12345", "abcdef", "1234567", &"9".repeat(600)] {
        let r = sb.auth("totp", &[answer]);
        assert_eq!(r.name(), "PAM_AUTH_ERR", "{answer:?}");
    }
    assert!(!sb.state_path().exists());
}

#[test]
fn spaces_tabs_and_newlines_in_the_answer_are_ignored() {
    let sb = Sandbox::new("normalise");
    sb.enroll_totp("");
    avoid_step_edge(3);
    let code = totp_now(SECRET);
    let spaced = format!(" {} {}\t\r\n", &code[..3], &code[3..]);
    assert_eq!(sb.auth("totp", &[&spaced]).name(), "PAM_SUCCESS");
}

#[test]
fn a_replayed_code_is_refused_with_a_message_saying_how_long_to_wait() {
    let sb = Sandbox::new("replay");
    sb.enroll_totp("");
    avoid_step_edge(3);
    let code = totp_now(SECRET);
    assert_eq!(sb.auth("totp", &[&code]).name(), "PAM_SUCCESS");
    let again = sb.auth("totp", &[&code]);
    assert_eq!(again.name(), "PAM_AUTH_ERR");
    assert_eq!(again.messages.len(), 1, "{again:?}");
    assert!(
        again.messages[0].starts_with("This code was already used; wait for the next one (about "),
        "{again:?}"
    );
    // A replay is not a guess: it does not count toward the rate limit.
    assert!(sb.state().failures.is_empty());
}

#[test]
fn an_older_code_inside_the_window_is_refused_after_a_newer_one() {
    let sb = Sandbox::new("older");
    sb.enroll_totp("");
    avoid_step_edge(3);
    let t = now();
    let next = totp_at(SECRET, t + 30, 30, 6, pam_totp::otp::Algorithm::Sha1);
    let current = totp_now(SECRET);
    assert_eq!(sb.auth("totp", &[&next]).name(), "PAM_SUCCESS");
    assert_eq!(sb.auth("totp", &[&current]).name(), "PAM_AUTH_ERR");
}

#[test]
fn silent_flag_suppresses_the_replay_message() {
    let sb = Sandbox::new("silent");
    sb.enroll_totp("");
    avoid_step_edge(3);
    let code = totp_now(SECRET);
    assert_eq!(sb.auth("totp", &[&code]).name(), "PAM_SUCCESS");
    let r = sb.auth_as("totp", sb.user.as_bytes(), &[&code], PAM_SILENT);
    assert_eq!(r.name(), "PAM_AUTH_ERR");
    assert!(r.messages.is_empty(), "{r:?}");
}

#[test]
fn an_unknown_user_sees_the_same_prompt_and_gets_auth_err() {
    let sb = Sandbox::new("unknown");
    for user in [
        &b"no-such-user-ptotp"[..],
        b"../../etc/passwd",
        b"",
        b"a\nb",
    ] {
        let r = sb.auth_as("totp", user, &["123456"], 0);
        assert_eq!(r.name(), "PAM_AUTH_ERR", "{user:?}");
        if !user.is_empty() {
            assert_eq!(r.prompts, vec!["Verification code: "], "{user:?}");
        }
    }
}

#[test]
fn the_rate_limit_returns_maxtries_without_prompting() {
    let sb = Sandbox::new("limit");
    sb.enroll_totp("");
    sb.write_config("max_failures = 3\nfailure_interval = 900\nmax_daily_failures = 8\n");
    let wrong = wrong_code(SECRET);
    for _ in 0..3 {
        assert_eq!(sb.auth("totp", &[&wrong]).name(), "PAM_AUTH_ERR");
    }
    let r = sb.auth("totp", &[&totp_now(SECRET)]);
    assert_eq!(r.name(), "PAM_MAXTRIES", "{r:?}");
    assert!(r.prompts.is_empty(), "{r:?}");
    assert_eq!(r.messages.len(), 1);
    assert!(
        r.messages[0].starts_with("Too many wrong codes; try again in "),
        "{r:?}"
    );
    assert_eq!(sb.state().failures.len(), 3);
}

#[test]
fn a_strong_scratch_code_still_works_while_the_limit_is_engaged() {
    use pam_totp::otp::{hash_scratch_code, ScratchStrength};
    let sb = Sandbox::new("scratch-limit");
    let h = hash_scratch_code("AAAABBBBCCCCDDDD", ScratchStrength::High, [3; 16]).to_stored();
    sb.enroll_totp(&format!("scratch = [\"{h}\"]\n"));
    sb.write_config("max_failures = 2\n");
    let wrong = wrong_code(SECRET);
    for _ in 0..2 {
        assert_eq!(sb.auth("totp", &[&wrong]).name(), "PAM_AUTH_ERR");
    }
    // A 6-digit code is not checked while limited...
    let r = sb.auth("totp", &[&totp_now(SECRET)]);
    assert_eq!(r.name(), "PAM_MAXTRIES");
    assert!(r.messages[0].ends_with("or use a scratch code."), "{r:?}");
    // ...but the scratch code is, once.
    assert_eq!(
        sb.auth("totp", &["aaaa-bbbb-cccc-dddd"]).name(),
        "PAM_SUCCESS"
    );
    assert_eq!(
        sb.auth("totp", &["AAAA-BBBB-CCCC-DDDD"]).name(),
        "PAM_AUTH_ERR"
    );
}

#[test]
fn a_scratch_code_is_single_use_and_only_its_hash_is_stored() {
    use pam_totp::otp::{hash_scratch_code, ScratchStrength};
    let sb = Sandbox::new("scratch");
    let h = hash_scratch_code("QQQQRRRRSSSSTTTT", ScratchStrength::High, [9; 16]).to_stored();
    sb.enroll_totp(&format!("scratch = [\"{h}\"]\n"));
    assert_eq!(
        sb.auth("totp", &["QQQQ-RRRR-SSSS-TTTT"]).name(),
        "PAM_SUCCESS"
    );
    assert_eq!(
        sb.auth("totp", &["QQQQ-RRRR-SSSS-TTTT"]).name(),
        "PAM_AUTH_ERR"
    );
    let state = fs::read(sb.state_path()).unwrap();
    assert!(!state.windows(16).any(|w| w == b"QQQQRRRRSSSSTTTT"));
}

#[test]
fn an_unenrolled_user_with_nullok_is_ignored_without_a_prompt() {
    let sb = Sandbox::new("nullok");
    // PAM_IGNORE jumps over pam_deny; anything else ends the stack with the module's code.
    sb.service_lines(
        "nullok",
        &format!(
            "auth [ignore=1 default=die] @MODULE@ {} nullok\nauth requisite pam_deny.so\nauth required pam_permit.so\n",
            sb.base_args()
        ),
    );
    let r = sb.auth("nullok", &[]);
    assert_eq!(r.name(), "PAM_SUCCESS", "{r:?}");
    assert!(r.prompts.is_empty());
    sb.enroll_totp("");
    assert_eq!(sb.auth("nullok", &["000000x"]).name(), "PAM_AUTH_ERR");
}

#[test]
fn nullok_still_ignores_when_the_application_disallows_null_authtok() {
    // sshd sets PAM_DISALLOW_NULL_AUTHTOK on every login; nullok must work there.
    let sb = Sandbox::new("nullok-disallow");
    sb.service_lines(
        "nullok",
        &format!(
            "auth [ignore=1 default=die] @MODULE@ {} nullok\nauth requisite pam_deny.so\nauth required pam_permit.so\n",
            sb.base_args()
        ),
    );
    let r = sb.auth_as("nullok", sb.user.as_bytes(), &[], PAM_DISALLOW_NULL_AUTHTOK);
    assert_eq!(r.name(), "PAM_SUCCESS", "{r:?}");
    assert!(r.prompts.is_empty());
}

#[test]
fn an_unenrolled_user_without_nullok_is_refused_after_the_prompt() {
    let sb = Sandbox::new("notenrolled");
    let r = sb.auth("totp", &["123456"]);
    assert_eq!(r.name(), "PAM_AUTH_ERR");
    assert_eq!(r.prompts, vec!["Verification code: "]);
}

#[test]
fn nullok_fails_closed_when_the_secret_directory_is_missing() {
    let sb = Sandbox::new("nullok-nodir");
    fs::remove_dir(&sb.secrets).unwrap();
    sb.service("nullok", "nullok");
    assert_eq!(
        sb.auth("nullok", &["123456"]).name(),
        "PAM_AUTHINFO_UNAVAIL"
    );
}

fn assert_unchanged(sb: &Sandbox, before: &[u8]) {
    let after = fs::read(sb.secret_path()).ok();
    assert_eq!(after.as_deref(), Some(before), "secret file changed");
    assert!(
        !sb.state_path().exists(),
        "state written for an unsafe secret"
    );
}

#[test]
fn a_secret_readable_by_others_is_refused_and_left_as_it_was() {
    let sb = Sandbox::new("mode");
    sb.enroll_totp("");
    let before = fs::read(sb.secret_path()).unwrap();
    for mode in [0o644, 0o640, 0o660, 0o606, 0o4600] {
        fs::set_permissions(sb.secret_path(), fs::Permissions::from_mode(mode)).unwrap();
        let r = sb.auth("totp", &[&totp_now(SECRET)]);
        assert_eq!(r.name(), "PAM_AUTH_ERR", "mode {mode:o}");
        assert_eq!(r.prompts.len(), 1, "refused only after the usual prompt");
    }
    assert_unchanged(&sb, &before);
}

#[test]
fn a_symlinked_secret_is_refused_and_its_target_never_read() {
    let sb = Sandbox::new("symlink");
    let target = sb.root.join("real");
    fs::write(&target, "version = 1\n").unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&target, sb.secret_path()).unwrap();
    sb.service("nullok", "nullok");
    assert_eq!(sb.auth("totp", &[&totp_now(SECRET)]).name(), "PAM_AUTH_ERR");
    // A symlink is not "not enrolled": nullok must not turn it into PAM_IGNORE.
    assert_eq!(sb.auth("nullok", &["123456"]).name(), "PAM_AUTH_ERR");
    assert_eq!(fs::read(&target).unwrap(), b"version = 1\n");
}

#[test]
fn a_hard_linked_secret_is_refused() {
    let sb = Sandbox::new("hardlink");
    sb.enroll_totp("");
    fs::hard_link(sb.secret_path(), sb.root.join("second-name")).unwrap();
    assert_eq!(sb.auth("totp", &[&totp_now(SECRET)]).name(), "PAM_AUTH_ERR");
}

#[test]
fn a_fifo_or_directory_at_the_secret_path_is_refused_without_hanging() {
    let sb = Sandbox::new("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        sb.secret_path(),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    assert_eq!(sb.auth("totp", &["123456"]).name(), "PAM_AUTH_ERR");
    fs::remove_file(sb.secret_path()).unwrap();
    fs::create_dir(sb.secret_path()).unwrap();
    fs::set_permissions(sb.secret_path(), fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(sb.auth("totp", &["123456"]).name(), "PAM_AUTH_ERR");
}

#[test]
fn a_secret_over_64_kib_is_refused() {
    let sb = Sandbox::new("large");
    sb.enroll_totp(&format!("# {}\n", "x".repeat(70_000)));
    assert_eq!(sb.auth("totp", &["123456"]).name(), "PAM_AUTH_ERR");
}

#[test]
fn a_garbled_or_truncated_secret_fails_closed_even_with_nullok() {
    let sb = Sandbox::new("garbled");
    sb.service("nullok", "nullok");
    for text in [
        "",
        "version = 1\nid = \"x\"\ntype = \"totp\"\nsecret = \"GEZDGNBV",
        "version = 1\nid = \"x\"\ntype = \"totp\"\n",
        "garbage\0\u{1}",
        "version = 1\nid = \"x\"\ntype = \"totp\"\nsecret = \"JBSWY3DP\"\n",
    ] {
        sb.write_secret(text);
        let before = fs::read(sb.secret_path()).unwrap();
        let r = sb.auth("nullok", &["123456"]);
        assert_eq!(r.name(), "PAM_AUTHINFO_UNAVAIL", "{text:?}");
        assert_unchanged(&sb, &before);
    }
}

#[test]
fn a_garbled_state_file_fails_closed_and_is_left_for_the_admin() {
    let sb = Sandbox::new("badstate");
    sb.enroll_totp("");
    assert_eq!(
        sb.auth("totp", &[&wrong_code(SECRET)]).name(),
        "PAM_AUTH_ERR"
    );
    fs::write(sb.state_path(), vec![0x55u8; 8192]).unwrap();
    let r = sb.auth("totp", &[&totp_now(SECRET)]);
    assert_eq!(r.name(), "PAM_AUTHINFO_UNAVAIL");
    assert_eq!(fs::read(sb.state_path()).unwrap(), vec![0x55u8; 8192]);
}

#[test]
fn a_state_directory_writable_by_others_is_refused() {
    let sb = Sandbox::new("statedir");
    sb.enroll_totp("");
    fs::create_dir(&sb.state).unwrap();
    fs::set_permissions(&sb.state, fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(sb.auth("totp", &[&totp_now(SECRET)]).name(), "PAM_AUTH_ERR");
}

#[test]
fn a_failing_conversation_is_conv_err_and_leaves_state_untouched() {
    let sb = Sandbox::new("conv");
    sb.enroll_totp("");
    let r = sb.auth("totp", &[]);
    assert_eq!(r.name(), "PAM_CONV_ERR");
    assert!(!sb.state_path().exists());
}

#[test]
fn an_unknown_or_malformed_argument_is_service_err() {
    let sb = Sandbox::new("args");
    for (i, args) in ["nulok", "window=99", "window=x", "secret"]
        .iter()
        .enumerate()
    {
        let name = format!("bad{i}");
        sb.service(&name, args);
        let r = sb.auth(&name, &["123456"]);
        assert_eq!(r.name(), "PAM_SERVICE_ERR", "{args}");
        assert!(r.prompts.is_empty());
    }
}

#[test]
fn a_config_file_with_an_unknown_key_is_service_err() {
    let sb = Sandbox::new("badconf");
    sb.enroll_totp("");
    sb.write_config("max_failure = 3\n");
    assert_eq!(sb.auth("totp", &["123456"]).name(), "PAM_SERVICE_ERR");
}

#[test]
fn hotp_accepts_a_code_ahead_and_never_advances_on_failure() {
    let sb = Sandbox::new("hotp");
    sb.write_secret(&format!(
        "version = 1\nid = \"h\"\ntype = \"hotp\"\nsecret = \"{SECRET}\"\ncounter = 5\n"
    ));
    assert_eq!(sb.auth("totp", &[&hotp(SECRET, 8)]).name(), "PAM_SUCCESS");
    assert_eq!(sb.state().next_counter, Some(9));
    assert_eq!(sb.auth("totp", &[&hotp(SECRET, 7)]).name(), "PAM_AUTH_ERR");
    assert_eq!(sb.auth("totp", &[&hotp(SECRET, 30)]).name(), "PAM_AUTH_ERR");
    assert_eq!(sb.state().next_counter, Some(9));
    assert_eq!(sb.auth("totp", &[&hotp(SECRET, 9)]).name(), "PAM_SUCCESS");
}

#[test]
fn a_new_enrollment_resets_the_watermark_but_not_the_failures() {
    let sb = Sandbox::new("reenroll");
    sb.enroll_totp("");
    avoid_step_edge(3);
    let code = totp_now(SECRET);
    assert_eq!(
        sb.auth("totp", &[&wrong_code(SECRET)]).name(),
        "PAM_AUTH_ERR"
    );
    assert_eq!(sb.auth("totp", &[&code]).name(), "PAM_SUCCESS");
    sb.write_secret(&format!(
        "version = 1\nid = \"test-2\"\ntype = \"totp\"\nsecret = \"{SECRET}\"\n"
    ));
    assert_eq!(sb.auth("totp", &[&code]).name(), "PAM_SUCCESS");
    assert_eq!(sb.state().failures.len(), 1);
}

#[test]
fn forward_pass_splits_the_code_and_hands_the_password_on() {
    let sb = Sandbox::new("forward");
    sb.enroll_totp("");
    let check = sb.root.join("check.sh");
    fs::write(&check, "#!/bin/sh\nread -r pw\n[ \"$pw\" = 'hunter2' ]\n").unwrap();
    fs::set_permissions(&check, fs::Permissions::from_mode(0o755)).unwrap();
    sb.service_lines(
        "fwd",
        &format!(
            "auth requisite @MODULE@ {} forward_pass\nauth required pam_exec.so expose_authtok quiet {}\n",
            sb.base_args(),
            check.display()
        ),
    );
    avoid_step_edge(3);
    let r = sb.auth("fwd", &[&format!("hunter2{}", totp_now(SECRET))]);
    assert_eq!(r.name(), "PAM_SUCCESS", "{r:?}");
    assert_eq!(r.prompts, vec!["Password & verification code: "]);
}

/// A service whose first line (forward_pass) checks the trailing code and hands the rest on
/// as PAM_AUTHTOK, and whose second line (its own state dir) runs with `second`.
fn forward_chain(name: &str, second: &str) -> Sandbox {
    let sb = Sandbox::new(name);
    sb.enroll_totp("");
    sb.service_lines(
        "chain",
        &format!(
            "auth requisite @MODULE@ {args} forward_pass\nauth required @MODULE@ secret={s}/%U state_dir={d} config={c} {second}\n",
            args = sb.base_args(),
            s = sb.secrets.display(),
            d = sb.root.join("state2").display(),
            c = sb.config.display()
        ),
    );
    sb
}

#[test]
fn use_first_pass_takes_the_code_handed_on_by_an_earlier_module() {
    let sb = forward_chain("firstpass", "use_first_pass");
    avoid_step_edge(3);
    let code = totp_now(SECRET);
    let r = sb.auth("chain", &[&format!("{code}{code}")]);
    assert_eq!(r.name(), "PAM_SUCCESS", "{r:?}");
    assert_eq!(r.prompts.len(), 1);
}

#[test]
fn try_first_pass_prompts_when_the_handed_on_token_is_not_a_code() {
    let sb = forward_chain("tryfirst", "try_first_pass");
    avoid_step_edge(3);
    let code = totp_now(SECRET);
    let r = sb.auth("chain", &[&format!("hunter2{code}"), &code]);
    assert_eq!(r.name(), "PAM_SUCCESS", "{r:?}");
    assert_eq!(
        r.prompts,
        vec!["Password & verification code: ", "Verification code: "]
    );
}

#[test]
fn use_first_pass_without_a_token_is_refused_without_prompting() {
    let sb = Sandbox::new("usefirst");
    sb.enroll_totp("");
    sb.service("u", "use_first_pass");
    let r = sb.auth("u", &[]);
    assert_eq!(r.name(), "PAM_AUTH_ERR");
    assert!(r.prompts.is_empty());
}

#[test]
fn the_prompt_argument_sets_the_question() {
    let sb = Sandbox::new("prompt");
    sb.enroll_totp("");
    sb.service_lines(
        "p",
        &format!(
            "auth required @MODULE@ {} [prompt=Code from your phone: ]\n",
            sb.base_args()
        ),
    );
    let r = sb.auth("p", &["x"]);
    assert_eq!(r.prompts, vec!["Code from your phone: "]);
}

#[test]
fn twenty_parallel_logins_with_one_code_give_exactly_one_success() {
    let sb = Sandbox::new("parallel-ok");
    sb.enroll_totp("");
    avoid_step_edge(8);
    let code = totp_now(SECRET);
    let results: Vec<i32> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| s.spawn(|| sb.auth("totp", &[&code]).code))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|&&c| c == PAM_SUCCESS).count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|&&c| c == PAM_AUTH_ERR).count(),
        19,
        "{results:?}"
    );
}

#[test]
fn thirty_parallel_wrong_codes_check_no_more_than_the_limit_and_count_every_failure() {
    let sb = Sandbox::new("parallel-wrong");
    sb.enroll_totp("");
    let wrong = wrong_code(SECRET);
    let results: Vec<i32> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..30)
            .map(|_| s.spawn(|| sb.auth("totp", &[&wrong]).code))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let refused = results.iter().filter(|&&c| c == PAM_AUTH_ERR).count();
    let limited = results.iter().filter(|&&c| c == PAM_MAXTRIES).count();
    assert_eq!(refused, 5, "{results:?}");
    assert_eq!(limited, 25, "{results:?}");
    assert_eq!(sb.state().failures.len(), 5);
}

#[test]
fn a_lock_held_too_long_fails_closed_after_five_seconds() {
    let sb = Sandbox::new("locktimeout");
    sb.enroll_totp("");
    let dir = pam_totp::store::StateDir::open(&sb.state, true).unwrap();
    let held = dir.lock(sb.uid).unwrap();
    let start = std::time::Instant::now();
    let r = sb.auth("totp", &[&totp_now(SECRET)]);
    assert_eq!(r.name(), "PAM_AUTHINFO_UNAVAIL");
    assert!(start.elapsed() >= std::time::Duration::from_secs(5));
    assert!(start.elapsed() < std::time::Duration::from_secs(7));
    drop(held);
}

#[test]
fn the_module_leaks_no_file_descriptors() {
    let sb = Sandbox::new("fds");
    sb.enroll_totp("");
    let count = || fs::read_dir("/proc/self/fd").unwrap().count();
    // Load libpam and the module once so their own descriptors settle.
    let _ = sb.auth("totp", &[&wrong_code(SECRET)]);
    let before = count();
    for _ in 0..3 {
        let _ = sb.auth("totp", &[&wrong_code(SECRET)]);
        let _ = sb.auth("totp", &["bad"]);
    }
    assert_eq!(count(), before);
}

#[test]
fn the_home_layout_reads_the_users_own_file_and_refuses_a_foreign_owner() {
    if !is_root() {
        eprintln!("skipped: needs root to create a user");
        return;
    }
    let sb = Sandbox::new("home");
    let user = TestUser::create(None, &[]);
    user.make_home(0o700);
    sb.service_lines(
        "home",
        &format!(
            "auth required @MODULE@ secret=~/.pam_totp state_dir={} config={}\n",
            sb.state.display(),
            sb.config.display()
        ),
    );
    let secret = format!("version = 1\nid = \"h1\"\ntype = \"totp\"\nsecret = \"{SECRET}\"\n");
    user.write(".pam_totp", secret.as_bytes(), 0o600, None);
    avoid_step_edge(3);
    let r = sb.auth_as("home", user.name.as_bytes(), &[&totp_now(SECRET)], 0);
    assert_eq!(r.name(), "PAM_SUCCESS", "{r:?}");
    // The state is root's and keyed by uid, not in the user's home.
    assert!(sb.state.join(format!("{}.state", user.uid)).exists());
    // A root-owned file in the home layout is not the user's: refused.
    std::os::unix::fs::chown(user.home.join(".pam_totp"), Some(0), Some(0)).unwrap();
    let r = sb.auth_as("home", user.name.as_bytes(), &[&totp_now(SECRET)], 0);
    assert_eq!(r.name(), "PAM_AUTH_ERR");
    // A home directory writable by others is refused (StrictModes).
    user.write(".pam_totp", secret.as_bytes(), 0o600, None);
    fs::set_permissions(&user.home, fs::Permissions::from_mode(0o777)).unwrap();
    let r = sb.auth_as("home", user.name.as_bytes(), &["123456"], 0);
    assert_eq!(r.name(), "PAM_AUTH_ERR");
}

#[test]
fn a_central_secret_owned_by_someone_else_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root to chown");
        return;
    }
    let sb = Sandbox::new("owner");
    sb.enroll_totp("");
    std::os::unix::fs::chown(sb.secret_path(), Some(65534), None).unwrap();
    assert_eq!(sb.auth("totp", &[&totp_now(SECRET)]).name(), "PAM_AUTH_ERR");
}
