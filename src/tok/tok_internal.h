/* Internals of the tokenizer (tok.h): the pipeline of Hugging Face `tokenizers`
 * (added tokens -> normalizer -> pre-tokenizer -> model -> post-processor; decoder) as data. */
#ifndef BL_TOK_INTERNAL_H
#define BL_TOK_INTERNAL_H
#include "tok/tok.h"
#include <cjson/cJSON.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* A growable byte buffer (scratch: grown as needed, reused across calls). */
typedef struct tbuf { char *p; size_t n, cap; } tbuf;
balora_status tbuf_reserve(tbuf *b, size_t need);
balora_status tbuf_put(tbuf *b, const void *s, size_t n);
void tbuf_free(tbuf *b);

/* A span of a buffer: a piece of text during pre-tokenization, a token during decoding. */
typedef struct tspan { size_t off, len; } tspan;
typedef struct tspans { tspan *v; size_t n, cap; } tspans;
balora_status tspans_push(tspans *s, size_t off, size_t len);

/* Runs of a piece: [a, b) matched by a delimiter pattern (match) or not. */
typedef struct tmark { size_t a, b; bool match; } tmark;
typedef struct tmarks { tmark *v; size_t n, cap; } tmarks;

/* ---- normalizers ---- */
typedef enum tnorm_kind {
    TN_SEQUENCE, TN_PREPEND, TN_REPLACE, TN_NFC, TN_NFD, TN_NFKC, TN_NFKD, TN_LOWERCASE, TN_STRIP,
    TN_STRIP_ACCENTS, TN_BERT, TN_PRECOMPILED, TN_BYTELEVEL
} tnorm_kind;
typedef struct tnorm {
    tnorm_kind kind;
    struct tnorm *sub; int n_sub;           /* TN_SEQUENCE */
    char *a; char *b;                        /* PREPEND: a; REPLACE: a -> b (string or regex) */
    pcre2_code *re;                          /* REPLACE with a regex pattern */
    bool left, right;                        /* STRIP */
    bool clean_text, chinese, strip_accents, lowercase; /* BERT */
    uint8_t *charsmap; size_t charsmap_len;  /* PRECOMPILED (SentencePiece normalization trie) */
} tnorm;

/* ---- pre-tokenizers ---- */
typedef enum tpre_kind {
    TP_SEQUENCE, TP_BYTELEVEL, TP_SPLIT, TP_METASPACE, TP_BERT, TP_WHITESPACE, TP_WHITESPACE_SPLIT,
    TP_DIGITS, TP_PUNCTUATION
} tpre_kind;
typedef enum tsplit_behavior { TS_REMOVED, TS_ISOLATED, TS_MERGED_PREV, TS_MERGED_NEXT, TS_CONTIGUOUS } tsplit_behavior;
typedef struct tpre {
    tpre_kind kind;
    struct tpre *sub; int n_sub;
    pcre2_code *re;                 /* SPLIT (regex or escaped string), BYTELEVEL with use_regex */
    tsplit_behavior behavior;       /* SPLIT, PUNCTUATION */
    bool invert;                    /* SPLIT */
    bool add_prefix_space;          /* BYTELEVEL */
    char repl[8];                   /* METASPACE: the replacement character (UTF-8) */
    int prepend;                    /* METASPACE: 0 never, 1 first, 2 always */
    bool split;                     /* METASPACE */
    bool individual_digits;         /* DIGITS */
} tpre;

/* ---- decoders ---- */
typedef enum tdec_kind {
    TD_SEQUENCE, TD_BYTELEVEL, TD_REPLACE, TD_BYTE_FALLBACK, TD_FUSE, TD_STRIP, TD_METASPACE,
    TD_WORDPIECE, TD_BPE_SUFFIX
} tdec_kind;
typedef struct tdec {
    tdec_kind kind;
    struct tdec *sub; int n_sub;
    char *a, *b;                    /* REPLACE a -> b; STRIP: a = content; WORDPIECE: a = prefix; BPE: a = suffix */
    int start, stop;                /* STRIP */
    bool cleanup;                   /* WORDPIECE */
    char repl[8]; int prepend;      /* METASPACE */
} tdec;

/* ---- post-processor: a template of pieces ---- */
typedef struct ttpl_item {
    int seq;                 /* 0 = A, 1 = B, -1 = a special token */
    int type_id;
    int n_ids; int32_t ids[4];
} ttpl_item;
typedef struct ttpl {
    bool present;
    int n_single, n_pair;
    ttpl_item single[8], pair[12];
} ttpl;

/* ---- added tokens ---- */
typedef struct tadded {
    int32_t id;
    char *content; size_t len;
    bool special, lstrip, rstrip, single_word, normalized;
} tadded;

