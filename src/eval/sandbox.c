/* The Python sandbox (see sandbox.h).
 *
 * Process tree of one run:
 *   balora (parent) --fork--> child: own process group; stdin /dev/null, stdout/stderr -> pipe;
 *       unshare the level's namespaces (iso_flags); with a mount namespace, the work directory is
 *       bind-mounted on /tmp and everything else made read-only; then --fork--> pid 1 of the new
 *       PID namespace: rlimits, (FULL) drop to nobody, exec python; the child waits for it and
 *       exits with its status (128 + signal when killed);
 *       RLIMITS: rlimits, exec python in the child itself.
 * The parent polls the pipe and a pidfd of the child; at exit or at the timeout it kills the
 * whole process group (before reaping the leader, so the group id cannot be reused), reads what
 * is left in the pipe and removes the work directory. Between fork and exec the child calls only
 * async-signal-safe functions on data prepared before the fork. */
#include "eval/sandbox.h"
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOBODY_UID 65534
#define SANDBOX_MOUNT "/tmp" /* where the work directory appears under FULL isolation */
#define NOBODY_GID 65534

#ifndef __NR_mount_setattr
#define __NR_mount_setattr 442
#endif
#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#define BL_MOUNT_ATTR_RDONLY 0x00000001ull
struct bl_mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };

void bl_sandbox_opts_default(bl_sandbox_opts *o) {
    memset(o, 0, sizeof *o);
    o->timeout_s = 10;
    o->mem_bytes = (int64_t)1 << 30;
    o->max_procs = 32;
    o->max_file_bytes = (int64_t)16 << 20;
    o->max_output = 16 << 10;
    o->jobs = 1;
}

const char *bl_sandbox_iso_name(bl_sandbox_iso iso) {
    switch (iso) {
    case BL_SANDBOX_ISO_FULL: return "full (namespaces: net, pid, ipc, mount read-only; user nobody)";
    case BL_SANDBOX_ISO_USERNS: return "user namespace (namespaces: net, pid, ipc, mount read-only)";
    case BL_SANDBOX_ISO_USERNET: return "user namespace (namespaces: net, pid; files writable by this user)";
    default: return "rlimits only (network and files reachable: run as root or allow user namespaces)";
    }
}

/* The namespaces each level creates (unshare flags). */
static int iso_flags(int iso) {
    switch (iso) {
    case BL_SANDBOX_ISO_FULL: return CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC;
    case BL_SANDBOX_ISO_USERNS: return CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC;
    case BL_SANDBOX_ISO_USERNET: return CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWPID;
    default: return 0;
    }
}

/* ---- isolation set-up, run in the child (async-signal-safe only) ---- */
static void child_die(const char *msg) {
    ssize_t w = write(2, msg, strlen(msg));
    (void)w;
    _exit(126);
}

/* The work directory bind-mounted on /tmp (so that its path is reachable for nobody whatever the
 * permissions of its parents), then the whole tree read-only except that /tmp. */
static int make_fs_readonly(const char *dir) {
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return -1;
    if (mount(dir, SANDBOX_MOUNT, NULL, MS_BIND, NULL) != 0) return -2;
    struct bl_mount_attr ro = {.attr_set = BL_MOUNT_ATTR_RDONLY};
    if (syscall(__NR_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &ro, sizeof ro) != 0) return -3;
    struct bl_mount_attr rw = {.attr_clr = BL_MOUNT_ATTR_RDONLY};
    if (syscall(__NR_mount_setattr, AT_FDCWD, SANDBOX_MOUNT, 0, &rw, sizeof rw) != 0) return -4;
    return 0;
}

static int g_iso = -1, g_iso_cap = -1; /* cap: -1 = not set yet (then $BALORA_SANDBOX_ISOLATION) */

