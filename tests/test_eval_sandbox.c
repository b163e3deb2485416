/* The Python sandbox: results and output capture, timeouts, memory and process limits, output
 * cap, scrubbed environment, no network, nothing written outside the work directory, the work
 * directory removed, stray processes killed, several programs at once; what the program sees of
 * the host (with a mount namespace: a minimal root only; without one, the documented fallback);
 * failure text in eval reports capped. */
#include "harness.h"
#include "eval/bench.h"
#include "eval/sandbox.h"
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int count_entries(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) if (!strncmp(e->d_name, prefix, strlen(prefix))) n++;
    closedir(d);
    return n;
}

/* Is any process running whose command line contains `needle`? */
static bool process_with(const char *needle) {
    DIR *d = opendir("/proc");
    if (!d) return false;
    struct dirent *e;
    bool found = false;
    while (!found && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[300], buf[4096];
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0) continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) continue;
        for (ssize_t i = 0; i < n; i++) if (!buf[i]) buf[i] = ' ';
        buf[n] = 0;
        if (strstr(buf, needle)) found = true;
    }
    closedir(d);
    return found;
}

static bl_sandbox_result run(const char *prog, const bl_sandbox_opts *o) {
    bl_sandbox_result r;
    balora_status st = bl_sandbox_run(prog, o, &r);
    CHECK(st == BALORA_STATUS_OK, "sandbox run failed: %s", balora_last_error());
    if (st) { memset(&r, 0, sizeof r); r.output = calloc(1, 1); }
    return r;
}

/* A world-readable file in the host's /tmp (outside any sandbox directory) holding random text. */
static void make_secret(char *path, size_t cap, char secret[65]) {
    static int k;
    unsigned char b[32];
    int fd = open("/dev/urandom", O_RDONLY);
    CHECK(fd >= 0 && read(fd, b, sizeof b) == (ssize_t)sizeof b, "read /dev/urandom");
    if (fd >= 0) close(fd);
    for (int i = 0; i < 32; i++) snprintf(secret + 2 * i, 3, "%02x", b[i]);
    snprintf(path, cap, "/tmp/balora-secret-%d-%d.txt", (int)getpid(), k++);
    FILE *f = fopen(path, "w");
    CHECK(f && fputs(secret, f) >= 0 && fclose(f) == 0, "write %s", path);
    CHECK(chmod(path, 0644) == 0, "chmod %s", path);
}

/* Is `got` (a Python list of strings as printed) exactly the set `want` (sorted, "'a', 'b'")? */
static bool listed(const char *out, const char *label, const char *want) {
    char line[512];
    snprintf(line, sizeof line, "%s [%s]\n", label, want);
    return strstr(out, line) != NULL;
}

/* What a program sees of the host. With a mount namespace (userns, full): a minimal root with
 * python, its standard library, /dev/{null,random,urandom,zero}, a /proc of its own PID namespace
 * (python is pid 1) and its work directory as /tmp; a world-readable file made outside, the host's
 * /tmp, /root, /home, /work, /etc are absent. Without one: the documented fallback (the report says
 * that the host's files are readable, and they are). */
