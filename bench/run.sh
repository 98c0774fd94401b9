#!/bin/bash
# bench/run.sh - pam_totp vs google-authenticator (GA) vs pam_oath, through real libpam.
#
# Run as root (make bench).  Creates bench users ptotp-bench0..N-1 and a root-only
# work dir /var/lib/pam-totp-bench.XXXXXX; removes both on exit.  Never touches
# /etc/pam.d: every handle comes from pam_start_confdir() on a private directory.
# See bench/README.md for what each number means.
#
# Knobs (environment):
#   BENCH_ITERS        sequential attempts per service per scenario        (400)
#   BENCH_CONC_TOTAL   attempts per service per concurrency level          (512)
#   BENCH_CONC_BLOCKS  interleaved blocks per concurrency level            (4)
#   BENCH_USERS        bench users (>= 32; TOTP-success samples per module) (32);
#                      BENCH_CONC_BLOCKS more are created for the one-user contention runs
#   BENCH_CG_ITERS     attempts under callgrind per service (0 = skip)     (20)
#   BENCH_STRACE_ITERS attempts under strace per service (0 = skip)        (100)
#   BENCH_HOTP_WINDOW  HOTP look-ahead given to all three modules          (10)
#   PAM_TOTP_SO        module to test      (<repo>/target/release/libpam_totp.so)
#   BENCH_CONSOLE=real let log lines reach the real /dev/console (default: /dev/null, see below)
#   BENCH_KEEP=1       keep the work dir and users (for debugging)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
OUT=$HERE/out
SO=${PAM_TOTP_SO:-$ROOT/target/release/libpam_totp.so}
ITERS=${BENCH_ITERS:-400}
CONC_TOTAL=${BENCH_CONC_TOTAL:-512}
NUSERS=${BENCH_USERS:-32}
CONC_BLOCKS=${BENCH_CONC_BLOCKS:-4}
ALLUSERS=$((NUSERS + CONC_BLOCKS)) # the last CONC_BLOCKS users serve the one-user contention runs
CG_ITERS=${BENCH_CG_ITERS:-20}
ST_ITERS=${BENCH_STRACE_ITERS:-100}
W=${BENCH_HOTP_WINDOW:-10}
UPFX=ptotp-bench
MODDIR=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/security

die() { echo "bench: $*" >&2; exit 1; }
retry() { # useradd/userdel fail while another process (other tests) holds /etc/passwd's lock
    local t
    for t in 1 2 3 4 5 6 7 8 9 10; do "$@" && return 0; sleep 0.5; done
    return 1
}
[ "$(id -u)" = 0 ] || die "run as root (creates users and root-owned secret files)"
# No syslog daemon runs on the bench machines, so syslog(3) with LOG_CONS (pam_syslog, GA)
# falls back to writing every log line to /dev/console, a slow serial console that costs
# milliseconds per line and says nothing about the modules.  Unless BENCH_CONSOLE=real, run
# in a private mount namespace where /dev/console is /dev/null (nothing outside changes).
if [ "${BENCH_CONSOLE:-null}" != real ] && [ -z "${BENCH_IN_NS:-}" ]; then
    exec unshare --mount --propagation private env BENCH_IN_NS=1 "$0" "$@"
fi
if [ -n "${BENCH_IN_NS:-}" ] && [ -e /dev/console ]; then mount --bind /dev/null /dev/console; fi
[ "$NUSERS" -ge 32 ] || die "BENCH_USERS must be >= 32 (the 32-process level uses one user per process)"
for m in pam_google_authenticator.so pam_oath.so pam_permit.so pam_deny.so; do
    [ -e "$MODDIR/$m" ] || die "$MODDIR/$m missing (apt-get install libpam-google-authenticator libpam-oath)"
done
[ -e /usr/include/openssl/hmac.h ] || die "libssl-dev missing (apt-get install libssl-dev)"

HAVE_TOTP=0
if [ -e "$SO" ]; then HAVE_TOTP=1; else echo "bench: $SO missing: pam_totp column will be n/a" >&2; fi

