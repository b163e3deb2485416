/* The harness itself: each way a test could pass by accident ends in the exit code it must.
 * The test runs itself (/proc/self/exe MODE) once per mode and checks the child's exit code:
 * zero checks, a skip after a failed check, an exit around t_finish, a dropped t_finish answer and
 * an empty allclose fail (1); a clean skip is 77; a passing test is 0; a child the test forks may
 * exit 0 without t_finish (the harness judges the test process only). */
#include "harness.h"
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int child(const char *mode) {
    if (!strcmp(mode, "pass")) { CHECK(1, "-"); return t_finish(); }
    if (!strcmp(mode, "zero")) return t_finish();
    if (!strcmp(mode, "skip_clean")) { CHECK(1, "-"); t_skip("clean skip"); }
    if (!strcmp(mode, "skip_after_fail")) { CHECK(0, "expected failure"); t_skip("skip after a failure"); }
    if (!strcmp(mode, "require_clean")) { CHECK(1, "-"); t_require_shared(); CHECK(1, "-"); return t_finish(); }
    if (!strcmp(mode, "require_after_fail")) { CHECK(0, "expected failure"); t_require_shared(); return t_finish(); }
    if (!strcmp(mode, "exit0")) { CHECK(1, "-"); exit(0); }
    if (!strcmp(mode, "return0")) { CHECK(1, "-"); return 0; }
    if (!strcmp(mode, "dropped")) { CHECK(0, "expected failure"); t_finish(); return 0; }
    if (!strcmp(mode, "allclose0")) { float x = 0; CHECK(1, "-"); t_allclose("nothing", &x, &x, 0, 0, 0); return t_finish(); }
    if (!strcmp(mode, "fork")) {
        CHECK(1, "-");
        pid_t p = fork();
        if (p == 0) exit(0); /* a child of the test: not judged by the harness */
        int st = 0;
        CHECK(p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0, "forked child's status %d", st);
        return t_finish();
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 3;
}

int main(int argc, char **argv) {
    if (argc > 1) return child(argv[1]);
    static const struct { const char *mode; int want; } cases[] = {
        {"pass", 0}, {"zero", 1}, {"skip_clean", 77}, {"skip_after_fail", 1}, {"require_clean", 77},
        {"require_after_fail", 1}, {"exit0", 1}, {"return0", 1}, {"dropped", 1}, {"allclose0", 1}, {"fork", 0},
    };
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(n > 0, "readlink /proc/self/exe");
    if (n <= 0) return t_finish();
    self[n] = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[4400];
        /* BALORA_SHARED names a missing folder: t_require_shared must find nothing */
        snprintf(cmd, sizeof cmd, "BALORA_SHARED=/nonexistent/balora-shared '%s' %s >/dev/null 2>&1", self, cases[i].mode);
        int st = system(cmd);
        int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        CHECK(rc == cases[i].want, "mode %s: exit %d, want %d", cases[i].mode, rc, cases[i].want);
    }
    return t_finish();
}
