#!/usr/bin/env bash
# SECURITY.md catalogue 50: the module's code makes no path-based stat/chown/rename/unlink/
# access calls, touches no umask and no process-wide credentials. Files in user-controlled
# places are reached only through verified directory fds with the *at() calls.
set -euo pipefail
cd "$(dirname "$0")/.."
module_rooms=(src/otp src/store src/pam src/auth.rs src/config.rs src/sys.rs src/lib.rs)
pattern='std::fs::(remove_file|rename|set_permissions|metadata|symlink_metadata|File::open|File::create|OpenOptions|read|write|create_dir)|\bfs::(remove_file|rename|set_permissions|metadata|symlink_metadata)\(|libc::(stat|lstat|chown|lchown|chmod|rename|unlink|access|umask|seteuid|setegid|setuid|setgid|setresuid|setresgid|setgroups|openlog|setenv|signal)\b|rustix::fs::(stat|lstat|chown|chmod|rename|unlink|access)\b|std::env::(var|set_var|remove_var)\b|set_current_dir|process::exit'
hits=$(grep -rnE "$pattern" "${module_rooms[@]}" | grep -v '^src/store/write.rs' | grep -v 'cfg(feature = "fault-injection")' || true)
# Test-only fault injection reads the environment; it is compiled out of release builds.
hits=$(printf '%s\n' "$hits" | grep -vE 'PAM_TOTP_(CRASH_AT|PANIC)' | grep -v '^$' || true)
if [ -n "$hits" ]; then
  echo "lint-syscalls: path-based or process-wide calls in module code (SECURITY.md 1.5, F3):" >&2
  printf '%s\n' "$hits" >&2
  exit 1
fi
echo "lint-syscalls: ok"
