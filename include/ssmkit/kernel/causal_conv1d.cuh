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
#include "../launch.cuh"
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

namespace detail {

//! Unsigned integer type of @p kBytes bytes (4, 8 or 16): one access of a thread's channels.
template <int kBytes>
struct RawVec;
//! 16 bytes.
template <>
struct RawVec<16> {
  using type = uint4;  //!< The type.
};
//! 8 bytes.
template <>
struct RawVec<8> {
  using type = uint2;  //!< The type.
};
//! 4 bytes.
template <>
struct RawVec<4> {
  using type = unsigned int;  //!< The type.
};
//! 2 bytes.
template <>
struct RawVec<2> {
  using type = unsigned short;  //!< The type.
};

//! Default channels per thread of the channel-last forward for @p width taps: the largest
//! power of two at most 16 / width (so that a thread holds at most 16 taps) that fits in a
//! 16-byte vector of T.
template <typename T>
constexpr int conv_channels(int width) {
  int c = 1;
  while (c * 2 * width <= 16 && c * 2 <= kVecElems<T>) c *= 2;
  return c;
}

}  // namespace detail

//! Compile-time configuration of the conv1d forward kernels.
//!
//! Both kernels keep the loads of the next piece of work in flight while they convolve and
//! store the current one, so that memory is kept busy without relying on other blocks.
//!
//! Channel-first (position stride 1): work is tiles of kTileLen positions of one (batch,
//! channel) row. Each block takes a contiguous range of tiles (grid_size() gives one tile per
//! block up to 2^30 blocks); each of its kThreads threads loads kItems positions with
//! 16-byte loads plus the W-1 halo before them (BlockConv1dTile), convolves in registers and
//! stores 16 bytes at a time, while the next tile's loads are in flight.
//!
//! Channel-last (channel stride 1): each thread owns kChannels consecutive channels of one
//! batch entry (one 16- or 8-byte access per position) and walks a run of positions, kChunk at
//! a time, the W-1 previous inputs sliding in registers and the next chunk loaded while the
//! current one is convolved. A warp reads and writes whole contiguous rows of channels;
//! nothing goes through shared memory; only the W-1 inputs before each run are read twice.
//! @tparam T            element type of x, out and the states
//! @tparam TW           element type of weight and bias
//! @tparam kWidth_      filter taps, 1..8
//! @tparam kTileLen_    channel-first: positions per tile; channel-last: positions per chunk
//! @tparam kChannelLast_ which of the two kernels
//! @tparam kMinBlocksPerSM_ blocks per SM the register budget is sized for (__launch_bounds__)
//! @tparam kChannels_   channel-last: channels per thread (0: the largest power of two that
//!                      is at most 16 / W and fits 16 bytes)
//! @tparam kThreads_    threads per block (a multiple of 32)
template <typename T, typename TW, int kWidth_, int kTileLen_, bool kChannelLast_,
          int kMinBlocksPerSM_ = 1, int kChannels_ = 0, int kThreads_ = 128>
struct CausalConv1dTraits {
  using Element = T;                             //!< Element type of x and out.
  using Weight = TW;                             //!< Element type of weight and bias.
  static constexpr int kWidth = kWidth_;         //!< Filter taps.
  static constexpr int kTileLen = kTileLen_;     //!< Positions per tile (channel-last: chunk).
  static constexpr bool kChannelLast = kChannelLast_;  //!< Channel-last kernel.
  static constexpr int kThreads = kThreads_;     //!< Threads per block.
  //! Blocks per SM for __launch_bounds__: the requested number, at most what the SM holds.
  static constexpr int kMinBlocksPerSM =
      kMinBlocksPerSM_ * kThreads <= SSMKIT_MAX_THREADS_PER_SM ? kMinBlocksPerSM_
                                                               : SSMKIT_MAX_THREADS_PER_SM / kThreads;
  static constexpr int kVec = kVecElems<T>;      //!< Elements per 16-byte vector.
  //! Channel-first: positions per thread.
  static constexpr int kItems = kChannelLast ? kVec : kTileLen / kThreads;
  //! Channel-last: channels per thread.
  static constexpr int kChannels = kChannels_ > 0 ? kChannels_ : detail::conv_channels<T>(kWidth);
  //! Channel-last: positions loaded together (the next chunk is in flight during this one).
  static constexpr int kChunk = kTileLen;
  //! Channel-last: raw type of one thread's channels at one position.
  using ChannelVec = typename detail::RawVec<kChannels * static_cast<int>(sizeof(T))>::type;

