/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file kernel/selective_scan_fwd.cuh
//! @brief The selective-scan forward kernel template and its compile-time traits.
#pragma once

#include <cstdint>
#include <type_traits>

#include "../config.cuh"
#include "../math.cuh"
#include "../selective_scan_params.cuh"
#include "../thread/scan_step.cuh"
#include "../types.cuh"

SSMKIT_NAMESPACE_BEGIN

//! Compile-time configuration of the selective-scan forward kernel.
//!
//! A block owns @c kChannels channels of one (batch, group) and walks its range of the
//! sequence in tiles of @c kTileLen steps, the state in registers. Each channel's @c kNState
//! states are spread over @c kThreadsPerChannel adjacent lanes, @c kStatesPerThread each:
//! lane l holds states l, l + kThreadsPerChannel, l + 2 kThreadsPerChannel, ... so that the
//! lanes of a channel read different shared-memory banks; with @c kChannelsPerThread > 1 a
//! lane holds those states of channels g, g + kChannelGroups, ... Per tile the block
//!   1. converts the tile's u, delta and variable B/C (loaded into registers during the
//!      previous tile, so the loads overlap the recurrence) into dt and dt*u in shared memory,
//!      once per element;
//!   2. runs the recurrence four steps at a time: per state one exp2 and four FP32 operations
//!      per step; each thread writes its partial sums of C*h for the four steps to shared
//!      memory;
//!   3. sums the partials, adds D*u, applies the z gate and stores out with 16-byte stores.
//! Tiles that lie wholly inside the sequence, with every channel of the block present and
//! aligned rows, take a path without per-element bounds checks.
//! With @c kPipeline_ (kPipelined) the whole tiles of a range with variable B and C run a
//! software-pipelined loop instead: steps 1 (for tile k + 1, with the fused conv if any), 2
//! (tile k) and 3 (tile k - 1) after one barrier, from two shared-memory stages.
//! @tparam T                 element type of u, delta, z, out and variable B/C
//! @tparam kNState_          largest state size handled (the run-time dstate may be smaller)
//! @tparam kStatesPerThread_ states held by one thread
//! @tparam kTileLen_         time steps per tile (multiple of 4 and of the vector width)
//! @tparam kThreads_         threads per block
//! @tparam kMinBlocks_       blocks per SM the register budget is sized for; 0 picks
//!                           512 threads per SM (N <= 32) or 384 (larger N)
//! @tparam kPipeline_        0: plain main loop; 1 or 2: software-pipelined main loop with two
//!                           shared-memory stages, so that the conversion of tile k + 1 and
//!                           the epilogue of tile k - 1 are issued in the same instruction
//!                           stream as the recurrence of tile k, with one barrier per tile
//!                           (see kPipelined); 1 writes the recurrence first in that stream,
//!                           2 the element work first (see kElementFirst); 3 and 4 as 1 and
//!                           2 with the loads copied to shared memory asynchronously (see
//!                           kAsyncLoads)
//! @tparam kChannelsPerThread_ channels whose states (the same states of each) one thread
//!                           holds: the B and C values it reads from shared memory serve
//!                           all of them, so shared-memory traffic per state and step falls
//!                           from 2 / kStatesPerThread + 2 to 2 / kStatesPerThread + 2 / kChannelsPerThread
//! @tparam kPackedBC_        in the pipelined loop with 16-bit elements, keep variable B and C in
//!                           shared memory as the input's 16-bit elements (see kPackedBC)
template <typename T, int kNState_, int kStatesPerThread_, int kTileLen_, int kThreads_, int kMinBlocks_ = 0,
          int kPipeline_ = 0, int kChannelsPerThread_ = 1, bool kPackedBC_ = false>
struct SelectiveScanTraits {
  using Element = T;                                          //!< Element type.
  static constexpr int kNState = kNState_;                    //!< State capacity.
  static constexpr int kStatesPerThread = kStatesPerThread_;  //!< States per thread.
  static constexpr int kTileLen = kTileLen_;                  //!< Steps per tile.
  static constexpr int kThreads = kThreads_;                  //!< Threads per block.
  static constexpr int kThreadsPerChannel = kNState / kStatesPerThread;  //!< Lanes per channel.
  static constexpr int kChannelsPerThread = kChannelsPerThread_;         //!< Channels per thread.
  //! Groups of kThreadsPerChannel lanes; group g holds channels g, g + kChannelGroups, ...
  static constexpr int kChannelGroups = kThreads / kThreadsPerChannel;
  static constexpr int kChannels = kChannelGroups * kChannelsPerThread;  //!< Channels per block.
  static constexpr int kVec = kVecElems<T>;                //!< Elements per 16-byte vector.
  static constexpr int kVecsPerRow = kTileLen / kVec;      //!< Vectors per channel and tile.
  static constexpr int kVecsPerTile = kChannels * kVecsPerRow;  //!< Vectors of u per tile.
  //! Vectors of u (and of delta, z, out) each thread handles per tile.
  static constexpr int kVecsPerThread = (kVecsPerTile + kThreads - 1) / kThreads;
  //! Vectors of variable B (or of C) per tile.
  static constexpr int kBCVecs = kNState * kVecsPerRow;
  //! Vectors of variable B and C together each thread loads per tile.
  static constexpr int kBCVecsPerThread = (2 * kBCVecs + kThreads - 1) / kThreads;
  //! Blocks per SM the register budget is sized for (__launch_bounds__).
  static constexpr int kMinBlocksPerSM =
      kMinBlocks_ > 0 ? kMinBlocks_ : ((kNState_ <= 32 ? 512 : 384) + kThreads_ - 1) / kThreads_;
  //! Padded row of one channel's (or one state's) tile, in floats: consecutive rows start
  //! four banks apart, so that the 16-byte accesses of a quarter warp meet no bank conflict.
  static constexpr int kRow = kTileLen + 4;
  //! True where the pipelined main loop is compiled: asked for, every thread owning the same
  //! number of element vectors and of B/C vectors, at most four lanes per channel (no extra
  //! reduction pass). Whole tiles of variable B and C take it at run time.
  static constexpr bool kPipelined = kPipeline_ != 0 && kVecsPerTile % kThreads == 0 &&
                                     (2 * kBCVecs) % kThreads == 0 && kThreadsPerChannel <= 4;
  //! Pipelined loop (kPipeline_ == 2): the epilogue of tile k - 1, the conversion of tile k + 1
  //! and the loads of tile k + 2 come before the recurrence of tile k in the source, so that
  //! the conversion reads registers loaded a whole iteration earlier. The order only guides
  //! ptxas's schedule; which is faster depends on the registers left (bench/NOTES.md).
  static constexpr bool kElementFirst = kPipelined && (kPipeline_ == 2 || kPipeline_ == 4);
  //! Pipelined loop (kPipeline_ == 3: recurrence first, 4: element work first): the loads of
  //! tile k + 2 copy u, delta and B/C to shared memory asynchronously (cp.async on sm_80 and
  //! newer), each thread into its own slots, and the conversion of that tile reads them back
  //! after waiting for its own copies. The loads then hold no registers across the recurrence,
  //! and ptxas cannot move their first use closer to them than the wait. z, which has no slot,
  //! is loaded into registers a tile earlier than with 1 and 2.
  static constexpr bool kAsyncLoads = kPipelined && kPipeline_ >= 3;
  //! 16-byte slots per thread of the asynchronous loads: u, delta, then B/C.
  static constexpr int kRawSlots = kAsyncLoads ? 2 * kVecsPerThread + kBCVecsPerThread : 0;
  //! Shared-memory stages (two for the pipelined loop).
  static constexpr int kStages = kPipelined ? 2 : 1;
  //! Floats between the partial-sum rows of one channel's lanes. The pipelined loop with four
  //! lanes per channel and 32-step tiles puts them 8 banks apart: a quarter warp's 16-byte
  //! stores (two channels, four lanes each) and the epilogue's 16-byte reads (two channels,
  //! four vectors of 8 steps each) then both meet no bank conflict, where rows 4 banks apart
  //! made the stores conflict 2-way (Nsight Compute, H100, 2026-12-07). Elsewhere kRow, which
  //! keeps the shared memory of the configurations sized for devices with less of it as it was.
  static constexpr int kYRow = kPipelined && kThreadsPerChannel == 4 && kTileLen == 32 ? kTileLen + 8 : kRow;
  //! Floats per channel of the partial sums (the extra vector offsets channels by four banks).
  static constexpr int kYChannel = kThreadsPerChannel * kYRow + 4;
  //! True where the pipelined loop keeps variable B and C in shared memory as the input's
  //! 16-bit elements, converted to float as the recurrence reads them. Each read then brings
  //! four steps of one state in 8 bytes instead of 16: the recurrence's shared-memory traffic
  //! per state and step falls from 2 / kStatesPerThread + 2 floats to 2 / kStatesPerThread + 1
  //! (the shared-memory pipe, not the exp2 unit, bounds the recurrence at N = 16 otherwise),
  //! at one integer instruction per value to widen it (bitwise the same values).
  static constexpr bool kPackedBC = kPackedBC_ && kPipelined && sizeof(T) == 2;
  //! Row of one state's packed B (or C) tile, in elements: 16 bytes of padding, so that the
  //! rows of four consecutive states start 20 banks apart (no bank conflict in the 8-byte reads
  //! of a half warp). It lies in the float row's storage (Stage::B and Stage::C).
  static constexpr int kPackedRow = kTileLen + 8;

