#!/usr/bin/env bash
# End-to-end tests: the built module under a real sshd (127.0.0.1, a free high port) and a
# real sudo, configured from the shipped files in config/. Called by `make test` after
# `cargo build --release`; needs root, and the packages `scripts/deps.sh test` installs.
# Everything it creates (users ptotp-e2e-*, /etc/pam.d/pamtotp-e2e-*, a sudoers drop-in,
# /usr/local/sbin/pamtotp-e2e-* symlinks, /var/lib/pamtotp-e2e-*, sshd processes) is
# listed in a manifest as it is made and removed on exit, failure and signals included.
# The package cases (tests/e2e/package.py) install the built .deb and run `pam-totp enable
# sshd` on the real /etc/pam.d/sshd and sshd_config.d, with a real sshd on PidFile
# /run/sshd.pid: a snapshot of those files is taken first and restored here too (pam-totp
# purged, rollback jobs stopped, every file put back byte for byte).
# The last line of output is `N passed, N failed`.
set -uo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "e2e: skipped (needs root)"
  exit 0
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
# E2E_MODULE: test another build of the module (absolute path).
module="${E2E_MODULE:-$repo/target/release/libpam_totp.so}"
cli="$repo/target/release/pam-totp"
tag="pamtotp-e2e-$$"
manifest="/run/$tag.manifest"
out="/run/$tag.out"
lock=/run/pamtotp-e2e.lock
harness_pid=

# Undo one manifest, newest entry first. Only names this script makes are ever removed.
undo_manifest() {
  local file=$1 kind value uid pid
  [ -f "$file" ] || return 0
  tac "$file" | while read -r kind value; do
    case "$kind" in
      pid)
        # only an sshd started through one of our symlinks, or the package cases' system sshd
        # (its -E log is under /var/lib/pamtotp-e2e-*; as a listener its title is "sshd: ARGV")
        if tr '\0' ' ' 2>/dev/null <"/proc/$value/cmdline" |
             grep -Eq '^/usr/local/sbin/pamtotp-e2e-|^(sshd: )?/usr/sbin/sshd .* -E /var/lib/pamtotp-e2e-'; then
          kill -TERM "$value" 2>/dev/null
          sleep 0.2
          kill -KILL "$value" 2>/dev/null
        fi ;;
      user)
        case "$value" in ptotp-e2e-*) ;; *) continue ;; esac
        if uid=$(id -u "$value" 2>/dev/null); then
          # their leftover session processes, by pid (no procps needed)
          for pid in $(awk -v u="$uid" '$1 == "Uid:" && $2 == u { split(FILENAME, p, "/"); print p[3] }' \
                         /proc/[0-9]*/status 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null
          done
          # retried: a concurrent useradd/userdel elsewhere may hold /etc/passwd's lock
          for _ in $(seq 20); do
            userdel -f -r "$value" >/dev/null 2>&1
            id -u "$value" >/dev/null 2>&1 || break
            sleep 0.5
          done
        fi ;;
      group)
        case "$value" in ptotp-e2e-*)
          for _ in $(seq 20); do
            getent group "$value" >/dev/null || break
            groupdel "$value" >/dev/null 2>&1 || sleep 0.5
          done ;;
        esac ;;
      snapshot)
        # the system files the package cases touch: rollback jobs stopped, pam-totp purged,
        # /etc/pam.d, /etc/ssh, ... put back byte for byte (tests/e2e/snapshot.py)
        case "$value" in /var/lib/pamtotp-e2e-*)
          python3 -B "$repo/tests/e2e/snapshot.py" restore "$value" ;;
        esac ;;
      path)
        case "$value" in
          /var/lib/pamtotp-e2e-*|/etc/pam.d/pamtotp-e2e-*|/etc/sudoers.d/pamtotp-e2e-*|/usr/local/sbin/pamtotp-e2e-*)
            rm -rf -- "$value" ;;
          /dev/log) [ -S /dev/log ] && rm -f /dev/log ;;
          /run/sshd) rmdir /run/sshd 2>/dev/null ;;
          /run/sshd.pid) rm -f /run/sshd.pid ;;
        esac ;;
    esac
  done
  rm -f "$file"
}

cleanup() {
  if [ -n "$harness_pid" ] && kill -0 "$harness_pid" 2>/dev/null; then
    kill -TERM "$harness_pid" 2>/dev/null
    # up to 30 s: its cleanup may be purging the package and restoring /etc (snapshot.py)
    for _ in $(seq 300); do kill -0 "$harness_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$harness_pid" 2>/dev/null
  fi
  undo_manifest "$manifest"
  rm -f "$out" "$lock"
}

missing=()
for cmd in sshd ssh ssh-keygen sudo visudo oathtool python3 useradd userdel chpasswd flock; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("$cmd")
done
if [ ${#missing[@]} -ne 0 ]; then
  echo "e2e: missing commands: ${missing[*]} (run: scripts/deps.sh test)"
  echo "0 passed, 1 failed"
  exit 1
fi
if [ ! -f "$module" ]; then
  echo "e2e: $module not built (run: cargo build --release)"
  echo "0 passed, 1 failed"
  exit 1
fi

exec 9>"$lock"
if ! flock -n 9; then
  echo "e2e: another e2e run holds $lock"
  echo "0 passed, 1 failed"
  exit 1
fi
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Leftovers of a run that was killed outright (we hold the lock, so none is running).
for old in /run/pamtotp-e2e-*.manifest; do
  [ -f "$old" ] && [ "$old" != "$manifest" ] && undo_manifest "$old"
done

: >"$manifest"
start=$(date +%s)
E2E_TAG="$tag" python3 -B -u "$repo/tests/e2e/run.py" "$module" "$manifest" "$cli" \
  > >(tee "$out") 2>&1 &
harness_pid=$!
# The time limit: TERM to the harness alone, which then undoes its manifest. Not `timeout`:
# it signals its whole process group, so a useradd or dpkg the harness is running would die
# holding /etc/passwd's or dpkg's lock, and killing `timeout` would not stop the harness.
( for _ in $(seq 280); do kill -0 "$harness_pid" 2>/dev/null || exit 0; sleep 1; done
  echo "e2e: time limit (280 s) reached" >&2
  kill -TERM "$harness_pid" 2>/dev/null
  for _ in $(seq 300); do kill -0 "$harness_pid" 2>/dev/null || exit 0; sleep 0.1; done
  kill -KILL "$harness_pid" 2>/dev/null ) &
wait "$harness_pid"
rc=$?
harness_pid=
sleep 0.2  # let tee flush
last=$(tail -n 1 "$out" 2>/dev/null)
rm -f "$out"
if ! [[ "$last" =~ ^[0-9]+\ passed,\ [0-9]+\ failed$ ]]; then
  echo "e2e: the harness ended without a result after $(( $(date +%s) - start )) s (exit $rc)"
  echo "0 passed, 1 failed"
  exit 1
fi
[ "$rc" -eq 0 ]
