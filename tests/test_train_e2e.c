/* End to end on a real (tiny, random) LLaMA-architecture model written as a Hugging Face folder:
 * LoRA training lowers the loss on a learnable task; the same seed gives identical adapters;
 * a run stopped at a checkpoint and resumed (through the CLI) ends with the same adapter, bit
 * for bit, as an uninterrupted run; bad data fails with the file and line. */
#include "harness.h"
#include "train/balora.h"
#include "method/pissa_model.h"
#include "train/lm.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "io/safetensors.h"

enum { V = 32, C = 16, L = 2, H = 2, HKV = 1, HD = C / H, F = 32 };

/* A LLaMA-architecture HF folder with random weights; vocab tokens (tied = false). */
static void write_model_v(const char *dir, int vocab) {
    char path[600];
    bl_mkdir_p(dir);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"vocab_size\": %d, \"hidden_size\": %d,"
               " \"intermediate_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": %d, \"num_key_value_heads\": %d,"
               " \"max_position_embeddings\": 64, \"rms_norm_eps\": 1e-6, \"rope_theta\": 10000.0, \"hidden_act\": \"silu\","
               " \"tie_word_embeddings\": false, \"bos_token_id\": 1, \"eos_token_id\": 2, \"torch_dtype\": \"float32\"}\n",
            vocab, C, F, L, H, HKV);
    fclose(f);
    bl_rng r;
    bl_rng_seed(&r, 1234);
    float *buf[64];
    int k = 0;
    bl_st_writer w;
    bl_st_writer_init(&w);
    char names[64][96];
#define ADD(fmt, layer, rows, cols, std, one) do { \
        snprintf(names[k], sizeof names[k], fmt, layer); \
        buf[k] = malloc(sizeof(float) * (size_t)((rows) * (cols))); \
        for (int i_ = 0; i_ < (rows) * (cols); i_++) buf[k][i_] = (one) ? 1.0f : (std) * bl_rng_normal(&r); \
        int64_t sh_[2] = {rows, cols}; \
        CHECK_OK(bl_st_writer_add(&w, names[k], BL_DTYPE_F32, (cols) > 1 ? 2 : 1, sh_, buf[k])); \
        k++; } while (0)
    ADD("model.embed_tokens.weight%.0d", 0, vocab, C, 1.0f, 0);
    for (int l = 0; l < L; l++) {
        ADD("model.layers.%d.input_layernorm.weight", l, C, 1, 0, 1);
        ADD("model.layers.%d.post_attention_layernorm.weight", l, C, 1, 0, 1);
        ADD("model.layers.%d.self_attn.q_proj.weight", l, H * HD, C, 0.25f, 0);
        ADD("model.layers.%d.self_attn.k_proj.weight", l, HKV * HD, C, 0.25f, 0);
        ADD("model.layers.%d.self_attn.v_proj.weight", l, HKV * HD, C, 0.25f, 0);
        ADD("model.layers.%d.self_attn.o_proj.weight", l, C, H * HD, 0.25f, 0);
        ADD("model.layers.%d.mlp.gate_proj.weight", l, F, C, 0.25f, 0);
        ADD("model.layers.%d.mlp.up_proj.weight", l, F, C, 0.25f, 0);
        ADD("model.layers.%d.mlp.down_proj.weight", l, C, F, 0.18f, 0);
    }
    ADD("model.norm.weight%.0d", 0, C, 1, 0, 1);
    ADD("lm_head.weight%.0d", 0, vocab, C, 0.25f, 0);
#undef ADD
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK_OK(bl_st_writer_meta(&w, "format", "pt"));
    CHECK_OK(bl_st_writer_save(&w, path));
    bl_st_writer_free(&w);
    for (int i = 0; i < k; i++) free(buf[i]);
}
static void write_model(const char *dir) { write_model_v(dir, V); }

/* x_{t+1} = (5 x_t + 3) mod V: learnable from the current token alone */
static void write_data(const char *path, int n) {
    FILE *f = fopen(path, "w");
    for (int i = 0; i < n; i++) {
        int len = 8 + i % 5, x = (7 * i) % V;
        fprintf(f, "{\"input_ids\": [");
        for (int t = 0; t < len; t++) { fprintf(f, "%s%d", t ? ", " : "", x); x = (5 * x + 3) % V; }
        fprintf(f, "]}\n");
    }
    fclose(f);
}

