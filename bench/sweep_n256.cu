/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// Selective-scan configuration sweep at N = 256 (see sweep.cu); the first line per shape is
// the default configuration, which the others are compared with.
#include "sweep_common.cuh"

namespace sweep {

void sweep_n256(double rate) {
  for (Shape s : {Shape{4, 2048, 2048, 256}, Shape{8, 2048, 2048, 256}}) {
    run<256, 16, 16, 256, 0, false, 2>(s, rate);
    run<256, 16, 16, 512>(s, rate);
    run<256, 32, 16, 256>(s, rate);
    run<256, 16, 32, 256, 0, false, 2>(s, rate);
    run<256, 32, 16, 128>(s, rate);
  }
}

}  // namespace sweep
