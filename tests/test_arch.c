/* The architecture table (src/model/arch.h): every row is found back by each of its model types,
 * HF class names, heads, default targets and GGUF arch; the lookups refuse what no row has; and no
 * .c file under src/ or cli/ but src/model/arch.c spells an encoder model type or a default target
 * list (the scan reads the tree from BALORA_SOURCE_DIR and proves itself on arch.c). */
#include "harness.h"
#include "adapters/lora.h"
#include "encoders/finetune.h"
#include "model/arch.h"
#include <stdlib.h>
#include <string.h>

/* true when `leaf` is the last path component of one of the row's block linears */
static bool row_has_leaf(const bl_arch *a, const char *leaf) {
    for (size_t i = 0; i < sizeof a->lin / sizeof a->lin[0] && a->lin[i].path; i++) {
        const char *dot = strrchr(a->lin[i].path, '.');
        if (!strcmp(dot ? dot + 1 : a->lin[i].path, leaf)) return true;
    }
    return false;
}

static void check_targets(const bl_arch *a, const char *mt, bl_arch_use use, const char *want) {
    const char *got = bl_arch_default_targets(mt, use);
    CHECK(got && want && !strcmp(got, want), "%s: default targets (%s) '%s', row says '%s'", mt,
          use == BL_USE_INIT ? "init" : "train", got ? got : "(null)", want ? want : "(null)");
    bl_lora_config lc;
    bl_lora_config_default(&lc);
    CHECK_OK(bl_lora_config_set_targets(&lc, got ? got : ""));
    CHECK(lc.n_targets > 0, "%s: default targets '%s' parse to %d names", mt, got ? got : "", lc.n_targets);
    for (int i = 0; i < lc.n_targets; i++)
        CHECK(row_has_leaf(a, lc.targets[i]), "%s: default target '%s' is no linear of row %s", mt, lc.targets[i], a->name);
}