static void host_view(bl_sandbox_opts o, bl_sandbox_iso iso, const char *py) {
    char spath[200], secret[65], prog[4096];
    make_secret(spath, sizeof spath, secret);
    snprintf(prog, sizeof prog,
             "import os\nfor p in ['/root', '/home', '/work', '/etc', '/var', '/opt', '/mnt', '/sys', '/boot', '%s', '%s', '%s']:\n"
             "    print('EXISTS' if os.path.exists(p) else 'absent', p)\n"
             "raise RuntimeError(open('%s').read())\n", spath, t_tmpdir(), o.tmp_parent, spath);
    bl_sandbox_result r = run(prog, &o);
    if (iso >= BL_SANDBOX_ISO_USERNS) {
        CHECK(!r.passed && strstr(r.output, "FileNotFoundError") && !strstr(r.output, secret), "[%d] read a host file: %s", iso, r.output);
        CHECK(!strstr(r.output, "EXISTS") && strstr(r.output, "absent /root\n") && strstr(r.output, "absent /work\n"), "[%d] host paths seen: %s", iso, r.output);
    } else {
        CHECK(strstr(bl_sandbox_iso_missing(iso), "read every file this user can read") && strstr(r.output, secret),
              "[%d] fallback: the report must say that host files are readable (missing: %s), and they are: %s", iso, bl_sandbox_iso_missing(iso), r.output);
    }
    bl_sandbox_result_free(&r);
    unlink(spath);
    /* (/ last: the host's /usr/bin may fill the output cap without a mount namespace) */
    r = run("import os\nprint('BIN', sorted(os.listdir('/usr/bin')))\nprint('DEV', sorted(os.listdir('/dev')))\nprint('TMP', sorted(os.listdir('/tmp')))\n"
            "print('PROC', sorted(e for e in os.listdir('/proc') if e.isdigit()), os.readlink('/proc/self'))\n"
            "print('PID1', open('/proc/1/cmdline').read().replace(chr(0), ' '))\n"
            "print('USR', sorted(os.listdir('/usr')))\nprint('ROOT', sorted(os.listdir('/')))\n", &o);
    if (iso >= BL_SANDBOX_ISO_USERNS) {
        CHECK(r.passed, "[%d] listing program: %s", iso, r.output);
        /* Debian 12 (merged /usr) with /usr/bin/python3: /lib64 and /lib are the host's symbolic
         * links on the way to the dynamic loader; anything else: the same names plus python's own
         * top directory (e.g. /root for pyenv's), nothing more. */
        char real[4096] = "", top[256] = "";
        CHECK(realpath(py, real) != NULL, "realpath %s", py);
        sscanf(real, "/%255[^/]", top);
        struct stat st;
        if (!strcmp(py, "/usr/bin/python3") && lstat("/lib64", &st) == 0 && S_ISLNK(st.st_mode))
            CHECK(listed(r.output, "ROOT", "'dev', 'lib', 'lib64', 'proc', 'tmp', 'usr'") && listed(r.output, "BIN", "'python3', 'python3.11'") &&
                  listed(r.output, "USR", "'bin', 'lib', 'lib64'"), "[%d] / holds more than the minimal tree: %s", iso, r.output);
        else {
            const char *l = strstr(r.output, "ROOT [");
            bool ok = l != NULL;
            for (const char *q = l ? l + 6 : ""; ok && *q && *q != ']'; ) {
                char name[256] = "";
                if (sscanf(q, "'%255[^']'", name) != 1) { ok = false; break; }
                ok = !strcmp(name, "dev") || !strcmp(name, "lib") || !strcmp(name, "lib64") || !strcmp(name, "proc") || !strcmp(name, "tmp") ||
                     !strcmp(name, "usr") || !strcmp(name, top);
                q = strchr(q + 1, '\'');
                q = q ? q + 1 : "";
                while (*q == ',' || *q == ' ') q++;
            }
            CHECK(ok && strstr(r.output, "'dev'") && strstr(r.output, "'proc'") && strstr(r.output, "'tmp'"), "[%d] / holds more than the minimal tree: %s", iso, r.output);
        }
        CHECK(listed(r.output, "DEV", "'null', 'random', 'urandom', 'zero'") && listed(r.output, "TMP", "'prog.py'"), "[%d] /dev or /tmp: %s", iso, r.output);
        CHECK(strstr(r.output, "PROC ['1'] 1\n") && strstr(r.output, "prog.py"), "[%d] /proc shows other processes than the program (pid 1): %s", iso, r.output);
        CHECK(!strstr(r.output, "'local'") && !strstr(r.output, "'share'") && !strstr(r.output, "'sbin'"), "[%d] /usr holds more than python needs: %s", iso, r.output);
    } else {
        CHECK(strstr(bl_sandbox_iso_missing(iso), "no minimal root") || strstr(bl_sandbox_iso_missing(iso), "no network, PID, mount"),
              "[%d] fallback: the missing minimal root must be named: %s", iso, bl_sandbox_iso_missing(iso));
        const char *l = strstr(r.output, "ROOT [");
        CHECK(l && strstr(l, "'root'") && strstr(l, "'etc'"), "[%d] without a mount namespace the host's / is seen (else the fallback text is wrong): %.300s", iso, l ? l : r.output);
    }
    bl_sandbox_result_free(&r);
}

