/* Running untrusted Python (HumanEval / MBPP completions) in a sandbox. Generated code never runs
 * in the balora process: each program runs in a child process (fork + exec python3), in a fresh
 * temporary working directory that is removed afterwards, with
 *   - stdin from /dev/null, stdout+stderr captured through a pipe (the last max_output bytes);
 *   - a wall-clock timeout after which the whole process group is killed (SIGKILL);
 *   - setrlimit: CPU seconds, address space, processes, file size, open files, no core dumps;
 *   - a scrubbed environment (PATH=/usr/bin:/bin, HOME and TMPDIR = the work directory, LANG)
 *     and `python3 -I -B` (isolated mode: no PYTHON* variables, no user site, no .pyc written);
 *   - isolation, the strongest this process may set up (bl_sandbox_isolation() says which):
 *       BL_SANDBOX_ISO_FULL (root): new network namespace (no network: only a down loopback),
 *         new PID namespace (every process of the program dies with it; python is its pid 1), new
 *         IPC namespace, and a new mount namespace whose root is a minimal tree (pivot_root into a
 *         read-only, size-capped tmpfs; the host's root detached): python's executable, its
 *         standard library (a site-packages inside it hidden under an empty directory), a shared
 *         libpython if any, the dynamic loader and its library directory (Debian:
 *         /usr/lib/x86_64-linux-gnu, all the shared libraries the interpreter and its extension
 *         modules may load), each bind-mounted read-only at its own path with the host's
 *         symbolic links on the way (/lib, /lib64), /dev/null, /dev/zero, /dev/random, /dev/urandom,
 *         a fresh /proc of the new PID namespace, and the work directory, writable, as /tmp (the
 *         cwd). Nothing else: no /etc, no /home, /root, /work, no host /tmp, no /usr/bin but
 *         python. The paths are found before any fork by asking the interpreter
 *         (sys.executable, sysconfig's stdlib) and reading its ELF interpreter entry. The program
 *         runs as user nobody (so it cannot undo any of it; the process limit counts);
 *       BL_SANDBOX_ISO_USERNS (not root; unprivileged user namespaces allowed): the same in a new
 *         user namespace where this user appears as nobody (65534), without the change of user
 *         on the host;
 *       BL_SANDBOX_ISO_USERNET (user namespaces, but no mount changes allowed): new user, network
 *         and PID namespaces; the host's files stay visible, readable and writable as this user;
 *       BL_SANDBOX_ISO_RLIMITS (none of these): rlimits, process-group kill and scrubbed
 *         environment only; the program can reach the network, read and write wherever the user
 *         can, and a child that calls setsid() can outlive the run. Run balora as root (e.g. in a
 *         container) or enable unprivileged user namespaces for real isolation.
 *     bl_sandbox_iso_missing() says in words what a level lacks, bl_sandbox_iso_reason() why the
 *     stronger ones were not used; eval reports carry both below full isolation.
 * Functions return a non-OK status only when the sandbox itself cannot work (no temporary
 * directory, no fork); a program that fails, crashes, hangs or is killed is a result, not an error. */
#ifndef BL_EVAL_SANDBOX_H
#define BL_EVAL_SANDBOX_H
#include "core/bl.h"

typedef enum bl_sandbox_iso {
    BL_SANDBOX_ISO_RLIMITS = 0,
    BL_SANDBOX_ISO_USERNET = 1,
    BL_SANDBOX_ISO_USERNS = 2,
    BL_SANDBOX_ISO_FULL = 3
} bl_sandbox_iso;

typedef struct bl_sandbox_opts {
    const char *python;       /* NULL: $BALORA_PYTHON, else /usr/bin/python3, else python3 on $PATH */
    double timeout_s;         /* wall clock per program (default 10) */
    int64_t mem_bytes;        /* RLIMIT_AS (default 1 GiB) */
    int64_t max_procs;        /* RLIMIT_NPROC (default 32; counted per user: under full isolation all sandboxed programs run as nobody and share it) */
    int64_t max_file_bytes;   /* RLIMIT_FSIZE (default 16 MiB) */
    size_t max_output;        /* bytes of stdout+stderr kept, the last ones (default 16 KiB); earlier ones are dropped */
    const char *tmp_parent;   /* where work directories are made (default $TMPDIR, else /tmp) */
    int jobs;                 /* programs run at once by bl_sandbox_run_many (default 1) */
} bl_sandbox_opts;

/* Defaults as documented above. */
void bl_sandbox_opts_default(bl_sandbox_opts *o);

typedef struct bl_sandbox_result {
    bool passed;              /* exited with status 0, in time */
    int exit_code;            /* -1 if killed by a signal */
    int signal;               /* the signal that ended it, else 0 */
    bool timed_out;           /* killed at the wall-clock limit */
    bool output_truncated;
    double wall_s;
    char *output;             /* stdout+stderr (the last max_output bytes), NUL-terminated, malloc'd */
    size_t output_len;
} bl_sandbox_result;

/* The isolation level runs get on this machine (probed once): the strongest that works, at most
 * the cap ($BALORA_SANDBOX_ISOLATION = full | userns | usernet | rlimits, or bl_sandbox_set_isolation). */
bl_sandbox_iso bl_sandbox_isolation(void);
/* Caps the isolation level (probed again at the next run). Not thread-safe: call before running. */
void bl_sandbox_set_isolation(bl_sandbox_iso max);
const char *bl_sandbox_iso_name(bl_sandbox_iso iso);
/* The protections a level lacks, in words ("" for BL_SANDBOX_ISO_FULL). */
const char *bl_sandbox_iso_missing(bl_sandbox_iso iso);
/* Why the stronger levels were not used on this machine ("" when full isolation works), e.g.
 * "full: not root; userns: unshare refused (namespaces not allowed here)". */
const char *bl_sandbox_iso_reason(void);
/* The python interpreter runs use (resolved path), or fails (IO) with a hint when none is found. */
balora_status bl_sandbox_python(const bl_sandbox_opts *o, const char **path);

/* Runs one program (Python source text). */
balora_status bl_sandbox_run(const char *program, const bl_sandbox_opts *o, bl_sandbox_result *r);
/* Runs n programs, up to o->jobs at once; results[i] for programs[i]. */
balora_status bl_sandbox_run_many(const char *const *programs, int64_t n, const bl_sandbox_opts *o,
                                  bl_sandbox_result *results);
void bl_sandbox_result_free(bl_sandbox_result *r);

/* Checks that the interpreter starts and prints in the sandbox; fails (IO) with its output if not. */
balora_status bl_sandbox_selftest(const bl_sandbox_opts *o);

#endif
