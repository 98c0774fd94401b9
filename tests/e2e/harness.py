"""Plumbing for the pam-totp end-to-end tests: users, secrets, a real sshd, sudo, ptys.

Python standard library only. Runs as root on a disposable machine. Everything it creates
is written to a manifest first (see Manifest), so scripts/e2e.sh can undo it even when this
process dies; cleanup() here undoes it too, and both are idempotent.
"""

import base64
import hashlib
import hmac
import os
import pty
import pwd
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONFIG = os.path.join(REPO, "config")
PREFIX = "pamtotp-e2e"  # names of files, services and symlinks this run creates
USER_PREFIX = "ptotp-e2e-"  # test user and group names

REPLAY_RE = re.compile(r"This code was already used; wait for the next one \(about (\d+) s\)\.")


class CaseFailed(Exception):
    """A check inside a case did not hold."""


class CaseSkipped(Exception):
    """A case cannot run here; says why."""


def check(cond, msg):
    if not cond:
        raise CaseFailed(msg)


def run_locked(argv, **kw):
    """run() for the shadow-utils commands, retried while another process (a concurrent test
    or bench) holds /etc/passwd's lock."""
    for attempt in range(20):
        try:
            return run(argv, **kw)
        except RuntimeError as e:
            if attempt == 19 or "lock" not in str(e).lower():
                raise
            time.sleep(0.5)


def run(argv, **kw):
    """subprocess.run with text output; raises with the output on a non-zero exit."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 30)
    res = subprocess.run(argv, **kw)
    if res.returncode != 0 and kw.get("check", True) is not False:
        raise RuntimeError(f"{' '.join(argv)} exited {res.returncode}: {res.stdout}{res.stderr}".strip())
    return res


# ---------------------------------------------------------------- codes

def totp(secret_b32, at=None, step=30, digits=6, offset=0):
    """RFC 6238 TOTP (HMAC-SHA1) for the step containing `at` (default: now), plus offset."""
    s = secret_b32.upper().replace(" ", "")
    key = base64.b32decode(s + "=" * (-len(s) % 8))
    counter = int((time.time() if at is None else at) // step) + offset
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    o = mac[-1] & 0x0F
    val = (struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % (10 ** digits)
    return str(val).zfill(digits)


def wrong_code(secret_b32):
    """A 6-digit code that matches no step within +-3 of now (nor of the next few seconds)."""
    near = {totp(secret_b32, offset=k) for k in range(-4, 5)}
    c = int(totp(secret_b32))
    while True:
        c = (c + 371_293) % 1_000_000
        cand = str(c).zfill(6)
        if cand not in near:
            return cand


def new_secret():
    return base64.b32encode(os.urandom(20)).decode().rstrip("=")


def secret_toml(secret_b32, ident):
    return (
        "version = 1\n"
        f'id = "{ident}"\n'
        'type = "totp"\n'
        f'secret = "{secret_b32}"\n'
        'algorithm = "SHA1"\n'
        "digits = 6\n"
        "period = 30\n"
    )


def seconds_left_in_step(step=30):
    return step - (time.time() % step)


# ---------------------------------------------------------------- manifest / cleanup

class Manifest:
    """Append-only list of what this run created, fsynced line by line.

    Line kinds: `pid N`, `user NAME`, `group NAME`, `path PATH`, `snapshot DIR` (system files
    saved by tests/e2e/snapshot.py, restored). scripts/e2e.sh replays it backwards on exit;
    cleanup() does the same from Python.
    """

    def __init__(self, path):
        self.path = path
        self.entries = []

    def add(self, kind, value):
        value = str(value)
        assert "\n" not in value
        self.entries.append((kind, value))
        with open(self.path, "a") as f:
            f.write(f"{kind} {value}\n")
            f.flush()
            os.fsync(f.fileno())

    def cleanup(self):
        uids = set()
        for kind, value in self.entries:
            if kind == "user":
                try:
                    uids.add(pwd.getpwnam(value).pw_uid)
                except KeyError:
                    pass
        for kind, value in reversed(self.entries):
            if kind == "pid":
                kill_pid(int(value))
        kill_uid_processes(uids)
        for kind, value in reversed(self.entries):
            try:
                if kind in ("user", "group"):
                    argv = ["userdel", "-f", "-r", value] if kind == "user" else ["groupdel", value]
                    for _ in range(20):  # retried while /etc/passwd is locked by someone else
                        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
                        if r.returncode == 0 or "lock" not in (r.stderr + r.stdout).lower():
                            break
                        time.sleep(0.5)
                elif kind == "snapshot":  # tests/e2e/snapshot.py: the package cases' system files
                    import snapshot
                    if os.path.exists(os.path.join(value, "snapshot.json")):
                        for line in snapshot.restore(value):
                            print(f"cleanup: after the restore still differs: {line}", flush=True)
                elif kind == "path":
                    if os.path.islink(value) or os.path.isfile(value) or is_socket(value):
                        os.unlink(value)
                    elif os.path.isdir(value) and PREFIX in value:
                        shutil.rmtree(value, ignore_errors=True)
                    elif os.path.isdir(value):
                        os.rmdir(value)  # e.g. /run/sshd: only if still empty
            except OSError:
                pass
            except Exception as e:  # one failed undo must not stop the others
                print(f"cleanup: {kind} {value}: {type(e).__name__}: {e}", flush=True)


def is_socket(path):
    try:
        import stat
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except OSError:
        return False


def kill_pid(pid):
    """Stop one process this run started: TERM, then KILL after 3 s."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(30):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return
        except ChildProcessError:
            if not os.path.exists(f"/proc/{pid}"):
                return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def kill_uid_processes(uids):
    """Kill leftover processes running as the test users (their sessions), by pid."""
    if not uids:
        return
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) in uids:
                            os.kill(int(d), signal.SIGKILL)
                        break
        except (OSError, ValueError):
            pass


