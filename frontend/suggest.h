/* frontend/suggest.h - "did you mean ...?" for unknown names.
 *
 * Like clang's typo correction: among the candidates a caller offers, the
 * one closest to the unknown name by Damerau-Levenshtein distance (insert,
 * delete, substitute, or swap two neighbours: one edit each; case ignored),
 * within about a third of the name's length; ties go to the first offered.
 * A small table of synonyms that users of other frameworks write
 * (learning_rate for lr, batch_size for batch, ...) wins over any distance,
 * when its target is one of the candidates.
 *
 *     Suggest s;
 *     suggest_init(&s, "learning_rate");
 *     suggest_offer(&s, "lr"); suggest_offer(&s, "beta1"); ...
 *     const char *hint = suggest_best(&s);    // "lr", or NULL
 */
#ifndef NNC_SUGGEST_H
#define NNC_SUGGEST_H

typedef struct Suggest {
  const char *name; /* the unknown name */
  const char *best; /* the closest candidate so far, or NULL */
  int dist;         /* its distance (-1: a synonym); the limit while best is NULL */
} Suggest;

void suggest_init(Suggest *s, const char *name);
/* Considers one candidate (NULL and the name itself are ignored). */
void suggest_offer(Suggest *s, const char *candidate);
/* Offers each entry of a NULL-terminated list. */
void suggest_offer_list(Suggest *s, const char *const *candidates);
/* The suggestion, or NULL when no candidate is close enough. */
const char *suggest_best(const Suggest *s);

#endif
