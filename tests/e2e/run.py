#!/usr/bin/env python3
"""pam-totp end-to-end tests: the built module under a real sshd and a real sudo.

Called by scripts/e2e.sh as root:  run.py MODULE_SO MANIFEST [CLI]
Prints one line per case (PASS/FAIL/SKIP and its wall time) and, last, `N passed, N failed`.
Every PAM service file is made from config/pam.d/*, every sshd from config/sshd_config.d/*,
so the shipped files are the ones tested. Cases share one 30-s step: each successful login
uses its own user, so only the last case waits for a new step.
"""

import os
import re
import signal
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from package import package_cases  # noqa: E402
from harness import (CONFIG, REPO, REPLAY_RE, CaseFailed, CaseSkipped, Manifest, SyslogCapture, World,  # noqa: E402
                     check, new_secret, read_tail, run, seconds_left_in_step, secret_toml, totp,
                     write_file, wrong_code)

PROMPT_CODE = r"Verification code: ?"
PROMPT_PW = r"Password: ?"
PROMPT_ONE = r"Password & verification code: ?"
ANY_PROMPT = r"(Password|Verification code|Password & verification code): ?$"
DENIED = r"Permission denied"
LIMITED = r"Too many wrong codes; try again in \d+ minutes?( or use a scratch code)?\."
LIMITED_RE = re.compile(LIMITED)


