/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// Selective-scan configuration sweep at N = 64 (see sweep.cu); the first line per shape is
// the default configuration, which the others are compared with.
#include "sweep_common.cuh"

namespace sweep {

void sweep_n64(double rate) {
  for (Shape s : {Shape{4, 2048, 2048, 64}, Shape{8, 2048, 2048, 64}}) {
    run<64, 8, 32, 512>(s, rate);
    run<64, 16, 32, 128>(s, rate);
    run<64, 16, 32, 128, 2, true>(s, rate);
    run<64, 16, 32, 128, 3, true>(s, rate);
    run<64, 8, 32, 256>(s, rate);
    run<64, 16, 16, 256>(s, rate);
    run<64, 8, 16, 512>(s, rate);
  }
}

}  // namespace sweep
