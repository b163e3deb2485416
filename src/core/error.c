/* Last-error message (thread-local), status names, logging callback. */
#include "core/bl.h"
#include <signal.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char g_err[2048];
static balora_log_fn g_log_fn;
static void *g_log_user;

const char *balora_last_error(void) { return g_err; }
void bl_clear_error(void) { g_err[0] = 0; }

const char *balora_status_name(balora_status st) {
    switch (st) {
    case BALORA_STATUS_OK: return "ok";
    case BALORA_STATUS_IO: return "io";
    case BALORA_STATUS_FORMAT: return "format";
    case BALORA_STATUS_INVALID: return "invalid";
    case BALORA_STATUS_UNSUPPORTED: return "unsupported";
    case BALORA_STATUS_NOMEM: return "out of memory";
    case BALORA_STATUS_INTERNAL: return "internal";
    case BALORA_STATUS_INTERRUPTED: return "interrupted";
    }
    return "unknown";
}

/* Set from signal handlers: only a lock-free sig_atomic_t store. */
static volatile sig_atomic_t g_interrupt;
void balora_interrupt(int signo) { g_interrupt = signo > 0 ? signo : 1; }
int balora_interrupted(void) { return (int)g_interrupt; }
void balora_interrupt_clear(void) { g_interrupt = 0; }

const char *balora_version(void) { return "0.1.0"; }

balora_status bl_fail(balora_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return st;
}

balora_status bl_fail_prefix(balora_status st, const char *fmt, ...) {
    char prefix[1024], old[sizeof g_err];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char joined[sizeof prefix + sizeof old + 4];
    memcpy(old, g_err, sizeof old);
    snprintf(joined, sizeof joined, "%s: %s", prefix, old);
    memcpy(g_err, joined, sizeof g_err - 1);
    g_err[sizeof g_err - 1] = 0;
    return st;
}

void balora_log_set(balora_log_fn fn, void *user) { g_log_fn = fn; g_log_user = user; }

void bl_log(int level, const char *fmt, ...) {
    if (!g_log_fn) return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_log_fn(level, buf, g_log_user);
}
