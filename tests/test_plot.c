/* Plots: PNG and SVG files are written, PNGs have the requested size and the series'
 * colours inside the plot area, non-finite values are handled, bad arguments fail clearly.
 * BALORA_KEEP_TMP=1 keeps the pictures for a look. */
#include "harness.h"
#include "lab/plot.h"
#include <cairo/cairo.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* fontconfig's process-lifetime caches (under cairo's text): scripts/lsan.supp. */

/* Pixels in [x0,x1) x [y0,y1) of the PNG close to palette colour k (k < 0: any non-white). */
static long count_pixels(const char *path, int want_w, int want_h, int k, int x0, int y0, int x1, int y1) {
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) { cairo_surface_destroy(s); return -1; }
    int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
    if (w != want_w || h != want_h) { fprintf(stderr, "%s: %d x %d, want %d x %d\n", path, w, h, want_w, want_h); cairo_surface_destroy(s); return -2; }
    cairo_surface_flush(s);
    const unsigned char *d = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    uint8_t c[3] = {0, 0, 0};
    if (k >= 0) bl_plot_color(k, c);
    long n = 0;
    for (int y = y0; y < y1 && y < h; y++)
        for (int x = x0; x < x1 && x < w; x++) {
            uint32_t px;
            memcpy(&px, d + (size_t)y * stride + 4 * (size_t)x, 4);
            int r = (px >> 16) & 255, g = (px >> 8) & 255, b = px & 255;
            if (k < 0) n += !(r > 250 && g > 250 && b > 250);
            else n += abs(r - c[0]) < 30 && abs(g - c[1]) < 30 && abs(b - c[2]) < 30;
        }
    cairo_surface_destroy(s);
    return n;
}

static void check_svg(const char *path) {
    char *t = NULL;
    size_t n = 0;
    CHECK_OK(bl_file_read(path, &t, &n));
    if (!t) return;
    CHECK(n > 200 && strncmp(t, "<?xml", 5) == 0 && strstr(t, "<svg") && strstr(t, "</svg>"), "%s is not an SVG document", path);
    free(t);
}

