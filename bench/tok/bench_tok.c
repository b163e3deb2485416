/* In-process tokenizer throughput (no CLI parsing or printing): bl_tok_encode over each line of a file,
 * best of 3 passes.  Built and run by bench/tok/bench.sh:  bench_tok TOKENIZER_DIR FILE */
#include "tok/tok.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: bench_tok TOKENIZER_DIR FILE\n"); return 2; }
    bl_tok *t;
    if (bl_tok_load(&t, argv[1])) { fprintf(stderr, "%s\n", balora_last_error()); return 1; }
    char *d;
    size_t n;
    if (bl_file_read(argv[2], &d, &n)) { fprintf(stderr, "%s\n", balora_last_error()); return 1; }
    bl_tok_enc e = {0};
    double best = 1e30;
    size_t ids = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = bl_time_now();
        ids = 0;
        for (char *p = d, *end = d + n; p < end;) {
            char *q = memchr(p, '\n', (size_t)(end - p));
            if (!q) q = end;
            if (bl_tok_encode(t, p, (size_t)(q - p), true, &e)) { fprintf(stderr, "%s\n", balora_last_error()); return 1; }
            ids += e.n;
            p = q + 1;
        }
        double dt = bl_time_now() - t0;
        if (dt < best) best = dt;
    }
    const char *name = strrchr(argv[1], '/');
    printf("balora-lib-%-17s %.3f s  %.2f MB/s  (%zu ids)\n", name ? name + 1 : argv[1], best, n / 1e6 / best, ids);
    bl_tok_enc_free(&e);
    bl_tok_free(t);
    free(d);
    return 0;
}
