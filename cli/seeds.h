/* seeds.h — --seeds lists (EDM's generate.py syntax) and drawn seeds; see seeds.c. */
#ifndef PD_CLI_SEEDS_H
#define PD_CLI_SEEDS_H

#include <stddef.h>
#include <stdint.h>

/* "0-63,100,200-210" -> *out (malloc'd) = 0..63, 100, 200..210 in that order; returns the count.
 * Exits 2 naming flag for anything else (empty items, backward ranges, signs, > 1e8 seeds). */
int cli_parse_seeds(const char *cmd, const char *flag, const char *spec, uint64_t **out);
/* A fresh seed in [0, 2^31) from getrandom (the clock if that fails). */
uint64_t cli_random_seed(void);
/* The seeds compacted back into the list syntax ("5-68", "0-3,100"), cut with ",..." at cap. */
void cli_seeds_describe(char *buf, size_t cap, const uint64_t *seeds, int n);

#endif