  static_assert(kNState % kStatesPerThread == 0, "kStatesPerThread must divide kNState");
  static_assert(kThreadsPerChannel >= 1 && kThreadsPerChannel <= 32 &&
                    (kThreadsPerChannel & (kThreadsPerChannel - 1)) == 0,
                "a channel's lanes must be a power of two within one warp");
  static_assert(kThreads % 32 == 0 && kThreads % kThreadsPerChannel == 0, "bad block size");
  static_assert(kTileLen % kVec == 0 && kTileLen % 4 == 0, "tile must hold whole vectors");
  static_assert(!kPackedBC || kPackedRow * 2 <= kRow * 4, "a packed row must fit in a float row");

  //! The inputs of one tile in shared memory.
  struct Stage {
    float dt[kChannels][kRow];           //!< dt per channel and step.
    float dtu[kChannels][kRow];          //!< dt * u per channel and step.
    float B[kNState][kRow];              //!< Variable B of the tile, per state.
    float C[kNState][kRow];              //!< Variable C of the tile, per state.
  };
  //! Shared memory of one block.
  struct TempStorage {
    Stage stage[kStages];                     //!< Tile inputs (two tiles when pipelined).
    float y[kStages][kChannels * kYChannel];  //!< Partial sums of C*h per channel, lane and step.
    uint4 raw[kAsyncLoads ? kRawSlots * kThreads : 1];  //!< Asynchronous loads' slots (kAsyncLoads).
  };

  //! Number of blocks for @p p when the sequence is cut into @p splits ranges.
  static int64_t grid_size(const SelectiveScanParams& p, int64_t splits = 1) {
    const int64_t per_group = p.dim / p.n_groups;
    return p.batch * p.n_groups * ((per_group + kChannels - 1) / kChannels) * splits;
  }
};

//! Bytes the L2 fetches around each 16-byte input load of the scan (the PTX prefetch-size
//! qualifier of ld.global.nc, sm_80 and newer: 0 for none, 64, 128 or 256). A thread reads one 16-byte vector of
//! a row per tile and the next tiles of the row follow it, so with 256 the loads of the next
//! tiles of a row hit the L2 instead of waiting for DRAM.
#ifndef SSMKIT_SCAN_L2_PREFETCH
#define SSMKIT_SCAN_L2_PREFETCH 256
#endif

namespace detail {

//! Internal: the spelling of `x` as a string literal.
#define SSMKIT_DETAIL_STR2(x) #x
//! Internal: the spelling of `x` as a string literal, after macro expansion.
#define SSMKIT_DETAIL_STR(x) SSMKIT_DETAIL_STR2(x)

// 16-byte read-only load with the L2 prefetch size of SSMKIT_SCAN_L2_PREFETCH (sm_80 and
// newer; a plain read-only load before).
SSMKIT_DEVICE uint4 ldg_prefetch(const uint4* p) {
  uint4 r;
#if (defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800) || \
    (SSMKIT_SCAN_L2_PREFETCH != 64 && SSMKIT_SCAN_L2_PREFETCH != 128 && SSMKIT_SCAN_L2_PREFETCH != 256)
  r = __ldg(p);
#else
  asm("ld.global.nc.L2::" SSMKIT_DETAIL_STR(SSMKIT_SCAN_L2_PREFETCH) "B.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
      : "l"(p));
#endif
  return r;
}

// Copies 16 bytes from global to shared memory without registers (cp.async, with the L2
// prefetch size of SSMKIT_SCAN_L2_PREFETCH; a plain copy before sm_80). Complete for the
// calling thread after cp_async_commit() and cp_async_wait_all().
SSMKIT_DEVICE void cp_async16(uint4* dst, const uint4* src) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
#if SSMKIT_SCAN_L2_PREFETCH == 64 || SSMKIT_SCAN_L2_PREFETCH == 128 || SSMKIT_SCAN_L2_PREFETCH == 256
  asm volatile("cp.async.cg.shared.global.L2::" SSMKIT_DETAIL_STR(SSMKIT_SCAN_L2_PREFETCH) "B [%0], [%1], 16;"
               :: "r"(s), "l"(src) : "memory");
#else
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" :: "r"(s), "l"(src) : "memory");
#endif
#else
  *dst = __ldg(src);
#endif
}
// Closes the group of the calling thread's cp_async16 copies issued since the last one.
SSMKIT_DEVICE void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}
// Waits until the calling thread's committed copies are complete and visible to it.
SSMKIT_DEVICE void cp_async_wait_all() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group 0;" ::: "memory");
#endif
}

// Loads one 16-byte vector of kV elements starting at src, of which `valid` are inside the
// sequence (the rest read as zero). 16-byte access when `vec` and the vector is whole; with
// kFull the caller guarantees both.
template <bool kFull, typename T>
SSMKIT_DEVICE uint4 load_raw(const T* __restrict__ src, int valid, bool vec) {
  constexpr int kV = kVecElems<T>;
  uint4 raw = make_uint4(0, 0, 0, 0);
  if (kFull || (vec && valid >= kV)) {
    raw = ldg_prefetch(reinterpret_cast<const uint4*>(src));
  } else {
    T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
    for (int i = 0; i < kV; ++i)
      if (i < valid) e[i] = src[i];
  }
  return raw;
}

template <typename T>
SSMKIT_DEVICE float raw_at(const uint4& raw, int i) {
  return to_float(reinterpret_cast<const T*>(&raw)[i]);
}

