/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// Selective-scan configuration sweep with the fused causal conv1d (W4, silu) at N = 16 (see
// sweep.cu): the mamba-130m and mamba-2.8b training shapes, each first without the conv (the
// scan alone) and then with it; the first line of each is the default configuration.
#include "sweep_common.cuh"

namespace sweep {

void sweep_fused(double rate) {
  for (Shape s : {Shape{8, 1536, 2048, 16}, Shape{8, 5120, 2048, 16}}) {
    for (int w : {0, 4}) {
      g_conv_width = w;
      run<16, 4, 32, 128>(s, rate);
      run<16, 0, 0, 0>(s, rate);  // the run-time launcher
      // kPipe 1: the recurrence first in the loop body; 2: the element work first.
      run<16, 4, 32, 128, 3, 1>(s, rate);
      run<16, 4, 32, 128, 3, 1, 1, false>(s, rate);  // B and C as floats in shared memory
      run<16, 4, 32, 128, 3, 2>(s, rate);
      run<16, 4, 32, 128, 3, 2, 1, false>(s, rate);
      // kPipe 3 and 4: as 1 and 2, the loads copied to shared memory asynchronously.
      run<16, 4, 32, 128, 3, 3>(s, rate);
      run<16, 4, 32, 128, 3, 4>(s, rate);
    }
  }
  g_conv_width = 0;
}

}  // namespace sweep
