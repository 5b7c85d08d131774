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
//! - host launchers: selective_state_update<T, TState, kNState, ...>() with the tile
//!   configuration fixed at compile time, and selective_state_update() that dispatches on the
//!   run-time dtype, state_dtype and dstate and picks the configuration from the size of the
//!   call (SelectiveStateUpdateDefaults).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "config.cuh"
#include "dispatch.cuh"
#include "kernel/selective_state_update.cuh"
#include "launch.cuh"
#include "selective_state_update_params.cuh"
#include "status.cuh"
#include "types.cuh"

SSMKIT_NAMESPACE_BEGIN

//! One tile configuration of the decode kernel (see SelectiveStateUpdateTraits).
//! @tparam kStatesPerThread_ states per thread and row (a multiple of 8)
//! @tparam kRowsPerThread_   rows per thread
//! @tparam kThreads_         threads per block
//! @tparam kMinBlocksPerSM_  blocks per SM the register budget is sized for
template <int kStatesPerThread_, int kRowsPerThread_, int kThreads_, int kMinBlocksPerSM_ = 1>
struct SelectiveStateUpdateConfig {
  static constexpr int kStatesPerThread = kStatesPerThread_;  //!< States per thread and row.
  static constexpr int kRowsPerThread = kRowsPerThread_;      //!< Rows per thread.
  static constexpr int kThreads = kThreads_;                  //!< Threads per block.
  static constexpr int kMinBlocksPerSM = kMinBlocksPerSM_;    //!< For __launch_bounds__.
};

//! The two configurations the run-time launcher chooses between for state capacity
//! @p kNState, and where it switches.
//!
//! - @c Latency: for calls with few rows (decoding one or a few sequences). Such a call lasts
//!   a few memory round trips; at N = 16 one thread takes a whole row (no shuffles) in blocks
//!   of 32 threads that spread over every SM, from N = 32 a row is spread over lanes with 32
//!   states each, in blocks of 64.
//! - @c Bandwidth: for calls with many rows. The state is read and written once, so the kernel
//!   must keep enough bytes in flight per SM (Little's law: about 20 KB per SM of an H100 for
//!   90 % of its bandwidth): at N = 16, 8 states per thread with the register budget capped
//!   for 12 blocks of 64 threads per SM (the Mamba-1 form holds A per state: occupancy
//!   matters); from N = 32, 32 states per thread in blocks of 128.
//!
//! The switch is at @c kBandwidthThreads threads of the latency configuration. The choices
//! and the switch are the fastest of a sweep over batch 1-128 on an H100 at the Mamba-1 2.8b
//! and Mamba-2 2.7b shapes (bench/NOTES.md, "Decode step").
//! @tparam kNState state capacity (16, 32, 64, 128 or 256)
template <int kNState>
struct SelectiveStateUpdateDefaults {
  //! Configuration for few rows.
  using Latency = SelectiveStateUpdateConfig<(kNState < 32 ? kNState : 32), 1, (kNState < 32 ? 32 : 64)>;
  //! Configuration for many rows.
  using Bandwidth = SelectiveStateUpdateConfig<(kNState < 32 ? 8 : 32), 1, (kNState < 32 ? 64 : 128),
                                               (kNState < 32 ? 12 : 1)>;
  //! Calls with at least this many threads of the latency configuration use @c Bandwidth.
  static constexpr int64_t kBandwidthThreads = kNState < 32 ? int64_t{1} << 14 : int64_t{1} << 18;
};