/* Eval reports: a completion that reads a host file gets no content into the report, and failure
 * text is capped at BL_EVAL_DETAIL_MAX with the marker. A two-problem HumanEval-format file made here. */
static void report_checks(bl_sandbox_opts so, bl_sandbox_iso iso) {
    char dpath[600], cpath[600], spath[200], secret[65];
    snprintf(dpath, sizeof dpath, "%s/he.jsonl", t_tmpdir());
    snprintf(cpath, sizeof cpath, "%s/he-completions.jsonl", t_tmpdir());
    make_secret(spath, sizeof spath, secret);
    FILE *f = fopen(dpath, "w");
    for (int i = 0; i < 3; i++)
        fprintf(f, "{\"task_id\": \"T/%d\", \"prompt\": \"def f():\\n\", \"canonical_solution\": \"    return 1\\n\", "
                   "\"test\": \"def check(candidate):\\n    assert candidate() == 1, 'the end'\\n\", \"entry_point\": \"f\"}\n", i);
    fclose(f);
    f = fopen(cpath, "w");
    fprintf(f, "{\"index\": 0, \"completion\": \"    raise RuntimeError(open('%s').read())\\n\"}\n", spath);
    /* 100 kB of output, then 3000 two-byte characters, then the failing assert */
    fprintf(f, "{\"index\": 1, \"completion\": \"    import sys\\n    sys.stdout.write('y' * 100000 + '\\u00e9' * 3000 + '\\\\n')\\n    return 2\\n\"}\n");
    fprintf(f, "{\"index\": 2, \"completion\": \"    return 3\\n\"}\n");
    fclose(f);
    bl_bench_set s;
    bl_completions c;
    bl_eval_report rep;
    bl_eval_opts eo;
    bl_eval_opts_default(&eo);
    eo.sandbox = so;
    CHECK_OK(bl_bench_load(BL_BENCH_HUMANEVAL, dpath, &s));
    CHECK_OK(bl_completions_load(cpath, &s, &c));
    CHECK_OK(bl_eval_score(&s, &c, &eo, &rep));
    cJSON *j = NULL;
    CHECK_OK(bl_eval_report_json(&rep, &s, &j));
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    CHECK(text && rep.n_problems == 3, "report");
    if (!text) text = calloc(1, 1);
    const char *d0 = rep.out[0].detail ? rep.out[0].detail : "", *d1 = rep.out[1].detail ? rep.out[1].detail : "", *d2 = rep.out[2].detail ? rep.out[2].detail : "";
    if (iso >= BL_SANDBOX_ISO_USERNS)
        CHECK(!rep.out[0].correct && strstr(d0, "FileNotFoundError") && !strstr(text, secret) && (iso == BL_SANDBOX_ISO_FULL) == !strstr(text, "\"sandbox_missing\""),
              "[%d] host file in the report (or sandbox_missing wrong): %s", iso, d0);
    else
        CHECK(strstr(text, secret) && strstr(text, "\"sandbox_missing\":\"no ") && strstr(text, "read every file"),
              "[%d] fallback: the report must say what the sandbox lacks (and the file is read): %.400s", iso, text);
    /* the cap: status, ": ", the marker, the output's end, the assert's traceback; never a broken UTF-8 sequence */
    size_t n1 = strlen(d1);
    const char *m = strstr(d1, BL_EVAL_DETAIL_CUT);
    CHECK(n1 <= BL_EVAL_DETAIL_MAX - 1 && n1 > BL_EVAL_DETAIL_MAX - 100 && !strncmp(d1, "exit status 1: " BL_EVAL_DETAIL_CUT, 15 + strlen(BL_EVAL_DETAIL_CUT)) &&
          m && ((unsigned char)m[strlen(BL_EVAL_DETAIL_CUT)] & 0xC0) != 0x80 && strstr(d1, "AssertionError: the end") && !strstr(d1, "yyyy"),
          "[%d] capped failure text: %zu bytes: %.120s ... %s", iso, n1, d1, n1 > 120 ? d1 + n1 - 120 : d1);
    CHECK(strlen(d2) < 1000 && !strstr(d2, BL_EVAL_DETAIL_CUT) && strstr(d2, "AssertionError: the end"), "[%d] short failure text is whole: %s", iso, d2);
    cJSON *probs = j ? cJSON_GetObjectItem(j, "problems") : NULL;
    const cJSON *fail1 = probs ? cJSON_GetObjectItem(cJSON_GetArrayItem(probs, 1), "failure") : NULL;
    CHECK(cJSON_IsString(fail1) && !strcmp(fail1->valuestring, d1), "report.json's failure is the capped text");
    free(text);
    cJSON_Delete(j);
    bl_eval_report_free(&rep);
    bl_completions_free(&c);
    bl_bench_set_free(&s);
    unlink(spath);
}

