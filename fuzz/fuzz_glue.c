/* Sequence-classification data (src/data_glue): the first byte picks the loader (GLUE TSV of a task,
 * Adversarial GLUE's dev_ann.json, generic CSV / TSV / JSONL: data[0] % 3) and the data knobs applied
 * after loading (data[0] / 3), the second byte the task or the generic spec's switches; the rest is
 * the file. A loaded set then gets its label map, the data knobs and its
 * metadata JSON, as `balora train --task seq-cls` does. */
#include "fuzz_util.h"
#include "data_glue/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    int mode = data[0] % 3;
    uint8_t b = data[1];
    bl_glue_task task = (bl_glue_task)(b % BL_GLUE_TASK_GENERIC);
    bl_glue_set d;
    balora_status st;
    if (mode == 0) {
        bl_glue_opts o = {.skip_bad_rows = b & 0x80};
        st = bl_glue_load(&d, task, fz_write("train.tsv", data + 2, size - 2), &o);
    } else if (mode == 1) {
        st = bl_advglue_load(&d, task, fz_write("dev_ann.json", data + 2, size - 2));
    } else {
        static const char *const formats[] = {"csv", "tsv", "jsonl"};
        bl_data_spec s = BL_DATA_SPEC_DEFAULT;
        s.format = formats[b % 3];
        s.header = !(b & 4) || b % 3 == 2;
        if (!s.header) { s.text_col = "0"; s.label_col = "1"; }
        s.no_labels = b & 8;
        if (s.no_labels) s.label_col = NULL;
        s.regression = b & 16;
        if (b & 32) s.text_pair_col = s.header ? "text2" : "2";
        if (b & 64) s.labels = "negative,positive";
        s.skip_bad_rows = b & 128;
        st = bl_data_load(&d, &s, fz_write("data.txt", data + 2, size - 2));
    }
    if (fz_check(st)) return 0;
    char map[BL_DATA_MAX_LABELS * (BL_DATA_LABEL_NAME + 1)];
    bl_glue_set_label_map(&d, map, sizeof map);
    int knobs = data[0] / 3; /* bit 0: label noise, bit 1: imbalance, bit 2: max_train */
    if (d.has_labels && knobs) {
        bl_data_knobs k = BL_DATA_KNOBS_DEFAULT;
        k.label_noise = knobs & 1 ? 0.25 : 0;
        k.imbalance = knobs & 2 ? 2 : 0;
        k.max_train = knobs & 4 ? 1 + b % 7 : 0;
        k.seed = b;
        fz_check(bl_data_apply_knobs(&d, &k));
    }
    cJSON *meta;
    if (!bl_data_meta_json(&d, &meta)) cJSON_Delete(meta);
    bl_glue_set_free(&d);
    return 0;
}