mkdir -p "$OUT"
gcc -O2 -Wall -Wno-deprecated-declarations -o "$OUT/driver" "$HERE/driver.c" -lpam -lcrypto
DRIVER=$OUT/driver

# ---------- set-up, with cleanup on any exit ----------
D=
DRV_PID=
cleanup() {
    set +e
    if [ -n "$DRV_PID" ]; then kill "$DRV_PID" 2>/dev/null; wait "$DRV_PID" 2>/dev/null; fi
    if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $D and users $UPFX*" >&2; return; fi
    for ((i = 0; i < ALLUSERS; i++)); do
        id "$UPFX$i" >/dev/null 2>&1 && retry userdel -r "$UPFX$i" >/dev/null 2>&1
    done
    [ -n "$D" ] && [ -d "$D" ] && rm -rf -- "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

D=$(mktemp -d /var/lib/pam-totp-bench.XXXXXX)
chmod 0700 "$D"
umask 077

for ((i = 0; i < ALLUSERS; i++)); do
    u=$UPFX$i
    if id "$u" >/dev/null 2>&1; then retry userdel -r "$u" >/dev/null 2>&1 || true; fi
    if [ "$i" = 0 ]; then home=-m; else home=-M; fi
    retry useradd "$home" -s /usr/sbin/nologin "$u" || die "useradd $u failed"
done

# HOTP counters used per user (bounds the precomputed code table)
NCODES=$((2 * ITERS + 3 * CONC_TOTAL + CG_ITERS + ST_ITERS + 256))
# A random key, redrawn while two counters a module scans together share a code (see keycheck)
: >"$OUT/keycheck.err"
for t in 1 2 3 4 5 6 7 8 9 10; do
    KEYHEX=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
    "$DRIVER" -d /nonexistent -k "$KEYHEX" -C "$NCODES" keycheck 2>>"$OUT/keycheck.err" && break
done
KEYB32=$(printf '%s' "$KEYHEX" | xxd -r -p | base32 | tr -d '=\n')

mkdir -p "$D"/{pam.d,secrets-hotp,secrets-totp,state-hotp,state-totp,ga-hotp,ga-totp,oath-hotp,oath-totp}
cat >"$D/pam_totp.conf" <<EOF
# bench only: rate limit raised to the module's maximum (64; 1000000 is refused with
# PAM_SERVICE_ERR) so the wrong-code scenarios, spread over all bench users, are not cut off,
# and no fail delay requested (the driver's PAM_FAIL_DELAY callback would not sleep anyway).
max_failures = 64
failure_interval = 900
max_daily_failures = 64
fail_delay_ms = 0
EOF
: >"$D/oath-hotp/users.oath"
: >"$D/oath-totp/users.oath"
for ((i = 0; i < ALLUSERS; i++)); do
    u=$UPFX$i
    uid=$(id -u "$u")
    printf 'version = 1\nid = "bench"\ntype = "hotp"\nsecret = "%s"\nalgorithm = "SHA1"\ndigits = 6\ncounter = 0\nwindow = %s\n' \
        "$KEYB32" "$W" >"$D/secrets-hotp/$uid"
    printf 'version = 1\nid = "bench"\ntype = "totp"\nsecret = "%s"\nalgorithm = "SHA1"\ndigits = 6\nperiod = 30\nwindow = 1\n' \
        "$KEYB32" >"$D/secrets-totp/$uid"
    # HOTP look-ahead W means W acceptable counters next..next+W-1 in all three: pam_totp
    # window=W, GA WINDOW_SIZE W, pam_oath window=W (liboath scans stored..stored+W, the
    # stored one being the used counter).  TOTP: one step either side (GA WINDOW_SIZE 3);
    # DISALLOW_REUSE gives GA the replay protection the other two have.
    printf '%s\n" WINDOW_SIZE %s\n" HOTP_COUNTER 1\n' "$KEYB32" "$W" >"$D/ga-hotp/$u"
    printf '%s\n" WINDOW_SIZE 3\n" DISALLOW_REUSE\n" TOTP_AUTH\n' "$KEYB32" >"$D/ga-totp/$u"
    echo "HOTP $u - $KEYHEX" >>"$D/oath-hotp/users.oath"
    echo "HOTP/T30 $u - $KEYHEX" >>"$D/oath-totp/users.oath"
done
chown -R root:root "$D"
chmod 0700 "$D"/*/
chmod 0600 "$D"/secrets-*/* "$D"/ga-*/* "$D"/oath-*/* "$D/pam_totp.conf"

# Snapshot the module: a rebuild during the run must not change (or half-replace) it.
if [ "$HAVE_TOTP" = 1 ]; then
    SO_SHA=$(sha256sum "$SO" | cut -c1-16)
    install -m 0644 -o root -g root "$SO" "$D/libpam_totp.so"
    SO_RUN=$D/libpam_totp.so
fi
P=$D/pam.d
echo 'auth required pam_deny.so' >"$P/other"
echo 'auth required pam_permit.so' >"$P/permit"
echo "auth required ${SO_RUN:-$SO} secret=$D/secrets-hotp/%U state_dir=$D/state-hotp config=$D/pam_totp.conf" >"$P/totp-hotp"
echo "auth required ${SO_RUN:-$SO} secret=$D/secrets-totp/%U state_dir=$D/state-totp config=$D/pam_totp.conf" >"$P/totp-totp"
echo "auth required pam_google_authenticator.so secret=$D/ga-hotp/\${USER} user=root no_increment_hotp" >"$P/ga-hotp"
echo "auth required pam_google_authenticator.so secret=$D/ga-totp/\${USER} user=root" >"$P/ga-totp"
echo "auth required pam_google_authenticator.so secret=$D/ga-totp/\${USER} user=root noskewadj" >"$P/ga-totp-noskew"
echo "auth required pam_oath.so usersfile=$D/oath-hotp/users.oath window=$W" >"$P/oath-hotp"
echo "auth required pam_oath.so usersfile=$D/oath-totp/users.oath window=1" >"$P/oath-totp"
chmod 0644 "$P"/*

if [ "$HAVE_TOTP" = 1 ]; then
    HSVC="permit totp-hotp ga-hotp oath-hotp"
    TSVC="permit totp-totp ga-totp oath-totp"
else
    HSVC="permit ga-hotp oath-hotp"
    TSVC="permit ga-totp oath-totp"
fi

CTR=$D/counters
RES=$OUT/results.txt
: >"$RES"
ERR=$OUT/driver.err
: >"$ERR"
drv() { # a crashing module must not take the whole run down: note it and go on
    local rc=0
    # in the background + wait, so a signal runs the cleanup trap at once (which stops it)
    "$DRIVER" -d "$P" -k "$KEYHEX" -c "$CTR" -u "$UPFX" -C "$NCODES" "$@" >>"$RES" 2>>"$ERR" &
    DRV_PID=$!
    wait "$DRV_PID" || rc=$?
    DRV_PID=
    [ "$rc" = 0 ] || echo "bench: driver $* exited with status $rc (see $ERR)" >&2
}
step() { printf 'bench: %-60s %s\n' "$*" "$(date +%T)" >&2; }

# ---------- timed scenarios ----------
step "sync HOTP counters ($ALLUSERS users)"
drv -t sync -U "$ALLUSERS" sync $HSVC
step "HOTP ok, fresh handle, $ITERS x interleaved"
drv -t seq-hotp-ok -n "$ITERS" hotp $HSVC
step "HOTP ok, reused handle"
drv -t seq-hotp-reuse -r -n "$ITERS" hotp $HSVC
step "HOTP wrong code"
drv -t seq-hotp-wrong -R -U "$NUSERS" -n "$ITERS" hotp-wrong $HSVC
step "TOTP warm-up (one wrong code per user creates state)"
drv -t warm -U "$NUSERS" -P "$NUSERS" -B -b 1 -n 1 totp-wrong $TSVC
step "TOTP wrong code"
drv -t seq-totp-wrong -R -U "$NUSERS" -n "$ITERS" totp-wrong $TSVC ga-totp-noskew
step "TOTP ok, one success per user and module ($NUSERS users)"
drv -t seq-totp-ok -U "$NUSERS" totp $TSVC
for p in 1 8 32; do
    per=$((CONC_TOTAL / p)); [ "$per" -ge "$CONC_BLOCKS" ] || per=$CONC_BLOCKS
    step "HOTP ok, $p processes, one user each, $per attempts each"
    drv -t "conc-$p" -U "$NUSERS" -P "$p" -B -b "$CONC_BLOCKS" -n "$per" hotp $HSVC
done
# at most 7 attempts per process and block: <= 56 attempts, so < 64 failures, per contention user
shared_n=$((CONC_TOTAL / 8)); [ "$shared_n" -le $((7 * CONC_BLOCKS)) ] || shared_n=$((7 * CONC_BLOCKS))
step "HOTP, 8 processes on ONE user per block (contention), $shared_n attempts each"
drv -t conc-8-shared -S "$NUSERS" -P 8 -B -b "$CONC_BLOCKS" -n "$shared_n" hotp $HSVC
step "verify counters (replay of last must fail, next must pass)"
drv -t verify -U "$ALLUSERS" verify ${HSVC#permit }
# files still parse for the tools that own them
{
    echo "R files ga-hotp counter_user0 $(sed -n 's/^" HOTP_COUNTER //p' "$D/ga-hotp/${UPFX}0")"
    echo "R files oath-hotp counter_user0 $(awk -v u="${UPFX}0" '$2==u {print $5}' "$D/oath-hotp/users.oath")"
    echo "R files oath-hotp lines $(grep -c . "$D/oath-hotp/users.oath")"
} >>"$RES"

# ---------- instructions (callgrind) and syscalls (strace) per attempt ----------
cg_ir() { # file -> total Ir
    awk '/^(summary|totals):/ {print $2; exit}' "$1"
}
if [ "$CG_ITERS" -gt 0 ]; then
    step "callgrind: $CG_ITERS attempts per service, minus a 0-attempt run"
    cg() { # tag mode n svc
        local f=$OUT/cg.$1.$4.out
        rm -f "$f"
        valgrind --tool=callgrind --callgrind-out-file="$f" "$DRIVER" -d "$P" -k "$KEYHEX" -c "$CTR" \
            -u "$UPFX" -C "$NCODES" -U "$NUSERS" -R ${CGFLAGS:-} -t "$1" -n "$3" "$2" "$4" >"$f.res" 2>>"$OUT/valgrind.err" ||
            echo "bench: callgrind run $1 $4 failed" >&2
        cat "$f.res" >>"$RES"
        # only when attempts really ran (a service whose HOTP sync failed is skipped)
        if [ "$2" = none ] || grep -q "^R $1 $4 n [1-9]" "$f.res"; then [ -e "$f" ] && cg_ir "$f"; fi
    }
    base=$(cg cg-base none 0 permit)
    for scen in hotp hotp-reuse totp-wrong; do
        svcs=$HSVC mode=$scen CGFLAGS=
        [ "$scen" = totp-wrong ] && svcs=$TSVC
        [ "$scen" = hotp-reuse ] && mode=hotp CGFLAGS=-r
        for s in $svcs; do
            ir=$(cg "cg-$scen" "$mode" "$CG_ITERS" "$s")
            [ -n "$ir" ] && [ -n "$base" ] && echo "R cg-$scen $s ir $(((ir - base) / CG_ITERS))" >>"$RES"
        done
    done
fi
if [ "$ST_ITERS" -gt 0 ]; then
    step "strace -f -c: $ST_ITERS attempts per service, minus a 0-attempt run"
    st() { # tag mode n svc -> "calls fsyncs"
        local f=$OUT/st.$1.$4.out
        strace -f -c -o "$f" "$DRIVER" -d "$P" -k "$KEYHEX" -c "$CTR" -u "$UPFX" -C "$NCODES" \
            -U "$NUSERS" -R -t "$1" -n "$3" "$2" "$4" >"$f.res" 2>>"$ERR" || echo "bench: strace run $1 $4 failed" >&2
        cat "$f.res" >>"$RES"
        [ "$2" = none ] || grep -q "^R $1 $4 n [1-9]" "$f.res" || return 0
        awk '$NF=="total" {c=$4} $NF ~ /^(fsync|fdatasync|syncfs|sync_file_range)$/ {f+=$4}
             END {print c+0, f+0}' "$f"
    }
    read -r bc bf < <(st st-base none 0 permit)
    for s in $HSVC; do
        read -r c f < <(st st-hotp hotp "$ST_ITERS" "$s") || continue
        echo "R st-hotp $s calls $(awk -v a="$c" -v b="$bc" -v n="$ST_ITERS" 'BEGIN{printf "%.1f", (a-b)/n}')" >>"$RES"
        echo "R st-hotp $s fsyncs $(awk -v a="$f" -v b="$bf" -v n="$ST_ITERS" 'BEGIN{printf "%.2f", (a-b)/n}')" >>"$RES"
    done
    for s in $TSVC; do
        read -r c f < <(st st-totp-wrong totp-wrong "$ST_ITERS" "$s") || continue
        echo "R st-totp-wrong $s calls $(awk -v a="$c" -v b="$bc" -v n="$ST_ITERS" 'BEGIN{printf "%.1f", (a-b)/n}')" >>"$RES"
        echo "R st-totp-wrong $s fsyncs $(awk -v a="$f" -v b="$bf" -v n="$ST_ITERS" 'BEGIN{printf "%.2f", (a-b)/n}')" >>"$RES"
    done
fi

# ---------- the core alone (needs a hook in the crate) ----------
# Expects an executable that prints "R core <service> <key> <value>" lines, e.g.
#   R core floor ns_per_hmac 150         one HMAC-SHA1 of an 8-byte counter, same key
#   R core totp-hotp ns_per_candidate 170  find_match() over the HOTP look-ahead / candidates
# Default: cargo's examples/bench_core.rs build (cargo build --release --example bench_core).
CORE=${BENCH_CORE:-$ROOT/target/release/examples/bench_core}
if [ -x "$CORE" ]; then
    step "core alone: $CORE"
    "$CORE" "${BENCH_CORE_ITERS:-200000}" 2>>"$ERR" | grep '^R core ' >>"$RES" || echo "bench: $CORE failed" >&2
else
    echo "R core none missing 1" >>"$RES"
fi

# ---------- the table ----------
step "done"
echo
echo "pam-totp bench  $(date -u +%FT%TZ)  $(uname -r)  $(nproc) cpu  HOTP look-ahead $W, TOTP window +-1 step, SHA1, 6 digits"
echo "pam_totp: $([ "$HAVE_TOTP" = 1 ] && echo "$SO (sha256 $SO_SHA..., $(stat -c %y "$SO" | cut -c1-19), copied into the work dir)" || echo "n/a ($SO missing)")"
echo "pam_totp runs with config=$D/pam_totp.conf: max_failures = 64, max_daily_failures = 64 (the module's maximum), fail_delay_ms = 0;"
echo "  wrong-code attempts rotate over the $NUSERS users (<= ~12 failures per uid), contention uses $CONC_BLOCKS extra users"
echo "syslog: no daemon; LOG_CONS fallback goes to $([ -n "${BENCH_IN_NS:-}" ] && echo "/dev/null (private mount namespace)" || echo "the real /dev/console")"
echo "GA: user=root secret=<dir>/\${USER} no_increment_hotp, DISALLOW_REUSE, default skew detection (and noskewadj row)"
echo
"$HERE/table.awk" "$RES"
