/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file kernel/selective_scan_fwd.cuh
//! @brief The selective-scan forward kernel template and its compile-time traits.
#pragma once

#include <cstdint>

#include "../config.cuh"
#include "../math.cuh"
#include "../selective_scan_params.cuh"
#include "../thread/scan_step.cuh"
#include "../types.cuh"
#include "../warp/warp_scan.cuh"

SSMKIT_NAMESPACE_BEGIN

//! Compile-time configuration of the selective-scan forward kernel.
//!
//! A block owns @c kChannels channels of one (batch, group) and walks the whole sequence in
//! tiles of @c kTileLen steps, carrying the state in registers. Each channel's @c kNState
//! states are split over @c kThreadsPerChannel adjacent lanes, @c kStatesPerThread each. Per
//! tile the block (1) loads u, delta and variable B/C with 16-byte loads, computes dt and
//! dt*u once per element into shared memory, (2) runs the recurrence, one exp2 per state and
//! step, summing y over the lanes of a channel with shuffles, (3) applies D, the z gate and
//! writes out.
//! @tparam T               element type of u, delta, z, out and variable B/C
//! @tparam kNState_        largest state size handled (the run-time dstate may be smaller)
//! @tparam kStatesPerThread_ states held by one thread
//! @tparam kTileLen_       time steps per tile
//! @tparam kThreads_       threads per block
template <typename T, int kNState_, int kStatesPerThread_, int kTileLen_, int kThreads_>
struct SelectiveScanTraits {
  using Element = T;                                       //!< Element type.
  static constexpr int kNState = kNState_;                 //!< State capacity.
  static constexpr int kStatesPerThread = kStatesPerThread_;  //!< States per thread.
  static constexpr int kTileLen = kTileLen_;               //!< Steps per tile.
  static constexpr int kThreads = kThreads_;               //!< Threads per block.
  static constexpr int kThreadsPerChannel = kNState / kStatesPerThread;  //!< Lanes per channel.
  static constexpr int kChannels = kThreads / kThreadsPerChannel;        //!< Channels per block.
  static constexpr int kVec = kVecElems<T>;                //!< Elements per 16-byte vector.
  static constexpr int kVecsPerRow = kTileLen / kVec;      //!< Vectors per channel and tile.
  static constexpr int kVecsPerTile = kChannels * kVecsPerRow;  //!< Vectors of u per tile.
  //! Vectors of u each thread loads per tile.
  static constexpr int kVecsPerThread = (kVecsPerTile + kThreads - 1) / kThreads;
  static constexpr int kRow = kTileLen + 4;   //!< Padded row of per-channel tiles (floats).
  static constexpr int kBCRow = kNState + 4;  //!< Padded row of B/C tiles (floats).

  static_assert(kNState % kStatesPerThread == 0, "kStatesPerThread must divide kNState");
  static_assert(kThreadsPerChannel >= 1 && kThreadsPerChannel <= 32 &&
                    (kThreadsPerChannel & (kThreadsPerChannel - 1)) == 0,
                "a channel's lanes must be a power of two within one warp");
  static_assert(kThreads % 32 == 0 && kThreads % kThreadsPerChannel == 0, "bad block size");
  static_assert(kStatesPerThread % 4 == 0, "states per thread must be a multiple of 4");
  static_assert(kTileLen % kVec == 0 && kTileLen % 4 == 0, "tile must hold whole vectors");

  //! Shared memory of one block.
  struct TempStorage {
    float dt[kChannels][kRow];   //!< dt per channel and step.
    float dtu[kChannels][kRow];  //!< dt * u per channel and step.
    float y[kChannels][kRow];    //!< sum_n C h per channel and step.
    float B[kTileLen][kBCRow];   //!< Variable B of the tile, step-major.
    float C[kTileLen][kBCRow];   //!< Variable C of the tile, step-major.
  };

  //! Number of blocks for @p p.
  static int64_t grid_size(const SelectiveScanParams& p) {
    const int64_t per_group = p.dim / p.n_groups;
    return p.batch * p.n_groups * ((per_group + kChannels - 1) / kChannels);
  }
};

namespace detail {

// Loads the variable B or C tile of one (batch, group) into smem[t][n] (zeros past dstate and
// past the sequence end).
template <class Traits>
SSMKIT_DEVICE void load_bc_tile(const typename Traits::Element* __restrict__ row0,
                                int64_t dstate_stride, int dstate, int valid_t, bool vec,
                                float (&dst)[Traits::kTileLen][Traits::kBCRow]) {
  constexpr int kV = Traits::kVec;
  for (int v = threadIdx.x; v < Traits::kNState * Traits::kVecsPerRow; v += Traits::kThreads) {
    const int n = v / Traits::kVecsPerRow;
    const int t = (v % Traits::kVecsPerRow) * kV;
    float vals[kV];
    if (n < dstate) {
      load_to_float<typename Traits::Element, kV>(row0 + n * dstate_stride + t, vals, vec, valid_t - t);
    } else {
#pragma unroll
      for (int i = 0; i < kV; ++i) vals[i] = 0.f;
    }
#pragma unroll
    for (int i = 0; i < kV; ++i) dst[t + i][n] = vals[i];
  }
}

}  // namespace detail