namespace detail {

// True if every access of the call can be a whole 16-byte vector: dstate fills the capacity,
// and every row of state, intermediate states, B, C (and A unless it is broadcast over
// dstate) is contiguous and 16-byte aligned, whatever the slot, batch row, token or head.
inline bool ssu_vectorizable(const SelectiveStateUpdateParams& p, int64_t nstate) noexcept {
  auto rows16 = [](const void* ptr, int64_t elem, std::initializer_list<int64_t> strides) {
    if (!is_aligned(ptr, 16)) return false;
    for (int64_t st : strides)
      if ((st * elem) % 16 != 0) return false;
    return true;
  };
  const int64_t es = dtype_size(p.dtype), ss = dtype_size(p.state_dtype);
  if (p.dstate != nstate) return false;
  if (!rows16(p.state, ss, {p.state_batch_stride, p.state_head_stride, p.state_dim_stride})) return false;
  if (p.intermediate_states &&
      !rows16(p.intermediate_states, ss,
              {p.inter_batch_stride, p.inter_token_stride, p.inter_head_stride, p.inter_dim_stride}))
    return false;
  if (p.B_dstate_stride != 1 || !rows16(p.B, es, {p.B_batch_stride, p.B_token_stride, p.B_group_stride}))
    return false;
  if (p.C_dstate_stride != 1 || !rows16(p.C, es, {p.C_batch_stride, p.C_token_stride, p.C_group_stride}))
    return false;
  if (p.A_dstate_stride != 0 && (p.A_dstate_stride != 1 || !rows16(p.A, 4, {p.A_head_stride, p.A_dim_stride})))
    return false;
  return true;
}

// True if p is in the serving layout of selective_state_update_serving_kernel (on top of
// ssu_vectorizable()): one token, no intermediate states, batch below 65536, and within a
// batch row state, x, z, out (and A unless broadcast over dstate) contiguous over (head,
// channel[, state]), B and C over (group, state), and dt, dt_bias and D one value per head
// (stride 1 over heads; stride 0 over channels unless headdim is 1), with fewer than 2^31
// states per batch row.
inline bool ssu_serving_layout(const SelectiveStateUpdateParams& p) noexcept {
  const int64_t H = p.nheads, P = p.headdim, N = p.dstate, G = p.ngroups;
  auto dim_ok = [](int64_t size, int64_t stride, int64_t want) { return size <= 1 || stride == want; };
  auto per_head = [&](int64_t head_stride, int64_t dim_stride) {
    return dim_ok(H, head_stride, 1) && (P == 1 || dim_stride == 0);
  };
  auto rows = [&](int64_t head_stride, int64_t dim_stride) {
    return dim_ok(P, dim_stride, 1) && dim_ok(H, head_stride, P);
  };
  if (p.ntokens != 1 || p.intermediate_states != nullptr || p.batch > 65535) return false;
  if (H * P * N >= (int64_t{1} << 31)) return false;
  if (!dim_ok(P, p.state_dim_stride, N) || !dim_ok(H, p.state_head_stride, P * N)) return false;
  if (!rows(p.x_head_stride, p.x_dim_stride) || !rows(p.out_head_stride, p.out_dim_stride)) return false;
  if (p.z && !rows(p.z_head_stride, p.z_dim_stride)) return false;
  if (!per_head(p.dt_head_stride, p.dt_dim_stride)) return false;
  if (p.D && !per_head(p.D_head_stride, p.D_dim_stride)) return false;
  if (p.dt_bias && !per_head(p.dt_bias_head_stride, p.dt_bias_dim_stride)) return false;
  if (!dim_ok(G, p.B_group_stride, N) || !dim_ok(G, p.C_group_stride, N)) return false;
  if (p.A_dstate_stride == 0) return per_head(p.A_head_stride, p.A_dim_stride);
  return dim_ok(P, p.A_dim_stride, N) && dim_ok(H, p.A_head_stride, P * N);
}

// Launches the kernel of Traits on p (already validated); the serving kernel if kServing.
template <class Traits, bool kServing = false>
Status ssu_launch(const SelectiveStateUpdateParams& p, cudaStream_t stream, const LaunchOptions& opts) {
  // x: the rows of one batch row; y (and z beyond 65535): the batch rows.
  const int64_t gx = Traits::grid_x(p);
  const int64_t gz = (p.batch + 65534) / 65535;
  const int64_t gy = (p.batch + gz - 1) / gz;
  if (gx > 0x7fffffff || gz > 65535)
    return Status::Error(StatusCode::kInvalidArgument, "batch * nheads * headdim is too large for one launch");
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy), static_cast<unsigned>(gz));
  cudaError_t e;
  if constexpr (kServing)
    e = launch_kernel(selective_state_update_serving_kernel<Traits>, grid, dim3(Traits::kThreads), 0, stream, opts, p);
  else
    e = launch_kernel(selective_state_update_kernel<Traits>, grid, dim3(Traits::kThreads), 0, stream, opts, p);
  if (e != cudaSuccess) return Status::FromCuda(e, "selective_state_update_kernel");
#if SSMKIT_DEBUG_SYNC
  SSMKIT_CUDA_TRY(cudaStreamSynchronize(stream));
