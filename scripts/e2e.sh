#!/usr/bin/env bash
# End-to-end tests: the built module under a real sshd (127.0.0.1, a free high port) and a
# real sudo, configured from the shipped files in config/. Called by `make test` after
# `cargo build --release`; needs root, and the packages `scripts/deps.sh test` installs.
# Everything it creates (users ptotp-e2e-*, /etc/pam.d/pamtotp-e2e-*, a sudoers drop-in,
# /usr/local/sbin/pamtotp-e2e-* symlinks, /var/lib/pamtotp-e2e-*, sshd processes) is
# listed in a manifest as it is made and removed on exit, failure and signals included.
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
        # only an sshd started through one of our symlinks
        if tr '\0' ' ' 2>/dev/null <"/proc/$value/cmdline" | grep -q '^/usr/local/sbin/pamtotp-e2e-'; then
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
      path)
        case "$value" in
          /var/lib/pamtotp-e2e-*|/etc/pam.d/pamtotp-e2e-*|/etc/sudoers.d/pamtotp-e2e-*|/usr/local/sbin/pamtotp-e2e-*)
            rm -rf -- "$value" ;;
          /dev/log) [ -S /dev/log ] && rm -f /dev/log ;;
          /run/sshd) rmdir /run/sshd 2>/dev/null ;;
        esac ;;
    esac
  done
  rm -f "$file"
}

cleanup() {
  if [ -n "$harness_pid" ] && kill -0 "$harness_pid" 2>/dev/null; then
    kill -TERM "$harness_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$harness_pid" 2>/dev/null || break; sleep 0.1; done
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
E2E_TAG="$tag" timeout --signal=TERM 280 python3 -B -u "$repo/tests/e2e/run.py" "$module" "$manifest" "$cli" \
  > >(tee "$out") 2>&1 &
harness_pid=$!
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
