/* frontend/suggest.c - "did you mean ...?" for unknown names (suggest.h). */
#include "frontend/suggest.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

enum { MAX_NAME = 64 }; /* longer names get no suggestion (names are short) */

/* What users of other frameworks write for a name nnc spells otherwise:
 * train settings, optimizer hyper-parameters, layer arguments.  A synonym
 * is suggested only where its target is a candidate (learning_rate -> lr
 * for an optimizer that has an lr). */
static const struct { const char *from, *to; } synonyms[] = {
    /* train settings */
    {"num_epochs", "epochs"}, {"n_epochs", "epochs"}, {"max_epochs", "epochs"}, {"nb_epoch", "epochs"},
    {"batch_size", "batch"}, {"batchsize", "batch"}, {"bs", "batch"}, {"minibatch", "batch"},
    {"mini_batch", "batch"}, {"dataset", "data"}, {"train_data", "data"}, {"data_path", "data"},
    {"optim", "optimizer"}, {"opt", "optimizer"}, {"optimiser", "optimizer"}, {"random_seed", "seed"},
    {"rng_seed", "seed"}, {"manual_seed", "seed"}, {"shuffled", "shuffle"}, {"input_scale", "scale"},
    {"rescale", "scale"}, {"normalize", "scale"}, {"validation_split", "validation"}, {"val_split", "validation"},
    /* hyper-parameters */
    {"learning_rate", "lr"}, {"learningrate", "lr"}, {"lr_rate", "lr"}, {"rate", "lr"}, {"eta", "lr"},
    {"alpha", "lr"}, {"step_size", "lr"}, {"mu", "momentum"}, {"mom", "momentum"}, {"beta", "momentum"},
    {"momentum_factor", "momentum"}, {"nesterov_momentum", "momentum"}, {"beta_1", "beta1"}, {"b1", "beta1"},
    {"beta_2", "beta2"}, {"b2", "beta2"}, {"epsilon", "eps"}, {"adam_epsilon", "eps"},
    /* layer arguments */
    {"out_features", "units"}, {"output_dim", "units"}, {"num_units", "units"}, {"hidden_size", "units"},
    {"size", "units"}, {"n_units", "units"},
};

/* Optimal-string-alignment distance (Damerau-Levenshtein where each
 * substring is edited once), case ignored; a value over limit when it is
 * over limit (found early: no row may fall below it). */
static int distance(const char *a, const char *b, int limit) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > MAX_NAME || lb > MAX_NAME) return limit + 1;
  if ((la > lb ? la - lb : lb - la) > (size_t)limit) return limit + 1;
  int rows[3][MAX_NAME + 1]; /* i-2, i-1, i */
  int *pp = rows[0], *prev = rows[1], *cur = rows[2];
  for (size_t j = 0; j <= lb; j++) prev[j] = (int)j;
  for (size_t i = 1; i <= la; i++) {
    cur[0] = (int)i;
    int least = cur[0];
    for (size_t j = 1; j <= lb; j++) {
      int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
      int d = prev[j - 1] + (ca != cb);
      if (prev[j] + 1 < d) d = prev[j] + 1;
      if (cur[j - 1] + 1 < d) d = cur[j - 1] + 1;
      if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) && tolower((unsigned char)a[i - 2]) == cb &&
          pp[j - 2] + 1 < d)
        d = pp[j - 2] + 1; /* two neighbours swapped */
      cur[j] = d;
      if (d < least) least = d;
    }
    if (least > limit) return limit + 1;
    int *t = pp;
    pp = prev, prev = cur, cur = t;
  }
  return prev[lb];
}

void suggest_init(Suggest *s, const char *name) {
  s->name = name;
  s->best = NULL;
  s->dist = ((int)strlen(name) + 2) / 3; /* clang's bound: about a third of the name */
}

void suggest_offer(Suggest *s, const char *candidate) {
  if (!candidate || !strcmp(candidate, s->name)) return;
  if (s->best && s->dist < 0) return; /* a synonym is already found */
  for (size_t i = 0; i < sizeof synonyms / sizeof synonyms[0]; i++)
    if (!strcmp(synonyms[i].to, candidate) && !strcasecmp(synonyms[i].from, s->name)) {
      s->best = candidate, s->dist = -1;
      return;
    }
  int limit = s->best ? s->dist - 1 : s->dist; /* only a closer one replaces the best */
  if (limit < 0) return;
  int d = distance(s->name, candidate, limit);
  if (d <= limit) s->best = candidate, s->dist = d;
}

void suggest_offer_list(Suggest *s, const char *const *candidates) {
  for (int i = 0; candidates && candidates[i]; i++) suggest_offer(s, candidates[i]);
}

const char *suggest_best(const Suggest *s) { return s->best; }