  using Tile = BlockConv1dTile<T, kWidth, kThreads, kItems>;  //!< Channel-first tile.

  static_assert(kChannelLast || kTileLen % (kThreads * kVec) == 0,
                "channel-first tile must give every thread whole vectors");
  static_assert(!kChannelLast || (kChunk >= 1 && kChunk <= 16), "channel-last chunk must be 1..16");

  //! Channel-first: tiles along the sequence.
  SSMKIT_HOST_DEVICE static int64_t num_tiles(const CausalConv1dParams& p) { return (p.seqlen + kTileLen - 1) / kTileLen; }

  //! Channel-last: groups of kChannels channels.
  SSMKIT_HOST_DEVICE static int64_t num_channel_groups(const CausalConv1dParams& p) {
    return (p.dim + kChannels - 1) / kChannels;
  }

  //! Channel-last: positions per thread (a multiple of kChunk) that give about one resident
  //! wave of threads on @p sm_count SMs, or the whole sequence when batch x channel groups
  //! alone fill the wave.
  static int64_t run_length(const CausalConv1dParams& p, int sm_count) {
    const int64_t wave = int64_t(sm_count) * kMinBlocksPerSM * kThreads;
    const int64_t columns = p.batch * num_channel_groups(p);
    int64_t runs = wave / columns;
    if (runs < 1) runs = 1;
    int64_t len = (p.seqlen + runs - 1) / runs;
    return (len + kChunk - 1) / kChunk * kChunk;
  }

