/* runtime/plot.c - the SVG of --plot (see plot.h).
 *
 * Plain SVG 1.1 text: per panel a frame, grid lines at "nice" ticks (1, 2
 * or 5 times a power of ten) with their numbers, one polyline per curve
 * (data-curve="NAME" says which; per-epoch curves get a dot per epoch), a
 * legend in a right-hand corner and the axis titles.  Coordinates have one
 * decimal; non-finite values are left out of a curve.
 */
#include "plot.h"

#include "files.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { WIDTH = 760, PANEL_H = 320, LEFT = 70, RIGHT = 20, TOP = 36, BOTTOM = 46 };

static const char *const LOSS_COLORS[3] = {"#1f77b4", "#ff7f0e", "#2ca02c"}; /* train, val, test */
static const char *const METRIC_COLORS[6] = {"#d62728", "#9467bd", "#2ca02c", "#8c564b", "#17becf", "#e377c2"};

/* ---- the data --------------------------------------------------------------------------- */

static bool curve_add(RtCurve *c, double x, double y) {
  if (c->n == c->cap) {
    int64_t cap = c->cap ? c->cap * 2 : 64;
    double *nx = realloc(c->x, (size_t)cap * sizeof *nx);
    if (!nx) return false;
    c->x = nx;
    double *ny = realloc(c->y, (size_t)cap * sizeof *ny);
    if (!ny) return false;
    c->y = ny, c->cap = cap;
  }
  c->x[c->n] = x, c->y[c->n++] = y;
  return true;
}

static void curve_free(RtCurve *c) {
  free(c->x);
  free(c->y);
  memset(c, 0, sizeof *c);
}

bool rt_plot_init(RtPlot *p, const char *path, const char *title, int nmetrics, const char *const *metric_names,
                  bool have_val, bool have_test) {
  memset(p, 0, sizeof *p);
  p->path = path, p->title = title, p->nmetrics = nmetrics, p->metric_names = metric_names;
  p->have_val = have_val, p->have_test = have_test;
  p->val_metric = calloc((size_t)nmetrics + 1, sizeof *p->val_metric);
  p->test_metric = calloc((size_t)nmetrics + 1, sizeof *p->test_metric);
  return p->val_metric && p->test_metric;
}

void rt_plot_free(RtPlot *p) {
  curve_free(&p->train);
  curve_free(&p->val_loss);
  curve_free(&p->test_loss);
  for (int i = 0; i < p->nmetrics && p->val_metric && p->test_metric; i++) {
    curve_free(&p->val_metric[i]);
    curve_free(&p->test_metric[i]);
  }
  free(p->val_metric);
  free(p->test_metric);
  memset(p, 0, sizeof *p);
}

int64_t rt_plot_stride(int64_t nbatches) { return nbatches <= 20 ? 1 : (nbatches + 19) / 20; }

bool rt_plot_train(RtPlot *p, double epoch, double loss) { return curve_add(&p->train, epoch, loss); }

bool rt_plot_epoch(RtPlot *p, int64_t epoch, double val_loss, const double *val_metrics, double test_loss,
                   const double *test_metrics) {
  double x = (double)epoch;
  bool ok = true;
  if (p->have_val) {
    ok &= curve_add(&p->val_loss, x, val_loss);
    for (int i = 0; i < p->nmetrics; i++) ok &= curve_add(&p->val_metric[i], x, val_metrics[i]);
  }
  if (p->have_test) {
    ok &= curve_add(&p->test_loss, x, test_loss);
    for (int i = 0; i < p->nmetrics; i++) ok &= curve_add(&p->test_metric[i], x, test_metrics[i]);
  }
  return ok;
}

/* ---- drawing ---------------------------------------------------------------------------- */

/* A curve as the panel draws it. */
typedef struct Series {
  const RtCurve *c;
  char name[96];         /* data-curve: "train_loss", "val_accuracy", ... */
  char label[96];        /* in the legend */
  const char *color;
  bool dashed, dots;     /* dots: one per point (per-epoch curves) */
} Series;

/* One axis: [lo, hi] with ticks every step. */
typedef struct Axis {
  double lo, hi, step;
} Axis;

