/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file selective_state_update.cuh
//! @brief Decode step of Mamba-1 and Mamba-2 (selective state update): parameters,
//! validation and launchers.
//!
//! Two levels of use:
//! - the kernel template selective_state_update_kernel with SelectiveStateUpdateTraits;
//! - host launchers: selective_state_update<T, TState, kNState>() with everything fixed at
//!   compile time, and selective_state_update() that dispatches on the run-time dtype,
//!   state_dtype and dstate.
#pragma once

#include <cstdint>

#include "config.cuh"
#include "dispatch.cuh"
#include "kernel/selective_state_update.cuh"
#include "selective_state_update_params.cuh"
#include "status.cuh"
#include "types.cuh"

SSMKIT_NAMESPACE_BEGIN

//! Launches the decode step with every configuration choice fixed at compile time. Validates
//! @p p with can_implement() first; never throws. Capturable in a CUDA graph (no allocation,
//! no synchronisation).
//! @tparam T                element type of x, dt, z, B, C and out; must match p.dtype
//! @tparam TState           element type of the state; must match p.state_dtype
//! @tparam kNState          state capacity; p.dstate must be <= kNState
//! @tparam kStatesPerThread states per thread (8: the tested configuration)
//! @tparam kThreads         threads per block
//! @tparam kMinBlocksPerSM  blocks per SM the register budget is sized for
//! @param[in] p      the call's arguments
//! @param[in] stream stream to launch on
template <typename T, typename TState, int kNState, int kStatesPerThread = 8, int kThreads = 64,
          int kMinBlocksPerSM = 16>
Status selective_state_update(const SelectiveStateUpdateParams& p, cudaStream_t stream) {
  using Traits = SelectiveStateUpdateTraits<T, TState, kNState, kStatesPerThread, kThreads, kMinBlocksPerSM>;
  SSMKIT_TRY(can_implement(p));
  if (p.dtype != TypeTraits<T>::kDType)
    return Status::Error(StatusCode::kInvalidArgument,
                         "dtype: the arguments are %s but this launcher is compiled for %s",
                         to_string(p.dtype), to_string(TypeTraits<T>::kDType));
  if (p.state_dtype != TypeTraits<TState>::kDType)
    return Status::Error(StatusCode::kInvalidArgument,
                         "state_dtype: the state is %s but this launcher is compiled for %s",
                         to_string(p.state_dtype), to_string(TypeTraits<TState>::kDType));
  if (p.dstate > kNState)
    return Status::Error(StatusCode::kInvalidArgument,
                         "dstate %lld exceeds this launcher's state capacity %d",
                         static_cast<long long>(p.dstate), kNState);
  // x: the rows of one batch row; y (and z beyond 65535): the batch rows.
  const int64_t gx = Traits::grid_x(p);
  const int64_t gz = (p.batch + 65534) / 65535;
  const int64_t gy = (p.batch + gz - 1) / gz;
  if (gx > 0x7fffffff || gz > 65535)
    return Status::Error(StatusCode::kInvalidArgument,
                         "batch * nheads * headdim is too large for one launch");
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy), static_cast<unsigned>(gz));
  selective_state_update_kernel<Traits><<<grid, Traits::kThreads, 0, stream>>>(p);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return Status::FromCuda(e, "selective_state_update_kernel");
#if SSMKIT_DEBUG_SYNC
  SSMKIT_CUDA_TRY(cudaStreamSynchronize(stream));
#endif
  return Status::Ok();
}

namespace detail {

//! Run-time state_dtype and dstate dispatch for one activation type (explicitly instantiated
//! per dtype by projects that want one translation unit per dtype; see SSMKIT_EXTERN_INSTANCES).
template <typename T>
Status selective_state_update_for_dtype(const SelectiveStateUpdateParams& p, cudaStream_t stream) {
  return dispatch_dtype(p.state_dtype, "state_dtype", [&](auto tag) {
    using TS = typename decltype(tag)::type;
    return dispatch_scan_dstate(p.dstate, [&](auto n) {
      return selective_state_update<T, TS, decltype(n)::value>(p, stream);
    });
  });
}

}  // namespace detail

#if defined(SSMKIT_EXTERN_INSTANCES)
// The including project instantiates these in translation units of its own, one per dtype.
extern template Status detail::selective_state_update_for_dtype<float>(const SelectiveStateUpdateParams&, cudaStream_t);
extern template Status detail::selective_state_update_for_dtype<__half>(const SelectiveStateUpdateParams&, cudaStream_t);
extern template Status detail::selective_state_update_for_dtype<__nv_bfloat16>(const SelectiveStateUpdateParams&, cudaStream_t);
#endif

//! Launches the decode step, choosing the kernel from the run-time p.dtype, p.state_dtype
//! and p.dstate. Validates @p p with can_implement() first; never throws.
//! @param[in] p      the call's arguments
//! @param[in] stream stream to launch on
inline Status selective_state_update(const SelectiveStateUpdateParams& p, cudaStream_t stream) {
  SSMKIT_TRY(can_implement(p));
  return dispatch_dtype(p.dtype, "dtype", [&](auto tag) {
    return detail::selective_state_update_for_dtype<typename decltype(tag)::type>(p, stream);
  });
}

SSMKIT_NAMESPACE_END