typedef struct losses { double v[256]; int n; } losses;
static void keep_loss(const bl_progress *p, void *user) { losses *l = user; if (l->n < 256) l->v[l->n++] = p->loss; }

/* Trains in-process; returns the adapter tensors concatenated in *out (malloc'd). */
static int64_t train_lib(const char *model_dir, const char *data, uint64_t seed, float **out, losses *ls) {
    bl_model m = {0};
    bl_adapter ad = {0};
    bl_train_lm lm = {0};
    bl_train_data ds = {0};
    int64_t total = 0;
    CHECK_OK(bl_model_load(&m, model_dir));
    bl_lora_config lc;
    bl_lora_config_default(&lc);
    lc.r = 4; lc.alpha = 8; lc.dropout = 0.05;
    CHECK_OK(bl_lora_config_set_targets(&lc, "all-linear"));
    CHECK_OK(bl_lora_init(&ad, &m.mods, &lc, seed));
    bl_train_data_cfg dc;
    bl_train_data_cfg_default(&dc);
    dc.format = BL_TRAIN_DATA_TOKENS; dc.vocab_size = m.cfg.vocab_size; dc.max_len = 32;
    CHECK_OK(bl_train_data_load(&ds, data, &dc, NULL));
    CHECK_OK(bl_train_lm_init(&lm, &m, &ad, 4, ds.max_len));
    bl_train_cfg tc;
    bl_train_cfg_default(&tc);
    tc.adam.lr = 2e-2; tc.batch_size = 4; tc.grad_accum = 1; tc.epochs = 4; tc.seed = seed; tc.warmup_steps = 2;
    tc.progress = keep_loss; tc.progress_user = ls;
    bl_train_result res;
    CHECK_OK(bl_train_run(&tc, &lm.iface, &ds, NULL, &res));
    for (int i = 0; i < lm.n; i++) total += lm.numel[i];
    *out = malloc(sizeof(float) * (size_t)total);
    int64_t off = 0;
    for (int i = 0; i < lm.n; i++) { memcpy(*out + off, lm.w[i], sizeof(float) * (size_t)lm.numel[i]); off += lm.numel[i]; }
    bl_train_lm_free(&lm);
    bl_train_data_free(&ds);
    bl_lora_free(&ad);
    bl_model_free(&m);
    return total;
}

/* 1 if the two folders' FILE hold the same tensors bit for bit */
static int same_tensors(const char *a, const char *b, const char *file) {
    char pa[700], pb[700];
    snprintf(pa, sizeof pa, "%s/%s", a, file);
    snprintf(pb, sizeof pb, "%s/%s", b, file);
    bl_st_file fa, fb;
    if (bl_st_open(&fa, pa)) { fprintf(stderr, "%s\n", balora_last_error()); return 0; }
    if (bl_st_open(&fb, pb)) { fprintf(stderr, "%s\n", balora_last_error()); bl_st_close(&fa); return 0; }
    int same = fa.n == fb.n && fa.n > 0;
    for (int i = 0; same && i < fa.n; i++)
        same = !strcmp(fa.tensors[i].name, fb.tensors[i].name) && fa.tensors[i].nbytes == fb.tensors[i].nbytes &&
               !memcmp(fa.tensors[i].data, fb.tensors[i].data, fa.tensors[i].nbytes);
    bl_st_close(&fa);
    bl_st_close(&fb);
    return same;
}
static int same_adapter(const char *a, const char *b) { return same_tensors(a, b, "adapter_model.safetensors"); }

/* logits of a model (with whatever adapter is attached) on a fixed batch */
static void logits_of(bl_model *m, bl_adapter_mode mode, float *out) {
    int64_t ids[2 * 8], mask[2 * 8];
    for (int i = 0; i < 16; i++) { ids[i] = (i * 7 + 3) % V; mask[i] = i < 13; }
    bl_batch b = {.B = 2, .T = 8, .input_ids = ids, .attention_mask = mask};
    bl_run r;
    CHECK_OK(bl_run_init(&r, m, 2, 8));
    CHECK_OK(bl_model_forward(&r, &b, mode));
    memcpy(out, r.logits, sizeof(float) * 2 * 8 * V);
    bl_run_free(&r);
}