#endif
  return Status::Ok();
}

// The traits of configuration Cfg.
template <typename T, typename TState, int kNState, class Cfg, bool kScalarA, bool kVec>
using SsuTraitsOf = SelectiveStateUpdateTraits<T, TState, kNState, Cfg::kStatesPerThread, Cfg::kRowsPerThread,
                                               Cfg::kThreads, Cfg::kMinBlocksPerSM, kScalarA, kVec>;

// Launches configuration Cfg as the all-vector kernel (A broadcast over dstate or not), or
// as the serving kernel where the layout allows it, Cfg has one row per thread and the
// capacity is 16 (Mamba-1). On an H100 the serving kernel took Mamba-1 2.8b batch 1 from
// 2.11 to 1.94 us and batch 128 from 31.9 to 30.5 us; at Mamba-2 2.7b (N = 128) it was no
// faster at batch 1 and 3.5 % slower at batch 128, so larger capacities keep the general
// kernel (bench/NOTES.md, "Decode step").
template <typename T, typename TState, int kNState, class Cfg>
Status ssu_launch_vec(const SelectiveStateUpdateParams& p, cudaStream_t stream, const LaunchOptions& opts) {
  if constexpr (Cfg::kRowsPerThread == 1 && kNState == 16) {
    if (ssu_serving_layout(p)) {
      if (p.A_dstate_stride == 0) return ssu_launch<SsuTraitsOf<T, TState, kNState, Cfg, true, true>, true>(p, stream, opts);
      return ssu_launch<SsuTraitsOf<T, TState, kNState, Cfg, false, true>, true>(p, stream, opts);
    }
  }
  if (p.A_dstate_stride == 0) return ssu_launch<SsuTraitsOf<T, TState, kNState, Cfg, true, true>>(p, stream, opts);
  return ssu_launch<SsuTraitsOf<T, TState, kNState, Cfg, false, true>>(p, stream, opts);
}

// Checks the compile-time types and capacity against p.
template <typename T, typename TState, int kNState>
Status ssu_check_instance(const SelectiveStateUpdateParams& p) {
  if (p.dtype != TypeTraits<T>::kDType)
    return Status::Error(StatusCode::kInvalidArgument,
                         "dtype: the arguments are %s but this launcher is compiled for %s",
                         to_string(p.dtype), to_string(TypeTraits<T>::kDType));
  if (p.state_dtype != TypeTraits<TState>::kDType)
    return Status::Error(StatusCode::kInvalidArgument,
                         "state_dtype: the state is %s but this launcher is compiled for %s",
                         to_string(p.state_dtype), to_string(TypeTraits<TState>::kDType));
  if (p.dstate > kNState)
    return Status::Error(StatusCode::kInvalidArgument, "dstate %lld exceeds this launcher's state capacity %d",
                         static_cast<long long>(p.dstate), kNState);
  return Status::Ok();
}

}  // namespace detail

//! Launches the decode step with the tile configuration fixed at compile time. The kernel
//! variant follows @p p: one exp2 per row when A is broadcast over dstate, and 16-byte
//! accesses only where every row is contiguous and aligned (otherwise an element-wise
//! fallback). Validates @p p with can_implement() first; never throws. Capturable in a CUDA
//! graph (no allocation, no synchronisation).
//! @tparam T                element type of x, dt, z, B, C and out; must match p.dtype
//! @tparam TState           element type of the state; must match p.state_dtype
//! @tparam kNState          state capacity; p.dstate must be <= kNState
//! @tparam kStatesPerThread states per thread and row (a multiple of 8)
//! @tparam kRowsPerThread   rows per thread
//! @tparam kThreads         threads per block
//! @tparam kMinBlocksPerSM  blocks per SM the register budget is sized for
//! @param[in] p      the call's arguments
//! @param[in] stream stream to launch on
//! @param[in] opts   launch options (programmatic dependent launch)
template <typename T, typename TState, int kNState, int kStatesPerThread = 8, int kRowsPerThread = 1,
          int kThreads = 64, int kMinBlocksPerSM = 1>
