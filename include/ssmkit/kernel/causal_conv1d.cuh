/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file kernel/causal_conv1d.cuh
//! @brief Causal conv1d kernels (forward, channel-first and channel-last; decode update) and
//! their compile-time traits.
#pragma once

#include <cstdint>

#include "../block/conv1d_tile.cuh"
#include "../causal_conv1d_params.cuh"
#include "../config.cuh"
#include "../math.cuh"
#include "../types.cuh"

//! Most resident threads per SM of the architecture being compiled (device pass), used to keep
//! a kernel's minimum blocks per SM within what the architecture can hold.
#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ < 800)
#define SSMKIT_MAX_THREADS_PER_SM 1024
#elif defined(__CUDA_ARCH__) && (__CUDA_ARCH__ == 800 || __CUDA_ARCH__ == 900 || __CUDA_ARCH__ == 1000)
#define SSMKIT_MAX_THREADS_PER_SM 2048
#elif defined(__CUDA_ARCH__)
#define SSMKIT_MAX_THREADS_PER_SM 1536
#else
#define SSMKIT_MAX_THREADS_PER_SM 2048
#endif

SSMKIT_NAMESPACE_BEGIN

//! Compile-time configuration of the conv1d forward kernels.
//!
//! Channel-first (position stride 1): one block per (batch, channel, tile of kTileLen
//! positions); each of the kThreads threads loads kItems positions with 16-byte loads plus
//! the W-1 halo before them (BlockConv1dTile), convolves in registers and stores 16 bytes at
//! a time.
//!
//! Channel-last (channel stride 1): one block per (batch, tile of kTileLen positions, chunk
//! of kChannels channels = 128 bytes); the block loads the tile and its W-1 halo rows into
//! shared memory with 16-byte loads along the channels, each thread convolves one channel
//! over kTileLen / (kThreads / kChannels) positions, and the output goes back through shared
//! memory to 16-byte stores.
//! @tparam T            element type of x, out and the states
//! @tparam TW           element type of weight and bias
//! @tparam kWidth_      filter taps, 1..8
//! @tparam kTileLen_    positions per tile
//! @tparam kChannelLast_ which of the two kernels
//! @tparam kMinBlocksPerSM_ blocks per SM the register budget is sized for (__launch_bounds__)
template <typename T, typename TW, int kWidth_, int kTileLen_, bool kChannelLast_,
          int kMinBlocksPerSM_ = 1>
struct CausalConv1dTraits {
  using Element = T;                             //!< Element type of x and out.
  using Weight = TW;                             //!< Element type of weight and bias.
  static constexpr int kWidth = kWidth_;         //!< Filter taps.
  static constexpr int kTileLen = kTileLen_;     //!< Positions per tile.
  static constexpr bool kChannelLast = kChannelLast_;  //!< Channel-last kernel.
  static constexpr int kThreads = 128;           //!< Threads per block.
  //! Blocks per SM for __launch_bounds__: the requested number, at most what the SM holds.
  static constexpr int kMinBlocksPerSM =
      kMinBlocksPerSM_ * kThreads <= SSMKIT_MAX_THREADS_PER_SM ? kMinBlocksPerSM_
                                                               : SSMKIT_MAX_THREADS_PER_SM / kThreads;
  static constexpr int kVec = kVecElems<T>;      //!< Elements per 16-byte vector.
  //! Channel-first: positions per thread.
  static constexpr int kItems = kChannelLast ? kVec : kTileLen / kThreads;
  //! Channel-last: channels per block (128 bytes of a position row).
  static constexpr int kChannels = 128 / static_cast<int>(sizeof(T));
  //! Channel-last: 16-byte vectors per position row of the tile.
  static constexpr int kVecsPerRow = kChannels / kVec;
  //! Channel-last: threads sharing one channel, each over a run of positions.
  static constexpr int kGroups = kThreads / kChannels;
  //! Channel-last: positions per thread.
  static constexpr int kPerThread = kTileLen / kGroups;
  //! Channel-last: rows of the input tile (halo included).
  static constexpr int kRows = kTileLen + kWidth - 1;

  using Tile = BlockConv1dTile<T, kWidth, kThreads, kItems>;  //!< Channel-first tile.

