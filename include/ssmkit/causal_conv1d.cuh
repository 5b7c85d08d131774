/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file causal_conv1d.cuh
//! @brief Causal depthwise conv1d: forward (channel-first and channel-last) and the decode
//! update; parameters, validation and launchers.
//!
//! Three levels of use:
//! - the block device function BlockConv1dTile (block/conv1d_tile.cuh), to convolve a tile
//!   of a channel row inside your own kernel;
//! - the kernel templates with CausalConv1dTraits (kernel/causal_conv1d.cuh);
//! - host launchers: causal_conv1d_fwd<T, TW, kWidth, kChannelLast, kTileLen>() and
//!   causal_conv1d_update<T, TW, kWidth>() with everything fixed at compile time, and
//!   causal_conv1d_fwd() / causal_conv1d_update() that dispatch on the run-time dtypes,
//!   width and layout.
//!
//! Parameters (CausalConv1dParams, CausalConv1dUpdateParams) and can_implement() are in
//! causal_conv1d_params.cuh, included here.
#pragma once

#include <cstdint>

#include "causal_conv1d_params.cuh"
#include "config.cuh"
#include "dispatch.cuh"
#include "kernel/causal_conv1d.cuh"
#include "launch.cuh"
#include "status.cuh"
#include "types.cuh"

SSMKIT_NAMESPACE_BEGIN

//! Default configuration of the conv1d forward, chosen from registers and bytes in flight per
//! SM (bench/NOTES.md; bench/sweep_conv1d.cu times the alternatives).
//! Channel-first: tiles of two 16-byte vectors per thread of a 128-thread block (2048
//! positions for 2-byte types, 1024 for float), registers sized for 8 blocks per SM (6 for
//! widths above 5). Channel-last: chunks of 64 bytes per thread (at most 8 positions); for
//! 2-byte types up to width 4, 8 channels (16 bytes per position) with registers for 3 blocks
//! per SM, which two H100 sweeps measured faster than 4 channels at 4 blocks on both of their
//! shapes (bf16 B4 D10240 L4096: 88.5-90.3 % of copy bandwidth against 86.8-86.9 %; B8 D3072
//! L2048: 77.8-79.9 % against 69.6-75.1 %); otherwise detail::conv_channels() channels with
//! registers for 4 blocks per SM.
//! @tparam T            element type of x
//! @tparam kChannelLast layout
//! @tparam kWidth       filter taps
template <typename T, bool kChannelLast, int kWidth = 4>
struct ConvDefaultConfig {
  //! Channel-last: 16 bytes of channels per position for 2-byte types up to width 4.
  static constexpr bool kWideChannels = sizeof(T) == 2 && kWidth <= 4;
  //! Channel-last: channels per thread.
  static constexpr int kChannels = kWideChannels ? 8 : detail::conv_channels<T>(kWidth);
  //! Channel-last: bytes of a thread's channels at one position.
  static constexpr int kChannelBytes = kChannels * static_cast<int>(sizeof(T));
  //! Positions per tile (channel-last: per chunk, 64 bytes per thread and at most 8).
  static constexpr int kTileLen =
      kChannelLast ? (kChannelBytes >= 8 ? 64 / kChannelBytes : 8) : 128 * 2 * kVecElems<T>;
  //! Blocks per SM the register budget is sized for.
  static constexpr int kMinBlocksPerSM = kChannelLast ? (kWideChannels ? 3 : 4) : (kWidth > 5 ? 6 : 8);
  //! Threads per block.
  static constexpr int kThreads = 128;
};

//! Default configuration of the conv1d decode update: batch entries per thread of the
//! vectorised kernel, used when the batch holds at least kRowsFromBatch entries. On an H100
//! (D 10240, W 4, bf16) one entry per thread was the fastest at batch 64 and 256: two and four
//! entries per thread measured 7-10 % slower (bench/results/2026-11-25-0233-h100-sxm-conv1d-sweep.txt),
//! so large batches also take one.
struct ConvUpdateDefaultConfig {
  static constexpr int kRows = 1;                //!< Entries per thread at large batch.
  static constexpr int64_t kRowsFromBatch = 128;  //!< Smallest batch that uses kRows.
};

