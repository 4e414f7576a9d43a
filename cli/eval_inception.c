/* eval_inception.c — `pixdiff eval --features inception` (eval_inception.h): FID and KID on the
 * 2048-d Inception-v3 pool3 features (pd_inception_*, pd_fid_*), against a reference given as a
 * PNG folder, an .npy of images, a Fashion-MNIST split, or an .npz of statistics (EDM's fid-refs,
 * pytorch-fid --save-stats, or pixdiff's --save-ref). */
#include "cli/eval_inception.h"
#include "cli/args.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void ref_progress(void *user, const pd_progress *p) {
    pd_progress q = *p;
    q.stage = "reference";
    cli_progress_show(&((cli_fid *)user)->ui, &q);
}

void cli_fid_open(cli_fid *f, const char *cmd, const char *inception, const char *prep,
                  const char *ref, const char *data_dir, int quiet) {
    memset(f, 0, sizeof *f);
    f->cmd = cmd;
    f->progress = 1;
    cli_progress_init(&f->ui, cmd, quiet);
    const char *flag = "--inception";
    if (!inception || !*inception) {
        inception = getenv("PIXDIFF_INCEPTION");
        flag = "$PIXDIFF_INCEPTION";
    }
    if (!inception || !*inception)
        cli_bad_flag(cmd, "--inception", "give the FID Inception weights (--inception FILE or "
                     "$PIXDIFF_INCEPTION): pytorch-fid's pt_inception-2015-12-05-6726825d.pth "
                     "converted with `pixdiff convert` (README, \"FID\")");
    int p = pd_fid_prep_from_name(prep ? prep : "pytorch-fid");
    if (p < 0) cli_bad_flag(cmd, "--prep", "'%s': expected pytorch-fid or edm", prep);
    f->prep = (pd_fid_prep)p;
    snprintf(f->inception_path, sizeof f->inception_path, "%s", inception);
    pd_error err = {{0}};
    if (pd_inception_load(&f->net, inception, &err)) cli_bad_flag(cmd, flag, "%s", err.msg);
    if (ref) {
        pd_fid_ref_options o = {0, data_dir, ref_progress, f};
        f->t0 = cli_now();
        int rc = pd_fid_ref_load(&f->ref, f->net, ref, f->prep, &o, &err);
        cli_progress_end(&f->ui);
        if (rc) cli_bad_flag(cmd, "--ref", "%s", err.msg);
        f->have_ref = 1;
        if (!quiet)
            fprintf(stderr, "%s: reference %s: %s (%.1f s)\n", cmd, ref,
                    f->ref.n ? "statistics of its images" : "statistics from the file", cli_now() - f->t0);
    }
}

void cli_fid_expect(cli_fid *f, int total) {
    f->total = total;
    f->t0 = cli_now();
}

void cli_fid_add(cli_fid *f, const float *x, int n, int C, int H, int W) {
    if (C != 1 && C != 3) cli_die(1, f->cmd, "Inception features need gray or RGB images, got %d channels", C);
    if (f->n + n > f->cap) {
        long long cap = f->cap ? f->cap : 1024;
        while (cap < f->n + (long long)n) cap *= 2;
        float *g = realloc(f->feat, sizeof(float) * (size_t)cap * PD_INCEPTION_DIM);
        if (!g) cli_die(1, f->cmd, "out of memory for %lld Inception feature vectors", cap);
        f->feat = g;
        f->cap = (int)cap;
    }
    pd_error err = {{0}};
    double t = cli_now();
    if (pd_inception_features(f->net, x, n, C, H, W, f->prep, f->feat + (size_t)f->n * PD_INCEPTION_DIM, &err))
        cli_die(1, f->cmd, "%s", err.msg);
    f->t_features += cli_now() - t;
    f->n += n;
    int total = f->total > f->n ? f->total : f->n;
    if (f->progress) cli_progress_count(&f->ui, "inception", "images", f->n, total, f->t0);
}

