/* The Python sandbox (see sandbox.h).
 *
 * Process tree of one run:
 *   balora (parent) --fork--> child: own process group; stdin /dev/null, stdout/stderr -> pipe;
 *       unshare the level's namespaces (iso_flags), write the user namespace's id maps; then
 *       --fork--> pid 1 of the new PID namespace: with a mount namespace it builds the minimal
 *       root (setup_root: the plan made in the parent, a fresh /proc, pivot_root), then rlimits,
 *       (FULL) drop to nobody, exec python; the child waits for it and exits with its status
 *       (128 + signal when killed);
 *       RLIMITS: rlimits, exec python in the child itself.
 * The work directory DIR holds DIR/work (the program's, its /tmp) and DIR/root (the mount point of
 * the minimal root's tmpfs, which exists in the child's mount namespace only).
 * The parent polls the pipe and a pidfd of the child; at exit or at the timeout it kills the
 * whole process group (before reaping the leader, so the group id cannot be reused), reads what
 * is left in the pipe and removes the work directory. Between fork and exec the child calls only
 * async-signal-safe functions on data prepared before the fork. */
#include "eval/sandbox.h"
#include <elf.h>
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
#define SANDBOX_MOUNT "/tmp" /* where the work directory appears with a mount namespace (the sandbox's own /tmp) */
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
#define BL_MOUNT_ATTR_NOSUID 0x00000002ull
#define BL_MOUNT_ATTR_NODEV 0x00000004ull
#ifndef SYS_pivot_root
#define SYS_pivot_root __NR_pivot_root
#endif
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
    case BL_SANDBOX_ISO_FULL: return "full (namespaces: net, pid, ipc, mount: a minimal read-only root holding only python and its standard library, a fresh /proc; user nobody)";
    case BL_SANDBOX_ISO_USERNS: return "user namespace (namespaces: net, pid, ipc, mount: a minimal read-only root holding only python and its standard library, a fresh /proc)";
    case BL_SANDBOX_ISO_USERNET: return "user namespace (namespaces: net, pid; the host's files stay visible: readable, and writable by this user)";
    default: return "rlimits only (network and the host's files reachable: run as root or allow user namespaces)";
    }
}