  //! Number of blocks for @p p on a device of @p sm_count SMs. Channel-first: one block per
  //! tile, up to 2^30 blocks (the kernel spreads any number of tiles over whatever grid it
  //! gets; on an H100 one block per tile measured 7-11 points of copy bandwidth faster than one
  //! resident wave of blocks walking the tiles, bench/NOTES.md). Channel-last: one thread per
  //! (batch, run of @p run_len positions, channel group).
  static int64_t grid_size(const CausalConv1dParams& p, int sm_count, int64_t run_len) {
    (void)sm_count;
    if (kChannelLast) {
      const int64_t runs = (p.seqlen + run_len - 1) / run_len;
      return (p.batch * runs * num_channel_groups(p) + kThreads - 1) / kThreads;
    }
    const int64_t tiles = p.batch * p.dim * num_tiles(p);
    constexpr int64_t kMaxBlocks = int64_t{1} << 30;
    return tiles < kMaxBlocks ? tiles : kMaxBlocks;
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

// One channel-first tile of a block: its row, the loads in flight and the row's taps (raw, so
// that nothing waits on them before the tile is convolved).
template <class Traits>
struct ChannelFirstStage {
  using TW = typename Traits::Weight;
  typename Traits::Tile::Fetch f;
  TW w[Traits::kWidth];
  TW bias;
};

template <class Traits>
SSMKIT_DEVICE void channel_first_fetch(const CausalConv1dParams& p, int64_t b, int64_t d,
                                       int64_t tile, ChannelFirstStage<Traits>& s) {
  using T = typename Traits::Element;
  using TW = typename Traits::Weight;
  const T* xr = static_cast<const T*>(p.x) + b * p.x_batch_stride + d * p.x_dim_stride;
  Traits::Tile::fetch(xr, tile * Traits::kTileLen, p.seqlen, is_aligned(xr, 16),
                      static_cast<int>(threadIdx.x), s.f);
  const TW* wr = static_cast<const TW*>(p.weight) + d * p.weight_dim_stride;
#pragma unroll
  for (int k = 0; k < Traits::kWidth; ++k) s.w[k] = wr[k * p.weight_width_stride];
  s.bias = p.bias ? static_cast<const TW*>(p.bias)[d] : from_float<TW>(0.f);
}

// Convolves and stores one fetched channel-first tile (and the row's final states after its
// last tile).
template <class Traits>
SSMKIT_DEVICE void channel_first_finish(const CausalConv1dParams& p, int64_t b, int64_t d,
                                        int64_t tile, const ChannelFirstStage<Traits>& s) {
  using T = typename Traits::Element;
  using Tile = typename Traits::Tile;
  constexpr int kW = Traits::kWidth;
  constexpr int kItems = Traits::kItems;
  const int64_t t0 = tile * Traits::kTileLen;
  const int rank = static_cast<int>(threadIdx.x);
  const T* xr = static_cast<const T*>(p.x) + b * p.x_batch_stride + d * p.x_dim_stride;
  const T* init = p.initial_states ? static_cast<const T*>(p.initial_states) +
                                         b * p.initial_states_batch_stride +
                                         d * p.initial_states_dim_stride
                                   : nullptr;
  auto before_start = [&](int pos) {
    return init ? to_float(init[(kW - 1 + pos) * p.initial_states_seq_stride]) : 0.f;
  };
  float win[Tile::kWindow];
  Tile::window(s.f, t0, rank, before_start, win);
  float w[kW];
#pragma unroll
  for (int k = 0; k < kW; ++k) w[k] = to_float(s.w[k]);
  const float bias = to_float(s.bias);

  float out[kItems];
  if (p.seq_idx) {
    const int32_t* sr = p.seq_idx + b * p.seq_idx_batch_stride;
    const int64_t start = t0 + int64_t(rank) * kItems - Tile::kHalo;
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
  const int64_t base = t0 + int64_t(rank) * kItems;
  T* orow = static_cast<T*>(p.out) + b * p.out_batch_stride + d * p.out_dim_stride;
  if (base < p.seqlen)
    store_from_float<T, kItems>(orow + base, out, is_aligned(orow, 16),
                                p.seqlen - base < kItems ? int(p.seqlen - base) : kItems);

  if (p.final_states && t0 + Traits::kTileLen >= p.seqlen && rank < kW - 1) {
    const int64_t pos = p.seqlen - (kW - 1) + rank;
    const T v = pos >= 0 ? xr[pos] : (init ? init[(kW - 1 + pos) * p.initial_states_seq_stride]
                                           : from_float<T>(0.f));
    static_cast<T*>(p.final_states)[b * p.final_states_batch_stride +
                                    d * p.final_states_dim_stride +
                                    rank * p.final_states_seq_stride] = v;
  }
}

}  // namespace detail

//! The channel-first causal conv1d forward kernel (see CausalConv1dTraits). Any grid works:
//! block i takes the i-th of gridDim.x near-equal contiguous ranges of the batch x dim x
//! num_tiles tiles (row-major, tiles fastest); Traits::grid_size() gives one resident wave.
//! Launch with Traits::kThreads threads.
template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kMinBlocksPerSM)
    causal_conv1d_fwd_channel_first_kernel(const CausalConv1dParams p) {
  const int64_t tiles = Traits::num_tiles(p);
  const int64_t total = p.batch * p.dim * tiles;
  const int64_t grid = gridDim.x, bid = blockIdx.x;
  // One tile per block (the launcher's grid) needs no division of the range; the tile's
  // coordinates take 32-bit divisions where they fit (64-bit ones cost about as many
  // instructions as convolving a tile of 2048 positions).
  int64_t left = 1, first = bid;
  if (grid != total) {
    const int64_t per = total / grid, extra = total % grid;
    left = per + (bid < extra ? 1 : 0);
    if (left == 0) return;
    first = bid * per + (bid < extra ? bid : extra);
  }
  int64_t tile, d, b;
  if (total <= int64_t(0xffffffffu)) {
    const uint32_t f32 = uint32_t(first), t32 = uint32_t(tiles), d32 = uint32_t(p.dim);
    const uint32_t row = f32 / t32;
    tile = f32 - row * t32;
    b = row / d32;
    d = row - uint32_t(b) * d32;
  } else {
    const int64_t row = first / tiles;
    tile = first - row * tiles;
    b = row / p.dim;
    d = row - b * p.dim;
  }

  // The next tile's loads are issued before the current tile is convolved and stored.
  detail::ChannelFirstStage<Traits> cur, nxt;
  detail::channel_first_fetch<Traits>(p, b, d, tile, cur);
  for (;;) {
    int64_t nt = tile + 1, nd = d, nb = b;
    if (nt == tiles) {
      nt = 0;
      if (++nd == p.dim) { nd = 0; ++nb; }
    }
    const bool more = --left > 0;
    if (more) detail::channel_first_fetch<Traits>(p, nb, nd, nt, nxt);
    detail::channel_first_finish<Traits>(p, b, d, tile, cur);
    if (!more) break;
    tile = nt; d = nd; b = nb;
    cur = nxt;
  }
}

namespace detail {

// The channel-last thread's walk (see CausalConv1dTraits), with or without seq_idx.
template <class Traits, bool kSeq>
SSMKIT_DEVICE void channel_last_run(const CausalConv1dParams& p, int64_t run_len) {
  using T = typename Traits::Element;
  using TW = typename Traits::Weight;
  using V = typename Traits::ChannelVec;
  constexpr int kW = Traits::kWidth;
  constexpr int kS = kW - 1;
  constexpr int kSw = kS > 0 ? kS : 1;
  constexpr int kC = Traits::kChannels;
  constexpr int kU = Traits::kChunk;

  const int64_t cols = Traits::num_channel_groups(p);
  const int64_t runs = (p.seqlen + run_len - 1) / run_len;
  const int64_t g = int64_t(blockIdx.x) * Traits::kThreads + threadIdx.x;
  if (g >= p.batch * runs * cols) return;
  const int64_t col = g % cols, rest = g / cols;
  const int64_t run = rest % runs, b = rest / runs;
  const int64_t c0 = col * kC;
  const int nc = p.dim - c0 < kC ? int(p.dim - c0) : kC;  // channels of this group
  const int64_t t_begin = run * run_len;
  const int64_t t_end = p.seqlen - t_begin < run_len ? p.seqlen : t_begin + run_len;

  // With dim == 1 the channel stride may be anything, but only channel 0 is read.
  const T* xp = static_cast<const T*>(p.x) + b * p.x_batch_stride + c0;
  T* op = static_cast<T*>(p.out) + b * p.out_batch_stride + c0;
  const int64_t xs = p.x_seq_stride, os = p.out_seq_stride;
  const bool xvec = nc == kC && is_aligned(xp, sizeof(V)) && (xs * sizeof(T)) % sizeof(V) == 0;
  const bool ovec = nc == kC && is_aligned(op, sizeof(V)) && (os * sizeof(T)) % sizeof(V) == 0;
  const int32_t* sq = kSeq ? p.seq_idx + b * p.seq_idx_batch_stride : nullptr;

  auto load_pos = [&](int64_t pos) {
    if (xvec) return __ldg(reinterpret_cast<const V*>(xp + pos * xs));
    V v;
    T* e = reinterpret_cast<T*>(&v);
#pragma unroll
    for (int c = 0; c < kC; ++c) e[c] = c < nc ? xp[pos * xs + c] : from_float<T>(0.f);
    return v;
  };
  auto fetch_chunk = [&](int64_t t, V (&raw)[kU], int (&seq)[kU]) {
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const bool in = t + u < t_end;
      if (in) {
        raw[u] = load_pos(t + u);
      } else {
        T* e = reinterpret_cast<T*>(&raw[u]);
#pragma unroll
        for (int c = 0; c < kC; ++c) e[c] = from_float<T>(0.f);
      }
      seq[u] = kSeq && in ? sq[(t + u) * p.seq_idx_seq_stride] : 0;
    }
  };

