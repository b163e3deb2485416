#include "harness.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

int t_checks, t_failures;
static char g_tmp[256];
static pid_t g_owner;    /* the test process (children forked by a test inherit the atexit handler) */
static int g_finished;   /* t_finish ran */
static int g_result;     /* what t_finish answered */
static int g_skipping;   /* t_skip is exiting with 77 */

/* At exit of the test process: an exit that went around t_finish, or one that dropped its answer
 * after a failed check, is a failure. */
static void t_at_exit(void) {
    if (getpid() != g_owner || g_skipping) return;
    if (!g_finished) {
        fprintf(stderr, "FAILED: the test exited without reaching t_finish() (%d checks, %d failed so far)\n", t_checks, t_failures);
        fflush(NULL);
        _exit(1);
    }
    if (t_failures || g_result) { fflush(NULL); _exit(1); }
}

__attribute__((constructor)) static void t_init(void) {
    g_owner = getpid();
    atexit(t_at_exit);
}

const char *t_source_dir(void) { const char *s = getenv("BALORA_SOURCE_DIR"); return s ? s : "."; }
const char *t_cli(void) { const char *s = getenv("BALORA_CLI"); return s ? s : "./build/balora"; }

const char *t_shared_dir(void) {
    static char buf[4096];
    const char *env = getenv("BALORA_SHARED");
    if (env && env[0]) return bl_dir_exists(env) ? env : NULL;
    snprintf(buf, sizeof buf, "%s/../shared", t_source_dir());
    if (bl_dir_exists(buf)) return buf;
    return NULL;
}

void t_skip(const char *why) {
    fflush(NULL);
    if (t_failures) {
        fprintf(stderr, "FAILED: skip after %d failed check(s) (of %d) is a failure; the skip was: %s\n", t_failures, t_checks, why);
        t_finish();
        exit(1);
    }
    if (g_tmp[0] && !getenv("BALORA_KEEP_TMP")) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
        if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", g_tmp);
    }
    printf("SKIP: %s (after %d passed checks)\n", why, t_checks);
    fflush(NULL);
    g_skipping = 1;
    exit(77);
}

const char *t_require_shared(void) {
    const char *s = t_shared_dir();
    if (!s) t_skip("../shared (or $BALORA_SHARED) not found; the checks that follow need the golden data and assets there");
    return s;
}

const char *t_tmpdir(void) {
    if (!g_tmp[0]) {
        snprintf(g_tmp, sizeof g_tmp, "/tmp/balora-test-XXXXXX");
        if (!mkdtemp(g_tmp)) { perror("mkdtemp"); exit(1); }
    }
    return g_tmp;
}

long t_allclose(const char *what, const float *got, const float *want, long n, double atol, double rtol) {
    long bad = 0, worst = -1;
    double worst_excess = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]), tol = atol + rtol * fabs(want[i]);
        if (!(d <= tol)) { bad++; if (!(d - tol <= worst_excess)) { worst_excess = d - tol; worst = i; } }
    }
    t_checks++;
    if (n <= 0) {
        t_failures++;
        fprintf(stderr, "allclose FAILED for %s: nothing to compare (%ld elements)\n", what, n);
        return 1;
    }
    if (bad) {
        t_failures++;
        fprintf(stderr, "allclose FAILED for %s: %ld of %ld elements out of tolerance; worst [%ld]: got %.8g want %.8g\n",
                what, bad, n, worst, worst >= 0 ? got[worst] : 0.0, worst >= 0 ? want[worst] : 0.0);
    }
    return bad;
}

int t_finish(void) {
    if (g_tmp[0] && !getenv("BALORA_KEEP_TMP")) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
        if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", g_tmp);
    }
    g_finished = 1;
    printf("%d checks, %d failed\n", t_checks, t_failures);
    if (t_checks == 0) {
        fprintf(stderr, "FAILED: the test made no checks\n");
        return g_result = 1;
    }
    return g_result = t_failures ? 1 : 0;
}

static void scan_dir(const char *root, const char *rel, bool headers, void (*fn)(const char *, const char *)) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", root, rel);
    DIR *d = opendir(dir);
    if (!d) { CHECK(false, "cannot open %s; hint: set BALORA_SOURCE_DIR to the source tree", dir); return; }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char r2[4096], full[8200];
        snprintf(r2, sizeof r2, "%s/%s", rel, e->d_name);
        snprintf(full, sizeof full, "%s/%s", root, r2);
        struct stat sb;
        if (stat(full, &sb) != 0) continue;
        if (S_ISDIR(sb.st_mode)) { scan_dir(root, r2, headers, fn); continue; }
        size_t n = strlen(e->d_name);
        if (n > 2 && (!strcmp(e->d_name + n - 2, ".c") || (headers && !strcmp(e->d_name + n - 2, ".h")))) fn(full, r2);
    }
    closedir(d);
}

void t_scan_sources(const char *rel, bool headers, void (*fn)(const char *full, const char *rel)) {
    scan_dir(t_source_dir(), rel, headers, fn);
}
