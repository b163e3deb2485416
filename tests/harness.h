/* The test harness: checks that count failures, golden comparisons, ../shared lookup.
 * A test's main() returns t_finish(): 0 if every check passed, 1 otherwise, 77 if skipped.
 * What it enforces, so that a test cannot pass by accident:
 * - a test that made no check fails (t_finish returns 1);
 * - a skip (t_require_shared, t_skip) after a failed check is a failure (exit 1);
 * - a process that ends without t_finish (a stray exit(0) or `return 0` from main) fails, and so
 *   does one whose main ignores t_finish's answer after a failed check;
 * - t_allclose over zero elements is a failed check. */
#ifndef BL_TEST_HARNESS_H
#define BL_TEST_HARNESS_H
#include "core/bl.h"
#include <stdio.h>

extern int t_checks, t_failures;

#define CHECK(cond, ...) do { t_checks++; if (!(cond)) { t_failures++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)
#define CHECK_OK(expr) do { balora_status t_st_ = (expr); t_checks++; if (t_st_ != BALORA_STATUS_OK) { t_failures++; \
    fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr, balora_last_error()); } } while (0)
/* Expect a failure with the given status whose message contains `needle`. */
#define CHECK_FAILS(expr, status, needle) do { balora_status t_st_ = (expr); t_checks++; \
    if (t_st_ != (status) || !strstr(balora_last_error(), (needle))) { t_failures++; \
    fprintf(stderr, "%s:%d: expected %s to fail with status %d and message containing '%s'; got %d: %s\n", \
            __FILE__, __LINE__, #expr, (int)(status), (needle), (int)t_st_, balora_last_error()); } } while (0)

/* The shared assets folder, or NULL: $BALORA_SHARED when set (only it: a missing folder there means
 * absent, never replaced by ../shared; BALORA_SHARED=/nonexistent runs the suite as without it),
 * else ../shared next to the source tree. */
const char *t_shared_dir(void);
/* Like t_shared_dir but skips the test (t_skip) when absent. Call it only where the checks that
 * follow really need the shared assets; self-contained checks go before it or run without it. */
const char *t_require_shared(void);
/* Skip the rest of the test: prints "SKIP: why" and exits 77; exits 1 instead if a check failed. */
_Noreturn void t_skip(const char *why);
/* Source tree root (BALORA_SOURCE_DIR set by CTest, else "."). */
const char *t_source_dir(void);
/* Path of the balora CLI binary (BALORA_CLI set by CTest). */
const char *t_cli(void);
/* A fresh temporary directory (removed by t_finish unless BALORA_KEEP_TMP is set). */
const char *t_tmpdir(void);
/* Calls fn(full_path, path_relative_to_source_root) for every .c file (and .h with headers) under the
 * source tree's folder rel, recursively; a folder that cannot be opened is a failed check. */
void t_scan_sources(const char *rel, bool headers, void (*fn)(const char *full, const char *rel));

/* Golden tolerance (golden/README.md): |got - want| <= atol + rtol * |want| elementwise.
 * Prints the worst element on failure and returns the number of violations. */
long t_allclose(const char *what, const float *got, const float *want, long n, double atol, double rtol);
#define T_GOLDEN_ATOL 1e-4
#define T_GOLDEN_RTOL 1e-3

int t_finish(void);
#endif
