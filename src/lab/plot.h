/* Charts for the lab's report, drawn with cairo and written as PNG or SVG (chosen by the
 * path's extension, ".png" or ".svg"; files are written atomically).
 *
 *   bl_plot_lines    several (x, y) series: loss curves per method. Title, axis labels,
 *                    "nice" ticks, grid, legend; optional log10 y axis.
 *   bl_plot_bars     grouped bars with error bars: groups (e.g. metrics) x series (e.g.
 *                    methods), mean +- err (e.g. std over seeds).
 *   bl_plot_scatter  small multiples of 2-D point clouds coloured by class (t-SNE maps at
 *                    several points of training), one shared legend.
 *
 * Non-finite values (NaN, +-inf) never crash a plot: a line breaks at them, a point is
 * skipped, a bar with a non-finite mean is drawn as "n/a", a non-finite error bar is left
 * out; a plot with no finite value at all draws empty axes saying "no data".
 * Sizes are in pixels (SVG: points); 0 picks the default. Text uses the "DejaVu Sans"
 * face through cairo's toy font API (fontconfig falls back to any sans face). */
#ifndef BL_LAB_PLOT_H
#define BL_LAB_PLOT_H
#include "core/bl.h"

typedef struct bl_plot_series {
    const char *name;   /* legend entry (NULL = "series N") */
    const double *x;    /* [n] (NULL = 0, 1, 2, ...) */
    const double *y;    /* [n] */
    int64_t n;
} bl_plot_series;

typedef struct bl_plot_lines_spec {
    const char *title, *xlabel, *ylabel; /* any may be NULL */
    bool log_y;          /* log10 y axis (values <= 0 are skipped like NaN) */
    int32_t width, height; /* default 800 x 500; 100..8000 */
} bl_plot_lines_spec;

balora_status bl_plot_lines(const char *path, const bl_plot_lines_spec *spec, const bl_plot_series *series,
                            int32_t n_series);

typedef struct bl_plot_bars_spec {
    const char *title, *ylabel;
    int32_t n_groups, n_series;          /* 1..64 each */
    const char *const *group_names;      /* [n_groups] (NULL entries allowed) */
    const char *const *series_names;     /* [n_series] legend (NULL = no legend) */
    const double *mean;                  /* [n_groups, n_series] */
    const double *err;                   /* [n_groups, n_series] half-length of the error bar, or NULL */
    int32_t width, height;               /* default 800 x 500 */
} bl_plot_bars_spec;

balora_status bl_plot_bars(const char *path, const bl_plot_bars_spec *spec);

typedef struct bl_plot_panel {
    const char *title;
    const float *xy;       /* [n, 2] */
    const int32_t *cls;    /* [n] class of each point (out of range or NULL: grey) */
    int64_t n;
} bl_plot_panel;

typedef struct bl_plot_scatter_spec {
    const char *title;
    int32_t n_panels;                  /* 1..64 */
    const bl_plot_panel *panels;       /* [n_panels] */
    int32_t n_classes;                 /* 0..64 */
    const char *const *class_names;    /* [n_classes] legend, or NULL */
    int32_t cols;                      /* panels per row (0 = ceil(sqrt(n_panels))) */
    int32_t width, height;             /* default: 300 px per panel column / row plus margins */
} bl_plot_scatter_spec;

balora_status bl_plot_scatter(const char *path, const bl_plot_scatter_spec *spec);

/* The palette (tab10, then repeating) as 0..255 RGB, for callers that draw matching legends. */
void bl_plot_color(int32_t i, uint8_t rgb[3]);

#endif