const char *bl_sandbox_iso_missing(bl_sandbox_iso iso) {
    switch (iso) {
    case BL_SANDBOX_ISO_FULL: return "";
    case BL_SANDBOX_ISO_USERNS: return "no change to user nobody (the program runs as this user inside a user namespace; the process limit counts this user's processes)";
    case BL_SANDBOX_ISO_USERNET: return "no minimal root: the program can read every file this user can read (home directories, data, the host's /tmp) and write wherever this user may; "
                                        "the host's /proc is seen; no change to user nobody";
    default: return "no network, PID, mount or user namespace: the program can reach the network, read every file this user can read and write wherever this user may, "
                    "and a child that calls setsid() can outlive the run";
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

/* ---- the minimal root (levels with a mount namespace) ----
 * A plan, made in the parent before any fork: what the new root holds, as operations on paths
 * relative to it (the root itself is a size-capped tmpfs), which the child carries out with
 * system calls only. The tree mirrors the host's paths: every symbolic link on the way to a needed
 * file is made again (e.g. /lib64 -> usr/lib64), the needed files and directories are bind-mounted
 * read-only at their own paths. */
enum { OP_DIR, OP_LINK, OP_BIND_DIR, OP_BIND_FILE, OP_BIND_DEV, OP_EMPTY_DIR };
#define PLAN_MAX_OPS 40
typedef struct fs_op { int kind; char rel[PATH_MAX]; char src[PATH_MAX]; } fs_op; /* src: bind source or link target */
typedef struct fs_plan {
    int n;
    fs_op op[PLAN_MAX_OPS];
    char python[PATH_MAX];   /* the interpreter run inside (sys.executable: the same path inside and outside) */
    char asked[PATH_MAX];    /* the interpreter the plan was made for */
} fs_plan;

static fs_plan g_plan, g_probe_plan;

static int plan_find(const fs_plan *p, const char *rel) {
    for (int i = 0; i < p->n; i++) if (!strcmp(p->op[i].rel, rel)) return i;
    return -1;
}

/* Is rel inside (or) a directory bind-mounted by the plan? */
static bool plan_covered(const fs_plan *p, const char *rel) {
    for (int i = 0; i < p->n; i++) {
        if (p->op[i].kind != OP_BIND_DIR) continue;
        size_t n = strlen(p->op[i].rel);
        if (!strncmp(p->op[i].rel, rel, n) && (rel[n] == 0 || rel[n] == '/')) return true;
    }
    return false;
}

static balora_status plan_push(fs_plan *p, int kind, const char *rel, const char *src) {
    if (p->n >= PLAN_MAX_OPS) return bl_fail(BALORA_STATUS_INVALID, "sandbox: the minimal root needs more than %d entries (at %s)", PLAN_MAX_OPS, rel);
    if (strlen(rel) >= PATH_MAX || strlen(src) >= PATH_MAX) return bl_fail(BALORA_STATUS_INVALID, "sandbox: path too long: %s", rel);
    fs_op *o = &p->op[p->n++];
    o->kind = kind;
    strcpy(o->rel, rel);
    strcpy(o->src, src);
    return BALORA_STATUS_OK;
}

/* Lexical clean-up of an absolute path ("//", ".", ".."). Correct here because symbolic links are
 * resolved component by component from the left: what precedes a ".." has none. */
static void path_normalise(char *path) {
    char out[PATH_MAX];
    size_t n = 0;
    const char *s = path;
    while (*s) {
        while (*s == '/') s++;
        if (!*s) break;
        const char *e = strchr(s, '/');
        size_t k = e ? (size_t)(e - s) : strlen(s);
        if (k == 1 && s[0] == '.') {}
        else if (k == 2 && s[0] == '.' && s[1] == '.') { while (n > 0 && out[n - 1] != '/') n--; if (n > 0) n--; }
        else if (n + 1 + k < sizeof out) { out[n++] = '/'; memcpy(out + n, s, k); n += k; }
        s += k;
    }
    if (n == 0) out[n++] = '/';
    out[n] = 0;
    memcpy(path, out, n + 1);
}

/* Makes the host path `path` exist in the plan's tree: the directories and symbolic links on its
 * way, then the file or directory itself bind-mounted (unless a bound directory holds it already).
 * `optional`: a missing path is left out without an error. */
static balora_status plan_add(fs_plan *p, const char *path, bool optional, int depth) {
    char norm[PATH_MAX], cur[PATH_MAX];
    if (depth > 32) return bl_fail(BALORA_STATUS_IO, "sandbox: %s: too many levels of symbolic links", path);
    if (path[0] != '/' || strlen(path) >= sizeof norm) return bl_fail(BALORA_STATUS_INVALID, "sandbox: '%s' is not an absolute path", path);
    strcpy(norm, path);
    path_normalise(norm);
    if (!strcmp(norm, "/")) return bl_fail(BALORA_STATUS_INVALID, "sandbox: the whole file system cannot be bound into the sandbox (from %s)", path);
    size_t cl = 0;
    const char *s = norm + 1;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t k = e ? (size_t)(e - s) : strlen(s);
        cur[cl++] = '/';
        memcpy(cur + cl, s, k);
        cl += k;
        cur[cl] = 0;
        const char *rest = s + k;
        while (*rest == '/') rest++;
        const char *rel = cur + 1;
        struct stat st;
        if (lstat(cur, &st) != 0) {
            if (optional && errno == ENOENT) return BALORA_STATUS_OK;
            return bl_fail(BALORA_STATUS_IO, "sandbox: %s: %s (python needs it inside the sandbox); hint: set BALORA_PYTHON to another python3", cur, strerror(errno));
        }
        if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX], next[PATH_MAX];
            ssize_t t = readlink(cur, target, sizeof target - 1);
            if (t <= 0) return bl_fail(BALORA_STATUS_IO, "sandbox: %s: cannot read the symbolic link: %s", cur, strerror(errno));
            target[t] = 0;
            if (!plan_covered(p, rel) && plan_find(p, rel) < 0) BL_TRY(plan_push(p, OP_LINK, rel, target));
            int w = target[0] == '/' ? snprintf(next, sizeof next, "%s/%s", target, rest)
                                     : snprintf(next, sizeof next, "%.*s/%s/%s", (int)(strrchr(cur, '/') - cur), cur, target, rest);
            if (w < 0 || (size_t)w >= sizeof next) return bl_fail(BALORA_STATUS_INVALID, "sandbox: %s: path too long", cur);
            return plan_add(p, next, optional, depth + 1);
        }
        if (*rest) {
            if (!S_ISDIR(st.st_mode)) return bl_fail(BALORA_STATUS_IO, "sandbox: %s: not a directory", cur);
            if (!plan_covered(p, rel) && plan_find(p, rel) < 0) BL_TRY(plan_push(p, OP_DIR, rel, ""));
        } else if (!plan_covered(p, rel) && plan_find(p, rel) < 0) {
            int kind = S_ISDIR(st.st_mode) ? OP_BIND_DIR : S_ISCHR(st.st_mode) ? OP_BIND_DEV : S_ISREG(st.st_mode) ? OP_BIND_FILE : -1;
            if (kind < 0) return bl_fail(BALORA_STATUS_IO, "sandbox: %s: not a file, directory or character device", cur);
            BL_TRY(plan_push(p, kind, rel, cur));
        }
        s = rest;
    }
    return BALORA_STATUS_OK;
}

