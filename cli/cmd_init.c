/* balora init: PiSSA initialisation of a model, written as PEFT's PiSSA recipe does (see
 * src/method/pissa_model.h): OUT/adapter (the step-0 adapter) and OUT/residual (the model with
 * W_res in place of every adapted weight). The pair reproduces the original model's outputs. */
#include "adapters/lora.h"
#include "args.h"
#include "cli.h"
#include "encoders/encoder.h"
#include "io/hf.h"
#include "io/json.h"
#include "method/pissa.h"
#include "method/pissa_model.h"
#include "model/arch.h"
#include "model/model.h"
#include <stdio.h>
#include <string.h>

static const char *USAGE =
    "balora init --method pissa|pissa_niter_K --model DIR --out OUT [--targets LIST] [--rank R] [--alpha A] [--rslora]\n"
    "\n"
    "PiSSA (METHOD.md section 2): the top-r singular triplets of every targeted weight become the adapter's\n"
    "factors, the rest stays in the model as W_res. Writes OUT/adapter (PEFT adapter at step 0; its\n"
    "adapter_config.json says init_lora_weights = true so that PEFT loads it without re-running the SVD) and\n"
    "OUT/residual (a Hugging Face model folder holding W_res; other tensors, config and tokenizer copied).\n"
    "Load OUT/residual as the base model and OUT/adapter as its adapter (balora forward, or PEFT's\n"
    "PeftModel.from_pretrained); `balora train --init pissa` runs the same initialisation in memory.\n"
    "pissa = exact SVD (LAPACK); pissa_niter_K = randomized SVD with K power iterations (PEFT's naming).";