namespace detail {

template <typename T, typename TW>
Status check_conv_types(DType dtype, DType weight_dtype) {
  if (dtype != TypeTraits<T>::kDType)
    return Status::Error(StatusCode::kInvalidArgument,
                         "dtype: the arguments are %s but this launcher is compiled for %s",
                         to_string(dtype), to_string(TypeTraits<T>::kDType));
  if (weight_dtype != TypeTraits<TW>::kDType)
    return Status::Error(StatusCode::kInvalidArgument,
                         "weight_dtype: the weight is %s but this launcher is compiled for %s",
                         to_string(weight_dtype), to_string(TypeTraits<TW>::kDType));
  return Status::Ok();
}

}  // namespace detail

//! Launches the causal conv1d forward with every configuration choice fixed at compile time.
//! Validates @p p with can_implement() first; never throws.
//! @tparam T            element type of x, out and the states; must match p.dtype
//! @tparam TW           element type of weight and bias; must match p.weight_dtype
//! @tparam kWidth       filter taps; must equal p.width
//! @tparam kChannelLast layout; must match causal_conv1d_is_channel_last(p)
//! @tparam kTileLen     positions per tile (channel-last: per chunk)
//! @tparam kMinBlocks   blocks per SM the register budget is sized for
//! @tparam kChannels    channel-last: channels per thread
//! @tparam kThreads     threads per block
//! @param[in] p      the call's arguments
//! @param[in] stream stream to launch on
template <typename T, typename TW, int kWidth, bool kChannelLast,
          int kTileLen = ConvDefaultConfig<T, kChannelLast, kWidth>::kTileLen,
          int kMinBlocks = ConvDefaultConfig<T, kChannelLast, kWidth>::kMinBlocksPerSM,
          int kChannels = ConvDefaultConfig<T, kChannelLast, kWidth>::kChannels,
          int kThreads = ConvDefaultConfig<T, kChannelLast, kWidth>::kThreads>
Status causal_conv1d_fwd(const CausalConv1dParams& p, cudaStream_t stream) {
  using Traits = CausalConv1dTraits<T, TW, kWidth, kTileLen, kChannelLast, kMinBlocks, kChannels, kThreads>;
  SSMKIT_TRY(can_implement(p));
  SSMKIT_TRY((detail::check_conv_types<T, TW>(p.dtype, p.weight_dtype)));
  if (p.width != kWidth)
    return Status::Error(StatusCode::kInvalidArgument,
                         "width %lld differs from this launcher's width %d",
                         static_cast<long long>(p.width), kWidth);
  if (causal_conv1d_is_channel_last(p) != kChannelLast)
    return Status::Error(StatusCode::kInvalidArgument,
                         "x: the layout is %s but this launcher is compiled for %s",
                         kChannelLast ? "channel-first" : "channel-last",
                         kChannelLast ? "channel-last" : "channel-first");
  int device = 0, sm_count = 0;
  SSMKIT_CUDA_TRY(detail::current_device_sms(device, sm_count));
  const int64_t run_len = kChannelLast ? Traits::run_length(p, sm_count) : 0;
  const int64_t grid = Traits::grid_size(p, sm_count, run_len);
  if (grid > 0x7fffffff)
    return Status::Error(StatusCode::kInvalidArgument,
                         "batch * dim is too large for one launch (%lld blocks)",
                         static_cast<long long>(grid));
  if constexpr (kChannelLast)
    causal_conv1d_fwd_channel_last_kernel<Traits>
        <<<static_cast<unsigned>(grid), Traits::kThreads, 0, stream>>>(p, run_len);
  else
    causal_conv1d_fwd_channel_first_kernel<Traits>
        <<<static_cast<unsigned>(grid), Traits::kThreads, 0, stream>>>(p);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return Status::FromCuda(e, "causal_conv1d_fwd kernel");
#if SSMKIT_DEBUG_SYNC
  SSMKIT_CUDA_TRY(cudaStreamSynchronize(stream));
#endif
  return Status::Ok();
}

