/* Line, bar and scatter charts with cairo (see plot.h). */
#include "lab/plot.h"
#include <cairo/cairo-svg.h>
#include <cairo/cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const uint8_t k_palette[10][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189},
                                         {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
void bl_plot_color(int32_t i, uint8_t rgb[3]) {
    int k = ((i % 10) + 10) % 10;
    memcpy(rgb, k_palette[k], 3);
}
static void set_color(cairo_t *cr, int32_t i, double alpha) {
    uint8_t c[3];
    bl_plot_color(i, c);
    cairo_set_source_rgba(cr, c[0] / 255.0, c[1] / 255.0, c[2] / 255.0, alpha);
}

/* ---- canvas: a PNG image surface or an SVG stream, written atomically at the end ---- */
typedef struct membuf { unsigned char *data; size_t len, cap; bool failed; } membuf;
static cairo_status_t mem_write(void *closure, const unsigned char *data, unsigned int len) {
    membuf *m = closure;
    if (m->len + len > m->cap) {
        size_t cap = m->cap ? m->cap : 65536;
        while (cap < m->len + len) cap *= 2;
        unsigned char *p = realloc(m->data, cap);
        if (!p) { m->failed = true; return CAIRO_STATUS_NO_MEMORY; }
        m->data = p;
        m->cap = cap;
    }
    memcpy(m->data + m->len, data, len);
    m->len += len;
    return CAIRO_STATUS_SUCCESS;
}

typedef struct canvas {
    cairo_surface_t *surf;
    cairo_t *cr;
    bool svg;
    const char *path;
    int w, h;
    membuf buf;
} canvas;

static const char *ext_of(const char *path) {
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    return (dot && (!slash || dot > slash)) ? dot : "";
}

static balora_status canvas_open(canvas *c, const char *path, int w, int h, const char *what) {
    memset(c, 0, sizeof *c);
    if (!path || !*path) return bl_fail(BALORA_STATUS_INVALID, "%s: output path is empty", what);
    const char *e = ext_of(path);
    if (strcasecmp(e, ".png") == 0) c->svg = false;
    else if (strcasecmp(e, ".svg") == 0) c->svg = true;
    else return bl_fail(BALORA_STATUS_INVALID, "%s: '%s': unknown picture format '%s'; hint: end the path with .png or .svg", what, path, e);
    if (w < 100 || w > 8000 || h < 100 || h > 8000)
        return bl_fail(BALORA_STATUS_INVALID, "%s: size %d x %d; hint: width and height must be 100..8000", what, w, h);
    c->path = path;
    c->w = w;
    c->h = h;
    c->surf = c->svg ? cairo_svg_surface_create_for_stream(mem_write, &c->buf, w, h)
                     : cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    if (cairo_surface_status(c->surf) != CAIRO_STATUS_SUCCESS) {
        balora_status st = bl_fail(BALORA_STATUS_NOMEM, "%s: cannot create a %d x %d surface: %s", what, w, h,
                                   cairo_status_to_string(cairo_surface_status(c->surf)));
        cairo_surface_destroy(c->surf);
        free(c->buf.data);
        return st;
    }
    c->cr = cairo_create(c->surf);
    cairo_set_source_rgb(c->cr, 1, 1, 1);
    cairo_paint(c->cr);
    cairo_select_font_face(c->cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    return BALORA_STATUS_OK;
}

static balora_status canvas_close(canvas *c, const char *what) {
    cairo_status_t cs = cairo_status(c->cr);
    cairo_destroy(c->cr);
    if (!c->svg && cs == CAIRO_STATUS_SUCCESS) cs = cairo_surface_write_to_png_stream(c->surf, mem_write, &c->buf);
    cairo_surface_finish(c->surf);
    if (cs == CAIRO_STATUS_SUCCESS) cs = cairo_surface_status(c->surf);
    cairo_surface_destroy(c->surf);
    balora_status st = BALORA_STATUS_OK;
    if (cs != CAIRO_STATUS_SUCCESS || c->buf.failed)
        st = bl_fail(BALORA_STATUS_INTERNAL, "%s: '%s': cairo failed: %s", what, c->path,
                     c->buf.failed ? "out of memory" : cairo_status_to_string(cs));
    else
        st = bl_file_write_atomic(c->path, c->buf.data, c->buf.len);
    free(c->buf.data);
    memset(c, 0, sizeof *c);
    return st;
}

/* ---- text ---- */
/* Draw s with its anchor at (x, y): ha 0 left / 0.5 centre / 1 right, va 0 top / 0.5 middle / 1 baseline-ish bottom. */
static void text(cairo_t *cr, double x, double y, const char *s, double size, double ha, double va, bool bold, double angle) {
    if (!s || !*s) return;
    cairo_save(cr);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
    cairo_text_extents_t te;
    cairo_text_extents(cr, s, &te);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, angle);
    cairo_move_to(cr, -te.x_bearing - ha * te.width, -te.y_bearing - va * te.height);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_show_text(cr, s);
    cairo_restore(cr);
}
static double text_width(cairo_t *cr, const char *s, double size) {
    if (!s) return 0;
    cairo_save(cr);
    cairo_set_font_size(cr, size);
    cairo_text_extents_t te;
    cairo_text_extents(cr, s, &te);
    cairo_restore(cr);
    return te.x_advance;
}

/* ---- axes with "nice" ticks ---- */
typedef struct axis { double lo, hi, step; bool log; } axis;

static double nice_step(double range, int target) {
    double raw = range / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}
/* lo/hi: finite data range (lo > hi when there is no data). */
static axis axis_make(double lo, double hi, int target, bool log_scale, bool include_zero) {
    axis a = {0, 1, 0.2, log_scale};
    if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi)) { lo = 0; hi = 1; }
    if (include_zero) { if (lo > 0) lo = 0; if (hi < 0) hi = 0; }
    if (hi - lo < 1e-12 * fmax(1, fabs(hi))) { double d = fabs(lo) > 0 ? 0.1 * fabs(lo) : 0.5; lo -= d; hi += d; }
    if (log_scale) {
        a.step = fmax(1, ceil((hi - lo) / target));
        a.lo = floor(lo);
        a.hi = ceil(hi);
        if (a.hi == a.lo) a.hi = a.lo + 1;
        return a;
    }
    a.step = nice_step(hi - lo, target);
    a.lo = floor(lo / a.step + 1e-9) * a.step;
    a.hi = ceil(hi / a.step - 1e-9) * a.step;
    return a;
}
static void tick_label(const axis *a, double v, char *buf, size_t cap) {
    if (a->log) { snprintf(buf, cap, "%g", pow(10, v)); return; }
    if (fabs(v) < a->step * 1e-6) v = 0;
    double m = fmax(fabs(a->lo), fabs(a->hi));
    if (m >= 1e6 || a->step < 1e-4) { snprintf(buf, cap, "%.3g", v); return; }
    int dec = a->step >= 1 ? 0 : (int)ceil(-log10(a->step) - 1e-9);
    if (dec > 6) dec = 6;
    snprintf(buf, cap, "%.*f", dec, v);
}

