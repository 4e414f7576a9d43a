/* generate.c — pixdiff from C: load the default model, generate a few images with a chosen
 * sampler, write one PNG per image and a grid. Built against an installed pixdiff with
 *   cc generate.c $(pkg-config --cflags --libs pixdiff) -o generate
 * (tests/e2e_install.sh does exactly that against an installed, then moved, prefix).
 *
 * usage: generate [SAMPLER [STEPS [N [OUTDIR]]]]     e.g. generate dpmpp-2m 10 4 out
 * Writes OUTDIR/000000.png ..., grid.png and samples.npy. Image i uses seed i and asks for class
 * i mod 10, so samples.npy is what `pixdiff sample --seeds 0-3 --class cycle --out x.npy` writes
 * with the same sampler and steps.
 */
#include <pixdiff.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    const char *sampler = argc > 1 ? argv[1] : "heun";
    int steps = argc > 2 ? atoi(argv[2]) : 18;
    int n = argc > 3 ? atoi(argv[3]) : 4;
    const char *outdir = argc > 4 ? argv[4] : ".";
    pd_error err = {{0}};
    char path[4096];
    pd_model *model = NULL;
    pd_denoiser *den = NULL;
    float *x = NULL;
    int *classes = NULL;
    int rc = 1;

    /* The weights: shareable between threads. The denoiser: this thread's run state. */
    if (pd_default_model_path(path, sizeof path, &err) || pd_model_load(&model, path, &err) ||
        pd_denoiser_from_model(&den, model, 0, &err))
        goto done;
    int k = pd_sampler_from_name(sampler);
    if (k < 0 || steps < 1 || n < 1) {
        fprintf(stderr, "usage: generate [SAMPLER [STEPS [N [OUTDIR]]]] (unknown sampler or bad count)\n");
        rc = 2;
        goto done;
    }

    pd_generate_params p = pd_generate_default_params();   /* seed i for image i */
    p.sample.sampler = (pd_sampler_kind)k;
    p.sample.sched.grid = pd_sampler_default_grid(p.sample.sampler);
    p.sample.steps = steps;
    classes = malloc(sizeof(int) * (size_t)n);
    x = malloc(sizeof(float) * (size_t)n * den->C * den->H * den->W);
    if (!classes || !x) {
        fprintf(stderr, "generate: out of memory\n");
        goto done;
    }
    for (int i = 0; i < n; i++) classes[i] = den->label_dim > 0 ? i % den->label_dim : -1;
    p.classes = classes;
    pd_sample_stats st;
    if (pd_generate(den, &p, 0, n, x, &st, &err)) goto done;

    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%06d.png", outdir, i);
        const float *xi = x + (size_t)i * den->C * den->H * den->W;
        if (pd_png_write_grid(path, xi, 1, den->C, den->H, den->W, 1, NULL, &err)) goto done;
    }
    int shape[4] = {n, den->C, den->H, den->W};
    snprintf(path, sizeof path, "%s/samples.npy", outdir);
    if (pd_npy_write(path, x, shape, 4, &err)) goto done;
    snprintf(path, sizeof path, "%s/grid.png", outdir);
    if (pd_png_write_grid(path, x, n, den->C, den->H, den->W, 0, NULL, &err)) goto done;
    printf("%d images, %s, %d steps, NFE %d -> %s/000000.png ... and grid.png (pixdiff %s)\n", n,
           pd_sampler_name(p.sample.sampler), st.steps, st.nfe, outdir, pd_version());
    rc = 0;
done:
    if (rc == 1) fprintf(stderr, "generate: %s\n", err.msg);
    free(x);
    free(classes);
    pd_denoiser_free(den);
    pd_model_free(model);
    return rc;
}
