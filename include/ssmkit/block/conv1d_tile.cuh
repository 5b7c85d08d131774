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
//! through shared memory: the halo of one thread is the previous thread's items, passed by a
//! warp shuffle; the first lane of a warp loads its halo from memory (an L1/L2 hit) in the
//! same round trip as its items. Nothing is kept in shared memory, so TempStorage is empty
//! and any kernel (e.g. a fused conv -> scan) can call it between its own collectives.
//!
//! Loading is split in two so that a kernel can keep the next tile's loads in flight while it
//! works on the current one: fetch() issues the loads into a Fetch, window() waits for them
//! and builds the window; load() does both. Every lane of each warp must call window() (and
//! load()) together.
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

  //! A thread's loads in flight, as raw 16-byte vectors: its items and, on the first lane of a
  //! warp, the kHalo positions before them (positions outside the row hold 0).
  struct Fetch {
    uint4 own[kItems / kVec];  //!< Positions base .. base + kItems - 1.
    uint4 halo[kHalo / kVec];  //!< Positions base - kHalo .. base - 1 (first lane of a warp).
  };

  //! Issues the loads of thread @p rank's window and returns without waiting for them
  //! (base = t0 + rank * kItems). Positions at or past @p seqlen, and before 0, read 0.
  //! @param[in]  row    the channel row (position stride 1)
  //! @param[in]  t0     first position of the tile (a multiple of kVec)
  //! @param[in]  seqlen length of the row
  //! @param[in]  vec    @p row is 16-byte aligned (enables 16-byte loads)
  //! @param[in]  rank   the thread's rank in the block
  //! @param[out] f      the loads in flight
  static SSMKIT_DEVICE void fetch(const T* __restrict__ row, int64_t t0, int64_t seqlen, bool vec,
                                  int rank, Fetch& f) {
    const int64_t base = t0 + int64_t(rank) * kItems;
    fetch_run(row, base, seqlen, vec, f.own);
    if (rank % 32 == 0) {
      fetch_run(row, base - kHalo, seqlen, vec, f.halo);
    } else {
#pragma unroll
      for (int v = 0; v < kHalo / kVec; ++v) f.halo[v] = make_uint4(0, 0, 0, 0);
    }
  }

  //! Waits for the loads of @p f (issued by fetch() with the same @p t0 and @p rank) and builds
  //! the window: win[j] is position base - kHalo + j. Positions before 0 read
  //! @p before_start(pos) (initial states or 0). Every lane of the warp must call it together.
  //! @param[in]  f            the thread's loads
  //! @param[in]  t0           first position of the tile
  //! @param[in]  rank         the thread's rank in the block
  //! @param[in]  before_start functor float(int pos) for pos in [-(kWidth-1), -1]
  //! @param[out] win          the window, in float
  template <typename BeforeStart>
  static SSMKIT_DEVICE void window(const Fetch& f, int64_t t0, int rank, BeforeStart&& before_start,
                                   float (&win)[kWindow]) {
    constexpr int kHv = kHalo / kVec, kOv = kItems / kVec;
    // The halo is the previous lane's last items; the first lane of a warp loaded its own.
    uint4 halo[kHv];
#pragma unroll
    for (int v = 0; v < kHv; ++v) {
      const uint4 src = f.own[kOv - kHv + v];
      halo[v].x = __shfl_up_sync(0xffffffffu, src.x, 1);
      halo[v].y = __shfl_up_sync(0xffffffffu, src.y, 1);
      halo[v].z = __shfl_up_sync(0xffffffffu, src.z, 1);
      halo[v].w = __shfl_up_sync(0xffffffffu, src.w, 1);
      if (rank % 32 == 0) halo[v] = f.halo[v];
    }
    const T* h = reinterpret_cast<const T*>(halo);
    const T* o = reinterpret_cast<const T*>(f.own);
#pragma unroll
    for (int j = 0; j < kHalo; ++j) win[j] = to_float(h[j]);
#pragma unroll
    for (int i = 0; i < kItems; ++i) win[kHalo + i] = to_float(o[i]);
    const int64_t base = t0 + int64_t(rank) * kItems;
    if (base < kHalo) {  // rank 0 of the first tile: the halo starts before position 0
#pragma unroll
      for (int j = 0; j < kHalo; ++j) {
        const int64_t pos = base - kHalo + j;
        if (pos < 0) win[j] = pos >= -(kWidth - 1) ? before_start(int(pos)) : 0.f;
      }
    }
  }

  //! Loads the window of thread @p rank (called by every thread of the block): fetch() then
  //! window(). win[j] is position base - kHalo + j with base = t0 + rank * kItems. Positions
  //! at or past @p seqlen read 0; positions before 0 read @p before_start(pos).
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
    Fetch f;
    fetch(row, t0, seqlen, vec, rank, f);
    window(f, t0, rank, before_start, win);
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

 private:
  // Loads positions start .. start + kN - 1 (kN = 16-byte vectors * kVec) into raw vectors:
  // 16-byte loads when the run is aligned and inside the row, else element by element with
  // positions outside [0, seqlen) set to 0.
  template <int kNv>
  static SSMKIT_DEVICE void fetch_run(const T* __restrict__ row, int64_t start, int64_t seqlen,
                                      bool vec, uint4 (&dst)[kNv]) {
    if (vec && start >= 0 && start + kNv * kVec <= seqlen) {
#pragma unroll
      for (int v = 0; v < kNv; ++v) dst[v] = __ldg(reinterpret_cast<const uint4*>(row + start) + v);
    } else {
      T* e = reinterpret_cast<T*>(dst);
#pragma unroll
      for (int i = 0; i < kNv * kVec; ++i) {
        const int64_t pos = start + i;
        e[i] = pos >= 0 && pos < seqlen ? row[pos] : from_float<T>(0.f);
      }
    }
  }
};

SSMKIT_NAMESPACE_END
