/* names.c — the name tables of the sigma grids and SNR shifts (DESIGN.md convention 6), shared by
 * CLI flags, YAML keys and PNG metadata. Lookup is case-insensitive and treats '_' as '-', so
 * "DDIM_uniform" in a YAML file finds "ddim-uniform"; the canonical spelling is the table's. */
#include "pixdiff.h"
#include "schedules/names_match.h"
#include <stddef.h>

static const char *const grid_names[] = {
    [PD_GRID_KARRAS] = "karras",
    [PD_GRID_LOGSNR] = "logsnr",
    [PD_GRID_VP_TIME] = "vp-time",
    [PD_GRID_DDIM_UNIFORM] = "ddim-uniform",
    [PD_GRID_DDIM_QUAD] = "ddim-quad",
    [PD_GRID_COSINE] = "cosine",
};
_Static_assert(sizeof grid_names / sizeof grid_names[0] == PD_GRID_COUNT, "grid name table");

static const char *const shift_names[] = {
    [PD_SHIFT_NONE] = "none",
    [PD_SHIFT_SCALE] = "scale",
    [PD_SHIFT_INTERP] = "interp",
};
_Static_assert(sizeof shift_names / sizeof shift_names[0] == PD_SHIFT_COUNT, "shift name table");

const char *pd_grid_name(pd_grid_kind k) {
    return (unsigned)k < PD_GRID_COUNT ? grid_names[k] : NULL;
}

int pd_grid_from_name(const char *name) { return names_lookup(grid_names, PD_GRID_COUNT, name); }

const char *pd_shift_name(pd_shift_kind k) {
    return (unsigned)k < PD_SHIFT_COUNT ? shift_names[k] : NULL;
}

int pd_shift_from_name(const char *name) { return names_lookup(shift_names, PD_SHIFT_COUNT, name); }
