/* GSM8K grading, as MetaMath / PiSSA / BA-LoRA evaluate it:
 *   - reference: the number after the last "####" of the answer field;
 *   - model answer: the first number after the last "The answer is" (an optional ':' and spaces
 *     follow; case-insensitive); when the completion has no such phrase, the last number in it.
 *     When the phrase is there but no number follows, there is no answer (scored wrong);
 *   - numbers as written: an optional '-', an optional '$', digits with or without thousands
 *     commas ("1,234"), decimals ("18.0", ".5"), and a fraction a/b ("3/4" = 0.75);
 *   - compared numerically: |a - b| <= 1e-9 max(1, |b|) (so "18.00" == "18", "$1,000" == "1000").
 * The regular expression is PCRE2's; nothing here allocates per call beyond PCRE2's match data. */
#ifndef BL_EVAL_GSM8K_H
#define BL_EVAL_GSM8K_H
#include "core/bl.h"

/* Parses one number token exactly as bl_gsm8k_find_number matched it (whole string). */
bool bl_gsm8k_parse_number(const char *s, size_t len, double *out);
/* Finds the first (last = false) or last (last = true) number in s[0..len). On success *start,*end
 * give its span and *value its value. */
bool bl_gsm8k_find_number(const char *s, size_t len, bool last, double *value, size_t *start, size_t *end);
/* Reference answer of a GSM8K "answer" field. Fails (FORMAT) when there is no "####" or no number after it. */
balora_status bl_gsm8k_reference(const char *answer, double *out);
/* Model answer of a completion; false when none. text (may be NULL) receives the matched token. */
bool bl_gsm8k_extract(const char *completion, double *out, char *text, size_t cap);
bool bl_gsm8k_equal(double got, double want);

#endif