typedef struct frame { double x0, y0, x1, y1; axis ax, ay; } frame; /* plot area in device units */
static double fx(const frame *f, double v) { return f->x0 + (v - f->ax.lo) / (f->ax.hi - f->ax.lo) * (f->x1 - f->x0); }
static double fy(const frame *f, double v) { return f->y1 - (v - f->ay.lo) / (f->ay.hi - f->ay.lo) * (f->y1 - f->y0); }

/* Grid, frame, ticks and tick labels (x ticks only when draw_x). */
static void draw_axes(cairo_t *cr, const frame *f, bool draw_x) {
    char buf[64];
    cairo_set_line_width(cr, 1);
    for (int pass = 0; pass < 2; pass++) {
        int nt = (int)floor((f->ay.hi - f->ay.lo) / f->ay.step + 1e-6);
        for (int i = 0; i <= nt && i <= 200; i++) {
            double v = f->ay.lo + i * f->ay.step, y = round(fy(f, v)) + 0.5;
            if (pass == 0) {
                cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
                cairo_move_to(cr, f->x0, y); cairo_line_to(cr, f->x1, y); cairo_stroke(cr);
            } else {
                cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
                cairo_move_to(cr, f->x0 - 5, y); cairo_line_to(cr, f->x0, y); cairo_stroke(cr);
                tick_label(&f->ay, v, buf, sizeof buf);
                text(cr, f->x0 - 8, y, buf, 11, 1, 0.5, false, 0);
            }
        }
        if (!draw_x) continue;
        nt = (int)floor((f->ax.hi - f->ax.lo) / f->ax.step + 1e-6);
        for (int i = 0; i <= nt && i <= 200; i++) {
            double v = f->ax.lo + i * f->ax.step, x = round(fx(f, v)) + 0.5;
            if (pass == 0) {
                cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
                cairo_move_to(cr, x, f->y0); cairo_line_to(cr, x, f->y1); cairo_stroke(cr);
            } else {
                cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
                cairo_move_to(cr, x, f->y1); cairo_line_to(cr, x, f->y1 + 5); cairo_stroke(cr);
                tick_label(&f->ax, v, buf, sizeof buf);
                text(cr, x, f->y1 + 8, buf, 11, 0.5, 0, false, 0);
            }
        }
    }
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_rectangle(cr, f->x0 + 0.5, f->y0 + 0.5, f->x1 - f->x0 - 1, f->y1 - f->y0 - 1);
    cairo_stroke(cr);
}