/* PiSSA: step 0 reproduces the original model; the teacher is the original model; the saved
 * (converted) adapter on the ORIGINAL weights reproduces the trained model. */
static void test_pissa(const char *model_dir, const char *data) {
    static float orig[2 * 8 * V], got[2 * 8 * V], teach[2 * 8 * V];
    bl_model m = {0}, m2 = {0};
    bl_adapter ad = {0}, ad2 = {0};
    CHECK_OK(bl_model_load(&m, model_dir));
    logits_of(&m, BL_ADAPTER_OFF, orig);
    bl_lora_config lc;
    bl_lora_config_default(&lc);
    lc.r = 4; lc.alpha = 4; lc.init = BL_LORA_INIT_PISSA; lc.keep_initial = true;
    CHECK_OK(bl_lora_config_set_targets(&lc, "q_proj,o_proj,up_proj"));
    CHECK_OK(bl_lora_init(&ad, &m.mods, &lc, 1));
    CHECK_OK(bl_pissa_init_adapter(&ad, -1, 1));
    logits_of(&m, BL_ADAPTER_ON, got);
    t_allclose("PiSSA step 0 = original model", got, orig, 2 * 8 * V, 1e-5, 1e-4);
    logits_of(&m, BL_ADAPTER_OFF, teach);
    double diff = 0;
    for (int i = 0; i < 2 * 8 * V; i++) diff += fabs(teach[i] - orig[i]);
    CHECK(diff > 1e-3, "W_res alone differs from the original model (%g)", diff);
    /* train a few steps, BA-LoRA-style teacher = INITIAL */
    bl_train_data ds;
    bl_train_data_cfg dc;
    bl_train_data_cfg_default(&dc);
    dc.format = BL_TRAIN_DATA_TOKENS; dc.vocab_size = V; dc.max_len = 32;
    CHECK_OK(bl_train_data_load(&ds, data, &dc, NULL));
    bl_train_lm lm;
    CHECK_OK(bl_train_lm_init(&lm, &m, &ad, 4, ds.max_len));
    lm.pissa = true; lm.teacher_mode = BL_ADAPTER_INITIAL;
    logits_of(&m, BL_ADAPTER_INITIAL, teach);
    t_allclose("PiSSA teacher (W_res + s B0 A0) = original model", teach, orig, 2 * 8 * V, 1e-5, 1e-4);
    bl_train_cfg tc;
    bl_train_cfg_default(&tc);
    tc.adam.lr = 1e-2; tc.batch_size = 4; tc.max_steps = 4;
    bl_train_result res;
    CHECK_OK(bl_train_run(&tc, &lm.iface, &ds, NULL, &res));
    logits_of(&m, BL_ADAPTER_ON, got);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/pissa_adapter", t_tmpdir());
    CHECK_OK(lm.iface.save(lm.iface.self, dir));
    /* the converted adapter on a fresh original model */
    CHECK_OK(bl_model_load(&m2, model_dir));
    CHECK_OK(bl_lora_load(&ad2, &m2.mods, dir, false));
    CHECK(ad2.cfg.r == 8 && ad2.cfg.alpha == 8 && ad2.cfg.init == BL_LORA_INIT_DEFAULT, "converted: r %lld alpha %g",
          (long long)ad2.cfg.r, ad2.cfg.alpha);
    logits_of(&m2, BL_ADAPTER_ON, teach);
    t_allclose("converted PiSSA adapter on the original weights = trained model", teach, got, 2 * 8 * V, 1e-4, 1e-3);
    bl_train_lm_free(&lm);
    bl_train_data_free(&ds);
    bl_lora_free(&ad2);
    bl_model_free(&m2);
    bl_lora_free(&ad);
    bl_model_free(&m);
}

