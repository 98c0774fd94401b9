"""The package end to end, on the machine's real files: `dpkg -i` of the built .deb,
`pam-totp enroll` as the admin, `pam-totp enable sshd --key-and-code` on the real
/etc/pam.d/sshd and /etc/ssh/sshd_config.d, a real `sshd` (program name sshd, so it reads
/etc/pam.d/sshd; PidFile /run/sshd.pid, so enable reloads it), then the rollback, the
confirmation, `disable`, `dpkg -r` and `dpkg -P`. No file is edited by the test.

Before anything is touched, tests/e2e/snapshot.py saves every path these steps may write
(recorded in the manifest as `snapshot DIR`); run.py's cleanup and scripts/e2e.sh's trap
restore it, purging the package, even on failure or a signal. Skipped when pam-totp is
already installed, /run/sshd.pid exists (a real sshd runs) or /etc/pam.d/sshd already
loads pam_totp.
"""

import os
import re
import shutil
import subprocess
import time

import snapshot
from harness import REPO, CaseFailed, CaseSkipped, Spawn, check, new_secret, read_tail, run, write_file

PROMPT_CODE = r"Verification code: ?"
PIDFILE = "/run/sshd.pid"
DROP_IN = "/etc/ssh/sshd_config.d/10-pam-totp.conf"
PAM_SSHD = "/etc/pam.d/sshd"
ETC = ["/etc/pam.d", "/etc/ssh", "/etc/security"]
BEGIN = '# pam-totp enable: begin ("pam-totp disable" removes these lines)'
ROLLBACK_TIMEOUT = 12  # enable without --confirm: restored after this
CONFIRM_TIMEOUT = 20  # enable, then a key + code login that confirms within this