void cli_fid_finish(cli_fid *f, const char *save_ref, const pd_kid_params *kid, int pr_k, int quiet) {
    cli_progress_end(&f->ui);
    pd_error err = {{0}};
    if (save_ref) {
        pd_feature_stats s;
        if (pd_feature_stats_compute(&s, f->feat, f->n, PD_INCEPTION_DIM, &err) ||
            pd_npz_stats_write(save_ref, &s, &err))
            cli_die(1, f->cmd, "%s", err.msg);
        pd_feature_stats_free(&s);
        if (!quiet) fprintf(stderr, "%s: wrote the statistics of %d images to %s\n", f->cmd, f->n, save_ref);
    }
    if (f->have_ref) {
        if (pd_fid_compute(f->feat, f->n, &f->ref, kid, pr_k, &f->r, &err)) cli_die(1, f->cmd, "%s", err.msg);
        if (f->r.singular && !quiet) {
            char refn[48] = "";
            if (f->ref.n) snprintf(refn, sizeof refn, " (reference: %d)", f->ref.n);
            fprintf(stderr, "%s: warning: %d images%s is not more than the 2048 features: the "
                    "covariance is singular and FID is biased upward; papers use 50,000\n", f->cmd,
                    f->n, refn);
        }
    }
}

void cli_fid_json(const cli_fid *f, cli_buf *b, const char *save_ref) {
    cli_buf_printf(b, ", \"features\": \"inception\", \"prep\": ");
    cli_buf_json_str(b, pd_fid_prep_name(f->prep));
    cli_buf_printf(b, ", \"inception\": ");
    cli_buf_json_str(b, f->inception_path);
    cli_buf_printf(b, ", \"n\": %d, \"fid\": ", f->n);
    cli_buf_json_num(b, f->have_ref ? f->r.fid : NAN);
    cli_buf_printf(b, ", \"kid\": ");
    cli_buf_json_num(b, f->have_ref ? f->r.kid.kid : NAN);
    cli_buf_printf(b, ", \"kid_se\": ");
    cli_buf_json_num(b, f->have_ref ? f->r.kid.se : NAN);
    cli_buf_printf(b, ", \"kid_std\": ");
    cli_buf_json_num(b, f->have_ref ? f->r.kid.std : NAN);
    cli_buf_printf(b, ", \"kid_subsets\": %d, \"kid_subset_size\": %d, \"precision\": ",
                   f->r.kid.subsets, f->r.kid.subset_size);
    cli_buf_json_num(b, f->have_ref ? f->r.precision : NAN);
    cli_buf_printf(b, ", \"recall\": ");
    cli_buf_json_num(b, f->have_ref ? f->r.recall : NAN);
    cli_buf_printf(b, ", \"pr_k\": %d, \"pr_n\": %d, \"ref\": ", f->r.pr_k, f->r.pr_n);
    if (f->have_ref) cli_buf_json_str(b, f->ref.source);
    else cli_buf_printf(b, "null");
    cli_buf_printf(b, ", \"ref_n\": %d, \"singular\": %s, \"save_ref\": ", f->ref.n,
                   f->r.singular ? "true" : "false");
    if (save_ref) cli_buf_json_str(b, save_ref);
    else cli_buf_printf(b, "null");
    cli_buf_printf(b, ", \"inception_s\": ");
    cli_buf_json_num(b, f->t_features);
    cli_buf_printf(b, ", \"inception_img_per_s\": ");
    cli_buf_json_num(b, f->t_features > 0 ? f->n / f->t_features : NAN);
}

void cli_fid_print(const cli_fid *f, const char *save_ref) {
    printf("  n                 %d\n", f->n);
    if (f->have_ref) {
        printf("  FID               %.4f%s\n", f->r.fid, f->r.singular ? " (n <= 2048: biased)" : "");
        if (isfinite(f->r.kid.kid))
            printf("  KID               %.6f +/- %.6f (SE; %d subsets of %d)\n", f->r.kid.kid,
                   f->r.kid.se, f->r.kid.subsets, f->r.kid.subset_size);
        else printf("  KID               n/a (the reference is statistics only)\n");
        if (f->r.pr_n > 0)
            printf("  precision/recall  %.4f / %.4f (k = %d, %d images of each set)\n", f->r.precision,
                   f->r.recall, f->r.pr_k, f->r.pr_n);
        else if (f->ref.n) printf("  precision/recall  n/a (needs more than %d images)\n", f->r.pr_k);
        if (f->ref.n) printf("  reference         %s (%d images)\n", f->ref.source, f->ref.n);
        else printf("  reference         %s (statistics)\n", f->ref.source);
    }
    if (save_ref) printf("  statistics        %s\n", save_ref);
    printf("  features          Inception-v3 pool3 (%s), %s, %.1f img/s\n", pd_fid_prep_name(f->prep),
           f->inception_path, f->t_features > 0 ? f->n / f->t_features : 0.0);
}

void cli_fid_close(cli_fid *f) {
    pd_inception_free(f->net);
    pd_fid_ref_free(&f->ref);
    free(f->feat);
    memset(f, 0, sizeof *f);
}