  // Taps and bias of the thread's channels (0 for channels past dim).
  float w[kC][kW], bias[kC];
  const TW* wp = static_cast<const TW*>(p.weight);
#pragma unroll
  for (int c = 0; c < kC; ++c) {
#pragma unroll
    for (int k = 0; k < kW; ++k)
      w[c][k] = c < nc ? to_float(wp[(c0 + c) * p.weight_dim_stride + k * p.weight_width_stride]) : 0.f;
    bias[c] = p.bias && c < nc ? to_float(static_cast<const TW*>(p.bias)[c0 + c]) : 0.f;
  }

  // The W-1 inputs before the run: from x, from the initial states before position 0, or 0.
  float win[kSw][kC];
  int wseq[kSw];
  const T* init = static_cast<const T*>(p.initial_states);
#pragma unroll
  for (int k = 0; k < kS; ++k) {
    const int64_t pos = t_begin - kS + k;
    wseq[k] = kSeq && pos >= 0 ? sq[pos * p.seq_idx_seq_stride] : -1;
    if (pos >= 0) {
      const V v = load_pos(pos);
      const T* e = reinterpret_cast<const T*>(&v);
#pragma unroll
      for (int c = 0; c < kC; ++c) win[k][c] = to_float(e[c]);
    } else {
#pragma unroll
      for (int c = 0; c < kC; ++c)
        win[k][c] = init && c < nc ? to_float(init[b * p.initial_states_batch_stride +
                                                   (c0 + c) * p.initial_states_dim_stride +
                                                   (kS + pos) * p.initial_states_seq_stride])
                                   : 0.f;
    }
  }