/* Full fine-tuning of GPT-2 (Conv1D weights): the saved folder reloads to the same model. */
static void test_full_save(const char *model_dir, const char *data) {
    static float a[2 * 8 * 256], b[2 * 8 * 256];
    bl_model m = {0}, m2 = {0};
    CHECK_OK(bl_model_load(&m, model_dir));
    if (m.cfg.vocab_size != 256) { CHECK(false, "golden gpt2 vocab %lld", (long long)m.cfg.vocab_size); bl_model_free(&m); return; }
    bl_train_data ds;
    bl_train_data_cfg dc;
    bl_train_data_cfg_default(&dc);
    dc.format = BL_TRAIN_DATA_TOKENS; dc.vocab_size = 256; dc.max_len = 32;
    CHECK_OK(bl_train_data_load(&ds, data, &dc, NULL));
    bl_train_lm lm;
    CHECK_OK(bl_train_lm_init_full(&lm, &m, 4, ds.max_len, true));
    int nodecay = 0, n_t = 0;
    for (int i = 0; i < lm.n; i++) { nodecay += !bl_adamw_decays(lm.names[i]); n_t += lm.tp[i].transposed; }
    CHECK(nodecay > 0 && nodecay < lm.n && n_t > 0, "decay flags (%d of %d exempt), %d Conv1D tensors", nodecay, lm.n, n_t);
    bl_train_cfg tc;
    bl_train_cfg_default(&tc);
    tc.adam.lr = 1e-3; tc.adam.weight_decay = 0.1; tc.batch_size = 4; tc.max_steps = 3;
    bl_train_result res;
    CHECK_OK(bl_train_run(&tc, &lm.iface, &ds, NULL, &res));
    CHECK(res.last_loss < res.first_loss, "full FT: loss %.4f -> %.4f", res.first_loss, res.last_loss);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/gpt2_full", t_tmpdir());
    CHECK_OK(lm.iface.save(lm.iface.self, dir));
    bl_train_lm_free(&lm);
    CHECK_OK(bl_model_set_full_ft(&m, false));
    logits_of(&m, BL_ADAPTER_ON, a);
    CHECK_OK(bl_model_load(&m2, dir));
    logits_of(&m2, BL_ADAPTER_ON, b);
    CHECK(memcmp(a, b, sizeof a) == 0, "the saved full model reloads to the same logits");
    bl_model_free(&m2);
    bl_train_data_free(&ds);
    bl_model_free(&m);
}

static int count_csv_rows(const char *path) {
    char *s; size_t n;
    if (bl_file_read(path, &s, &n)) return -1;
    int k = 0;
    for (size_t i = 0; i < n; i++) k += s[i] == '\n';
    free(s);
    return k;
}

