/* balora pretrain: pre-train a small decoder from scratch on the lab's synthetic corpus.
 *   balora pretrain (--preset NAME | --corpus-config FILE) [--arch llama|gpt2 --layers N ...] --out DIR
 *                   [--save-every N] [--resume [latest|DIR]]
 * Checkpoints go to DIR/checkpoint-STEP (every N steps, and on SIGINT/SIGTERM); --resume continues
 * bit-identically (same options and --threads).
 * Writes DIR/config.json, model.safetensors (float32), tokenizer.json, vocab.txt and the corpus
 * under DIR/corpus. */
#include "args.h"
#include "cli.h"
#include "io/json.h"
#include "lab/run.h"
#include <string.h>
#include <unistd.h>

typedef struct pre_ui { bool tty; } pre_ui;

static void on_progress(const bl_lab_progress *p, void *user) {
    pre_ui *ui = user;
    if (!ui->tty && p->step % 50 != 0 && p->step != p->total_steps) return;
    fprintf(stderr, "%spretrain step %lld/%lld | loss %.4f | %.0f s%s", ui->tty ? "\r" : "", (long long)p->step,
            (long long)p->total_steps, p->loss, p->elapsed_s, ui->tty && p->step != p->total_steps ? "   " : "\n");
    fflush(stderr);
}

