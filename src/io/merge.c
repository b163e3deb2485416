/* Merge a PEFT LoRA adapter into its base model folder (see merge.h). */
#include "io/merge.h"
#include "io/hf.h"
#include "io/peft_files.h"
#include "ops/ops.h"
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What happens to one base tensor. */
typedef struct merge_item {
    const bl_st_file *file;
    const bl_st_tensor *t;
    const bl_peft_pair *pair;   /* W += s B A (or its transpose) */
    const bl_peft_full *full;   /* replaced by this adapter tensor */
    bool transposed;            /* W is [in, out] (fan_in_fan_out) or an embedding [vocab, dim] */
    bl_dtype out_dtype;
    void *out;                  /* converted / merged data (arena), NULL = written as is */
} merge_item;

typedef struct merge_plan {
    bl_hf_folder base;
    bl_peft_adapter ad;
    int n;
    merge_item *items;          /* every base tensor, shard by shard */
    bl_arena arena;
    float *work;                /* [max numel] the tensor being merged, float32 */
    float *fa, *fb;             /* [max r*in], [max out*r] LoRA factors in float32 */
    int64_t max_work, max_a, max_b;
} merge_plan;

balora_status bl_merge_parse_dtype(const char *s, int *out) {
    if (!s) { *out = -1; return BALORA_STATUS_OK; }
    if (!strcmp(s, "f32") || !strcmp(s, "float32")) *out = BL_DTYPE_F32;
    else if (!strcmp(s, "f16") || !strcmp(s, "float16")) *out = BL_DTYPE_F16;
    else if (!strcmp(s, "bf16") || !strcmp(s, "bfloat16")) *out = BL_DTYPE_BF16;
    else return bl_fail(BALORA_STATUS_INVALID, "--dtype '%s': expected f32, f16 or bf16", s);
    return BALORA_STATUS_OK;
}

static bool is_float_dtype(bl_dtype d) { return d == BL_DTYPE_F32 || d == BL_DTYPE_F16 || d == BL_DTYPE_BF16 || d == BL_DTYPE_F64; }

static void shape_str(int ndim, const int64_t *shape, char *out, size_t cap) {
    out[0] = 0;
    for (int i = 0; i < ndim; i++) snprintf(out + strlen(out), cap - strlen(out), "%s%" PRId64, i ? ", " : "", shape[i]);
}

static merge_item *find_item(merge_plan *p, const char *name) {
    for (int i = 0; i < p->n; i++) if (strcmp(p->items[i].t->name, name) == 0) return &p->items[i];
    return NULL;
}

/* The base tensor for an adapter name: exact, else with the leading component
 * ("transformer.", "model.", ...) removed, since some checkpoints omit it. */
static merge_item *find_base(merge_plan *p, const char *name) {
    merge_item *it = find_item(p, name);
    const char *dot = strchr(name, '.');
    if (!it && dot) it = find_item(p, dot + 1);
    return it;
}

static balora_status list_base_tensors(merge_plan *p) {
    int total = 0;
    for (int f = 0; f < p->base.n_files; f++) total += p->base.files[f].n;
    p->items = bl_calloc((size_t)total + 1, sizeof *p->items);
    if (!p->items) return BALORA_STATUS_NOMEM;
    for (int f = 0; f < p->base.n_files; f++)
        for (int i = 0; i < p->base.files[f].n; i++) {
            p->items[p->n].file = &p->base.files[f];
            p->items[p->n].t = &p->base.files[f].tensors[i];
            p->n++;
        }
    return BALORA_STATUS_OK;
}