  static_assert(kChannelLast || kTileLen % (kThreads * kVec) == 0,
                "channel-first tile must give every thread whole vectors");
  static_assert(!kChannelLast || kTileLen % kGroups == 0, "channel-last tile must split evenly");

  //! Shared memory of the channel-last kernel.
  struct TempStorage {
    alignas(16) T x[kChannelLast ? kRows : 1][kChannels];        //!< Input tile with halo.
    alignas(16) T out[kChannelLast ? kTileLen : 1][kChannels];   //!< Output tile.
    int seq[kChannelLast ? kRows : 1];                           //!< seq_idx of the rows.
  };

  //! Tiles along the sequence.
  SSMKIT_HOST_DEVICE static int64_t num_tiles(const CausalConv1dParams& p) { return (p.seqlen + kTileLen - 1) / kTileLen; }

  //! Number of blocks for @p p.
  static int64_t grid_size(const CausalConv1dParams& p) {
    if (kChannelLast) return p.batch * num_tiles(p) * ((p.dim + kChannels - 1) / kChannels);
    return p.batch * p.dim * num_tiles(p);
  }
};

namespace detail {

template <typename TW, int kWidth>
SSMKIT_DEVICE void load_conv_weights(const void* weight, int64_t d, int64_t dim_stride,
                                     int64_t width_stride, const void* bias, float (&w)[kWidth],
                                     float& b) {
  const TW* wr = static_cast<const TW*>(weight) + d * dim_stride;
#pragma unroll
  for (int k = 0; k < kWidth; ++k) w[k] = to_float(wr[k * width_stride]);
  b = bias ? to_float(static_cast<const TW*>(bias)[d]) : 0.f;
}

}  // namespace detail

//! The channel-first causal conv1d forward kernel (see CausalConv1dTraits). Launch with
//! Traits::grid_size(p) blocks of Traits::kThreads threads.
template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kMinBlocksPerSM)
    causal_conv1d_fwd_channel_first_kernel(const CausalConv1dParams p) {
  using T = typename Traits::Element;
  using Tile = typename Traits::Tile;
  constexpr int kW = Traits::kWidth;
  constexpr int kItems = Traits::kItems;
  const int64_t tiles = Traits::num_tiles(p);
  const int64_t bid = blockIdx.x;
  const int64_t tile = bid % tiles;
  const int64_t row = bid / tiles;
  const int64_t d = row % p.dim;
  const int64_t b = row / p.dim;
  const int64_t t0 = tile * Traits::kTileLen;

  float w[kW], bias;
  detail::load_conv_weights<typename Traits::Weight, kW>(p.weight, d, p.weight_dim_stride,
                                                         p.weight_width_stride, p.bias, w, bias);
  const T* xr = static_cast<const T*>(p.x) + b * p.x_batch_stride + d * p.x_dim_stride;
  const T* init = p.initial_states ? static_cast<const T*>(p.initial_states) +
                                         b * p.initial_states_batch_stride +
                                         d * p.initial_states_dim_stride
                                   : nullptr;
  auto before_start = [&](int pos) {
    return init ? to_float(init[(kW - 1 + pos) * p.initial_states_seq_stride]) : 0.f;
  };
  float win[Tile::kWindow];
  Tile::load(xr, t0, p.seqlen, is_aligned(xr, 16), threadIdx.x, before_start, win);

  float out[kItems];
  if (p.seq_idx) {
    const int32_t* sr = p.seq_idx + b * p.seq_idx_batch_stride;
    const int64_t start = t0 + int64_t(threadIdx.x) * kItems - Tile::kHalo;
    int seq[Tile::kWindow];
#pragma unroll
    for (int j = 0; j < Tile::kWindow; ++j) {
      const int64_t pos = start + j;
      seq[j] = pos >= 0 && pos < p.seqlen ? sr[pos * p.seq_idx_seq_stride] : -1;
    }
    Tile::convolve_masked(w, bias, p.silu, win, seq, out);
  } else {
    Tile::convolve(w, bias, p.silu, win, out);
  }
  const int64_t base = t0 + int64_t(threadIdx.x) * kItems;
  T* orow = static_cast<T*>(p.out) + b * p.out_batch_stride + d * p.out_dim_stride;
  if (base < p.seqlen)
    store_from_float<T, kItems>(orow + base, out, is_aligned(orow, 16),
                                p.seqlen - base < kItems ? int(p.seqlen - base) : kItems);

  if (p.final_states && tile == tiles - 1 && static_cast<int>(threadIdx.x) < kW - 1) {
    const int k = static_cast<int>(threadIdx.x);
    const int64_t pos = p.seqlen - (kW - 1) + k;
    const float v = pos >= 0 ? to_float(xr[pos]) : before_start(int(pos));
    static_cast<T*>(p.final_states)[b * p.final_states_batch_stride +
                                    d * p.final_states_dim_stride +
                                    k * p.final_states_seq_stride] = from_float<T>(v);
  }
}

