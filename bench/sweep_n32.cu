/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// Selective-scan configuration sweep at N = 32 (see sweep.cu); the first line per shape is
// the default configuration, which the others are compared with.
#include "sweep_common.cuh"

namespace sweep {

void sweep_n32(double rate) {
  for (Shape s : {Shape{4, 2048, 2048, 32}, Shape{8, 2048, 2048, 32}}) {
    run<32, 4, 32, 256>(s, rate);
    run<32, 8, 32, 128>(s, rate);
    run<32, 8, 32, 128, 3, 1>(s, rate);
    run<32, 8, 32, 128, 2, 1>(s, rate);
    run<32, 8, 32, 128, 2, 1, 1, false>(s, rate);  // B and C as floats in shared memory
    run<32, 8, 32, 128, 2, 2, 1, false>(s, rate);  // the same, element work first in the loop
    run<32, 8, 32, 128, 2, 4, 1, false>(s, rate);  // the same, loads copied asynchronously
    run<32, 4, 32, 128>(s, rate);
    run<32, 8, 64, 128>(s, rate);
    run<32, 8, 32, 256>(s, rate);
  }
}

}  // namespace sweep