//! The selective-scan forward kernel. One params struct in; see SelectiveScanTraits for the
//! work split. Launch with Traits::grid_size(p) blocks of Traits::kThreads threads.
template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads)
    selective_scan_fwd_kernel(const SelectiveScanParams p) {
  using T = typename Traits::Element;
  constexpr int kS = Traits::kStatesPerThread;
  constexpr int kTPC = Traits::kThreadsPerChannel;
  constexpr int kC = Traits::kChannels;
  constexpr int kL = Traits::kTileLen;
  constexpr int kV = Traits::kVec;
  __shared__ typename Traits::TempStorage smem;

  const int tid = threadIdx.x;
  const int64_t per_group = p.dim / p.n_groups;
  const int64_t blocks_per_group = (per_group + kC - 1) / kC;
  int64_t bid = blockIdx.x;
  const int64_t chunk = bid % blocks_per_group;
  bid /= blocks_per_group;
  const int64_t g = bid % p.n_groups;
  const int64_t b = bid / p.n_groups;
  const int64_t d_begin = g * per_group + chunk * kC;
  const int n_chan = static_cast<int>(per_group - chunk * kC < kC ? per_group - chunk * kC : kC);
  const int dstate = static_cast<int>(p.dstate);

  const T* __restrict__ u = static_cast<const T*>(p.u) + b * p.u_batch_stride;
  const T* __restrict__ delta = static_cast<const T*>(p.delta) + b * p.delta_batch_stride;
  const T* __restrict__ z = p.z ? static_cast<const T*>(p.z) + b * p.z_batch_stride : nullptr;
  T* __restrict__ out = static_cast<T*>(p.out) + b * p.out_batch_stride;
  const T* Bvar = p.B_variable ? static_cast<const T*>(p.B) + b * p.B_batch_stride + g * p.B_group_stride : nullptr;
  const T* Cvar = p.C_variable ? static_cast<const T*>(p.C) + b * p.C_batch_stride + g * p.C_group_stride : nullptr;

  // 16-byte vector access is used where every row start is 16-byte aligned.
  const bool vec_x = is_aligned(u, 16) && is_aligned(delta, 16) && is_aligned(out, 16) &&
                     (z == nullptr || (is_aligned(z, 16) && p.z_dim_stride % kV == 0)) &&
                     p.u_dim_stride % kV == 0 && p.delta_dim_stride % kV == 0 &&
                     p.out_dim_stride % kV == 0;
  const bool vec_B = Bvar && is_aligned(Bvar, 16) && p.B_dstate_stride % kV == 0;
  const bool vec_C = Cvar && is_aligned(Cvar, 16) && p.C_dstate_stride % kV == 0;

  // Recurrence role of this thread: channel c, states n0 .. n0 + kS - 1.
  const int c = tid / kTPC;
  const int n0 = (tid % kTPC) * kS;
  const bool c_valid = c < n_chan;
  const int64_t d = d_begin + (c_valid ? c : 0);
  float a_log2[kS], h[kS], Bc[kS], Cc[kS];
#pragma unroll
  for (int i = 0; i < kS; ++i) {
    const int n = n0 + i;
    const bool ok = c_valid && n < dstate;
    a_log2[i] = ok ? p.A[d * p.A_dim_stride + n * p.A_dstate_stride] * kLog2e : 0.f;
    h[i] = ok && p.h0 ? p.h0[b * p.h0_batch_stride + d * p.h0_dim_stride + n] : 0.f;
    Bc[i] = ok && !p.B_variable ? static_cast<const float*>(p.B)[d * p.B_dim_stride + n * p.B_dstate_stride] : 0.f;
    Cc[i] = ok && !p.C_variable ? static_cast<const float*>(p.C)[d * p.C_dim_stride + n * p.C_dstate_stride] : 0.f;
  }

  for (int64_t t0 = 0; t0 < p.seqlen; t0 += kL) {
    const int valid_t = static_cast<int>(p.seqlen - t0 < kL ? p.seqlen - t0 : kL);

    // (1) dt and dt*u once per element; u stays in registers for the epilogue.
    float u_keep[Traits::kVecsPerThread][kV];
#pragma unroll
    for (int j = 0; j < Traits::kVecsPerThread; ++j) {
      const int v = tid + j * Traits::kThreads;
      if (Traits::kVecsPerTile % Traits::kThreads == 0 || v < Traits::kVecsPerTile) {
        const int cv = v / Traits::kVecsPerRow;
        const int tv = (v % Traits::kVecsPerRow) * kV;
        float dl[kV];
        if (cv < n_chan) {
          const int64_t dv = d_begin + cv;
          const int64_t off = t0 + tv;
          load_to_float<T, kV>(u + dv * p.u_dim_stride + off, u_keep[j], vec_x, valid_t - tv);
          load_to_float<T, kV>(delta + dv * p.delta_dim_stride + off, dl, vec_x, valid_t - tv);
          const float bias = p.delta_bias ? p.delta_bias[dv] : 0.f;
#pragma unroll
          for (int i = 0; i < kV; ++i) {
            float dt = dl[i] + bias;
            if (p.delta_softplus) dt = softplus(dt);
            if (tv + i >= valid_t) dt = 0.f;  // steps past the end leave the state unchanged
            smem.dt[cv][tv + i] = dt;
            smem.dtu[cv][tv + i] = dt * u_keep[j][i];
          }
        } else {
#pragma unroll
          for (int i = 0; i < kV; ++i) {
            u_keep[j][i] = 0.f;
            smem.dt[cv][tv + i] = 0.f;
            smem.dtu[cv][tv + i] = 0.f;
          }
        }
      }
    }
    if (Bvar) detail::load_bc_tile<Traits>(Bvar + t0, p.B_dstate_stride, dstate, valid_t, vec_B, smem.B);
    if (Cvar) detail::load_bc_tile<Traits>(Cvar + t0, p.C_dstate_stride, dstate, valid_t, vec_C, smem.C);
    __syncthreads();

    // (2) The recurrence over the tile, states in registers.
#pragma unroll 4
    for (int t = 0; t < kL; ++t) {
      float Bv[kS], Cv[kS];
#pragma unroll
      for (int i = 0; i < kS; i += 4) {
        if (Bvar) {
          const float4 q = *reinterpret_cast<const float4*>(&smem.B[t][n0 + i]);
          Bv[i] = q.x; Bv[i + 1] = q.y; Bv[i + 2] = q.z; Bv[i + 3] = q.w;
        } else {
          Bv[i] = Bc[i]; Bv[i + 1] = Bc[i + 1]; Bv[i + 2] = Bc[i + 2]; Bv[i + 3] = Bc[i + 3];
        }
        if (Cvar) {
          const float4 q = *reinterpret_cast<const float4*>(&smem.C[t][n0 + i]);
          Cv[i] = q.x; Cv[i + 1] = q.y; Cv[i + 2] = q.z; Cv[i + 3] = q.w;
        } else {
          Cv[i] = Cc[i]; Cv[i + 1] = Cc[i + 1]; Cv[i + 2] = Cc[i + 2]; Cv[i + 3] = Cc[i + 3];
        }
      }
      float y = scan_step<kS>(h, a_log2, smem.dt[c][t], smem.dtu[c][t], Bv, Cv);
      y = group_sum<kTPC>(y);
      if (n0 == 0) smem.y[c][t] = y;
    }
    __syncthreads();

    // (3) y + D*u, gate, store.
#pragma unroll
    for (int j = 0; j < Traits::kVecsPerThread; ++j) {
      const int v = tid + j * Traits::kThreads;
      if (Traits::kVecsPerTile % Traits::kThreads == 0 || v < Traits::kVecsPerTile) {
        const int cv = v / Traits::kVecsPerRow;
        const int tv = (v % Traits::kVecsPerRow) * kV;
        if (cv < n_chan && tv < valid_t) {
          const int64_t dv = d_begin + cv;
          const int64_t off = t0 + tv;
          const float Dd = p.D ? p.D[dv] : 0.f;
          float o[kV];
#pragma unroll
          for (int i = 0; i < kV; ++i) o[i] = fmaf(Dd, u_keep[j][i], smem.y[cv][tv + i]);
          if (z) {
            float zv[kV];
            load_to_float<T, kV>(z + dv * p.z_dim_stride + off, zv, vec_x, valid_t - tv);
#pragma unroll
            for (int i = 0; i < kV; ++i) o[i] *= silu(zv[i]);
          }
          store_from_float<T, kV>(out + dv * p.out_dim_stride + off, o, vec_x, valid_t - tv);
        }
      }
    }
    // No barrier needed here: the next tile's writes to dt, dtu, B and C follow the barrier
    // after the recurrence that last read them, and its writes to y follow the next barrier.
  }

  if (p.last_state && c_valid) {
    float* ls = p.last_state + b * p.last_state_batch_stride + d * p.last_state_dim_stride;
#pragma unroll
    for (int i = 0; i < kS; ++i)
      if (n0 + i < dstate) ls[n0 + i] = h[i];
  }
}

SSMKIT_NAMESPACE_END
