/* Tokenizers that give exactly the ids of Hugging Face `tokenizers`.
 *
 * Loading (bl_tok_load), in this order of preference inside a folder:
 *   tokenizer.json                      the `tokenizers` format (normalizer, pre_tokenizer, model,
 *                                       post_processor, decoder, added_tokens)
 *   vocab.json + merges.txt             byte-level BPE (GPT-2, RoBERTa)
 *   encoder.json + vocab.bpe            OpenAI's original GPT-2 files
 *   vocab.txt                           WordPiece (BERT; lower-cased unless tokenizer_config.json
 *                                       says "do_lower_case": false)
 *   tokenizer.model                     SentencePiece protobuf (BPE with byte fallback, Unigram)
 * tokenizer_config.json, when present, supplies special-token names (bos/eos/pad/unk/...),
 * add_bos_token / add_eos_token (tokenizer.model; and tokenizer.json of LlamaTokenizer / GemmaTokenizer,
 * whose post-processor transformers rebuilds from them), do_lower_case (vocab.txt), add_prefix_space
 * (vocab.json), added_tokens_decoder (older formats) and clean_up_tokenization_spaces (decoding).
 * Not honoured: the "truncation" / "padding" sections of tokenizer.json (callers truncate and pad).
 *
 * Models: byte-level BPE (GPT-2 / RoBERTa / Qwen2 / LLaMA-3 regexes via PCRE2), SentencePiece-style
 * BPE with byte fallback and the U+2581 space marker (LLaMA-2, Mistral), WordPiece with BERT's
 * basic tokenizer, Unigram with Viterbi. Encoding is O(n log n) in the word length (priority queue
 * over a linked list of symbols) with a cache of recent words.
 *
 * Added tokens are matched before the model: those with normalized=false on the raw text, those with
 * normalized=true on the normalized text (as HF does); lstrip/rstrip absorb ASCII whitespace, single_word
 * needs non-word characters (Unicode letters, digits, '_') around the match.
 *
 * Threading: a bl_tok is NOT thread-safe (encode/decode use its scratch buffers and word cache).
 * Use one bl_tok per thread (load it twice) or a lock. bl_tok_vocab_size, bl_tok_special,
 * bl_tok_token_to_id and bl_tok_id_to_token are read-only and safe.
 *
 * Ids are int32_t. Sizes are size_t. Errors follow the balora convention: a balora_status with a
 * message "FILE: field ...: what is wrong; hint: ..." in balora_last_error(). */
#ifndef BL_TOK_H
#define BL_TOK_H
#include "core/bl.h"

typedef struct bl_tok bl_tok;

typedef enum bl_tok_model {
    BL_TOK_MODEL_BPE = 1,     /* byte-level (GPT-2 family) or SentencePiece-style (byte_fallback) */
    BL_TOK_MODEL_WORDPIECE,
    BL_TOK_MODEL_UNIGRAM
} bl_tok_model;

/* Special-token roles. bl_tok_special() returns -1 when the tokenizer has none for a role. */
typedef enum bl_tok_role {
    BL_TOK_BOS = 0, BL_TOK_EOS, BL_TOK_PAD, BL_TOK_UNK, BL_TOK_CLS, BL_TOK_SEP, BL_TOK_MASK,
    BL_TOK_N_ROLES
} bl_tok_role;

/* The result of an encoding. Owned by the caller, reusable across calls (grown as needed, never
 * shrunk); zero-initialise before first use, bl_tok_enc_free at the end. */
typedef struct bl_tok_enc {
    int32_t *ids;       /* [n] token ids */
    int32_t *type_ids;  /* [n] token_type_ids from the post-processor (0 = first text, 1 = pair) */
    uint8_t *special;   /* [n] 1 where the token is a special token (added by the template or matched
                           in the text), 0 otherwise: the special_tokens_mask of HF */
    size_t n;           /* number of tokens */
    size_t cap;         /* allocated capacity of each array */
} bl_tok_enc;

/* Load from a folder (see the order above) or from a tokenizer.json file path. */
balora_status bl_tok_load(bl_tok **t, const char *dir_or_file);
/* Load from tokenizer.json text held in memory (`what` names it in error messages). */
balora_status bl_tok_load_json(bl_tok **t, const char *what, const char *json, size_t len);
void bl_tok_free(bl_tok *t);

/* Encode UTF-8 text (len bytes; need not be NUL-terminated). add_special: apply the
 * post-processor (BOS, [CLS] ... [SEP], ...) as HF does with add_special_tokens=True.
 * Special tokens written in the text ("<s>", "<|endoftext|>", "[SEP]") are always recognised,
 * as HF does. Invalid UTF-8 -> BALORA_STATUS_INVALID naming the byte offset. */
balora_status bl_tok_encode(bl_tok *t, const char *text, size_t len, bool add_special, bl_tok_enc *out);
/* A sentence pair: [CLS] A [SEP] B [SEP] for BERT, with type_ids 0 for A's part and 1 for B's. */
balora_status bl_tok_encode_pair(bl_tok *t, const char *a, size_t alen, const char *b, size_t blen,
                                 bool add_special, bl_tok_enc *out);
/* Convenience for callers with a fixed buffer: writes at most cap ids; *n receives the full count.
 * Fails with BALORA_STATUS_INVALID ("... needs N ids, buffer holds cap") when cap < count. */
balora_status bl_tok_encode_ids(bl_tok *t, const char *text, size_t len, bool add_special,
                                int32_t *ids, size_t cap, size_t *n);
void bl_tok_enc_free(bl_tok_enc *e);

/* Decode ids to text as HF's tokenizer.decode(ids, skip_special_tokens) does: the decoder chain
 * (ByteLevel, Replace/ByteFallback/Fuse/Strip, WordPiece, Metaspace) with invalid UTF-8 (e.g. a
 * multi-byte character cut by the ids) replaced by U+FFFD exactly as the reference does.
 * *text is malloc'd, NUL-terminated, owned by the caller (free()); *len excludes the NUL.
 * Unknown ids (< 0 or >= vocab size) -> BALORA_STATUS_INVALID. */
balora_status bl_tok_decode(bl_tok *t, const int32_t *ids, size_t n, bool skip_special, char **text, size_t *len);
/* The raw bytes of the ids (byte-level BPE and byte fallback give back exactly the bytes that were
 * encoded, possibly invalid UTF-8), without the decoder's cosmetic steps (no space stripping). */
balora_status bl_tok_decode_bytes(bl_tok *t, const int32_t *ids, size_t n, bool skip_special, char **bytes, size_t *len);

/* Vocabulary size including added tokens (max id + 1). */
int32_t bl_tok_vocab_size(const bl_tok *t);
bl_tok_model bl_tok_model_type(const bl_tok *t);
/* Special-token id for a role, or -1. */
int32_t bl_tok_special(const bl_tok *t, bl_tok_role role);
/* Token string as stored in the vocabulary (byte-level BPE: the GPT-2 unicode form, e.g. "\u0120the"),
 * NULL for an unknown id. Id of a token string, or -1. */
const char *bl_tok_id_to_token(const bl_tok *t, int32_t id);
int32_t bl_tok_token_to_id(const bl_tok *t, const char *token);
/* Whether the post-processor adds specials at all (e.g. LLaMA-2: BOS; GPT-2: nothing). */
bool bl_tok_adds_special(const bl_tok *t);

#endif