//! The channel-last causal conv1d forward kernel (see CausalConv1dTraits). Launch with
//! Traits::grid_size(p) blocks of Traits::kThreads threads and no dynamic shared memory.
template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kMinBlocksPerSM)
    causal_conv1d_fwd_channel_last_kernel(const CausalConv1dParams p) {
  using T = typename Traits::Element;
  constexpr int kW = Traits::kWidth;
  constexpr int kC = Traits::kChannels;
  constexpr int kV = Traits::kVec;
  constexpr int kVR = Traits::kVecsPerRow;
  constexpr int kL = Traits::kTileLen;
  constexpr int kRows = Traits::kRows;
  __shared__ typename Traits::TempStorage smem;

  const int64_t chunks = (p.dim + kC - 1) / kC;
  const int64_t tiles = Traits::num_tiles(p);
  int64_t bid = blockIdx.x;
  const int64_t chunk = bid % chunks;
  bid /= chunks;
  const int64_t tile = bid % tiles;
  const int64_t b = bid / tiles;
  const int64_t c0 = chunk * kC;
  const int64_t t0 = tile * kL;
  const int tid = threadIdx.x;

  const T* xb = static_cast<const T*>(p.x) + b * p.x_batch_stride;
  const bool xvec = is_aligned(xb, 16) && p.x_seq_stride % kV == 0;
  const T* init = static_cast<const T*>(p.initial_states);

  // 1. Input tile and halo rows (positions t0-W+1 .. t0+kL-1) into shared memory: every load
  //    of the thread is issued before the first store, so they are all in flight at once.
  constexpr int kLoads = (kRows * kVR + Traits::kThreads - 1) / Traits::kThreads;
  uint4 raw[kLoads];
#pragma unroll
  for (int it = 0; it < kLoads; ++it) {
    const int i = tid + it * Traits::kThreads;
    const int r = i / kVR, v = i % kVR;
    const int64_t pos = t0 - (kW - 1) + r;
    const int64_t c = c0 + int64_t(v) * kV;
    raw[it] = make_uint4(0, 0, 0, 0);
    T* e = reinterpret_cast<T*>(&raw[it]);
    if (i >= kRows * kVR) continue;
    if (pos >= 0 && pos < p.seqlen) {
      const T* src = xb + pos * p.x_seq_stride + c;
      if (xvec && c + kV <= p.dim) {
        raw[it] = __ldg(reinterpret_cast<const uint4*>(src));
      } else {
#pragma unroll
        for (int j = 0; j < kV; ++j)
          if (c + j < p.dim) e[j] = src[j];
      }
    } else if (pos < 0 && init) {
#pragma unroll
      for (int j = 0; j < kV; ++j)
        if (c + j < p.dim)
          e[j] = init[b * p.initial_states_batch_stride + (c + j) * p.initial_states_dim_stride +
                      (kW - 1 + pos) * p.initial_states_seq_stride];
    }
  }
#pragma unroll
  for (int it = 0; it < kLoads; ++it) {
    const int i = tid + it * Traits::kThreads;
    if (i < kRows * kVR) *reinterpret_cast<uint4*>(&smem.x[i / kVR][(i % kVR) * kV]) = raw[it];
  }
  if (p.seq_idx) {
    for (int r = tid; r < kRows; r += Traits::kThreads) {
      const int64_t pos = t0 - (kW - 1) + r;
      smem.seq[r] = pos >= 0 && pos < p.seqlen
                        ? p.seq_idx[b * p.seq_idx_batch_stride + pos * p.seq_idx_seq_stride]
                        : -1;
    }
  }
  __syncthreads();

  // 2. One channel per thread over a run of positions, the window sliding in registers.
  {
    const int cl = tid % kC;
    const int r0 = (tid / kC) * Traits::kPerThread;
    const int64_t c = c0 + cl;
    float w[kW], bias = 0.f;
    if (c < p.dim) {
      detail::load_conv_weights<typename Traits::Weight, kW>(p.weight, c, p.weight_dim_stride,
                                                             p.weight_width_stride, p.bias, w, bias);
    } else {
#pragma unroll
      for (int k = 0; k < kW; ++k) w[k] = 0.f;
    }
    float win[kW];
#pragma unroll
    for (int k = 0; k < kW - 1; ++k) win[k] = to_float(smem.x[r0 + k][cl]);
    if (p.seq_idx) {
      int sq[kW];
#pragma unroll
      for (int k = 0; k < kW - 1; ++k) sq[k] = smem.seq[r0 + k];
#pragma unroll 4
      for (int i = 0; i < Traits::kPerThread; ++i) {
        win[kW - 1] = to_float(smem.x[r0 + i + kW - 1][cl]);
        sq[kW - 1] = smem.seq[r0 + i + kW - 1];
        float acc = bias;
#pragma unroll
        for (int k = 0; k < kW; ++k) acc = fmaf(w[k], sq[k] == sq[kW - 1] ? win[k] : 0.f, acc);
        smem.out[r0 + i][cl] = from_float<T>(p.silu ? silu_fast(acc) : acc);
#pragma unroll
        for (int k = 0; k < kW - 1; ++k) { win[k] = win[k + 1]; sq[k] = sq[k + 1]; }
      }
    } else {
#pragma unroll 4
      for (int i = 0; i < Traits::kPerThread; ++i) {
        win[kW - 1] = to_float(smem.x[r0 + i + kW - 1][cl]);
        float acc = bias;
#pragma unroll
        for (int k = 0; k < kW; ++k) acc = fmaf(w[k], win[k], acc);
        smem.out[r0 + i][cl] = from_float<T>(p.silu ? silu_fast(acc) : acc);
#pragma unroll
        for (int k = 0; k < kW - 1; ++k) win[k] = win[k + 1];
      }
    }
  }
  __syncthreads();

  // 3. Output tile with 16-byte stores along the channels.
  T* ob = static_cast<T*>(p.out) + b * p.out_batch_stride;
  const bool ovec = is_aligned(ob, 16) && p.out_seq_stride % kV == 0;
#pragma unroll 4
  for (int i = tid; i < kL * kVR; i += Traits::kThreads) {
    const int r = i / kVR, v = i % kVR;
    const int64_t pos = t0 + r;
    const int64_t c = c0 + int64_t(v) * kV;
    if (pos >= p.seqlen || c >= p.dim) continue;
    T* dst = ob + pos * p.out_seq_stride + c;
    const uint4 raw = *reinterpret_cast<const uint4*>(&smem.out[r][v * kV]);
    if (ovec && c + kV <= p.dim) {
      *reinterpret_cast<uint4*>(dst) = raw;
    } else {
      const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
      for (int j = 0; j < kV; ++j)
        if (c + j < p.dim) dst[j] = e[j];
    }
  }

  // 4. Final states: the last W-1 rows, read back from the input tile.
  if (p.final_states && tile == tiles - 1) {
    for (int i = tid; i < kC * (kW - 1); i += Traits::kThreads) {
      const int cl = i % kC, k = i / kC;
      const int64_t c = c0 + cl;
      if (c >= p.dim) continue;
      const int64_t r = p.seqlen - (kW - 1) + k - t0 + (kW - 1);
      static_cast<T*>(p.final_states)[b * p.final_states_batch_stride +
                                      c * p.final_states_dim_stride +
                                      k * p.final_states_seq_stride] = smem.x[r][cl];
    }
  }
}

