/* cmd_info.c — `pixdiff info [FILE]`: what a model file (default: the default model) holds — its
 * architecture config, kind, parameter and tensor counts, GFLOP per denoiser evaluation at the
 * trained resolution and its sha256 — and, with --tensors, every tensor's name and shape. An
 * `analytic:` spec prints the analytic denoiser's description instead, and an AMED predictor what
 * it was trained for. --json prints one JSON object on stdout instead of the table. */
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "core/util.h"
#include "pixdiff.h"

#include <stdio.h>
#include <string.h>

/* 1234567 -> "1,234,567" */
static const char *grouped(size_t v, char *buf, size_t cap) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%zu", v), j = 0;
    for (int i = 0; i < n && j + 2 < (int)cap; i++) {
        if (i && (n - i) % 3 == 0) buf[j++] = ',';
        buf[j++] = tmp[i];
    }
    buf[j] = 0;
    return buf;
}

static void print_ints(const char *key, const int *v, int n) {
    printf("%-18s [", key);
    for (int i = 0; i < n; i++) printf("%s%d", i ? ", " : "", v[i]);
    printf("]\n");
}

int cmd_info(int argc, char **argv) {
    const char *cmd = "info";
    int tensors = 0, json = 0;
    arg_opt opts[] = {
        OPT("--tensors", ARG_FLAG, &tensors, NULL, "also list every tensor's name and shape"),
        OPT("--json", ARG_FLAG, &json, NULL, "print one JSON object (the model's config and sizes)"),
    };
    arg_spec spec = {cmd,
                     "[--tensors] [--json] [FILE]",
                     "Print a model's architecture, size, cost per evaluation and sha256. FILE is "
                     "a .safetensors model or an analytic:... spec (default: the default model).",
                     opts,
                     2,
                     "FILE",
                     0,
                     1,
                     NULL};
    const char *pos[1];
    int npos = 0;
    args_parse(&spec, argc, argv, pos, &npos);
    char def[4096];
    if (npos == 0) cli_default_model(cmd, def, sizeof def);
    const char *path = npos ? pos[0] : def;
    if (json && tensors) cli_bad_flag(cmd, "--json", "give --json or --tensors, not both");

    if (strncmp(path, "analytic:", 9) == 0) {
        cli_model cm;
        cli_model_open(&cm, cmd, path, 0);
        const pd_denoiser *d = cm.den;
        if (json) {
            cli_buf b = {0};
            cli_buf_printf(&b, "{\"model\": ");
            cli_buf_json_str(&b, path);
            cli_buf_printf(&b, ", \"kind\": \"analytic\", \"description\": ");
            cli_buf_json_str(&b, d->desc);
            cli_buf_printf(&b, ", \"size\": [%d, %d, %d], \"sigma_data\": ", d->C, d->H, d->W);
            cli_buf_json_num(&b, d->sigma_data);
            cli_buf_printf(&b, "}\n");
            fputs(b.s, stdout);
            cli_buf_free(&b);
            cli_model_close(&cm);
            return 0;
        }
        printf("%-18s %s\n", "model", path);
        printf("%-18s analytic (exact denoiser)\n", "kind");
        printf("%-18s %s\n", "description", d->desc);
        printf("%-18s %dx%d, %d channel%s\n", "resolution", d->W, d->H, d->C, d->C == 1 ? "" : "s");
        printf("%-18s data %g, min %g, max %g\n", "sigma", d->sigma_data, d->sigma_min,
               d->sigma_max);
        cli_model_close(&cm);
        return 0;
    }

    /* An AMED predictor (pixdiff distill amed) says what it was trained for. */
    pd_amed_predictor *pred = NULL;
    pd_error perr;
    if (pd_amed_predictor_load(&pred, path, &perr) == 0) {
        const pd_amed_info *a = pd_amed_predictor_info(pred);
        char sha[65];
        if (json) {
            cli_buf b = {0};
            cli_buf_printf(&b, "{\"file\": ");
            cli_buf_json_str(&b, path);
            cli_buf_printf(&b, ", \"sha256\": ");
            cli_buf_json_str(&b, core_sha256_file(path, sha, &perr) == 0 ? sha : "");
            cli_buf_printf(&b, ", \"kind\": \"amed-predictor\", \"amed_kind\": \"%s\", \"sampler\": "
                           "\"%s\", \"nfe\": %d, \"steps\": %d, \"afs\": %s, \"grid\": \"%s\", "
                           "\"model_sha256\": ", pd_amed_kind_name(a->kind),
                           pd_sampler_name(pd_amed_kind_sampler(a->kind)), a->nfe, a->steps,
                           a->afs ? "true" : "false", pd_grid_name(a->grid));
            cli_buf_json_str(&b, a->model_sha256);
            cli_buf_printf(&b, "}\n");
            fputs(b.s, stdout);
            cli_buf_free(&b);
            pd_amed_predictor_free(pred);
            return 0;
        }
        printf("%-18s %s\n", "file", path);
        if (core_sha256_file(path, sha, &perr) == 0) printf("%-18s %s\n", "sha256", sha);
        printf("%-18s AMED predictor, %s (pixdiff sample --sampler %s --predictor FILE)\n", "kind",
               pd_amed_kind_name(a->kind), pd_sampler_name(pd_amed_kind_sampler(a->kind)));
        printf("%-18s %d (%d steps%s)\n", "nfe", a->nfe, a->steps, a->afs ? ", AFS" : "");
        printf("%-18s %s, rho %g, sigma %g .. %g, stops at sigma_min\n", "grid", pd_grid_name(a->grid),
               a->rho, a->sigma_min, a->sigma_max);
        printf("%-18s s_dir %g, s_time %g\n", "heads", a->s_dir, a->s_time);
        printf("%-18s %s, M = %d\n", "teacher", a->teacher, a->teacher_m);
        printf("%-18s %s (sha256 %.16s...)\n", "model", a->model_name[0] ? a->model_name : "?",
               a->model_sha256[0] ? a->model_sha256 : "?");
        printf("%-18s %lld trajectories, batch %d, lr %g, seed %llu, final loss %g\n", "training",
               a->images, a->batch, a->lr, (unsigned long long)a->seed, a->final_loss);
        pd_amed_predictor_free(pred);
        return 0;
    }
    pd_model *m = cli_model_load(cmd, path);
    const pd_unet_config *c = pd_model_config(m);
    char g[40];
    size_t np = pd_model_param_count(m);
    int nt = 0, shape[4], nd;
    while (pd_model_tensor(m, nt, shape, &nd)) nt++;
    if (json) {
        char cfg[8192];
        if (pd_unet_config_json(c, cfg, sizeof cfg) < 0) cli_die(1, cmd, "%s: config too long", path);
        cli_buf b = {0};
        cli_buf_printf(&b, "{\"file\": ");
        cli_buf_json_str(&b, path);
        cli_buf_printf(&b, ", \"sha256\": ");
        cli_buf_json_str(&b, pd_model_sha256(m));
        cli_buf_printf(&b, ", \"kind\": ");
        cli_buf_json_str(&b, c->kind[0] ? c->kind : "denoiser");
        cli_buf_printf(&b, ", \"parameters\": %zu, \"tensors\": %d, \"gflop\": ", np, nt);
        cli_buf_json_num(&b, pd_model_gflops(m, c->img_resolution));
        cli_buf_printf(&b, ", \"features\": %d, \"config\": %s}\n", pd_classifier_feature_dim(m) > 0 ?
                       pd_classifier_feature_dim(m) : 0, cfg);
        fputs(b.s, stdout);
        cli_buf_free(&b);
        pd_model_free(m);
        return 0;
    }
    printf("%-18s %s\n", "file", path);
    printf("%-18s %s\n", "sha256", pd_model_sha256(m));
    printf("%-18s %s\n", "kind", c->kind[0] ? c->kind : "denoiser");
    printf("%-18s %s\n", "arch", c->arch);
    printf("%-18s %s\n", "precond", c->precond);
    printf("%-18s %d (%dx%d)\n", "img_resolution", c->img_resolution, c->img_resolution,
           c->img_resolution);
    printf("%-18s %d\n", "in_channels", c->in_channels);
    printf("%-18s %d\n", "out_channels", c->out_channels);
    if (pd_classifier_feature_dim(m) > 0)   /* classifier/classifier.h: F = model_channels x channel_mult_emb */
        printf("%-18s %d (the penultimate layer: the metrics' feature space)\n", "features",
               pd_classifier_feature_dim(m));
    printf("%-18s %d", "label_dim", c->label_dim);
    for (int i = 0; i < 16 && i < c->label_dim && c->class_names[i][0]; i++)
        printf("%s%s", i ? ", " : " (", c->class_names[i]);
    printf("%s\n", c->label_dim > 0 && c->class_names[0][0] ? ")" : "");
    printf("%-18s %d\n", "augment_dim", c->augment_dim);
    printf("%-18s %d\n", "model_channels", c->model_channels);
    print_ints("channel_mult", c->channel_mult, c->n_levels);
    printf("%-18s %d\n", "channel_mult_emb", c->channel_mult_emb);
    printf("%-18s %d\n", "num_blocks", c->num_blocks);
    print_ints("attn_resolutions", c->attn_resolutions, c->n_attn);
    printf("%-18s %g\n", "dropout", (double)c->dropout);
    printf("%-18s %d\n", "channel_mult_noise", c->channel_mult_noise);
    printf("%-18s %s\n", "embedding_type", c->embedding_type);
    printf("%-18s %s\n", "encoder_type", c->encoder_type);
    printf("%-18s %s\n", "decoder_type", c->decoder_type);
    print_ints("resample_filter", c->resample_filter, c->n_resample_filter);
    printf("%-18s %g\n", "sigma_data", c->sigma_data);
    printf("%-18s %g\n", "sigma_min", c->sigma_min);
    printf("%-18s %g\n", "sigma_max", c->sigma_max);
    if (!strcmp(c->kind, "generator")) printf("%-18s %g\n", "sigma_init", c->sigma_init);
    if (c->label_dim > 0 && strcmp(c->arch, "classifier")) {
        if (c->label_dropout < 0) printf("%-18s not recorded\n", "label_dropout");
        else printf("%-18s %g%s\n", "label_dropout", c->label_dropout,
                    c->label_dropout > 0 ? " (classifier-free guidance: sample --guidance W)" : "");
    }
    printf("%-18s %s (%.2f MiB as float32)\n", "parameters", grouped(np, g, sizeof g),
           (double)np * 4 / (1024.0 * 1024.0));
    printf("%-18s %d\n", "tensors", nt);
    printf("%-18s %.4f per image per evaluation at %dx%d\n", "GFLOP",
           pd_model_gflops(m, c->img_resolution), c->img_resolution, c->img_resolution);
    if (tensors) {
        printf("\n");
        for (int i = 0; i < nt; i++) {
            const char *name = pd_model_tensor(m, i, shape, &nd);
            printf("%-48s [", name);
            size_t numel = 1;
            for (int k = 0; k < nd; k++)
                printf("%s%d", k ? ", " : "", shape[k]), numel *= (size_t)shape[k];
            printf("]  %s\n", grouped(numel, g, sizeof g));
        }
    }
    pd_model_free(m);
    return 0;
}