/* Legend of n entries at (x, y) going down; marker 0 = line, 1 = box, 2 = dot. */
static void draw_legend(cairo_t *cr, double x, double y, const char *const *names, int n, int marker) {
    char fallback[32];
    for (int i = 0; i < n; i++) {
        double yy = y + i * 20;
        set_color(cr, i, 1);
        if (marker == 0) { cairo_set_line_width(cr, 2.5); cairo_move_to(cr, x, yy); cairo_line_to(cr, x + 22, yy); cairo_stroke(cr); }
        else if (marker == 1) { cairo_rectangle(cr, x + 4, yy - 6, 14, 12); cairo_fill(cr); }
        else { cairo_arc(cr, x + 11, yy, 4.5, 0, 2 * M_PI); cairo_fill(cr); }
        const char *s = names ? names[i] : NULL;
        if (!s) { snprintf(fallback, sizeof fallback, "series %d", i + 1); s = fallback; }
        text(cr, x + 30, yy, s, 12, 0, 0.5, false, 0);
    }
}

static void default_size(int32_t *w, int32_t *h, int32_t dw, int32_t dh) {
    if (*w == 0) *w = dw;
    if (*h == 0) *h = dh;
}

/* ---- line chart ---- */
balora_status bl_plot_lines(const char *path, const bl_plot_lines_spec *spec, const bl_plot_series *series, int32_t n_series) {
    const char *what = "line plot";
    if (!spec) return bl_fail(BALORA_STATUS_INVALID, "%s: spec is NULL", what);
    if (n_series < 1 || n_series > 64 || !series)
        return bl_fail(BALORA_STATUS_INVALID, "%s: %d series; hint: pass 1..64 series", what, n_series);
    for (int s = 0; s < n_series; s++)
        if (series[s].n < 0 || (series[s].n > 0 && !series[s].y))
            return bl_fail(BALORA_STATUS_INVALID, "%s: series %d ('%s') has n = %lld and y = %p; hint: y must hold n values",
                           what, s, series[s].name ? series[s].name : "", (long long)series[s].n, (const void *)series[s].y);
    int32_t w = spec->width, h = spec->height;
    default_size(&w, &h, 800, 500);
    canvas c;
    BL_TRY(canvas_open(&c, path, w, h, what));
    cairo_t *cr = c.cr;
    /* data range */
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int s = 0; s < n_series; s++)
        for (int64_t i = 0; i < series[s].n; i++) {
            double x = series[s].x ? series[s].x[i] : (double)i, y = series[s].y[i];
            if (spec->log_y) y = y > 0 ? log10(y) : NAN;
            if (!isfinite(x) || !isfinite(y)) continue;
            xlo = fmin(xlo, x); xhi = fmax(xhi, x); ylo = fmin(ylo, y); yhi = fmax(yhi, y);
        }
    bool any = xlo <= xhi;
    const char *names[64];
    char fallback[64][24];
    double legend_w = 0;
    for (int s = 0; s < n_series; s++) {
        names[s] = series[s].name;
        if (!names[s]) { snprintf(fallback[s], sizeof fallback[s], "series %d", s + 1); names[s] = fallback[s]; }
        legend_w = fmax(legend_w, text_width(cr, names[s], 12));
    }
    legend_w = fmin(legend_w + 50, w * 0.35);
    frame f = {75, spec->title ? 45 : 20, w - legend_w - 10, h - 55, {0, 0, 0, false}, {0, 0, 0, false}};
    f.ax = axis_make(xlo, xhi, 8, false, false);
    if (any) { double pad = 0.03 * (yhi - ylo); ylo -= pad; yhi += pad; } /* keep lines off the frame */
    f.ay = axis_make(ylo, yhi, 6, spec->log_y, false);
    draw_axes(cr, &f, true);
    cairo_save(cr);
    cairo_rectangle(cr, f.x0, f.y0, f.x1 - f.x0, f.y1 - f.y0);
    cairo_clip(cr);
    cairo_set_line_width(cr, 2);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    for (int s = 0; s < n_series; s++) {
        set_color(cr, s, 1);
        bool pen = false;
        int64_t run = 0;
        for (int64_t i = 0; i < series[s].n; i++) {
            double x = series[s].x ? series[s].x[i] : (double)i, y = series[s].y[i];
            if (spec->log_y) y = y > 0 ? log10(y) : NAN;
            if (!isfinite(x) || !isfinite(y)) {
                if (pen && run == 1) { double cx, cy; cairo_get_current_point(cr, &cx, &cy); cairo_arc(cr, cx, cy, 2, 0, 2 * M_PI); cairo_fill(cr); }
                pen = false; run = 0;
                continue;
            }
            if (pen) cairo_line_to(cr, fx(&f, x), fy(&f, y));
            else cairo_move_to(cr, fx(&f, x), fy(&f, y));
            pen = true;
            run++;
        }
        if (pen && run == 1) { double cx, cy; cairo_get_current_point(cr, &cx, &cy); cairo_arc(cr, cx, cy, 2.5, 0, 2 * M_PI); cairo_fill(cr); }
        cairo_stroke(cr);
    }
    cairo_restore(cr);
    if (!any) text(cr, (f.x0 + f.x1) / 2, (f.y0 + f.y1) / 2, "no data", 14, 0.5, 0.5, false, 0);
    text(cr, w / 2.0, 12, spec->title, 16, 0.5, 0, true, 0);
    text(cr, (f.x0 + f.x1) / 2, h - 8, spec->xlabel, 13, 0.5, 1, false, 0);
    text(cr, 14, (f.y0 + f.y1) / 2, spec->ylabel, 13, 0.5, 0, false, -M_PI / 2);
    draw_legend(cr, f.x1 + 15, f.y0 + 12, names, n_series, 0);
    return canvas_close(&c, what);
}