/* The ELF interpreter (dynamic loader) an executable names; "" for a static one. */
static balora_status elf_interp(const char *exe, char *out, size_t cap) {
    out[0] = 0;
    int fd = open(exe, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return bl_fail(BALORA_STATUS_IO, "sandbox: %s: %s", exe, strerror(errno));
    Elf64_Ehdr eh;
    balora_status st = BALORA_STATUS_OK;
    if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_phentsize < sizeof(Elf64_Phdr) || eh.e_phnum > 4096)
        st = bl_fail(BALORA_STATUS_IO, "sandbox: %s is not a 64-bit ELF executable; hint: set BALORA_PYTHON to the interpreter binary itself", exe);
    for (int i = 0; !st && i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)) != (ssize_t)sizeof ph) {
            st = bl_fail(BALORA_STATUS_IO, "sandbox: %s: truncated program headers", exe);
            break;
        }
        if (ph.p_type != PT_INTERP) continue;
        if (ph.p_filesz < 2 || ph.p_filesz > cap || pread(fd, out, ph.p_filesz, (off_t)ph.p_offset) != (ssize_t)ph.p_filesz || out[ph.p_filesz - 1] != 0) {
            out[0] = 0;
            st = bl_fail(BALORA_STATUS_IO, "sandbox: %s: bad ELF interpreter entry", exe);
        }
        break;
    }
    close(fd);
    return st;
}

/* Asks the interpreter (trusted, before any sandboxing) where it is and where its standard library
 * is: 4 lines (sys.executable, stdlib, platstdlib, the shared libpython or ""). */
