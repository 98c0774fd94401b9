#!/usr/bin/env bash
# SECURITY.md catalogue 50: the module's code makes no path-based stat/chown/rename/unlink/
# access calls, touches no umask and no process-wide credentials. Files in user-controlled
# places are reached only through verified directory fds with the *at() calls.
set -euo pipefail
cd "$(dirname "$0")/.."
module_rooms=(src/otp src/store src/pam src/auth.rs src/config.rs src/sys.rs src/lib.rs)
pattern='std::fs::(remove_file|rename|set_permissions|metadata|symlink_metadata|File::open|File::create|OpenOptions|read|write|create_dir)|\bfs::(remove_file|rename|set_permissions|metadata|symlink_metadata)\(|libc::(stat|lstat|chown|lchown|chmod|rename|unlink|access|umask|seteuid|setegid|setuid|setgid|setresuid|setresgid|setgroups|openlog|setenv|signal)\b|rustix::fs::(stat|lstat|chown|chmod|rename|unlink|access)\b|std::env::(var|var_os|vars|vars_os|set_var|remove_var)\b|set_current_dir|process::exit'
# Gaps found in issue 4: never fchown (pam_oath CVE-2024-47191); only re-entrant libc (F4); no
# stdout/stderr, threads or environment from the module (F3, A8); nothing that resolves a path
# by following links (canonicalize/realpath) or opens by path through libc.
pattern+='|\b(fchown|fchownat|chownat|lchown)\b|libc::(getpwnam|getpwuid|getgrnam|getgrgid|getenv|strerror|readdir|localtime|gmtime|ctime|rand|srand|open|fopen|creat|mkdir|symlink|link|truncate|fork|system|popen|execv|execvp|realpath|chdir|alarm)\b|\b(print|println|eprint|eprintln|dbg)!|thread::(spawn|Builder)|\bcanonicalize\(|realpath|\bcatch_interrupts\('
# sys.rs holds the CLI's SIGINT handler (libc::sigaction): allowed there, but no module code
# may call it (signal dispositions belong to the host).
hits=$(grep -rnE "$pattern" "${module_rooms[@]}" | grep -v '^src/store/write.rs' | grep -v 'cfg(feature = "fault-injection")' |
  grep -v '^src/sys.rs:[0-9]*:pub fn catch_interrupts()' || true)
# Path-based calls hidden in an import list: `use rustix::fs::{stat, …}` then `stat(…)`.
imports=$(grep -rlE 'use rustix::fs::\{' "${module_rooms[@]}" | grep -v '^src/store/write.rs' |
  xargs -r perl -0ne 'while (/use rustix::fs::\{([^}]*)\}/g) { my $l = $1; $l =~ s/\s+/ /g; print "$ARGV: use rustix::fs::{$l}\n" }' |
  grep -E '[{ ,](stat|lstat|chown|chmod|rename|unlink|access|fchown|chownat|fchownat|symlink|link)[ ,}]' || true)
if [ -n "$imports" ]; then
  hits=$(printf '%s\n%s' "$hits" "$imports")
fi
# Test-only fault injection reads the environment; it is compiled out of release builds.
hits=$(printf '%s\n' "$hits" | grep -vE 'PAM_TOTP_(CRASH_AT|PANIC)' | grep -v '^$' || true)
if [ -n "$hits" ]; then
  echo "lint-syscalls: path-based or process-wide calls in module code (SECURITY.md 1.5, F3):" >&2
  printf '%s\n' "$hits" >&2
  exit 1
fi
echo "lint-syscalls: ok"
