/*
 * bench/driver.c - drive PAM modules through libpam with a private config dir.
 *
 * Built by bench/run.sh:  gcc -O2 -o bench/out/driver bench/driver.c -lpam -lcrypto
 *
 * Every attempt is a real pam_authenticate() through libpam, on a service read
 * with pam_start_confdir() from a private directory (never /etc/pam.d).  The
 * conversation answers the prompt with a code computed here (HMAC-SHA1 via
 * libcrypto); HOTP codes are precomputed into a table before anything is timed,
 * TOTP codes come from a small precomputed per-step table.  A no-op
 * PAM_FAIL_DELAY callback is installed on every handle so failures never sleep;
 * it records the delay the modules asked for.
 *
 * usage: driver [options] MODE SERVICE...
 *   MODE      sync | hotp | hotp-wrong | totp | totp-wrong | verify | none | keycheck
 *   -d DIR    private PAM config dir                       (required)
 *   -k HEX    shared secret, hex                            (required)
 *   -c FILE   HOTP counter file ("service user next" lines), read and rewritten
 *   -u PFX    user name prefix; users are PFX0, PFX1, ...    (ptotp-bench)
 *   -U N      number of users (sync, verify, totp)           (1)
 *   -n N      attempts per service (per worker when -P > 1)  (100)
 *   -P N      worker processes (fork) running at once        (1)
 *   -b N      blocks: -P>1 runs services in N interleaved blocks  (4)
 *   -B        block mode even with -P 1 (one forked worker per block)
 *   -s        shared user: every worker authenticates PFX0 (contention)
 *   -S BASE   shared user per block: block b's workers all authenticate PFX<BASE+b>
 *   -R        rotate users: sequential attempt i authenticates PFX<i % N> (-U N); keeps each
 *             uid's failure count low on wrong-code runs (pam_totp caps its limits at 64)
 *   -r        reuse one handle per service instead of pam_start/pam_end per attempt
 *   -t NAME   scenario tag printed in result lines
 *   -C N      HOTP counters precomputed (fixed per run, so a 0-attempt run costs the same) (8192)
 *
 * Result lines on stdout:  R <tag> <service> <key> <value>
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <openssl/hmac.h>
#include <openssl/evp.h>
#include <security/pam_appl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXSVC 12
#define MAXUSERS 256
#define TOTP_STEPS 64 /* TOTP steps precomputed from (now - 2) */
#define MAXRC 40

struct svcstat {
    _Atomic long rc[MAXRC];
    _Atomic long delay_calls;
    _Atomic long delay_usec;
    _Atomic long info_msgs;
    _Atomic long dup_success; /* success whose counter another success already took */
    double wall_sec;          /* summed wall time of the blocks of this service */
};

struct shared {
    _Atomic long next[MAXSVC][MAXUSERS]; /* HOTP counter the module should accept next */
    struct svcstat st[MAXSVC];
};

static struct shared *sh;
static double *lat;  /* [svc][sample] microseconds */
static long lat_cap; /* samples per service */

static unsigned char key[128];
static size_t keylen;
static char (*hotp)[8];           /* precomputed HOTP codes */
static char totp[TOTP_STEPS][8];  /* precomputed TOTP codes */
static long totp_base;            /* step of totp[0] */

static const char *confdir, *ctrfile, *upfx = "ptotp-bench", *tag = "x";
static long NCODES = 8192; /* HOTP counters 0..NCODES-1 precomputed (-C) */
static int nusers = 1, nattempts = 100, nprocs = 1, nblocks = 4, blockmode, shared_user, reuse;
static int shared_base = -1; /* -S: block b of a shared-user run uses user shared_base + b */
static int rotate;           /* -R: sequential attempt i uses user i % nusers */
static const char *svcs[MAXSVC];
static int nsvc;
static int skip[MAXSVC]; /* services left out of this run (no HOTP counter) */