int main(void) {
    const char *dir = t_tmpdir();
    char png[1024], svg[1024];

    /* ---- lines: three loss curves, one with NaN and inf in the middle ---- */
    enum { T = 120 };
    double x[T], y[3][T];
    for (int i = 0; i < T; i++) {
        x[i] = 10.0 * i;
        y[0][i] = 3.0 * exp(-i / 30.0) + 0.4;
        y[1][i] = 3.0 * exp(-i / 50.0) + 0.6 + 0.05 * sin(i);
        y[2][i] = 2.5 * exp(-i / 20.0) + 0.5;
    }
    y[1][40] = NAN; y[1][41] = INFINITY; y[2][70] = -INFINITY;
    double band[T];
    for (int i = 0; i < T; i++) band[i] = 0.1 + 0.2 * exp(-i / 40.0);
    band[90] = NAN;
    bl_plot_series s[3] = {{"LoRA", x, y[0], T, NULL}, {"PiSSA", x, y[1], T, NULL}, {"BA-LoRA (mean +- std)", x, y[2], T, band}};
    bl_plot_lines_spec ls = {"Fine-tuning loss", "step", "loss", false, 800, 500};
    snprintf(png, sizeof png, "%s/lines.png", dir);
    snprintf(svg, sizeof svg, "%s/lines.svg", dir);
    CHECK_OK(bl_plot_lines(png, &ls, s, 3));
    CHECK_OK(bl_plot_lines(svg, &ls, s, 3));
    check_svg(svg);
    /* the plot area is x 75..~650, y 45..445 */
    for (int k = 0; k < 3; k++) {
        long n = count_pixels(png, 800, 500, k, 80, 50, 640, 440);
        CHECK(n > 300, "lines: series %d has %ld pixels of its colour in the plot area", k, n);
    }
    CHECK(count_pixels(png, 800, 500, -1, 0, 0, 800, 40) > 100, "lines: no title");
    ls.log_y = true;
    y[0][3] = -1; y[0][4] = 0;
    snprintf(png, sizeof png, "%s/lines_log.png", dir);
    CHECK_OK(bl_plot_lines(png, &ls, s, 3));
    CHECK(count_pixels(png, 800, 500, 0, 80, 50, 640, 440) > 300, "log lines: series 0 missing");
    /* nothing finite: empty axes, no crash */
    double bad[4] = {NAN, INFINITY, -INFINITY, NAN};
    bl_plot_series sb = {NULL, NULL, bad, 4, bad};
    bl_plot_lines_spec ls2 = {NULL, NULL, NULL, false, 0, 0};
    snprintf(png, sizeof png, "%s/lines_empty.png", dir);
    CHECK_OK(bl_plot_lines(png, &ls2, &sb, 1));
    CHECK(count_pixels(png, 800, 500, -1, 0, 0, 800, 500) > 0, "empty plot has no axes");
    /* a single point and a constant series */
    double one[1] = {2.0}, flat[5] = {1, 1, 1, 1, 1};
    bl_plot_series s1[2] = {{"one", NULL, one, 1, NULL}, {"flat", NULL, flat, 5, NULL}};
    snprintf(png, sizeof png, "%s/lines_degenerate.png", dir);
    CHECK_OK(bl_plot_lines(png, &ls2, s1, 2));
    CHECK(count_pixels(png, 800, 500, 1, 80, 20, 640, 440) > 50, "constant series not drawn");

    /* ---- bars: 3 metrics x 4 methods, mean +- std, one NaN mean and one inf error ---- */
    const char *groups[3] = {"ID accuracy", "OOD accuracy", "inheritance"};
    const char *methods[4] = {"Full FT", "LoRA", "PiSSA", "BA-LoRA"};
    double mean[12] = {0.91, 0.88, 0.90, 0.92, 0.61, 0.58, 0.63, 0.66, 0.30, 0.35, NAN, 0.22};
    double err[12] = {0.01, 0.02, 0.015, 0.01, 0.04, 0.05, 0.03, INFINITY, 0.05, 0.04, 0.02, 0.03};
    bl_plot_bars_spec bs = {"Scores over 3 seeds", "score", 3, 4, groups, methods, mean, err, 900, 450};
    snprintf(png, sizeof png, "%s/bars.png", dir);
    snprintf(svg, sizeof svg, "%s/bars.svg", dir);
    CHECK_OK(bl_plot_bars(png, &bs));
    CHECK_OK(bl_plot_bars(svg, &bs));
    check_svg(svg);
    for (int k = 0; k < 4; k++) {
        long n = count_pixels(png, 900, 450, k, 80, 50, 760, 400);
        CHECK(n > 1000, "bars: method %d has %ld pixels of its colour", k, n);
    }
    bs.err = NULL; bs.series_names = NULL; bs.group_names = NULL; bs.width = bs.height = 0;
    double neg[12] = {-1, 2, -3, 4, 5, -6, 7, 8, -9, 10, 11, 12};
    bs.mean = neg;
    snprintf(png, sizeof png, "%s/bars_neg.png", dir);
    CHECK_OK(bl_plot_bars(png, &bs));
    CHECK(count_pixels(png, 800, 500, 0, 0, 0, 800, 500) > 500, "negative bars not drawn");

    /* ---- scatter: 4 panels of 3 blobs each, some points NaN ---- */
    enum { NP = 300 };
    static float xy[4][NP * 2];
    static int32_t cls[NP];
    bl_rng r;
    bl_rng_seed(&r, 5);
    for (int p = 0; p < 4; p++)
        for (int i = 0; i < NP; i++) {
            cls[i] = i % 3;
            double spread = 4.0 - p; /* clusters get tighter panel by panel */
            xy[p][2 * i] = (float)(10 * cos(2 * M_PI * cls[i] / 3) + spread * bl_rng_normal(&r));
            xy[p][2 * i + 1] = (float)(10 * sin(2 * M_PI * cls[i] / 3) + spread * bl_rng_normal(&r));
        }
    xy[0][10] = NAN; xy[1][21] = INFINITY;
    bl_plot_panel panels[4] = {{"LoRA, step 0", xy[0], cls, NP}, {"LoRA, step 100", xy[1], cls, NP},
                               {"BA-LoRA, step 0", xy[2], cls, NP}, {"BA-LoRA, step 100", xy[3], cls, NP}};
    const char *cn[3] = {"negative", "positive", "neutral"};
    bl_plot_scatter_spec ss = {"t-SNE of features", 4, panels, 3, cn, 2, 0, 0};
    snprintf(png, sizeof png, "%s/scatter.png", dir);
    snprintf(svg, sizeof svg, "%s/scatter.svg", dir);
    CHECK_OK(bl_plot_scatter(png, &ss));
    CHECK_OK(bl_plot_scatter(svg, &ss));
    check_svg(svg);
    int W = 20 + 300 * 2, H = 40 + 30 + 10 + 300 * 2;
    for (int k = 0; k < 3; k++) {
        long n = count_pixels(png, W, H, k, 0, 40, W, H - 40);
        CHECK(n > 1000, "scatter: class %d has %ld pixels", k, n);
    }
    /* one panel, no classes, an empty panel */
    bl_plot_panel p2[2] = {{NULL, xy[0], NULL, NP}, {"empty", NULL, NULL, 0}};
    bl_plot_scatter_spec ss2 = {NULL, 2, p2, 0, NULL, 0, 640, 320};
    snprintf(png, sizeof png, "%s/scatter_plain.png", dir);
    CHECK_OK(bl_plot_scatter(png, &ss2));
    CHECK(count_pixels(png, 640, 320, -1, 0, 0, 320, 320) > 1000, "plain scatter not drawn");

    /* ---- bad arguments ---- */
    snprintf(png, sizeof png, "%s/x.jpg", dir);
    CHECK_FAILS(bl_plot_lines(png, &ls, s, 3), BALORA_STATUS_INVALID, "end the path with .png or .svg");
    snprintf(png, sizeof png, "%s/x.png", dir);
    CHECK_FAILS(bl_plot_lines(png, &ls, s, 0), BALORA_STATUS_INVALID, "1..64 series");
    bl_plot_series sn = {"broken", NULL, NULL, 5, NULL};
    CHECK_FAILS(bl_plot_lines(png, &ls, &sn, 1), BALORA_STATUS_INVALID, "'broken'");
    ls.width = 50;
    CHECK_FAILS(bl_plot_lines(png, &ls, s, 3), BALORA_STATUS_INVALID, "100..8000");
    bs.n_groups = 0;
    CHECK_FAILS(bl_plot_bars(png, &bs), BALORA_STATUS_INVALID, "1..64");
    ss.n_panels = 0;
    CHECK_FAILS(bl_plot_scatter(png, &ss), BALORA_STATUS_INVALID, "1..64 panels");
    CHECK_FAILS(bl_plot_scatter(png, NULL), BALORA_STATUS_INVALID, "NULL");
    snprintf(png, sizeof png, "%s/no/such/dir/x.png", dir);
    CHECK(bl_plot_scatter(png, &ss2) == BALORA_STATUS_IO, "writing into a missing folder: %s", balora_last_error());
    CHECK(!bl_file_exists(png), "a file appeared");
    return t_finish();
}
