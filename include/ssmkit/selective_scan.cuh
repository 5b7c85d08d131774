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
#include <type_traits>

#include "config.cuh"
#include "dispatch.cuh"
#include "kernel/selective_scan_fwd.cuh"
#include "launch.cuh"
#include "selective_scan_params.cuh"
#include "status.cuh"
#include "types.cuh"

SSMKIT_NAMESPACE_BEGIN

//! Default kernel configuration for a state capacity: states per thread, tile length and
//! threads per block, chosen by a measured sweep on an H100 (bench/NOTES.md). Each channel's
//! states are spread over kNState / kStatesPerThread lanes; every configuration gives a
//! block at least 32 channels, so that the B and C tiles, converted once per block, serve
//! many channels. Large state sizes take shorter tiles (the B and C tiles grow with the
//! state). At N = 256 a thread holds the same 16 states of two channels (half the threads,
//! each B and C read serving both: 8 % faster on an H200, 2026-12-03). The run-time launcher
//! selective_scan_fwd(p, stream) picks another configuration by the size of the grid (see
//! detail::scan_launch_shape()), and the launcher may also cut the sequence into ranges.
//! @tparam kNState state capacity (16, 32, 64, 128 or 256)
template <int kNState>
struct ScanDefaultConfig {
  //! States held by one thread.
  static constexpr int kStatesPerThread = kNState <= 32 ? 4 : (kNState <= 128 ? 8 : 16);
  //! Time steps per tile.
  static constexpr int kTileLen = kNState <= 128 ? 32 : 16;
  //! Threads per block.
  static constexpr int kThreads = kNState <= 16 ? 128 : (kNState == 32 || kNState == 256 ? 256 : 512);
  //! Blocks per SM the register budget is sized for (0: SelectiveScanTraits' rule).
  static constexpr int kMinBlocks = 0;
  //! Main loop: 0 plain, 1 software-pipelined with the recurrence first in the loop body, 2
  //! pipelined with the element work first (SelectiveScanTraits::kPipelined, kElementFirst).
  static constexpr int kPipeline = 0;
  //! Channels per thread (SelectiveScanTraits::kChannelsPerThread).
  static constexpr int kChannelsPerThread = kNState == 256 ? 2 : 1;
  //! 16-bit B and C in shared memory where the loop is pipelined (SelectiveScanTraits::kPackedBC;
  //! this loop is not, and only ScanOneWaveConfig at 3 blocks per SM measured it faster).
  static constexpr bool kPackedBC = false;
};

//! Configuration for launches whose batch x channels fill fewer than 1.5 blocks per SM with
//! the default configuration (e.g. batch-1 prefill): fewer states per thread give twice the
//! threads, and longer tiles halve the per-tile overhead. Measured better only at N = 16;
//! other state sizes keep the default (kDistinct is false).
//! @tparam kNState state capacity
template <int kNState>
struct ScanFewChannelsConfig : ScanDefaultConfig<kNState> {
  //! True where this configuration differs from the default.
  static constexpr bool kDistinct = false;
};

//! ScanFewChannelsConfig at N = 16.
template <>
struct ScanFewChannelsConfig<16> {
  static constexpr bool kDistinct = true;     //!< Differs from the default.
  static constexpr int kStatesPerThread = 2;  //!< States held by one thread.
  static constexpr int kTileLen = 64;         //!< Time steps per tile.
  static constexpr int kThreads = 128;        //!< Threads per block.
  static constexpr int kMinBlocks = 0;        //!< Register budget (0: the traits' rule).
  static constexpr int kPipeline = 0;         //!< Main loop: plain.
  static constexpr int kChannelsPerThread = 1;  //!< Channels per thread.
  static constexpr bool kPackedBC = false;      //!< 16-bit B and C in shared memory (pipelined only).
};

//! Configuration for one element type, where it measured better than ScanDefaultConfig;
//! kDistinct is false elsewhere. The run-time launcher uses it when the launch does not take
//! ScanFewChannelsConfig.
//! @tparam T       element type
//! @tparam kNState state capacity
template <typename T, int kNState>
struct ScanElementConfig : ScanDefaultConfig<kNState> {
  //! True where this configuration differs from the default.
  static constexpr bool kDistinct = false;
};