/* ---- OTP ---- */
static void otp(uint64_t ctr, char out[8])
{
    unsigned char msg[8], mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    for (int i = 7; i >= 0; i--) {
        msg[i] = ctr & 0xff;
        ctr >>= 8;
    }
    HMAC(EVP_sha1(), key, (int)keylen, msg, 8, mac, &maclen);
    int off = mac[maclen - 1] & 0x0f;
    uint32_t bin = ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
                   ((uint32_t)mac[off + 2] << 8) | mac[off + 3];
    snprintf(out, 8, "%06u", bin % 1000000u);
}

static const char *totp_now(void)
{
    long step = (long)(time(NULL) / 30) - totp_base;
    if (step < 0 || step >= TOTP_STEPS) {
        fprintf(stderr, "driver: TOTP table exhausted\n");
        exit(3);
    }
    return totp[step];
}

/* ---- conversation and fail delay ---- */
static const char *answer;
static int cur_svc;

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *appdata)
{
    (void)appdata;
    struct pam_response *r = calloc((size_t)n, sizeof *r);
    if (!r)
        return PAM_BUF_ERR;
    for (int i = 0; i < n; i++) {
        switch (msg[i]->msg_style) {
        case PAM_PROMPT_ECHO_OFF:
        case PAM_PROMPT_ECHO_ON:
            r[i].resp = strdup(answer ? answer : "");
            break;
        default:
            atomic_fetch_add(&sh->st[cur_svc].info_msgs, 1);
            break;
        }
    }
    *resp = r;
    return PAM_SUCCESS;
}
static struct pam_conv pconv = {conv, NULL};