/* Tries a level's whole set-up in a throw-away child (exit 0 if it works). */
static int probe_child(int level) {
    int flags = iso_flags(level);
    if (unshare(flags) != 0) return 1;
    if (flags & CLONE_NEWNS) {
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return 1;
        if (mount(SANDBOX_MOUNT, SANDBOX_MOUNT, NULL, MS_BIND, NULL) != 0) return 1;
        struct bl_mount_attr ro = {.attr_set = BL_MOUNT_ATTR_RDONLY};
        if (syscall(__NR_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &ro, sizeof ro) != 0) return 1;
        struct bl_mount_attr rw = {.attr_clr = BL_MOUNT_ATTR_RDONLY};
        if (syscall(__NR_mount_setattr, AT_FDCWD, SANDBOX_MOUNT, 0, &rw, sizeof rw) != 0) return 1;
    }
    pid_t p = fork();
    if (p < 0) return 1;
    if (p == 0) _exit(level != BL_SANDBOX_ISO_FULL || (setgid(NOBODY_GID) == 0 && setuid(NOBODY_UID) == 0) ? 0 : 1);
    int st;
    return waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

void bl_sandbox_set_isolation(bl_sandbox_iso max) {
    g_iso_cap = (int)max;
    g_iso = -1;
}

bl_sandbox_iso bl_sandbox_isolation(void) {
    if (g_iso >= 0) return (bl_sandbox_iso)g_iso;
    if (g_iso_cap < 0) {
        const char *e = getenv("BALORA_SANDBOX_ISOLATION");
        g_iso_cap = !e ? BL_SANDBOX_ISO_FULL : !strcmp(e, "rlimits") ? BL_SANDBOX_ISO_RLIMITS
                  : !strcmp(e, "usernet") ? BL_SANDBOX_ISO_USERNET : !strcmp(e, "userns") ? BL_SANDBOX_ISO_USERNS : BL_SANDBOX_ISO_FULL;
    }
    g_iso = BL_SANDBOX_ISO_RLIMITS;
    for (int level = BL_SANDBOX_ISO_FULL; level > BL_SANDBOX_ISO_RLIMITS; level--) {
        if (level > g_iso_cap || (level == BL_SANDBOX_ISO_FULL && geteuid() != 0)) continue;
        pid_t p = fork();
        if (p < 0) break;
        if (p == 0) _exit(probe_child(level));
        int st;
        if (waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0) { g_iso = level; break; }
    }
    return (bl_sandbox_iso)g_iso;
}

balora_status bl_sandbox_python(const bl_sandbox_opts *o, const char **path) {
    static char found[PATH_MAX];
    const char *p = o && o->python ? o->python : getenv("BALORA_PYTHON");
    if (p && *p) {
        if (access(p, X_OK) != 0) return bl_fail(BALORA_STATUS_IO, "python interpreter '%s' is not executable; hint: set --python or BALORA_PYTHON to python3's path", p);
        *path = p;
        return BALORA_STATUS_OK;
    }
    if (access("/usr/bin/python3", X_OK) == 0) { *path = "/usr/bin/python3"; return BALORA_STATUS_OK; }
    const char *env = getenv("PATH");
    for (const char *s = env; s && *s;) {
        const char *e = strchr(s, ':');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n && n + 9 < sizeof found) {
            memcpy(found, s, n);
            memcpy(found + n, "/python3", 9);
            if (access(found, X_OK) == 0) { *path = found; return BALORA_STATUS_OK; }
        }
        s = e ? e + 1 : s + n;
    }
    return bl_fail(BALORA_STATUS_IO, "no python3 found (tried $BALORA_PYTHON, /usr/bin/python3, $PATH); hint: install python3 or set BALORA_PYTHON");
}

/* ---- work directories ---- */
static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)ftw;
    return (flag == FTW_DP ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT ? -1 : 0;
}
static int chmod_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)ftw;
    if (flag == FTW_D || flag == FTW_DNR) chmod(path, (sb->st_mode & 07777) | S_IRWXU);
    return 0;
}
static balora_status remove_tree(const char *dir) {
    /* Directories the program made unreadable are opened up first (pre-order walk). */
    nftw(dir, chmod_cb, 32, FTW_PHYS);
    if (nftw(dir, rm_cb, 32, FTW_DEPTH | FTW_PHYS) != 0 && bl_dir_exists(dir))
        return bl_fail(BALORA_STATUS_IO, "%s: cannot remove the sandbox work directory: %s", dir, strerror(errno));
    return BALORA_STATUS_OK;
}

/* ---- one running program ---- */
typedef struct slot {
    pid_t pid;
    int out_fd, pid_fd;       /* pipe read end; pidfd of the child (-1 if unsupported) */
    double t0;
    char dir[PATH_MAX];
    bl_sandbox_result *r;
    size_t cap;               /* bytes kept */
    bool active, relayed;     /* relayed: the child relays the status of pid 1 of a PID namespace */
} slot;

typedef struct run_ctx {
    const bl_sandbox_opts *o;
    const char *python;
    bl_sandbox_iso iso;
    char parent[PATH_MAX];
} run_ctx;

