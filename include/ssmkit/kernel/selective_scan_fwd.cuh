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
//! lanes of a channel read different shared-memory banks. Per tile the block
//!   1. converts the tile's u, delta and variable B/C (loaded into registers during the
//!      previous tile, so the loads overlap the recurrence) into dt and dt*u in shared memory,
//!      once per element;
//!   2. runs the recurrence four steps at a time: per state one exp2 and four FP32 operations
//!      per step; each thread writes its partial sums of C*h for the four steps to shared
//!      memory;
//!   3. sums the partials, adds D*u, applies the z gate and stores out with 16-byte stores.
//! Tiles that lie wholly inside the sequence, with every channel of the block present and
//! aligned rows, take a path without per-element bounds checks.
//! @tparam T                 element type of u, delta, z, out and variable B/C
//! @tparam kNState_          largest state size handled (the run-time dstate may be smaller)
//! @tparam kStatesPerThread_ states held by one thread
//! @tparam kTileLen_         time steps per tile (multiple of 4 and of the vector width)
//! @tparam kThreads_         threads per block
//! @tparam kMinBlocks_       blocks per SM the register budget is sized for; 0 picks
//!                           512 threads per SM (N <= 32) or 384 (larger N)
template <typename T, int kNState_, int kStatesPerThread_, int kTileLen_, int kThreads_, int kMinBlocks_ = 0>
struct SelectiveScanTraits {
  using Element = T;                                          //!< Element type.
  static constexpr int kNState = kNState_;                    //!< State capacity.
  static constexpr int kStatesPerThread = kStatesPerThread_;  //!< States per thread.
  static constexpr int kTileLen = kTileLen_;                  //!< Steps per tile.
  static constexpr int kThreads = kThreads_;                  //!< Threads per block.
  static constexpr int kThreadsPerChannel = kNState / kStatesPerThread;  //!< Lanes per channel.
  static constexpr int kChannels = kThreads / kThreadsPerChannel;        //!< Channels per block.
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
  //! Floats per channel of the partial sums (the extra vector offsets channels by four banks).
  static constexpr int kYChannel = kThreadsPerChannel * kRow + 4;

  static_assert(kNState % kStatesPerThread == 0, "kStatesPerThread must divide kNState");
  static_assert(kThreadsPerChannel >= 1 && kThreadsPerChannel <= 32 &&
                    (kThreadsPerChannel & (kThreadsPerChannel - 1)) == 0,
                "a channel's lanes must be a power of two within one warp");
  static_assert(kThreads % 32 == 0 && kThreads % kThreadsPerChannel == 0, "bad block size");
  static_assert(kTileLen % kVec == 0 && kTileLen % 4 == 0, "tile must hold whole vectors");

  //! Shared memory of one block.
  struct TempStorage {
    float dt[kChannels][kRow];           //!< dt per channel and step.
    float dtu[kChannels][kRow];          //!< dt * u per channel and step.
    float y[kChannels * kYChannel];      //!< Partial sums of C*h per channel, lane and step.
    float B[kNState][kRow];              //!< Variable B of the tile, per state.
    float C[kNState][kRow];              //!< Variable C of the tile, per state.
  };

  //! Number of blocks for @p p when the sequence is cut into @p splits ranges.
  static int64_t grid_size(const SelectiveScanParams& p, int64_t splits = 1) {
    const int64_t per_group = p.dim / p.n_groups;
    return p.batch * p.n_groups * ((per_group + kChannels - 1) / kChannels) * splits;
  }
};

