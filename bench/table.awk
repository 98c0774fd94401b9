#!/usr/bin/awk -f
# bench/table.awk RESULTS - one table from the driver's "R tag service key value" lines.
function col(svc) {
    if (svc == "permit") return "P"
    if (svc == "floor") return "floor"
    if (svc ~ /^totp-/) return "T"
    if (svc == "ga-totp-noskew") return "Gn"
    if (svc ~ /^ga-/) return "G"
    if (svc ~ /^oath-/) return "O"
    return svc
}
function get(tag, c, key) {
    if ((tag, c, key) in v) return v[tag, c, key]
    return ""
}
function fmt(x) {
    if (x == "") return "n/a"
    if (x == "-") return x
    if (x + 0 >= 1000000) return sprintf("%.3gM", x / 1000000)
    if (x + 0 >= 100000) return sprintf("%.0fk", x / 1000)
    if (x + 0 >= 1000) return sprintf("%.0f", x)
    if (x + 0 >= 10) return sprintf("%.1f", x)
    return sprintf("%.2f", x)
}
function ratio(a, b) {
    if (a == "" || b == "" || b + 0 == 0) return "n/a"
    return sprintf("%.2f", a / b)
}
# row: label, tag, key, GA column variant
function row(label, tag, key, gcol,    p, t, g, o) {
    p = get(tag, "P", key); t = get(tag, "T", key); g = get(tag, gcol, key); o = get(tag, "O", key)
    if (gcol == "Gn") { p = ""; o = "" }
    if (key ~ /^(dup|verify_)/) p = "-"  # pam_permit accepts anything: no counter to check
    printf "%-44s %10s %10s %10s %10s %9s %9s\n", label, fmt(p), fmt(t), fmt(g), fmt(o), ratio(t, g), ratio(t, o)
}
function rcname(r) {
    split("SUCCESS OPEN_ERR SYMBOL_ERR SERVICE_ERR SYSTEM_ERR BUF_ERR PERM_DENIED AUTH_ERR " \
          "CRED_INSUFFICIENT AUTHINFO_UNAVAIL USER_UNKNOWN MAXTRIES NEW_AUTHTOK_REQD ACCT_EXPIRED " \
          "SESSION_ERR CRED_UNAVAIL CRED_EXPIRED CRED_ERR NO_MODULE_DATA CONV_ERR AUTHTOK_ERR " \
          "AUTHTOK_RECOVERY_ERR AUTHTOK_LOCK_BUSY AUTHTOK_DISABLE_AGING TRY_AGAIN IGNORE ABORT " \
          "AUTHTOK_EXPIRED MODULE_UNKNOWN BAD_ITEM CONV_AGAIN INCOMPLETE", n, " ")
    return (r + 1 in n) ? "PAM_" n[r + 1] : "rc " r
}
$1 == "R" {
    c = col($3)
    v[$2, c, $4] = $5
    if ($4 ~ /^rc_/) rcs[$2 SUBSEP $3 SUBSEP substr($4, 4)] = $5
    if ($4 ~ /^sync_failed_/) syncfail[$3 SUBSEP $5]++
    if ($4 == "skipped") skipped[$2 SUBSEP $3] = 1
}
END {
    for (k in v) {
        split(k, a, SUBSEP)
        if (a[3] == "n" && v[k] > 0) pct[a[1], a[2], "okpct"] = 100 * get(a[1], a[2], "ok") / v[k]
    }
    for (k in pct) v[k] = pct[k]
    printf "%-44s %10s %10s %10s %10s %9s %9s\n", "scenario (unit)", "permit", "pam_totp", "GA", "oath", "totp/GA", "totp/oath"
    printf "%-44s %10s %10s %10s %10s %9s %9s\n", "--------------------------------------------", "------", "--------", "--", "----", "-------", "---------"
    row("HOTP ok, fresh handle, p50 (us)", "seq-hotp-ok", "p50_us", "G")
    row("HOTP ok, fresh handle, p99 (us)", "seq-hotp-ok", "p99_us", "G")
    row("HOTP ok, fresh handle, success (%)", "seq-hotp-ok", "okpct", "G")
    row("HOTP ok, reused handle, p50 (us)", "seq-hotp-reuse", "p50_us", "G")
    row("HOTP ok, reused handle, success (%)", "seq-hotp-reuse", "okpct", "G")
    row("HOTP wrong code, fresh, p50 (us)", "seq-hotp-wrong", "p50_us", "G")
    row("TOTP wrong code, fresh, p50 (us)", "seq-totp-wrong", "p50_us", "G")
    row("TOTP wrong code, fresh, p99 (us)", "seq-totp-wrong", "p99_us", "G")
    row("  same, GA with noskewadj, p50 (us)", "seq-totp-wrong", "p50_us", "Gn")
    row("TOTP wrong: fail delay asked (ms/fail)", "seq-totp-wrong", "delay_ms_per_fail", "G")
    row("TOTP ok, fresh, 1 per user, p50 (us)", "seq-totp-ok", "p50_us", "G")
    row("TOTP ok, fresh, 1 per user, success (%)", "seq-totp-ok", "okpct", "G")
    for (i = 1; i <= 3; i++) {
        p = (i == 1) ? 1 : (i == 2) ? 8 : 32
        row(sprintf("HOTP ok, %2d procs x own user: auth/s", p), "conc-" p, "tput", "G")
        row(sprintf("HOTP ok, %2d procs x own user: p50 (us)", p), "conc-" p, "p50_us", "G")
        row(sprintf("HOTP ok, %2d procs x own user: p99 (us)", p), "conc-" p, "p99_us", "G")
        row(sprintf("HOTP ok, %2d procs x own user: success (%%)", p), "conc-" p, "okpct", "G")
    }
    row("HOTP, 8 procs x 1 user: successes/s", "conc-8-shared", "ok_tput", "G")
    row("HOTP, 8 procs x 1 user: p50 (us)", "conc-8-shared", "p50_us", "G")
    row("HOTP, 8 procs x 1 user: p99 (us)", "conc-8-shared", "p99_us", "G")
    row("HOTP, 8 procs x 1 user: success (%)", "conc-8-shared", "okpct", "G")
    row("HOTP, 8 procs x 1 user: code accepted twice", "conc-8-shared", "dup", "G")
    row("counter check: users off (of checked)", "verify", "verify_bad", "G")
    row("counter check: users checked", "verify", "verify_checked", "G")
    row("instructions/attempt, HOTP ok (callgrind)", "cg-hotp", "ir", "G")
    row("instructions/attempt, HOTP ok, reused handle", "cg-hotp-reuse", "ir", "G")
    row("instructions/attempt, TOTP wrong", "cg-totp-wrong", "ir", "G")
    row("syscalls/attempt, HOTP ok (strace)", "st-hotp", "calls", "G")
    row("fsync+fdatasync/attempt, HOTP ok", "st-hotp", "fsyncs", "G")
    row("syscalls/attempt, TOTP wrong", "st-totp-wrong", "calls", "G")
    row("fsync+fdatasync/attempt, TOTP wrong", "st-totp-wrong", "fsyncs", "G")
    v["core", "P", "ns_per_candidate"] = get("core", "floor", "ns_per_hmac")
    row("core: ns/candidate (permit col: HMAC floor)", "core", "ns_per_candidate", "G")

    # Unexpected PAM results: anything but SUCCESS where success was expected, but AUTH_ERR
    # on the wrong-code paths.
    hdr = 0
    for (k in rcs) {
        split(k, a, SUBSEP)
        tag = a[1]; svc = a[2]; r = a[3]
        if (tag == "sync" || tag == "verify" || tag == "warm") continue
        want = (tag ~ /wrong/) ? 7 : 0
        if (tag == "conc-8-shared" && r == 7) continue  # losing the race is the expected failure
        if (svc == "permit") continue
        if (r != want) {
            if (!hdr) { print ""; print "unexpected PAM results (scenario, service, result, count):"; hdr = 1 }
            printf "  %-16s %-16s %-22s %s\n", tag, svc, rcname(r), rcs[k]
        }
    }
    for (k in syncfail) {
        split(k, a, SUBSEP)
        if (!hdr) { print ""; print "unexpected PAM results (scenario, service, result, count):"; hdr = 1 }
        printf "  %-16s %-16s %-22s %s users (no right code among counters 0..7)\n", "sync", a[1], rcname(a[2]), syncfail[k]
    }
    for (k in skipped) {
        split(k, a, SUBSEP)
        if (!hdr) { print ""; print "unexpected PAM results (scenario, service, result, count):"; hdr = 1 }
        printf "  %-16s %-16s %-22s\n", a[1], a[2], "skipped (HOTP sync failed)"
    }
}