static void set_limit(int res, rlim_t v) { struct rlimit rl = {v, v}; setrlimit(res, &rl); }

static void apply_limits(const bl_sandbox_opts *o) {
    rlim_t cpu = (rlim_t)(o->timeout_s + 1.999);
    set_limit(RLIMIT_CPU, cpu);
    set_limit(RLIMIT_AS, (rlim_t)o->mem_bytes);
    set_limit(RLIMIT_NPROC, (rlim_t)o->max_procs);
    set_limit(RLIMIT_FSIZE, (rlim_t)o->max_file_bytes);
    set_limit(RLIMIT_NOFILE, 256);
    set_limit(RLIMIT_CORE, 0);
}

/* The child: never returns. */
static void child_main(const run_ctx *c, const char *dir, int out_w, char *const *argv, char *const *envp) {
    pid_t parent = getppid();
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    int nul = open("/dev/null", O_RDONLY);
    if (nul < 0 || dup2(nul, 0) < 0 || dup2(out_w, 1) < 0 || dup2(out_w, 2) < 0) _exit(126);
    syscall(SYS_close_range, 3, ~0u, 0);
    int flags = iso_flags(c->iso);
    if (flags) {
        if (unshare(flags) != 0) child_die("balora sandbox: unshare failed\n");
        if ((flags & CLONE_NEWNS) && make_fs_readonly(dir) != 0) child_die("balora sandbox: cannot make the file system read-only\n");
        pid_t p = fork(); /* pid 1 of the new PID namespace */
        if (p < 0) child_die("balora sandbox: fork failed\n");
        if (p > 0) {
            int st;
            while (waitpid(p, &st, 0) < 0) if (errno != EINTR) _exit(126);
            _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        }
        /* pid 1 sees getppid() == 0: no re-check; it shares the process group killed at the end. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
    }
    if (chdir(flags & CLONE_NEWNS ? SANDBOX_MOUNT : dir) != 0) child_die("balora sandbox: chdir failed\n");
    apply_limits(c->o);
    if (c->iso == BL_SANDBOX_ISO_FULL) {
        if (setgroups(0, NULL) != 0 || setgid(NOBODY_GID) != 0 || setuid(NOBODY_UID) != 0)
            child_die("balora sandbox: cannot drop privileges to nobody\n");
    }
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    execve(argv[0], argv, envp);
    child_die("balora sandbox: cannot execute the python interpreter\n");
}

static balora_status slot_start(const run_ctx *c, slot *s, const char *program, bl_sandbox_result *r) {
    memset(r, 0, sizeof *r);
    s->r = r; s->active = false; s->out_fd = s->pid_fd = -1;
    if ((size_t)snprintf(s->dir, sizeof s->dir, "%s/balora-sbx-XXXXXX", c->parent) >= sizeof s->dir)
        return bl_fail(BALORA_STATUS_INVALID, "sandbox: temporary directory path too long");
    if (!mkdtemp(s->dir)) return bl_fail(BALORA_STATUS_IO, "%s: cannot create a sandbox work directory: %s; hint: set TMPDIR", s->dir, strerror(errno));
    char prog[PATH_MAX + 16];
    snprintf(prog, sizeof prog, "%s/prog.py", s->dir);
    FILE *f = fopen(prog, "wb");
    size_t len = strlen(program);
    if (!f || fwrite(program, 1, len, f) != len || fclose(f) != 0) {
        if (f) fclose(f);
        remove_tree(s->dir);
        return bl_fail(BALORA_STATUS_IO, "%s: cannot write the program", prog);
    }
    if (c->iso == BL_SANDBOX_ISO_FULL && (chown(s->dir, NOBODY_UID, NOBODY_GID) != 0 || chmod(prog, 0644) != 0)) {
        remove_tree(s->dir);
        return bl_fail(BALORA_STATUS_IO, "%s: cannot hand the work directory to nobody: %s", s->dir, strerror(errno));
    }
    /* Everything the child needs is built before the fork. */
    char home[PATH_MAX + 8], tmp[PATH_MAX + 8];
    const char *wd = iso_flags(c->iso) & CLONE_NEWNS ? SANDBOX_MOUNT : s->dir; /* the work dir as the program sees it */
    snprintf(home, sizeof home, "HOME=%s", wd);
    snprintf(tmp, sizeof tmp, "TMPDIR=%s", wd);
    char *envp[] = {"PATH=/usr/bin:/bin", home, tmp, "LANG=C.UTF-8", "LC_ALL=C.UTF-8", NULL};
    char *argv[] = {(char *)c->python, "-I", "-B", "prog.py", NULL};
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) { remove_tree(s->dir); return bl_fail(BALORA_STATUS_IO, "sandbox: pipe failed: %s", strerror(errno)); }
    s->t0 = bl_time_now();
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]); close(fds[1]); remove_tree(s->dir);
        return bl_fail(BALORA_STATUS_IO, "sandbox: fork failed: %s", strerror(errno));
    }
    if (pid == 0) child_main(c, s->dir, fds[1], argv, envp);
    setpgid(pid, pid); /* also in the parent: no window where the group does not exist */
    close(fds[1]);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    s->pid = pid; s->out_fd = fds[0]; s->relayed = (iso_flags(c->iso) & CLONE_NEWPID) != 0;
    s->pid_fd = (int)syscall(__NR_pidfd_open, pid, 0);
    s->cap = c->o->max_output;
    r->output = bl_malloc(s->cap + 1);
    if (!r->output) { kill(-pid, SIGKILL); kill(pid, SIGKILL); waitpid(pid, NULL, 0); close(fds[0]); if (s->pid_fd >= 0) close(s->pid_fd); remove_tree(s->dir); return BALORA_STATUS_NOMEM; }
    r->output[0] = 0;
    s->active = true;
    return BALORA_STATUS_OK;
}