//! Threads per block of the conv1d update kernel.
constexpr int kConvUpdateThreads = 128;

//! The causal conv1d decode-update kernel: one thread per (batch entry, channel), the state
//! row read once and written once, no shared memory. Launch with
//! ceil(batch * dim / kConvUpdateThreads) blocks of kConvUpdateThreads threads.
//! @tparam T      element type of x, out and conv_state
//! @tparam TW     element type of weight and bias
//! @tparam kWidth filter taps, 1..8
template <typename T, typename TW, int kWidth>
__global__ void __launch_bounds__(kConvUpdateThreads)
    causal_conv1d_update_kernel(const CausalConv1dUpdateParams p) {
  constexpr int kW = kWidth;
  const int64_t idx = int64_t(blockIdx.x) * kConvUpdateThreads + threadIdx.x;
  if (idx >= p.batch * p.dim) return;
  const int64_t d = idx % p.dim;
  const int64_t b = idx / p.dim;
  const T* xr = static_cast<const T*>(p.x) + b * p.x_batch_stride + d * p.x_dim_stride;
  T* orow = static_cast<T*>(p.out) + b * p.out_batch_stride + d * p.out_dim_stride;
  const int64_t srow = p.conv_state_indices ? int64_t(p.conv_state_indices[b]) : b;
  if (srow < 0) {  // padding entry
    for (int64_t t = 0; t < p.seqlen; ++t) orow[t * p.out_seq_stride] = from_float<T>(0.f);
    return;
  }
  float w[kW], bias;
  detail::load_conv_weights<TW, kW>(p.weight, d, p.weight_dim_stride, p.weight_width_stride,
                                    p.bias, w, bias);
  T* st = static_cast<T*>(p.conv_state) + srow * p.state_batch_stride + d * p.state_dim_stride;
  const int64_t S = p.state_len;
  const int64_t ss = p.state_seq_stride;
  float win[kW];

  if (p.cache_seqlens) {
    int64_t c = int64_t(p.cache_seqlens[b]) % S;
    if (c < 0) c += S;
    int64_t r = c - (kW - 1);
    while (r < 0) r += S;
#pragma unroll
    for (int k = 0; k < kW - 1; ++k) {
      win[k] = to_float(st[r * ss]);
      r = r + 1 == S ? 0 : r + 1;
    }
    for (int64_t t = 0; t < p.seqlen; ++t) {
      const T xv = xr[t * p.x_seq_stride];
      st[c * ss] = xv;
      c = c + 1 == S ? 0 : c + 1;
      win[kW - 1] = to_float(xv);
      float acc = bias;
#pragma unroll
      for (int k = 0; k < kW; ++k) acc = fmaf(w[k], win[k], acc);
      orow[t * p.out_seq_stride] = from_float<T>(p.silu ? silu_fast(acc) : acc);
#pragma unroll
      for (int k = 0; k < kW - 1; ++k) win[k] = win[k + 1];
    }
    return;
  }

  // Shifted state: read its newest W-1 inputs, convolve, then move the row left by seqlen.
  const int64_t tail0 = S - (kW - 1);
  float tail[kW > 1 ? kW - 1 : 1];
#pragma unroll
  for (int k = 0; k < kW - 1; ++k) tail[k] = to_float(st[(tail0 + k) * ss]);
#pragma unroll
  for (int k = 0; k < kW - 1; ++k) win[k] = tail[k];
  for (int64_t t = 0; t < p.seqlen; ++t) {
    win[kW - 1] = to_float(xr[t * p.x_seq_stride]);
    float acc = bias;
#pragma unroll
    for (int k = 0; k < kW; ++k) acc = fmaf(w[k], win[k], acc);
    orow[t * p.out_seq_stride] = from_float<T>(p.silu ? silu_fast(acc) : acc);
#pragma unroll
    for (int k = 0; k < kW - 1; ++k) win[k] = win[k + 1];
  }
  // new[s] = concat(old, x)[s + seqlen]: older entries move in place (ascending), then the
  // W-1 newest old inputs (from registers), then the new tokens.
  const int64_t T_ = p.seqlen;
  for (int64_t s = 0; s + T_ < tail0; ++s) st[s * ss] = st[(s + T_) * ss];
#pragma unroll
  for (int k = 0; k < kW - 1; ++k) {
    const int64_t s = tail0 + k - T_;
    if (s >= 0) st[s * ss] = from_float<T>(tail[k]);
  }
  for (int64_t j = T_ > S ? T_ - S : 0; j < T_; ++j) st[(S - T_ + j) * ss] = xr[j * p.x_seq_stride];
}