int cmd_init(int argc, char **argv) {
    const char *method = NULL, *model_dir = NULL, *out = NULL, *targets = "auto";
    int64_t rank = 8, seed = 42, threads = 0, num_labels = 0;
    double alpha = 8;
    bool rslora = false;
    char model_help[512], targets_help[512], l1[256], l2[256], l3[384];
    snprintf(model_help, sizeof model_help, "Hugging Face model folder (decoders: %s; encoders: %s)",
             bl_arch_type_list(1, l1, sizeof l1), bl_arch_type_list(2, l2, sizeof l2));
    snprintf(targets_help, sizeof targets_help, "modules to adapt: comma list of HF names, all-linear, or auto (%s)",
             bl_arch_targets_help(BL_USE_INIT, l3, sizeof l3));
    cli_opt opts[] = {
        {"method", CLI_OPT_STR, &method, "pissa (exact SVD) or pissa_niter_K (randomized SVD, K power iterations)"},
        {"model", CLI_OPT_STR, &model_dir, model_help},
        {"out", CLI_OPT_STR, &out, "output folder: OUT/adapter and OUT/residual are written"},
        {"targets", CLI_OPT_STR, &targets, targets_help},
        {"rank", CLI_OPT_INT, &rank, "LoRA rank r"},
        {"alpha", CLI_OPT_FLOAT, &alpha, "LoRA alpha (scale alpha / r)"},
        {"rslora", CLI_OPT_FLAG, &rslora, "rank-stabilised scale alpha / sqrt(r)"},
        {"seed", CLI_OPT_INT, &seed, "seed of the randomized SVD's sketch (pissa_niter_K)"},
        {"num-labels", CLI_OPT_INT, &num_labels, "encoders: number of labels of the classification head (0 = from config.json)"},
        {"threads", CLI_OPT_INT, &threads, "threads (0 = all cores)"},
    };
    int rc = cli_parse(argc, argv, USAGE, opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    if (!method || !model_dir || !out) {
        fprintf(stderr, "balora init: error: --method, --model and --out are required (see balora init --help)\n");
        return 2;
    }
    if (rank < 1 || alpha <= 0 || threads < 0 || num_labels < 0 || seed < 0) {
        fprintf(stderr, "balora init: error: need --rank >= 1, --alpha > 0, --threads >= 0, --num-labels >= 0, --seed >= 0\n");
        return 2;
    }
    if (threads > 0) balora_threads_set((int)threads);

    balora_status st;
    int niter = -1;
    if ((st = bl_pissa_parse_init(method, &niter))) return cli_fail(st);
    if (!bl_dir_exists(model_dir))
        return cli_fail(bl_fail(BALORA_STATUS_IO, "%s: no such model folder; hint: balora init needs a Hugging Face folder "
                                "(balora convert turns a llama2.c .bin into one)", model_dir));

    char cfg_path[4200], ad_dir[4200], res_dir[4200];
    if ((st = bl_path_join(cfg_path, sizeof cfg_path, model_dir, "config.json"))) return cli_fail(st);
    if ((st = bl_path_join(ad_dir, sizeof ad_dir, out, "adapter"))) return cli_fail(st);
    if ((st = bl_path_join(res_dir, sizeof res_dir, out, "residual"))) return cli_fail(st);
    cJSON *cj = NULL;
    if ((st = bl_json_load(cfg_path, &cj))) return cli_fail(st);
    const char *mt = NULL;
    st = bl_json_str(cj, cfg_path, "model_type", false, &mt);
    bool enc = !st && bl_arch_is_encoder(mt);
    cJSON_Delete(cj);
    if (st) return cli_fail(st);

    bl_model m;
    bl_encoder e;
    bl_adapter ad;
    memset(&m, 0, sizeof m); memset(&e, 0, sizeof e); memset(&ad, 0, sizeof ad);
    bl_module_set *set;
    const char *tg = targets;
    if (enc) {
        bl_enc_load_opts o = BL_ENC_LOAD_DEFAULT;
        o.num_labels = num_labels;
        o.seed = (uint64_t)seed;
        if ((st = bl_enc_load(&e, model_dir, &o))) goto done;
        set = &e.mods;
        if (!strcmp(tg, "auto")) tg = e.cfg.row->targets_init;
    } else {
        if ((st = bl_model_load(&m, model_dir))) goto done;
        set = &m.mods;
        if (!strcmp(tg, "auto")) tg = m.cfg.arch->targets_init;
    }
    bl_lora_config lc;
    bl_lora_config_default(&lc);
    lc.r = rank;
    lc.alpha = alpha;
    lc.rslora = rslora;
    lc.init = BL_LORA_INIT_PISSA;
    lc.pissa_niter = niter > 0 ? niter : 0;
    lc.keep_initial = true; /* bl_pissa_init_adapter records A0/B0 */
    if (strlen(res_dir) >= sizeof lc.base_model) {
        st = bl_fail(BALORA_STATUS_INVALID, "--out %s: path too long (limit %zu bytes)", out, sizeof lc.base_model - 20);
        goto done;
    }
    memcpy(lc.base_model, res_dir, strlen(res_dir) + 1);
    if ((st = bl_lora_config_set_targets(&lc, tg))) goto done;
    if ((st = bl_lora_init(&ad, set, &lc, (uint64_t)seed))) goto done;
    double t0 = bl_time_now();
    if ((st = bl_pissa_init_adapter(&ad, niter, (uint64_t)seed))) goto done;
    bl_log(BL_INFO, "PiSSA (%s SVD) of %d modules at rank %lld in %.2f s", niter < 0 ? "exact" : "randomized", ad.n,
           (long long)rank, bl_time_now() - t0);
    if ((st = bl_pissa_save_step0(&ad, ad_dir, method))) goto done;
    if (enc) {
        if ((st = bl_enc_save(&e, res_dir, false))) goto done;
        /* bl_enc_save wrote a config.json of the fields it parses; keep the original one unless
         * --num-labels changed the head */
        if ((st = bl_hf_copy_side_files(model_dir, res_dir, num_labels == 0, NULL))) goto done;
    } else {
        if ((st = bl_model_save(&m, res_dir))) goto done;
    }
    bl_log(BL_INFO, "wrote %s (step-0 adapter, %d modules) and %s (residual model)", ad_dir, ad.n, res_dir);
done:
    rc = st ? cli_fail(st) : 0;
    bl_lora_free(&ad);
    if (enc) bl_enc_free(&e);
    else bl_model_free(&m);
    return rc;
}