//! ScanElementConfig for fp32 at N = 16: 2 states per thread (8 lanes per channel) and 32-step
//! tiles. Earlier, 4 states per thread with 16-step tiles (with 32-step tiles a thread of a
//! block of 128 held two 16-byte vectors of each input per tile, too many registers to read
//! the next four steps ahead; sweep of 2026-11-25: mamba-130m shape 29.9 % -> 35.9 % of the
//! exp2 bound). With 2 states per thread a thread holds one vector per input at 32 steps, and
//! the sweep of 2026-12-06 (H100, kernel time) measured it faster again: B8 D5120 L2048
//! 0.918 -> 0.784 ms (35.2 % -> 41.3 %), B4 D2048 L2048 0.255 -> 0.164 ms
//! (bench/results/2026-12-06-1920-h100-sxm-scan-sweep-n16.txt).
template <>
struct ScanElementConfig<float, 16> : ScanDefaultConfig<16> {
  static constexpr bool kDistinct = true;     //!< Differs from the default.
  static constexpr int kStatesPerThread = 2;  //!< States held by one thread.
  static constexpr int kTileLen = 32;         //!< Time steps per tile.
};

//! Configuration for a grid that fits in one wave of @p kBlocksPerSM blocks per SM: the
//! software-pipelined main loop (two shared-memory stages, 69.6 KB per block at N = 16 with 16-bit types, one
//! barrier per tile) with registers for that many blocks. It has fewer resident warps than
//! the default, so it pays only where the default would not have more blocks resident
//! anyway. Distinct at N = 16: with 3 blocks per SM for every element type, with 2 for the
//! 16-bit ones (sweep of 2026-12-03, H200: mamba-130m bf16 0.223 -> 0.203-0.213 ms, fp32
//! 0.281 -> 0.261 ms; B4 D2048 bf16 0.171 -> 0.147 ms).
//! @tparam T             element type
//! @tparam kNState       state capacity
//! @tparam kBlocksPerSM  blocks per SM (2 or 3)
template <typename T, int kNState, int kBlocksPerSM>
struct ScanOneWaveConfig : ScanElementConfig<T, kNState> {
  //! True where this configuration differs from the others.
  static constexpr bool kDistinct = false;
};

//! ScanOneWaveConfig at N = 16: 4 states per thread, 32-step tiles (16 for fp32, whose
//! pipelined stages of 32 steps would not fit 2-3 blocks' registers). At 3 blocks per SM the
//! 16-bit types keep B and C in shared memory as 16-bit elements (kPackedBC; sweep of
//! 2026-12-07, H100, bf16, kernel time against float rows: mamba-130m B8 D1536 L2048
//! 0.196 -> 0.188 ms, B8 D5120 0.655 -> 0.629 ms; with the partial-sum stores free of bank
//! conflicts, float rows measured the same: 0.187 ms both, 0.630 against 0.627 ms); at 2
//! blocks per SM float rows measured faster (B4 D2048 0.135 against 0.147 ms).
template <typename T, int kBlocksPerSM>
struct ScanOneWaveConfig<T, 16, kBlocksPerSM> : ScanElementConfig<T, 16> {
  static constexpr bool kDistinct = kBlocksPerSM == 3 || sizeof(T) == 2;  //!< Differs from the others.
  static constexpr int kStatesPerThread = 4;                                //!< States held by one thread.
  static constexpr int kTileLen = sizeof(T) == 4 ? 16 : 32;                 //!< Time steps per tile.
  static constexpr int kMinBlocks = kBlocksPerSM;                           //!< Register budget.
  static constexpr int kPipeline = 1;                                       //!< Pipelined, recurrence first.
  static constexpr bool kPackedBC = sizeof(T) == 2 && kBlocksPerSM == 3;    //!< 16-bit B and C in shared memory.
};

//! Configuration the run-time launcher takes instead of ScanOneWaveConfig<T, kNState, 3> when
//! the causal conv1d is fused into the scan (p.conv.weight set), where that one keeps 16-bit B
//! and C rows: the same, with the element work (the conv) first in the pipelined loop body
//! (kPipeline 2), which measured faster only there (sweep of 2026-12-07 10:35, H100, bf16,
//! kernel time: mamba-130m 0.1993 ms with float rows and the recurrence first (the former
//! choice) -> 0.1982 ms, mamba-2.8b B8 D5120 0.696 -> 0.622 ms;
//! bench/results/2026-12-07-1032-h100-sxm-sweeps.txt). kDistinct: it differs from
//! ScanOneWaveConfig<T, kNState, 3>.
//! @tparam T       element type
//! @tparam kNState state capacity
template <typename T, int kNState>
struct ScanFusedConvConfig : ScanOneWaveConfig<T, kNState, 3> {
  //! True where this configuration differs from ScanOneWaveConfig<T, kNState, 3>.
  static constexpr bool kDistinct = ScanOneWaveConfig<T, kNState, 3>::kPackedBC;
  //! The element work (the conv) first in the pipelined loop body.
  static constexpr int kPipeline = kDistinct ? 2 : ScanOneWaveConfig<T, kNState, 3>::kPipeline;
};

