/* GLUE / Adversarial GLUE / generic data loading and the data knobs, on ../shared/data and on
 * small files written here (every GLUE layout, quoting, label maps, malformed input). */
#include "harness.h"
#include "data_glue/data.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *write_file(const char *name, const char *text) {
    static char path[8][600];
    static int k = 0;
    char *p = path[k++ % 8];
    snprintf(p, 600, "%s/%s", t_tmpdir(), name);
    FILE *f = fopen(p, "wb");
    fputs(text, f);
    fclose(f);
    return p;
}

static int64_t count_label(const bl_glue_set *d, int c) {
    int64_t n = 0;
    for (int64_t i = 0; i < d->n; i++) n += d->label[i] == c;
    return n;
}

static void real_glue(const char *shared) {
    char p[1024];
    bl_glue_set d;
    /* SST-2 train */
    snprintf(p, sizeof p, "%s/data/glue/SST-2/train.tsv", shared);
    CHECK_OK(bl_glue_load(&d, BL_GLUE_TASK_SST2, p, NULL));
    CHECK(d.n == 60614, "sst2 train n=%lld", (long long)d.n);
    CHECK(d.has_labels && !d.regression && d.n_labels == 2 && !d.text_b, "sst2 train shape");
    CHECK(!strcmp(d.text_a[0], "when are bears bears and "), "first '%s'", d.text_a[0]);
    CHECK(!strncmp(d.text_a[d.n - 1], ", the sum of all fears generates little narrative momentum", 58), "last '%s'", d.text_a[d.n - 1]);
    CHECK(d.label[0] == 1 && d.label[d.n - 1] == 0, "first/last labels");
    CHECK(d.row[0] == 2 && d.row[d.n - 1] == 60615, "rows %lld %lld", (long long)d.row[0], (long long)d.row[d.n - 1]);
    CHECK(count_label(&d, 0) == 26786 && count_label(&d, 1) == 33828, "sst2 train counts");
    CHECK(d.meta.count_file[0] == 26786 && d.meta.count_file[1] == 33828, "meta counts");
    /* label noise on the full training set: exact count, every flip to another class */
    bl_data_knobs k = BL_DATA_KNOBS_DEFAULT;
    k.label_noise = 0.15;
    k.seed = 7;
    CHECK_OK(bl_data_apply_knobs(&d, &k));
    int64_t flipped = 0;
    for (int64_t i = 0; i < d.n; i++) flipped += d.label[i] != d.label_clean[i];
    CHECK(d.meta.n_noisy == 9092 && flipped == 9092, "noise: n_noisy %lld flipped %lld (want llround(0.15*60614)=9092)",
          (long long)d.meta.n_noisy, (long long)flipped);
    CHECK(d.meta.count[0] + d.meta.count[1] == 60614, "counts after noise");
    CHECK_FAILS(bl_data_apply_knobs(&d, &k), BALORA_STATUS_INVALID, "applied already");
    bl_glue_set_free(&d);

    /* SST-2 dev + imbalance + max_train + noise together */
    snprintf(p, sizeof p, "%s/data/glue/SST-2/dev.tsv", shared);
    CHECK_OK(bl_glue_load(&d, BL_GLUE_TASK_SST2, p, NULL));
    CHECK(d.n == 872 && count_label(&d, 0) == 428 && count_label(&d, 1) == 444, "sst2 dev n=%lld", (long long)d.n);
    CHECK(!strcmp(d.text_a[0], "it 's a charming and often affecting journey . "), "dev first");
    int64_t n_first_dev_rows[3] = {d.row[0], d.row[1], d.row[2]};
    (void)n_first_dev_rows;
    k = BL_DATA_KNOBS_DEFAULT;
    k.imbalance = 4;
    k.imbalance_major = 1;
    k.seed = 3;
    CHECK_OK(bl_data_apply_knobs(&d, &k));
    CHECK(d.n == 444 + 111 && count_label(&d, 1) == 444 && count_label(&d, 0) == 111, "imbalance: n=%lld c0=%lld",
          (long long)d.n, (long long)count_label(&d, 0));
    CHECK(d.meta.n_imbalance_removed == 428 - 111, "removed %lld", (long long)d.meta.n_imbalance_removed);
    bool ordered = true;
    for (int64_t i = 1; i < d.n; i++) ordered &= d.row[i] > d.row[i - 1];
    CHECK(ordered, "imbalance keeps the file order");
    bl_glue_set_free(&d);

    CHECK_OK(bl_glue_load(&d, BL_GLUE_TASK_SST2, p, NULL));
    k = BL_DATA_KNOBS_DEFAULT;
    k.imbalance = 2; k.max_train = 300; k.label_noise = 0.1; k.seed = 11;
    CHECK_OK(bl_data_apply_knobs(&d, &k));
    flipped = 0;
    for (int64_t i = 0; i < d.n; i++) flipped += d.label[i] != d.label_clean[i];
    CHECK(d.n == 300 && d.meta.n_max_train_removed == 428 + 214 - 300, "max_train n=%lld removed %lld",
          (long long)d.n, (long long)d.meta.n_max_train_removed);
    CHECK(flipped == 30 && d.meta.n_noisy == 30, "noise on the capped set: %lld", (long long)flipped);
    /* determinism: same seed, same result */
    int32_t lab_a[300];
    memcpy(lab_a, d.label, sizeof lab_a);
    cJSON *meta;
    CHECK_OK(bl_data_meta_json(&d, &meta));
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(meta, "n_noisy")) == 30, "meta json n_noisy");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(meta, "imbalance")) == 2, "meta json imbalance");
    CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(meta, "seed")), "11"), "meta json seed");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(meta, "class_counts")) == 2, "meta json counts");
    cJSON_Delete(meta);
    bl_glue_set_free(&d);
    CHECK_OK(bl_glue_load(&d, BL_GLUE_TASK_SST2, p, NULL));
    CHECK_OK(bl_data_apply_knobs(&d, &k));
    CHECK(d.n == 300 && !memcmp(lab_a, d.label, sizeof lab_a), "same seed, same noisy labels");
    bl_glue_set_free(&d);
    CHECK_OK(bl_glue_load(&d, BL_GLUE_TASK_SST2, p, NULL));
    k.seed = 12;
    CHECK_OK(bl_data_apply_knobs(&d, &k));
    CHECK(memcmp(lab_a, d.label, sizeof lab_a) != 0, "another seed, other flips");
    bl_glue_set_free(&d);

    /* STS-B train and dev: regression */
    snprintf(p, sizeof p, "%s/data/glue/STS-B/train.tsv", shared);
    CHECK_OK(bl_glue_load(&d, BL_GLUE_TASK_STSB, p, NULL));
    CHECK(d.n == 5749 && d.regression && d.n_labels == 1 && d.text_b, "stsb train n=%lld", (long long)d.n);
    CHECK(!strcmp(d.text_a[0], "A plane is taking off.") && !strcmp(d.text_b[0], "An air plane is taking off.") && d.score[0] == 5.0f,
          "stsb first");
    CHECK(!strcmp(d.text_a[d.n - 1], "Putin spokesman: Doping charges appear unfounded") && d.score[d.n - 1] == 0.0f, "stsb last");
    CHECK(d.score[1] == 3.8f && d.label[0] == -1, "stsb second score %g", d.score[1]);
    double sum = 0;
    for (int64_t i = 0; i < d.n; i++) sum += d.score[i];
    CHECK(fabs(sum - 15528.0434) < 1e-2, "stsb train score sum %.4f", sum);
    k = BL_DATA_KNOBS_DEFAULT;
    k.label_noise = 0.1;
    CHECK_FAILS(bl_data_apply_knobs(&d, &k), BALORA_STATUS_INVALID, "regression");
    bl_glue_set_free(&d);
    snprintf(p, sizeof p, "%s/data/glue/STS-B/dev.tsv", shared);
    CHECK_OK(bl_glue_load(&d, BL_GLUE_TASK_STSB, p, NULL));
    sum = 0;
    for (int64_t i = 0; i < d.n; i++) sum += d.score[i];
    CHECK(d.n == 1500 && fabs(sum - 3545.8613) < 1e-2 && d.score[1] == 4.75f, "stsb dev n=%lld sum %.4f", (long long)d.n, sum);
    bl_glue_set_free(&d);

    /* QNLI dev: label names */
    snprintf(p, sizeof p, "%s/data/glue/QNLI/dev.tsv", shared);
    CHECK_OK(bl_glue_load(&d, BL_GLUE_TASK_QNLI, p, NULL));
    CHECK(d.n == 5463 && count_label(&d, 0) == 2702 && count_label(&d, 1) == 2761, "qnli dev n=%lld", (long long)d.n);
    CHECK(!strcmp(d.label_names[0], "entailment") && !strcmp(d.label_names[1], "not_entailment"), "qnli names");
    CHECK(!strcmp(d.text_a[0], "What came into force after the new constitution was herald?") && d.label[0] == 0 &&
          d.label[1] == 1 && !strcmp(d.text_a[d.n - 1], "Who discovered this and where did they come from?"), "qnli rows");
    bl_glue_set_free(&d);
    /* the wrong task for a file: clear error */
    CHECK_FAILS(bl_glue_load(&d, BL_GLUE_TASK_RTE, p, NULL), BALORA_STATUS_FORMAT, "no column 'sentence1'");
    CHECK_FAILS(bl_glue_load(&d, BL_GLUE_TASK_SST2, p, NULL), BALORA_STATUS_FORMAT, "not one of the 2 labels");

    /* Adversarial GLUE */
    snprintf(p, sizeof p, "%s/data/advglue/dev_ann.json", shared);
    struct { bl_glue_task t; int64_t n, c0, c1, c2; } adv[] = {
        {BL_GLUE_TASK_SST2, 148, 72, 76, 0}, {BL_GLUE_TASK_QQP, 78, 46, 32, 0}, {BL_GLUE_TASK_MNLI, 121, 32, 39, 50},
        {BL_GLUE_TASK_MNLI_MM, 162, 60, 45, 57}, {BL_GLUE_TASK_QNLI, 148, 74, 74, 0}, {BL_GLUE_TASK_RTE, 81, 35, 46, 0}};
    for (size_t i = 0; i < sizeof adv / sizeof adv[0]; i++) {
        CHECK_OK(bl_advglue_load(&d, adv[i].t, p));
        CHECK(d.n == adv[i].n && count_label(&d, 0) == adv[i].c0 && count_label(&d, 1) == adv[i].c1 &&
              count_label(&d, 2) == adv[i].c2, "advglue %s: n=%lld", bl_glue_task_get(adv[i].t)->name, (long long)d.n);
        CHECK(d.row[0] == 0 && d.row[d.n - 1] == adv[i].n - 1, "advglue idx");
        CHECK((d.text_b != NULL) == (adv[i].t != BL_GLUE_TASK_SST2), "advglue pair");
        bl_glue_set_free(&d);
    }
    CHECK_OK(bl_advglue_load(&d, BL_GLUE_TASK_MNLI, p));
    CHECK(!strncmp(d.text_b[0], "We have plenty of space in the landfill .", 40) && d.label[0] == 2, "advglue mnli first");
    CHECK(!strncmp(d.text_a[0], "well that would be a help", 25), "advglue mnli premise");
    bl_glue_set_free(&d);
    CHECK_FAILS(bl_advglue_load(&d, BL_GLUE_TASK_COLA, p), BALORA_STATUS_UNSUPPORTED, "no task 'cola'");
}