static void fail_delay(int retval, unsigned usec, void *appdata)
{
    (void)retval;
    (void)appdata;
    atomic_fetch_add(&sh->st[cur_svc].delay_calls, 1);
    atomic_fetch_add(&sh->st[cur_svc].delay_usec, (long)usec);
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void user_name(int u, char *buf, size_t n) { snprintf(buf, n, "%s%d", upfx, u); }

static pam_handle_t *open_handle(int s, const char *user)
{
    pam_handle_t *h = NULL;
    int rc = pam_start_confdir(svcs[s], user, &pconv, confdir, &h);
    if (rc != PAM_SUCCESS) {
        fprintf(stderr, "driver: pam_start_confdir(%s): %d\n", svcs[s], rc);
        exit(2);
    }
    pam_set_item(h, PAM_FAIL_DELAY, (const void *)fail_delay);
    return h;
}

/* One attempt.  h != NULL: reuse that handle.  Returns the PAM code; *us the latency. */
static int attempt(int s, const char *user, pam_handle_t *h, const char *code, double *us)
{
    cur_svc = s;
    answer = code;
    double t0 = now_us();
    int rc;
    if (h) {
        rc = pam_authenticate(h, 0);
    } else {
        h = open_handle(s, user);
        rc = pam_authenticate(h, 0);
        pam_end(h, rc);
    }
    *us = now_us() - t0;
    if (rc >= 0 && rc < MAXRC)
        atomic_fetch_add(&sh->st[s].rc[rc], 1);
    return rc;
}

/* A code that is none of the HOTP candidates near the counter nor a TOTP code near now. */
static void wrong_code(int s, int u, char out[8])
{
    long c = atomic_load(&sh->next[s][u]);
    int v = (atoi(c >= 0 && c < NCODES ? hotp[c] : "0") + 500000) % 1000000;
    for (;;) {
        snprintf(out, 8, "%06d", v);
        int clash = 0;
        for (long k = c - 2; k < c + 40; k++)
            if (k >= 0 && k < NCODES && strcmp(hotp[k], out) == 0)
                clash = 1;
        for (int k = 0; k < TOTP_STEPS; k++)
            if (strcmp(totp[k], out) == 0)
                clash = 1;
        if (!clash)
            return;
        v = (v + 7919) % 1000000;
    }
}

enum mode { M_NONE, M_KEYCHECK, M_SYNC, M_HOTP, M_HOTP_WRONG, M_TOTP, M_TOTP_WRONG, M_VERIFY };
static enum mode mode;

/* Worker body: nattempts attempts (or `count`) of service s for user index u. */
static void run_attempts(int s, int u, long count, long lat_off, pam_handle_t *h)
{
    char user[64], code[8];
    user_name(u, user, sizeof user);
    for (long i = 0; i < count; i++) {
        double us;
        long k = -1;
        const char *ans;
        switch (mode) {
        case M_HOTP:
            k = atomic_load(&sh->next[s][u]);
            if (k < 0 || k >= NCODES) {
                fprintf(stderr, "driver: counter %ld out of table\n", k);
                exit(3);
            }
            ans = hotp[k];
            break;
        case M_TOTP:
            ans = totp_now();
            break;
        default:
            wrong_code(s, u, code);
            ans = code;
            break;
        }
        int rc = attempt(s, user, h, ans, &us);
        if (rc == PAM_SUCCESS && mode == M_HOTP) {
            long exp = k;
            if (!atomic_compare_exchange_strong(&sh->next[s][u], &exp, k + 1))
                atomic_fetch_add(&sh->st[s].dup_success, 1);
        }
        if (lat_off + i < lat_cap)
            lat[(long)s * lat_cap + lat_off + i] = us;
    }
}

/* ---- counter file ---- */
static void load_counters(void)
{
    for (int s = 0; s < MAXSVC; s++)
        for (int u = 0; u < MAXUSERS; u++)
            sh->next[s][u] = -1;
    if (!ctrfile)
        return;
    FILE *f = fopen(ctrfile, "r");
    if (!f)
        return;
    char sv[128], us[128];
    long v;
    while (fscanf(f, "%127s %127s %ld", sv, us, &v) == 3) {
        for (int s = 0; s < nsvc; s++) {
            if (strcmp(sv, svcs[s]))
                continue;
            size_t pl = strlen(upfx);
            if (strncmp(us, upfx, pl) == 0) {
                int u = atoi(us + pl);
                if (u >= 0 && u < MAXUSERS)
                    sh->next[s][u] = v;
            }
        }
    }
    fclose(f);
}

static void save_counters(void)
{
    if (!ctrfile)
        return;
    /* keep lines of services not handled by this run */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", ctrfile);
    FILE *out = fopen(tmp, "w");
    if (!out) {
        perror(tmp);
        exit(2);
    }
    FILE *in = fopen(ctrfile, "r");
    if (in) {
        char sv[128], us[128];
        long v;
        while (fscanf(in, "%127s %127s %ld", sv, us, &v) == 3) {
            int mine = 0;
            for (int s = 0; s < nsvc; s++)
                if (!strcmp(sv, svcs[s]))
                    mine = 1;
            if (!mine)
                fprintf(out, "%s %s %ld\n", sv, us, v);
        }
        fclose(in);
    }
    for (int s = 0; s < nsvc; s++)
        for (int u = 0; u < MAXUSERS; u++)
            if (sh->next[s][u] >= 0)
                fprintf(out, "%s %s%d %ld\n", svcs[s], upfx, u, (long)sh->next[s][u]);
    fclose(out);
    rename(tmp, ctrfile);
}

/* ---- statistics ---- */
static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(int s, long n, double wall_sec)
{
    const char *sv = svcs[s];
    struct svcstat *st = &sh->st[s];
    double *v = lat + (long)s * lat_cap;
    if (n > lat_cap)
        n = lat_cap;
    long total = 0, fails = 0;
    for (int r = 0; r < MAXRC; r++) {
        long c = st->rc[r];
        total += c;
        if (c)
            printf("R %s %s rc_%d %ld\n", tag, sv, r, c);
        if (r != PAM_SUCCESS)
            fails += c;
    }
    printf("R %s %s n %ld\n", tag, sv, total);
    printf("R %s %s ok %ld\n", tag, sv, (long)st->rc[PAM_SUCCESS]);
    printf("R %s %s fail %ld\n", tag, sv, fails);
    printf("R %s %s dup %ld\n", tag, sv, (long)st->dup_success);
    printf("R %s %s info_msgs %ld\n", tag, sv, (long)st->info_msgs);
    printf("R %s %s delay_calls %ld\n", tag, sv, (long)st->delay_calls);
    if (fails)
        printf("R %s %s delay_ms_per_fail %.1f\n", tag, sv, st->delay_usec / 1000.0 / fails);
    if (n <= 0)
        return;
    double sum = 0;
    for (long i = 0; i < n; i++)
        sum += v[i];
    qsort(v, (size_t)n, sizeof *v, cmpd);
    long i50 = (long)(0.50 * (n - 1) + 0.5), i99 = (long)(0.99 * (n - 1) + 0.5);
    printf("R %s %s mean_us %.1f\n", tag, sv, sum / n);
    printf("R %s %s p50_us %.1f\n", tag, sv, v[i50]);
    printf("R %s %s p99_us %.1f\n", tag, sv, v[i99]);
    printf("R %s %s tput %.1f\n", tag, sv, wall_sec > 0 ? n / wall_sec : n / (sum / 1e6));
    printf("R %s %s ok_tput %.1f\n", tag, sv,
           (double)st->rc[PAM_SUCCESS] / (wall_sec > 0 ? wall_sec : sum / 1e6));
}

static void usage(void)
{
    fprintf(stderr, "usage: driver -d DIR -k HEX [-c FILE] [-u PFX] [-U N] [-n N] [-P N] [-b N] "
                    "[-B] [-s] [-r] [-t TAG] MODE SERVICE...\n");
    exit(64);
}

int main(int argc, char **argv)
{
    const char *hex = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "d:k:c:u:U:n:P:b:Bsrt:C:S:R")) != -1) {
        switch (opt) {
        case 'd': confdir = optarg; break;
        case 'k': hex = optarg; break;
        case 'c': ctrfile = optarg; break;
        case 'u': upfx = optarg; break;
        case 'U': nusers = atoi(optarg); break;
        case 'n': nattempts = atoi(optarg); break;
        case 'P': nprocs = atoi(optarg); break;
        case 'b': nblocks = atoi(optarg); break;
        case 'B': blockmode = 1; break;
        case 's': shared_user = 1; break;
        case 'S': shared_user = 1; shared_base = atoi(optarg); break;
        case 'R': rotate = 1; break;
        case 'r': reuse = 1; break;
        case 't': tag = optarg; break;
        case 'C': NCODES = atol(optarg); break;
        default: usage();
        }
    }
    if (!confdir || !hex || optind >= argc)
        usage();
    const char *m = argv[optind++];
    if (!strcmp(m, "sync")) mode = M_SYNC;
    else if (!strcmp(m, "hotp")) mode = M_HOTP;
    else if (!strcmp(m, "hotp-wrong")) mode = M_HOTP_WRONG;
    else if (!strcmp(m, "totp")) mode = M_TOTP;
    else if (!strcmp(m, "totp-wrong")) mode = M_TOTP_WRONG;
    else if (!strcmp(m, "verify")) mode = M_VERIFY;
    else if (!strcmp(m, "none")) mode = M_NONE;
    else if (!strcmp(m, "keycheck")) mode = M_KEYCHECK;
    else usage();
    while (optind < argc && nsvc < MAXSVC)
        svcs[nsvc++] = argv[optind++];
    if (NCODES < 64 || nusers < 1 || nusers > MAXUSERS || nprocs < 1 || nprocs > MAXUSERS || nblocks < 1)
        usage();
    if (!shared_user && nprocs > nusers)
        nusers = nprocs;

    keylen = strlen(hex) / 2;
    if (keylen == 0 || keylen > sizeof key)
        usage();
    for (size_t i = 0; i < keylen; i++)
        sscanf(hex + 2 * i, "%2hhx", &key[i]);

    /* Precomputation: fixed size, so a 0-attempt run has the same start-up cost. */
    hotp = malloc(sizeof(*hotp) * NCODES);
    for (long c = 0; c < NCODES; c++)
        otp((uint64_t)c, hotp[c]);
    totp_base = (long)(time(NULL) / 30) - 2;
    for (int i = 0; i < TOTP_STEPS; i++)
        otp((uint64_t)(totp_base + i), totp[i]);

    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    lat_cap = (long)nattempts * nprocs + MAXUSERS;
    lat = mmap(NULL, sizeof(double) * lat_cap * MAXSVC, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED || lat == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    memset(sh, 0, sizeof *sh);
    load_counters();

    if (mode == M_NONE)
        return 0;

    if (mode == M_KEYCHECK) {
        /* The driver assumes that the code of counter k matches no other counter a module
         * might scan with it (k+1 .. k+21, the largest look-ahead, +1 for liboath's replay
         * slot).  With 6 digits a clash has odds ~1e-6 per pair; a module that prefers the
         * highest match (pam_totp) would then jump ahead of the driver, and every later
         * "right" code would be a replay.  Exit 1 so run.sh draws another key. */
        for (long k = 0; k < NCODES; k++)
            for (long j = k + 1; j <= k + 21 && j < NCODES; j++)
                if (!strcmp(hotp[k], hotp[j])) {
                    fprintf(stderr, "driver: key gives equal codes for counters %ld and %ld\n", k, j);
                    return 1;
                }
        return 0;
    }

    if (mode == M_SYNC) {
        /* Find the counter each module accepts next: the lowest accepted of 0..7. */
        for (int s = 0; s < nsvc; s++)
            for (int u = 0; u < nusers; u++) {
                char user[64];
                user_name(u, user, sizeof user);
                int rc = -1;
                long c;
                for (c = 0; c < 8; c++) {
                    double us;
                    rc = attempt(s, user, NULL, hotp[c], &us);
                    if (rc == PAM_SUCCESS)
                        break;
                }
                if (rc == PAM_SUCCESS) {
                    sh->next[s][u] = c + 1;
                } else {
                    printf("R %s %s sync_failed_%s %d\n", tag, svcs[s], user, rc);
                    fprintf(stderr, "driver: sync %s %s: last rc %d (%s)\n", svcs[s], user, rc,
                            pam_strerror(NULL, rc));
                }
            }
        for (int s = 0; s < nsvc; s++)
            report(s, 0, 0);
        save_counters();
        return 0;
    }

    if (mode == M_VERIFY) {
        /* Replay of the last accepted counter must fail, the next counter must succeed:
         * then the module's counter equals ours, i.e. advanced exactly by our successes. */
        for (int s = 0; s < nsvc; s++) {
            long bad = 0, checked = 0;
            for (int u = 0; u < nusers; u++) {
                long c = sh->next[s][u];
                if (c < 1)
                    continue;
                char user[64];
                user_name(u, user, sizeof user);
                double us;
                int r1 = attempt(s, user, NULL, hotp[c - 1], &us);
                int r2 = attempt(s, user, NULL, hotp[c], &us);
                checked++;
                if (r2 == PAM_SUCCESS)
                    sh->next[s][u] = c + 1;
                if (r1 == PAM_SUCCESS || r2 != PAM_SUCCESS) {
                    bad++;
                    fprintf(stderr, "driver: verify %s %s: replay of %ld -> %s, next %ld -> %s\n",
                            svcs[s], user, c - 1, pam_strerror(NULL, r1), c,
                            pam_strerror(NULL, r2));
                }
            }
            printf("R %s %s verify_checked %ld\n", tag, svcs[s], checked);
            printf("R %s %s verify_bad %ld\n", tag, svcs[s], bad);
        }
        save_counters();
        return 0;
    }

    if (mode == M_TOTP) {
        /* One success per (user, service): a TOTP step can be used once per user. */
        for (int u = 0; u < nusers; u++)
            for (int s = 0; s < nsvc; s++)
                run_attempts(s, u, 1, u, NULL);
        for (int s = 0; s < nsvc; s++)
            report(s, nusers, 0);
        return 0;
    }

    if (mode == M_HOTP)
        for (int s = 0; s < nsvc; s++)
            for (int u = 0; u < MAXUSERS; u++) {
                int used = shared_base >= 0 ? (u >= shared_base && u < shared_base + nblocks)
                           : shared_user ? u == 0
                           : rotate      ? u < nusers
                           : (nprocs > 1 || blockmode) ? u < nprocs : u == 0;
                if (used && sh->next[s][u] < 0 && !skip[s]) {
                    fprintf(stderr, "driver: %s: no counter for %s%d (sync failed?): skipped\n",
                            svcs[s], upfx, u);
                    printf("R %s %s skipped 1\n", tag, svcs[s]);
                    skip[s] = 1;
                }
            }

    if (nprocs == 1 && !blockmode) {
        /* Sequential, services interleaved attempt by attempt: A B C D A B C D ... */
        pam_handle_t *hs[MAXSVC] = {0};
        char user[64];
        user_name(0, user, sizeof user);
        if (reuse)
            for (int s = 0; s < nsvc; s++)
                if (!skip[s])
                    hs[s] = open_handle(s, user);
        for (long i = 0; i < nattempts; i++)
            for (int s = 0; s < nsvc; s++)
                if (!skip[s])
                    run_attempts(s, rotate && !reuse ? (int)(i % nusers) : 0, 1, i, hs[s]);
        if (reuse)
            for (int s = 0; s < nsvc; s++)
                if (hs[s])
                    pam_end(hs[s], PAM_SUCCESS);
        for (int s = 0; s < nsvc; s++)
            if (!skip[s])
                report(s, nattempts, 0);
    } else {
        /* Blocks: for each block, for each service, nprocs workers at once. */
        long per = nattempts / nblocks;
        if (per < 1)
            per = 1;
        for (int b = 0; b < nblocks; b++)
            for (int s = 0; s < nsvc; s++) {
                if (skip[s])
                    continue;
                double t0 = now_us();
                for (int w = 0; w < nprocs; w++) {
                    pid_t pid = fork();
                    if (pid < 0) {
                        perror("fork");
                        exit(2);
                    }
                    if (pid == 0) {
                        int u = shared_base >= 0 ? shared_base + b : shared_user ? 0 : w;
                        pam_handle_t *h = NULL;
                        if (reuse) {
                            char user[64];
                            user_name(u, user, sizeof user);
                            h = open_handle(s, user);
                        }
                        run_attempts(s, u, per, (long)w * nattempts + (long)b * per, h);
                        if (h)
                            pam_end(h, PAM_SUCCESS);
                        _exit(0);
                    }
                }
                int status;
                while (wait(&status) > 0)
                    ;
                sh->st[s].wall_sec += (now_us() - t0) / 1e6;
            }
        /* compact the latency samples: per worker [w*nattempts, w*nattempts + nblocks*per) */
        long done = per * nblocks;
        for (int s = 0; s < nsvc; s++) {
            if (skip[s])
                continue;
            double *v = lat + (long)s * lat_cap;
            long k = 0;
            for (int w = 0; w < nprocs; w++)
                for (long i = 0; i < done; i++)
                    v[k++] = v[(long)w * nattempts + i];
            report(s, k, sh->st[s].wall_sec);
        }
    }
    save_counters();
    return 0;
}
