#!/usr/bin/env bash
# Memory check of the real module through the real libpam: the test binaries of
# tests/libpam.rs (every SPEC §3 row, concurrency) and tests/adversarial.rs (SECURITY.md §6)
# run under valgrind memcheck; any invalid access, use of uninitialised memory, double free
# or definite/indirect leak fails the run.
#
#   scripts/valgrind.sh                 both test binaries
#   VALGRIND_TESTS="libpam" scripts/valgrind.sh
#   VALGRIND_SKIP="racing" scripts/valgrind.sh      skip tests whose names contain these
#
# By default the adversarial tests that exist for volume (1500 random answers, symlink
# swapping and file-growing threads that spin) are skipped: valgrind runs one thread at a
# time, so spinning threads starve the login under test, and every pam_start/pam_end
# dlopens the module again, which valgrind pays for in memory.
#
# Needs valgrind (Debian: apt-get install valgrind). Prints the time taken.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null; then
  echo "valgrind: not installed; run: apt-get install valgrind" >&2
  exit 1
fi
tests=${VALGRIND_TESTS:-libpam adversarial}
skip=${VALGRIND_SKIP-racing random_answers growing}
args=()
for t in $tests; do args+=(--test "$t"); done
skips=()
for s in $skip; do skips+=(--skip "$s"); done
mapfile -t bins < <(cargo test --locked --no-run --message-format=json "${args[@]}" 2>/dev/null |
  grep -o '"executable":"[^"]*"' | sed 's/^"executable":"//; s/"$//' |
  grep -E "/deps/($(echo "$tests" | tr ' ' '|'))-[0-9a-f]+$")
if [ "${#bins[@]}" -eq 0 ]; then
  echo "valgrind: no test binaries built" >&2
  exit 1
fi
start=$(date +%s)
status=0
for b in "${bins[@]}"; do
  log=$(mktemp)
  echo "valgrind: $(basename "$b")"
  # One test at a time. (No --keep-debuginfo: it keeps the debug info of every dlclosed copy
  # of the module, gigabytes over a few thousand logins; frames there print as ???.)
  # Still-reachable blocks (libpam's and glibc's one-time allocations, Rust's thread-locals)
  # are not errors; definite and indirect leaks are.
  out=$(mktemp)
  if ! RUST_TEST_THREADS=1 valgrind --quiet --error-exitcode=1 --leak-check=full \
      --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
      --suppressions=scripts/valgrind.supp --log-file="$log" \
      "$b" --test-threads=1 -q "${skips[@]}" >"$out" 2>&1; then
    echo "valgrind: $(basename "$b") FAILED" >&2
    cat "$log" >&2
    grep -E -A3 'panicked|FAILED|^test result' "$out" >&2 || tail -20 "$out" >&2
    status=1
  else
    errors=$(grep -c '^==[0-9]*== ' "$log" || true)
    echo "valgrind: $(basename "$b") ok (${errors} lines of valgrind output)"
  fi
  rm -f "$log" "$out"
done
echo "valgrind: done in $(( $(date +%s) - start )) s"
exit $status
