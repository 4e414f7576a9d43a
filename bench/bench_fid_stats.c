/* bench_fid_stats — the FID between two statistics files (.npz with mu [d] and sigma [d, d], as
 * pytorch-fid --save-stats, EDM's fid-refs and pixdiff eval --save-ref write them), through
 * pd_fd_gaussian (metrics/fd.c), with its wall time: the check of pixdiff's matrix square root
 * against scipy's (bench/fid_vs_pytorch_fid.py) and the cost of the last step of an FID.
 *   bench_fid_stats A.npz B.npz        prints "fid %.17g" and the seconds
 */
#include "pixdiff.h"
#include "core/util.h"

#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: bench_fid_stats A.npz B.npz\n");
        return 2;
    }
    pd_feature_stats a, b;
    pd_error err = {{0}};
    if (pd_npz_stats_read(argv[1], &a, 0, &err) || pd_npz_stats_read(argv[2], &b, a.dim, &err)) {
        fprintf(stderr, "bench_fid_stats: %s\n", err.msg);
        return 1;
    }
    double fid = 0, t0 = core_now();
    if (pd_fd_gaussian(a.mu, a.sigma, b.mu, b.sigma, a.dim, &fid, &err)) {
        fprintf(stderr, "bench_fid_stats: %s\n", err.msg);
        return 1;
    }
    printf("fid %.17g\nseconds %.3f (d = %d)\n", fid, core_now() - t0, a.dim);
    pd_feature_stats_free(&a);
    pd_feature_stats_free(&b);
    return 0;
}