# ---------------------------------------------------------------- syslog capture

class SyslogCapture:
    """Binds /dev/log when nothing else does (these machines run no syslog daemon), so the
    module's pam_syslog lines can be shown on failure and checked for leaked codes."""

    def __init__(self, manifest):
        self.lines = []
        self.active = False
        self.sock = None
        if os.path.exists("/dev/log") or os.path.islink("/dev/log"):
            return
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            manifest.add("path", "/dev/log")
            s.bind("/dev/log")
            os.chmod("/dev/log", 0o666)
        except OSError:
            return
        self.sock = s
        self.active = True
        t = threading.Thread(target=self._loop, daemon=True)
        t.start()

    def _loop(self):
        while True:
            try:
                data = self.sock.recv(8192)
            except OSError:
                return
            self.lines.append((time.time(), data.decode("utf-8", "replace").rstrip("\n")))

    def since(self, t0):
        return [line for (t, line) in list(self.lines) if t >= t0]

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass


# ---------------------------------------------------------------- processes with a pty

class Spawn:
    """A child process driven like `expect`: through a pty (what a person sees) or, with
    pipes=True, through stdin/stdout pipes (stderr merged), e.g. for `sudo -S`."""

    def __init__(self, argv, env, user=None, pipes=False):
        self.buf = ""
        self.pos = 0
        self.pipes = pipes
        self.status = None
        pw = pwd.getpwnam(user) if user else None
        if pipes:
            def demote():
                if pw:
                    os.initgroups(pw.pw_name, pw.pw_gid)
                    os.setgid(pw.pw_gid)
                    os.setuid(pw.pw_uid)
            self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, preexec_fn=demote,
                                         cwd=pw.pw_dir if pw else "/")
            self.pid = self.proc.pid
            self.fd = self.proc.stdout.fileno()
        else:
            pid, fd = pty.fork()
            if pid == 0:  # child
                try:
                    if pw:
                        os.initgroups(pw.pw_name, pw.pw_gid)
                        os.setgid(pw.pw_gid)
                        os.setuid(pw.pw_uid)
                        os.chdir(pw.pw_dir)
                    os.execvpe(argv[0], argv, env)
                finally:
                    os._exit(127)
            self.pid, self.fd = pid, fd

    def _read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return None
        try:
            data = os.read(self.fd, 4096)
        except OSError:  # EIO: pty closed
            data = b""
        if not data:
            return ""
        self.buf += data.decode("utf-8", "replace")
        return data

    def expect(self, patterns, timeout=15):
        """Waits for the first of the regexes (or "EOF") to appear; returns (index, match)."""
        regs = [None if p == "EOF" else re.compile(p) for p in patterns]
        deadline = time.monotonic() + timeout
        while True:
            for i, rg in enumerate(regs):
                if rg is None:
                    continue
                m = rg.search(self.buf, self.pos)
                if m:
                    self.pos = m.end()
                    return i, m
            left = deadline - time.monotonic()
            if left <= 0:
                raise CaseFailed(f"timed out waiting for {patterns!r}")
            got = self._read(left)
            if got == "":
                if "EOF" in patterns:
                    return patterns.index("EOF"), None
                raise CaseFailed(f"process ended while waiting for {patterns!r}")

    def send(self, text):
        if self.pipes:
            self.proc.stdin.write(text.encode())
            self.proc.stdin.flush()
        else:
            os.write(self.fd, text.encode())

    def sendline(self, text):
        self.send(text + ("\n" if self.pipes else "\r"))

    def finish(self, timeout=20):
        """Reads to EOF and reaps the child; returns its exit status (-signal if killed)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    kill_pid(self.pid)
                    raise CaseFailed("process did not end in time")
                if self._read(min(left, 1.0)) == "":
                    break
        finally:
            if self.pipes:
                try:
                    self.proc.stdin.close()
                except OSError:
                    pass
        if self.pipes:
            self.status = self.proc.wait(timeout=max(1, deadline - time.monotonic()))
        else:
            try:
                os.close(self.fd)
            except OSError:
                pass
            _, st = os.waitpid(self.pid, 0)
            self.status = os.waitstatus_to_exitcode(st)
        return self.status

    def close(self):
        if self.status is None:
            kill_pid(self.pid)
            try:
                os.close(self.fd)
            except OSError:
                pass

    @property
    def transcript(self):
        return self.buf


# ---------------------------------------------------------------- system objects

class World:
    """The temp dirs, users, services and daemons one run creates."""

    def __init__(self, manifest, module):
        self.m = manifest
        self.module = module
        self.tag = os.environ.get("E2E_TAG") or f"{PREFIX}-{os.getpid()}"
        assert self.tag.startswith(PREFIX + "-")
        self.dir = None
        self.users = {}  # name -> dict(password, secret, uid, home)
        self.sshds = {}

    # -- directories (central layout rules: root-owned, no g/o write, from /)
    def setup_dirs(self):
        d = f"/var/lib/{self.tag}"
        self.m.add("path", d)
        os.mkdir(d, 0o700)
        os.chmod(d, 0o700)
        self.dir = d
        for sub in ("secrets", "state"):
            os.mkdir(os.path.join(d, sub), 0o700)
        os.mkdir(os.path.join(d, "work"), 0o700)
        self.secrets = os.path.join(d, "secrets")
        self.state = os.path.join(d, "state")
        self.work = os.path.join(d, "work")
        if not os.path.isdir("/run/sshd"):
            self.m.add("path", "/run/sshd")
            os.mkdir("/run/sshd", 0o755)

    # -- users
    def add_group(self, name):
        self.m.add("group", name)
        run_locked(["groupadd", name])

    def add_user(self, short, groups=()):
        name = USER_PREFIX + short
        self.m.add("user", name)
        argv = ["useradd", "-m", "-s", "/bin/bash"]
        if groups:
            argv += ["-G", ",".join(groups)]
        run_locked(argv + [name])
        pw = pwd.getpwnam(name)
        password = "Pw-" + base64.b32encode(os.urandom(10)).decode().lower() + "x"
        run_locked(["chpasswd"], input=f"{name}:{password}\n")
        os.chmod(pw.pw_dir, 0o750)
        u = dict(name=name, uid=pw.pw_uid, gid=pw.pw_gid, home=pw.pw_dir, password=password, secret=None)
        self.users[short] = u
        return u

    def enroll_central(self, u, secret=None):
        u["secret"] = secret or new_secret()
        path = os.path.join(self.secrets, str(u["uid"]))
        write_file(path, secret_toml(u["secret"], f"e2e-{u['name']}"), 0o600, 0, 0)
        return path

    def enroll_home(self, u, secret=None):
        u["secret"] = secret or new_secret()
        path = os.path.join(u["home"], ".pam_totp")
        write_file(path, secret_toml(u["secret"], f"e2e-{u['name']}"), 0o600, u["uid"], u["gid"])
        return path

    def add_ssh_key(self, u):
        key = os.path.join(self.work, f"id-{u['name']}")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", u["name"], "-f", key])
        sshdir = os.path.join(u["home"], ".ssh")
        os.mkdir(sshdir, 0o700)
        os.chown(sshdir, u["uid"], u["gid"])
        with open(key + ".pub") as f:
            write_file(os.path.join(sshdir, "authorized_keys"), f.read(), 0o600, u["uid"], u["gid"])
        u["key"] = key
        return key

    # -- PAM service files made from config/pam.d (the shipped files, substituted)
    def pam_text(self, shipped, args="", subst=()):
        """The shipped file with pam_totp.so replaced by the built module plus test arguments
        (state_dir always), and further (old, new) substitutions on non-comment lines."""
        with open(os.path.join(CONFIG, "pam.d", shipped)) as f:
            text = f.read()
        out = []
        for line in text.splitlines():
            if not line.lstrip().startswith("#"):
                line = re.sub(r"(?<![\w/])pam_totp\.so\b",
                              f"{self.module} state_dir={self.state}" + (f" {args}" if args else ""), line)
                for old, new in subst:
                    line = line.replace(old, new)
            out.append(line)
        return "\n".join(out) + "\n"

    def install_service(self, service, text):
        path = f"/etc/pam.d/{service}"
        assert service.startswith(PREFIX) and service not in ("sshd", "sudo")
        self.m.add("path", path)
        write_file(path, text, 0o644, 0, 0)
        return path

    # -- sshd
    def start_sshd(self, scen, snippet, pam_text):
        """Starts sshd on 127.0.0.1 as service `<tag>-<scen>` with the shipped sshd_config.d
        snippet Included first (as Debian's sshd_config does). Returns a dict."""
        service = f"{self.tag}-{scen}"
        d = os.path.join(self.work, f"sshd-{scen}")
        os.mkdir(d, 0o700)
        hostkey = os.path.join(d, "host_ed25519")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostkey])
        port = free_port()
        cfg = os.path.join(d, "sshd_config")
        snippet_path = os.path.join(CONFIG, "sshd_config.d", snippet)
        write_file(cfg, "\n".join([
            f"# pam-totp e2e, scenario {scen}",
            f"Include {snippet_path}",
            f"Port {port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {hostkey}",
            f"PidFile {d}/sshd.pid",
            "AuthorizedKeysFile .ssh/authorized_keys",
            f"AllowUsers {USER_PREFIX}*",
            "PermitRootLogin no",
            "UseDNS no",
            "StrictModes yes",
            "PrintMotd no",
            "MaxAuthTries 4",
            "MaxStartups 50",
            "LoginGraceTime 30",
            "LogLevel VERBOSE",
            "",
        ]), 0o600, 0, 0)
        self.install_service(service, pam_text)
        prog = f"/usr/local/sbin/{service}"
        self.m.add("path", prog)
        if os.path.lexists(prog):
            os.unlink(prog)
        os.symlink("/usr/sbin/sshd", prog)
        run([prog, "-t", "-f", cfg])
        eff = run([prog, "-T", "-f", cfg]).stdout
        log = os.path.join(d, "sshd.log")
        proc = subprocess.Popen([prog, "-D", "-f", cfg, "-E", log], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.m.add("pid", proc.pid)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sshd {service} did not start: {read_tail(log)}")
                time.sleep(0.05)
        s = dict(service=service, port=port, cfg=cfg, log=log, proc=proc, effective=eff)
        self.sshds[scen] = s
        return s

    def set_sshd_pam(self, scen, text):
        write_file(f"/etc/pam.d/{self.sshds[scen]['service']}", text, 0o644, 0, 0)

    def ssh(self, scen, u, key=False, command=None):
        """Starts the real ssh client (in a pty) against scenario `scen` as user u."""
        s = self.sshds[scen]
        argv = ["ssh", "-F", "/dev/null", "-T", "-p", str(s["port"]),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "NumberOfPasswordPrompts=1",
                "-o", "ConnectTimeout=10", "-o", "BatchMode=no", "-o", "IdentitiesOnly=yes"]
        if key:
            argv += ["-o", "PubkeyAuthentication=yes", "-i", u["key"],
                     "-o", "PreferredAuthentications=publickey,keyboard-interactive"]
        else:
            argv += ["-o", "PubkeyAuthentication=no", "-o", "IdentityFile=none",
                     "-o", "PreferredAuthentications=keyboard-interactive"]
        argv += [f"{u['name']}@127.0.0.1", command or "echo E2E-OK-$(id -un)"]
        env = {"PATH": "/usr/bin:/bin", "LANG": "C", "HOME": self.work, "TERM": "dumb"}
        return Spawn(argv, env)

    # -- sudo
    def setup_sudo(self, pam_text, users):
        service = f"{self.tag}-sudo"
        self.install_service(service, pam_text)
        path = f"/etc/sudoers.d/{self.tag}"
        lines = ["# pam-totp e2e: these users authenticate through the test PAM service"]
        for u in users:
            lines.append(f"Defaults:{u['name']} pam_service={service}, lecture=never, passwd_tries=1, "
                         f"timestamp_timeout=0, !insults")
            lines.append(f"{u['name']} ALL=(root) /usr/bin/id")
        tmp = os.path.join(self.work, "sudoers")
        write_file(tmp, "\n".join(lines) + "\n", 0o440, 0, 0)
        run(["visudo", "-cf", tmp])
        self.m.add("path", path)
        shutil.copy2(tmp, path)
        os.chmod(path, 0o440)
        run(["visudo", "-c"])
        self.sudo_service = service

    def sudo(self, u, stdin_mode):
        """Starts `sudo -k /usr/bin/id -u` as user u: `-S` through pipes, or on a pty."""
        env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C", "HOME": u["home"],
               "USER": u["name"], "LOGNAME": u["name"], "TERM": "dumb"}
        if stdin_mode:
            return Spawn(["sudo", "-S", "-k", "/usr/bin/id", "-u"], env, user=u["name"], pipes=True)
        return Spawn(["sudo", "-k", "/usr/bin/id", "-u"], env, user=u["name"])


def write_file(path, text, mode, uid, gid):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chown(path, uid, gid, follow_symlinks=False)
    os.chmod(path, mode)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_tail(path, n=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""
