/* testutil.h — tiny helpers shared by the ctest programs: reference comparison with printed
 * max abs/rel error (llm.c test_gpt2 style), and a pass/fail tally. */
#ifndef PD_TESTUTIL_H
#define PD_TESTUTIL_H
#include <stddef.h>
#include <stdint.h>

extern int tu_failures;
/* Prints "name: max abs err A, max rel err R (tol T) ok|FAIL"; rel err uses |ref| + floor. */
int tu_compare(const char *name, const float *got, const double *ref, size_t n, double tol);
int tu_compare_f(const char *name, const float *got, const float *ref, size_t n, double tol);
void tu_check(int cond, const char *fmt, ...);
/* Deterministic test data: uniform in [-scale, scale] from a seed. */
void tu_fill(float *x, size_t n, uint64_t seed, float scale);
void tu_fill_d(double *x, size_t n, uint64_t seed, double scale);
/* Newly allocated (malloc) copies: n values from tu_fill, and a float array widened to double. */
float *tu_randf(size_t n, uint64_t seed, float scale);
double *tu_to_d(const float *x, size_t n);
/* Prints "N passed, M failed" and returns the exit code. */
/* Renames metadata key `key` (a quoted JSON string, e.g. "\"pixdiff.train.shares\"") in the
 * file in place by changing its last letter to 'z': a checkpoint as written before that key
 * existed. 0 when found and rewritten. */
int tu_forget_key(const char *path, const char *key);
int tu_finish(void);
#endif
