/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file warp/warp_scan.cuh
//! @brief Warp-wide pieces: scan of (a, b) pairs and sums over groups of lanes.
#pragma once

#include <cub/warp/warp_scan.cuh>

#include "../config.cuh"
#include "../thread/scan_step.cuh"

SSMKIT_NAMESPACE_BEGIN

//! Inclusive scan of one ScanPair per lane over a (logical) warp of @p kLogicalThreads lanes.
//! A thin, documented wrapper over cub::WarpScan with the recurrence operator.
//! @tparam kLogicalThreads lanes per logical warp (a power of two up to 32)
template <int kLogicalThreads = 32>
class WarpPairScan {
  using Impl = cub::WarpScan<ScanPair, kLogicalThreads>;

 public:
  //! Shared memory the collective needs (none on sm_70+, kept for interface symmetry).
  using TempStorage = typename Impl::TempStorage;

  //! Binds the collective to @p storage.
  SSMKIT_DEVICE explicit WarpPairScan(TempStorage& storage) : impl_(storage) {}

  //! Inclusive scan; @p aggregate receives the composition of all lanes' pairs.
  SSMKIT_DEVICE void InclusiveScan(ScanPair input, ScanPair& output, ScanPair& aggregate) {
    impl_.InclusiveScan(input, output, ScanPairOp{}, aggregate);
  }

 private:
  Impl impl_;
};

//! Sum of @p v over aligned groups of @p kGroup consecutive lanes; every lane of a group gets
//! the group's sum. All 32 lanes of the warp must call it.
//! @tparam kGroup lanes per group (a power of two up to 32)
template <int kGroup>
SSMKIT_DEVICE float group_sum(float v) {
  static_assert(kGroup >= 1 && kGroup <= 32 && (kGroup & (kGroup - 1)) == 0,
                "group size must be a power of two up to 32");
#pragma unroll
  for (int off = kGroup / 2; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

SSMKIT_NAMESPACE_END