static int sh(const char *cmd) {
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

int main(void) {
    const char *tmp = t_tmpdir();
    char model[512], data[512], cmd[4096];
    char *lg; size_t ln;
    snprintf(model, sizeof model, "%s/tiny-llama", tmp);
    snprintf(data, sizeof data, "%s/train.jsonl", tmp);
    write_model(model);
    write_data(data, 24);

    /* library: the loss falls; same seed -> same adapter */
    float *a = NULL, *b = NULL;
    losses la = {0}, lb = {0};
    int64_t na = train_lib(model, data, 7, &a, &la), nb = train_lib(model, data, 7, &b, &lb);
    CHECK(la.n == 24, "4 epochs x 6 steps: %d", la.n);
    double first = (la.v[0] + la.v[1] + la.v[2]) / 3, last = (la.v[la.n - 1] + la.v[la.n - 2] + la.v[la.n - 3]) / 3;
    printf("loss: first 3 steps %.4f, last 3 steps %.4f (uniform: %.4f)\n", first, last, log((double)V));
    CHECK(last < 0.6 * first, "LoRA training lowers the loss: %.4f -> %.4f", first, last);
    CHECK(na == nb && na > 0 && !memcmp(a, b, sizeof(float) * (size_t)na), "same seed -> bit-identical adapter");
    free(a); free(b);

    /* CLI: uninterrupted vs stopped at step 5 (checkpoints every 3) and resumed */
    const char *cli = t_cli();
    const char *common = "--data-format tokens --targets q_proj,v_proj,down_proj --rank 4 --alpha 8 --dropout 0.1 --lr 0.01 "
                         "--schedule cosine --warmup-ratio 0.1 --batch-size 3 --grad-accum 2 --epochs 3 --max-len 32 --seed 5 --threads 2";
    snprintf(cmd, sizeof cmd, "%s train --model %s --data %s --out %s/full --log %s/full.jsonl %s 2>%s/full.err", cli, model, data, tmp, tmp, common, tmp);
    CHECK(sh(cmd) == 0, "uninterrupted CLI run: %s", cmd);
    snprintf(cmd, sizeof cmd, "%s train --model %s --data %s --out %s/part --save-every 3 --stop-after 5 --log %s/part.csv %s 2>%s/part.err", cli, model, data, tmp, tmp, common, tmp);
    CHECK(sh(cmd) == 0, "stopped CLI run");
    char p[700];
    snprintf(p, sizeof p, "%s/part/checkpoint-3/adapter_model.safetensors", tmp);
    CHECK(bl_file_exists(p), "checkpoint-3 holds the adapter");
    snprintf(p, sizeof p, "%s/part/adapter_model.safetensors", tmp);
    CHECK(!bl_file_exists(p), "no final adapter after a stop");
    snprintf(cmd, sizeof cmd, "%s train --model %s --data %s --out %s/part --save-every 3 --resume latest --log %s/part.csv %s 2>%s/resume.err", cli, model, data, tmp, tmp, common, tmp);
    CHECK(sh(cmd) == 0, "resumed CLI run");
    char fa[600], fb[600];
    snprintf(fa, sizeof fa, "%s/full", tmp);
    snprintf(fb, sizeof fb, "%s/part", tmp);
    CHECK(same_adapter(fa, fb), "stop + resume gives the uninterrupted adapter bit for bit");
    snprintf(p, sizeof p, "%s/full/adapter_config.json", tmp);
    CHECK(bl_file_exists(p), "adapter_config.json written");

    test_pissa(model, data);
    /* BA-LoRA through the CLI: PiSSA init, v6 schedules; stop + resume bit-identical; terms logged */
    const char *bal = "--data-format tokens --method balora --recipe paper-v6 --svd-k 2 --top-k-entropy 5 --targets all-linear "
                      "--rank 2 --alpha 2 --lr 0.01 --batch-size 4 --epochs 2 --max-len 32 --seed 3 --threads 2";
    snprintf(cmd, sizeof cmd, "%s train --model %s --data %s --out %s/bfull --log %s/bfull.jsonl %s 2>%s/bfull.err", cli, model, data, tmp, tmp, bal, tmp);
    CHECK(sh(cmd) == 0, "BA-LoRA CLI run: %s", cmd);
    snprintf(cmd, sizeof cmd, "%s train --model %s --data %s --out %s/bpart --save-every 4 --stop-after 5 %s 2>/dev/null", cli, model, data, tmp, bal);
    CHECK(sh(cmd) == 0, "BA-LoRA stopped run");
    snprintf(cmd, sizeof cmd, "%s train --model %s --data %s --out %s/bpart --resume latest %s 2>/dev/null", cli, model, data, tmp, bal);
    CHECK(sh(cmd) == 0, "BA-LoRA resumed run");
    snprintf(fa, sizeof fa, "%s/bfull", tmp);
    snprintf(fb, sizeof fb, "%s/bpart", tmp);
    CHECK(same_adapter(fa, fb), "BA-LoRA stop + resume gives the uninterrupted adapter bit for bit");
    snprintf(p, sizeof p, "%s/bfull.jsonl", tmp);
    if (!bl_file_read(p, &lg, &ln)) {
        CHECK(strstr(lg, "\"l_cr\":") && strstr(lg, "\"l_svdr\":") && strstr(lg, "\"lambda2\":"), "BA-LoRA terms in the log");
        free(lg);
    } else CHECK(false, "no BA-LoRA metrics log %s", p);
    snprintf(p, sizeof p, "%s/bfull/adapter_config.json", tmp);
    if (!bl_file_read(p, &lg, &ln)) {
        CHECK(strstr(lg, "\"r\":\t4") && strstr(lg, "\"init_lora_weights\":\ttrue"), "PiSSA adapter saved converted (r 4 = 2 x 2): %s", lg);
        free(lg);
    } else CHECK(false, "no BA-LoRA adapter_config.json %s", p);

    /* every decoder family of ../shared/golden trains through the CLI (targets auto) */
    const char *sd = t_shared_dir();
    if (!sd) printf("NOTE: ../shared absent: the golden-family, LLaMA-2/GPT-2 tokenizer and GPT-2 full-save checks do not run\n");
    const char *fams[4] = {"gpt2", "llama", "mistral", "qwen2"};
    for (int i = 0; sd && i < 4; i++) {
        snprintf(cmd, sizeof cmd, "%s train --model %s/golden/%s --data %s --data-format tokens --out %s/g_%s --max-steps 3 --batch-size 2 "
                 "--lr 0.01 --threads 2 --log %s/g_%s.csv 2>%s/g_%s.err", cli, sd, fams[i], data, tmp, fams[i], tmp, fams[i], tmp, fams[i]);
        CHECK(sh(cmd) == 0, "training %s: %s", fams[i], cmd);
        snprintf(p, sizeof p, "%s/g_%s/adapter_config.json", tmp, fams[i]);
        char *cj; size_t cn;
        if (!bl_file_read(p, &cj, &cn)) {
            bool gpt2 = i == 0;
            CHECK(strstr(cj, gpt2 ? "\"fan_in_fan_out\":\ttrue" : "\"fan_in_fan_out\":\tfalse") &&
                  strstr(cj, gpt2 ? "[\"c_attn\"]" : "[\"q_proj\", \"v_proj\"]"), "%s adapter config: %s", fams[i], cj);
            free(cj);
        } else CHECK(false, "%s: no adapter_config.json", fams[i]);
        snprintf(p, sizeof p, "%s/g_%s.csv", tmp, fams[i]);
        CHECK(count_csv_rows(p) == 4, "%s: header + 3 rows in the csv log", fams[i]);
    }

    /* --config (YAML) sets options; a terminal gets one updating line (\r), a pipe plain lines.
     * (args.c frees the config strings at exit: the leak check runs here too.) */
    snprintf(p, sizeof p, "%s/train.yaml", tmp);
    FILE *yf = fopen(p, "w");
    fprintf(yf, "rank: 3\nalpha: 6\ntargets: k_proj\nmax_steps: 2\ndata-format: tokens\nbatch_size: 2\n");
    fclose(yf);
    snprintf(cmd, sizeof cmd, "script -qec '%s train --model %s --data %s --out %s/cfg --config %s/train.yaml --threads 1' /dev/null > %s/tty.out 2>&1",
             cli, model, data, tmp, tmp, tmp);
    CHECK(sh(cmd) == 0, "run with --config under a pseudo-terminal: %s", cmd);
    snprintf(p, sizeof p, "%s/cfg/adapter_config.json", tmp);
    if (!bl_file_read(p, &lg, &ln)) {
        CHECK(strstr(lg, "\"r\":\t3") && strstr(lg, "\"lora_alpha\":\t6") && strstr(lg, "[\"k_proj\"]"), "config applied: %s", lg);
        free(lg);
    } else CHECK(false, "no adapter from the --config run");
    snprintf(p, sizeof p, "%s/tty.out", tmp);
    if (!bl_file_read(p, &lg, &ln)) {
        CHECK(strstr(lg, "\rstep 1/2") && strstr(lg, "\rstep 2/2"), "terminal: updating line with \\r: %s", lg);
        free(lg);
    } else CHECK(false, "no terminal output %s", p);
    snprintf(p, sizeof p, "%s/full.err", tmp);
    if (!bl_file_read(p, &lg, &ln)) {
        CHECK(!strchr(lg, '\r') && strstr(lg, "\nstep 2/12 (16%) | epoch 0.50 | loss "), "pipe: plain lines");
        free(lg);
    } else CHECK(false, "no stderr of the uninterrupted run %s", p);

    /* Alpaca JSONL through the LLaMA-2 tokenizer on a model with its 32000-token vocabulary */
    if (sd) {
        char big[600];
        snprintf(big, sizeof big, "%s/llama32k", tmp);
        write_model_v(big, 32000);
        snprintf(p, sizeof p, "%s/math.jsonl", tmp);
        FILE *mf = fopen(p, "w");
        fprintf(mf, "{\"query\": \"What is 2 + 3?\", \"response\": \"2 + 3 = 5. The answer is: 5\"}\n"
                    "{\"query\": \"Tom has 4 apples and eats one. How many are left?\", \"response\": \"4 - 1 = 3. The answer is: 3\"}\n");
        fclose(mf);
        snprintf(cmd, sizeof cmd, "%s train --model %s --data %s --tokenizer %s/tokenizers/llama2 --out %s/math --max-steps 2 --batch-size 2 "
                 "--threads 2 2>%s/math.err", cli, big, p, sd, tmp, tmp);
        CHECK(sh(cmd) == 0, "Alpaca JSONL with the LLaMA-2 tokenizer: %s", cmd);
        snprintf(p, sizeof p, "%s/math.err", tmp);
        if (!bl_file_read(p, &lg, &ln)) {
            CHECK(strstr(lg, "2 examples") && strstr(lg, "step 2/2"), "log: %s", lg);
            free(lg);
        } else CHECK(false, "no stderr of the Alpaca run %s", p);
        /* a tokenizer whose ids exceed the model's vocabulary: clear error */
        snprintf(cmd, sizeof cmd, "%s train --model %s --data %s/math.jsonl --tokenizer %s/tokenizers/gpt2 --out %s/bad2 2>%s/bad2.err",
                 cli, model, tmp, sd, tmp, tmp);
        CHECK(sh(cmd) == 1, "GPT-2 tokenizer on a 32-token model fails");
        snprintf(p, sizeof p, "%s/bad2.err", tmp);
        if (!bl_file_read(p, &lg, &ln)) {
            CHECK(strstr(lg, "math.jsonl:1: the tokenizer produced id") && strstr(lg, "vocabulary of 32"), "message: %s", lg);
            free(lg);
        } else CHECK(false, "no stderr of the GPT-2 tokenizer run %s", p);
    }

    /* full fine-tuning: GPT-2 save/reload; CLI stop + resume on the tiny llama */
    if (sd) {
        snprintf(p, sizeof p, "%s/golden/gpt2", sd);
        test_full_save(p, data);
    }
    const char *fullopt = "--data-format tokens --method full --lr 0.003 --weight-decay 0.01 --batch-size 4 --epochs 2 --max-len 32 --seed 9 --threads 2";
    snprintf(cmd, sizeof cmd, "%s train --model %s --data %s --out %s/ffull %s 2>%s/ffull.err", cli, model, data, tmp, fullopt, tmp);
    CHECK(sh(cmd) == 0, "full fine-tuning CLI run: %s", cmd);
    snprintf(cmd, sizeof cmd, "%s train --model %s --data %s --out %s/fpart --save-every 5 --stop-after 7 %s 2>/dev/null", cli, model, data, tmp, fullopt);
    CHECK(sh(cmd) == 0, "full fine-tuning stopped run");
    snprintf(cmd, sizeof cmd, "%s train --model %s --data %s --out %s/fpart --resume latest %s 2>/dev/null", cli, model, data, tmp, fullopt);
    CHECK(sh(cmd) == 0, "full fine-tuning resumed run");
    snprintf(fa, sizeof fa, "%s/ffull", tmp);
    snprintf(fb, sizeof fb, "%s/fpart", tmp);
    CHECK(same_tensors(fa, fb, "model.safetensors"), "full fine-tuning stop + resume gives the same model bit for bit");
    snprintf(p, sizeof p, "%s/ffull/config.json", tmp);
    CHECK(bl_file_exists(p), "config.json copied");

    /* CLI errors */
    snprintf(p, sizeof p, "%s/bad.jsonl", tmp);
    FILE *f = fopen(p, "w");
    fprintf(f, "{\"input_ids\": [1, 2]}\n{\"input_ids\": [1, 99]}\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s train --model %s --data %s --out %s/bad --data-format tokens 2>%s/bad.err", cli, model, p, tmp, tmp);
    CHECK(sh(cmd) == 1, "out-of-range id fails with exit 1");
    char *err; size_t n;
    snprintf(p, sizeof p, "%s/bad.err", tmp);
    if (!bl_file_read(p, &err, &n)) {
        CHECK(strstr(err, "bad.jsonl:2: field 'input_ids'[1] = 99 is out of range"), "message: %s", err);
        free(err);
    } else CHECK(false, "no stderr of the bad-data run %s", p);
    snprintf(cmd, sizeof cmd, "%s train --model %s --data %s --out %s/x --data-format tokens --schedule exp 2>/dev/null", cli, model, data, tmp);
    CHECK(sh(cmd) == 2, "bad --schedule is a usage error");
    snprintf(cmd, sizeof cmd, "%s train --model %s --data %s 2>/dev/null", cli, model, data);
    CHECK(sh(cmd) == 2, "missing --out is a usage error");
    return t_finish();
}