int cmd_pretrain(int argc, char **argv) {
    const char *preset = "demo", *corpus_config = NULL, *arch = NULL, *out = NULL, *log = NULL, *resume = NULL;
    int64_t save_every = 0, save_limit = 0, threads = 1, layers = -1, hidden = -1, heads = -1, inter = -1, steps = -1, batch = -1, seed = -1;
    double lr = -1;
    cli_opt opts[] = {
        {"preset", CLI_OPT_STR, &preset, "lab preset whose corpus and model settings are the defaults (balora lab --list)"},
        {"corpus-config", CLI_OPT_STR, &corpus_config, "JSON corpus config (keys of bl_lab_corpus_config, e.g. {\"noise\": 0.2}) applied over the preset's"},
        {"arch", CLI_OPT_STR, &arch, "llama or gpt2 (default: the preset's)"},
        {"layers", CLI_OPT_INT, &layers, "blocks (-1 = preset)"},
        {"hidden", CLI_OPT_INT, &hidden, "hidden size (-1 = preset)"},
        {"heads", CLI_OPT_INT, &heads, "attention heads (-1 = preset)"},
        {"intermediate", CLI_OPT_INT, &inter, "MLP width (0 = llama 8/3 hidden, gpt2 4 hidden; -1 = preset)"},
        {"steps", CLI_OPT_INT, &steps, "optimizer steps (-1 = preset)"},
        {"batch", CLI_OPT_INT, &batch, "documents per step (-1 = preset)"},
        {"lr", CLI_OPT_FLOAT, &lr, "peak learning rate, cosine schedule (-1 = preset)"},
        {"seed", CLI_OPT_INT, &seed, "weight init and data order (-1 = preset)"},
        {"threads", CLI_OPT_INT, &threads, "threads (0 = all cores; tiny models run fastest on 1)"},
        {"log", CLI_OPT_STR, &log, "metrics log (.jsonl or .csv)"},
        {"out", CLI_OPT_STR, &out, "output model folder (created)"},
        {"save-every", CLI_OPT_INT, &save_every, "write a checkpoint (OUT/checkpoint-STEP) every N steps (0 = only when interrupted)"},
        {"save-total-limit", CLI_OPT_INT, &save_limit, "keep the last N checkpoints (0 = all)"},
        {"resume", CLI_OPT_LATEST, &resume, "continue from a checkpoint folder, or the latest in --out ('latest' or no value)"},
    };
    int rc = cli_parse(argc, argv, "(--preset NAME | --corpus-config FILE) [--arch llama|gpt2 --layers N --hidden N --heads N] --out DIR",
                       opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL);
    if (rc) return rc == 1 ? 0 : rc;
    cli_catch_signals();
    if (!out) {
        fprintf(stderr, "balora pretrain: error: --out is required (see balora pretrain --help)\n");
        return 2;
    }
    const bl_lab_preset *p = bl_lab_preset_find(preset);
    if (!p) {
        fprintf(stderr, "balora pretrain: error: --preset %s: unknown; hint: balora lab --list\n", preset);
        return 2;
    }
    bl_lab_corpus_config cc;
    bl_lab_preset_corpus(p, -1, &cc);
    if (corpus_config) {
        cJSON *j = NULL;
        balora_status st = bl_json_load(corpus_config, &j);
        if (!st) {
            const cJSON *obj = cJSON_GetObjectItemCaseSensitive(j, "config"); /* corpus.json holds it under "config" */
            st = bl_lab_corpus_config_from_json(obj && cJSON_IsObject(obj) ? obj : j, corpus_config, &cc);
        }
        cJSON_Delete(j);
        if (st) return cli_fail(st);
    }
    bl_lab_pretrain_cfg pc = p->pretrain;
    if (arch) {
        if (!strcmp(arch, "llama")) pc.arch.family = BL_FAMILY_LLAMA;
        else if (!strcmp(arch, "gpt2")) pc.arch.family = BL_FAMILY_GPT2;
        else {
            fprintf(stderr, "balora pretrain: error: --arch %s: unknown; hint: llama or gpt2\n", arch);
            return 2;
        }
    }
    if (layers >= 0) pc.arch.layers = (int32_t)(layers > 1000 ? 1000 : layers);
    if (hidden >= 0) pc.arch.hidden = (int32_t)(hidden > 100000 ? 100000 : hidden);
    if (heads >= 0) pc.arch.heads = (int32_t)(heads > 1000 ? 1000 : heads);
    if (inter >= 0) pc.arch.intermediate = (int32_t)(inter > 1000000 ? 1000000 : inter);
    if (steps >= 0) pc.steps = steps;
    if (batch >= 0) pc.batch = batch;
    if (lr >= 0) pc.lr = lr;
    if (seed >= 0) pc.seed = (uint64_t)seed;
    if (threads < 0 || threads > 1024) {
        fprintf(stderr, "balora pretrain: error: --threads %lld: need 0..1024\n", (long long)threads);
        return 2;
    }
    balora_threads_set((int)threads);
    if (save_every < 0 || save_limit < 0 || save_limit > 1000000) {
        fprintf(stderr, "balora pretrain: error: --save-every %lld / --save-total-limit %lld: must be >= 0\n", (long long)save_every,
                (long long)save_limit);
        return 2;
    }
    if (pc.steps < 1 || pc.batch < 1 || pc.batch > 4096 || !(pc.lr > 0)) {
        fprintf(stderr, "balora pretrain: error: need --steps >= 1, 1 <= --batch <= 4096, --lr > 0\n");
        return 2;
    }

    bl_lab_corpus c;
    balora_status st = bl_lab_corpus_generate(&cc, &c);
    if (st) return cli_fail(st);
    char sub[4096];
    st = bl_path_join(sub, sizeof sub, out, "corpus");
    if (!st) st = bl_lab_corpus_write(&c, sub);
    if (st) { bl_lab_corpus_free(&c); return cli_fail(st); }
    bl_log(BL_INFO, "corpus: %lld documents, %lld tokens, vocabulary %d (noise %g, imbalance %g, cue agreement %g, seed %llu)",
           (long long)c.n_docs, (long long)c.n_pre_ids, c.vocab_size, cc.noise, cc.imbalance, cc.cue_agree,
           (unsigned long long)cc.seed);
    pre_ui ui = {.tty = isatty(fileno(stderr)) != 0};
    bl_lab_pretrain_result res;
    bl_lab_ckpt ck = {.dir = out, .save_every = save_every, .save_keep = (int)save_limit, .resume = resume};
    st = bl_lab_pretrain(&c, &pc, out, log, &ck, on_progress, &ui, &res);
    bl_lab_corpus_free(&c);
    if (st) return cli_fail(st);
    printf("pre-trained a %s decoder (%d layers x %d, %lld parameters) for %lld steps on %lld documents: loss %.4f -> %.4f "
           "in %.1f s; saved to %s\n", pc.arch.family == BL_FAMILY_GPT2 ? "gpt2" : "llama", pc.arch.layers, pc.arch.hidden,
           (long long)res.n_params, (long long)res.steps, (long long)res.n_docs, res.first_loss, res.last_loss, res.seconds, out);
    return 0;
}