//! True when the update of @p p can run causal_conv1d_update_vec_kernel: one token, a state
//! row of exactly W-1 inputs stored contiguously (so that kVec channels' states are one
//! contiguous, 16-byte aligned run), x, out, weight and bias contiguous along the channels and
//! 16-byte aligned, no circular buffer. That is the layout of a decode step in a serving engine.
template <typename T, typename TW>
inline bool causal_conv1d_update_vec_ok(const CausalConv1dUpdateParams& p) {
  constexpr int kV = kVecElems<T>;
  const int64_t S = p.width - 1;
  return p.width >= 2 && p.seqlen == 1 && p.cache_seqlens == nullptr && p.state_len == S &&
         p.dim % kV == 0 && p.state_seq_stride == 1 && p.state_dim_stride == S &&
         p.state_batch_stride % kV == 0 && is_aligned(p.conv_state, 16) &&
         (p.dim == 1 || p.x_dim_stride == 1) && p.x_batch_stride % kV == 0 && is_aligned(p.x, 16) &&
         (p.dim == 1 || p.out_dim_stride == 1) && p.out_batch_stride % kV == 0 &&
         is_aligned(p.out, 16) && p.weight_width_stride == 1 && p.weight_dim_stride == p.width &&
         is_aligned(p.weight, 16) && (p.bias == nullptr || is_aligned(p.bias, 16));
}