/* Reads what the pipe has now; closes it at end of file. */
static void slot_read(slot *s) {
    char buf[4096];
    while (s->out_fd >= 0) {
        ssize_t n = read(s->out_fd, buf, sizeof buf);
        if (n > 0) { /* keep the last `cap` bytes: a traceback is at the end */
            bl_sandbox_result *r = s->r;
            size_t k = (size_t)n, cap = s->cap;
            const char *src = buf;
            if (k > cap) { src += k - cap; k = cap; r->output_truncated = true; }
            if (r->output_len + k > cap) {
                size_t drop = r->output_len + k - cap;
                memmove(r->output, r->output + drop, r->output_len - drop);
                r->output_len -= drop;
                r->output_truncated = true;
            }
            memcpy(r->output + r->output_len, src, k);
            r->output_len += k;
            r->output[r->output_len] = 0;
            continue;
        }
        if (n == 0) { close(s->out_fd); s->out_fd = -1; }
        else if (errno == EINTR) continue;
        break; /* EAGAIN: nothing now */
    }
}

/* Ends a run: kill the group, reap, drain, remove the work directory. */
static balora_status slot_finish(slot *s, bool timed_out) {
    kill(-s->pid, SIGKILL); /* the leader is not reaped yet: the group id is still ours */
    if (timed_out) kill(s->pid, SIGKILL);
    int st = 0;
    while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR) {}
    bl_sandbox_result *r = s->r;
    r->wall_s = bl_time_now() - s->t0;
    r->timed_out = timed_out;
    if (s->out_fd >= 0) { slot_read(s); if (s->out_fd >= 0) { close(s->out_fd); s->out_fd = -1; } }
    if (s->pid_fd >= 0) { close(s->pid_fd); s->pid_fd = -1; }
    if (WIFEXITED(st)) {
        r->exit_code = WEXITSTATUS(st);
        /* With a PID namespace the child relays the death of pid 1 by a signal as status 128 + signal. */
        if (s->relayed && r->exit_code > 128 && r->exit_code <= 128 + 64) { r->signal = r->exit_code - 128; r->exit_code = -1; }
    } else { r->exit_code = -1; r->signal = WTERMSIG(st); }
    r->passed = !timed_out && r->exit_code == 0;
    s->active = false;
    return remove_tree(s->dir);
}

static bool slot_exited(slot *s) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return waitid(P_PID, (id_t)s->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == s->pid;
}