/* The guarantees every isolation level gives: results, timeout, memory limit, output capture,
 * work directory removed, the process group killed, no network where namespaces are used. */
static void battery(bl_sandbox_opts o, const char *parent, const char *py) {
    bl_sandbox_iso iso = bl_sandbox_isolation();
    printf("battery at isolation: %s\n", bl_sandbox_iso_name(iso));
    if (iso != BL_SANDBOX_ISO_FULL) printf("  missing: %s\n  why: %s\n", bl_sandbox_iso_missing(iso), bl_sandbox_iso_reason());
    CHECK(iso == BL_SANDBOX_ISO_FULL ? !*bl_sandbox_iso_missing(iso) && !*bl_sandbox_iso_reason() : *bl_sandbox_iso_missing(iso) && *bl_sandbox_iso_reason(),
          "[%d] missing '%s', why '%s'", iso, bl_sandbox_iso_missing(iso), bl_sandbox_iso_reason());
    host_view(o, iso, py);
    bl_sandbox_result r = run("import sys\nprint('ok')\nsys.exit(3)\n", &o);
    CHECK(!r.passed && r.exit_code == 3 && !strcmp(r.output, "ok\n"), "[%d] exit code: %d %s", iso, r.exit_code, r.output);
    bl_sandbox_result_free(&r);
    o.timeout_s = 1;
    r = run("while True:\n    pass\n", &o);
    CHECK(!r.passed && r.timed_out && r.wall_s < 4, "[%d] loop: timed_out %d wall %.2f", iso, r.timed_out, r.wall_s);
    bl_sandbox_result_free(&r);
    o.timeout_s = 15;
    o.mem_bytes = (int64_t)256 << 20;
    r = run("x = []\nwhile True:\n    x.append(bytearray(10**7))\n", &o);
    CHECK(!r.passed && !r.timed_out && strstr(r.output, "MemoryError"), "[%d] allocation: %.200s", iso, r.output);
    bl_sandbox_result_free(&r);
    o.mem_bytes = (int64_t)1 << 30;
    o.timeout_s = 5;
    char marker[64], prog[1200];
    snprintf(marker, sizeof marker, "95.%d%d", (int)getpid(), (int)iso);
    snprintf(prog, sizeof prog, "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(95)', '%s'])\nopen('f.txt', 'w').write('x')\n", marker);
    r = run(prog, &o);
    CHECK(r.passed, "[%d] background child program: %s", iso, r.output);
    usleep(200000);
    CHECK(!process_with(marker), "[%d] the program's child survived the run", iso);
    CHECK(count_entries(parent, "balora-sbx-") == 0, "[%d] work directories left behind", iso);
    bl_sandbox_result_free(&r);
    if (iso >= BL_SANDBOX_ISO_USERNET) { /* a PID namespace: even a setsid() child dies with the run */
        snprintf(marker, sizeof marker, "94.%d%d", (int)getpid(), (int)iso);
        snprintf(prog, sizeof prog, "import os, sys\nif os.fork() == 0:\n    os.setsid()\n    os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(94)', '%s'])\n", marker);
        r = run(prog, &o);
        usleep(200000);
        CHECK(r.passed && !process_with(marker), "[%d] a setsid() child survived: %s", iso, r.output);
        bl_sandbox_result_free(&r);
    }
    if (iso >= BL_SANDBOX_ISO_USERNS) { /* a read-only file system outside the work directory */
        char outside[600];
        snprintf(outside, sizeof outside, "%s/outside-%d.txt", t_tmpdir(), (int)iso);
        snprintf(prog, sizeof prog, "for p in ['%s', '/var/tmp/balora-escape-%d']:\n    try:\n        open(p, 'w').write('x')\n        print('WROTE', p)\n"
                 "    except OSError as e:\n        print('blocked', e.errno)\n", outside, (int)getpid());
        r = run(prog, &o);
        char vt[100];
        snprintf(vt, sizeof vt, "/var/tmp/balora-escape-%d", (int)getpid());
        CHECK(r.passed && !strstr(r.output, "WROTE") && !bl_file_exists(outside) && !bl_file_exists(vt), "[%d] wrote outside: %s", iso, r.output);
        unlink(vt);
        bl_sandbox_result_free(&r);
    }
    if (iso != BL_SANDBOX_ISO_RLIMITS) {
        r = run("import socket\nprint('ifaces', [n for _, n in socket.if_nameindex()])\n", &o);
        CHECK(r.passed && strstr(r.output, "ifaces ['lo']"), "[%d] network: %s", iso, r.output);
        bl_sandbox_result_free(&r);
    }
}