static double nice_step(double range, int ticks) {
  double raw = range / ticks, mag = pow(10, floor(log10(raw))), f = raw / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

/* [min, max] widened to whole ticks; a flat range gets some room. */
static Axis make_axis(double min, double max, int ticks, bool whole) {
  if (!(min <= max)) min = 0, max = 1;
  if (max - min < 1e-12 * (fabs(max) + 1)) {
    double pad = fabs(max) > 0 ? fabs(max) * 0.1 : 1;
    min -= pad, max += pad;
  }
  Axis a;
  a.step = nice_step(max - min, ticks);
  if (whole && a.step < 1) a.step = 1;
  a.lo = floor(min / a.step + 1e-9) * a.step;
  a.hi = ceil(max / a.step - 1e-9) * a.step;
  return a;
}

/* v as a tick label: short, and 0 rather than -0 or 1e-17. */
static void tick_label(double v, double step, char *buf, size_t len) {
  if (fabs(v) < step * 1e-6) v = 0;
  snprintf(buf, len, "%.4g", v);
}

/* Text with the five XML specials escaped. */
static void xml_text(FILE *f, const char *s) {
  for (; s && *s; s++) {
    switch (*s) {
    case '&': fputs("&amp;", f); break;
    case '<': fputs("&lt;", f); break;
    case '>': fputs("&gt;", f); break;
    case '"': fputs("&quot;", f); break;
    case '\'': fputs("&apos;", f); break;
    default: fputc(*s, f);
    }
  }
}

/* A panel at height y0; the legend in its upper right corner, or with low
 * in its lower right (metrics rise to the upper right). */
static void draw_panel(FILE *f, double y0, const char *title, const char *ytitle, const Series *s, int ns,
                       double xmax, bool low) {
  double ymin = INFINITY, ymax = -INFINITY;
  for (int i = 0; i < ns; i++)
    for (int64_t k = 0; k < s[i].c->n; k++)
      if (isfinite(s[i].c->y[k])) ymin = fmin(ymin, s[i].c->y[k]), ymax = fmax(ymax, s[i].c->y[k]);
  Axis ax = make_axis(0, xmax, 10, true), ay = make_axis(ymin, ymax, 6, false);
  double px0 = LEFT, px1 = WIDTH - RIGHT, py0 = y0 + TOP, py1 = y0 + PANEL_H - BOTTOM;
#define SX(v) (px0 + ((v) - ax.lo) / (ax.hi - ax.lo) * (px1 - px0))
#define SY(v) (py1 - ((v) - ay.lo) / (ay.hi - ay.lo) * (py1 - py0))
  fprintf(f, "<g class=\"panel\">\n<text x=\"%d\" y=\"%.1f\" font-size=\"15\" font-weight=\"bold\">", LEFT,
          y0 + TOP - 12);
  xml_text(f, title);
  fprintf(f, "</text>\n");
  char buf[64];
  for (double v = ax.lo; v <= ax.hi + ax.step * 1e-6; v += ax.step) {
    tick_label(v, ax.step, buf, sizeof buf);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>", SX(v), py0, SX(v), py1);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>", SX(v), py1, SX(v), py1 + 5);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", SX(v), py1 + 19, buf);
  }
  for (double v = ay.lo; v <= ay.hi + ay.step * 1e-6; v += ay.step) {
    tick_label(v, ay.step, buf, sizeof buf);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>", px0, SY(v), px1, SY(v));
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>", px0 - 5, SY(v), px0, SY(v));
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", px0 - 8, SY(v) + 4, buf);
  }
  fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n", px0, py0,
          px1 - px0, py1 - py0);
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">epoch</text>\n", (px0 + px1) / 2, py1 + 38);
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 %.1f %.1f)\">%s</text>\n",
          px0 - 52, (py0 + py1) / 2, px0 - 52, (py0 + py1) / 2, ytitle);
  for (int i = 0; i < ns; i++) {
    fprintf(f, "<polyline data-curve=\"");
    xml_text(f, s[i].name);
    fprintf(f, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s points=\"", s[i].color,
            s[i].dashed ? " stroke-dasharray=\"6 3\"" : "");
    const char *sep = "";
    for (int64_t k = 0; k < s[i].c->n; k++)
      if (isfinite(s[i].c->y[k])) {
        fprintf(f, "%s%.1f,%.1f", sep, SX(s[i].c->x[k]), SY(s[i].c->y[k]));
        sep = " ";
      }
    fprintf(f, "\"/>\n");
    for (int64_t k = 0; s[i].dots && k < s[i].c->n; k++)
      if (isfinite(s[i].c->y[k]))
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>", SX(s[i].c->x[k]), SY(s[i].c->y[k]),
                s[i].color);
    if (s[i].dots && s[i].c->n) fputc('\n', f);
  }
  double lw = 150, lx = px1 - lw - 8, ly = low ? py1 - 8 - (18 * ns + 8) : py0 + 8;
  fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"white\" fill-opacity=\"0.85\" "
          "stroke=\"#bbb\"/>\n", lx, ly, lw, 18 * ns + 8);
  for (int i = 0; i < ns; i++) {
    double y = ly + 16 + 18 * i;
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>", lx + 8,
            y - 4, lx + 34, y - 4, s[i].color, s[i].dashed ? " stroke-dasharray=\"6 3\"" : "");
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">", lx + 40, y);
    xml_text(f, s[i].label);
    fprintf(f, "</text>\n");
  }
  fprintf(f, "</g>\n");
