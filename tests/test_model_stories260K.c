/* The real pretrained tiny model ../shared/models/stories260K/stories260K.bin (llama2.c format):
 *  1. balora's loader (bl_model_load_llama2c: wq/wk rows permuted to the rotate-half layout) gives
 *     the logits transformers gives (../shared/golden/stories260K/io.safetensors), within the
 *     golden tolerance;
 *  2. an independent, slow, obviously-correct forward written here — double precision, one token
 *     at a time with a key/value cache, reading the .bin directly in llama2.c's own interleaved
 *     RoPE layout (no permutation) — agrees with balora's logits;
 *  3. greedy decoding from BOS reproduces greedy_from_bos exactly;
 *  4. truncated and malformed checkpoints fail cleanly. */
#include "harness.h"
#include "io/safetensors.h"
#include "model/model.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ reference forward */
typedef struct ref {
    int dim, hidden, L, H, Hkv, V, T, hs, kvd;
    const float *emb, *rms_att, *wq, *wk, *wv, *wo, *rms_ffn, *w1, *w2, *w3, *rms_final, *wcls;
} ref;

static void ref_open(ref *r, const char *buf) {
    const int *h = (const int *)buf;
    r->dim = h[0]; r->hidden = h[1]; r->L = h[2]; r->H = h[3]; r->Hkv = h[4]; r->V = abs(h[5]); r->T = h[6];
    r->hs = r->dim / r->H; r->kvd = r->Hkv * r->hs;
    const float *f = (const float *)(buf + 28);
    long d = r->dim, L = r->L;
    r->emb = f; f += (long)r->V * d;
    r->rms_att = f; f += L * d;
    r->wq = f; f += L * d * d;
    r->wk = f; f += L * r->kvd * d;
    r->wv = f; f += L * r->kvd * d;
    r->wo = f; f += L * d * d;
    r->rms_ffn = f; f += L * d;
    r->w1 = f; f += L * r->hidden * d;
    r->w2 = f; f += L * d * r->hidden;
    r->w3 = f; f += L * r->hidden * d;
    r->rms_final = f; f += d;
    f += (long)r->T * r->hs; /* freq_cis_real + imag */
    r->wcls = h[5] > 0 ? r->emb : f;
}

static void matvec(double *y, const float *W, const double *x, int out, int in) {
    for (int i = 0; i < out; i++) {
        double s = 0;
        for (int j = 0; j < in; j++) s += (double)W[(long)i * in + j] * x[j];
        y[i] = s;
    }
}
static void rmsnorm(double *y, const double *x, const float *w, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i] * x[i];
    double rs = 1.0 / sqrt(s / n + 1e-5);
    for (int i = 0; i < n; i++) y[i] = x[i] * rs * w[i];
}

