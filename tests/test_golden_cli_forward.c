/* `balora forward` end to end on the golden folders: the CLI reads io.safetensors as the batch
 * (its extra tensors are ignored), writes logits, loss and --grads, and each matches the reference
 * (transformers + PEFT) within the golden tolerance. */
#include "harness.h"
#include "io/safetensors.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void compare(const bl_st_file *got, const char *gname, const bl_st_file *want, const char *wname) {
    const bl_st_tensor *g = bl_st_find(got, gname), *w = bl_st_find(want, wname);
    CHECK(g && w, "%s: tensor %s present", got->path, gname);
    if (!g || !w) return;
    CHECK(g->numel == w->numel && g->ndim == w->ndim, "%s: shape of %s", got->path, gname);
    if (g->numel != w->numel) return;
    float *a = malloc(sizeof(float) * (size_t)(g->numel ? g->numel : 1)), *b = malloc(sizeof(float) * (size_t)(w->numel ? w->numel : 1));
    CHECK_OK(bl_st_tensor_to_f32(got, g, a));
    CHECK_OK(bl_st_tensor_to_f32(want, w, b));
    CHECK(t_allclose(gname, a, b, g->numel, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s vs %s", gname, wname);
    free(a); free(b);
}

int main(void) {
    const char *shared = t_require_shared();
    const char *archs[] = {"gpt2", "gpt2_all", "llama", "mistral", "qwen2", "gpt2_cls"};
    for (size_t i = 0; i < sizeof archs / sizeof *archs; i++) {
        char dir[1024], cmd[8192], out[1200], path[1200];
        snprintf(dir, sizeof dir, "%s/golden/%s", shared, archs[i]);
        for (int lora = 0; lora < 2; lora++) {
            snprintf(out, sizeof out, "%s/%s_%d.safetensors", t_tmpdir(), archs[i], lora);
            snprintf(cmd, sizeof cmd, "'%s' forward --model '%s' %s%s%s --batch '%s/io.safetensors' --out '%s' %s", t_cli(), dir,
                     lora ? "--adapter '" : "", lora ? dir : "", lora ? "/lora'" : "", dir, out, lora ? "--grads" : "");
            int rc = system(cmd);
            CHECK(rc == 0, "%s exited %d", cmd, rc);
            if (rc) continue;
            bl_st_file got, io, gr;
            CHECK_OK(bl_st_open(&got, out));
            snprintf(path, sizeof path, "%s/io.safetensors", dir);
            CHECK_OK(bl_st_open(&io, path));
            compare(&got, "logits", &io, lora ? "logits_lora" : "logits_base");
            compare(&got, "loss", &io, lora ? "loss_lora" : "loss_base");
            if (lora) {
                snprintf(path, sizeof path, "%s/lora/grads.safetensors", dir);
                CHECK_OK(bl_st_open(&gr, path));
                for (int k = 0; k < gr.n; k++) compare(&got, gr.tensors[k].name, &gr, gr.tensors[k].name);
                CHECK(got.n == gr.n + 2, "%s: %d tensors = logits + loss + %d grads", out, got.n, gr.n);
                bl_st_close(&gr);
            } else {
                CHECK(got.n == 2, "%s: only logits and loss without --grads", out);
            }
            printf("ok %s %s\n", archs[i], lora ? "lora (logits, loss, grads)" : "base (logits, loss)");
            bl_st_close(&got);
            bl_st_close(&io);
        }
    }
    return t_finish();
}