/* ---- grouped bars with error bars ---- */
balora_status bl_plot_bars(const char *path, const bl_plot_bars_spec *spec) {
    const char *what = "bar plot";
    if (!spec) return bl_fail(BALORA_STATUS_INVALID, "%s: spec is NULL", what);
    if (spec->n_groups < 1 || spec->n_groups > 64 || spec->n_series < 1 || spec->n_series > 64 || !spec->mean)
        return bl_fail(BALORA_STATUS_INVALID, "%s: %d groups x %d series, mean %p; hint: 1..64 of each and a mean array",
                       what, spec->n_groups, spec->n_series, (const void *)spec->mean);
    int32_t w = spec->width, h = spec->height;
    default_size(&w, &h, 800, 500);
    canvas c;
    BL_TRY(canvas_open(&c, path, w, h, what));
    cairo_t *cr = c.cr;
    const int G = spec->n_groups, S = spec->n_series;
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < G * S; i++) {
        double m = spec->mean[i], e = spec->err ? fabs(spec->err[i]) : 0;
        if (!isfinite(m)) continue;
        if (!isfinite(e)) e = 0;
        lo = fmin(lo, m - e); hi = fmax(hi, m + e);
    }
    double legend_w = 0;
    if (spec->series_names)
        for (int s = 0; s < S; s++) legend_w = fmax(legend_w, text_width(cr, spec->series_names[s] ? spec->series_names[s] : "series 00", 12));
    legend_w = spec->series_names ? fmin(legend_w + 50, w * 0.35) : 0;
    frame f = {75, spec->title ? 45 : 20, w - legend_w - 15, h - 45, {0, 0, 0, false}, {0, 0, 0, false}};
    f.ay = axis_make(lo, hi, 6, false, true);
    f.ax = (axis){0, G, 1, false};
    draw_axes(cr, &f, false);
    const double gw = (f.x1 - f.x0) / G, bw = gw * 0.8 / S;
    cairo_save(cr);
    cairo_rectangle(cr, f.x0, f.y0, f.x1 - f.x0, f.y1 - f.y0);
    cairo_clip(cr);
    for (int g = 0; g < G; g++)
        for (int s = 0; s < S; s++) {
            double m = spec->mean[g * S + s], x = f.x0 + g * gw + gw * 0.1 + s * bw;
            if (!isfinite(m)) {
                cairo_restore(cr);
                text(cr, x + bw / 2, fy(&f, 0) - 3, "n/a", 9, 0.5, 1, false, 0);
                cairo_save(cr);
                cairo_rectangle(cr, f.x0, f.y0, f.x1 - f.x0, f.y1 - f.y0);
                cairo_clip(cr);
                continue;
            }
            double y0 = fy(&f, 0), y1 = fy(&f, m);
            set_color(cr, s, 0.9);
            cairo_rectangle(cr, x + 1, fmin(y0, y1), bw - 2, fabs(y1 - y0));
            cairo_fill(cr);
            double e = spec->err ? fabs(spec->err[g * S + s]) : NAN;
            if (isfinite(e) && e > 0) {
                double cx = x + bw / 2, cap = fmin(bw * 0.25, 6);
                cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
                cairo_set_line_width(cr, 1.5);
                cairo_move_to(cr, cx, fy(&f, m - e)); cairo_line_to(cr, cx, fy(&f, m + e));
                cairo_move_to(cr, cx - cap, fy(&f, m - e)); cairo_line_to(cr, cx + cap, fy(&f, m - e));
                cairo_move_to(cr, cx - cap, fy(&f, m + e)); cairo_line_to(cr, cx + cap, fy(&f, m + e));
                cairo_stroke(cr);
            }
        }
    cairo_restore(cr);
    /* zero line and group labels */
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_set_line_width(cr, 1);
    cairo_move_to(cr, f.x0, round(fy(&f, 0)) + 0.5); cairo_line_to(cr, f.x1, round(fy(&f, 0)) + 0.5); cairo_stroke(cr);
    if (spec->group_names)
        for (int g = 0; g < G; g++) text(cr, f.x0 + (g + 0.5) * gw, f.y1 + 8, spec->group_names[g], 12, 0.5, 0, false, 0);
    if (lo > hi) text(cr, (f.x0 + f.x1) / 2, (f.y0 + f.y1) / 2, "no data", 14, 0.5, 0.5, false, 0);
    text(cr, w / 2.0, 12, spec->title, 16, 0.5, 0, true, 0);
    text(cr, 14, (f.y0 + f.y1) / 2, spec->ylabel, 13, 0.5, 0, false, -M_PI / 2);
    if (spec->series_names) draw_legend(cr, f.x1 + 15, f.y0 + 12, spec->series_names, S, 1);
    return canvas_close(&c, what);
}