// bf16 is the upper half of a float: the element in the upper half of a word converts with one
// AND, the lower one with one shift (the generic conversion took a byte permute and a shift for
// the upper one). Bitwise equal to __bfloat162float; i is a compile-time constant after
// unrolling.
template <>
SSMKIT_DEVICE float raw_at<__nv_bfloat16>(const uint4& raw, int i) {
  const int w = i >> 1;
  const uint32_t word = w == 0 ? raw.x : (w == 1 ? raw.y : (w == 2 ? raw.z : raw.w));
  return __uint_as_float((i & 1) != 0 ? (word & 0xffff0000u) : (word << 16));
}

}  // namespace detail

//! How the sequence is cut into ranges processed by different blocks, and where the first
//! pass leaves each range's local final state and its sum of dt (see selective_scan_fwd()).
struct ScanSplit {
  int64_t num_splits = 1;       //!< Ranges of the sequence.
  int64_t split_len = 0;        //!< Steps per range (a multiple of the tile); 0: whole sequence.
  float* ws_state = nullptr;    //!< (num_splits - 1, batch, dim, dstate) local final states.
  float* ws_dtsum = nullptr;    //!< (num_splits - 1, batch, dim) sums of dt over each range.
};

//! The selective-scan forward kernel. One params struct in; see SelectiveScanTraits for the
//! work split. Launch with Traits::grid_size(p) blocks of Traits::kThreads threads and
//! sizeof(Traits::TempStorage) bytes of dynamic shared memory.
//! With @p kStatePass the kernel runs the first pass of a split sequence instead: each block
//! scans one range (all but the last) from a zero state and stores only the final state and
//! the sum of dt; no output is written.
//! With @p kConv the kernel runs the causal conv1d of p.conv on u as it converts each tile
//! (see ScanConv1dParams): the W-1 inputs before a vector come from the neighbouring lane, or,
//! for a tile's first vector, from the lane holding the previous tile's last vector.
template <class Traits, bool kStatePass = false, bool kConv = false>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kMinBlocksPerSM)
    selective_scan_fwd_kernel(const SelectiveScanParams p, const ScanSplit split);

