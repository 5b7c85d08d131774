/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// Selective-scan configuration sweep at N = 16, bf16 (see sweep.cu); the first line per shape
// is the default configuration, which the others are compared with.
#include "sweep_common.cuh"

namespace sweep {

void sweep_n16(double rate) {
  for (Shape s : {Shape{8, 1536, 2048, 16}, Shape{4, 2048, 2048, 16}, Shape{1, 5120, 4096, 16},
                  Shape{8, 5120, 2048, 16}, Shape{1, 2048, 65536, 16}}) {
    // minB: blocks per SM the registers are sized for (0: the traits' rule, 4 at 128 threads).
    run<16, 4, 32, 128>(s, rate);
    run<16, 2, 64, 128>(s, rate);  // the few-channels configuration
    // Software-pipelined main loop (two stages, one barrier per tile).
    run<16, 0, 0, 0>(s, rate);  // the run-time launcher
    run<16, 4, 32, 128, 3, true>(s, rate);
    run<16, 4, 32, 128, 3, true, 1, false>(s, rate);  // B and C as floats in shared memory
    run<16, 4, 32, 128, 2, true>(s, rate);
    run<16, 4, 32, 128, 2, true, 1, false>(s, rate);
    // Two channels per thread (B and C read once for both), pipelined.
    run<16, 4, 16, 64, 3, true, 2>(s, rate);
    // Eight states per thread (two lanes per channel), pipelined: what won at N = 32.
    run<16, 8, 32, 128, 2, true>(s, rate);
    run<16, 8, 32, 64, 3, true>(s, rate);
  }
}

}  // namespace sweep