/* ---- small multiples of scatter plots ---- */
balora_status bl_plot_scatter(const char *path, const bl_plot_scatter_spec *spec) {
    const char *what = "scatter plot";
    if (!spec) return bl_fail(BALORA_STATUS_INVALID, "%s: spec is NULL", what);
    if (spec->n_panels < 1 || spec->n_panels > 64 || !spec->panels)
        return bl_fail(BALORA_STATUS_INVALID, "%s: %d panels; hint: pass 1..64 panels", what, spec->n_panels);
    if (spec->n_classes < 0 || spec->n_classes > 64)
        return bl_fail(BALORA_STATUS_INVALID, "%s: %d classes; hint: 0..64", what, spec->n_classes);
    for (int p = 0; p < spec->n_panels; p++)
        if (spec->panels[p].n < 0 || (spec->panels[p].n > 0 && !spec->panels[p].xy))
            return bl_fail(BALORA_STATUS_INVALID, "%s: panel %d has n = %lld and xy = %p; hint: xy must hold n points",
                           what, p, (long long)spec->panels[p].n, (const void *)spec->panels[p].xy);
    const int P = spec->n_panels;
    int cols = spec->cols > 0 ? spec->cols : (int)ceil(sqrt((double)P));
    if (cols > P) cols = P;
    const int rows = (P + cols - 1) / cols;
    const double top = spec->title ? 40 : 10, legend_h = spec->class_names && spec->n_classes ? 30 : 0;
    int32_t w = spec->width, h = spec->height;
    default_size(&w, &h, 20 + 300 * cols, (int32_t)(top + legend_h + 10 + 300 * rows));
    canvas c;
    BL_TRY(canvas_open(&c, path, w, h, what));
    cairo_t *cr = c.cr;
    const double cw = (w - 20.0) / cols, ch = (h - top - legend_h - 10.0) / rows;
    for (int p = 0; p < P; p++) {
        const bl_plot_panel *pn = &spec->panels[p];
        double px = 10 + (p % cols) * cw, py = top + (p / cols) * ch;
        double x0 = px + 8, y0 = py + 24, x1 = px + cw - 8, y1 = py + ch - 8;
        text(cr, (x0 + x1) / 2, py + 6, pn->title, 13, 0.5, 0, false, 0);
        cairo_set_source_rgb(cr, 0.5, 0.5, 0.5);
        cairo_set_line_width(cr, 1);
        cairo_rectangle(cr, x0 + 0.5, y0 + 0.5, x1 - x0 - 1, y1 - y0 - 1);
        cairo_stroke(cr);
        double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
        for (int64_t i = 0; i < pn->n; i++) {
            double x = pn->xy[2 * i], y = pn->xy[2 * i + 1];
            if (!isfinite(x) || !isfinite(y)) continue;
            xlo = fmin(xlo, x); xhi = fmax(xhi, x); ylo = fmin(ylo, y); yhi = fmax(yhi, y);
        }
        if (xlo > xhi) { text(cr, (x0 + x1) / 2, (y0 + y1) / 2, "no data", 12, 0.5, 0.5, false, 0); continue; }
        /* equal aspect: one scale for both axes, centred */
        double span = fmax(fmax(xhi - xlo, yhi - ylo), 1e-12), pad = 12;
        double scale = fmin(x1 - x0 - 2 * pad, y1 - y0 - 2 * pad) / span;
        double cx = (x0 + x1) / 2, cy = (y0 + y1) / 2, mx = (xlo + xhi) / 2, my = (ylo + yhi) / 2;
        double r = pn->n > 2000 ? 1.5 : pn->n > 500 ? 2.2 : 3;
        cairo_save(cr);
        cairo_rectangle(cr, x0, y0, x1 - x0, y1 - y0);
        cairo_clip(cr);
        for (int64_t i = 0; i < pn->n; i++) {
            double x = pn->xy[2 * i], y = pn->xy[2 * i + 1];
            if (!isfinite(x) || !isfinite(y)) continue;
            int32_t k = pn->cls ? pn->cls[i] : -1;
            if (k >= 0 && k < (spec->n_classes ? spec->n_classes : 64)) set_color(cr, k, 0.8);
            else cairo_set_source_rgba(cr, 0.6, 0.6, 0.6, 0.8);
            cairo_new_sub_path(cr);
            cairo_arc(cr, cx + (x - mx) * scale, cy - (y - my) * scale, r, 0, 2 * M_PI);
            cairo_fill(cr);
        }
        cairo_restore(cr);
    }
    text(cr, w / 2.0, 10, spec->title, 16, 0.5, 0, true, 0);
    if (legend_h > 0) {
        /* one row of legend entries, centred */
        double total = 0, ly = h - legend_h / 2 - 4;
        for (int k = 0; k < spec->n_classes; k++) total += 40 + text_width(cr, spec->class_names[k] ? spec->class_names[k] : "?", 12);
        double x = fmax(10, (w - total) / 2);
        for (int k = 0; k < spec->n_classes; k++) {
            const char *nm = spec->class_names[k] ? spec->class_names[k] : "?";
            set_color(cr, k, 1);
            cairo_arc(cr, x + 8, ly, 5, 0, 2 * M_PI);
            cairo_fill(cr);
            text(cr, x + 18, ly, nm, 12, 0, 0.5, false, 0);
            x += 40 + text_width(cr, nm, 12);
        }
    }
    return canvas_close(&c, what);
}
