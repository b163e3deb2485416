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
#include "lab/plot.h"
#include "lab/run.h"

/* Writes the files into dir (created). */
balora_status bl_lab_report_write(const bl_lab_results *r, const char *dir);

/* The results table of variant v as Markdown (what report.md holds and the CLI prints):
 * a malloc'd string the caller frees. */
balora_status bl_lab_report_table(const bl_lab_results *r, int v, char **out);

/* Picture code shared by the decoder arm (report.md) and the encoder arm (nlu_report.md, nlu.h);
 * each writes dir/stem.png and dir/stem.svg.
 * Fine-tuning loss per method: loss[m] [S, stride] per-seed per-step losses (the first T of each
 * row used; NULL = method m not run; names[m] its legend), drawn as the mean +- std band over the
 * S seeds of a trailing moving average over max(T / 20, 1) steps, log y axis; `what` names the loss
 * in the title ("answer token CE"). n_methods 1..64, S 1..100. */
balora_status bl_lab_plot_loss(const char *dir, const char *stem, const char *what, int n_methods, const char *const *names,
                              const float *const *loss, int S, int64_t T, int64_t stride);
/* A grouped bar chart with error bars (bl_plot_bars) as PNG and SVG. */
balora_status bl_lab_plot_bars(const char *dir, const char *stem, const bl_plot_bars_spec *spec);
/* t-SNE small multiples (cols panels per row) of held-out review items; each panel's cls in
 * 0..3 = label + 2 * cue-reversed, legend bl_lab_tsne_class_names. */
extern const char *const bl_lab_tsne_class_names[4];
balora_status bl_lab_plot_tsne(const char *dir, const char *stem, const char *title, const bl_plot_panel *panels, int n_panels,
                               int cols);

#endif
