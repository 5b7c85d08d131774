/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file block/conv1d_tile.cuh
//! @brief Block-level causal conv1d over a tile of one channel row: load the tile with its
//! W-1 inputs of halo and convolve, in registers.
#pragma once

#include <cstdint>

#include "../config.cuh"
#include "../math.cuh"
#include "../types.cuh"

SSMKIT_NAMESPACE_BEGIN

//! A tile of @c kTileLen consecutive positions of one contiguous channel row, convolved with a
//! causal filter of @c kWidth taps. Thread @c rank of the block owns positions
//! t0 + rank*kItems .. t0 + rank*kItems + kItems - 1 (a blocked arrangement) and loads them
//! together with the kHalo positions before them, so that it convolves without going
//! through shared memory: the halo of one thread is the previous thread's items, passed by a warp
//! shuffle (the first lane of a warp reads its halo from memory, an L1/L2 hit). Nothing is kept
//! in shared memory, so TempStorage is empty and any kernel (e.g. a fused conv -> scan) can
//! call it between its own collectives. Every lane of each warp must call load() together.
//! @tparam T        element type of the row (float, __half, __nv_bfloat16)
//! @tparam kWidth   filter taps, 1..8
//! @tparam kThreads threads of the block
//! @tparam kItems   positions per thread (a multiple of the 16-byte vector width, >= kWidth-1)
template <typename T, int kWidth, int kThreads, int kItems>
struct BlockConv1dTile {
  static constexpr int kVec = kVecElems<T>;            //!< Elements per 16-byte vector.
  static constexpr int kTileLen = kThreads * kItems;  //!< Positions per tile.
  //! Halo positions loaded before a thread's items: W-1 rounded up to whole vectors.
  static constexpr int kHalo = ((kWidth > 1 ? kWidth - 1 : 1) + kVec - 1) / kVec * kVec;
  static constexpr int kWindow = kHalo + kItems;  //!< Positions in a thread's window.

  static_assert(kWidth >= 1 && kWidth <= 8, "width must be in [1, 8]");
  static_assert(kItems % kVec == 0, "items per thread must be whole 16-byte vectors");
  static_assert(kHalo <= kItems, "a thread's halo must fit the previous thread's items");
  static_assert(kThreads % 32 == 0, "the block must be whole warps");

  //! No shared memory is needed; kept so callers can treat every block piece alike.
  struct TempStorage {};

  //! Loads the window of thread @p rank (called by every thread of the block): win[j] is position base - kHalo + j with
  //! base = t0 + rank * kItems. Positions at or past @p seqlen read 0; positions before 0
  //! read @p before_start(pos) (initial states or 0).
  //! @param[in]  row          the channel row (position stride 1)
  //! @param[in]  t0           first position of the tile (a multiple of kVec)
  //! @param[in]  seqlen       length of the row
  //! @param[in]  vec          @p row is 16-byte aligned (enables 16-byte loads)
  //! @param[in]  rank         the thread's rank in the block
  //! @param[in]  before_start functor float(int pos) for pos in [-(kWidth-1), -1]
  //! @param[out] win          the window, in float
  template <typename BeforeStart>
  static SSMKIT_DEVICE void load(const T* __restrict__ row, int64_t t0, int64_t seqlen, bool vec,
                                 int rank, BeforeStart&& before_start, float (&win)[kWindow]) {
    const int64_t base = t0 + int64_t(rank) * kItems;
    const int64_t valid = seqlen - base;
    float own[kItems];
    if (valid > 0) {
      load_to_float<T, kItems>(row + base, own, vec, valid < kItems ? int(valid) : kItems);
    } else {
#pragma unroll
      for (int i = 0; i < kItems; ++i) own[i] = 0.f;
    }
    // The halo is the previous thread's last items: from the neighbouring lane by shuffle,
    // and from memory (or the states before position 0) for the first lane of each warp.
    float halo[kHalo];
    const int lane = rank % 32;
#pragma unroll
    for (int j = 0; j < kHalo; ++j) {
      const int src = kItems - kHalo + j;
      halo[j] = __shfl_up_sync(0xffffffffu, own[src], 1);
    }
    if (lane == 0) {
      if (base - kHalo >= 0 && base - kHalo < seqlen) {
        load_to_float<T, kHalo>(row + base - kHalo, halo, vec,
                                seqlen - (base - kHalo) < kHalo ? int(seqlen - (base - kHalo)) : kHalo);
      } else {
#pragma unroll
        for (int j = 0; j < kHalo; ++j) {
          const int64_t pos = base - kHalo + j;
          halo[j] = pos < 0 ? (pos >= -(kWidth - 1) ? before_start(int(pos)) : 0.f)
                            : (pos < seqlen ? to_float(row[pos]) : 0.f);
        }
      }
    }
#pragma unroll
    for (int j = 0; j < kHalo; ++j) win[j] = halo[j];
#pragma unroll
    for (int i = 0; i < kItems; ++i) win[kHalo + i] = own[i];
  }

  //! out[i] = act(bias + sum_k w[k] * win[kHalo - (kWidth-1) + i + k]).
  static SSMKIT_DEVICE void convolve(const float (&w)[kWidth], float bias, bool silu_act,
                                     const float (&win)[kWindow], float (&out)[kItems]) {
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      float acc = bias;
#pragma unroll
      for (int k = 0; k < kWidth; ++k) acc = fmaf(w[k], win[kHalo - (kWidth - 1) + i + k], acc);
      out[i] = silu_act ? silu_fast(acc) : acc;
    }
  }

  //! As convolve(), but a tap is dropped unless its position's sequence index equals the
  //! output position's (seq[j] belongs to win[j]): packed sequences do not see each other.
  static SSMKIT_DEVICE void convolve_masked(const float (&w)[kWidth], float bias, bool silu_act,
                                            const float (&win)[kWindow], const int (&seq)[kWindow],
                                            float (&out)[kItems]) {
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const int cur = seq[kHalo + i];
      float acc = bias;
#pragma unroll
      for (int k = 0; k < kWidth; ++k) {
        const int j = kHalo - (kWidth - 1) + i + k;
        acc = fmaf(w[k], seq[j] == cur ? win[j] : 0.f, acc);
      }
      out[i] = silu_act ? silu_fast(acc) : acc;
    }
  }
};

SSMKIT_NAMESPACE_END