balora_status bl_sandbox_run_many(const char *const *programs, int64_t n, const bl_sandbox_opts *opts,
                                  bl_sandbox_result *results) {
    bl_sandbox_opts def;
    if (!opts) { bl_sandbox_opts_default(&def); opts = &def; }
    if (n < 0 || (n > 0 && (!programs || !results))) return bl_fail(BALORA_STATUS_INVALID, "sandbox: bad arguments");
    if (!(opts->timeout_s > 0) || opts->mem_bytes <= 0 || opts->max_procs <= 0 || opts->max_file_bytes <= 0 || opts->max_output == 0)
        return bl_fail(BALORA_STATUS_INVALID, "sandbox: timeout, memory, process, file size and output limits must be positive");
    run_ctx c = {.o = opts, .iso = bl_sandbox_isolation()};
    BL_TRY(bl_sandbox_python(opts, &c.python));
    const char *parent = opts->tmp_parent ? opts->tmp_parent : getenv("TMPDIR");
    if (!parent || !*parent) parent = "/tmp";
    if (!realpath(parent, c.parent)) return bl_fail(BALORA_STATUS_IO, "%s: sandbox temporary directory not found: %s", parent, strerror(errno));
    int jobs = opts->jobs < 1 ? 1 : opts->jobs > 64 ? 64 : opts->jobs;
    slot slots[64];
    memset(slots, 0, sizeof slots);
    for (int64_t i = 0; i < n; i++) memset(&results[i], 0, sizeof results[i]);
    int64_t next = 0, active = 0;
    balora_status st = BALORA_STATUS_OK;
    while ((next < n && !st) || active > 0) {
        for (int j = 0; j < jobs && next < n && !st; j++) {
            if (slots[j].active) continue;
            if (!programs[next]) { st = bl_fail(BALORA_STATUS_INVALID, "sandbox: program %lld is NULL", (long long)next); break; }
            st = slot_start(&c, &slots[j], programs[next], &results[next]);
            if (!st) { active++; next++; }
        }
        if (active == 0) break;
        struct pollfd pf[128];
        int np = 0;
        double now = bl_time_now(), wait_s = 0.05;
        bool need_tick = false;
        for (int j = 0; j < jobs; j++) {
            if (!slots[j].active) continue;
            if (slots[j].out_fd >= 0) pf[np++] = (struct pollfd){.fd = slots[j].out_fd, .events = POLLIN};
            if (slots[j].pid_fd >= 0) pf[np++] = (struct pollfd){.fd = slots[j].pid_fd, .events = POLLIN};
            else need_tick = true;
            double left = slots[j].t0 + opts->timeout_s - now;
            if (left < wait_s) wait_s = left;
        }
        if (need_tick && wait_s > 0.005) wait_s = 0.005;
        int ms = wait_s > 0 ? (int)(wait_s * 1000) + 1 : 0;
        if (np) poll(pf, (nfds_t)np, ms); else if (ms) usleep((useconds_t)ms * 1000);
        now = bl_time_now();
        for (int j = 0; j < jobs; j++) {
            slot *s = &slots[j];
            if (!s->active) continue;
            slot_read(s);
            balora_status fs = BALORA_STATUS_OK;
            if (slot_exited(s)) fs = slot_finish(s, false);
            else if (now >= s->t0 + opts->timeout_s) fs = slot_finish(s, true);
            else continue;
            active--;
            if (fs && !st) st = fs;
        }
    }
    return st;
}

balora_status bl_sandbox_run(const char *program, const bl_sandbox_opts *o, bl_sandbox_result *r) {
    return bl_sandbox_run_many(&program, 1, o, r);
}

void bl_sandbox_result_free(bl_sandbox_result *r) {
    if (!r) return;
    free(r->output);
    r->output = NULL;
    r->output_len = 0;
}

balora_status bl_sandbox_selftest(const bl_sandbox_opts *o) {
    bl_sandbox_opts opts;
    if (o) opts = *o; else bl_sandbox_opts_default(&opts);
    opts.jobs = 1;
    if (opts.timeout_s < 20) opts.timeout_s = 20;
    bl_sandbox_result r;
    BL_TRY(bl_sandbox_run("print('balora-sandbox-ok')\n", &opts, &r));
    balora_status st = BALORA_STATUS_OK;
    if (!r.passed || !strstr(r.output, "balora-sandbox-ok")) {
        const char *py = "?";
        bl_sandbox_python(&opts, &py);
        st = bl_fail(BALORA_STATUS_IO, "sandbox self-test failed (python %s, isolation %s): exit %d, signal %d%s, output: %.300s; "
                     "hint: check that python3 runs for user nobody (or set BALORA_PYTHON, or BALORA_SANDBOX_ISOLATION=userns)",
                     py, bl_sandbox_iso_name(bl_sandbox_isolation()), r.exit_code, r.signal, r.timed_out ? ", timed out" : "", r.output);
    }
    bl_sandbox_result_free(&r);
    return st;
}