static void glue_layouts(void) {
    bl_glue_set d;
    /* CoLA: no header in train/dev; test has a header and no labels */
    const char *p = write_file("cola_train.tsv", "gj04\t1\t\tOur friends won't buy this analysis.\r\n"
                                                 "gj04\t0\t*\tThey drank the pub.\n\n");
    CHECK_OK(bl_glue_load(&d, BL_GLUE_TASK_COLA, p, NULL));
    CHECK(d.n == 2 && d.label[0] == 1 && d.label[1] == 0 && !strcmp(d.text_a[0], "Our friends won't buy this analysis.") &&
          !strcmp(d.text_a[1], "They drank the pub."), "cola train");
    bl_glue_set_free(&d);
    p = write_file("cola_test.tsv", "index\tsentence\n0\tBill whistled past the house.\n");
    CHECK_OK(bl_glue_load(&d, BL_GLUE_TASK_COLA, p, NULL));
    CHECK(d.n == 1 && !d.has_labels && d.label[0] == -1 && !strcmp(d.text_a[0], "Bill whistled past the house."), "cola test");
    bl_glue_set_free(&d);
    /* MNLI dev with gold_label at the end, label1..5 before it */
    p = write_file("mnli_dev.tsv",
                   "index\tpromptID\tpairID\tgenre\ts1b\ts2b\ts1p\ts2p\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n"
                   "0\t1\t1n\tgov\tx\tx\tx\tx\tThe new rights are nice enough\tEveryone really likes the newest benefits \tneutral\tentailment\tneutral\tneutral\tneutral\tneutral\n"
                   "1\t2\t2c\tgov\tx\tx\tx\tx\tThis site includes \"a list\"\tThe Government Executive \"is\" bad\tcontradiction\tc\tc\tc\tc\tcontradiction\n"
                   "2\t3\t3e\tgov\tx\tx\tx\tx\tuh i don't know\tI like him\tentailment\te\te\te\te\tentailment\n");
    CHECK_OK(bl_glue_load(&d, BL_GLUE_TASK_MNLI, p, NULL));
    CHECK(d.n == 3 && d.label[0] == 1 && d.label[1] == 2 && d.label[2] == 0 && !strcmp(d.text_a[1], "This site includes \"a list\"") &&
          !strcmp(d.text_b[0], "Everyone really likes the newest benefits "), "mnli dev");
    bl_glue_set_free(&d);
    p = write_file("mnli_test.tsv", "index\tpromptID\tpairID\tgenre\ts1b\ts2b\ts1p\ts2p\tsentence1\tsentence2\n"
                                    "0\t1\t1\tgov\tx\tx\tx\tx\tHello there\tGeneral\n");
    CHECK_OK(bl_glue_load(&d, BL_GLUE_TASK_MNLI_MM, p, NULL));
    CHECK(d.n == 1 && !d.has_labels && !strcmp(d.text_b[0], "General"), "mnli test");
    bl_glue_set_free(&d);
    /* MRPC with a UTF-8 BOM */
    p = write_file("mrpc.tsv", "\xEF\xBB\xBFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t702876\t702977\tAmrozi accused\tReferring to him\n"
                               "0\t2108705\t2108831\tYucaipa owned\tYucaipa bought\n");
    CHECK_OK(bl_glue_load(&d, BL_GLUE_TASK_MRPC, p, NULL));
    CHECK(d.n == 2 && d.label[0] == 1 && d.label[1] == 0 && !strcmp(d.text_b[1], "Yucaipa bought"), "mrpc");
    bl_glue_set_free(&d);
    /* QQP with a malformed row: strict fails with the line, skip counts it */
    p = write_file("qqp.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n1\t1\t2\tHow?\tWhy?\t0\n2\t3\t4\tbroken row\n"
                              "3\t5\t6\tWhat?\tWhen?\t1\n");
    CHECK_FAILS(bl_glue_load(&d, BL_GLUE_TASK_QQP, p, NULL), BALORA_STATUS_FORMAT, "line 3: 4 fields, expected at least 6");
    bl_glue_opts o = {.skip_bad_rows = true};
    CHECK_OK(bl_glue_load(&d, BL_GLUE_TASK_QQP, p, &o));
    CHECK(d.n == 2 && d.meta.n_skipped == 1 && d.label[1] == 1 && d.row[1] == 4, "qqp skip");
    bl_glue_set_free(&d);
    /* RTE / WNLI */
    p = write_file("rte.tsv", "index\tsentence1\tsentence2\tlabel\n0\tA\tB\tnot_entailment\n1\tC\tD\tentailment\n");
    CHECK_OK(bl_glue_load(&d, BL_GLUE_TASK_RTE, p, NULL));
    CHECK(d.n == 2 && d.label[0] == 1 && d.label[1] == 0, "rte");
    bl_glue_set_free(&d);
    CHECK_FAILS(bl_glue_load(&d, BL_GLUE_TASK_WNLI, p, NULL), BALORA_STATUS_FORMAT, "label 'not_entailment' is not one of");
    p = write_file("stsb_bad.tsv", "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
                                   "0\tg\tf\ty\to\ts\ts\tA\tB\tfive\n");
    CHECK_FAILS(bl_glue_load(&d, BL_GLUE_TASK_STSB, p, NULL), BALORA_STATUS_FORMAT, "score 'five' is not a number");
    p = write_file("bad_utf8.tsv", "sentence\tlabel\nok\t1\nbad \xC3\x28 text\t0\n");
    CHECK_FAILS(bl_glue_load(&d, BL_GLUE_TASK_SST2, p, NULL), BALORA_STATUS_FORMAT, "line 3: invalid UTF-8");
    p = write_file("empty.tsv", "sentence\tlabel\n");
    CHECK_FAILS(bl_glue_load(&d, BL_GLUE_TASK_SST2, p, NULL), BALORA_STATUS_FORMAT, "no examples");
    CHECK_FAILS(bl_glue_load(&d, BL_GLUE_TASK_SST2, "/nonexistent/x.tsv", NULL), BALORA_STATUS_IO, "x.tsv");
    bl_glue_task t;
    CHECK_OK(bl_glue_task_parse("STS-B", &t));
    CHECK(t == BL_GLUE_TASK_STSB, "parse sts-b");
    CHECK_OK(bl_glue_task_parse("mnli_mismatched", &t));
    CHECK(t == BL_GLUE_TASK_MNLI_MM, "parse mnli-mm");
    CHECK_FAILS(bl_glue_task_parse("squad", &t), BALORA_STATUS_INVALID, "unknown");
}