//! Configuration for sm_90 and newer that the run-time launcher takes at every grid shape,
//! where one measured better there than all the others; kDistinct is false elsewhere. At
//! N = 32 for the 16-bit types: the pipelined loop (compiled for sm_90 and newer only) with
//! 8 states per thread and registers for 2 blocks per SM (sweep of 2026-12-06, H100, bf16,
//! kernel time against the default: B4 D2048 L2048 50.9 % -> 58.5 % of the exp2 bound,
//! B8 D2048 51.8 % -> 59.1 %; bench/results/2026-12-06-1850-h100-sxm-scan-sweep-n32.txt),
//! with the element work first in the loop body (2026-12-07: 0.2176 -> 0.2153 ms at B4 D2048,
//! 0.4273 -> 0.4270 ms at B8 D2048).
//! @tparam T       element type
//! @tparam kNState state capacity
template <typename T, int kNState>
struct ScanSm90Config : ScanElementConfig<T, kNState> {
  //! True where this configuration differs from the others.
  static constexpr bool kDistinct = false;
};

//! ScanSm90Config at N = 32 for the 16-bit types.
template <typename T>
struct ScanSm90Config<T, 32> {
  static constexpr bool kDistinct = sizeof(T) == 2;  //!< Differs from the others.
  static constexpr int kStatesPerThread = 8;          //!< States held by one thread.
  static constexpr int kTileLen = 32;                 //!< Time steps per tile.
  static constexpr int kThreads = 128;                //!< Threads per block.
  static constexpr int kMinBlocks = 2;                //!< Register budget: 2 blocks per SM.
  static constexpr int kPipeline = 2;                 //!< Pipelined, element work first.
  static constexpr int kChannelsPerThread = 1;        //!< Channels per thread.
  static constexpr bool kPackedBC = false;            //!< 16-bit B and C in shared memory.
};

namespace detail {

//! Most ranges the sequence is cut into.
constexpr int64_t kMaxScanSplits = 16;

//! Chooses how many ranges to cut the sequence into: only when the batch and channels give
//! at most half a wave of blocks (each range but the last costs a second pass over its
//! steps), so that the blocks fill about one wave, with at least four tiles per range.
inline ScanSplit choose_scan_split(int64_t base_blocks, int64_t seqlen, int tile_len,
                                   int64_t resident_blocks) {
  ScanSplit s;
  if (base_blocks <= 0 || 2 * base_blocks > resident_blocks) return s;
  int64_t n = resident_blocks / base_blocks;
  const int64_t max_by_len = seqlen / (4 * int64_t(tile_len));
  n = n < max_by_len ? n : max_by_len;
  n = n < kMaxScanSplits ? n : kMaxScanSplits;
  if (n < 2) return s;
  const int64_t per = (seqlen + n - 1) / n;
  s.split_len = (per + tile_len - 1) / tile_len * tile_len;
  s.num_splits = (seqlen + s.split_len - 1) / s.split_len;
  if (s.num_splits < 2) s = ScanSplit{};
  return s;
}

//! Bytes of workspace a split needs.
inline size_t scan_split_bytes(const SelectiveScanParams& p, const ScanSplit& s) {
  if (s.num_splits < 2) return 0;
  const size_t rows = size_t(s.num_splits - 1) * size_t(p.batch) * size_t(p.dim);
  return (rows * size_t(p.dstate) + rows) * sizeof(float) + 256;
}

//! Resident blocks per SM of the main kernel of @p Traits on device @p dev (0 where its shared
//! memory exceeds what a block may have there, e.g. the 16-bit pipelined loop's 69.6 KB at N = 16 on sm_75).
//! Queried once per process and device, then cached.
template <class Traits>
Status scan_blocks_per_sm(int dev, int& per_sm) {
  static DeviceIntCache cache;
  if (cache.load(dev, per_sm)) return Status::Ok();
  per_sm = 0;
  int optin = 0;
  SSMKIT_CUDA_TRY(cached_device_attribute<cudaDevAttrMaxSharedMemoryPerBlockOptin>(dev, optin));
  constexpr size_t kSmem = sizeof(typename Traits::TempStorage);
  if (kSmem <= size_t(optin)) {
    if (kSmem > 48 * 1024)
      SSMKIT_CUDA_TRY(cudaFuncSetAttribute(selective_scan_fwd_kernel<Traits, false>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize, int(kSmem)));
    SSMKIT_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
        &per_sm, selective_scan_fwd_kernel<Traits, false>, Traits::kThreads, kSmem));
  }
  cache.store(dev, per_sm);
  return Status::Ok();
}