/* string -> id, open addressing; keys are the token strings of the tokenizer (t->str[id]). */
typedef struct idmap { int32_t *slot; size_t mask; } idmap;
/* (left id, right id) -> (rank, merged id) */
typedef struct pairent { uint64_t key; int32_t rank, merged; } pairent;
typedef struct pairmap { pairent *e; size_t mask; } pairmap; /* one cache line holds 4 entries */

/* Word cache: recent words (byte strings) -> ids. Cleared when full. */
typedef struct tcache {
    uint64_t *hash;        /* [slots] 0 = empty */
    uint32_t *key_off, *key_len, *ids_off, *ids_len; /* [slots] into pool / ids */
    size_t slots, used;
    tbuf pool;             /* key bytes */
    int32_t *ids; size_t n_ids, cap_ids;
} tcache;

struct bl_tok {
    bl_tok_model model;
    /* vocabulary: id -> string (tokens as stored), covering the model's vocab and the added tokens */
    int32_t n_vocab;              /* max id + 1 */
    int32_t vocab_cap;            /* allocated entries of str/len/is_special */
    char **str;                   /* [n_vocab] NUL-terminated, NULL for holes */
    uint32_t *len;                /* [n_vocab] */
    idmap vmap;                   /* model vocabulary only */
    uint8_t *in_model; int32_t n_in_model; /* while loading tokenizer.json: ids of the model's vocab */
    char *pool; size_t pool_len, pool_cap;
    /* BPE */
    pairmap merges;
    bool byte_level;              /* input bytes map to GPT-2's byte alphabet */
    bool byte_fallback, fuse_unk, ignore_merges;
    int32_t byte_id[256];         /* byte-level: id of each byte's character; byte_fallback: id of <0xXX> */
    int32_t unk_id;               /* model unk, -1 if none */
    char *cont_prefix;            /* BPE continuing_subword_prefix / WordPiece prefix ("##") */
    char *eow_suffix;             /* BPE end_of_word_suffix */
    int max_input_chars;          /* WordPiece */
    /* Unigram */
    double *score;                /* [n_vocab] */
    double min_score;
    int max_piece_len;            /* bytes */
    /* pipeline */
    tnorm *norm; tpre *pre; tdec *dec;
    ttpl tpl;
    tadded *added; int n_added;
    uint8_t added_first[256];     /* 1 for bytes that start an added token with normalized=false */
    uint8_t added_first_norm[256];/* ... with normalized=true (matched after normalization) */
    bool has_norm_added;
    int32_t role[BL_TOK_N_ROLES];
    int cleanup_spaces;           /* tokenizer_config.json clean_up_tokenization_spaces: -1 absent, 0, 1 */
    uint8_t *is_special;          /* [n_vocab] */
    /* scratch */
    tbuf s_norm, s_tmp, s_pre, s_pre2, s_word;
    tspans sp_a, sp_b;
    tmarks marks;
    int32_t *w_id, *w_prev, *w_next; size_t w_cap;        /* BPE symbols */
    struct theap { int32_t rank, pos, right, merged, lid, rid; } *heap; size_t heap_cap;
    double *v_score; int32_t *v_start, *v_id; size_t v_cap;  /* Unigram Viterbi */
    int32_t *ids; size_t n_ids, cap_ids;                     /* ids of the sequence being encoded */
    uint8_t *ids_special; size_t cap_special;
    tcache cache;
    pcre2_match_data *md;
};

/* tok_load.c */
balora_status tok_vocab_add(bl_tok *t, int32_t id, const char *s, size_t len);
balora_status tok_vocab_reserve(bl_tok *t, int32_t n);
/* While loading, t->str[] holds pool offsets + 1; seal turns them into pointers and builds the map
 * over every id, unseal turns them back (the pool may still grow). */
balora_status tok_vocab_seal(bl_tok *t);
void tok_vocab_unseal(bl_tok *t);
balora_status tok_pairmap_init(pairmap *m, size_t n);
int32_t idmap_get(const bl_tok *t, const char *s, size_t len);
balora_status pairmap_put(pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t merged);
bool pairmap_get(const pairmap *m, int32_t a, int32_t b, int32_t *rank, int32_t *merged);
balora_status tok_compile(const char *what, const char *pattern, size_t len, bool literal, pcre2_code **out);
extern const char *const tok_gpt2_pattern;
/* byte -> the GPT-2 byte-level character (UTF-8, 1-2 bytes) and the inverse for decoding. */
int tok_byte_char(int byte, char out[3]);
int tok_char_byte(uint32_t cp); /* -1 if cp is not in the byte alphabet */

/* tok.c */
void tok_norm_free(tnorm *n);
void tok_pre_free(tpre *p);
void tok_dec_free(tdec *d);
balora_status tok_charsmap_check(const char *what, const uint8_t *cm, size_t len); /* FORMAT error when the size header lies */
uint32_t tok_utf8_next(const char *s, size_t n, size_t *i); /* decode one code point of valid UTF-8 */
#endif
