/* tokenizer_config.json (special-token names, added tokens, the template's switches): part 0 of
 * the input is the file, part 1 (optional) a text to encode (FZ_SEP framing). The first byte picks
 * the tokenizer beside it: a small WordPiece vocab.txt, byte-level BPE vocab.json + merges.txt, or
 * a tokenizer.json (BPE with a template post-processor). */
#include "tok/tok.h"
#include "fuzz_util.h"

static const char vocab_txt[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n##s\n!\n";
static const char vocab_json[] = "{\"<|endoftext|>\": 0, \"h\": 1, \"e\": 2, \"l\": 3, \"o\": 4, \"he\": 5, \"ll\": 6, "
                                 "\"\\u0120\": 7, \"w\": 8, \"r\": 9, \"d\": 10, \"<s>\": 11, \"</s>\": 12}";
static const char merges_txt[] = "#version: 0.2\nh e\nl l\n";
static const char tokenizer_json[] =
    "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": 0, \"content\": \"<s>\", \"special\": true}, "
    "{\"id\": 1, \"content\": \"</s>\", \"special\": true}, {\"id\": 2, \"content\": \"<unk>\", \"special\": true}], "
    "\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true}, "
    "\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}, "
    "{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"pair\": [{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, "
    "{\"Sequence\": {\"id\": \"B\", \"type_id\": 1}}], \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [0], \"tokens\": [\"<s>\"]}}}, "
    "\"decoder\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, "
    "\"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, \"fuse_unk\": false, \"byte_fallback\": false, "
    "\"vocab\": {\"<s>\": 0, \"</s>\": 1, \"<unk>\": 2, \"h\": 3, \"e\": 4, \"l\": 5, \"o\": 6, \"he\": 7}, \"merges\": [\"h e\"]}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int which = data[0] % 3;
    fz_part p[2];
    size_t n = fz_split(data + 1, size - 1, p, 2);
    fz_clear();
    fz_write("tokenizer_config.json", p[0].d, p[0].n);
    if (which == 0) fz_write("vocab.txt", (const uint8_t *)vocab_txt, sizeof vocab_txt - 1);
    if (which == 1) {
        fz_write("vocab.json", (const uint8_t *)vocab_json, sizeof vocab_json - 1);
        fz_write("merges.txt", (const uint8_t *)merges_txt, sizeof merges_txt - 1);
    }
    if (which == 2) fz_write("tokenizer.json", (const uint8_t *)tokenizer_json, sizeof tokenizer_json - 1);
    bl_tok *t;
    if (fz_check(bl_tok_load(&t, fz_dir()))) return 0;
    fz_tok_exercise(t, n > 1 ? p[1].d : NULL, n > 1 ? p[1].n : 0);
    bl_tok_free(t);
    return 0;
}
