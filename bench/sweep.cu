/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// Configuration sweep of the selective-scan kernel (states per thread, tile length, threads,
// register budget, pipelined loop, channels per thread) on the benchmark's shapes, to choose
// the dispatcher's defaults. Built with -DSSMKIT_BENCH_SWEEP=ON.
//   ssmkit_sweep [16|32|64|128|256|fused|split|all] [exp2 rate]      (default: all)
// One translation unit per state size (bench/sweep_n*.cu), so that they compile in parallel.
#include "sweep_common.cuh"

int main(int argc, char** argv) {
  const char* which = argc > 1 ? argv[1] : "all";
  // ex2.approx rate of the device (ssmkit_bench measures it: 4.15e12 /s on H100 and H200).
  const double rate = argc > 2 ? std::atof(argv[2]) : 4.15e12;
  const bool all = std::strcmp(which, "all") == 0;
  auto wants = [&](const char* n) { return all || std::strcmp(which, n) == 0; };
  if (wants("16")) {
    sweep::sweep_n16(rate);
    sweep::sweep_n16_types(rate);
  }
  if (wants("32")) sweep::sweep_n32(rate);
  if (wants("64")) sweep::sweep_n64(rate);
  if (wants("128")) sweep::sweep_n128(rate);
  if (wants("256")) sweep::sweep_n256(rate);
  if (wants("fused")) sweep::sweep_fused(rate);
  if (wants("split")) sweep::sweep_split(rate);
  return 0;
}