template <class Traits>
Status plan_scan_split(const SelectiveScanParams& p, ScanSplit& split) {
  int dev = 0, sms = 0, per_sm = 0;
  SSMKIT_CUDA_TRY(current_device_sms(dev, sms));
  if constexpr (Traits::kPipelined) {
    int major = 0;
    SSMKIT_CUDA_TRY(cached_device_attribute<cudaDevAttrComputeCapabilityMajor>(dev, major));
    if (major < 9)
      return Status::Error(StatusCode::kInvalidArgument,
                           "the pipelined scan loop (kPipeline) is compiled for sm_90 and newer only");
  }
  SSMKIT_TRY(scan_blocks_per_sm<Traits>(dev, per_sm));
  if (per_sm == 0)
    return Status::Error(StatusCode::kInvalidArgument,
                         "this scan configuration (%d threads, %zu bytes of shared memory per block) "
                         "cannot run on the current device",
                         Traits::kThreads, sizeof(typename Traits::TempStorage));
  split = choose_scan_split(Traits::grid_size(p), p.seqlen, Traits::kTileLen, int64_t(sms) * per_sm);
  return Status::Ok();
}

}  // namespace detail

//! Bytes of workspace selective_scan_fwd<T, kNState, ...>() can use for @p p on the current
//! device (0 when the launch does not cut the sequence into ranges). Pass at least that much
//! in p.workspace; with a null p.workspace the launcher takes stream-ordered memory itself.
template <typename T, int kNState,
          int kStatesPerThread = ScanDefaultConfig<kNState>::kStatesPerThread,
          int kTileLen = ScanDefaultConfig<kNState>::kTileLen,
          int kThreads = ScanDefaultConfig<kNState>::kThreads,
          int kMinBlocks = ScanDefaultConfig<kNState>::kMinBlocks,
          int kPipeline = ScanDefaultConfig<kNState>::kPipeline,
          int kChannelsPerThread = ScanDefaultConfig<kNState>::kChannelsPerThread,
          bool kPackedBC = ScanDefaultConfig<kNState>::kPackedBC>
Status selective_scan_workspace_size(const SelectiveScanParams& p, size_t& bytes) {
  using Traits = SelectiveScanTraits<T, kNState, kStatesPerThread, kTileLen, kThreads, kMinBlocks, kPipeline,
                                     kChannelsPerThread, kPackedBC>;
  bytes = 0;
  SSMKIT_TRY(can_implement(p));
  ScanSplit split;
  SSMKIT_TRY(detail::plan_scan_split<Traits>(p, split));
  bytes = detail::scan_split_bytes(p, split);
  return Status::Ok();
}

//! Launches the selective-scan forward with every configuration choice fixed at compile time.
//! Validates @p p with can_implement() first; never throws.
//!
//! When batch x channels give too few blocks to fill the GPU, the sequence is cut into ranges
//! run by different blocks: a first pass finds each range's local final state, a second pass
//! starts every range from the carried state (exact, not an approximation). That needs
//! workspace: p.workspace if given (see selective_scan_workspace_size()), else memory from
//! cudaMallocAsync on @p stream, released on the same stream.
//! @tparam T                element type; must match p.dtype
//! @tparam kNState          state capacity; p.dstate must be <= kNState
//! @tparam kStatesPerThread states per thread (divides kNState, multiple of 4)
//! @tparam kTileLen         time steps per tile
//! @tparam kThreads         threads per block
//! @tparam kMinBlocks       blocks per SM the register budget is sized for (0: the traits' rule)
//! @tparam kPipeline        0: plain main loop; 1: software-pipelined, the recurrence first in
//!                          the loop body; 2: pipelined, the element work first; 3 and 4:
//!                          as 1 and 2, the loads copied to shared memory asynchronously
//!                          (SelectiveScanTraits::kPipelined, kElementFirst, kAsyncLoads)
//! @tparam kChannelsPerThread channels per thread (SelectiveScanTraits::kChannelsPerThread)
//! @tparam kPackedBC        16-bit B and C in shared memory where the loop is pipelined
//!                          (SelectiveScanTraits::kPackedBC)
//! @param[in] p      the call's arguments
//! @param[in] stream stream to launch on
template <typename T, int kNState,
          int kStatesPerThread = ScanDefaultConfig<kNState>::kStatesPerThread,
          int kTileLen = ScanDefaultConfig<kNState>::kTileLen,
          int kThreads = ScanDefaultConfig<kNState>::kThreads,
          int kMinBlocks = ScanDefaultConfig<kNState>::kMinBlocks,
          int kPipeline = ScanDefaultConfig<kNState>::kPipeline,
          int kChannelsPerThread = ScanDefaultConfig<kNState>::kChannelsPerThread,
          bool kPackedBC = ScanDefaultConfig<kNState>::kPackedBC>