def package_cases(s, release_dir):
    w = s.w
    P = {}  # what the first case set up; later cases need it

    def cli(*args, check_rc=True, timeout=30):
        r = subprocess.run(["/usr/bin/pam-totp", *args], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, cwd="/", timeout=timeout)
        if check_rc:
            check(r.returncode == 0, f"pam-totp {' '.join(args)} exited {r.returncode}: "
                                     f"{(r.stderr or r.stdout).strip()}")
        return r

    def need_setup():
        if not P.get("ready"):
            raise CaseSkipped(P.get("why", "the install case failed"))

    def listening_count():
        return len(re.findall(r"Server listening on 127\.0\.0\.1 port", read_tail(P["log"], 100000)))

    def wait_listening(before, what):
        """After a SIGHUP (from enable, disable or the rollback job): sshd re-executed itself
        and listens again, so the next connection sees the new sshd_config."""
        deadline = time.monotonic() + 15
        while listening_count() <= before:
            check(time.monotonic() < deadline, f"sshd was not reloaded after {what}: "
                                               f"{read_tail(P['log'], 5)!r}")
            time.sleep(0.05)

    def ssh(u, how, command=None):
        """how: "key+code" (publickey, then keyboard-interactive), "key" (publickey only),
        "code" (keyboard-interactive only, no key)."""
        argv = ["ssh", "-F", "/dev/null", "-T", "-p", str(P["port"]),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "NumberOfPasswordPrompts=1",
                "-o", "ConnectTimeout=10", "-o", "BatchMode=no", "-o", "IdentitiesOnly=yes",
                "-o", "PasswordAuthentication=no"]
        if how == "code":
            argv += ["-o", "PubkeyAuthentication=no", "-o", "IdentityFile=none",
                     "-o", "PreferredAuthentications=keyboard-interactive"]
        else:
            argv += ["-i", u["key"], "-o", "PreferredAuthentications=" +
                     ("publickey" if how == "key" else "publickey,keyboard-interactive")]
        argv += [f"{u['name']}@127.0.0.1", command or "echo E2E-OK-$(id -un)"]
        p = Spawn(argv, {"PATH": "/usr/bin:/bin", "LANG": "C", "HOME": w.work, "TERM": "dumb"})
        s.cur = p
        return p

    def key_alone(u, expect_ok):
        p = ssh(u, "key")
        i, _ = p.expect([PROMPT_CODE, "EOF"], timeout=20)
        check(i == 1, "a code was asked of a client that offers only its key")
        status = p.finish()
        ok = status == 0 and f"E2E-OK-{u['name']}" in p.transcript
        if expect_ok:
            check(ok, f"the key alone did not log in (exit {status})")
        else:
            check(not ok and status == 255 and "Permission denied" in p.transcript,
                  f"the key alone was not refused (exit {status})")

    def login(u, command=None):
        """Key, then the code computed when the prompt arrives: logged in."""
        p = ssh(u, "key+code", command)
        i, _ = p.expect([PROMPT_CODE, "EOF"], timeout=20)
        check(i == 0, "no code prompt after the key")
        p.sendline(s.code_for(u))
        status = p.finish()
        check(status == 0 and f"E2E-OK-{u['name']}" in p.transcript,
              f"key + code did not log in (exit {status})")
        return p

    def etc_now():
        return snapshot.state(ETC)

    def changed_files(base):
        return sorted({line.split(":")[0] for line in snapshot.differences(base, etc_now(), ETC)})

    def enable(u, timeout):
        """Runs enable; returns its backup dir and the times before and after it ran (its
        deadline, whole seconds, is between t0 - 1 + timeout and t1 + timeout)."""
        before = listening_count()
        t0 = time.time()
        r = cli("enable", "sshd", "--key-and-code", "--user", u["name"], "--timeout", str(timeout))
        t1 = time.time()
        m = re.search(r"backup in (/var/lib/pam-totp/backup/\S+)", r.stdout)
        check(m, f"enable did not name its backup: {r.stdout!r}")
        check(changed_files(P["base"]) == sorted([DROP_IN, PAM_SSHD]),
              f"enable changed {changed_files(P['base'])}, not exactly {[PAM_SSHD, DROP_IN]}")
        with open(PAM_SSHD) as f:
            text = f.read()
        check(BEGIN in text and "#pam-totp-disabled# @include common-auth" in text,
              "/etc/pam.d/sshd lacks enable's lines")
        eff = run(["/usr/sbin/sshd", "-T"]).stdout.lower()
        for want in ("usepam yes", "kbdinteractiveauthentication yes",
                     "authenticationmethods publickey,keyboard-interactive"):
            check(re.search(rf"^{want}$", eff, re.M), f"sshd -T lacks '{want}'")
        wait_listening(before, "enable")
        return m.group(1), t0, t1

    # ---------------------------------------------------------------- install
    def install():
        status = snapshot.dpkg_status()
        if snapshot.installed(status):
            P["why"] = f"pam-totp is installed on this machine ({status}): not touching it"
            raise CaseSkipped(P["why"])
        for path, why in ((PIDFILE, "a real sshd runs (/run/sshd.pid)"), (DROP_IN, f"{DROP_IN} exists")):
            if os.path.lexists(path):
                P["why"] = f"{why}: not touching the system sshd"
                raise CaseSkipped(P["why"])
        with open(PAM_SSHD) as f:
            if "pam_totp" in f.read():
                P["why"] = "/etc/pam.d/sshd already mentions pam_totp: not touching it"
                raise CaseSkipped(P["why"])
        # 1. the snapshot, before anything is touched (recorded first, saved atomically)
        snap = os.path.join(w.dir, "snapshot")
        w.m.add("snapshot", snap)
        P["snap"] = snapshot.save(snap)
        # 2. the .deb from this build, through packaging/deb/build.sh
        tgt = os.path.join(w.work, "deb")
        os.makedirs(os.path.join(tgt, "release"))
        for n in ("libpam_totp.so", "pam-totp"):
            os.symlink(os.path.join(release_dir, n), os.path.join(tgt, "release", n))
        deb = run([os.path.join(REPO, "packaging", "deb", "build.sh")], env=dict(os.environ, CARGO_TARGET_DIR=tgt),
                  timeout=120).stdout.strip().splitlines()[-1]
        check(deb.endswith(".deb") and os.path.isfile(deb), f"build.sh printed {deb!r}")
        run(["dpkg", "-i", deb], env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), timeout=120)
        check(snapshot.installed(snapshot.dpkg_status()), "dpkg says pam-totp is not installed")
        for path, mode in ((f"/usr/lib/{snapshot.MULTIARCH}/security/pam_totp.so", 0o644),
                           ("/usr/bin/pam-totp", 0o755), ("/var/lib/pam-totp/state", 0o700),
                           ("/var/lib/pam-totp/secrets", 0o700), ("/etc/security/pam_totp.conf", 0o644)):
            st = os.lstat(path)
            check(st.st_uid == 0 and (st.st_mode & 0o7777) == mode,
                  f"{path}: mode {oct(st.st_mode & 0o7777)} uid {st.st_uid}, want {oct(mode)} root")
        with open(f"{release_dir}/libpam_totp.so", "rb") as a, \
                open(f"/usr/lib/{snapshot.MULTIARCH}/security/pam_totp.so", "rb") as b:
            check(a.read() == b.read(), "the installed module is not the built one")
        changed = changed_files(P["snap"]["state"])
        check(changed == ["/etc/security/pam_totp.conf"],
              f"installing changed {changed} under /etc (nothing is enabled on installation)")
        P["base"] = etc_now()  # what every rollback and disable must give back, byte for byte

        # 3. the admins (key + password + home-layout secret), sudo for --confirm, the real sshd
        for k in ("ea", "eb"):
            u = w.add_user(k)
            w.add_ssh_key(u)
            P[k] = u
        P["sudoers"] = f"/etc/sudoers.d/{w.tag}-enable"
        tmp = os.path.join(w.work, "sudoers-enable")
        write_file(tmp, f"{P['ea']['name']} ALL=(root) NOPASSWD: /usr/bin/pam-totp enable --confirm\n",
                   0o440, 0, 0)
        run(["visudo", "-cf", tmp])
        w.m.add("path", P["sudoers"])
        shutil.copy2(tmp, P["sudoers"])
        run(["visudo", "-c"])
        P["port"] = port = free_port()
        P["log"] = os.path.join(w.work, "sshd-system.log")
        w.m.add("path", PIDFILE)
        # -E under /var/lib/pamtotp-e2e-*: how scripts/e2e.sh recognises this sshd by its pid
        argv = ["/usr/sbin/sshd", "-D", "-f", "/etc/ssh/sshd_config", "-o", "ListenAddress=127.0.0.1",
                "-o", f"Port={port}", "-o", f"PidFile={PIDFILE}", "-o", "AllowUsers=ptotp-e2e-*",
                "-o", "MaxStartups=50", "-E", P["log"]]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        w.m.add("pid", proc.pid)
        P["proc"] = proc
        deadline = time.monotonic() + 10
        while listening_count() < 1:
            check(proc.poll() is None and time.monotonic() < deadline,
                  f"sshd did not start: {read_tail(P['log'])}")
            time.sleep(0.05)
        P["ready"] = True
    s.case("package: dpkg -i of the built .deb installs module, CLI, state dirs; nothing enabled", install)

    def enroll():
        need_setup()
        for k in ("ea", "eb"):
            u = P[k]
            u["secret"] = new_secret()
            r = run(["/usr/sbin/runuser", "-u", u["name"], "--", "/usr/bin/pam-totp", "enroll", "--secret",
                     u["secret"], "--no-confirm"], cwd=u["home"], stdin=subprocess.DEVNULL,
                    env={"PATH": "/usr/bin:/bin", "HOME": u["home"], "LANG": "C"})
            path = os.path.join(u["home"], ".pam_totp")
            check("home layout" in r.stdout, f"enroll did not use the home layout: {r.stdout!r}")
            st = os.lstat(path)
            check(st.st_uid == u["uid"] and (st.st_mode & 0o7777) == 0o600,
                  f"{path}: mode {oct(st.st_mode & 0o7777)} uid {st.st_uid}")
        key_alone(P["eb"], True)  # the stock configuration: the key alone logs in
    s.case("package: pam-totp enroll --secret --no-confirm as the admin writes ~/.pam_totp; "
           "before enable the key alone logs in", enroll)

    # ---------------------------------------------------------------- enable, not confirmed
    def rollback():
        need_setup()
        u = P["eb"]
        backup, t0, t1 = enable(u, ROLLBACK_TIMEOUT)
        r = cli("doctor", "--user", u["name"], check_rc=False)
        check(r.returncode == 0 and "doctor: no errors" in r.stdout + r.stderr,
              f"doctor with the change in place exited {r.returncode}: {(r.stdout + r.stderr).strip()}")
        key_alone(u, False)
        login(u)
        check(not os.path.exists(os.path.join(backup, "rolled-back")), "rolled back too early")
        listening = listening_count()
        deadline = t1 + ROLLBACK_TIMEOUT + 10
        while not os.path.exists(os.path.join(backup, "rolled-back")):
            check(time.time() < deadline, f"no rollback {ROLLBACK_TIMEOUT + 10} s after enable")
            time.sleep(0.2)
        check(time.time() >= t0 - 1 + ROLLBACK_TIMEOUT, "rolled back before the timeout")
        diff = snapshot.differences(P["base"], etc_now())
        check(not diff, "after the rollback: " + "; ".join(diff))
        wait_listening(listening, "the rollback")
        key_alone(u, True)
    s.case(f"package: enable sshd --key-and-code --timeout {ROLLBACK_TIMEOUT}: key + code logs in, key "
           "alone refused; unconfirmed, every file is restored byte for byte and the key alone logs in",
           rollback)

    # ---------------------------------------------------------------- enable, confirmed
    def confirmed():
        need_setup()
        u = P["ea"]
        backup, _, t1 = enable(u, CONFIRM_TIMEOUT)
        P["enabled"] = True
        key_alone(u, False)
        p = ssh(u, "code")  # no key: sshd never gets to the code
        i, _ = p.expect([PROMPT_CODE, "EOF"], timeout=20)
        check(i == 1, "a code was asked of a client without the key")
        check(p.finish() == 255, "a client without the key was let in")
        # a fresh login (its own audit session, no tty) confirms through sudo
        p = login(u, command="sudo -n /usr/bin/pam-totp enable --confirm && echo E2E-OK-$(id -un)")
        check("pam-totp: confirmed" in p.transcript, "no 'pam-totp: confirmed' from --confirm")
        check(os.path.exists(os.path.join(backup, "confirmed")), "no confirmed marker in the backup")
        changed = changed_files(P["base"])
        while time.time() < t1 + CONFIRM_TIMEOUT + 2:  # the job looks every 0.5 s
            time.sleep(0.2)
        check(not os.path.exists(os.path.join(backup, "rolled-back")), "rolled back although confirmed")
        now = changed_files(P["base"])
        check(now == changed == sorted([DROP_IN, PAM_SSHD]), f"after the timeout the changed files are {now}")
        key_alone(u, False)
        # prerm refuses while /etc/pam.d/sshd uses the module
        r = subprocess.run(["dpkg", "-r", "pam-totp"], capture_output=True, text=True, timeout=120,
                           env={k: v for k, v in os.environ.items() if k != "PAM_TOTP_FORCE_REMOVE"})
        check(r.returncode != 0 and "still used by /etc/pam.d/sshd" in r.stderr,
              f"dpkg -r while enabled: exit {r.returncode}: {r.stderr.strip()[-300:]}")
        check(os.path.exists("/usr/bin/pam-totp") and
              os.path.exists(f"/usr/lib/{snapshot.MULTIARCH}/security/pam_totp.so"),
              "a refused dpkg -r removed files")
    s.case(f"package: enable --timeout {CONFIRM_TIMEOUT}, key + code login runs `sudo pam-totp enable "
           "--confirm`; the change outlives the timeout; dpkg -r refused while in use", confirmed)

    def disable():
        need_setup()
        if not P.get("enabled"):
            raise CaseFailed("needs the enabled sshd of the previous case")
        before = listening_count()
        cli("disable", "sshd")
        diff = snapshot.differences(P["base"], etc_now())
        check(not diff, "after disable: " + "; ".join(diff))
        wait_listening(before, "disable")
        key_alone(P["ea"], True)
    s.case("package: disable sshd restores every file byte for byte; the key alone logs in", disable)

    def remove_purge():
        need_setup()
        env = {k: v for k, v in os.environ.items() if k != "PAM_TOTP_FORCE_REMOVE"}
        env["DEBIAN_FRONTEND"] = "noninteractive"
        run(["dpkg", "-r", "pam-totp"], env=env, timeout=120)
        st = snapshot.dpkg_status()
        check(st.startswith("rc"), f"after dpkg -r the status is {st!r}, not config-files")
        for path in ("/usr/bin/pam-totp", f"/usr/lib/{snapshot.MULTIARCH}/security/pam_totp.so"):
            check(not os.path.exists(path), f"{path} left after dpkg -r")
        check(os.path.exists("/etc/security/pam_totp.conf"), "dpkg -r removed the conffile")
        kept = os.listdir("/var/lib/pam-totp/state")  # the admins' watermarks
        r = run(["dpkg", "-P", "pam-totp"], env=env, timeout=120)
        check(not snapshot.installed(snapshot.dpkg_status()), "dpkg still knows pam-totp after -P")
        check(bool(kept) == os.path.isdir("/var/lib/pam-totp/state"),
              f"purge {'removed' if kept else 'kept'} /var/lib/pam-totp/state with {kept}")
        check(not kept or "kept /var/lib/pam-totp/state" in r.stderr, "purge did not say it kept the state")
        # everything as before the install, except the kept state (secrets, watermarks, backups)
        left = [d for d in snapshot.remaining(P["snap"]) if not d.startswith("/var/lib/pam-totp")]
        check(not left, "after dpkg -P: " + "; ".join(left))
    s.case("package: dpkg -r then dpkg -P remove everything but the kept state", remove_purge)

    def restored():
        need_setup()
        left = snapshot.restore(os.path.join(w.dir, "snapshot"), log=lambda _: None)
        check(not left, "; ".join(left))
    s.case("package: the snapshot restore leaves every watched path as before the install", restored)


def free_port():
    import socket
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]
