/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// Selective-scan sweep at N = 16, bf16, on shapes whose batch x channels leave most of the GPU
// idle, so that the launcher cuts the sequence across blocks (see sweep.cu): what the run-time
// launcher picks against the few-channels configuration and the pipelined loop at 4 and 8
// states per thread. The first line per shape is the run-time launcher.
#include "sweep_common.cuh"

namespace sweep {

void sweep_split(double rate) {
  for (Shape s : {Shape{1, 1536, 2048, 16}, Shape{1, 2048, 16384, 16}, Shape{1, 2048, 65536, 16},
                  Shape{2, 2560, 8192, 16}, Shape{1, 5120, 4096, 16}, Shape{1, 768, 32768, 16}}) {
    run<16, 0, 0, 0>(s, rate);     // the run-time launcher
    run<16, 2, 64, 128>(s, rate);  // the few-channels configuration
    run<16, 4, 32, 128, 2, 1>(s, rate);
    run<16, 4, 32, 128, 3, 1>(s, rate);
    run<16, 8, 32, 128, 2, 1>(s, rate);
    run<16, 8, 32, 64, 3, 1>(s, rate);
  }
}

}  // namespace sweep