Status selective_scan_fwd(const SelectiveScanParams& p, cudaStream_t stream) {
  using Traits = SelectiveScanTraits<T, kNState, kStatesPerThread, kTileLen, kThreads, kMinBlocks, kPipeline,
                                     kChannelsPerThread, kPackedBC>;
  SSMKIT_TRY(can_implement(p));
  if (p.dtype != TypeTraits<T>::kDType)
    return Status::Error(StatusCode::kInvalidArgument,
                         "dtype: the arguments are %s but this launcher is compiled for %s",
                         to_string(p.dtype), to_string(TypeTraits<T>::kDType));
  if (p.dstate > kNState)
    return Status::Error(StatusCode::kInvalidArgument,
                         "dstate %lld exceeds this launcher's state capacity %d",
                         static_cast<long long>(p.dstate), kNState);
  ScanSplit split;
  SSMKIT_TRY(detail::plan_scan_split<Traits>(p, split));
  const int64_t grid = Traits::grid_size(p, split.num_splits);
  if (grid > 0x7fffffff)
    return Status::Error(StatusCode::kInvalidArgument,
                         "batch * dim is too large for one launch (%lld blocks)",
                         static_cast<long long>(grid));
  constexpr size_t kSmem = sizeof(typename Traits::TempStorage);

  // With the fused conv (p.conv.weight) both passes run the conv variant of the kernel.
  auto launch = [&](auto conv) -> Status {
    constexpr bool kConv = decltype(conv)::value;
    void* owned = nullptr;
    if (split.num_splits > 1) {
      const size_t need = detail::scan_split_bytes(p, split);
      void* ws = p.workspace;
      if (ws == nullptr) {
        SSMKIT_CUDA_TRY(cudaMallocAsync(&owned, need, stream));
        ws = owned;
      } else if (p.workspace_bytes < need) {
        return Status::Error(StatusCode::kInvalidArgument,
                             "workspace_bytes: %zu bytes given, %zu needed", p.workspace_bytes, need);
      }
      split.ws_state = static_cast<float*>(ws);
      const size_t rows = size_t(split.num_splits - 1) * size_t(p.batch) * size_t(p.dim);
      split.ws_dtsum = split.ws_state + rows * size_t(p.dstate);
      if (kSmem > 48 * 1024)
        SSMKIT_CUDA_TRY(cudaFuncSetAttribute(selective_scan_fwd_kernel<Traits, true, kConv>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, int(kSmem)));
      selective_scan_fwd_kernel<Traits, true, kConv>
          <<<static_cast<unsigned>(Traits::grid_size(p, split.num_splits - 1)), kThreads, kSmem, stream>>>(p, split);
      const cudaError_t e = cudaGetLastError();
      if (e != cudaSuccess) {
        if (owned) cudaFreeAsync(owned, stream);
        return Status::FromCuda(e, "selective_scan_fwd_kernel (state pass)");
      }
    }
    // Set for the kernel launched on every call (a cudaDeviceReset() clears it; the query is cheap).
    if (kSmem > 48 * 1024)
      SSMKIT_CUDA_TRY(cudaFuncSetAttribute(selective_scan_fwd_kernel<Traits, false, kConv>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize, int(kSmem)));
    selective_scan_fwd_kernel<Traits, false, kConv><<<static_cast<unsigned>(grid), kThreads, kSmem, stream>>>(p, split);
    const cudaError_t e = cudaGetLastError();
    if (owned) SSMKIT_CUDA_TRY(cudaFreeAsync(owned, stream));
    if (e != cudaSuccess) return Status::FromCuda(e, "selective_scan_fwd_kernel");
    return Status::Ok();
  };
  if (p.conv.weight) {
    SSMKIT_TRY(launch(std::true_type{}));
  } else {
    SSMKIT_TRY(launch(std::false_type{}));
  }
#if SSMKIT_DEBUG_SYNC
  SSMKIT_CUDA_TRY(cudaStreamSynchronize(stream));
#endif
  return Status::Ok();
}