static balora_status attach_pair(merge_plan *p, const bl_peft_pair *pr) {
    char name[1100];
    if ((size_t)snprintf(name, sizeof name, "%s.weight", pr->module) >= sizeof name)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: module name too long: '%.80s...'", p->ad.weights_path, pr->module);
    merge_item *it = find_base(p, name);
    if (!it)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: adapter module '%s' matches no tensor of the base model %s (no '%s'; "
                       "hint: maybe wrong base model?)", p->ad.weights_path, pr->module, p->base.dir, name);
    if (it->pair || it->full)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: base tensor '%s' is targeted twice by the adapter", p->ad.weights_path, it->t->name);
    int64_t out = pr->b->shape[0], in = pr->a->shape[1];
    bool transposed = pr->embedding || p->ad.cfg.fan_in_fan_out;
    int64_t want[2] = {transposed ? in : out, transposed ? out : in};
    const bl_st_tensor *w = it->t;
    if (w->ndim != 2 || w->shape[0] != want[0] || w->shape[1] != want[1]) {
        char got[160], exp[160];
        shape_str(w->ndim, w->shape, got, sizeof got);
        shape_str(2, want, exp, sizeof exp);
        bool flip = w->ndim == 2 && w->shape[0] == want[1] && w->shape[1] == want[0];
        return bl_fail(BALORA_STATUS_FORMAT, "%s: module '%s': the adapter's update is [%s] but base tensor '%s' in %s is [%s] "
                       "(maybe wrong base model?%s)", p->ad.weights_path, pr->module, exp, w->name, p->base.dir, got,
                       flip ? " the transpose fits: check fan_in_fan_out in adapter_config.json" : "");
    }
    if (!is_float_dtype(w->dtype))
        return bl_fail(BALORA_STATUS_FORMAT, "%s: base tensor '%s' has dtype %s; cannot merge a LoRA update into it",
                       it->file->path, w->name, bl_dtype_name(w->dtype));
    it->pair = pr;
    it->transposed = transposed;
    return BALORA_STATUS_OK;
}

static balora_status attach_full(merge_plan *p, const bl_peft_full *fu) {
    merge_item *it = find_base(p, fu->base_name);
    if (!it)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: adapter tensor '%s' (modules_to_save) matches no tensor of the base model %s "
                       "(hint: maybe wrong base model?)", p->ad.weights_path, fu->t->name, p->base.dir);
    if (it->pair || it->full)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: base tensor '%s' is targeted twice by the adapter", p->ad.weights_path, it->t->name);
    bool same = it->t->ndim == fu->t->ndim;
    for (int d = 0; same && d < it->t->ndim; d++) same = it->t->shape[d] == fu->t->shape[d];
    if (!same) {
        char got[160], exp[160];
        shape_str(fu->t->ndim, fu->t->shape, exp, sizeof exp);
        shape_str(it->t->ndim, it->t->shape, got, sizeof got);
        return bl_fail(BALORA_STATUS_FORMAT, "%s: adapter tensor '%s' is [%s] but base tensor '%s' in %s is [%s] (maybe wrong base model?)",
                       p->ad.weights_path, fu->t->name, exp, it->t->name, p->base.dir, got);
    }
    if (is_float_dtype(it->t->dtype) != is_float_dtype(fu->t->dtype))
        return bl_fail(BALORA_STATUS_FORMAT, "%s: adapter tensor '%s' has dtype %s but base tensor '%s' has %s",
                       p->ad.weights_path, fu->t->name, bl_dtype_name(fu->t->dtype), it->t->name, bl_dtype_name(it->t->dtype));
    it->full = fu;
    return BALORA_STATUS_OK;
}

/* Decide each tensor's output dtype and carve every buffer from one arena. */
static balora_status plan_buffers(merge_plan *p, int forced) {
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < p->n; i++) {
            merge_item *it = &p->items[i];
            const bl_st_tensor *src = it->full ? it->full->t : it->t;
            it->out_dtype = (forced >= 0 && is_float_dtype(src->dtype)) ? (bl_dtype)forced
                            : it->full ? it->t->dtype : src->dtype;
            bool rewrite = it->pair || it->out_dtype != src->dtype;
            it->out = rewrite ? bl_arena_take(&p->arena, (size_t)src->numel * bl_dtype_size(it->out_dtype)) : NULL;
            if (pass == 0 && rewrite && src->numel > p->max_work) p->max_work = src->numel;
            if (pass == 0 && it->pair) {
                if (it->pair->a->numel > p->max_a) p->max_a = it->pair->a->numel;
                if (it->pair->b->numel > p->max_b) p->max_b = it->pair->b->numel;
            }
        }
        p->work = bl_arena_take(&p->arena, (size_t)p->max_work * sizeof(float));
        p->fa = bl_arena_take(&p->arena, (size_t)p->max_a * sizeof(float));
        p->fb = bl_arena_take(&p->arena, (size_t)p->max_b * sizeof(float));
        if (pass == 0) BL_TRY(bl_arena_alloc(&p->arena));
    }
    return BALORA_STATUS_OK;
}