//! The decode update for the layout of causal_conv1d_update_vec_ok(): one thread per batch
//! entry and 16 bytes of channels (kVec of them); the state run of those channels, the token,
//! the taps and the output move as 16-byte vectors, each read and written once. Launch with
//! ceil(batch * dim / kVec / kConvUpdateThreads) blocks of kConvUpdateThreads threads.
//! @tparam T      element type of x, out and conv_state
//! @tparam TW     element type of weight and bias
//! @tparam kWidth filter taps, 2..8
template <typename T, typename TW, int kWidth>
__global__ void __launch_bounds__(kConvUpdateThreads)
    causal_conv1d_update_vec_kernel(const CausalConv1dUpdateParams p) {
  constexpr int kV = kVecElems<T>;
  constexpr int kW = kWidth;
  constexpr int kS = kWidth - 1;
  static_assert(kWidth >= 2, "the vector update keeps at least one input");
  const int64_t groups = p.dim / kV;
  const int64_t idx = int64_t(blockIdx.x) * kConvUpdateThreads + threadIdx.x;
  if (idx >= p.batch * groups) return;
  const int64_t d0 = (idx % groups) * kV;
  const int64_t b = idx / groups;
  T* orow = static_cast<T*>(p.out) + b * p.out_batch_stride + d0;
  const int64_t srow = p.conv_state_indices ? int64_t(p.conv_state_indices[b]) : b;
  if (srow < 0) {  // padding entry
    *reinterpret_cast<uint4*>(orow) = make_uint4(0, 0, 0, 0);
    return;
  }
  T* st = static_cast<T*>(p.conv_state) + srow * p.state_batch_stride + d0 * kS;
  float x[kV], s[kV * kS], w[kV * kW], bias[kV];
  load_to_float<T, kV>(static_cast<const T*>(p.x) + b * p.x_batch_stride + d0, x, true, kV);
  load_to_float<T, kV * kS>(st, s, true, kV * kS);
  load_to_float<TW, kV * kW>(static_cast<const TW*>(p.weight) + d0 * kW, w, true, kV * kW);
  if (p.bias) {
    load_to_float<TW, kV>(static_cast<const TW*>(p.bias) + d0, bias, true, kV);
  } else {
#pragma unroll
    for (int c = 0; c < kV; ++c) bias[c] = 0.f;
  }
  float out[kV];
#pragma unroll
  for (int c = 0; c < kV; ++c) {
    float acc = bias[c];
#pragma unroll
    for (int k = 0; k < kS; ++k) acc = fmaf(w[c * kW + k], s[c * kS + k], acc);
    acc = fmaf(w[c * kW + kS], x[c], acc);
    out[c] = p.silu ? silu_fast(acc) : acc;
#pragma unroll
    for (int k = 0; k < kS - 1; ++k) s[c * kS + k] = s[c * kS + k + 1];
    s[c * kS + kS - 1] = x[c];
  }
  store_from_float<T, kV>(orow, out, true, kV);
  store_from_float<T, kV * kS>(st, s, true, kV * kS);
}

SSMKIT_NAMESPACE_END
