/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file selective_scan.cuh
//! @brief Mamba-1 selective scan forward: parameters, validation and launchers.
//!
//! Three levels of use:
//! - device functions (thread/scan_step.cuh, warp/warp_scan.cuh, block/block_scan.cuh) to
//!   build a scan inside your own kernel;
//! - the kernel template selective_scan_fwd_kernel with SelectiveScanTraits;
//! - host launchers: selective_scan_fwd<T, kNState>() with everything fixed at compile time,
//!   and selective_scan_fwd() that dispatches on the run-time dtype and dstate.
#pragma once

#include <cstdint>

#include "config.cuh"
#include "dispatch.cuh"
#include "kernel/selective_scan_fwd.cuh"
#include "selective_scan_params.cuh"
#include "status.cuh"
#include "types.cuh"

SSMKIT_NAMESPACE_BEGIN

//! Default kernel configuration for a state capacity: states per thread and tile length.
//! Each channel's states are spread over kNState / kStatesPerThread lanes; the tile shrinks
//! for large states so that the B and C tiles fit the static shared-memory limit.
//! @tparam kNState state capacity (16, 32, 64, 128 or 256)
template <int kNState>
struct ScanDefaultConfig {
  //! States held by one thread.
  static constexpr int kStatesPerThread = kNState <= 16 ? 4 : 8;
  //! Time steps per tile.
  static constexpr int kTileLen = kNState <= 32 ? 64 : (kNState <= 128 ? 32 : 16);
  //! Threads per block.
  static constexpr int kThreads = 128;
};

//! Launches the selective-scan forward with every configuration choice fixed at compile time.
//! Validates @p p with can_implement() first; never throws.
//! @tparam T                element type; must match p.dtype
//! @tparam kNState          state capacity; p.dstate must be <= kNState
//! @tparam kStatesPerThread states per thread (divides kNState, multiple of 4)
//! @tparam kTileLen         time steps per tile
//! @tparam kThreads         threads per block
//! @param[in] p      the call's arguments
//! @param[in] stream stream to launch on
template <typename T, int kNState,
          int kStatesPerThread = ScanDefaultConfig<kNState>::kStatesPerThread,
          int kTileLen = ScanDefaultConfig<kNState>::kTileLen,
          int kThreads = ScanDefaultConfig<kNState>::kThreads>
Status selective_scan_fwd(const SelectiveScanParams& p, cudaStream_t stream) {
  using Traits = SelectiveScanTraits<T, kNState, kStatesPerThread, kTileLen, kThreads>;
  SSMKIT_TRY(can_implement(p));
  if (p.dtype != TypeTraits<T>::kDType)
    return Status::Error(StatusCode::kInvalidArgument,
                         "dtype: the arguments are %s but this launcher is compiled for %s",
                         to_string(p.dtype), to_string(TypeTraits<T>::kDType));
  if (p.dstate > kNState)
    return Status::Error(StatusCode::kInvalidArgument,
                         "dstate %lld exceeds this launcher's state capacity %d",
                         static_cast<long long>(p.dstate), kNState);
  const int64_t grid = Traits::grid_size(p);
  if (grid > 0x7fffffff)
    return Status::Error(StatusCode::kInvalidArgument,
                         "batch * dim is too large for one launch (%lld blocks)",
                         static_cast<long long>(grid));
  selective_scan_fwd_kernel<Traits><<<static_cast<unsigned>(grid), kThreads, 0, stream>>>(p);
  SSMKIT_CUDA_TRY(cudaGetLastError());
#if SSMKIT_DEBUG_SYNC
  SSMKIT_CUDA_TRY(cudaStreamSynchronize(stream));
#endif
  return Status::Ok();
}

namespace detail {

//! Run-time dstate dispatch for one element type (explicitly instantiated per dtype by
//! projects that want one translation unit per dtype; see SSMKIT_EXTERN_INSTANCES).
template <typename T>
Status selective_scan_fwd_for_dtype(const SelectiveScanParams& p, cudaStream_t stream) {
  return dispatch_scan_dstate(p.dstate, [&](auto n) {
    return selective_scan_fwd<T, decltype(n)::value>(p, stream);
  });
}

}  // namespace detail

#if defined(SSMKIT_EXTERN_INSTANCES)
// The including project instantiates these in translation units of its own, one per dtype.
extern template Status detail::selective_scan_fwd_for_dtype<float>(const SelectiveScanParams&, cudaStream_t);
extern template Status detail::selective_scan_fwd_for_dtype<__half>(const SelectiveScanParams&, cudaStream_t);
extern template Status detail::selective_scan_fwd_for_dtype<__nv_bfloat16>(const SelectiveScanParams&, cudaStream_t);
#endif

//! Launches the selective-scan forward, choosing the kernel from the run-time p.dtype and
//! p.dstate. Validates @p p with can_implement() first; never throws.
//! @param[in] p      the call's arguments
//! @param[in] stream stream to launch on
inline Status selective_scan_fwd(const SelectiveScanParams& p, cudaStream_t stream) {
  SSMKIT_TRY(can_implement(p));
  return dispatch_dtype(p.dtype, "dtype", [&](auto tag) {
    return detail::selective_scan_fwd_for_dtype<typename decltype(tag)::type>(p, stream);
  });
}

SSMKIT_NAMESPACE_END
