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
    // kPipe 1: the recurrence first in the loop body; 2: the element work first.
    run<16, 4, 32, 128, 3, 1>(s, rate);
    run<16, 4, 32, 128, 3, 1, 1, false>(s, rate);  // B and C as floats in shared memory
    run<16, 4, 32, 128, 3, 2>(s, rate);
    run<16, 4, 32, 128, 3, 2, 1, false>(s, rate);
    // kPipe 3 and 4: as 1 and 2, the loads copied to shared memory asynchronously.
    run<16, 4, 32, 128, 3, 3>(s, rate);
    run<16, 4, 32, 128, 3, 4>(s, rate);
    run<16, 4, 32, 128, 3, 4, 1, false>(s, rate);
    run<16, 4, 32, 128, 2, 1>(s, rate);
    run<16, 4, 32, 128, 2, 1, 1, false>(s, rate);
    run<16, 4, 32, 128, 2, 2>(s, rate);
    run<16, 4, 32, 128, 2, 2, 1, false>(s, rate);
    run<16, 4, 32, 128, 2, 3, 1, false>(s, rate);
    run<16, 4, 32, 128, 2, 4, 1, false>(s, rate);
  }
}

}  // namespace sweep
