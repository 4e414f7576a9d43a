/* fuzz_torchfile.c — libFuzzer harness for the checkpoint readers: the restricted pickle machine
 * (core/pickle.c), the legacy torch.save and zip containers (core/torchfile.c, core/zip.c). Any
 * input must give a value tree or an error, never a crash, a leak or an unbounded allocation.
 * Not built by CMake; build and run with clang's libFuzzer and ASan/UBSan, seeding it with the
 * converter fixtures:
 *
 *   clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -I. \
 *       tests/fuzz/fuzz_torchfile.c core/pickle.c core/torchfile.c core/zip.c core/error.c \
 *       -DPD_VERSION='"fuzz"' -I/usr/include/x86_64-linux-gnu/openblas-openmp -lz -fopenmp \
 *       -L/usr/lib/x86_64-linux-gnu/openblas-openmp -lopenblas -o fuzz_torchfile
 *   mkdir -p corpus && for f in tests/fixtures/convert/*.gz; do gzip -dc $f > corpus/$(basename $f .gz); done
 *   cp tests/fixtures/convert/*.pth corpus/ && ./fuzz_torchfile -max_total_time=600 corpus
 */
#include "core/torchfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tf_file f;
    pd_error err;
    if (tf_open_buffer(&f, data, size, "fuzz", &err) == 0) tf_close(&f);
    return 0;
}