Status selective_state_update(const SelectiveStateUpdateParams& p, cudaStream_t stream,
                              const LaunchOptions& opts = {}) {
  using Cfg = SelectiveStateUpdateConfig<kStatesPerThread, kRowsPerThread, kThreads, kMinBlocksPerSM>;
  SSMKIT_TRY(can_implement(p));
  SSMKIT_TRY((detail::ssu_check_instance<T, TState, kNState>(p)));
  if (detail::ssu_vectorizable(p, kNState)) return detail::ssu_launch_vec<T, TState, kNState, Cfg>(p, stream, opts);
  return detail::ssu_launch<detail::SsuTraitsOf<T, TState, kNState, Cfg, false, false>>(p, stream, opts);
}

namespace detail {

// True if the run-time launcher runs p (all-vector) in the bandwidth configuration.
template <int kNState>
bool ssu_uses_bandwidth_config(const SelectiveStateUpdateParams& p) {
  using Defaults = SelectiveStateUpdateDefaults<kNState>;
  const int64_t threads = p.batch * p.nheads * p.headdim * (kNState / Defaults::Latency::kStatesPerThread);
  return threads >= Defaults::kBandwidthThreads;
}

// The run-time launcher for one (T, TState, kNState): the configuration of
// SelectiveStateUpdateDefaults by the number of states; calls that cannot be all-vector run
// the element-wise fallback in the latency configuration.
template <typename T, typename TState, int kNState>
Status ssu_launch_default(const SelectiveStateUpdateParams& p, cudaStream_t stream, const LaunchOptions& opts) {
  using Defaults = SelectiveStateUpdateDefaults<kNState>;
  SSMKIT_TRY((ssu_check_instance<T, TState, kNState>(p)));
  if (!ssu_vectorizable(p, kNState))
    return ssu_launch<SsuTraitsOf<T, TState, kNState, typename Defaults::Latency, false, false>>(p, stream, opts);
  if (ssu_uses_bandwidth_config<kNState>(p))
    return ssu_launch_vec<T, TState, kNState, typename Defaults::Bandwidth>(p, stream, opts);
  return ssu_launch_vec<T, TState, kNState, typename Defaults::Latency>(p, stream, opts);
}

//! Run-time state_dtype and dstate dispatch for one activation type (explicitly instantiated
//! per dtype by projects that want one translation unit per dtype; see SSMKIT_EXTERN_INSTANCES).
template <typename T>
Status selective_state_update_for_dtype(const SelectiveStateUpdateParams& p, cudaStream_t stream,
                                        const LaunchOptions& opts) {
  return dispatch_dtype(p.state_dtype, "state_dtype", [&](auto tag) {
    using TS = typename decltype(tag)::type;
    return dispatch_scan_dstate(p.dstate, [&](auto n) {
      return ssu_launch_default<T, TS, decltype(n)::value>(p, stream, opts);
    });
  });
}

}  // namespace detail

#if defined(SSMKIT_EXTERN_INSTANCES)
// The including project instantiates these in translation units of its own, one per dtype.
extern template Status detail::selective_state_update_for_dtype<float>(const SelectiveStateUpdateParams&, cudaStream_t,
                                                                        const LaunchOptions&);
extern template Status detail::selective_state_update_for_dtype<__half>(const SelectiveStateUpdateParams&, cudaStream_t,
                                                                        const LaunchOptions&);
extern template Status detail::selective_state_update_for_dtype<__nv_bfloat16>(const SelectiveStateUpdateParams&, cudaStream_t,
                                                                        const LaunchOptions&);
#endif

//! Launches the decode step, choosing the kernel from the run-time p.dtype, p.state_dtype and
//! p.dstate, and the tile configuration from the number of states
//! (SelectiveStateUpdateDefaults). Validates @p p with can_implement() first; never throws.
//! @param[in] p      the call's arguments
//! @param[in] stream stream to launch on
//! @param[in] opts   launch options (programmatic dependent launch)
template <typename Deferred = void, detail::if_defaulted_t<Deferred> = 0>
Status selective_state_update(const SelectiveStateUpdateParams& p, cudaStream_t stream,
                                     const LaunchOptions& opts = {}) {
  SSMKIT_TRY(can_implement(p));
  return dispatch_dtype(p.dtype, "dtype", [&](auto tag) {
    return detail::selective_state_update_for_dtype<detail::deferred_t<typename decltype(tag)::type, Deferred>>(p, stream, opts);
  });
}

SSMKIT_NAMESPACE_END
