/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// Selective-scan configuration sweep at N = 16, fp32 and fp16 (see sweep.cu); the first line per shape
// is the default configuration, which the others are compared with.
#include "sweep_common.cuh"

namespace sweep {

void sweep_n16_types(double rate) {
  for (Shape s : {Shape{8, 1536, 2048, 16}, Shape{4, 2048, 2048, 16}, Shape{8, 5120, 2048, 16}}) {
    run_t<float, 16, 4, 16, 128>(s, rate);
    run_t<float, 16, 0, 0, 0>(s, rate);  // the run-time launcher
    run_t<float, 16, 2, 32, 128>(s, rate);
    run_t<float, 16, 2, 64, 128>(s, rate);  // the few-channels configuration
    run_t<float, 16, 4, 16, 128, 3, 1>(s, rate);
    run_t<float, 16, 4, 16, 128, 2, 1>(s, rate);
    run_t<__half, 16, 4, 32, 128>(s, rate);
    run_t<__half, 16, 4, 32, 128, 3, 1>(s, rate);
  }
}

}  // namespace sweep