  V cur[kU], nxt[kU];
  int scur[kU], snxt[kU];
  fetch_chunk(t_begin, cur, scur);
  for (int64_t t0 = t_begin; t0 < t_end; t0 += kU) {
    if (t0 + kU < t_end) fetch_chunk(t0 + kU, nxt, snxt);
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const T* e = reinterpret_cast<const T*>(&cur[u]);
      float xin[kC], o[kC];
#pragma unroll
      for (int c = 0; c < kC; ++c) {
        xin[c] = to_float(e[c]);
        float acc = bias[c];
#pragma unroll
        for (int k = 0; k < kS; ++k)
          acc = fmaf(w[c][k], !kSeq || wseq[k] == scur[u] ? win[k][c] : 0.f, acc);
        acc = fmaf(w[c][kS], xin[c], acc);
        o[c] = p.silu ? silu_fast(acc) : acc;
      }
#pragma unroll
      for (int k = 0; k + 1 < kS; ++k) {
        wseq[k] = wseq[k + 1];
#pragma unroll
        for (int c = 0; c < kC; ++c) win[k][c] = win[k + 1][c];
      }
      if constexpr (kS > 0) {
        wseq[kS - 1] = scur[u];
#pragma unroll
        for (int c = 0; c < kC; ++c) win[kS - 1][c] = xin[c];
      }
      const int64_t pos = t0 + u;
      if (pos < t_end) {
        V v;
        T* oe = reinterpret_cast<T*>(&v);
#pragma unroll
        for (int c = 0; c < kC; ++c) oe[c] = from_float<T>(o[c]);
        if (ovec) {
          *reinterpret_cast<V*>(op + pos * os) = v;
        } else {
#pragma unroll
          for (int c = 0; c < kC; ++c)
            if (c < nc) op[pos * os + c] = oe[c];
        }
      }
    }
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      cur[u] = nxt[u];
      scur[u] = snxt[u];
    }
  }

  // Final states (the last W-1 inputs of the row), written by the row's last run.
  if (kS > 0 && p.final_states && t_end == p.seqlen) {
    T* fs = static_cast<T*>(p.final_states) + b * p.final_states_batch_stride;
#pragma unroll
    for (int k = 0; k < kS; ++k) {
      const int64_t pos = p.seqlen - kS + k;
#pragma unroll
      for (int c = 0; c < kC; ++c) {
        if (c >= nc) continue;
        const T v = pos >= 0 ? xp[pos * xs + c]
                             : (init ? init[b * p.initial_states_batch_stride +
                                            (c0 + c) * p.initial_states_dim_stride +
                                            (kS + pos) * p.initial_states_seq_stride]
                                     : from_float<T>(0.f));
        fs[(c0 + c) * p.final_states_dim_stride + k * p.final_states_seq_stride] = v;
      }
    }
  }
}

}  // namespace detail

