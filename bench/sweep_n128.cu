/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// Selective-scan configuration sweep at N = 128 (see sweep.cu); the first line per shape is
// the default configuration, which the others are compared with.
#include "sweep_common.cuh"

namespace sweep {

void sweep_n128(double rate) {
  for (Shape s : {Shape{4, 2048, 2048, 128}, Shape{8, 2048, 2048, 128}}) {
    run<128, 8, 32, 512>(s, rate);
    run<128, 8, 32, 256, 2, 1, 1, false>(s, rate);  // pipelined, B and C as floats
    run<128, 8, 32, 256, 2, 2, 1, false>(s, rate);  // the same, element work first
    run<128, 8, 32, 512, 1, 1, 1, false>(s, rate);
    run<128, 8, 32, 128, 3, 1, 1, false>(s, rate);
    run<128, 16, 32, 256, 2, 1, 1, false>(s, rate);
    run<128, 16, 32, 256>(s, rate);
  }
}

}  // namespace sweep