/* logits [T, V] for one sequence */
static void ref_forward(const ref *r, const int64_t *toks, int T, float *logits) {
    int d = r->dim, hs = r->hs, kvd = r->kvd;
    double *x = calloc(d, sizeof(double)), *xb = calloc(d, sizeof(double)), *q = calloc(d, sizeof(double));
    double *kc = calloc((size_t)r->L * T * kvd, sizeof(double)), *vc = calloc((size_t)r->L * T * kvd, sizeof(double));
    double *att = calloc(T, sizeof(double)), *h1 = calloc(r->hidden, sizeof(double)), *h3 = calloc(r->hidden, sizeof(double));
    double *lg = calloc(r->V, sizeof(double)), *tmp = calloc(d > r->hidden ? d : r->hidden, sizeof(double));
    for (int pos = 0; pos < T; pos++) {
        for (int i = 0; i < d; i++) x[i] = r->emb[toks[pos] * d + i];
        for (int l = 0; l < r->L; l++) {
            rmsnorm(xb, x, r->rms_att + (long)l * d, d);
            double *k = kc + ((long)l * T + pos) * kvd, *v = vc + ((long)l * T + pos) * kvd;
            matvec(q, r->wq + (long)l * d * d, xb, d, d);
            matvec(k, r->wk + (long)l * kvd * d, xb, kvd, d);
            matvec(v, r->wv + (long)l * kvd * d, xb, kvd, d);
            for (int i = 0; i < d; i += 2) { /* llama2.c RoPE: rotate interleaved pairs */
                double fr = 1.0 / pow(10000.0, (double)(i % hs) / hs), c = cos(pos * fr), s = sin(pos * fr);
                double a = q[i], b = q[i + 1];
                q[i] = a * c - b * s; q[i + 1] = a * s + b * c;
                if (i < kvd) { a = k[i]; b = k[i + 1]; k[i] = a * c - b * s; k[i + 1] = a * s + b * c; }
            }
            for (int h = 0; h < r->H; h++) {
                int kh = h / (r->H / r->Hkv);
                double mx = -1e300, sum = 0;
                for (int t = 0; t <= pos; t++) {
                    const double *kt = kc + ((long)l * T + t) * kvd + kh * hs;
                    double s = 0;
                    for (int i = 0; i < hs; i++) s += q[h * hs + i] * kt[i];
                    att[t] = s / sqrt((double)hs);
                    if (att[t] > mx) mx = att[t];
                }
                for (int t = 0; t <= pos; t++) { att[t] = exp(att[t] - mx); sum += att[t]; }
                for (int i = 0; i < hs; i++) {
                    double o = 0;
                    for (int t = 0; t <= pos; t++) o += att[t] / sum * vc[((long)l * T + t) * kvd + kh * hs + i];
                    xb[h * hs + i] = o;
                }
            }
            matvec(tmp, r->wo + (long)l * d * d, xb, d, d);
            for (int i = 0; i < d; i++) x[i] += tmp[i];
            rmsnorm(xb, x, r->rms_ffn + (long)l * d, d);
            matvec(h1, r->w1 + (long)l * r->hidden * d, xb, r->hidden, d);
            matvec(h3, r->w3 + (long)l * r->hidden * d, xb, r->hidden, d);
            for (int i = 0; i < r->hidden; i++) h1[i] = h1[i] / (1.0 + exp(-h1[i])) * h3[i];
            matvec(tmp, r->w2 + (long)l * d * r->hidden, h1, d, r->hidden);
            for (int i = 0; i < d; i++) x[i] += tmp[i];
        }
        rmsnorm(xb, x, r->rms_final, d);
        matvec(lg, r->wcls, xb, r->V, d);
        for (int i = 0; i < r->V; i++) logits[(long)pos * r->V + i] = (float)lg[i];
    }
    free(x); free(xb); free(q); free(kc); free(vc); free(att); free(h1); free(h3); free(lg); free(tmp);
}