static void generic(void) {
    bl_glue_set d;
    bl_data_spec s = BL_DATA_SPEC_DEFAULT;
    /* CSV with quoting: commas, doubled quotes, a newline inside a field, CRLF */
    const char *p = write_file("g.csv", "id,text,label\r\n1,\"hello, world\",pos\r\n2,\"she said \"\"hi\"\"\",neg\r\n"
                                        "3,\"two\nlines\",pos\r\n4,plain,neutral\r\n");
    CHECK_OK(bl_data_load(&d, &s, p));
    CHECK(d.n == 4 && d.n_labels == 3, "csv n=%lld labels=%d", (long long)d.n, d.n_labels);
    CHECK(!strcmp(d.label_names[0], "neg") && !strcmp(d.label_names[1], "neutral") && !strcmp(d.label_names[2], "pos"), "sorted names");
    CHECK(!strcmp(d.text_a[0], "hello, world") && !strcmp(d.text_a[1], "she said \"hi\"") && !strcmp(d.text_a[2], "two\nlines") &&
          !strcmp(d.text_a[3], "plain"), "csv unquote: '%s' '%s' '%s' '%s'", d.text_a[0], d.text_a[1], d.text_a[2], d.text_a[3]);
    CHECK(d.label[0] == 2 && d.label[1] == 0 && d.label[3] == 1, "csv labels");
    CHECK(d.row[3] == 6, "csv row of the 4th record %lld", (long long)d.row[3]);
    char map[256];
    CHECK_OK(bl_glue_set_label_map(&d, map, sizeof map));
    CHECK(!strcmp(map, "neg,neutral,pos"), "map %s", map);
    bl_glue_set_free(&d);
    /* the dev set with the train set's map, labels as names or ids */
    p = write_file("g_dev.csv", "text,label\na,pos\nb,0\n");
    s.labels = map;
    CHECK_OK(bl_data_load(&d, &s, p));
    CHECK(d.n == 2 && d.label[0] == 2 && d.label[1] == 0 && d.n_labels == 3, "dev with map");
    bl_glue_set_free(&d);
    p = write_file("g_dev2.csv", "text,label\na,positive\n");
    CHECK_FAILS(bl_data_load(&d, &s, p), BALORA_STATUS_FORMAT, "label 'positive' is not one of the 3 labels (neg, neutral, pos)");
    s.labels = NULL;
    p = write_file("g_bad.csv", "text,label\n\"never closed,1\n");
    CHECK_FAILS(bl_data_load(&d, &s, p), BALORA_STATUS_FORMAT, "never closed");
    p = write_file("g_bad2.csv", "text,label\n\"x\"y,1\n");
    CHECK_FAILS(bl_data_load(&d, &s, p), BALORA_STATUS_FORMAT, "after a closing quote");
    p = write_file("g_nocol.csv", "sentence,label\nx,1\n");
    CHECK_FAILS(bl_data_load(&d, &s, p), BALORA_STATUS_FORMAT, "no text column 'text' (columns: 'sentence', 'label')");
    p = write_file("g_missing.csv", "text,label\nx,1\ny,\n");
    CHECK_FAILS(bl_data_load(&d, &s, p), BALORA_STATUS_FORMAT, "row 3 has no label while others do");
    /* TSV pair without header, integer labels, columns by index */
    p = write_file("g.tsv", "a1\tb1\t0\na2\tb2\t2\n");
    s = BL_DATA_SPEC_DEFAULT;
    s.header = false; s.text_col = "0"; s.text_pair_col = "1"; s.label_col = "2";
    CHECK_OK(bl_data_load(&d, &s, p));
    CHECK(d.n == 2 && d.n_labels == 3 && d.label[1] == 2 && !strcmp(d.text_b[1], "b2") && !strcmp(d.label_names[2], "2"), "tsv by index");
    bl_glue_set_free(&d);
    s.text_col = "first";
    CHECK_FAILS(bl_data_load(&d, &s, p), BALORA_STATUS_INVALID, "0-based index");
    /* JSONL: escapes, pair, numeric and text labels, regression */
    p = write_file("g.jsonl", "{\"premise\": \"caf\\u00e9 \\\"q\\\"\", \"hyp\": \"x\\ty\", \"y\": 1}\n\n"
                              "{\"premise\": \"b\", \"hyp\": \"c\", \"y\": 0, \"extra\": [1,2]}\n");
    s = BL_DATA_SPEC_DEFAULT;
    s.text_col = "premise"; s.text_pair_col = "hyp"; s.label_col = "y";
    CHECK_OK(bl_data_load(&d, &s, p));
    CHECK(d.n == 2 && !strcmp(d.text_a[0], "caf\xC3\xA9 \"q\"") && !strcmp(d.text_b[0], "x\ty") && d.label[0] == 1 &&
          d.label[1] == 0 && d.row[1] == 3, "jsonl");
    bl_glue_set_free(&d);
    s.regression = true;
    CHECK_OK(bl_data_load(&d, &s, p));
    CHECK(d.regression && d.score[0] == 1.0f && d.score[1] == 0.0f && d.n_labels == 1, "jsonl regression");
    bl_glue_set_free(&d);
    p = write_file("g_bad.jsonl", "{\"premise\": \"a\", \"hyp\": \"b\", \"y\": 1}\n{\"premise\": \"a\", \"y\": 1}\n");
    s.regression = false;
    CHECK_FAILS(bl_data_load(&d, &s, p), BALORA_STATUS_FORMAT, "line 2: missing required field 'hyp'");
    s.skip_bad_rows = true;
    CHECK_OK(bl_data_load(&d, &s, p));
    CHECK(d.n == 1 && d.meta.n_skipped == 1, "jsonl skip");
    bl_glue_set_free(&d);
    p = write_file("g_bad2.jsonl", "[1, 2]\n"); /* read as a JSON array of records: record 1 is no object */
    s.skip_bad_rows = false;
    CHECK_FAILS(bl_data_load(&d, &s, p), BALORA_STATUS_FORMAT, "g_bad2.jsonl: record 1 of the JSON array is not an object");
    p = write_file("g_bad2b.jsonl", "{\"premise\": \"a\", \"hyp\": \"b\", \"y\": 1}\n[1, 2]\n");
    CHECK_FAILS(bl_data_load(&d, &s, p), BALORA_STATUS_FORMAT, "must be a JSON object");
    p = write_file("g_bad3.jsonl", "{\"premise\": \"a\", \"hyp\": \"b\", \"y\": 1\n");
    CHECK_FAILS(bl_data_load(&d, &s, p), BALORA_STATUS_FORMAT, "invalid JSON");
    s.text_pair_col = "premise";
    CHECK_FAILS(bl_data_load(&d, &s, p), BALORA_STATUS_INVALID, "must differ");
    CHECK_FAILS(bl_data_load(&d, NULL, "x.parquet"), BALORA_STATUS_INVALID, "format");
    /* knobs: imbalance that empties a class, bad ratios */
    p = write_file("k.csv", "text,label\na,0\nb,0\nc,1\nd,1\ne,1\n");
    CHECK_OK(bl_data_load(&d, NULL, p));
    bl_data_knobs k = BL_DATA_KNOBS_DEFAULT;
    k.imbalance = 3;
    CHECK_FAILS(bl_data_apply_knobs(&d, &k), BALORA_STATUS_INVALID, "leaves class '1' empty");
    k.imbalance = 0.5;
    CHECK_FAILS(bl_data_apply_knobs(&d, &k), BALORA_STATUS_INVALID, "at least 1");
    k.imbalance = 0; k.label_noise = 1.0;
    CHECK_FAILS(bl_data_apply_knobs(&d, &k), BALORA_STATUS_INVALID, "[0, 1)");
    k.label_noise = 0.5; k.seed = 1;
    CHECK_OK(bl_data_apply_knobs(&d, &k));
    int64_t fl = 0;
    for (int64_t i = 0; i < d.n; i++) fl += d.label[i] != d.label_clean[i];
    CHECK(d.meta.n_noisy == 3 && fl == 3, "llround(2.5) = 3 flips, got %lld", (long long)fl);
    bl_glue_set_free(&d);
}

