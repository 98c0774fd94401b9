#!/usr/bin/env python3
"""Snapshot and restore of the system files the package e2e cases touch for real.

    snapshot.py save DIR       copies of WATCHED into DIR (plus the dpkg status of pam-totp)
    snapshot.py restore DIR    puts the machine back as DIR recorded it; idempotent
    snapshot.py diff DIR       prints what differs from DIR (exit 1 if anything does)

The `enable` cases install the built .deb and run `pam-totp enable sshd` on the real
/etc/pam.d/sshd and /etc/ssh/sshd_config.d. run.py saves a snapshot first and records it in
the manifest (`snapshot DIR`); both run.py's cleanup and scripts/e2e.sh's trap call
`restore`, which: stops the rollback jobs started by this run (by the pid in their backup
directory, checked against its command line), purges pam-totp if it was not installed
before (PAM_TOTP_FORCE_REMOVE=1), then makes every watched path byte for byte, mode and
owner what it was, removing what was not there. Python standard library only.
"""

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time

PKG = "pam-totp"
MULTIARCH = "x86_64-linux-gnu"
# Trees and single paths the package, pam-auth-update and `pam-totp enable` may write.
WATCHED = [
    "/etc/pam.d",
    "/etc/ssh",
    "/etc/security",
    "/var/lib/pam",  # pam-auth-update's record of profiles
    "/var/lib/pam-totp",
    f"/usr/lib/{MULTIARCH}/security/pam_totp.so",
    "/usr/bin/pam-totp",
    "/usr/share/pam-configs/pam-totp",
    "/usr/share/doc/pam-totp",
    "/usr/share/man/man1/pam-totp.1.gz",
    "/usr/share/man/man5/pam_totp.conf.5.gz",
    "/usr/share/man/man8/pam_totp.8.gz",
]
BACKUP_BASE = "/var/lib/pam-totp/backup"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def entry(path):
    """(kind, mode, uid, gid, sha256 or link target) of one path, or None if absent."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    m = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        return ["link", m, st.st_uid, st.st_gid, os.readlink(path)]
    if stat.S_ISDIR(st.st_mode):
        return ["dir", m, st.st_uid, st.st_gid, ""]
    if stat.S_ISREG(st.st_mode):
        return ["file", m, st.st_uid, st.st_gid, sha256(path)]
    return ["other", m, st.st_uid, st.st_gid, ""]


def state(roots=WATCHED):
    """{path: entry} for every path under the watched roots (absent roots map to None)."""
    out = {}
    for root in roots:
        e = entry(root)
        out[root] = e
        if e and e[0] == "dir":
            for d, dirs, files in os.walk(root):
                for n in sorted(dirs) + sorted(files):
                    p = os.path.join(d, n)
                    out[p] = entry(p)
    return out


def differences(old, new, roots=None):
    """Human-readable lines for each path whose entry differs (limited to `roots`)."""
    def inside(p):
        return roots is None or any(p == r or p.startswith(r.rstrip("/") + "/") for r in roots)
    lines = []
    for p in sorted(set(old) | set(new)):
        if not inside(p):
            continue
        a, b = old.get(p), new.get(p)
        if a == b:
            continue
        if a is None:
            lines.append(f"{p}: added ({b[0]})")
        elif b is None:
            lines.append(f"{p}: removed (was {a[0]})")
        elif a[0] != b[0] or a[4] != b[4]:
            lines.append(f"{p}: contents differ")
        else:
            lines.append(f"{p}: mode/owner {oct(a[1])} {a[2]}:{a[3]} -> {oct(b[1])} {b[2]}:{b[3]}")
    return lines


def dpkg_status():
    r = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}${Version}", PKG],
                       capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else "not-installed"


def installed(status):
    """Anything dpkg still knows about beyond "not installed" (un, or no record)."""
    return status != "not-installed" and not status.startswith("un")


def save(d):
    os.makedirs(os.path.join(d, "files"), mode=0o700)
    st = state()
    copies = {}
    for i, (p, e) in enumerate(sorted(st.items())):
        if e and e[0] == "file":
            dst = os.path.join(d, "files", str(i))
            shutil.copyfile(p, dst)
            copies[p] = dst
    meta = {"state": st, "copies": copies, "dpkg": dpkg_status()}
    tmp = os.path.join(d, "snapshot.json.tmp")
    with open(tmp, "w") as f:
        json.dump(meta, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, os.path.join(d, "snapshot.json"))
    return meta


def load(d):
    with open(os.path.join(d, "snapshot.json")) as f:
        return json.load(f)


def stop_rollback_jobs(meta):
    """TERM the `pam-totp enable --rollback-job` processes of backup dirs this run made."""
    try:
        names = os.listdir(BACKUP_BASE)
    except OSError:
        return []
    stopped = []
    for n in names:
        bdir = os.path.join(BACKUP_BASE, n)
        if bdir in meta["state"]:
            continue  # there before the snapshot: not ours
        try:
            with open(os.path.join(bdir, "job")) as f:
                job = f.read()
        except OSError:
            continue
        for line in job.splitlines():
            if not line.startswith("pid="):
                continue
            try:
                pid = int(line[4:])
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().split(b"\0")
            except (ValueError, OSError):
                continue
            if b"--rollback-job" in cmd and bdir.encode() in cmd:
                try:
                    os.kill(pid, 15)
                    stopped.append(pid)
                except OSError:
                    pass
    return stopped


def removable(p):
    """An extra path restore may delete: what the package, pam-auth-update and enable make.
    Anything else new under /etc is reported, never removed."""
    if not p.startswith("/etc/"):
        return True  # /var/lib/pam-totp, /var/lib/pam, the package's /usr paths
    n = os.path.basename(p)
    return (p in ("/etc/ssh/sshd_config.d/10-pam-totp.conf", "/etc/security/pam_totp.conf")
            or ".pam-totp-" in n or ".dpkg-" in n or ".pamtotp-e2e-" in n
            or n.endswith((".pam-new", ".pam-old")))


def put_back(meta, roots, log):
    """Makes the paths under `roots` what the snapshot recorded (see removable())."""
    old = meta["state"]

    def inside(p):
        return any(p == r or p.startswith(r.rstrip("/") + "/") for r in roots)
    now = {p: e for p, e in state().items() if inside(p)}
    # 1. remove the topmost extras (and what changed kind)
    extra = {p for p, e in now.items()
             if e is not None and (old.get(p) is None or old[p][0] != e[0]) and removable(p)}
    for p in sorted(extra):
        if os.path.dirname(p) in extra:
            continue
        try:
            if now[p][0] == "dir":
                shutil.rmtree(p)
            else:
                os.unlink(p)
            log(f"restore: removed {p}")
        except FileNotFoundError:
            pass
    # 2. put back what was there (parents first)
    for p in sorted((p for p, e in old.items() if e is not None and inside(p)), key=len):
        kind, mode, uid, gid, what = old[p]
        cur = entry(p)
        if cur == old[p] or kind == "other":
            continue
        if kind == "dir":
            if cur is None:
                os.mkdir(p, mode)
        elif kind == "link":
            if cur is not None:
                os.unlink(p)
            os.symlink(what, p)
        elif cur is None or cur[0] != "file" or cur[4] != what:
            tmp = f"{p}.pamtotp-e2e-restore"
            shutil.copyfile(meta["copies"][p], tmp)
            os.chown(tmp, uid, gid)
            os.chmod(tmp, mode)
            os.rename(tmp, p)
            log(f"restore: put back {p}")
        os.chown(p, uid, gid, follow_symlinks=False)
        if kind != "link":
            os.chmod(p, mode)


def remaining(meta):
    left = differences(meta["state"], state())
    now = dpkg_status()
    if now != meta["dpkg"] and (installed(now) or installed(meta["dpkg"])):
        left.append(f"dpkg status of {PKG}: {now} (was {meta['dpkg']})")
    return left


def restore(d, log=print):
    """Puts the watched paths back; returns the remaining differences (empty: clean).
    /etc/pam.d and /etc/ssh first, so that no moment has a pam.d line without its module."""
    meta = load(d)
    for pid in stop_rollback_jobs(meta):
        log(f"restore: stopped rollback job {pid}")
    put_back(meta, ["/etc/pam.d", "/etc/ssh"], log)
    if not installed(meta["dpkg"]) and installed(dpkg_status()):
        env = dict(os.environ, PAM_TOTP_FORCE_REMOVE="1", DEBIAN_FRONTEND="noninteractive")
        for _ in range(60):  # a dpkg still running (its caller was killed) holds the lock
            r = subprocess.run(["dpkg", "--purge", PKG], env=env, capture_output=True, text=True)
            if r.returncode == 0 or "lock" not in r.stderr.lower():
                break
            time.sleep(1)
        if r.returncode != 0:
            r = subprocess.run(["dpkg", "--purge", "--force-remove-reinstreq", PKG], env=env,
                               capture_output=True, text=True)
        log(f"restore: dpkg --purge {PKG}: exit {r.returncode}")
    put_back(meta, WATCHED, log)
    return remaining(meta)


def main(argv):
    if len(argv) != 3 or argv[1] not in ("save", "restore", "diff"):
        print(__doc__, file=sys.stderr)
        return 2
    cmd, d = argv[1], argv[2]
    if cmd == "save":
        save(d)
        return 0
    if not os.path.exists(os.path.join(d, "snapshot.json")):
        return 0  # killed before the snapshot was complete: nothing was touched yet
    left = restore(d) if cmd == "restore" else remaining(load(d))
    for line in left:
        print(f"snapshot: still differs: {line}")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