static void store_f32(bl_dtype dt, const float *src, void *dst, int64_t n) {
    unsigned char *d = dst;
    for (int64_t i = 0; i < n; i++) {
        switch (dt) {
        case BL_DTYPE_F32: memcpy(d + 4 * i, &src[i], 4); break;
        case BL_DTYPE_F16: { uint16_t h = bl_f32_to_f16(src[i]); memcpy(d + 2 * i, &h, 2); break; }
        case BL_DTYPE_BF16: { uint16_t h = bl_f32_to_bf16(src[i]); memcpy(d + 2 * i, &h, 2); break; }
        case BL_DTYPE_F64: { double v = src[i]; memcpy(d + 8 * i, &v, 8); break; }
        default: break;
        }
    }
}

balora_status bl_merge_lora_delta(float *W, bool transposed, int64_t out, int64_t in, int64_t r, float s,
                                  const float *B, const float *A, const char *module) {
    /* bl_gemm takes int-range dimensions and strides (LP64 BLAS) */
    if (in > INT_MAX || out > INT_MAX || r > INT_MAX)
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "module '%s': dimensions beyond the BLAS int range", module);
    if (!transposed) /* W [out, in] += s B [out, r] A [r, in] */
        bl_gemm(false, false, out, in, r, s, B, r, A, in, 1.0f, W, in);
    else             /* W [in, out] += s A^T [in, r] B^T [r, out] */
        bl_gemm(true, true, in, out, r, s, A, in, B, r, 1.0f, W, out);
    return BALORA_STATUS_OK;
}

/* work [W's shape] += scale * B A, or its transpose. */
static balora_status add_lora_delta(merge_plan *p, const merge_item *it) {
    const bl_peft_pair *pr = it->pair;
    BL_TRY(bl_st_tensor_to_f32(&p->ad.file, pr->a, p->fa)); /* [r, in] */
    BL_TRY(bl_st_tensor_to_f32(&p->ad.file, pr->b, p->fb)); /* [out, r] */
    return bl_merge_lora_delta(p->work, it->transposed, pr->b->shape[0], pr->a->shape[1], pr->r, (float)pr->scale, p->fb, p->fa,
                               pr->module);
}

static balora_status fill_item(merge_plan *p, const merge_item *it) {
    if (!it->out) return BALORA_STATUS_OK;
    const bl_st_file *sf = it->full ? &p->ad.file : it->file;
    const bl_st_tensor *src = it->full ? it->full->t : it->t;
    if (!is_float_dtype(src->dtype)) { memcpy(it->out, src->data, src->nbytes); return BALORA_STATUS_OK; }
    BL_TRY(bl_st_tensor_to_f32(sf, src, p->work));
    if (it->pair) BL_TRY(add_lora_delta(p, it));
    store_f32(it->out_dtype, p->work, it->out, src->numel);
    return BALORA_STATUS_OK;
}

static balora_status write_weights(merge_plan *p, const char *out_dir, bl_merge_report *rep) {
    char path[4200];
    BL_TRY(bl_path_join(path, sizeof path, out_dir, "model.safetensors"));
    bl_st_writer w;
    bl_st_writer_init(&w);
    balora_status st = bl_st_writer_meta(&w, "format", "pt");
    for (int i = 0; !st && i < p->n; i++) {
        const merge_item *it = &p->items[i];
        const bl_st_tensor *src = it->full ? it->full->t : it->t;
        st = fill_item(p, it);
        if (!st) st = bl_st_writer_add(&w, it->t->name, it->out_dtype, it->t->ndim, it->t->shape, it->out ? it->out : src->data);
        if (!st) { rep->n_merged += it->pair != NULL; rep->n_replaced += it->full != NULL; rep->n_tensors++; }
    }
    if (!st) st = bl_st_writer_save(&w, path);
    bl_st_writer_free(&w);
    return st;
}