namespace detail {

//! How a launch is shaped by its grid (see scan_launch_shape()).
enum class ScanLaunchShape {
  kFewChannels,  //!< ScanFewChannelsConfig: more threads per channel
  kOneWave2,     //!< ScanOneWaveConfig with 2 blocks per SM
  kOneWave3,     //!< ScanOneWaveConfig with 3 blocks per SM
  kDefault,      //!< ScanElementConfig / ScanDefaultConfig
};

//! The grid rule of the run-time launcher, from the blocks of the default configuration
//! (32 channels each at N = 16) and the SMs of the device:
//! - under 1.5 blocks per SM, the few-channels configuration (twice the threads);
//! - 1.5 to 2 blocks per SM, the pipelined loop at 2 blocks per SM (one wave, more registers);
//! - 2 to 3 blocks per SM, the pipelined loop at 3 blocks per SM (one wave);
//! - more, the default (4 blocks per SM resident, several waves), or with @p wave3_above the
//!   pipelined loop at 3 blocks per SM. The launcher sets it for the fused conv1d, whose element
//!   work the pipelined loop overlaps with the recurrence (sweep of 2026-12-06, H100, bf16,
//!   kernel time: mamba-2.8b training shape B8 D5120 L2048 fused 0.758 -> 0.675 ms), and for
//!   the 16-bit types, whose 3-blocks configuration keeps B and C as 16-bit elements (sweep of
//!   2026-12-07: B8 D5120 L2048 0.662 -> 0.629 ms).
//! @param default_blocks blocks of the default configuration (SelectiveScanTraits::grid_size)
//! @param sms            SMs of the device
//! @param wave3_above    grids above 3 blocks per SM take the pipelined loop at 3 blocks per SM
inline ScanLaunchShape scan_launch_shape(int64_t default_blocks, int sms, bool wave3_above = false) {
  const int64_t s = sms;
  if (2 * default_blocks < 3 * s) return ScanLaunchShape::kFewChannels;
  if (default_blocks < 2 * s) return ScanLaunchShape::kOneWave2;
  if (default_blocks <= 3 * s || wave3_above) return ScanLaunchShape::kOneWave3;
  return ScanLaunchShape::kDefault;
}

//! Traits of a configuration type for element type @p T and state capacity @p kNState.
template <typename T, int kNState, class C>
using ScanTraitsOf = SelectiveScanTraits<T, kNState, C::kStatesPerThread, C::kTileLen, C::kThreads, C::kMinBlocks,
                                         C::kPipeline, C::kChannelsPerThread, C::kPackedBC>;

//! Resident blocks per SM of the pipelined configuration @p Traits on device @p dev: 0 below
//! sm_90, where the pipelined loop is not compiled (see scan_blocks_per_sm()).
template <class Traits>
Status pipelined_blocks_per_sm(int dev, int& per_sm) {
  per_sm = 0;
  int major = 0;
  SSMKIT_CUDA_TRY(cached_device_attribute<cudaDevAttrComputeCapabilityMajor>(dev, major));
  if (major < 9) return Status::Ok();
  return scan_blocks_per_sm<Traits>(dev, per_sm);
}

//! The launch shape of @p p on the current device for element type @p T and state capacity
//! @p kNState. A one-wave shape whose configuration does not reach its blocks per SM on this
//! device, or on a device older than sm_90 (the pipelined loop is compiled for sm_90 and
//! newer), falls back: two blocks to the few-channels shape, three to the default. Two blocks
//! without a configuration of their own (fp32) take the default shape.
template <typename T, int kNState>
Status scan_launch_shape_of(const SelectiveScanParams& p, ScanLaunchShape& shape) {
  int dev = 0, sms = 0;
  SSMKIT_CUDA_TRY(current_device_sms(dev, sms));
  using Default = ScanTraitsOf<float, kNState, ScanDefaultConfig<kNState>>;
  using Wave2 = ScanOneWaveConfig<T, kNState, 2>;
  using Wave3 = ScanOneWaveConfig<T, kNState, 3>;
  shape = scan_launch_shape(Default::grid_size(p), sms, p.conv.weight != nullptr || sizeof(T) == 2);
  int per_sm = 0;
  if constexpr (Wave3::kDistinct && ScanFewChannelsConfig<kNState>::kDistinct) {
    // Where even the few-channels configuration must cut the sequence into three or more
    // ranges, the grid comes from the cut: the 3-blocks pipelined loop, cut likewise, does more
    // per thread (sweep of 2026-12-07, H100, bf16 B1 D2048 L65536: 1.674 against 1.820 ms).
    // With no cut or two ranges (B1 D5120 L4096) the few-channels one was the faster.
    if (shape == ScanLaunchShape::kFewChannels && p.conv.weight == nullptr) {
      ScanSplit few;
      SSMKIT_TRY((plan_scan_split<ScanTraitsOf<T, kNState, ScanFewChannelsConfig<kNState>>>(p, few)));
      if (few.num_splits >= 3) {
        SSMKIT_TRY((pipelined_blocks_per_sm<ScanTraitsOf<T, kNState, Wave3>>(dev, per_sm)));
        if (per_sm >= 3) {
          shape = ScanLaunchShape::kOneWave3;
          return Status::Ok();
        }
      }
    }
  }
  if (shape == ScanLaunchShape::kOneWave2) {
    if constexpr (Wave2::kDistinct) {
      SSMKIT_TRY((pipelined_blocks_per_sm<ScanTraitsOf<T, kNState, Wave2>>(dev, per_sm)));
      if (per_sm < 2) shape = ScanLaunchShape::kFewChannels;
    } else {
      // fp32: its element configuration (2 states per thread, 32-step tiles at N = 16) measured
      // faster here than the few-channels one (sweep of 2026-12-07, H100, B4 D2048 L2048:
      // 0.162 against 0.249 ms).
      shape = ScanLaunchShape::kDefault;
    }
  } else if (shape == ScanLaunchShape::kOneWave3) {
    if constexpr (Wave3::kDistinct) SSMKIT_TRY((pipelined_blocks_per_sm<ScanTraitsOf<T, kNState, Wave3>>(dev, per_sm)));
    if (per_sm < 3) shape = ScanLaunchShape::kDefault;
  }
  return Status::Ok();
}

//! Calls f(config) with the configuration type the run-time launcher uses for @p p:
//! ScanSm90Config where it is distinct and the device is sm_90 or newer and holds its blocks
//! per SM; else by scan_launch_shape(), where that shape's configuration is distinct for (T, kNState)
//! (ScanFusedConvConfig instead of the 3-blocks one with the fused conv1d, where it is
//! distinct); else ScanElementConfig where it is distinct, else ScanDefaultConfig.
template <typename T, int kNState, class F>
Status with_scan_config(const SelectiveScanParams& p, F&& f) {
  if constexpr (ScanSm90Config<T, kNState>::kDistinct) {
    // Taken on sm_90 and newer where the device holds its blocks per SM.
    using C = ScanSm90Config<T, kNState>;
    int dev = 0, per_sm = 0;
    SSMKIT_CUDA_TRY(cudaGetDevice(&dev));
    SSMKIT_TRY((pipelined_blocks_per_sm<ScanTraitsOf<T, kNState, C>>(dev, per_sm)));
    if (per_sm >= C::kMinBlocks) return f(C{});
  }
  if constexpr (ScanFewChannelsConfig<kNState>::kDistinct || ScanOneWaveConfig<T, kNState, 2>::kDistinct ||
                ScanOneWaveConfig<T, kNState, 3>::kDistinct) {
    // A one-wave shape without a configuration of its own (fp32 at 2 blocks per SM), or one
    // the device cannot hold, has been mapped to another shape.
    ScanLaunchShape shape = ScanLaunchShape::kDefault;
    const Status st = scan_launch_shape_of<T, kNState>(p, shape);
    if (!st.ok()) return st;
    if constexpr (ScanFewChannelsConfig<kNState>::kDistinct) {
      if (shape == ScanLaunchShape::kFewChannels) return f(ScanFewChannelsConfig<kNState>{});
    }
    if constexpr (ScanOneWaveConfig<T, kNState, 2>::kDistinct) {
      if (shape == ScanLaunchShape::kOneWave2) return f(ScanOneWaveConfig<T, kNState, 2>{});
    }
    if constexpr (ScanOneWaveConfig<T, kNState, 3>::kDistinct) {
      if (shape == ScanLaunchShape::kOneWave3) {
        if constexpr (ScanFusedConvConfig<T, kNState>::kDistinct) {
          if (p.conv.weight != nullptr) return f(ScanFusedConvConfig<T, kNState>{});
        }
        return f(ScanOneWaveConfig<T, kNState, 3>{});
      }
    }
  }
  if constexpr (ScanElementConfig<T, kNState>::kDistinct) return f(ScanElementConfig<T, kNState>{});
  else return f(ScanDefaultConfig<kNState>{});
}

//! Run-time dstate dispatch of selective_scan_workspace_size() for one element type.
template <typename T>
Status selective_scan_workspace_size_for_dtype(const SelectiveScanParams& p, size_t& bytes) {
  return dispatch_scan_dstate(p.dstate, [&](auto n) {
    constexpr int kN = decltype(n)::value;
    return with_scan_config<T, kN>(p, [&](auto cfg) {
      using C = decltype(cfg);
      return selective_scan_workspace_size<T, kN, C::kStatesPerThread, C::kTileLen, C::kThreads, C::kMinBlocks, C::kPipeline,
                                                   C::kChannelsPerThread, C::kPackedBC>(p, bytes);
    });
  });
}

//! Run-time dstate dispatch for one element type (explicitly instantiated per dtype by
//! projects that want one translation unit per dtype; see SSMKIT_EXTERN_INSTANCES).
template <typename T>
Status selective_scan_fwd_for_dtype(const SelectiveScanParams& p, cudaStream_t stream) {
  return dispatch_scan_dstate(p.dstate, [&](auto n) {
    constexpr int kN = decltype(n)::value;
    return with_scan_config<T, kN>(p, [&](auto cfg) {
      using C = decltype(cfg);
      return selective_scan_fwd<T, kN, C::kStatesPerThread, C::kTileLen, C::kThreads, C::kMinBlocks, C::kPipeline,
                                        C::kChannelsPerThread, C::kPackedBC>(p, stream);
    });
  });
}

}  // namespace detail

