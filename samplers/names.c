/* names.c — the sampler name table (DESIGN.md convention 6), shared by CLI flags, YAML keys and
 * PNG metadata; lookup is case-insensitive with '_' equal to '-' (schedules/names_match.h). */
#include "pixdiff.h"
#include "schedules/names_match.h"
#include <stddef.h>

static const char *const sampler_names[] = {
    [PD_SAMPLER_EULER] = "euler",
    [PD_SAMPLER_HEUN] = "heun",
    [PD_SAMPLER_DDIM] = "ddim",
    [PD_SAMPLER_DPMPP_2M] = "dpmpp-2m",
    [PD_SAMPLER_DPMPP_3M] = "dpmpp-3m",
    [PD_SAMPLER_IPNDM] = "ipndm",
    [PD_SAMPLER_DPM2] = "dpm2",
    [PD_SAMPLER_UNIPC] = "unipc",
    [PD_SAMPLER_AMED] = "amed",
    [PD_SAMPLER_AMED_PLUGIN] = "amed-plugin",
};
_Static_assert(sizeof sampler_names / sizeof sampler_names[0] == PD_SAMPLER_COUNT,
               "sampler name table");

const char *pd_sampler_name(pd_sampler_kind k) {
    return (unsigned)k < PD_SAMPLER_COUNT ? sampler_names[k] : NULL;
}

int pd_sampler_from_name(const char *name) {
    return names_lookup(sampler_names, PD_SAMPLER_COUNT, name);
}