namespace detail {

// The body of selective_scan_fwd_kernel.
template <class Traits, bool kStatePass, bool kConv>
SSMKIT_DEVICE void selective_scan_fwd_body(const SelectiveScanParams p, const ScanSplit split) {
  using T = typename Traits::Element;
  constexpr int kS = Traits::kStatesPerThread;
  constexpr int kTPC = Traits::kThreadsPerChannel;
  constexpr int kC = Traits::kChannels;
  constexpr int kL = Traits::kTileLen;
  constexpr int kV = Traits::kVec;
  constexpr int kVPT = Traits::kVecsPerThread;
  constexpr int kBCV = Traits::kBCVecsPerThread;
  constexpr int kYC = Traits::kYChannel;
  constexpr bool kAllVecsUsed = Traits::kVecsPerTile % Traits::kThreads == 0;
  constexpr int kTaps = static_cast<int>(kMaxFusedConvWidth);
  static_assert(!kConv || (Traits::kVecsPerTile % 32 == 0 && kV >= kTaps - 1),
                "the fused conv needs whole warps of vectors holding the conv's history");
  extern __shared__ __align__(16) unsigned char smem_bytes[];
  typename Traits::TempStorage& smem = *reinterpret_cast<typename Traits::TempStorage*>(smem_bytes);

  const int tid = threadIdx.x;
  const int64_t per_group = p.dim / p.n_groups;
  const int64_t blocks_per_group = (per_group + kC - 1) / kC;
  int64_t bid = blockIdx.x;
  const int64_t chunk = bid % blocks_per_group;
  bid /= blocks_per_group;
  const int64_t g = bid % p.n_groups;
  bid /= p.n_groups;
  const int64_t b = bid % p.batch;
  const int64_t sidx = bid / p.batch;  // range of the sequence
  const int64_t t_begin = split.num_splits > 1 ? sidx * split.split_len : 0;
  const int64_t t_end = split.num_splits > 1 && t_begin + split.split_len < p.seqlen ? t_begin + split.split_len : p.seqlen;
  const int64_t d_begin = g * per_group + chunk * kC;
  const int n_chan = static_cast<int>(per_group - chunk * kC < kC ? per_group - chunk * kC : kC);
  const int dstate = static_cast<int>(p.dstate);

  const T* __restrict__ u = static_cast<const T*>(p.u) + b * p.u_batch_stride;
  const T* __restrict__ delta = static_cast<const T*>(p.delta) + b * p.delta_batch_stride;
  const T* __restrict__ z = !kStatePass && p.z ? static_cast<const T*>(p.z) + b * p.z_batch_stride : nullptr;
  T* __restrict__ out = static_cast<T*>(p.out) + b * p.out_batch_stride;
  const T* Bvar = p.B_variable ? static_cast<const T*>(p.B) + b * p.B_batch_stride + g * p.B_group_stride : nullptr;
  const T* Cvar = !kStatePass && p.C_variable ? static_cast<const T*>(p.C) + b * p.C_batch_stride + g * p.C_group_stride : nullptr;

  // 16-byte vector access is used where every row start is 16-byte aligned.
  const bool vec_x = is_aligned(u, 16) && is_aligned(delta, 16) && is_aligned(out, 16) &&
                     (z == nullptr || (is_aligned(z, 16) && p.z_dim_stride % kV == 0)) &&
                     p.u_dim_stride % kV == 0 && p.delta_dim_stride % kV == 0 &&
                     p.out_dim_stride % kV == 0;
  const bool vec_B = Bvar == nullptr || (is_aligned(Bvar, 16) && p.B_dstate_stride % kV == 0);
  const bool vec_C = Cvar == nullptr || (is_aligned(Cvar, 16) && p.C_dstate_stride % kV == 0);
  const bool vec_cout = kConv && !kStatePass && p.conv.out && is_aligned(p.conv.out, 16) &&
                        p.conv.out_dim_stride % kV == 0 && p.conv.out_batch_stride % kV == 0;
  // Whole tiles take the path without bounds checks when all of the block's rows are there.
  const bool all_rows = vec_x && vec_B && vec_C && n_chan == kC && dstate == Traits::kNState;

  // Recurrence role of this thread: channels c[k] = group + k * kChannelGroups, states
  // lane_in_channel + i * kTPC of each.
  constexpr int kCPT = Traits::kChannelsPerThread;
  const int lane_in_channel = tid % kTPC;
  int c[kCPT];
  bool c_valid[kCPT];
  int64_t d[kCPT];
  float a_log2[kCPT][kS], h[kCPT][kS], Bc[kCPT][kS], Cc[kCPT][kS];
#pragma unroll
  for (int k = 0; k < kCPT; ++k) {
    c[k] = tid / kTPC + k * Traits::kChannelGroups;
    c_valid[k] = c[k] < n_chan;
    d[k] = d_begin + (c_valid[k] ? c[k] : 0);
#pragma unroll
    for (int i = 0; i < kS; ++i) {
      const int n = lane_in_channel + i * kTPC;
      const bool ok = c_valid[k] && n < dstate;
      const int64_t dk = d[k];
      a_log2[k][i] = ok ? p.A[dk * p.A_dim_stride + n * p.A_dstate_stride] * kLog2e : 0.f;
      h[k][i] = ok && p.h0 && !kStatePass ? p.h0[b * p.h0_batch_stride + dk * p.h0_dim_stride + n] : 0.f;
      Bc[k][i] = ok && !p.B_variable ? static_cast<const float*>(p.B)[dk * p.B_dim_stride + n * p.B_dstate_stride] : 0.f;
      Cc[k][i] = ok && !p.C_variable ? static_cast<const float*>(p.C)[dk * p.C_dim_stride + n * p.C_dstate_stride] : 0.f;
    }
  }

  // Carry into this range: h0 (or zero), then each earlier range's decay and local state.
  if (!kStatePass) {
    for (int64_t j = 0; j < sidx; ++j) {
#pragma unroll
      for (int k = 0; k < kCPT; ++k) {
        const int64_t row = (j * p.batch + b) * p.dim + d[k];
        const float dts = split.ws_dtsum[row];
#pragma unroll
        for (int i = 0; i < kS; ++i) {
          const int n = lane_in_channel + i * kTPC;
          const float loc = c_valid[k] && n < dstate ? split.ws_state[row * p.dstate + n] : 0.f;
          h[k][i] = fmaf(fast_exp2(dts * a_log2[k][i]), h[k][i], loc);
        }
      }
    }
  }
  float dtsum[kCPT];
#pragma unroll
  for (int k = 0; k < kCPT; ++k) dtsum[k] = 0.f;

  // Element role of this thread (loads, dt, epilogue): vectors v = tid + j * kThreads, each
  // kV steps (from tv) of channel cv. Row pointers are set once and advanced by a tile.
  float bias_v[kVPT], D_v[kVPT];
  int cv_of[kVPT], tv_of[kVPT];
  bool has_v[kVPT];
  const T* u_ptr[kVPT];
  const T* dl_ptr[kVPT];
  const T* z_ptr[kVPT];
  T* out_ptr[kVPT];
#pragma unroll
  for (int j = 0; j < kVPT; ++j) {
    const int v = tid + j * Traits::kThreads;
    cv_of[j] = v / Traits::kVecsPerRow;
    tv_of[j] = (v % Traits::kVecsPerRow) * kV;
    has_v[j] = (kAllVecsUsed || v < Traits::kVecsPerTile) && cv_of[j] < n_chan;
    const int64_t dv = d_begin + (has_v[j] ? cv_of[j] : 0);
    bias_v[j] = has_v[j] && p.delta_bias ? p.delta_bias[dv] : 0.f;
    D_v[j] = has_v[j] && p.D ? p.D[dv] : 0.f;
    u_ptr[j] = u + dv * p.u_dim_stride + t_begin + tv_of[j];
    dl_ptr[j] = delta + dv * p.delta_dim_stride + t_begin + tv_of[j];
    z_ptr[j] = z ? z + dv * p.z_dim_stride + t_begin + tv_of[j] : nullptr;
    out_ptr[j] = out + dv * p.out_dim_stride + t_begin + tv_of[j];
  }
  // Fused conv: taps right-aligned in kTaps (the first kTaps - width are zero), bias, the
  // conv output's row pointers, and the kTaps - 1 inputs before the range held by the lane
  // of a row's last vector (the only lane that passes history on to the next tile).
  float cw[kConv ? kVPT : 1][kTaps], cb[kConv ? kVPT : 1], hist[kConv ? kVPT : 1][kTaps - 1];
  T* cout_ptr[kConv ? kVPT : 1];
  const int conv_w = kConv ? static_cast<int>(p.conv.width) : 1;
  const T* conv_init = kConv && p.conv.initial_states
                           ? static_cast<const T*>(p.conv.initial_states) + b * p.conv.initial_states_batch_stride
                           : nullptr;
  if constexpr (kConv) {
    auto wt = [&](int64_t i) {
      return p.conv.weight_dtype == DType::kFloat32 ? static_cast<const float*>(p.conv.weight)[i]
                                                    : to_float(static_cast<const T*>(p.conv.weight)[i]);
    };
    auto bs = [&](int64_t i) {
      return p.conv.weight_dtype == DType::kFloat32 ? static_cast<const float*>(p.conv.bias)[i]
                                                    : to_float(static_cast<const T*>(p.conv.bias)[i]);
    };
#pragma unroll
    for (int j = 0; j < kVPT; ++j) {
      const int64_t dv = d_begin + (has_v[j] ? cv_of[j] : 0);
#pragma unroll
      for (int k = 0; k < kTaps; ++k) {
        const int tap = k - (kTaps - conv_w);
        cw[j][k] = has_v[j] && tap >= 0 ? wt(dv * p.conv.weight_dim_stride + tap) : 0.f;
      }
      cb[j] = has_v[j] && p.conv.bias ? bs(dv) : 0.f;
      cout_ptr[j] = !kStatePass && p.conv.out
                        ? static_cast<T*>(p.conv.out) + b * p.conv.out_batch_stride + dv * p.conv.out_dim_stride +
                              t_begin + tv_of[j]
                        : nullptr;
      const bool last_vec = tv_of[j] == kL - kV;
#pragma unroll
      for (int k = 0; k < kTaps - 1; ++k) {
        const int64_t t = t_begin - (kTaps - 1) + k;
        float x = 0.f;
        if (has_v[j] && last_vec) {
          if (t >= 0) {
            x = to_float(u[dv * p.u_dim_stride + t]);
          } else if (conv_init && conv_w - 1 + t >= 0) {
            x = to_float(conv_init[dv * p.conv.initial_states_dim_stride + (conv_w - 1 + t)]);
          }
        }
        hist[j][k] = x;
      }
    }
  }
  // B/C role: vectors w = tid + j * kThreads of [B; C], each kV steps (from tw) of state nw.
  const T* bc_ptr[kBCV];
  int nw_of[kBCV], tw_of[kBCV];
  bool is_C[kBCV], has_w[kBCV];
#pragma unroll
  for (int j = 0; j < kBCV; ++j) {
    const int w0 = tid + j * Traits::kThreads;
    is_C[j] = w0 >= Traits::kBCVecs;
    const int w = is_C[j] ? w0 - Traits::kBCVecs : w0;
    nw_of[j] = w / Traits::kVecsPerRow;
    tw_of[j] = (w % Traits::kVecsPerRow) * kV;
    const T* base = is_C[j] ? Cvar : Bvar;
    has_w[j] = w0 < 2 * Traits::kBCVecs && base != nullptr;
    const int64_t stride = is_C[j] ? p.C_dstate_stride : p.B_dstate_stride;
    bc_ptr[j] = has_w[j] ? base + (nw_of[j] < dstate ? nw_of[j] : 0) * stride + t_begin + tw_of[j] : nullptr;
  }

  // Raw registers of the next tile, loaded while the current one is computed.
  uint4 raw_u[kVPT], raw_dl[kVPT], raw_bc[kBCV];
#pragma unroll
  for (int j = 0; j < kVPT; ++j) raw_u[j] = raw_dl[j] = make_uint4(0, 0, 0, 0);
#pragma unroll
  for (int j = 0; j < kBCV; ++j) raw_bc[j] = make_uint4(0, 0, 0, 0);
  auto valid_of = [&](int64_t t0) { return static_cast<int>(t_end - t0 < kL ? t_end - t0 : kL); };
  auto is_full = [&](int64_t t0) { return all_rows && t0 + kL <= t_end; };
  // Loads the tile at offset `off` from the range start.
  auto load_tile = [&](int64_t off, int valid_t, auto full) {
    constexpr bool kFull = decltype(full)::value;
#pragma unroll
    for (int j = 0; j < kVPT; ++j) {
      if (kFull ? (kAllVecsUsed || has_v[j]) : has_v[j]) {
        raw_u[j] = detail::load_raw<kFull>(u_ptr[j] + off, valid_t - tv_of[j], vec_x);
        raw_dl[j] = detail::load_raw<kFull>(dl_ptr[j] + off, valid_t - tv_of[j], vec_x);
      }
    }
#pragma unroll
    for (int j = 0; j < kBCV; ++j)
      if (has_w[j] && (kFull || nw_of[j] < dstate))
        raw_bc[j] = detail::load_raw<kFull>(bc_ptr[j] + off, valid_t - tw_of[j], is_C[j] ? vec_C : vec_B);
  };

  // Fused conv: replaces the kV inputs of element vector j by the conv's outputs. The kTaps - 1
  // inputs before the vector come from the lane of the previous vector of the row, or, for
  // the first vector, from the lane of the row's last vector, which passes on what it kept
  // from the previous tile. Whole warps take part (kVecsPerTile % 32 == 0).
  auto conv_vector = [&](int j, float (&us)[kV]) {
    const int pos = tv_of[j] / kV;
    const int lane = tid & 31;
    const int src = pos == 0 ? lane + Traits::kVecsPerRow - 1 : lane - 1;
    const bool last_vec = pos == Traits::kVecsPerRow - 1;
    float win[kTaps - 1 + kV];
#pragma unroll
    for (int k = 0; k < kTaps - 1; ++k) {
      const float send = last_vec ? hist[j][k] : us[kV - (kTaps - 1) + k];
      win[k] = __shfl_sync(0xffffffffu, send, src);
      hist[j][k] = us[kV - (kTaps - 1) + k];
    }
#pragma unroll
    for (int i = 0; i < kV; ++i) win[kTaps - 1 + i] = us[i];
#pragma unroll
    for (int i = 0; i < kV; ++i) {
      float acc = cb[j];
#pragma unroll
      for (int k = 0; k < kTaps; ++k) acc = fmaf(cw[j][k], win[i + k], acc);
      us[i] = p.conv.silu ? silu_fast(acc) : acc;
    }
  };

  // Converts the raw tile to dt, dt*u, B, C in shared memory; keeps u for the epilogue.
  float u_keep[kVPT][kV];
  auto commit_tile = [&](int64_t t_tile, int valid_t, auto full) {
    constexpr bool kFull = decltype(full)::value;
#pragma unroll
    for (int j = 0; j < kVPT; ++j) {
      if (kAllVecsUsed || tid + j * Traits::kThreads < Traits::kVecsPerTile) {
        float dts[kV], us[kV];
#pragma unroll
        for (int i = 0; i < kV; ++i) us[i] = detail::raw_at<T>(raw_u[j], i);
        if constexpr (kConv) conv_vector(j, us);
#pragma unroll
        for (int i = 0; i < kV; ++i) {
          // Steps past the end (and absent channels) get dt = 0: the state is unchanged.
          const bool ok = kFull || (has_v[j] && tv_of[j] + i < valid_t);
          u_keep[j][i] = ok ? us[i] : 0.f;
          dts[i] = detail::raw_at<T>(raw_dl[j], i) + bias_v[j];
        }
        if constexpr (kConv && !kStatePass) {
          if (p.conv.out && has_v[j])
            store_from_float<T, kV>(cout_ptr[j] + (t_tile - t_begin), u_keep[j], vec_cout, valid_t - tv_of[j]);
        }
        if (p.delta_softplus) {
#pragma unroll
          for (int i = 0; i < kV; ++i) dts[i] = softplus_fast(dts[i]);
        }
        if (!kFull) {
#pragma unroll
          for (int i = 0; i < kV; ++i) dts[i] = has_v[j] && tv_of[j] + i < valid_t ? dts[i] : 0.f;
        }
        // 16-byte stores: rows are 16-byte aligned and tv is a multiple of the vector width.
        float* dt_row = &smem.stage[0].dt[cv_of[j]][tv_of[j]];
        float* dtu_row = &smem.stage[0].dtu[cv_of[j]][tv_of[j]];
#pragma unroll
        for (int i = 0; i < kV; i += 4) {
          *reinterpret_cast<float4*>(dt_row + i) = make_float4(dts[i], dts[i + 1], dts[i + 2], dts[i + 3]);
          *reinterpret_cast<float4*>(dtu_row + i) =
              make_float4(dts[i] * u_keep[j][i], dts[i + 1] * u_keep[j][i + 1], dts[i + 2] * u_keep[j][i + 2],
                          dts[i + 3] * u_keep[j][i + 3]);
        }
      }
    }
#pragma unroll
    for (int j = 0; j < kBCV; ++j) {
      if (has_w[j]) {
        const bool ok = kFull || nw_of[j] < dstate;
        float* row = is_C[j] ? &smem.stage[0].C[nw_of[j]][tw_of[j]] : &smem.stage[0].B[nw_of[j]][tw_of[j]];
#pragma unroll
        for (int i = 0; i < kV; i += 4) {
          float4 q;
          q.x = ok ? detail::raw_at<T>(raw_bc[j], i) : 0.f;
          q.y = ok ? detail::raw_at<T>(raw_bc[j], i + 1) : 0.f;
          q.z = ok ? detail::raw_at<T>(raw_bc[j], i + 2) : 0.f;
          q.w = ok ? detail::raw_at<T>(raw_bc[j], i + 3) : 0.f;
          *reinterpret_cast<float4*>(row + i) = q;
        }
      }
    }
  };
  auto load_and_commit = [&](int64_t t0, bool load_next) {
    // Loads of the tile at t0 + kL when load_next; otherwise converts the registers of t0.
    const int64_t t = load_next ? t0 + kL : t0;
    if (is_full(t)) {
      if (load_next) load_tile(t - t_begin, kL, std::true_type{});
      else commit_tile(t, kL, std::true_type{});
    } else {
      if (load_next) load_tile(t - t_begin, valid_of(t), std::false_type{});
      else commit_tile(t, valid_of(t), std::false_type{});
    }
  };

  // The recurrence, four steps at a time, one state after another within the four steps.
  // Variable B and C (the common case) read shared memory only; otherwise the constant
  // values in registers stand in. Where the registers allow (one element vector per
  // thread), the shared-memory reads of the next four steps (dt, dt*u and the B/C of the
  // first kPre states) are issued before the current four are computed.
  // Element t of state n's packed B (or C) row (Traits::kPackedBC), in the float rows' storage.
  auto packed_at = [&](float (&rows)[Traits::kNState][Traits::kRow], int n, int t) {
    return reinterpret_cast<T*>(&rows[0][0]) + n * Traits::kPackedRow + t;
  };

  // With `packed` (Traits::kPackedBC, pipelined loop only) B and C are read as 16-bit elements
  // from the float rows' storage, four steps in one 8-byte read, and widened here.
  auto recurrence = [&](auto var_bc, int stage, auto packed) {
    typename Traits::Stage& st = smem.stage[stage];
    constexpr bool kVarBC = decltype(var_bc)::value;
    constexpr bool kPk = decltype(packed)::value;
    static_assert(!kPk || (kVarBC && Traits::kPackedBC), "packed B and C are variable, in the pipelined loop");
    constexpr bool kPrefetch = kVPT == 1 || Traits::kPipelined;
    constexpr int kPre = kS * kCPT <= 4 ? kS : 1;
    // Constant B or C (per channel) are only used where kVarBC is false.
    auto load_B = [&](int i, int t, int k) {
      return kVarBC || Bvar ? *reinterpret_cast<const float4*>(&st.B[lane_in_channel + i * kTPC][t])
                            : make_float4(Bc[k][i], Bc[k][i], Bc[k][i], Bc[k][i]);
    };
    auto load_C = [&](int i, int t, int k) {
      return kStatePass ? make_float4(0.f, 0.f, 0.f, 0.f)
                        : (kVarBC || Cvar ? *reinterpret_cast<const float4*>(&st.C[lane_in_channel + i * kTPC][t])
                                          : make_float4(Cc[k][i], Cc[k][i], Cc[k][i], Cc[k][i]));
    };
    // Packed: the four 16-bit elements of steps t..t+3 of the thread's i-th state.
    auto load_packed = [&](float (&rows)[Traits::kNState][Traits::kRow], int i, int t) {
      return *reinterpret_cast<const uint2*>(packed_at(rows, lane_in_channel + i * kTPC, t));
    };
    auto widen = [&](uint2 w) {
      const uint4 r = make_uint4(w.x, w.y, 0u, 0u);
      return make_float4(detail::raw_at<T>(r, 0), detail::raw_at<T>(r, 1), detail::raw_at<T>(r, 2),
                         detail::raw_at<T>(r, 3));
    };
    struct Group {
      float4 dt[kCPT], dtu[kCPT], B[kPk ? 1 : kPre], C[kPk ? 1 : kPre];
      uint2 Bp[kPk ? kPre : 1], Cp[kPk ? kPre : 1];
    };
    auto load_group = [&](int t, Group& g) {
#pragma unroll
      for (int k = 0; k < kCPT; ++k) {
        g.dt[k] = *reinterpret_cast<const float4*>(&st.dt[c[k]][t]);
        g.dtu[k] = *reinterpret_cast<const float4*>(&st.dtu[c[k]][t]);
      }
#pragma unroll
      for (int i = 0; i < kPre; ++i) {
        if constexpr (kPk) {
          g.Bp[i] = load_packed(st.B, i, t);
          g.Cp[i] = load_packed(st.C, i, t);
        } else {
          g.B[i] = load_B(i, t, 0);
          g.C[i] = load_C(i, t, 0);
        }
      }
    };
    auto run_group = [&](const Group& g, int t) {
      float ys[kCPT][4];
#pragma unroll
      for (int k = 0; k < kCPT; ++k) ys[k][0] = ys[k][1] = ys[k][2] = ys[k][3] = 0.f;
#pragma unroll
      for (int i = 0; i < kS; ++i) {
        // With variable B and C (or one channel per thread) one read serves every channel.
        constexpr bool kShared = kVarBC || kCPT == 1;
        float4 qb, qc;
        if constexpr (kPk) {
          qb = widen(i < kPre ? g.Bp[i < kPre ? i : 0] : load_packed(st.B, i, t));
          qc = widen(i < kPre ? g.Cp[i < kPre ? i : 0] : load_packed(st.C, i, t));
        } else {
          qb = i < kPre ? g.B[i < kPre ? i : 0] : load_B(i, t, 0);
          qc = i < kPre ? g.C[i < kPre ? i : 0] : load_C(i, t, 0);
        }
#pragma unroll
        for (int k = 0; k < kCPT; ++k) {
          if (!kShared && k > 0) {
            qb = load_B(i, t, k);
            qc = load_C(i, t, k);
          }
          const float dts[4] = {g.dt[k].x, g.dt[k].y, g.dt[k].z, g.dt[k].w};
          const float dtus[4] = {g.dtu[k].x, g.dtu[k].y, g.dtu[k].z, g.dtu[k].w};
          const float Bv[4] = {qb.x, qb.y, qb.z, qb.w};
          const float Cv[4] = {qc.x, qc.y, qc.z, qc.w};
#pragma unroll
          for (int s = 0; s < 4; ++s) {
            h[k][i] = fmaf(fast_exp2(dts[s] * a_log2[k][i]), h[k][i], dtus[s] * Bv[s]);
            if (!kStatePass) ys[k][s] = fmaf(Cv[s], h[k][i], ys[k][s]);
          }
        }
      }
#pragma unroll
      for (int k = 0; k < kCPT; ++k) {
        if (kStatePass) {
          dtsum[k] += (g.dt[k].x + g.dt[k].y) + (g.dt[k].z + g.dt[k].w);
        } else {
          float* y_row = &smem.y[stage][c[k] * kYC + lane_in_channel * Traits::kYRow];
          *reinterpret_cast<float4*>(y_row + t) = make_float4(ys[k][0], ys[k][1], ys[k][2], ys[k][3]);
        }
      }
    };
    if constexpr (kPrefetch) {
      Group cur;
      load_group(0, cur);
#pragma unroll
      for (int t = 0; t < kL; t += 4) {
        Group nxt;
        if (t + 4 < kL) load_group(t + 4, nxt);
        run_group(cur, t);
        if (t + 4 < kL) cur = nxt;
      }
    } else {
#pragma unroll 2
      for (int t = 0; t < kL; t += 4) {
        Group g;
        load_group(t, g);
        run_group(g, t);
      }
    }
  };

  // Pipelined main loop over the range's whole tiles (variable B and C, every row present and
  // aligned). Iteration j, after one barrier: the recurrence of tile j from stage j % 2, the
  // epilogue of tile j - 1 from the other partial sums, the conversion of tile j + 1 (loaded
  // during iteration j - 1) into the other stage, and the loads of tile j + 2. The parts are
  // independent, so the scheduler can fill the recurrence's exp2 and shared-memory latencies
  // with the element work. With Traits::kElementFirst the recurrence comes last in the source
  // (the z loads of tile j then follow the epilogue of tile j - 1, which reads those of tile
  // j - 1). The barrier orders every reuse: stage j % 2 was last read by the
  // recurrence of tile j - 2, the other stage by that of tile j - 1, and the partial sums of
  // tile j - 1 were complete at the barrier. With the fused conv the conversion also runs the
  // conv (tiles are converted in order, so the history a row's last lane carries stays right).
  // The rest of the range (a partial tile) runs the general loop below.
  int64_t t_start = t_begin;
  if constexpr (Traits::kPipelined && !kStatePass) {
    const int64_t n_full = all_rows && Bvar && Cvar ? (t_end - t_begin) / kL : 0;
    auto pipelined = [&](auto has_z) {
      constexpr bool kZ = decltype(has_z)::value;
      // Raw u of the two tiles awaiting their epilogue (the older one is the next to finish),
      // raw z of the last tile; with the fused conv, the conv's outputs (in float) instead of
      // the raw u. Moving the newer into the older slot after each conversion costs a few
      // register moves, where slots chosen by tile parity took a select per register.
      // With Traits::kAsyncLoads, z is loaded a tile ahead into rz_next.
      uint4 ru_old[kVPT], ru_new[kVPT], rz[kVPT], rz_next[kVPT];
#pragma unroll
      for (int j = 0; j < kVPT; ++j) ru_old[j] = ru_new[j] = rz[j] = rz_next[j] = make_uint4(0, 0, 0, 0);
      auto load_z = [&](int64_t t_tile, uint4(&dst)[kVPT]) {
#pragma unroll
        for (int i = 0; i < kVPT; ++i)
          dst[i] = detail::ldg_prefetch(reinterpret_cast<const uint4*>(z_ptr[i] + (t_tile - t_begin)));
      };
      constexpr int kCU = kConv ? kV : 1;
      float cu_conv[kVPT][kCU], cu_old[kVPT][kCU], cu_new[kVPT][kCU];
#pragma unroll
      for (int j = 0; j < kVPT; ++j)
#pragma unroll
        for (int i = 0; i < kCU; ++i) cu_conv[j][i] = cu_old[j][i] = cu_new[j][i] = 0.f;
      const bool sp_on = p.delta_softplus;
      auto tile_at = [&](int64_t j) { return t_begin + j * kL; };
      // Loads of the whole tile at offset `off` from the range start: into registers, or with
      // Traits::kAsyncLoads into the thread's own shared-memory slots (cf. load_tile). Called
      // after land() and commit() of the previous tile, whose stores consume what land() read
      // from the same slots, so no barrier is needed: no other thread touches them.
      auto fetch = [&](int64_t off) {
        if constexpr (Traits::kAsyncLoads) {
          uint4* slot = &smem.raw[tid];
#pragma unroll
          for (int j = 0; j < kVPT; ++j) {
            detail::cp_async16(slot + j * Traits::kThreads, reinterpret_cast<const uint4*>(u_ptr[j] + off));
            detail::cp_async16(slot + (kVPT + j) * Traits::kThreads, reinterpret_cast<const uint4*>(dl_ptr[j] + off));
          }
#pragma unroll
          for (int j = 0; j < kBCV; ++j)
            if (has_w[j]) detail::cp_async16(slot + (2 * kVPT + j) * Traits::kThreads, reinterpret_cast<const uint4*>(bc_ptr[j] + off));
          detail::cp_async_commit();
        } else {
          load_tile(off, kL, std::true_type{});
        }
      };
      // With Traits::kAsyncLoads: waits for the thread's copies and reads them into the
      // registers the conversion reads.
      auto land = [&]() {
        if constexpr (Traits::kAsyncLoads) {
          detail::cp_async_wait_all();
          const uint4* slot = &smem.raw[tid];
#pragma unroll
          for (int j = 0; j < kVPT; ++j) {
            raw_u[j] = slot[j * Traits::kThreads];
            raw_dl[j] = slot[(kVPT + j) * Traits::kThreads];
          }
#pragma unroll
          for (int j = 0; j < kBCV; ++j)
            if (has_w[j]) raw_bc[j] = slot[(2 * kVPT + j) * Traits::kThreads];
        }
      };
      // Converts the registers of the whole tile at t_tile into stage s (cf. commit_tile). With
      // the fused conv, u is the conv's output: stored to p.conv.out where asked for, and kept
      // in cu_new for the epilogue.
      auto commit = [&](int s, int64_t t_tile) {
        typename Traits::Stage& st = smem.stage[s];
#pragma unroll
        for (int j = 0; j < kVPT; ++j) {
          float dts[kV], dtus[kV], us[kV];
#pragma unroll
          for (int i = 0; i < kV; ++i) us[i] = detail::raw_at<T>(raw_u[j], i);
          if constexpr (kConv) {
            conv_vector(j, us);
            if (p.conv.out) store_from_float<T, kV>(cout_ptr[j] + (t_tile - t_begin), us, vec_cout, kV);
#pragma unroll
            for (int i = 0; i < kCU; ++i) cu_conv[j][i] = us[i < kV ? i : 0];
          }
#pragma unroll
          for (int i = 0; i < kV; ++i) {
            const float x = detail::raw_at<T>(raw_dl[j], i) + bias_v[j];
            const float sp = softplus_fast(x);
            dts[i] = sp_on ? sp : x;
            dtus[i] = dts[i] * us[i];
          }
          float* dt_row = &st.dt[cv_of[j]][tv_of[j]];
          float* dtu_row = &st.dtu[cv_of[j]][tv_of[j]];
#pragma unroll
          for (int i = 0; i < kV; i += 4) {
            *reinterpret_cast<float4*>(dt_row + i) = make_float4(dts[i], dts[i + 1], dts[i + 2], dts[i + 3]);
            *reinterpret_cast<float4*>(dtu_row + i) = make_float4(dtus[i], dtus[i + 1], dtus[i + 2], dtus[i + 3]);
          }
        }
#pragma unroll
        for (int j = 0; j < kBCV; ++j) {
          if constexpr (Traits::kPackedBC) {
            // The raw vector as loaded: 16-byte store at a 16-byte multiple of the packed row.
            *reinterpret_cast<uint4*>(packed_at(is_C[j] ? st.C : st.B, nw_of[j], tw_of[j])) = raw_bc[j];
          } else {
            float* bc_row = is_C[j] ? &st.C[nw_of[j]][tw_of[j]] : &st.B[nw_of[j]][tw_of[j]];
#pragma unroll
            for (int i = 0; i < kV; i += 4)
              *reinterpret_cast<float4*>(bc_row + i) =
                  make_float4(detail::raw_at<T>(raw_bc[j], i), detail::raw_at<T>(raw_bc[j], i + 1),
                              detail::raw_at<T>(raw_bc[j], i + 2), detail::raw_at<T>(raw_bc[j], i + 3));
          }
        }
      };
      // Sums the partials of a whole tile, adds D*u, gates and stores (cf. the epilogue below);
      // the tile's u is in the newer slot for the range's last tile, else in the older one.
      auto epilogue = [&](int64_t t_tile, int s, auto newer) {
        constexpr bool kNewer = decltype(newer)::value;
#pragma unroll
        for (int j = 0; j < kVPT; ++j) {
          const uint4 ru = kNewer ? ru_new[j] : ru_old[j];
          float uv[kV];
#pragma unroll
          for (int i = 0; i < kV; ++i) uv[i] = kConv ? (kNewer ? cu_new[j][i < kCU ? i : 0] : cu_old[j][i < kCU ? i : 0])
                                                     : detail::raw_at<T>(ru, i);
          float o[kV];
          const float* y_row = &smem.y[s][cv_of[j] * kYC + tv_of[j]];
#pragma unroll
          for (int i = 0; i < kV; i += 4) {
            float4 acc = *reinterpret_cast<const float4*>(y_row + i);
#pragma unroll
            for (int l = 1; l < kTPC; ++l) {
              const float4 q = *reinterpret_cast<const float4*>(y_row + l * Traits::kYRow + i);
              acc.x += q.x; acc.y += q.y; acc.z += q.z; acc.w += q.w;
            }
            o[i] = fmaf(D_v[j], uv[i], acc.x);
            o[i + 1] = fmaf(D_v[j], uv[i + 1], acc.y);
            o[i + 2] = fmaf(D_v[j], uv[i + 2], acc.z);
            o[i + 3] = fmaf(D_v[j], uv[i + 3], acc.w);
          }
          if constexpr (kZ) {
#pragma unroll
            for (int i = 0; i < kV; ++i) o[i] *= silu_fast(detail::raw_at<T>(rz[j], i));
          }
          store_from_float<T, kV>(out_ptr[j] + (t_tile - t_begin), o, true, kV);
        }
      };
      // Keeps the u just converted for the epilogue of its tile: the newer slot moves to the
      // older one (whose tile's epilogue has run), the new u goes to the newer slot.
      auto keep_u = [&]() {
#pragma unroll
        for (int j = 0; j < kVPT; ++j) {
          if constexpr (kConv) {
#pragma unroll
            for (int i = 0; i < kCU; ++i) {
              cu_old[j][i] = cu_new[j][i];
              cu_new[j][i] = cu_conv[j][i];
            }
          } else {
            ru_old[j] = ru_new[j];
            ru_new[j] = raw_u[j];
          }
        }
      };
      // One iteration; kParts bit 0: epilogue of tile j - 1, bit 1: conversion of tile j + 1,
      // bit 2: loads of tile j + 2.
      auto iteration = [&](int64_t j, auto parts) {
        constexpr int kParts = decltype(parts)::value;
        const int s = static_cast<int>(j & 1);
        __syncthreads();
        if constexpr (!Traits::kElementFirst) recurrence(std::true_type{}, s, std::bool_constant<Traits::kPackedBC>{});
        if constexpr ((kParts & 1) != 0) epilogue(tile_at(j - 1), s ^ 1, std::false_type{});
        if constexpr ((kParts & 2) != 0) {
          land();
          commit(s ^ 1, tile_at(j + 1));
          keep_u();
        }
        if constexpr ((kParts & 4) != 0) fetch((j + 2) * kL);
        if constexpr (kZ && Traits::kAsyncLoads) {
          // z of tile j, loaded during iteration j - 1, for the epilogue of iteration j + 1;
          // z of tile j + 1 for the next iteration.
#pragma unroll
          for (int i = 0; i < kVPT; ++i) rz[i] = rz_next[i];
          if constexpr ((kParts & 2) != 0) load_z(tile_at(j + 1), rz_next);
        } else if constexpr (kZ) {
          load_z(tile_at(j), rz);
        }
        if constexpr (Traits::kElementFirst) recurrence(std::true_type{}, s, std::bool_constant<Traits::kPackedBC>{});
      };
      fetch(0);
      if constexpr (kZ && Traits::kAsyncLoads) load_z(t_begin, rz_next);
      land();
      commit(0, t_begin);
      keep_u();
      fetch(kL);
      iteration(0, std::integral_constant<int, 6>{});
      for (int64_t j = 1; j + 2 < n_full; ++j) iteration(j, std::integral_constant<int, 7>{});
      iteration(n_full - 2, std::integral_constant<int, 3>{});
      iteration(n_full - 1, std::integral_constant<int, 1>{});
      __syncthreads();
      epilogue(tile_at(n_full - 1), static_cast<int>((n_full - 1) & 1), std::true_type{});
    };
    if (n_full >= 4) {
      if (z) pipelined(std::true_type{});
      else pipelined(std::false_type{});
      t_start = t_begin + n_full * kL;
    }
  }
  if (t_start < t_end) {
    load_and_commit(t_start - kL, true);
    load_and_commit(t_start, false);
  }
  for (int64_t t0 = t_start; t0 < t_end; t0 += kL) {
    const int valid_t = valid_of(t0);
    const bool has_next = t0 + kL < t_end;
    __syncthreads();  // the tile's dt, dt*u, B, C are in shared memory
    if (has_next) load_and_commit(t0, true);
    uint4 raw_z[kVPT];
    if (z) {
#pragma unroll
      for (int j = 0; j < kVPT; ++j)
        if (has_v[j] && tv_of[j] < valid_t)
          raw_z[j] = detail::load_raw<false>(z_ptr[j] + (t0 - t_begin), valid_t - tv_of[j], vec_x);
    }

    if (Bvar && (Cvar || kStatePass)) {
      recurrence(std::true_type{}, 0, std::false_type{});
    } else {
      recurrence(std::false_type{}, 0, std::false_type{});
    }
    if (kStatePass) {
      if (has_next) {
        __syncthreads();
        load_and_commit(t0 + kL, false);
      }
      continue;
    }
    __syncthreads();  // partial sums complete; dt, dt*u, B, C no longer read

    // With many lanes per channel, every thread first sums some (channel, step) partials, so
    // that the epilogue below is not left to the few threads that own output vectors.
    constexpr int kPartials = kTPC > 4 ? 1 : kTPC;
    if (kTPC > 4) {
      for (int q = tid; q < kC * kL; q += Traits::kThreads) {
        const int qc = q / kL, qt = q % kL;
        float acc = smem.y[0][qc * kYC + qt];
#pragma unroll
        for (int l = 1; l < kTPC; ++l) acc += smem.y[0][qc * kYC + l * Traits::kYRow + qt];
        smem.y[0][qc * kYC + qt] = acc;
      }
      __syncthreads();
    }

    // Epilogue: sum the partials, add D*u, gate, store.
#pragma unroll
    for (int j = 0; j < kVPT; ++j) {
      if (has_v[j] && tv_of[j] < valid_t) {
        float o[kV];
        const float* y_row = &smem.y[0][cv_of[j] * kYC + tv_of[j]];
#pragma unroll
        for (int i = 0; i < kV; i += 4) {
          float4 acc = *reinterpret_cast<const float4*>(y_row + i);
#pragma unroll
          for (int l = 1; l < kPartials; ++l) {
            const float4 q = *reinterpret_cast<const float4*>(y_row + l * Traits::kYRow + i);
            acc.x += q.x; acc.y += q.y; acc.z += q.z; acc.w += q.w;
          }
          o[i] = fmaf(D_v[j], u_keep[j][i], acc.x);
          o[i + 1] = fmaf(D_v[j], u_keep[j][i + 1], acc.y);
          o[i + 2] = fmaf(D_v[j], u_keep[j][i + 2], acc.z);
          o[i + 3] = fmaf(D_v[j], u_keep[j][i + 3], acc.w);
        }
        if (z) {
#pragma unroll
          for (int i = 0; i < kV; ++i) o[i] *= silu_fast(detail::raw_at<T>(raw_z[j], i));
        }
        store_from_float<T, kV>(out_ptr[j] + (t0 - t_begin), o, vec_x, valid_t - tv_of[j]);
      }
    }
    // The next tile's shared memory: dt, dt*u, B and C were last read before the barrier above;
    // y is next written after the barrier at the top of the loop.
    if (has_next) load_and_commit(t0 + kL, false);
  }

  if constexpr (kConv && !kStatePass) {
    // The conv's final states: the last W-1 inputs (from the initial states when the sequence
    // is shorter), written by the blocks of the sequence's last range.
    if (p.conv.final_states && t_end == p.seqlen && conv_w > 1) {
      T* fin = static_cast<T*>(p.conv.final_states) + b * p.conv.final_states_batch_stride;
      for (int q = tid; q < n_chan * (conv_w - 1); q += Traits::kThreads) {
        const int qc = q / (conv_w - 1), k = q % (conv_w - 1);
        const int64_t dv = d_begin + qc;
        const int64_t t = p.seqlen - (conv_w - 1) + k;
        float x = 0.f;
        if (t >= 0) {
          x = to_float(u[dv * p.u_dim_stride + t]);
        } else if (conv_init && conv_w - 1 + t >= 0) {
          x = to_float(conv_init[dv * p.conv.initial_states_dim_stride + (conv_w - 1 + t)]);
        }
        fin[dv * p.conv.final_states_dim_stride + k] = from_float<T>(x);
      }
    }
  }
#pragma unroll
  for (int k = 0; k < kCPT; ++k) {
    if (kStatePass) {
      if (c_valid[k]) {
        const int64_t row = (sidx * p.batch + b) * p.dim + d[k];
#pragma unroll
        for (int i = 0; i < kS; ++i) {
          const int n = lane_in_channel + i * kTPC;
          if (n < dstate) split.ws_state[row * p.dstate + n] = h[k][i];
        }
        if (lane_in_channel == 0) split.ws_dtsum[row] = dtsum[k];
      }
    } else if (p.last_state && c_valid[k] && t_end == p.seqlen) {
      float* ls = p.last_state + b * p.last_state_batch_stride + d[k] * p.last_state_dim_stride;
#pragma unroll
      for (int i = 0; i < kS; ++i) {
        const int n = lane_in_channel + i * kTPC;
        if (n < dstate) ls[n] = h[k][i];
      }
    }
  }
}

}  // namespace detail

// The pipelined configurations are compiled for sm_90 and newer only (where they were
// measured; the launchers refuse them on older devices), which keeps the build of the other
// architectures as it was.
template <class Traits, bool kStatePass, bool kConv>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kMinBlocksPerSM)
    selective_scan_fwd_kernel(const SelectiveScanParams p, const ScanSplit split) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
  if constexpr (Traits::kPipelined) {
    __trap();
  } else
#endif
  {
    detail::selective_scan_fwd_body<Traits, kStatePass, kConv>(p, split);
  }
}

SSMKIT_NAMESPACE_END