/* Mutated files (bytes flipped to tabs, quotes, newlines, braces, NULs, high bytes; cuts) through
 * every loader: each returns OK or an error with a message, never crashes (the sanitizer build
 * checks the memory side). */
static void fuzz(void) {
    static const char seed_text[] =
        "index\tquestion\tsentence\tlabel\n0\tWhat came?\tAs of \"that\" day.\tentailment\n"
        "1\tWho, really?\tThe {\"x\": 1} one\tnot_entailment\n"
        "{\"text\": \"a\\u00e9\", \"label\": 1, \"pair\": \"b\"}\n"
        "text,label\n\"q,\"\"x\"\"\",0\n";
    size_t n0 = sizeof seed_text - 1;
    char buf[512];
    const char *path = write_file("fuzz.txt", "");
    bl_rng r;
    bl_rng_seed(&r, 77);
    static const char alphabet[] = "\t\n\r\",{}[]:\\0a\xC3\xA9\xFF";
    int ok = 0, failed = 0, bad_msg = 0;
    for (int it = 0; it < 300; it++) {
        size_t n = n0;
        memcpy(buf, seed_text, n0);
        int muts = 1 + (int)bl_rng_below(&r, 6);
        for (int k = 0; k < muts; k++) {
            size_t at = (size_t)bl_rng_below(&r, n);
            buf[at] = alphabet[bl_rng_below(&r, sizeof alphabet - 1)];
            if (bl_rng_below(&r, 8) == 0) buf[at] = 0;
        }
        if (bl_rng_below(&r, 3) == 0) n = (size_t)bl_rng_below(&r, n + 1);
        FILE *f = fopen(path, "wb");
        fwrite(buf, 1, n, f);
        fclose(f);
        bl_glue_set d;
        balora_status st[8];
        st[0] = bl_glue_load(&d, BL_GLUE_TASK_QNLI, path, NULL); if (!st[0]) bl_glue_set_free(&d);
        bl_glue_opts o = {.skip_bad_rows = true};
        st[1] = bl_glue_load(&d, BL_GLUE_TASK_COLA, path, &o); if (!st[1]) bl_glue_set_free(&d);
        st[2] = bl_glue_load(&d, BL_GLUE_TASK_STSB, path, NULL); if (!st[2]) bl_glue_set_free(&d);
        bl_data_spec sp = BL_DATA_SPEC_DEFAULT;
        sp.format = "csv";
        st[3] = bl_data_load(&d, &sp, path); if (!st[3]) bl_glue_set_free(&d);
        sp.format = "tsv"; sp.text_col = "question"; sp.text_pair_col = "sentence";
        st[4] = bl_data_load(&d, &sp, path); if (!st[4]) bl_glue_set_free(&d);
        sp = BL_DATA_SPEC_DEFAULT;
        sp.format = "jsonl"; sp.text_pair_col = "pair"; sp.skip_bad_rows = true;
        st[5] = bl_data_load(&d, &sp, path); if (!st[5]) bl_glue_set_free(&d);
        st[6] = bl_advglue_load(&d, BL_GLUE_TASK_QNLI, path); if (!st[6]) bl_glue_set_free(&d);
        sp.format = "csv"; sp.header = false; sp.text_col = "0"; sp.text_pair_col = NULL; sp.label_col = "1"; sp.regression = true;
        st[7] = bl_data_load(&d, &sp, path);
        if (!st[7]) {
            bl_data_knobs k = BL_DATA_KNOBS_DEFAULT;
            k.max_train = 2;
            bl_data_apply_knobs(&d, &k);
            bl_glue_set_free(&d);
        }
        for (int i = 0; i < 8; i++) {
            if (st[i]) { failed++; if (!balora_last_error()[0]) bad_msg++; }
            else ok++;
        }
    }
    CHECK(bad_msg == 0, "%d failures without a message", bad_msg);
    CHECK(ok > 0 && failed > 0, "fuzz: %d loads succeeded, %d failed cleanly", ok, failed);
}

int main(void) {
    fuzz();
    glue_layouts();
    generic();
    const char *shared = t_shared_dir();
    if (shared) real_glue(shared);
    else fprintf(stderr, "../shared absent: real GLUE checks skipped\n");
    return t_finish();
}