//! The channel-last causal conv1d forward kernel (see CausalConv1dTraits): one thread per
//! (batch entry, run of @p run_len positions, group of Traits::kChannels channels), channel
//! groups fastest. Launch with Traits::grid_size(p, sm_count, run_len) blocks of
//! Traits::kThreads threads and no dynamic shared memory.
//! @param p       the call's arguments
//! @param run_len positions per thread, a multiple of Traits::kChunk (Traits::run_length())
template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kMinBlocksPerSM)
    causal_conv1d_fwd_channel_last_kernel(const CausalConv1dParams p, int64_t run_len) {
  if (p.seq_idx)
    detail::channel_last_run<Traits, true>(p, run_len);
  else
    detail::channel_last_run<Traits, false>(p, run_len);
}

//! Threads per block of the conv1d update kernels.
constexpr int kConvUpdateThreads = 128;


//! The causal conv1d decode-update kernel: one thread per (batch entry, channel), the state
//! row read once and written once, no shared memory. Launch with
//! ceil(batch * dim / kConvUpdateThreads) blocks of kConvUpdateThreads threads. Safe to launch
//! with programmatic dependent launch: it touches no memory before the preceding grid is done.
//! @tparam T      element type of x, out and conv_state
//! @tparam TW     element type of weight and bias
//! @tparam kWidth filter taps, 1..8
template <typename T, typename TW, int kWidth>
__global__ void __launch_bounds__(kConvUpdateThreads)
    causal_conv1d_update_kernel(const CausalConv1dUpdateParams p) {
  constexpr int kW = kWidth;
  detail::grid_dependency_sync();
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
  const int64_t channel_blocks = (p.dim / kV + kConvUpdateThreads - 1) / kConvUpdateThreads;
  return p.width >= 2 && p.seqlen == 1 && p.cache_seqlens == nullptr && p.state_len == S &&
         p.batch <= 0x7fffffff && p.dim % kV == 0 && channel_blocks <= 65535 &&
         p.state_seq_stride == 1 &&
         p.state_dim_stride == S && p.state_batch_stride % kV == 0 &&
         is_aligned(p.conv_state, 16) && (p.dim == 1 || p.x_dim_stride == 1) &&
         p.x_batch_stride % kV == 0 && is_aligned(p.x, 16) &&
         (p.dim == 1 || p.out_dim_stride == 1) && p.out_batch_stride % kV == 0 &&
         is_aligned(p.out, 16) && p.weight_width_stride == 1 && p.weight_dim_stride == p.width &&
         is_aligned(p.weight, 16) && (p.bias == nullptr || is_aligned(p.bias, 16));
}