int main(void) {
    const char *shared = t_require_shared();
    char bin[1024], io[1024];
    snprintf(bin, sizeof bin, "%s/models/stories260K/stories260K.bin", shared);
    snprintf(io, sizeof io, "%s/golden/stories260K/io.safetensors", shared);
    bl_model m;
    CHECK_OK(bl_model_load_llama2c(&m, bin));
    if (t_failures) return t_finish();
    CHECK(m.cfg.hidden == 64 && m.cfg.n_layer == 5 && m.cfg.n_head == 8 && m.cfg.n_kv_head == 4 && m.cfg.vocab_size == 512,
          "stories260K config");
    bl_st_file f;
    CHECK_OK(bl_st_open(&f, io));
    const bl_st_tensor *ti = bl_st_find(&f, "input_ids");
    int64_t B = ti->shape[0], T = ti->shape[1], V = m.cfg.vocab_size;
    int64_t *ids = malloc(sizeof(int64_t) * B * T);
    CHECK_OK(bl_st_tensor_to_i64(&f, ti, ids));
    float *want = malloc(sizeof(float) * B * T * V);
    int64_t shp[3] = {B, T, V};
    CHECK_OK(bl_st_read_f32(&f, "logits", 3, shp, want));

    bl_run r;
    CHECK_OK(bl_run_init(&r, &m, B, 48));
    bl_batch b = {.B = B, .T = T, .input_ids = ids};
    CHECK_OK(bl_model_forward(&r, &b, BL_ADAPTER_ON));
    CHECK(t_allclose("stories260K logits vs transformers", r.logits, want, B * T * V, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "golden");
    double mx = 0;
    for (int64_t i = 0; i < B * T * V; i++) mx = fmax(mx, fabs(r.logits[i] - want[i]));
    printf("logits vs transformers: max |diff| %.2e\n", mx);

    /* independent reference */
    char *buf; size_t len;
    CHECK_OK(bl_file_read(bin, &buf, &len));
    ref rf;
    ref_open(&rf, buf);
    float *rl = malloc(sizeof(float) * T * V);
    double mr = 0;
    for (int64_t s = 0; s < B; s++) {
        ref_forward(&rf, ids + s * T, (int)T, rl);
        CHECK(t_allclose("stories260K logits vs reference forward", r.logits + s * T * V, rl, T * V, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "ref");
        for (int64_t i = 0; i < T * V; i++) mr = fmax(mr, fabs(r.logits[s * T * V + i] - rl[i]));
        /* same next-token predictions */
        int agree = 0;
        for (int64_t t = 0; t < T; t++) {
            int64_t a = 0, c = 0;
            for (int64_t v = 1; v < V; v++) {
                if (r.logits[(s * T + t) * V + v] > r.logits[(s * T + t) * V + a]) a = v;
                if (rl[t * V + v] > rl[t * V + c]) c = v;
            }
            agree += a == c;
        }
        CHECK(agree == T, "argmax agreement %d / %lld", agree, (long long)T);
    }
    printf("logits vs reference forward: max |diff| %.2e\n", mr);

    /* greedy decoding from BOS (full recompute each step) */
    const bl_st_tensor *tg = bl_st_find(&f, "greedy_from_bos");
    int64_t G = tg->shape[1];
    int64_t *greedy = malloc(sizeof(int64_t) * G), *seq = malloc(sizeof(int64_t) * G);
    CHECK_OK(bl_st_tensor_to_i64(&f, tg, greedy));
    seq[0] = 1;
    for (int64_t t = 1; t < G; t++) {
        bl_batch g = {.B = 1, .T = t, .input_ids = seq};
        CHECK_OK(bl_model_forward(&r, &g, BL_ADAPTER_ON));
        const float *z = r.logits + (t - 1) * V;
        int64_t a = 0;
        for (int64_t v = 1; v < V; v++) if (z[v] > z[a]) a = v;
        seq[t] = a;
    }
    CHECK(memcmp(seq, greedy, sizeof(int64_t) * G) == 0, "greedy decoding from BOS matches transformers");

    /* malformed checkpoints */
    const char *tmp = t_tmpdir();
    char p1[1100];
    snprintf(p1, sizeof p1, "%s/trunc.bin", tmp);
    CHECK_OK(bl_file_write_atomic(p1, buf, len - 100));
    bl_model bad;
    CHECK_FAILS(bl_model_load_llama2c(&bad, p1), BALORA_STATUS_FORMAT, "implies");
    CHECK_OK(bl_file_write_atomic(p1, buf, 10));
    CHECK_FAILS(bl_model_load_llama2c(&bad, p1), BALORA_STATUS_FORMAT, "shorter than the 28-byte");
    int hdr[7] = {64, 172, 5, 7, 4, 512, 512}; /* 64 not divisible by 7 heads */
    memcpy(buf, hdr, sizeof hdr);
    CHECK_OK(bl_file_write_atomic(p1, buf, len));
    CHECK_FAILS(bl_model_load_llama2c(&bad, p1), BALORA_STATUS_FORMAT, "is not n_heads 7 times");
    /* an out-of-vocabulary id is an error, not a crash */
    int64_t oov[2] = {1, 512};
    bl_batch ob = {.B = 1, .T = 2, .input_ids = oov};
    CHECK_FAILS(bl_model_forward(&r, &ob, BL_ADAPTER_ON), BALORA_STATUS_INVALID, "outside [0, 512)");
    CHECK_FAILS(bl_model_backward(&r, r.logits), BALORA_STATUS_INVALID, "no forward");

    free(buf); free(rl); free(greedy); free(seq); free(ids); free(want);
    bl_run_free(&r);
    bl_st_close(&f);
    bl_model_free(&m);
    return t_finish();
}