static const char *torch_dtype_name(int dt) {
    return dt == BL_DTYPE_F16 ? "float16" : dt == BL_DTYPE_BF16 ? "bfloat16" : "float32";
}

/* config.json byte for byte, or with torch_dtype updated when every tensor's dtype was forced. */
static balora_status write_config(const merge_plan *p, const char *out_dir, int forced) {
    char path[4200];
    BL_TRY(bl_path_join(path, sizeof path, out_dir, "config.json"));
    if (forced < 0) return bl_file_copy(p->base.config_path, path);
    cJSON *cfg = cJSON_Duplicate(p->base.config, 1);
    if (!cfg) return bl_fail(BALORA_STATUS_NOMEM, "out of memory copying %s", p->base.config_path);
    if (forced >= 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, "torch_dtype");
        cJSON_AddStringToObject(cfg, "torch_dtype", torch_dtype_name(forced));
    }
    balora_status st = bl_json_save(cfg, path);
    cJSON_Delete(cfg);
    return st;
}

static balora_status check_out_dir(const char *model_dir, const char *out_dir) {
    char a[PATH_MAX], b[PATH_MAX];
    if (realpath(model_dir, a) && realpath(out_dir, b) && strcmp(a, b) == 0)
        return bl_fail(BALORA_STATUS_INVALID, "%s: the output folder is the base model folder; choose another --out", out_dir);
    return BALORA_STATUS_OK;
}

static void merge_plan_free(merge_plan *p) {
    free(p->items);
    bl_arena_free(&p->arena);
    bl_peft_close(&p->ad);
    bl_hf_close(&p->base);
}

static balora_status merge_run(merge_plan *p, const char *model_dir, const char *adapter_dir, const char *out_dir,
                               int forced, bl_merge_report *rep) {
    BL_TRY(check_out_dir(model_dir, out_dir));
    BL_TRY(bl_hf_open(&p->base, model_dir));
    BL_TRY(bl_peft_open(&p->ad, adapter_dir));
    BL_TRY(bl_peft_validate(&p->ad));
    BL_TRY(list_base_tensors(p));
    for (int i = 0; i < p->ad.n_pairs; i++) BL_TRY(attach_pair(p, &p->ad.pairs[i]));
    for (int i = 0; i < p->ad.n_full; i++) BL_TRY(attach_full(p, &p->ad.full[i]));
    BL_TRY(plan_buffers(p, forced));
    BL_TRY(bl_mkdir_p(out_dir));
    BL_TRY(write_weights(p, out_dir, rep));
    BL_TRY(write_config(p, out_dir, forced));
    BL_TRY(bl_hf_copy_side_files(model_dir, out_dir, false, &rep->n_copied_files));
    return BALORA_STATUS_OK;
}

balora_status bl_merge_adapter(const char *model_dir, const char *adapter_dir, const char *out_dir,
                               const bl_merge_options *opt, bl_merge_report *report) {
    bl_merge_report dummy;
    bl_merge_report *rep = report ? report : &dummy;
    memset(rep, 0, sizeof *rep);
    int forced = opt ? opt->out_dtype : -1;
    if (forced >= 0 && forced != BL_DTYPE_F32 && forced != BL_DTYPE_F16 && forced != BL_DTYPE_BF16)
        return bl_fail(BALORA_STATUS_INVALID, "merge: output dtype must be F32, F16 or BF16");
    merge_plan p;
    memset(&p, 0, sizeof p);
    balora_status st = merge_run(&p, model_dir, adapter_dir, out_dir, forced, rep);
    merge_plan_free(&p);
    return st;
}
