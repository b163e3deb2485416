/* Training progress: a record per optimizer step, handed to a callback (the library never
 * prints; the CLI draws one updating line on a terminal, plain lines otherwise), a
 * formatter for that line, and the per-step metrics log (JSONL, or CSV when the file name
 * ends in .csv) with the extra named values (e.g. the BA-LoRA terms). */
#ifndef BL_TRAIN_PROGRESS_H
#define BL_TRAIN_PROGRESS_H
#include "core/bl.h"
#include <stdio.h>

#define BL_MAX_EXTRA 16

typedef struct bl_progress {
    int64_t step, total_steps; /* optimizer steps done / planned */
    double epoch;              /* fractional epoch */
    double loss;               /* total loss of this step (task + extra), mean over trained tokens */
    double task_loss;          /* cross-entropy part */
    double lr;                 /* learning rate used for this step */
    double grad_norm;          /* global gradient L2 norm before clipping */
    int64_t tokens;            /* real tokens seen so far in this process */
    double tokens_per_s;       /* since the run (or the resume) started */
    double elapsed_s, eta_s;
    int n_extra;
    const char *const *extra_names; /* [n_extra] */
    const double *extra;            /* [n_extra] */
    bool final;                /* the last call of the run */
    bool checkpoint;           /* a checkpoint was written at this step */
} bl_progress;
typedef void (*bl_progress_fn)(const bl_progress *p, void *user);

/* "step 12/100 (12%) | epoch 0.24 | loss 2.3456 | lr 1.20e-04 | 1234 tok/s | 00:12 elapsed | ETA 01:30" */
void bl_progress_format(const bl_progress *p, char *buf, size_t cap);
/* "01:02:03" or "02:03" */
void bl_format_duration(double s, char *buf, size_t cap);

typedef struct bl_metrics_log {
    FILE *f;
    bool csv;
    int n_extra;
    char path[4096];
} bl_metrics_log;
/* Opens the log. resume_step = 0: start a new file. resume_step > 0: keep the rows of steps
 * <= resume_step already in the file (a killed run may have logged further) and append. */
balora_status bl_metrics_open(bl_metrics_log *m, const char *path, int n_extra, const char *const *extra_names, int64_t resume_step);
balora_status bl_metrics_write(bl_metrics_log *m, const bl_progress *p);
void bl_metrics_close(bl_metrics_log *m);

#endif
