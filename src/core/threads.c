/* Threads for balora's kernels (OpenMP) and for OpenBLAS, and the BLAS fast path.
 * OpenMP regions never call BLAS, and BLAS is never called inside an OpenMP region,
 * so the two pools take turns on the same cores instead of oversubscribing them. */
#include "core/bl.h"
#include "ops/ops.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int g_threads;

void balora_threads_set(int n) {
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    g_threads = n;
    omp_set_num_threads(n);
    bl_ops_threads_set(n); /* the BLAS pool (src/ops) */
}

int balora_threads_get(void) {
    if (g_threads == 0) balora_threads_set(0);
    return g_threads;
}

/* The core type OpenBLAS 0.3.21 should use on this CPU, or NULL to leave it alone. */
static const char *pick_coretype(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        /* SapphireRapids kernels need AVX512-BF16; Cooper Lake has it too. */
        if (__builtin_cpu_supports("avx512bf16")) return "SapphireRapids";
        return "SkylakeX";
    }
    if (__builtin_cpu_supports("avx2")) return "Haswell";
    return NULL;
}

void bl_blas_prepare_process(int argc, char **argv) {
    (void)argc;
    if (getenv("BALORA_NO_REEXEC")) return;
    bool changed = false;
    const char *core = pick_coretype();
    if (core && !getenv("OPENBLAS_CORETYPE")) { setenv("OPENBLAS_CORETYPE", core, 1); changed = true; }
    /* OpenMP threads spinning between our parallel regions starve OpenBLAS's threads on the same
     * cores (measured: a 4-step stories260K run took 18.0 s spinning, 1.7 s passive). */
    if (!getenv("OMP_WAIT_POLICY")) { setenv("OMP_WAIT_POLICY", "PASSIVE", 1); changed = true; }
    if (!changed) return;
    setenv("BALORA_NO_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the default kernels (balora_blas_info says which). */
}
