/* The lab's report folder (issue 7): from bl_lab_results (src/lab/run.h) write
 *   report.md      tables (mean +- std over seeds, Welch's t-test vs LoRA), the pictures embedded,
 *                  the exact configuration and seeds, the time taken, what the results do and do
 *                  not show (sentences generated from the measured numbers and fixed caveats)
 *   results.json   every method's scores: mean, std, per-seed values, Welch's test vs LoRA
 *   loss.png/.svg  fine-tuning loss per method (mean +- std band over seeds)
 *   scores.png/.svg  grouped bar chart of the scores
 *   tsne.png/.svg  t-SNE maps of answer-position features, LoRA and BA-LoRA, steps 0 / mid / end
 *   variants.png/.svg  (presets with several variants) inheritance and ID accuracy per variant */
#ifndef BL_LAB_REPORT_H
#define BL_LAB_REPORT_H
#include "lab/run.h"

/* Writes the files into dir (created). */
balora_status bl_lab_report_write(const bl_lab_results *r, const char *dir);

/* The results table of variant v as Markdown (what report.md holds and the CLI prints):
 * a malloc'd string the caller frees. */
balora_status bl_lab_report_table(const bl_lab_results *r, int v, char **out);

#endif