int main(void) {
    const char *py;
    if (bl_sandbox_python(NULL, &py) != BALORA_STATUS_OK) { printf("SKIP: %s\n", balora_last_error()); return 77; }
    bl_sandbox_iso iso = bl_sandbox_isolation();
    printf("python %s, isolation: %s\n", py, bl_sandbox_iso_name(iso));

    char parent[512];
    snprintf(parent, sizeof parent, "%s/work", t_tmpdir());
    CHECK_OK(bl_mkdir_p(parent));
    bl_sandbox_opts o;
    bl_sandbox_opts_default(&o);
    o.tmp_parent = parent;
    o.timeout_s = 5;
    CHECK_OK(bl_sandbox_selftest(&o));

    /* A passing and a failing program. */
    bl_sandbox_result r = run("print('hello', 6*7)\n", &o);
    CHECK(r.passed && r.exit_code == 0 && strstr(r.output, "hello 42"), "pass: exit %d output %s", r.exit_code, r.output);
    bl_sandbox_result_free(&r);
    r = run("def f(x):\n    return x + 1\nassert f(1) == 3, 'wrong'\n", &o);
    CHECK(!r.passed && r.exit_code == 1 && strstr(r.output, "AssertionError"), "fail: exit %d output %s", r.exit_code, r.output);
    bl_sandbox_result_free(&r);
    r = run("def broken(:\n", &o);
    CHECK(!r.passed && strstr(r.output, "SyntaxError"), "syntax error: %s", r.output);
    bl_sandbox_result_free(&r);

    /* stdin is /dev/null; the environment is scrubbed. */
    setenv("BALORA_TEST_SECRET", "s3cr3t", 1);
    r = run("import sys, os\nprint(repr(sys.stdin.read()))\nprint(sorted(os.environ.items()))\nprint('cwd', os.getcwd())\n", &o);
    CHECK(r.passed && strstr(r.output, "''\n") && !strstr(r.output, "s3cr3t") && strstr(r.output, "('PATH', '/usr/bin:/bin')"),
          "stdin/env: %s", r.output);
    CHECK(strstr(r.output, iso >= BL_SANDBOX_ISO_USERNS ? "cwd /tmp\n" : "balora-sbx-") != NULL, "runs in its work dir: %s", r.output);
    bl_sandbox_result_free(&r);

    /* A program that loops forever is stopped at the wall-clock limit. */
    o.timeout_s = 1;
    double t0 = bl_time_now();
    r = run("while True:\n    pass\n", &o);
    CHECK(!r.passed && r.timed_out && bl_time_now() - t0 < 4, "infinite loop: timed_out %d after %.2f s", r.timed_out, bl_time_now() - t0);
    bl_sandbox_result_free(&r);
    /* ... and one that sleeps (no CPU time) too. */
    r = run("import time\ntime.sleep(60)\n", &o);
    CHECK(!r.passed && r.timed_out && r.wall_s < 4, "sleep: timed_out %d wall %.2f", r.timed_out, r.wall_s);
    bl_sandbox_result_free(&r);
    o.timeout_s = 5;

    /* Allocation without bound hits the address-space limit and fails. */
    o.mem_bytes = (int64_t)256 << 20;
    r = run("x = []\nwhile True:\n    x.append(bytearray(10**7))\n", &o);
    CHECK(!r.passed && !r.timed_out && (strstr(r.output, "MemoryError") || r.signal), "unbounded allocation: exit %d signal %d output %.200s",
          r.exit_code, r.signal, r.output);
    bl_sandbox_result_free(&r);
    o.mem_bytes = (int64_t)1 << 30;

    /* Output beyond the cap is dropped (and read, so the program is not blocked). */
    o.max_output = 1000;
    r = run("import sys\nsys.stdout.write('x' * 1000000)\nsys.stdout.flush()\nassert False, 'the end'\n", &o);
    CHECK(!r.passed && r.output_len == 1000 && r.output_truncated && strstr(r.output, "AssertionError: the end"),
          "output cap: %zu bytes, truncated %d, the traceback kept: %s", r.output_len, r.output_truncated, r.output + (r.output_len > 80 ? r.output_len - 80 : 0));
    bl_sandbox_result_free(&r);
    o.max_output = 16 << 10;

    /* Files: the work directory is writable and removed afterwards; nothing is written outside. */
    char outside[600], prog[2048];
    snprintf(outside, sizeof outside, "%s/outside.txt", t_tmpdir());
    snprintf(prog, sizeof prog,
             "import os\nopen('inside.txt', 'w').write('ok')\nos.mkdir('sub')\nopen('sub/f', 'w').write('x')\nos.chmod('sub', 0)\n"
             "for p in [%s%s%s, '/tmp/balora-sandbox-escape-%d', '/var/tmp/balora-sandbox-escape-%d', '/dev/shm/balora-sandbox-escape-%d']:\n"
             "    try:\n        open(p, 'w').write('escaped')\n        print('WROTE', p)\n"
             "    except OSError as e:\n        print('blocked', p, e.errno)\n",
             "'", outside, "'", (int)getpid(), (int)getpid(), (int)getpid());
    r = run(prog, &o);
    CHECK(r.passed, "file program: %s", r.output);
    CHECK(count_entries(parent, "balora-sbx-") == 0, "work directories left behind in %s", parent);
    if (iso >= BL_SANDBOX_ISO_USERNS) {
        /* (/tmp is the work directory itself under a mount namespace: writing there is allowed.) */
        CHECK(!strstr(r.output, "WROTE /var") && !strstr(r.output, "WROTE /dev") && strstr(r.output, "blocked /tmp/balora-test-"),
              "wrote outside its directory: %s", r.output);
        CHECK(!bl_file_exists(outside), "%s exists", outside);
        char p2[200];
        const char *dirs[3] = {"/tmp", "/var/tmp", "/dev/shm"};
        for (int i = 0; i < 3; i++) {
            snprintf(p2, sizeof p2, "%s/balora-sandbox-escape-%d", dirs[i], (int)getpid());
            CHECK(!bl_file_exists(p2), "%s exists", p2);
            unlink(p2);
        }
    } else {
        printf("note: no mount namespace: writes outside the work directory are not prevented here\n");
        unlink(outside);
    }
    bl_sandbox_result_free(&r);

    /* No network (only a loopback interface, which is down). */
    if (iso != BL_SANDBOX_ISO_RLIMITS) {
        r = run("import socket\nprint('ifaces', [n for _, n in socket.if_nameindex()])\n"
                "try:\n    socket.create_connection(('1.1.1.1', 80), timeout=2)\n    print('CONNECTED')\n"
                "except OSError as e:\n    print('no network', e.errno)\n", &o);
        CHECK(r.passed && strstr(r.output, "ifaces ['lo']") && strstr(r.output, "no network"), "network: %s", r.output);
        bl_sandbox_result_free(&r);
    }

    /* A program that leaves a process behind (even in a new session) does not outlive its run. */
    char marker[64];
    snprintf(marker, sizeof marker, "97.%d", (int)getpid());
    snprintf(prog, sizeof prog,
             "import os, subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(97)', '%s'])\n"
             "if os.fork() == 0:\n    os.setsid()\n    os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(97)', '%s1'])\nprint('parent done')\n",
             marker, marker);
    r = run(prog, &o);
    CHECK(r.passed, "stray processes program: %s", r.output);
    usleep(200000);
    if (iso >= BL_SANDBOX_ISO_USERNET) CHECK(!process_with(marker), "a process of the program survived its run");
    else if (process_with(marker)) printf("note: without a PID namespace a setsid() child can survive\n");
    bl_sandbox_result_free(&r);

    /* The process limit (counts for user nobody under full isolation). */
    if (iso == BL_SANDBOX_ISO_FULL) {
        o.max_procs = 8;
        r = run("import os, time\nok = 0\nfor i in range(40):\n    try:\n        if os.fork() == 0:\n            time.sleep(2)\n            os._exit(0)\n"
                "        ok += 1\n    except OSError:\n        pass\nprint('forked', ok)\n", &o);
        int forked = -1;
        const char *f = strstr(r.output, "forked ");
        if (f) forked = atoi(f + 7);
        CHECK(forked >= 0 && forked < 40, "process limit: forked %d of 40 (%s)", forked, r.output);
        bl_sandbox_result_free(&r);
        o.max_procs = 32;
    }

    /* Several programs at once: each result belongs to its program. */
    const char *progs[6];
    char texts[6][64];
    for (int i = 0; i < 6; i++) { snprintf(texts[i], sizeof texts[i], "import sys\nprint('p%d')\nsys.exit(%d)\n", i, i); progs[i] = texts[i]; }
    bl_sandbox_result rs[6];
    o.jobs = 3;
    CHECK_OK(bl_sandbox_run_many(progs, 6, &o, rs));
    for (int i = 0; i < 6; i++) {
        char want[16];
        snprintf(want, sizeof want, "p%d\n", i);
        CHECK(rs[i].exit_code == i && rs[i].passed == (i == 0) && !strcmp(rs[i].output, want), "program %d: exit %d output %s", i, rs[i].exit_code, rs[i].output);
        bl_sandbox_result_free(&rs[i]);
    }
    CHECK(count_entries(parent, "balora-sbx-") == 0, "work directories left behind");

    /* The weaker isolation levels (used where balora is not root) keep their guarantees. */
    o.jobs = 1;
    report_checks(o, iso);
    battery(o, parent, py);
    for (int lvl = (int)iso - 1; lvl >= 0; lvl--) {
        bl_sandbox_set_isolation((bl_sandbox_iso)lvl);
        CHECK((int)bl_sandbox_isolation() <= lvl, "isolation cap %d gave %d", lvl, (int)bl_sandbox_isolation());
        battery(o, parent, py);
    }
    report_checks(o, bl_sandbox_isolation()); /* the weakest level: the report's fallback text */
    bl_sandbox_set_isolation(BL_SANDBOX_ISO_FULL);

    /* Bad settings are refused. */
    o.timeout_s = 0;
    CHECK_FAILS(bl_sandbox_run("pass\n", &o, &r), BALORA_STATUS_INVALID, "must be positive");
    o.timeout_s = 5;
    o.python = "/nonexistent/python3";
    CHECK_FAILS(bl_sandbox_run("pass\n", &o, &r), BALORA_STATUS_IO, "not executable");
    return t_finish();
}