#if defined(SSMKIT_EXTERN_INSTANCES)
// The including project instantiates these in translation units of its own, one per dtype.
extern template Status detail::selective_scan_fwd_for_dtype<float>(const SelectiveScanParams&, cudaStream_t);
extern template Status detail::selective_scan_fwd_for_dtype<__half>(const SelectiveScanParams&, cudaStream_t);
extern template Status detail::selective_scan_fwd_for_dtype<__nv_bfloat16>(const SelectiveScanParams&, cudaStream_t);
extern template Status detail::selective_scan_workspace_size_for_dtype<float>(const SelectiveScanParams&, size_t&);
extern template Status detail::selective_scan_workspace_size_for_dtype<__half>(const SelectiveScanParams&, size_t&);
extern template Status detail::selective_scan_workspace_size_for_dtype<__nv_bfloat16>(const SelectiveScanParams&, size_t&);
#endif

//! Launches the selective-scan forward, choosing the kernel from the run-time p.dtype and
//! p.dstate. Validates @p p with can_implement() first; never throws.
//! @param[in] p      the call's arguments
//! @param[in] stream stream to launch on
template <typename Deferred = void, detail::if_defaulted_t<Deferred> = 0>
Status selective_scan_fwd(const SelectiveScanParams& p, cudaStream_t stream) {
  SSMKIT_TRY(can_implement(p));
  return dispatch_dtype(p.dtype, "dtype", [&](auto tag) {
    return detail::selective_scan_fwd_for_dtype<detail::deferred_t<typename decltype(tag)::type, Deferred>>(p, stream);
  });
}

//! Bytes of workspace selective_scan_fwd(p, stream) can use on the current device, for the
//! run-time dtype and dstate of @p p (0 when the launch does not cut the sequence).
template <typename Deferred = void, detail::if_defaulted_t<Deferred> = 0>
Status selective_scan_workspace_size(const SelectiveScanParams& p, size_t& bytes) {
  bytes = 0;
  SSMKIT_TRY(can_implement(p));
  return dispatch_dtype(p.dtype, "dtype", [&](auto tag) {
    return detail::selective_scan_workspace_size_for_dtype<detail::deferred_t<typename decltype(tag)::type, Deferred>>(p, bytes);
  });
}

SSMKIT_NAMESPACE_END
