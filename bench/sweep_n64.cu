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
    run<64, 8, 32, 128, 2, 1, 1, false>(s, rate);  // pipelined, B and C as floats
    run<64, 8, 32, 128, 2, 2, 1, false>(s, rate);  // the same, element work first
    run<64, 8, 32, 128, 3, 1, 1, false>(s, rate);
    run<64, 8, 32, 128, 2, 1, 1, true>(s, rate);   // 16-bit B and C rows
    run<64, 8, 32, 256, 2, 1, 1, false>(s, rate);
    run<64, 8, 32, 256, 2, 2, 1, false>(s, rate);
    run<64, 16, 32, 128, 2, 1, 1, false>(s, rate);
  }
}

}  // namespace sweep