#undef SX
#undef SY
}

static void series(Series *s, const RtCurve *c, const char *prefix, const char *name, const char *color, bool dashed,
                   bool dots) {
  s->c = c, s->color = color, s->dashed = dashed, s->dots = dots;
  snprintf(s->name, sizeof s->name, "%s_%s", prefix, name);
  snprintf(s->label, sizeof s->label, "%s %s", prefix, name);
}

static void draw(FILE *f, const RtPlot *p) {
  int nm = p->have_val || p->have_test ? p->nmetrics : 0;
  int panels = nm > 0 ? 2 : 1;
  double xmax = 1;
  const RtCurve *all[3] = {&p->train, &p->val_loss, &p->test_loss};
  for (int i = 0; i < 3; i++)
    for (int64_t k = 0; k < all[i]->n; k++) xmax = fmax(xmax, all[i]->x[k]);
  fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
  fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d "
          "%d\" font-family=\"sans-serif\" font-size=\"12\">\n", WIDTH, PANEL_H * panels, WIDTH, PANEL_H * panels);
  fprintf(f, "<title>");
  xml_text(f, p->title ? p->title : "training");
  fprintf(f, ": loss and metrics per epoch</title>\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
  Series s[3];
  int ns = 0;
  series(&s[ns++], &p->train, "train", "loss", LOSS_COLORS[0], false, false);
  if (p->have_val) series(&s[ns++], &p->val_loss, "val", "loss", LOSS_COLORS[1], false, true);
  if (p->have_test) series(&s[ns++], &p->test_loss, "test", "loss", LOSS_COLORS[2], false, true);
  char title[160];
  snprintf(title, sizeof title, "%s%sloss", p->title ? p->title : "", p->title ? ": " : "");
  draw_panel(f, 0, title, "loss", s, ns, xmax, false);
  if (nm > 0) {
    Series *ms = calloc((size_t)nm * 2, sizeof *ms);
    int n = 0;
    for (int i = 0; ms && i < nm; i++) {
      const char *color = METRIC_COLORS[i % 6];
      if (p->have_val) series(&ms[n++], &p->val_metric[i], "val", p->metric_names[i], color, true, true);
      if (p->have_test) series(&ms[n++], &p->test_metric[i], "test", p->metric_names[i], color, false, true);
    }
    if (ms) draw_panel(f, PANEL_H, "metrics (dashed: validation)", "metric", ms, n, xmax, true);
    free(ms);
  }
  fprintf(f, "</svg>\n");
}

int rt_plot_write(const RtPlot *p, RtError *err) {
  RtReplace out; /* a browser refreshing it sees the old plot or the new one */
  if (rt_replace_open(&out, p->path, err)) return -1;
  draw(out.f, p);
  return rt_replace_commit(&out, true, err);
}