static void test_rows(void) {
    int n = 0;
    const bl_arch *rows = bl_arch_rows(&n);
    CHECK(rows && n >= 5, "the table has %d rows (gpt2, llama, bert, roberta, deberta-v2 at least)", n);
    int n_types = 0, n_enc = 0, n_gguf = 0;
    for (int r = 0; rows && r < n; r++) {
        const bl_arch *a = &rows[r];
        bool enc = a->family == BL_FAMILY_ENCODER;
        CHECK(a->n_types >= 1 && a->types, "row %s has model types", a->name);
        CHECK(enc ? a->enc_arch >= 0 && bl_arch_of_encoder((bl_enc_arch)a->enc_arch) == a
                  : a->enc_arch == -1 && bl_arch_of_family(a->family) == a,
              "row %s is found back by its %s", a->name, enc ? "encoder kind" : "family");
        CHECK(a->heads != 0, "row %s supports a head", a->name);
        if (a->heads & (1u << BL_HEAD_SEQ_CLS))
            CHECK(a->cls_out && a->modules_to_save[0], "row %s: a seq-cls head names its classifier and modules_to_save", a->name);
        else
            CHECK(!a->modules_to_save[0], "row %s: modules_to_save without a seq-cls head", a->name);
        CHECK(!strcmp(a->types[0].model_type, a->name) || enc, "row %s: types[0] is the family's own (%s)", a->name,
              a->types[0].model_type);
        for (int t = 0; t < a->n_types; t++) {
            const bl_arch_type *ty = &a->types[t], *got_ty = NULL;
            const char *mt = ty->model_type;
            n_types++;
            n_enc += enc;
            CHECK(bl_arch_find(mt, &got_ty) == a && got_ty == ty, "model_type %s finds row %s and its own type", mt, a->name);
            CHECK(bl_arch_is_encoder(mt) == enc, "bl_arch_is_encoder(%s) = %d, the row is %s", mt, bl_arch_is_encoder(mt),
                  enc ? "an encoder" : "a decoder");
            check_targets(a, mt, BL_USE_TRAIN, a->targets_train);
            check_targets(a, mt, BL_USE_INIT, a->targets_init);
            /* class names: each one the row supports, found back with its head */
            const char *cls[2] = {ty->causal_lm, ty->seq_cls};
            const bl_head_kind hk[2] = {BL_HEAD_CAUSAL_LM, BL_HEAD_SEQ_CLS};
            for (int h = 0; h < 2; h++) {
                bool supported = (a->heads >> hk[h]) & 1u;
                if (!supported) {
                    CHECK(!cls[h], "%s: class %s for a head the row does not support", mt, cls[h] ? cls[h] : "");
                    continue;
                }
                CHECK(cls[h] && !strncmp(cls[h], ty->class_prefix, strlen(ty->class_prefix)),
                      "%s: head %d has a class starting with %s", mt, h, ty->class_prefix);
                const bl_arch_type *cty = NULL;
                bl_head_kind head = (bl_head_kind)-1;
                CHECK(cls[h] && bl_arch_find_class(cls[h], &cty, &head) == a && cty == ty && head == hk[h],
                      "class %s finds row %s, type %s, head %d", cls[h] ? cls[h] : "(null)", a->name, mt, h);
            }
            /* GGUF: a type that exports finds a row of its family back (llama and mistral share llama's) */
            if (ty->gguf_arch) {
                n_gguf++;
                const bl_arch_type *gt = NULL;
                const bl_arch *g = bl_arch_find_gguf(ty->gguf_arch, &gt);
                CHECK(g && g->family == a->family && !enc && gt && !strcmp(gt->gguf_arch, ty->gguf_arch),
                      "%s: GGUF arch %s finds a %s row (got %s)", mt, ty->gguf_arch, a->name, g ? g->name : "none");
            } else {
                CHECK(true, "%s: no GGUF export", mt);
            }
        }
    }
    CHECK(n_types >= 8 && n_enc >= 5 && n_gguf >= 3, "%d model types, %d encoders, %d with a GGUF export", n_types, n_enc, n_gguf);
    /* what no row has */
    const bl_arch_type *ty = (const bl_arch_type *)1;
    CHECK(!bl_arch_find("gemma", &ty) && ty == NULL, "unknown model_type: no row, type cleared");
    CHECK(!bl_arch_find(NULL, NULL) && !bl_arch_is_encoder(NULL) && !bl_arch_is_encoder("gemma"), "NULL / unknown is no encoder");
    CHECK(!bl_arch_default_targets("gemma", BL_USE_TRAIN), "unknown model_type: no default targets");
    CHECK(!bl_arch_find_class("GemmaForCausalLM", NULL, NULL) && !bl_arch_find_class(NULL, NULL, NULL), "unknown class");
    CHECK(!bl_arch_find_gguf("bert", NULL) && !bl_arch_find_gguf(NULL, NULL), "no GGUF export for bert");
    /* the help lines list every row */
    char help[1024], types[512];
    bl_arch_targets_help(BL_USE_TRAIN, help, sizeof help);
    bl_arch_type_list(0, types, sizeof types);
    for (int r = 0; rows && r < n; r++) {
        CHECK(strstr(help, rows[r].targets_train) && strstr(help, rows[r].name), "targets help '%s' lists %s", help, rows[r].name);
        for (int t = 0; t < rows[r].n_types; t++)
            CHECK(strstr(types, rows[r].types[t].model_type), "type list '%s' has %s", types, rows[r].types[t].model_type);
    }
    /* seq-cls fine-tuning leaves the targets to the table (bl_seqcls_finetune takes the row's) */
    bl_seqcls_ft_cfg fc;
    bl_seqcls_ft_default(&fc);
    CHECK(fc.lora.n_targets == 0 && !fc.lora.target_regex[0], "bl_seqcls_ft_default sets no targets of its own");
}