namespace detail {

// Loads one 16-byte vector of kV elements starting at src, of which `valid` are inside the
// sequence (the rest read as zero). 16-byte access when `vec` and the vector is whole; with
// kFull the caller guarantees both.
template <bool kFull, typename T>
SSMKIT_DEVICE uint4 load_raw(const T* __restrict__ src, int valid, bool vec) {
  constexpr int kV = kVecElems<T>;
  uint4 raw = make_uint4(0, 0, 0, 0);
  if (kFull || (vec && valid >= kV)) {
    raw = __ldg(reinterpret_cast<const uint4*>(src));
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
    selective_scan_fwd_kernel(const SelectiveScanParams p, const ScanSplit split) {
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

  // Recurrence role of this thread: channel c, states lane_in_channel + i * kTPC.
  const int c = tid / kTPC;
  const int lane_in_channel = tid % kTPC;
  const bool c_valid = c < n_chan;
  const int64_t d = d_begin + (c_valid ? c : 0);
  float a_log2[kS], h[kS], Bc[kS], Cc[kS];
#pragma unroll
  for (int i = 0; i < kS; ++i) {
    const int n = lane_in_channel + i * kTPC;
    const bool ok = c_valid && n < dstate;
    a_log2[i] = ok ? p.A[d * p.A_dim_stride + n * p.A_dstate_stride] * kLog2e : 0.f;
    h[i] = ok && p.h0 && !kStatePass ? p.h0[b * p.h0_batch_stride + d * p.h0_dim_stride + n] : 0.f;
    Bc[i] = ok && !p.B_variable ? static_cast<const float*>(p.B)[d * p.B_dim_stride + n * p.B_dstate_stride] : 0.f;
    Cc[i] = ok && !p.C_variable ? static_cast<const float*>(p.C)[d * p.C_dim_stride + n * p.C_dstate_stride] : 0.f;
  }

  // Carry into this range: h0 (or zero), then each earlier range's decay and local state.
  if (!kStatePass) {
    for (int64_t j = 0; j < sidx; ++j) {
      const int64_t row = (j * p.batch + b) * p.dim + d;
      const float dts = split.ws_dtsum[row];
#pragma unroll
      for (int i = 0; i < kS; ++i) {
        const int n = lane_in_channel + i * kTPC;
        const float loc = c_valid && n < dstate ? split.ws_state[row * p.dstate + n] : 0.f;
        h[i] = fmaf(fast_exp2(dts * a_log2[i]), h[i], loc);
      }
    }
  }
  float dtsum = 0.f;

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
        if constexpr (kConv) {
          // The kTaps - 1 inputs before this vector: from the lane of the previous vector of the
          // row, or, for the first vector, from the lane of the row's last vector, which passes
          // on what it kept from the previous tile. Whole warps take part (kVecsPerTile % 32 == 0).
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
        }
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
        float* dt_row = &smem.dt[cv_of[j]][tv_of[j]];
        float* dtu_row = &smem.dtu[cv_of[j]][tv_of[j]];
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
        float* row = is_C[j] ? &smem.C[nw_of[j]][tw_of[j]] : &smem.B[nw_of[j]][tw_of[j]];
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

  load_and_commit(t_begin - kL, true);
  load_and_commit(t_begin, false);
  for (int64_t t0 = t_begin; t0 < t_end; t0 += kL) {
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

    // The recurrence, four steps at a time, one state after another within the four steps.
    // Variable B and C (the common case) read shared memory only; otherwise the constant
    // values in registers stand in. Where the registers allow (one element vector per
    // thread), the shared-memory reads of the next four steps (dt, dt*u and the B/C of the
    // first kPre states) are issued before the current four are computed.
    auto recurrence = [&](auto var_bc) {
      constexpr bool kVarBC = decltype(var_bc)::value;
      constexpr bool kPrefetch = kVPT == 1;
      constexpr int kPre = kS <= 4 ? kS : 1;
      float* y_row = &smem.y[c * kYC + lane_in_channel * Traits::kRow];
      auto load_B = [&](int i, int t) {
        return kVarBC || Bvar ? *reinterpret_cast<const float4*>(&smem.B[lane_in_channel + i * kTPC][t])
                              : make_float4(Bc[i], Bc[i], Bc[i], Bc[i]);
      };
      auto load_C = [&](int i, int t) {
        return kStatePass ? make_float4(0.f, 0.f, 0.f, 0.f)
                          : (kVarBC || Cvar ? *reinterpret_cast<const float4*>(&smem.C[lane_in_channel + i * kTPC][t])
                                            : make_float4(Cc[i], Cc[i], Cc[i], Cc[i]));
      };
      struct Group {
        float4 dt, dtu, B[kPre], C[kPre];
      };
      auto load_group = [&](int t, Group& g) {
        g.dt = *reinterpret_cast<const float4*>(&smem.dt[c][t]);
        g.dtu = *reinterpret_cast<const float4*>(&smem.dtu[c][t]);
#pragma unroll
        for (int i = 0; i < kPre; ++i) {
          g.B[i] = load_B(i, t);
          g.C[i] = load_C(i, t);
        }
      };
      auto run_group = [&](const Group& g, int t) {
        const float dts[4] = {g.dt.x, g.dt.y, g.dt.z, g.dt.w};
        const float dtus[4] = {g.dtu.x, g.dtu.y, g.dtu.z, g.dtu.w};
        float ys[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
        for (int i = 0; i < kS; ++i) {
          const float4 qb = i < kPre ? g.B[i < kPre ? i : 0] : load_B(i, t);
          const float4 qc = i < kPre ? g.C[i < kPre ? i : 0] : load_C(i, t);
          const float Bv[4] = {qb.x, qb.y, qb.z, qb.w};
          const float Cv[4] = {qc.x, qc.y, qc.z, qc.w};
#pragma unroll
          for (int s = 0; s < 4; ++s) {
            h[i] = fmaf(fast_exp2(dts[s] * a_log2[i]), h[i], dtus[s] * Bv[s]);
            if (!kStatePass) ys[s] = fmaf(Cv[s], h[i], ys[s]);
          }
        }
        if (kStatePass) {
          dtsum += (dts[0] + dts[1]) + (dts[2] + dts[3]);
        } else {
          *reinterpret_cast<float4*>(y_row + t) = make_float4(ys[0], ys[1], ys[2], ys[3]);
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
    if (Bvar && (Cvar || kStatePass)) {
      recurrence(std::true_type{});
    } else {
      recurrence(std::false_type{});
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
        float acc = smem.y[qc * kYC + qt];
#pragma unroll
        for (int l = 1; l < kTPC; ++l) acc += smem.y[qc * kYC + l * Traits::kRow + qt];
        smem.y[qc * kYC + qt] = acc;
      }
      __syncthreads();
    }

    // Epilogue: sum the partials, add D*u, gate, store.
#pragma unroll
    for (int j = 0; j < kVPT; ++j) {
      if (has_v[j] && tv_of[j] < valid_t) {
        float o[kV];
        const float* y_row = &smem.y[cv_of[j] * kYC + tv_of[j]];
#pragma unroll
        for (int i = 0; i < kV; i += 4) {
          float4 acc = *reinterpret_cast<const float4*>(y_row + i);
#pragma unroll
          for (int l = 1; l < kPartials; ++l) {
            const float4 q = *reinterpret_cast<const float4*>(y_row + l * Traits::kRow + i);
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
  if (kStatePass) {
    if (c_valid) {
      const int64_t row = (sidx * p.batch + b) * p.dim + d;
#pragma unroll
      for (int i = 0; i < kS; ++i) {
        const int n = lane_in_channel + i * kTPC;
        if (n < dstate) split.ws_state[row * p.dstate + n] = h[i];
      }
      if (lane_in_channel == 0) split.ws_dtsum[row] = dtsum;
    }
  } else if (p.last_state && c_valid && t_end == p.seqlen) {
    float* ls = p.last_state + b * p.last_state_batch_stride + d * p.last_state_dim_stride;
#pragma unroll
    for (int i = 0; i < kS; ++i) {
      const int n = lane_in_channel + i * kTPC;
      if (n < dstate) ls[n] = h[i];
    }
  }
}

SSMKIT_NAMESPACE_END
