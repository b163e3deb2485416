/* MATH grading, as Hendrycks et al.'s MATH grader (is_equiv / strip_string) and the
 * MetaMath "The answer is:" evaluation do it.
 *
 * Answer extraction:
 *   - reference: the dataset's "answer" field when present, else the content of the last
 *     \boxed{...} (or \fbox{...}, or "\boxed X" up to a '$') of its solution, braces balanced;
 *   - model: whichever comes later in the completion: the last \boxed{...}/\fbox{...}, or the
 *     text after the last "The answer is:" up to the first ".\n", trimmed, one trailing '.'
 *     dropped (a \boxed{} inside it is unboxed).
 * Equivalence: strip_string(a) == strip_string(b), where strip_string, in this order:
 *   removes line breaks and "\!"; turns "\\" into "\"; tfrac/dfrac -> frac; removes \left and
 *   \right, "^{\circ}" and "^\circ", "\$"; removes units written as "\text{ ...}" at the right;
 *   removes "\%"; " ." -> " 0.", "{." -> "{0.", a leading '.' gets a '0'; drops a "k =" prefix
 *   whose left side has at most 2 characters; \sqrt3 -> \sqrt{3}; removes spaces;
 *   \frac12 -> \frac{1}{2}, \frac1b -> \frac{1}{b}, \frac1{72} -> \frac{1}{72}; "0.5" -> \frac{1}{2};
 *   "a/b" (two canonical integers) -> \frac{a}{b}.
 * Where the reference Python raises (an empty \frac or \sqrt argument, two unit texts), the raw
 * strings are compared instead, as is_equiv does. */
#ifndef BL_EVAL_MATHGRADE_H
#define BL_EVAL_MATHGRADE_H
#include "core/bl.h"

/* Content of the last \boxed{...} / \fbox{...} / "\boxed X" in s, malloc'd; NULL if none or unbalanced. */
char *bl_math_last_boxed(const char *s);
/* The model's answer (malloc'd) or NULL. */
char *bl_math_extract(const char *completion);
/* strip_string: malloc'd normalised string; NULL with *raised = true where the reference raises
 * (NULL with *raised = false: out of memory). */
char *bl_math_strip(const char *s, bool *raised);
/* is_equiv: both NULL -> true, one NULL -> false. */
bool bl_math_equiv(const char *a, const char *b);

#endif
