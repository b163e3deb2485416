#include "harness.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int t_checks, t_failures;
static char g_tmp[256];

const char *t_source_dir(void) { const char *s = getenv("BALORA_SOURCE_DIR"); return s ? s : "."; }
const char *t_cli(void) { const char *s = getenv("BALORA_CLI"); return s ? s : "./build/balora"; }

const char *t_shared_dir(void) {
    static char buf[4096];
    const char *env = getenv("BALORA_SHARED");
    if (env && bl_dir_exists(env)) return env;
    snprintf(buf, sizeof buf, "%s/../shared", t_source_dir());
    if (bl_dir_exists(buf)) return buf;
    return NULL;
}

const char *t_require_shared(void) {
    const char *s = t_shared_dir();
    if (!s) {
        printf("SKIP: ../shared (or $BALORA_SHARED) not found; this test needs the golden data and assets there\n");
        exit(77);
    }
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
    printf("%d checks, %d failed\n", t_checks, t_failures);
    return t_failures ? 1 : 0;
}