/* `balora train --help` lists the table's defaults */
static void test_cli_help(void) {
    char cmd[4200], help[1024];
    const char *dir = t_tmpdir();
    snprintf(cmd, sizeof cmd, "%s train --help > %s/help.txt 2>&1", t_cli(), dir);
    int rc = system(cmd);
    CHECK(rc != -1, "ran %s", cmd);
    char path[4200];
    snprintf(path, sizeof path, "%s/help.txt", dir);
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(bl_file_read(path, &text, &len));
    bl_arch_targets_help(BL_USE_TRAIN, help, sizeof help);
    CHECK(text && strstr(text, help), "balora train --help shows the table's default targets '%s'", help);
    free(text);
}

/* ------------------------------------------------------------------ the scan */

typedef struct needle { char s[96]; int hits_outside, hits_arch; } needle;
static needle g_needles[64];
static int g_n_needles, g_scanned;

/* Files owned elsewhere that still spell a needle (another engineer's directory): allowed, reported. */
static const struct { const char *file, *needle; } g_allowed[] = {
    {"src/lab/nlu_report.c", "\"bert\""}, /* the lab's report names its encoder's model_type */
};

static void add_needle(const char *s) {
    char q[96];
    snprintf(q, sizeof q, "\"%s\"", s);
    for (int i = 0; i < g_n_needles; i++)
        if (!strcmp(g_needles[i].s, q)) return;
    if (g_n_needles < (int)(sizeof g_needles / sizeof g_needles[0])) snprintf(g_needles[g_n_needles++].s, sizeof q, "%s", q);
}

static void scan_file(const char *full, const char *rel) {
    char *text = NULL;
    size_t len = 0;
    if (bl_file_read(full, &text, &len) != BALORA_STATUS_OK) {
        CHECK(false, "cannot read %s: %s", full, balora_last_error());
        return;
    }
    g_scanned++;
    bool arch = !strcmp(rel, "src/model/arch.c");
    for (int i = 0; i < g_n_needles; i++) {
        /* a needle inside a C string with escaped quotes counts too: \"bert\" */
        char esc[128];
        snprintf(esc, sizeof esc, "\\\"%.*s\\\"", (int)strlen(g_needles[i].s) - 2, g_needles[i].s + 1);
        const char *hit = strstr(text, g_needles[i].s);
        if (!hit) hit = strstr(text, esc);
        if (!hit) continue;
        if (arch) { g_needles[i].hits_arch++; continue; }
        bool allowed = false;
        for (size_t k = 0; k < sizeof g_allowed / sizeof g_allowed[0]; k++)
            allowed |= !strcmp(rel, g_allowed[k].file) && !strcmp(g_needles[i].s, g_allowed[k].needle);
        if (allowed) { printf("NOTE: %s still spells %s (allowed: owned by another part of the tree)\n", rel, g_needles[i].s); continue; }
        int line = 1;
        for (const char *p = text; p < hit; p++) line += *p == '\n';
        g_needles[i].hits_outside++;
        CHECK(false, "%s:%d spells %s, which only src/model/arch.c may; hint: ask the table (bl_arch_is_encoder, "
              "bl_arch_default_targets, the row's targets_train)", rel, line, g_needles[i].s);
    }
    free(text);
}

static void test_scan(void) {
    int n = 0;
    const bl_arch *rows = bl_arch_rows(&n);
    for (int r = 0; r < n; r++) {
        if (rows[r].family == BL_FAMILY_ENCODER)
            for (int t = 0; t < rows[r].n_types; t++) add_needle(rows[r].types[t].model_type);
        add_needle(rows[r].targets_train);
        add_needle(rows[r].targets_init);
    }
    CHECK(g_n_needles >= 8, "%d needles (encoder model types and default target lists)", g_n_needles);
    t_scan_sources("src", false, scan_file);
    t_scan_sources("cli", false, scan_file);
    CHECK(g_scanned >= 50, "scanned only %d .c files under %s; hint: set BALORA_SOURCE_DIR", g_scanned, t_source_dir());
    /* the scanner works: arch.c itself spells every needle */
    for (int i = 0; i < g_n_needles; i++)
        CHECK(g_needles[i].hits_arch == 1, "the scan did not find %s in src/model/arch.c: the scanner is broken", g_needles[i].s);
}

int main(void) {
    test_rows();
    test_cli_help();
    test_scan();
    return t_finish();
}
