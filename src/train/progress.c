/* Progress line and metrics log (see progress.h). */
#include "train/progress.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void bl_format_duration(double s, char *buf, size_t cap) {
    if (!isfinite(s) || s < 0) { snprintf(buf, cap, "--:--"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, cap, "%02ld:%02ld", t / 60, t % 60);
}

void bl_progress_format(const bl_progress *p, char *buf, size_t cap) {
    char el[32], eta[32];
    bl_format_duration(p->elapsed_s, el, sizeof el);
    bl_format_duration(p->eta_s, eta, sizeof eta);
    int pct = p->total_steps > 0 ? (int)(100 * p->step / p->total_steps) : 0;
    int n = snprintf(buf, cap, "step %lld/%lld (%d%%) | epoch %.2f | loss %.4f | lr %.2e | %.0f tok/s | %s elapsed | ETA %s",
                     (long long)p->step, (long long)p->total_steps, pct, p->epoch, p->loss, p->lr, p->tokens_per_s, el, eta);
    for (int i = 0; i < p->n_extra && n > 0 && (size_t)n < cap; i++)
        n += snprintf(buf + n, cap - (size_t)n, " | %s %.4g", p->extra_names[i], p->extra[i]);
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* The step of one log row, or -1 (header or unreadable). */
static int64_t row_step(const char *line, size_t n, bool csv) {
    if (csv) {
        char *end;
        long long v = strtoll(line, &end, 10);
        return end != line && (size_t)(end - line) <= n && (*end == ',' || *end == '\n') ? v : -1;
    }
    cJSON *o = cJSON_ParseWithLength(line, n);
    const cJSON *s = o ? cJSON_GetObjectItemCaseSensitive(o, "step") : NULL;
    int64_t v = cJSON_IsNumber(s) ? (int64_t)s->valuedouble : -1;
    cJSON_Delete(o);
    return v;
}

balora_status bl_metrics_open(bl_metrics_log *m, const char *path, int n_extra, const char *const *extra_names, int64_t resume_step) {
    memset(m, 0, sizeof *m);
    if (strlen(path) >= sizeof m->path) return bl_fail(BALORA_STATUS_INVALID, "--log: path too long");
    snprintf(m->path, sizeof m->path, "%s", path);
    m->csv = ends_with(path, ".csv") || ends_with(path, ".CSV");
    m->n_extra = n_extra;
    char *old = NULL;
    size_t old_len = 0;
    if (resume_step > 0 && bl_file_exists(path)) BL_TRY(bl_file_read(path, &old, &old_len));
    m->f = fopen(path, "wb");
    if (!m->f) { free(old); return bl_fail(BALORA_STATUS_IO, "%s: cannot write the metrics log: %s", path, strerror(errno)); }
    bool header = false;
    if (old) { /* keep the header and the rows up to the checkpoint */
        size_t pos = 0;
        while (pos < old_len) {
            char *s = old + pos, *nl = memchr(s, '\n', old_len - pos);
            size_t n = nl ? (size_t)(nl - s) : old_len - pos;
            pos += n + 1;
            int64_t st = row_step(s, n, m->csv);
            bool is_header = m->csv && st < 0 && strncmp(s, "step,", 5) == 0;
            if (is_header && !header) header = true;
            else if (!(st >= 1 && st <= resume_step)) continue;
            fwrite(s, 1, n, m->f);
            fputc('\n', m->f);
        }
        free(old);
    }
    if (m->csv && !header) {
        fprintf(m->f, "step,epoch,loss,task_loss,lr,grad_norm,tokens,tokens_per_s,elapsed_s");
        for (int i = 0; i < n_extra; i++) fprintf(m->f, ",%s", extra_names[i]);
        fputc('\n', m->f);
    }
    if (fflush(m->f) != 0) return bl_fail(BALORA_STATUS_IO, "%s: write failed: %s", path, strerror(errno));
    return BALORA_STATUS_OK;
}

balora_status bl_metrics_write(bl_metrics_log *m, const bl_progress *p) {
    if (!m->f) return BALORA_STATUS_OK;
    if (m->csv) {
        fprintf(m->f, "%lld,%.6f,%.9g,%.9g,%.9g,%.9g,%lld,%.3f,%.3f", (long long)p->step, p->epoch, p->loss, p->task_loss, p->lr,
                p->grad_norm, (long long)p->tokens, p->tokens_per_s, p->elapsed_s);
        for (int i = 0; i < p->n_extra; i++) fprintf(m->f, ",%.9g", p->extra[i]);
        fputc('\n', m->f);
    } else {
        cJSON *o = cJSON_CreateObject();
        if (!o) return bl_fail(BALORA_STATUS_NOMEM, "metrics log: out of memory");
        cJSON_AddNumberToObject(o, "step", (double)p->step);
        cJSON_AddNumberToObject(o, "epoch", p->epoch);
        cJSON_AddNumberToObject(o, "loss", p->loss);
        cJSON_AddNumberToObject(o, "task_loss", p->task_loss);
        cJSON_AddNumberToObject(o, "lr", p->lr);
        cJSON_AddNumberToObject(o, "grad_norm", p->grad_norm);
        cJSON_AddNumberToObject(o, "tokens", (double)p->tokens);
        cJSON_AddNumberToObject(o, "tokens_per_s", p->tokens_per_s);
        cJSON_AddNumberToObject(o, "elapsed_s", p->elapsed_s);
        for (int i = 0; i < p->n_extra; i++) cJSON_AddNumberToObject(o, p->extra_names[i], p->extra[i]);
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!s) return bl_fail(BALORA_STATUS_NOMEM, "metrics log: out of memory");
        fprintf(m->f, "%s\n", s);
        free(s);
    }
    if (fflush(m->f) != 0 || ferror(m->f)) return bl_fail(BALORA_STATUS_IO, "%s: write failed: %s", m->path, strerror(errno));
    return BALORA_STATUS_OK;
}

void bl_metrics_close(bl_metrics_log *m) {
    if (m->f) fclose(m->f);
    m->f = NULL;
}