static balora_status ask_python(const char *python, char lines[4][PATH_MAX]) {
    static const char code[] =
        "import sys, sysconfig\nv = sysconfig.get_config_var\n"
        "lib = (v('LIBDIR') or '') + '/' + (v('INSTSONAME') or '') if v('Py_ENABLE_SHARED') and v('LIBDIR') and v('INSTSONAME') else ''\n"
        "sys.stdout.write('\\n'.join([sys.executable, sysconfig.get_path('stdlib'), sysconfig.get_path('platstdlib'), lib]) + '\\n')\n";
    char *argv[] = {(char *)python, "-I", "-S", "-c", (char *)code, NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", NULL};
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return bl_fail(BALORA_STATUS_IO, "sandbox: pipe failed: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) { close(fds[0]); close(fds[1]); return bl_fail(BALORA_STATUS_IO, "sandbox: fork failed: %s", strerror(errno)); }
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        if (nul < 0 || dup2(nul, 0) < 0 || dup2(fds[1], 1) < 0 || dup2(nul, 2) < 0) _exit(126);
        execve(python, argv, envp);
        _exit(127);
    }
    close(fds[1]);
    char buf[4 * PATH_MAX + 64];
    size_t len = 0;
    double t0 = bl_time_now();
    for (;;) {
        int left = (int)((t0 + 30 - bl_time_now()) * 1000);
        struct pollfd pf = {.fd = fds[0], .events = POLLIN};
        if (left <= 0 || (poll(&pf, 1, left) <= 0 && errno != EINTR)) { kill(pid, SIGKILL); break; }
        ssize_t k = read(fds[0], buf + len, sizeof buf - 1 - len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        len += (size_t)k;
        if (len == sizeof buf - 1) break;
    }
    close(fds[0]);
    int wst = 0;
    while (waitpid(pid, &wst, 0) < 0 && errno == EINTR) {}
    buf[len] = 0;
    char *s = buf;
    for (int i = 0; i < 4; i++) {
        char *e = strchr(s, '\n');
        if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0 || !e || (size_t)(e - s) >= PATH_MAX || (i < 3 && s[0] != '/'))
            return bl_fail(BALORA_STATUS_IO, "sandbox: cannot ask %s where its standard library is (exit status %d); hint: set BALORA_PYTHON to a working python3",
                           python, WIFEXITED(wst) ? WEXITSTATUS(wst) : -1);
        memcpy(lines[i], s, (size_t)(e - s));
        lines[i][e - s] = 0;
        s = e + 1;
    }
    return BALORA_STATUS_OK;
}

/* /dev (null, zero, random, urandom: bound from the host) and the mount points of the work directory
 * and /proc. */
static balora_status plan_finish(fs_plan *p) {
    BL_TRY(plan_add(p, "/dev/null", false, 0));
    BL_TRY(plan_add(p, "/dev/zero", true, 0));
    BL_TRY(plan_add(p, "/dev/random", true, 0));
    BL_TRY(plan_add(p, "/dev/urandom", true, 0));
    const char *mp[2] = {SANDBOX_MOUNT + 1, "proc"};
    for (int i = 0; i < 2; i++) {
        if (plan_find(p, mp[i]) >= 0 || plan_covered(p, mp[i]))
            return bl_fail(BALORA_STATUS_INVALID, "sandbox: python lies under /%s, which the sandbox replaces; hint: set BALORA_PYTHON to a python3 elsewhere (e.g. /usr/bin/python3)", mp[i]);
        BL_TRY(plan_push(p, OP_DIR, mp[i], ""));
    }
    return BALORA_STATUS_OK;
}

/* The minimal root for `python`: its dynamic loader's directory (the shared libraries: on Debian
 * /usr/lib/x86_64-linux-gnu), its standard library (site-packages inside it hidden under an empty
 * read-only directory), a shared libpython, the executable and the loader themselves. */
static balora_status plan_build(fs_plan *p, const char *python) {
    p->n = 0;
    p->asked[0] = 0;
    char lines[4][PATH_MAX], real[PATH_MAX], interp[PATH_MAX], libdir[PATH_MAX];
    BL_TRY(ask_python(python, lines));
    const char *exe = lines[0], *stdlib = lines[1], *plat = lines[2], *lib = lines[3];
    if (!realpath(exe, real)) return bl_fail(BALORA_STATUS_IO, "sandbox: %s: %s", exe, strerror(errno));
    BL_TRY(elf_interp(real, interp, sizeof interp));
    if (interp[0]) {
        if (!realpath(interp, libdir)) return bl_fail(BALORA_STATUS_IO, "sandbox: %s (the dynamic loader of %s): %s", interp, real, strerror(errno));
        *strrchr(libdir, '/') = 0;
        if (!libdir[0]) return bl_fail(BALORA_STATUS_IO, "sandbox: the dynamic loader %s lies in /", interp);
        BL_TRY(plan_add(p, libdir, false, 0));
    }
    BL_TRY(plan_add(p, stdlib, false, 0));
    if (strcmp(plat, stdlib)) BL_TRY(plan_add(p, plat, false, 0));
    if (lib[0] == '/') BL_TRY(plan_add(p, lib, true, 0));
    BL_TRY(plan_add(p, exe, false, 0));
    if (interp[0]) BL_TRY(plan_add(p, interp, false, 0));
    char sp[PATH_MAX + 16], spr[PATH_MAX];
    snprintf(sp, sizeof sp, "%s/site-packages", stdlib);
    if (bl_dir_exists(sp) && realpath(sp, spr) && plan_covered(p, spr + 1)) BL_TRY(plan_push(p, OP_EMPTY_DIR, spr + 1, ""));
    BL_TRY(plan_finish(p));
    if (strlen(exe) >= sizeof p->python || strlen(python) >= sizeof p->asked) return bl_fail(BALORA_STATUS_INVALID, "sandbox: python path too long");
    strcpy(p->python, exe);
    strcpy(p->asked, python);
    return BALORA_STATUS_OK;
}

/* ---- isolation set-up, run in the child (async-signal-safe only) ---- */
static void child_write(const char *s) { ssize_t w = write(2, s, strlen(s)); (void)w; }

static void child_die(const char *msg) {
    child_write(msg);
    _exit(126);
}

/* "balora sandbox: MSG WHAT (errno N)" and exit 126. */
static void child_die_at(const char *msg, const char *what, int err) {
    char num[16];
    int k = (int)sizeof num;
    num[--k] = 0;
    do { num[--k] = (char)('0' + err % 10); err /= 10; } while (err > 0 && k > 0);
    child_write("balora sandbox: ");
    child_write(msg);
    child_write(" ");
    child_write(what);
    child_write(" (errno ");
    child_write(num + k);
    child_write(")\n");
    _exit(126);
}

/* In a new user namespace: this user (and group) appears as nobody (65534), the only id mapped, so
 * that files can be made on the sandbox's own tmpfs and the program holds no capability after exec.
 * The map lines are made before the fork (map_prepare). */
static char g_uid_map[48], g_gid_map[48];
static void map_prepare(void) {
    snprintf(g_uid_map, sizeof g_uid_map, "%d %d 1\n", NOBODY_UID, (int)geteuid());
    snprintf(g_gid_map, sizeof g_gid_map, "%d %d 1\n", NOBODY_GID, (int)getegid());
}
static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = (ssize_t)strlen(text), w = write(fd, text, (size_t)n);
    close(fd);
    return w == n ? 0 : -1;
}
static int map_ids(void) {
    if (write_file("/proc/self/uid_map", g_uid_map) != 0) return -1;
    if (write_file("/proc/self/setgroups", "deny") != 0 && errno != ENOENT) return -1;
    return write_file("/proc/self/gid_map", g_gid_map);
}