//! The decode update for the layout of causal_conv1d_update_vec_ok(): each thread owns 16
//! bytes of channels (kVec of them) of kRows consecutive batch entries. Its taps, tokens and
//! state runs move as 16-byte vectors, all issued before the first is used (the state loads
//! after the pool indices they depend on); tokens and states are read and written with
//! streaming cache hints, as they are touched once per step. Launch with a grid of
//! (ceil(batch / kRows), ceil(dim / kVec / kConvUpdateThreads)) blocks of kConvUpdateThreads
//! threads. Safe to launch with programmatic dependent launch.
//! @tparam T      element type of x, out and conv_state
//! @tparam TW     element type of weight and bias
//! @tparam kWidth filter taps, 2..8
//! @tparam kRows  batch entries per thread
template <typename T, typename TW, int kWidth, int kRows = 1>
__global__ void __launch_bounds__(kConvUpdateThreads)
    causal_conv1d_update_vec_kernel(const CausalConv1dUpdateParams p) {
  constexpr int kV = kVecElems<T>;
  constexpr int kW = kWidth;
  constexpr int kS = kWidth - 1;
  constexpr int kWv = kV * kW * static_cast<int>(sizeof(TW)) / 16;  // 16-byte vectors of taps
  constexpr int kBv = kV * static_cast<int>(sizeof(TW)) / 16;       // and of bias
  static_assert(kWidth >= 2, "the vector update keeps at least one input");
  detail::grid_dependency_sync();
  const int64_t d0 = (int64_t(blockIdx.y) * kConvUpdateThreads + threadIdx.x) * kV;
  if (d0 >= p.dim) return;
  const int64_t b0 = int64_t(blockIdx.x) * kRows;

  // Loads that depend on nothing: taps, bias, tokens, pool indices.
  uint4 wraw[kWv], braw[kBv];
  const uint4* wsrc = reinterpret_cast<const uint4*>(static_cast<const TW*>(p.weight) + d0 * kW);
#pragma unroll
  for (int v = 0; v < kWv; ++v) wraw[v] = __ldg(wsrc + v);
  const uint4* bsrc =
      p.bias ? reinterpret_cast<const uint4*>(static_cast<const TW*>(p.bias) + d0) : nullptr;
#pragma unroll
  for (int v = 0; v < kBv; ++v) braw[v] = bsrc ? __ldg(bsrc + v) : make_uint4(0, 0, 0, 0);
  uint4 xraw[kRows];
  int64_t srow[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t b = b0 + r;
    srow[r] = -1;
    xraw[r] = make_uint4(0, 0, 0, 0);
    if (b < p.batch) {
      xraw[r] = __ldcs(reinterpret_cast<const uint4*>(static_cast<const T*>(p.x) + b * p.x_batch_stride + d0));
      srow[r] = p.conv_state_indices ? int64_t(__ldg(p.conv_state_indices + b)) : b;
    }
  }
  // The state runs of the thread's channels: kS vectors per entry (padding entries: none).
  uint4 sraw[kRows][kS];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    if (srow[r] >= 0) {
      const uint4* src = reinterpret_cast<const uint4*>(static_cast<const T*>(p.conv_state) +
                                                        srow[r] * p.state_batch_stride + d0 * kS);
#pragma unroll
      for (int k = 0; k < kS; ++k) sraw[r][k] = __ldcs(src + k);
    } else {
#pragma unroll
      for (int k = 0; k < kS; ++k) sraw[r][k] = make_uint4(0, 0, 0, 0);
    }
  }

  float w[kV * kW], bias[kV];
  const TW* we = reinterpret_cast<const TW*>(wraw);
  const TW* be = reinterpret_cast<const TW*>(braw);
#pragma unroll
  for (int i = 0; i < kV * kW; ++i) w[i] = to_float(we[i]);
#pragma unroll
  for (int c = 0; c < kV; ++c) bias[c] = to_float(be[c]);

#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t b = b0 + r;
    if (b >= p.batch) break;
    uint4* orow = reinterpret_cast<uint4*>(static_cast<T*>(p.out) + b * p.out_batch_stride + d0);
    if (srow[r] < 0) {  // padding entry: output 0, state untouched
      __stcs(orow, make_uint4(0, 0, 0, 0));
      continue;
    }
    const T* x = reinterpret_cast<const T*>(&xraw[r]);
    T* s = reinterpret_cast<T*>(sraw[r]);  // channel c's inputs at s[c*kS .. c*kS + kS-1]
    uint4 oraw;
    T* o = reinterpret_cast<T*>(&oraw);
#pragma unroll
    for (int c = 0; c < kV; ++c) {
      float acc = bias[c];
#pragma unroll
      for (int k = 0; k < kS; ++k) acc = fmaf(w[c * kW + k], to_float(s[c * kS + k]), acc);
      acc = fmaf(w[c * kW + kS], to_float(x[c]), acc);
      o[c] = from_float<T>(p.silu ? silu_fast(acc) : acc);
#pragma unroll
      for (int k = 0; k + 1 < kS; ++k) s[c * kS + k] = s[c * kS + k + 1];
      s[c * kS + kS - 1] = x[c];
    }
    __stcs(orow, oraw);
    uint4* dst = reinterpret_cast<uint4*>(static_cast<T*>(p.conv_state) +
                                          srow[r] * p.state_batch_stride + d0 * kS);
#pragma unroll
    for (int k = 0; k < kS; ++k) __stcs(dst + k, sraw[r][k]);
  }
}

SSMKIT_NAMESPACE_END