class Suite:
    def __init__(self, world, syslog, cli):
        self.w = world
        self.syslog = syslog
        self.cli = cli
        self.results = []  # (name, status, seconds)
        self.typed_codes = set()  # every code typed: must never appear in a log line
        self.memo = {}

    # ---- helpers used by cases
    def code_for(self, u):
        c = totp(u["secret"])
        self.typed_codes.add(c)
        return c

    def ssh_login(self, scen, u, answers, key=False, expect_ok=True, command=None):
        """Runs ssh; `answers` is a list of (prompt regex, callable -> answer). Returns the
        Spawn. Checks success (marker printed, exit 0) or failure (denied, exit 255)."""
        p = self.w.ssh(scen, u, key=key, command=command)
        self.cur = p
        for prompt, answer in answers:
            i, m = p.expect([prompt, ANY_PROMPT, "EOF"])
            check(i == 0, f"expected the prompt {prompt!r}, got {m.group(0) if m else 'the end of the session'!r}")
            p.sendline(answer())
        i, m = p.expect([ANY_PROMPT, "EOF"], timeout=20)
        check(i == 1, f"unexpected prompt {m.group(0)!r}" if m else "")
        status = p.finish()
        marker = f"E2E-OK-{u['name']}"
        if expect_ok:
            check(status == 0 and marker in p.transcript, f"login failed (exit {status})")
        else:
            check(status == 255 and marker not in p.transcript, f"login was not refused (exit {status})")
            check(re.search(DENIED, p.transcript), "no 'Permission denied' from ssh")
        return p

    def count_prompts(self, p, regex):
        return len(re.findall(regex, p.transcript))

    # ---- runner
    def case(self, name, fn):
        t0 = self.t0 = time.time()
        self.cur = None
        self.note = ""
        status, why = "PASS", ""
        try:
            fn()
        except CaseSkipped as e:
            status, why = "SKIP", str(e)
        except CaseFailed as e:
            status, why = "FAIL", str(e)
        except Exception as e:  # harness error: still a failed case, with the trace
            status, why = "FAIL", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
        dt = time.time() - t0
        self.results.append((name, status))
        why = why or self.note
        print(f"{status} {name} ({dt:.1f} s){': ' + why.splitlines()[0] if why else ''}", flush=True)
        if status == "FAIL":
            for line in why.splitlines()[1:]:
                print(f"    {line}")
            if self.cur is not None:
                print("    --- transcript")
                for line in self.cur.transcript.splitlines()[-25:]:
                    print(f"    | {line}")
            logs = self.our_log(t0)
            if logs:
                print("    --- syslog during the case")
                for line in logs[-25:]:
                    print(f"    | {line}")
        self.memo[name] = status
        return status == "PASS"

    def memo_set(self, key, code):
        """Remembers a code that was typed (for a replay) and the step it belongs to."""
        self.memo["code-" + key] = code
        self.memo["step-" + key] = int(time.time() // 30)
        return code

    def check_replay_logged(self, u):
        """With the log captured: the refusal was logged as a replay (not as a wrong code)."""
        if self.syslog.active:
            time.sleep(0.2)
            check(any(u["name"] in line and "replay" in line for line in self.our_log(self.t0)),
                  "the refusal was not logged as a replay")

    def our_log(self, t0=0):
        """Captured syslog lines of this run's services (other tests may log meanwhile)."""
        return [line for line in self.syslog.since(t0) if self.w.tag in line or "ptotp-e2e" in line]

    def needs(self, name):
        if self.memo.get(name) != "PASS":
            raise CaseFailed(f"needs an earlier success ({name}), which did not happen")


def main():
    # SIGTERM (from scripts/e2e.sh) or SIGINT (^C) unwinds through the cleanup below; a second
    # one is ignored, so that it cannot cut the cleanup short (e.g. /etc/pam.d/sshd restored).
    def stop(signum, _frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    module, manifest_path = sys.argv[1], sys.argv[2]
    cli = sys.argv[3] if len(sys.argv) > 3 else None
    t_start = time.time()
    m = Manifest(manifest_path)
    syslog = SyslogCapture(m)
    w = World(m, module)
    s = Suite(w, syslog, cli)
    try:
        setup_ok = True
        try:
            setup(w)
        except Exception as e:
            print(f"FAIL setup (0.0 s): {e}")
            traceback.print_exc()
            s.results.append(("setup", "FAIL"))
            setup_ok = False
        if setup_ok:
            cases(s)
    finally:
        syslog.close()
        m.cleanup()
    passed = sum(1 for _, st in s.results if st == "PASS")
    failed = sum(1 for _, st in s.results if st == "FAIL")
    skipped = sum(1 for _, st in s.results if st == "SKIP")
    print(f"e2e: {time.time() - t_start:.0f} s" + (f", {skipped} skipped" if skipped else ""))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def setup(w):
    w.setup_dirs()
    w.add_group("ptotp-e2e-exempt")
    U = {}
    # kbd: code alone, central layout (shared with sudo for the cross-service replay)
    for k in ("a", "b", "x", "m", "r", "y"):
        U[k] = w.add_user(k)
    # pw, fwd, skip-group, skip-network: home layout (~/.pam_totp, the default)
    for k in ("c", "d", "h", "i", "j", "l", "n", "o", "p", "q"):
        U[k] = w.add_user(k)
    U["k"] = w.add_user("k", groups=["ptotp-e2e-exempt"])
    # key + code: home layout
    for k in ("e", "f", "g"):
        U[k] = w.add_user(k)
        w.add_ssh_key(U[k])
    # sudo: central layout
    for k in ("s1", "s2"):
        U[k] = w.add_user(k)
    for k in ("a", "b", "x", "r", "y", "s1", "s2"):
        w.enroll_central(U[k])
    for k in ("c", "d", "h", "i", "j", "l", "o", "e", "g", "q"):
        w.enroll_home(U[k])
    os.chmod(os.path.join(U["q"]["home"], ".pam_totp"), 0o644)  # unsafe: readable by others
    # f, k, n, p, m: not enrolled (m is enrolled by the CLI case)
    w.U = U

    central = f"secret={w.secrets}/%U"
    # code alone over keyboard-interactive: the key-and-code stack under the password-and-code
    # sshd settings (AuthenticationMethods keyboard-interactive)
    w.start_sshd("kbd", "pam-totp-password-and-code.conf",
                 w.pam_text("sshd-key-and-code", central))
    w.start_sshd("pw", "pam-totp-password-and-code.conf", w.pam_text("sshd-password-and-code"))
    w.start_sshd("pwnull", "pam-totp-password-and-code.conf", w.pam_text("sshd-password-and-code", "nullok"))
    w.start_sshd("key", "pam-totp.conf", w.pam_text("sshd-key-and-code"))
    w.start_sshd("keynull", "pam-totp.conf",
                 w.pam_text("sshd-key-and-code", "nullok", subst=[("pam_deny.so", "pam_permit.so")]))
    w.start_sshd("fwd", "pam-totp-password-and-code.conf",
                 w.pam_text("sshd-password-and-code-one-prompt"))
    w.start_sshd("group", "pam-totp-password-and-code.conf",
                 w.pam_text("sshd-skip-group", subst=[("totp-exempt", "ptotp-e2e-exempt")]))
    w.trusted = os.path.join(w.work, "trusted.conf")
    w.start_sshd("net", "pam-totp-password-and-code.conf",
                 w.pam_text("sshd-skip-network",
                            subst=[("/etc/security/pam-totp-trusted.conf", w.trusted)]))
    w.setup_sudo(w.pam_text("sudo", subst=[("/var/lib/pam-totp/secrets", w.secrets)]),
                 [U["s1"], U["s2"], U["x"]])


def cases(s):
    w, U = s.w, s.w.U

    # ---------------------------------------------------------------- plumbing
    def oathtool_agrees():
        sec = new_secret()
        at = int(time.time())
        out = run(["oathtool", "--totp", "-b", "-N", f"@{at}", sec]).stdout.strip()
        check(out == totp(sec, at=at), f"oathtool {out} != harness {totp(sec, at=at)}")
    s.case("harness: TOTP code matches oathtool", oathtool_agrees)

    def dropin_wins():
        tmp = os.path.join(w.work, "debian-sshd")
        os.mkdir(tmp)
        os.mkdir(os.path.join(tmp, "sshd_config.d"))
        with open("/etc/ssh/sshd_config") as f:
            stock = f.read()
        check("Include /etc/ssh/sshd_config.d/*.conf" in stock, "stock sshd_config has no sshd_config.d Include")
        cfg = os.path.join(tmp, "sshd_config")
        with open(cfg, "w") as f:
            f.write(stock.replace("/etc/ssh/sshd_config.d/", tmp + "/sshd_config.d/")
                    + "\nKbdInteractiveAuthentication no\n")
        hostkey = os.path.join(w.work, "sshd-kbd", "host_ed25519")
        for snippet, methods in (("pam-totp.conf", "publickey,keyboard-interactive"),
                                 ("pam-totp-password-and-code.conf", "keyboard-interactive")):
            with open(_cfg_path("sshd_config.d", snippet)) as g:
                body = g.read()
            with open(os.path.join(tmp, "sshd_config.d", "pam-totp.conf"), "w") as f:
                f.write(body)
            eff = run(["/usr/sbin/sshd", "-T", "-f", cfg, "-o", f"HostKey={hostkey}"]).stdout.lower()
            for want in ("usepam yes", "kbdinteractiveauthentication yes", f"authenticationmethods {methods}",
                         "passwordauthentication no"):
                check(re.search(rf"^{re.escape(want)}$", eff, re.M), f"{snippet}: sshd -T lacks '{want}'")
    s.case("config: sshd_config.d drop-in beats Debian's 'KbdInteractiveAuthentication no'", dropin_wins)

    def effective_settings():
        for scen, sd in w.sshds.items():
            eff = sd["effective"].lower()
            check("kbdinteractiveauthentication yes" in eff and "usepam yes" in eff,
                  f"{scen}: effective settings lack kbd-interactive/PAM")
    s.case("config: every test sshd runs with UsePAM and keyboard-interactive", effective_settings)

    # ---------------------------------------------------------------- keyboard-interactive alone
    def kbd_ok():
        p = s.ssh_login("kbd", U["a"], [(PROMPT_CODE, lambda: s.memo_set("a", s.code_for(U["a"])))])
        check(re.search(r"\(ptotp-e2e-a@127\.0\.0\.1\) Verification code: ", p.transcript),
              "prompt text is not '(user@host) Verification code: '")
        check(s.count_prompts(p, PROMPT_PW) == 0, "a password was asked")
    s.case("sshd keyboard-interactive: correct code logs in", kbd_ok)

    def kbd_replay():
        s.needs("sshd keyboard-interactive: correct code logs in")
        p = s.ssh_login("kbd", U["a"], [(PROMPT_CODE, lambda: s.memo["code-a"])], expect_ok=False)
        m = REPLAY_RE.search(p.transcript)
        check(m, "no 'This code was already used; wait for the next one (about N s).' shown")
        n = int(m.group(1))
        check(1 <= n <= 31, f"'about {n} s' is not within one step")
        s.check_replay_logged(U["a"])
    s.case("sshd keyboard-interactive: replayed code refused with the replay message", kbd_replay)

    def kbd_wrong():
        p = s.ssh_login("kbd", U["b"], [(PROMPT_CODE, lambda: wrong_code(U["b"]["secret"]))], expect_ok=False)
        check(not REPLAY_RE.search(p.transcript), "a wrong code got the replay message")
    s.case("sshd keyboard-interactive: wrong code refused", kbd_wrong)

    def kbd_rate_limit():
        u = U["r"]
        limited_at = None
        for attempt in range(1, 10):
            p = w.ssh("kbd", u)
            s.cur = p
            i, _ = p.expect([PROMPT_CODE, LIMITED, "EOF"], timeout=20)
            if i == 0:
                p.sendline(wrong_code(u["secret"]))
                p.expect([LIMITED, "EOF"], timeout=20)
            status = p.finish()
            check(status == 255, f"attempt {attempt}: a wrong code was not refused (exit {status})")
            if LIMITED_RE.search(p.transcript):
                limited_at = attempt
                break
        check(limited_at is not None, "no 'Too many wrong codes' after 9 wrong codes")
        check(limited_at > 3, f"limited after only {limited_at - 1} wrong codes (three mistypes must not lock)")
        p = w.ssh("kbd", u)
        s.cur = p
        i, _ = p.expect([PROMPT_CODE, LIMITED, "EOF"], timeout=20)
        if i == 0:
            p.sendline(s.code_for(u))
        status = p.finish()
        check(status == 255 and LIMITED_RE.search(p.transcript),
              f"while limited, the right code was not refused with the limit message (exit {status})")
    s.case("sshd keyboard-interactive: repeated wrong codes hit the rate limit, then even the right code is refused",
           kbd_rate_limit)

    def kbd_parallel():
        u, n = U["y"], 4
        ps = [w.ssh("kbd", u) for _ in range(n)]
        try:
            for p in ps:
                s.cur = p
                p.expect([PROMPT_CODE], timeout=20)
            code = s.code_for(u)
            for p in ps:  # all answers go out before any is checked
                p.sendline(code)
            statuses = [p.finish() for p in ps]
        finally:
            for p in ps:
                p.close()
        ok = sum(1 for p, st in zip(ps, statuses) if st == 0 and f"E2E-OK-{u['name']}" in p.transcript)
        s.cur = None
        check(ok == 1, f"{n} parallel logins with one code: {ok} succeeded (exit statuses {statuses})")
    s.case("sshd keyboard-interactive: 4 parallel logins with one code, exactly one succeeds", kbd_parallel)

    # ---------------------------------------------------------------- password + code
    def pw_ok():
        u = U["c"]
        p = s.ssh_login("pw", u, [(PROMPT_PW, lambda: u["password"]), (PROMPT_CODE, lambda: s.code_for(u))])
        check(p.transcript.find("Password:") < p.transcript.find("Verification code:"), "code asked before password")
    s.case("sshd password+code: password then code logs in (home layout)", pw_ok)

    def pw_wrong_password():
        u = U["d"]
        p = s.ssh_login("pw", u, [(PROMPT_PW, lambda: u["password"] + "nope")], expect_ok=False)
        check(s.count_prompts(p, PROMPT_CODE) == 0, "code asked after a wrong password (requisite pam_unix)")
    s.case("sshd password+code: wrong password refused before any code is asked", pw_wrong_password)

    def pw_wrong_code():
        u = U["d"]
        s.ssh_login("pw", u, [(PROMPT_PW, lambda: u["password"]),
                              (PROMPT_CODE, lambda: wrong_code(u["secret"]))], expect_ok=False)
    s.case("sshd password+code: right password, wrong code refused", pw_wrong_code)

    def pw_unsafe_secret():
        u = U["q"]
        s.ssh_login("pw", u, [(PROMPT_PW, lambda: u["password"]), (PROMPT_CODE, lambda: s.code_for(u))],
                    expect_ok=False)
    s.case("sshd password+code: ~/.pam_totp readable by others (0644) refused even with the right code",
           pw_unsafe_secret)

    def pw_unenrolled():
        u = U["p"]
        s.ssh_login("pw", u, [(PROMPT_PW, lambda: u["password"]), (PROMPT_CODE, lambda: "123456")],
                    expect_ok=False)
    s.case("sshd password+code: unenrolled user without nullok prompted and refused", pw_unenrolled)

    def pwnull_unenrolled():
        u = U["p"]
        p = s.ssh_login("pwnull", u, [(PROMPT_PW, lambda: u["password"])])
        check(s.count_prompts(p, PROMPT_CODE) == 0, "nullok: an unenrolled user was asked for a code")
    s.case("sshd password+code with nullok: unenrolled user logs in with the password alone", pwnull_unenrolled)

    def pwnull_enrolled():
        u = U["d"]
        s.ssh_login("pwnull", u, [(PROMPT_PW, lambda: u["password"]),
                                  (PROMPT_CODE, lambda: wrong_code(u["secret"]))], expect_ok=False)
    s.case("sshd password+code with nullok: enrolled user with a wrong code still refused", pwnull_enrolled)

    # ---------------------------------------------------------------- key + code
    def key_ok():
        u = U["e"]
        p = s.ssh_login("key", u, [(PROMPT_CODE, lambda: s.code_for(u))], key=True)
        check(s.count_prompts(p, PROMPT_PW) == 0, "a password was asked")
        log = read_tail(w.sshds["key"]["log"], 200)
        check(re.search(rf"Partial publickey for {u['name']}", log), "sshd log shows no partial publickey success")
    s.case("sshd publickey,keyboard-interactive: key then code logs in", key_ok)

    def key_missing():
        u = U["e"]
        p = s.ssh_login("key", u, [], key=False, expect_ok=False)
        check(s.count_prompts(p, PROMPT_CODE) == 0, "code asked of a client without the key")
    s.case("sshd publickey,keyboard-interactive: no key, no code prompt, refused", key_missing)

    def key_unenrolled():
        u = U["f"]
        s.ssh_login("key", u, [(PROMPT_CODE, lambda: "123456")], key=True, expect_ok=False)
    s.case("sshd publickey,keyboard-interactive: unenrolled user without nullok prompted and refused",
           key_unenrolled)

    def keynull_unenrolled():
        u = U["f"]
        p = w.ssh("keynull", u, key=True)
        s.cur = p
        i, _ = p.expect([PROMPT_CODE, "E2E-OK-", "EOF"], timeout=20)
        check(i != 0, "nullok: an unenrolled user was asked for a code (no PAM_IGNORE)")
        status = p.finish()
        check(status == 0 and f"E2E-OK-{u['name']}" in p.transcript,
              f"nullok: unenrolled user not let in on the key alone (exit {status})")
    s.case("sshd key+code with nullok (+pam_permit on PAM_IGNORE): unenrolled user in on the key alone",
           keynull_unenrolled)

    def keynull_enrolled_wrong():
        u = U["g"]
        s.ssh_login("keynull", u, [(PROMPT_CODE, lambda: wrong_code(u["secret"]))], key=True, expect_ok=False)
    s.case("sshd key+code with nullok: enrolled user with a wrong code still refused", keynull_enrolled_wrong)

    # ---------------------------------------------------------------- forward_pass (one prompt)
    def fwd_ok():
        u = U["h"]
        p = s.ssh_login("fwd", u, [(PROMPT_ONE, lambda: u["password"] + s.code_for(u))])
        check(s.count_prompts(p, PROMPT_CODE) == 0 and s.count_prompts(p, r"\) Password: ") == 0,
              "more than the one prompt was shown")
    s.case("sshd forward_pass: 'Password & verification code' in one answer logs in", fwd_ok)

    def fwd_wrong_code():
        u = U["i"]
        s.ssh_login("fwd", u, [(PROMPT_ONE, lambda: u["password"] + wrong_code(u["secret"]))], expect_ok=False)
    s.case("sshd forward_pass: right password, wrong code refused", fwd_wrong_code)

    def fwd_wrong_password():
        u = U["j"]
        s.ssh_login("fwd", u, [(PROMPT_ONE, lambda: u["password"] + "nope" + s.code_for(u))], expect_ok=False)
    s.case("sshd forward_pass: wrong password, right code refused", fwd_wrong_password)

    # ---------------------------------------------------------------- skip 2FA for a group / network
    def group_member():
        u = U["k"]
        p = s.ssh_login("group", u, [(PROMPT_PW, lambda: u["password"])])
        check(s.count_prompts(p, PROMPT_CODE) == 0, "a member of the exempt group was asked for a code")
    s.case("sshd skip-group: exempt group member logs in with the password alone", group_member)

    def group_nonmember():
        u = U["l"]
        s.ssh_login("group", u, [(PROMPT_PW, lambda: u["password"]), (PROMPT_CODE, lambda: s.code_for(u))])
    s.case("sshd skip-group: non-member is asked for the code and logs in", group_nonmember)

    def net_trusted():
        u = U["n"]
        with open(_cfg_path("pam.d", "pam-totp-trusted.conf")) as f:
            text = f.read()
        check("192.168.1.0/24" in text, "example accessfile changed: update the test")
        with open(w.trusted, "w") as f:
            f.write(text.replace("192.168.1.0/24", "127.0.0.1"))
        p = s.ssh_login("net", u, [(PROMPT_PW, lambda: u["password"])])
        check(s.count_prompts(p, PROMPT_CODE) == 0, "a code was asked from a trusted address")
    s.case("sshd skip-network: from a trusted address the password alone logs in", net_trusted)

    def net_untrusted():
        u, n = U["o"], U["n"]
        with open(_cfg_path("pam.d", "pam-totp-trusted.conf")) as f:
            text = f.read()
        with open(w.trusted, "w") as f:
            f.write(text)  # the shipped example: 192.168.1.0/24 only
        s.ssh_login("net", u, [(PROMPT_PW, lambda: u["password"]), (PROMPT_CODE, lambda: s.code_for(u))])
        # and the unenrolled user from before is now asked for a code and refused
        s.ssh_login("net", n, [(PROMPT_PW, lambda: n["password"]), (PROMPT_CODE, lambda: "123456")],
                    expect_ok=False)
    s.case("sshd skip-network: from an untrusted address the code is required", net_untrusted)

    # ---------------------------------------------------------------- sudo
    def sudo_run(u, stdin_mode, code, expect_ok):
        p = w.sudo(u, stdin_mode)
        s.cur = p
        p.expect([r"\[sudo\] password for " + u["name"] + ": ?"])
        p.sendline(u["password"])
        p.expect([PROMPT_CODE])
        p.sendline(code())
        status = p.finish()
        out = p.transcript[p.pos:]  # what came after the code prompt: `id -u` prints 0
        ran = re.search(r"(?m)^\s*0\s*$", out)
        if expect_ok:
            check(status == 0 and ran, f"sudo failed (exit {status})")
        else:
            check(status != 0 and not ran, f"sudo was not refused (exit {status})")
        return p

    for mode, k, label in ((True, "s1", "sudo -S -k"), (False, "s2", "sudo on a pty")):
        u = U[k]

        def ok(u=u, mode=mode, k=k):
            sudo_run(u, mode, lambda: s.memo_set(k, s.code_for(u)), True)
        s.case(f"{label}: password + correct code runs the command (central layout)", ok)

        def replay(u=u, mode=mode, k=k, label=label):
            s.needs(f"{label}: password + correct code runs the command (central layout)")
            p = sudo_run(u, mode, lambda: s.memo["code-" + k], False)
            s.check_replay_logged(u)
            if not REPLAY_RE.search(p.transcript):
                s.note = "no replay message: sudo calls pam_authenticate with PAM_SILENT"
        s.case(f"{label}: replayed code refused (logged as a replay)", replay)

        def wrong(u=u, mode=mode):
            p = sudo_run(u, mode, lambda: wrong_code(u["secret"]), False)
            check(not REPLAY_RE.search(p.transcript), "a wrong code got the replay message")
        s.case(f"{label}: wrong code refused", wrong)

    def sudo_home_secret_ignored():
        # central layout: a secret the user writes in their home is not consulted by sudo
        u = U["s1"]
        mine = new_secret()
        write_file(os.path.join(u["home"], ".pam_totp"), secret_toml(mine, "user-made"), 0o600, u["uid"], u["gid"])
        sudo_run(u, True, lambda: totp(mine), False)
    s.case("sudo: a code from a secret the user made in ~ is refused (central layout)", sudo_home_secret_ignored)

    # ---------------------------------------------------------------- cross-service replay
    def cross_replay():
        u = U["x"]
        s.ssh_login("kbd", u, [(PROMPT_CODE, lambda: s.memo_set("x", s.code_for(u)))])
        p = sudo_run(u, True, lambda: s.memo["code-x"], False)
        s.check_replay_logged(u)
        if not REPLAY_RE.search(p.transcript):
            s.note = "no replay message: sudo calls pam_authenticate with PAM_SILENT"
    s.case("ssh login then sudo with the same code: refused as a replay (state per uid)", cross_replay)

    # ---------------------------------------------------------------- the CLI writes what the module reads
    def cli_enroll():
        h = subprocess.run([s.cli, "enroll", "--help"], capture_output=True, text=True) \
            if s.cli and os.access(s.cli, os.X_OK) else None
        if h is None or h.returncode != 0 or "--secret" not in h.stdout + h.stderr:
            raise CaseSkipped("`pam-totp enroll --help` does not describe --secret: CLI not there yet")
        u = U["m"]
        sec = new_secret()
        out = os.path.join(w.secrets, str(u["uid"]))
        r = subprocess.run([s.cli, "enroll", "--user", u["name"], "--secret", sec, "--no-confirm",
                            "--output", out], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
        check(r.returncode == 0, f"enroll exited {r.returncode}: {(r.stderr or r.stdout).strip()}")
        st = os.lstat(out)
        check(st.st_uid == 0 and (st.st_mode & 0o7777) == 0o600, f"secret file mode {oct(st.st_mode)} uid {st.st_uid}")
        u["secret"] = sec
        s.ssh_login("kbd", u, [(PROMPT_CODE, lambda: s.code_for(u))])
    s.case("cli: pam-totp enroll --user --secret --no-confirm --output, then ssh login", cli_enroll)

    # ---------------------------------------------------------------- the .deb on the real sshd
    # dpkg -i, enroll, enable sshd --key-and-code (rollback, confirm), disable, dpkg -r/-P on the
    # machine's own /etc/pam.d/sshd and sshd_config.d, restored from a snapshot (package.py)
    package_cases(s, os.path.dirname(os.path.abspath(s.cli)) if s.cli else os.path.join(REPO, "target", "release"))

    # ---------------------------------------------------------------- no code in the logs
    def no_codes_logged():
        if not s.syslog.active:
            raise CaseSkipped("/dev/log is taken by a syslog daemon: log lines not captured")
        lines = [re.sub(r"^<\d+>\S+ +\d+ [\d:]+ [^:]*: ", "", line) for line in s.our_log()]
        check(any("pam_totp" in line for line in lines), "no pam_totp line was logged at all")
        for line in lines:
            for c in s.typed_codes:
                check(not re.search(rf"(?<!\d){c}(?!\d)", line), f"a typed code appears in the log: {line!r}")
    s.case("syslog: pam_totp logged outcomes and never a typed code", no_codes_logged)

    # ---------------------------------------------------------------- the next step works again
    def next_step():
        s.needs("ssh login then sudo with the same code: refused as a replay (state per uid)")
        u = U["x"]
        while int(time.time() // 30) <= s.memo["step-x"]:
            time.sleep(seconds_left_in_step() + 0.3)
        sudo_run(u, True, lambda: s.code_for(u), True)
    s.case("sudo after the replay: the next step's code is accepted", next_step)


def _cfg_path(*parts):
    return os.path.join(CONFIG, *parts)


if __name__ == "__main__":
    sys.exit(main())