//! Launches the causal conv1d decode update with the types and width fixed at compile time.
//! Validates @p p with can_implement() first; never throws. Safe to capture in a CUDA graph.
//! A one-token step on contiguous, aligned tensors with a state of exactly W-1 inputs runs the
//! vectorised kernel (causal_conv1d_update_vec_ok()); anything else the general one.
//! @tparam T      element type of x, out and conv_state; must match p.dtype
//! @tparam TW     element type of weight and bias; must match p.weight_dtype
//! @tparam kWidth filter taps; must equal p.width
//! @param[in] p      the call's arguments
//! @param[in] stream stream to launch on
//! @param[in] opts   launch options (programmatic dependent launch)
template <typename T, typename TW, int kWidth>
Status causal_conv1d_update(const CausalConv1dUpdateParams& p, cudaStream_t stream, const LaunchOptions& opts = {}) {
  SSMKIT_TRY(can_implement(p));
  SSMKIT_TRY((detail::check_conv_types<T, TW>(p.dtype, p.weight_dtype)));
  if (p.width != kWidth)
    return Status::Error(StatusCode::kInvalidArgument,
                         "width %lld differs from this launcher's width %d",
                         static_cast<long long>(p.width), kWidth);
  bool vec = false;
  if constexpr (kWidth >= 2) vec = causal_conv1d_update_vec_ok<T, TW>(p);
  cudaError_t e = cudaSuccess;
  if (vec) {
    using Cfg = ConvUpdateDefaultConfig;
    const bool many = p.batch >= Cfg::kRowsFromBatch;
    const int64_t rows = many ? Cfg::kRows : 1;
    const int64_t channel_blocks =
        (p.dim / kVecElems<T> + kConvUpdateThreads - 1) / kConvUpdateThreads;
    const dim3 grid(static_cast<unsigned>((p.batch + rows - 1) / rows),
                    static_cast<unsigned>(channel_blocks));
    if constexpr (kWidth >= 2) {
      e = many ? detail::launch_kernel(causal_conv1d_update_vec_kernel<T, TW, kWidth, Cfg::kRows>, grid,
                                       dim3(kConvUpdateThreads), 0, stream, opts, p)
               : detail::launch_kernel(causal_conv1d_update_vec_kernel<T, TW, kWidth, 1>, grid,
                                       dim3(kConvUpdateThreads), 0, stream, opts, p);
    }
  } else {
    const int64_t grid = (p.batch * p.dim + kConvUpdateThreads - 1) / kConvUpdateThreads;
    if (grid > 0x7fffffff)
      return Status::Error(StatusCode::kInvalidArgument,
                           "batch * dim is too large for one launch (%lld blocks)",
                           static_cast<long long>(grid));
    e = detail::launch_kernel(causal_conv1d_update_kernel<T, TW, kWidth>, dim3(static_cast<unsigned>(grid)),
                              dim3(kConvUpdateThreads), 0, stream, opts, p);
  }
  if (e != cudaSuccess) return Status::FromCuda(e, "causal_conv1d_update_kernel");
#if SSMKIT_DEBUG_SYNC
  SSMKIT_CUDA_TRY(cudaStreamSynchronize(stream));
#endif
  return Status::Ok();
}

