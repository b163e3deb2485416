/* Text data through the real tokenizers (src/tok): the Alpaca-formatted JSONL example is the
 * tokenised prompt + response + EOS with exactly the prompt tokens masked, and decodes back to
 * the text; plain text is cut into max_len blocks that decode back to the file's text. */
#include "harness.h"
#include "train/lm.h"
#include <stdlib.h>
#include <string.h>

static char g_path[600];
static const char *write_file(const char *name, const char *text) {
    snprintf(g_path, sizeof g_path, "%s/%s", t_tmpdir(), name);
    FILE *f = fopen(g_path, "wb");
    fputs(text, f);
    fclose(f);
    return g_path;
}

static void check_tokenizer(const char *dir, int32_t eos, bool bos) {
    bl_tok *tok = NULL;
    CHECK_OK(bl_tok_load(&tok, dir));
    if (!tok) return;
    bl_train_tok tt;
    bl_train_tok_init(&tt, tok, eos);
    bl_train_data_cfg c;
    bl_train_data_cfg_default(&c);
    c.vocab_size = bl_tok_vocab_size(tok);
    c.max_len = 512;
    const char *query = "What is 7 times 6?", *resp = " 7 * 6 = 42. The answer is: 42";
    const char *p = write_file("m.jsonl", "{\"query\": \"What is 7 times 6?\", \"response\": \" 7 * 6 = 42. The answer is: 42\"}\n"
                                          "{\"query\": \"caf\\u00e9 \\ud83d\\ude00\", \"response\": \"ok\"}\n");
    bl_train_data d;
    CHECK_OK(bl_train_data_load(&d, p, &c, &tt.iface));
    if (d.n != 2) { CHECK(false, "n = %lld", (long long)d.n); bl_train_tok_free(&tt); bl_tok_free(tok); return; }
    /* independent: encode the formatted prompt and the full text */
    char prompt[1024], full[2100];
    const char *hole = strstr(BL_ALPACA_TEMPLATE, "{query}");
    snprintf(prompt, sizeof prompt, "%.*s%s%s", (int)(hole - BL_ALPACA_TEMPLATE), BL_ALPACA_TEMPLATE, query, hole + 7);
    snprintf(full, sizeof full, "%s%s", prompt, resp);
    bl_tok_enc ep = {0}, ef = {0};
    CHECK_OK(bl_tok_encode(tok, prompt, strlen(prompt), true, &ep));
    CHECK_OK(bl_tok_encode(tok, full, strlen(full), true, &ef));
    int64_t len = d.off[1] - d.off[0];
    CHECK(len == (int64_t)ef.n + 1, "length %lld = full %zu + EOS", (long long)len, ef.n);
    int bad = 0;
    for (size_t i = 0; i < ef.n && i < (size_t)len; i++) {
        bad += d.ids[i] != ef.ids[i];
        bad += d.labels[i] != (i < ep.n ? -100 : ef.ids[i]);
    }
    CHECK(bad == 0, "ids and masking match the tokenizer (%d mismatches)", bad);
    CHECK(d.ids[len - 1] == tt.iface.eos_id && d.labels[len - 1] == tt.iface.eos_id, "EOS %d appended and trained", tt.iface.eos_id);
    CHECK(!bos || d.ids[0] == bl_tok_special(tok, BL_TOK_BOS), "BOS first");
    /* the trained tokens decode to the response */
    char *txt; size_t tl;
    CHECK_OK(bl_tok_decode(tok, d.ids + ep.n, (size_t)(len - 1 - (int64_t)ep.n), false, &txt, &tl));
    if (txt) {
        /* SentencePiece may merge the boundary differently: compare the digits part at least */
        CHECK(strstr(txt, "7 * 6 = 42. The answer is: 42") != NULL, "response decodes back: '%s'", txt);
        free(txt);
    }
    bl_train_data_free(&d);
    bl_tok_enc_free(&ep);
    bl_tok_enc_free(&ef);

    /* plain text: blocks decode back to the text */
    const char *text = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n";
    p = write_file("t.txt", text);
    c.format = BL_TRAIN_DATA_TEXT;
    c.max_len = 8;
    CHECK_OK(bl_train_data_load(&d, p, &c, &tt.iface));
    CHECK(d.n >= 2 && d.max_len == 8, "blocks %lld", (long long)d.n);
    CHECK_OK(bl_tok_decode(tok, d.ids, (size_t)d.off[d.n], true, &txt, &tl));
    if (txt) {
        CHECK(strncmp(text, txt, tl) == 0 && tl > 40, "blocks decode to the text's start: '%s'", txt);
        free(txt);
    }
    bl_train_data_free(&d);
    /* fuzzing: an empty text file encodes to no ids, copied from a NULL buffer (UB under UBSan) */
    p = write_file("empty.txt", "");
    CHECK_FAILS(bl_train_data_load(&d, p, &c, &tt.iface), BALORA_STATUS_INVALID, "empty.txt: the dataset is empty");
    bl_train_tok_free(&tt);
    bl_tok_free(tok);
}

int main(void) {
    const char *sh = t_require_shared();
    char dir[600];
    snprintf(dir, sizeof dir, "%s/tokenizers/gpt2", sh);
    check_tokenizer(dir, 50256, false);
    snprintf(dir, sizeof dir, "%s/tokenizers/llama2", sh);
    check_tokenizer(dir, -1, true);
    return t_finish();
}
