/* test/unit/test_models.h - small models several unit tests train.
 *
 * Each is a .nn source: a user fn, layer and optimizer (custom), a CSV-style
 * regression with an f32 label (regression), and the shape ops (shapes);
 * and in a file the lit tests share, every elementwise primitive
 * (PRIMITIVES_NN).  Tests compile them in-process and compare a backend
 * with the reference interpreter.
 */
#ifndef NNC_TEST_MODELS_H
#define NNC_TEST_MODELS_H

#include "frontend/ast.h"
#include "support/diag.h"
#include "frontend/elab.h"
#include "passes/pass.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every elementwise primitive of the language (tests run in test/). */
#define PRIMITIVES_NN "Inputs/primitives.nn"

/* The text of a file, malloc'ed and NUL-terminated; NULL when it cannot be read. */
__attribute__((unused)) static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
  size_t got = s ? fread(s, 1, (size_t)n, f) : 0;
  if (s) s[got] = 0;
  fclose(f);
  return s;
}

/* Compiles a .nn source in-process as nnc does at -O2: parse, elaborate,
 * the graph passes, the verifier.  NULL after any error.  Each call starts
 * with fresh diagnostics (the previous model's files are freed). */
__attribute__((unused)) static Module *compile(const char *name, const char *src) {
  diag_free(&nnc_diag);
  diag_init(&nnc_diag);
  uint32_t f = diag_add_file(&nnc_diag, name, src, strlen(src));
  static Arena ast;
  Program *prog = parse_file(&ast, f);
  const char *stdlib = getenv("NNC_STDLIB") ? getenv("NNC_STDLIB") : "../stdlib";
  ElabOptions eo = {NULL, stdlib};
  Module *m = diag_error_count() ? NULL : elaborate(prog, &ast, &eo);
  if (!m) return NULL;
  for (const Pass *p = nnc_graph_passes; p->name; p++)
    if (p->min_opt <= 2 && !p->run(m)) return NULL;
  return ir_verify(m, "test") ? m : NULL;
}

__attribute__((unused)) static const char *const custom =
    "fn swish(x) = x * sigmoid(x)\n"
    "layer residual(x: f32[n]) {\n param w: f32[n, n] = he_normal()\n param b: f32[n] = zeros()\n"
    " param gate: f32 = 0.1\n return x + gate * tanh(x @ w + b)\n}\n"
    "fn smoothed(logits: f32[k], y: i32, eps = 0.1) {\n logp = log_softmax(logits)\n"
    " return -(1 - eps) * logp[y] - eps * mean(logp)\n}\n"
    "optimizer rmsprop(lr = 0.01, decay = 0.9, eps = 1e-7) {\n state s = zeros()\n"
    " s = decay * s + (1 - decay) * g^2\n p = p - lr * g / (sqrt(s) + eps)\n}\n"
    "model c {\n input x: f32[6]\n label y: i32\n h = swish(dense(x, 5))\n r = residual(h)\n"
    " logits = dense(r, 4)\n loss = smoothed(logits, y)\n metric accuracy = argmax(logits) == y\n}\n"
    "train c { data = idx(\"d\")\n optimizer = rmsprop }\n";

__attribute__((unused)) static const char *const regression =
    "model r {\n input x: f32[4]\n label y: f32\n h = tanh(dense(x, 6))\n pred = dense(h, 1)\n"
    " loss = mse(pred, y)\n metric err = mean(abs(pred - y))\n}\n"
    "train r { data = csv(\"d.csv\")\n optimizer = sgd(lr = 0.05, momentum = 0.9) }\n";

__attribute__((unused)) static const char *const shapes =
    "model s {\n input x: f32[2, 3]\n label y: i32\n param w: f32[3, 2] = glorot_uniform()\n"
    " t = transpose(x)\n r = reshape(x, [3, 2])\n a = sum(x @ w, axis = 0)\n"
    " b = max(r * w, axis = -1)\n c = sum(t, axis = [0, 1]) + sum(a) + sum(b)\n"
    " loss = c * c / 10 + x[1][y] + sum(onehot(y, 3) * softmax(x[0]))\n metric m = argmax(x[0]) == y\n}\n"
    "train s { data = idx(\"d\")\n optimizer = sgd(lr = 0.1) }\n";

#endif
