#!/usr/bin/env bash
# cargo-fuzz targets for every parser (STYLE.md "Tests", SECURITY.md §6 row 50).
#
#   scripts/fuzz.sh [SECONDS]      run each target for SECONDS (default 30), one at a time
#   scripts/fuzz.sh --build-only   only build them (what CI may do)
#   FUZZ_TARGETS="answer state_file" scripts/fuzz.sh 600   a subset
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain (`rustup toolchain
# install nightly`); without nightly, RUSTC_BOOTSTRAP=1 lets stable accept -Zsanitizer.
# Runs under `nice -n 19`. Crashes land in fuzz/artifacts/<target>/; every one becomes a
# regression test (tests/fuzz_regressions.rs or a unit test) before it is fixed.
set -euo pipefail
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
cd "$(dirname "$0")/../fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz is not installed; run: cargo install cargo-fuzz" >&2
  exit 1
fi
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi

all_targets=$(cargo "${toolchain[@]}" fuzz list)
targets=${FUZZ_TARGETS:-$all_targets}

if [ "${1:-}" = "--build-only" ]; then
  nice -n 19 cargo "${toolchain[@]}" fuzz build
  echo "fuzz: built: $(echo $targets)"
  exit 0
fi
seconds=${1:-30}
case $seconds in
  ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS|--build-only]" >&2; exit 2 ;;
esac

nice -n 19 cargo "${toolchain[@]}" fuzz build
status=0
for t in $targets; do
  mkdir -p "corpus/$t" "artifacts/$t"
  log="artifacts/$t/last-run.log"
  echo "fuzz: $t for ${seconds}s"
  if nice -n 19 cargo "${toolchain[@]}" fuzz run "$t" "corpus/$t" -- \
      -max_total_time="$seconds" -max_len=70000 -timeout=10 -rss_limit_mb=1024 \
      -print_final_stats=1 >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    echo "fuzz: $t ok, ${execs:-?} executions"
  else
    echo "fuzz: $t FAILED; see fuzz/$log and fuzz/artifacts/$t/" >&2
    tail -30 "$log" >&2
    status=1
  fi
done
exit $status