static int set_attr(const char *path, unsigned flags, uint64_t set) {
    struct bl_mount_attr a = {.attr_set = set};
    return (int)syscall(__NR_mount_setattr, AT_FDCWD, path, flags, &a, sizeof a);
}

/* Builds the plan's tree on a tmpfs mounted on `root` (an empty directory), binds `work` (NULL: none)
 * on /tmp, mounts a fresh /proc (the caller is pid 1 of a new PID namespace), makes the tmpfs
 * read-only, pivots into it and detaches the old root. NULL on success, else what failed (and
 * *what where). */
static const char *setup_root(const fs_plan *p, const char *root, const char *work, const char **what) {
    *what = root;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) { *what = "/"; return "cannot make the mounts private:"; }
    if (mount("balora-sandbox", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=1024,mode=755") != 0) return "cannot mount a tmpfs on";
    if (chdir(root) != 0) return "cannot enter";
    for (int i = 0; i < p->n; i++) {
        const fs_op *o = &p->op[i];
        *what = o->rel;
        switch (o->kind) {
        case OP_DIR:
            if (mkdir(o->rel, 0755) != 0 && errno != EEXIST) return "cannot make the directory";
            break;
        case OP_LINK:
            if (symlink(o->src, o->rel) != 0) return "cannot make the symbolic link";
            break;
        case OP_BIND_DIR:
            if (mkdir(o->rel, 0755) != 0 && errno != EEXIST) return "cannot make the directory";
            if (mount(o->src, o->rel, NULL, MS_BIND | MS_REC, NULL) != 0) return "cannot bind-mount";
            if (set_attr(o->rel, AT_RECURSIVE, BL_MOUNT_ATTR_RDONLY | BL_MOUNT_ATTR_NOSUID | BL_MOUNT_ATTR_NODEV) != 0) return "cannot make read-only";
            break;
        case OP_BIND_FILE:
        case OP_BIND_DEV: {
            int fd = open(o->rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
            if (fd < 0) return "cannot make the mount point";
            close(fd);
            if (mount(o->src, o->rel, NULL, MS_BIND, NULL) != 0) return "cannot bind-mount";
            if (set_attr(o->rel, 0, BL_MOUNT_ATTR_RDONLY | BL_MOUNT_ATTR_NOSUID | (o->kind == OP_BIND_FILE ? BL_MOUNT_ATTR_NODEV : 0)) != 0) return "cannot make read-only";
            break;
        }
        case OP_EMPTY_DIR:
            if (mount("balora-sandbox", o->rel, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, "size=4k,nr_inodes=2,mode=755") != 0) return "cannot hide";
            break;
        default: return "bad plan entry";
        }
    }
    if (work) {
        *what = SANDBOX_MOUNT + 1;
        if (mount(work, SANDBOX_MOUNT + 1, NULL, MS_BIND, NULL) != 0) return "cannot bind the work directory on";
        if (set_attr(SANDBOX_MOUNT + 1, 0, BL_MOUNT_ATTR_NOSUID | BL_MOUNT_ATTR_NODEV) != 0) return "cannot set nosuid,nodev on";
    }
    *what = "proc";
    if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) return "cannot mount a fresh";
    *what = root;
    if (mount(NULL, ".", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0) return "cannot make read-only the new root";
    if (syscall(SYS_pivot_root, ".", ".") != 0) return "pivot_root failed into";
    if (umount2(".", MNT_DETACH) != 0) return "cannot detach the old root from";
    if (chdir("/") != 0) return "cannot enter the new root";
    return NULL;
}

static int g_iso = -1, g_iso_cap = -1; /* cap: -1 = not set yet (then $BALORA_SANDBOX_ISOLATION) */
static char g_iso_why[512];           /* why the stronger levels were not used */

/* Tries a level's whole set-up in a throw-away child: exit 0 if it works, else the step that failed
 * (1 unshare, 2 fork, 3 the minimal root, 4 the change to user nobody). */
static int probe_child(int level) {
    int flags = iso_flags(level);
    if (unshare(flags) != 0) return 1;
    if ((flags & CLONE_NEWUSER) && map_ids() != 0) return 5;
    pid_t p = fork(); /* pid 1 of the new PID namespace */
    if (p < 0) return 2;
    if (p == 0) {
        const char *what;
        if ((flags & CLONE_NEWNS) && setup_root(&g_probe_plan, "/tmp", NULL, &what)) _exit(3);
        _exit(level != BL_SANDBOX_ISO_FULL || (setgid(NOBODY_GID) == 0 && setuid(NOBODY_UID) == 0) ? 0 : 4);
    }
    int st;
    return waitpid(p, &st, 0) == p && WIFEXITED(st) ? WEXITSTATUS(st) : 2;
}

void bl_sandbox_set_isolation(bl_sandbox_iso max) {
    g_iso_cap = (int)max;
    g_iso = -1;
}

const char *bl_sandbox_iso_reason(void) {
    bl_sandbox_isolation();
    return g_iso_why;
}

static void why_add(const char *level, const char *what) {
    size_t n = strlen(g_iso_why);
    snprintf(g_iso_why + n, sizeof g_iso_why - n, "%s%s: %s", n ? "; " : "", level, what);
}

bl_sandbox_iso bl_sandbox_isolation(void) {
    if (g_iso >= 0) return (bl_sandbox_iso)g_iso;
    if (g_iso_cap < 0) {
        const char *e = getenv("BALORA_SANDBOX_ISOLATION");
        g_iso_cap = !e ? BL_SANDBOX_ISO_FULL : !strcmp(e, "rlimits") ? BL_SANDBOX_ISO_RLIMITS
                  : !strcmp(e, "usernet") ? BL_SANDBOX_ISO_USERNET : !strcmp(e, "userns") ? BL_SANDBOX_ISO_USERNS : BL_SANDBOX_ISO_FULL;
    }
    g_iso = BL_SANDBOX_ISO_RLIMITS;
    g_iso_why[0] = 0;
    /* the probe's root: only /dev/null bound, and the mount points (built before any fork) */
    g_probe_plan.n = 0;
    map_prepare();
    bool plan_ok = plan_finish(&g_probe_plan) == BALORA_STATUS_OK;
    static const char *const names[] = {"rlimits", "usernet", "userns", "full"};
    for (int level = BL_SANDBOX_ISO_FULL; level > BL_SANDBOX_ISO_RLIMITS; level--) {
        if (level > g_iso_cap) { why_add(names[level], "above the cap (BALORA_SANDBOX_ISOLATION or bl_sandbox_set_isolation)"); continue; }
        if (level == BL_SANDBOX_ISO_FULL && geteuid() != 0) { why_add(names[level], "not root"); continue; }
        if ((iso_flags(level) & CLONE_NEWNS) && !plan_ok) { why_add(names[level], "/dev/null cannot be bound"); continue; }
        pid_t p = fork();
        if (p < 0) { why_add(names[level], "fork failed"); break; }
        if (p == 0) _exit(probe_child(level));
        int st, code = 2;
        if (waitpid(p, &st, 0) == p && WIFEXITED(st)) code = WEXITSTATUS(st);
        if (code == 0) { g_iso = level; break; }
        why_add(names[level], code == 1 ? "unshare refused (namespaces not allowed here)" : code == 3 ? "mounts refused (tmpfs, bind, /proc or pivot_root)"
                            : code == 4 ? "cannot change to user nobody" : code == 5 ? "cannot write the user namespace's id maps" : "fork failed");
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
    const fs_plan *plan;      /* the minimal root (levels with a mount namespace), else NULL */
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
static void child_main(const run_ctx *c, const char *dir, const char *root, int out_w, char *const *argv, char *const *envp) {
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
        if ((flags & CLONE_NEWUSER) && map_ids() != 0) child_die_at("cannot write the id maps of", "the user namespace", errno);
        pid_t p = fork(); /* pid 1 of the new PID namespace */
        if (p < 0) child_die("balora sandbox: fork failed\n");
        if (p > 0) {
            int st;
            while (waitpid(p, &st, 0) < 0) if (errno != EINTR) _exit(126);
            _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        }
        /* pid 1 sees getppid() == 0: no re-check; it shares the process group killed at the end. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (flags & CLONE_NEWNS) { /* the minimal root, with a /proc of this PID namespace */
            const char *what, *err = setup_root(c->plan, root, dir, &what);
            if (err) child_die_at(err, what, errno);
        }
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
    /* With a mount namespace: DIR/work (the program's, seen as /tmp) and DIR/root (where the
     * minimal root's tmpfs is mounted, in the child's namespace only); else DIR itself. */
    bool ns = (iso_flags(c->iso) & CLONE_NEWNS) != 0;
    char work[PATH_MAX + 8], root[PATH_MAX + 8], prog[PATH_MAX + 16];
    snprintf(work, sizeof work, "%s%s", s->dir, ns ? "/work" : "");
    snprintf(root, sizeof root, "%s/root", s->dir);
    if (ns && (mkdir(work, 0700) != 0 || mkdir(root, 0700) != 0)) {
        balora_status e = bl_fail(BALORA_STATUS_IO, "%s: cannot create the sandbox's directories: %s", s->dir, strerror(errno));
        remove_tree(s->dir);
        return e;
    }
    snprintf(prog, sizeof prog, "%s/prog.py", work);
    FILE *f = fopen(prog, "wb");
    size_t len = strlen(program);
    if (!f || fwrite(program, 1, len, f) != len || fclose(f) != 0) {
        if (f) fclose(f);
        remove_tree(s->dir);
        return bl_fail(BALORA_STATUS_IO, "%s: cannot write the program", prog);
    }
    if (c->iso == BL_SANDBOX_ISO_FULL && (chown(work, NOBODY_UID, NOBODY_GID) != 0 || chmod(prog, 0644) != 0)) {
        balora_status e = bl_fail(BALORA_STATUS_IO, "%s: cannot hand the work directory to nobody: %s", work, strerror(errno));
        remove_tree(s->dir);
        return e;
    }
    /* Everything the child needs is built before the fork. */
    char home[PATH_MAX + 8], tmp[PATH_MAX + 8];
    const char *wd = ns ? SANDBOX_MOUNT : s->dir; /* the work dir as the program sees it */
    snprintf(home, sizeof home, "HOME=%s", wd);
    snprintf(tmp, sizeof tmp, "TMPDIR=%s", wd);
    char *envp[] = {"PATH=/usr/bin:/bin", home, tmp, "LANG=C.UTF-8", "LC_ALL=C.UTF-8", NULL};
    char *argv[] = {(char *)(ns ? c->plan->python : c->python), "-I", "-B", "prog.py", NULL};
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) { remove_tree(s->dir); return bl_fail(BALORA_STATUS_IO, "sandbox: pipe failed: %s", strerror(errno)); }
    s->t0 = bl_time_now();
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]); close(fds[1]); remove_tree(s->dir);
        return bl_fail(BALORA_STATUS_IO, "sandbox: fork failed: %s", strerror(errno));
    }
    if (pid == 0) child_main(c, work, root, fds[1], argv, envp);
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
    map_prepare();
    if (iso_flags(c.iso) & CLONE_NEWNS) { /* the minimal root's plan, made once per interpreter */
        if (strcmp(g_plan.asked, c.python)) BL_TRY(plan_build(&g_plan, c.python));
        c.plan = &g_plan;
    }
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