namespace detail {

//! Run-time weight type, width and layout dispatch of the forward for one element type
//! (explicitly instantiated per dtype by projects that want one translation unit per dtype;
//! see SSMKIT_EXTERN_INSTANCES).
template <typename T>
Status causal_conv1d_fwd_for_dtype(const CausalConv1dParams& p, cudaStream_t stream) {
  const bool last = causal_conv1d_is_channel_last(p);
  return dispatch_conv_weight_dtype<T>(p.weight_dtype, [&](auto wt) {
    using TW = typename decltype(wt)::type;
    return dispatch_conv_width(p.width, [&](auto w) {
      constexpr int kW = decltype(w)::value;
      return last ? causal_conv1d_fwd<T, TW, kW, true>(p, stream)
                  : causal_conv1d_fwd<T, TW, kW, false>(p, stream);
    });
  });
}

//! Run-time weight type and width dispatch of the update for one element type.
template <typename T>
Status causal_conv1d_update_for_dtype(const CausalConv1dUpdateParams& p, cudaStream_t stream,
                                      const LaunchOptions& opts) {
  return dispatch_conv_weight_dtype<T>(p.weight_dtype, [&](auto wt) {
    using TW = typename decltype(wt)::type;
    return dispatch_conv_width(p.width, [&](auto w) {
      return causal_conv1d_update<T, TW, decltype(w)::value>(p, stream, opts);
    });
  });
}

}  // namespace detail

#if defined(SSMKIT_EXTERN_INSTANCES)
// The including project instantiates these in translation units of its own, one per dtype.
extern template Status detail::causal_conv1d_fwd_for_dtype<float>(const CausalConv1dParams&, cudaStream_t);
extern template Status detail::causal_conv1d_fwd_for_dtype<__half>(const CausalConv1dParams&, cudaStream_t);
extern template Status detail::causal_conv1d_fwd_for_dtype<__nv_bfloat16>(const CausalConv1dParams&, cudaStream_t);
extern template Status detail::causal_conv1d_update_for_dtype<float>(const CausalConv1dUpdateParams&, cudaStream_t,
                                                                      const LaunchOptions&);
extern template Status detail::causal_conv1d_update_for_dtype<__half>(const CausalConv1dUpdateParams&, cudaStream_t,
                                                                      const LaunchOptions&);
extern template Status detail::causal_conv1d_update_for_dtype<__nv_bfloat16>(const CausalConv1dUpdateParams&, cudaStream_t,
                                                                      const LaunchOptions&);
#endif

//! Launches the causal conv1d forward, choosing the kernel from the run-time p.dtype,
//! p.weight_dtype, p.width and the layout of x. Validates @p p first; never throws.
//! @param[in] p      the call's arguments
//! @param[in] stream stream to launch on
template <typename Deferred = void, detail::if_defaulted_t<Deferred> = 0>
Status causal_conv1d_fwd(const CausalConv1dParams& p, cudaStream_t stream) {
  SSMKIT_TRY(can_implement(p));
  return dispatch_dtype(p.dtype, "dtype", [&](auto tag) {
    return detail::causal_conv1d_fwd_for_dtype<detail::deferred_t<typename decltype(tag)::type, Deferred>>(p, stream);
  });
}

//! Launches the causal conv1d decode update, choosing the kernel from the run-time p.dtype,
//! p.weight_dtype and p.width. Validates @p p first; never throws.
//! @param[in] p      the call's arguments
//! @param[in] stream stream to launch on
//! @param[in] opts   launch options (programmatic dependent launch)
template <typename Deferred = void, detail::if_defaulted_t<Deferred> = 0>
Status causal_conv1d_update(const CausalConv1dUpdateParams& p, cudaStream_t stream,
                                   const LaunchOptions& opts = {}) {
  SSMKIT_TRY(can_implement(p));
  return dispatch_dtype(p.dtype, "dtype", [&](auto tag) {
    return detail::causal_conv1d_update_for_dtype<detail::deferred_t<typename decltype(tag)::type, Deferred>>(p, stream, opts);
  });
}

SSMKIT_NAMESPACE_END
