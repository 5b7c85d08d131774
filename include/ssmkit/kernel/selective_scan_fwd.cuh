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
//! states are spread over @c kThreadsPerChannel adjacent lanes, @c kStatesPerThread each.
//! Per tile the block
//!   1. converts the tile's u, delta and variable B/C (loaded into registers during the
//!      previous tile, so the loads overlap the recurrence) into dt and dt*u in shared memory,
//!      once per element;
//!   2. runs the recurrence: per state and step one exp2 and four FP32 operations; each thread
//!      writes its partial sum of C*h for four steps at a time to shared memory;
//!   3. sums the partials, adds D*u, applies the z gate and stores out with 16-byte stores.
//! @tparam T                 element type of u, delta, z, out and variable B/C
//! @tparam kNState_          largest state size handled (the run-time dstate may be smaller)
//! @tparam kStatesPerThread_ states held by one thread (multiple of 4)
//! @tparam kTileLen_         time steps per tile (multiple of 4 and of the vector width)
//! @tparam kThreads_         threads per block
template <typename T, int kNState_, int kStatesPerThread_, int kTileLen_, int kThreads_>
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
  //! Vectors of variable B (and of C) each thread loads per tile.
  static constexpr int kBCVecsPerThread = (kNState * kVecsPerRow + kThreads - 1) / kThreads;
  //! Blocks per SM the register budget is sized for (__launch_bounds__).
  static constexpr int kMinBlocksPerSM = ((kNState_ <= 32 ? 512 : 384) + kThreads_ - 1) / kThreads_;
  static constexpr int kRow = kTileLen + 4;   //!< Padded per-channel row (floats).
  static constexpr int kBCRow = kNState + 4;  //!< Padded B/C row (floats).

  static_assert(kNState % kStatesPerThread == 0, "kStatesPerThread must divide kNState");
  static_assert(kThreadsPerChannel >= 1 && kThreadsPerChannel <= 32 &&
                    (kThreadsPerChannel & (kThreadsPerChannel - 1)) == 0,
                "a channel's lanes must be a power of two within one warp");
  static_assert(kThreads % 32 == 0 && kThreads % kThreadsPerChannel == 0, "bad block size");
  static_assert(kStatesPerThread % 4 == 0, "states per thread must be a multiple of 4");
  static_assert(kTileLen % kVec == 0 && kTileLen % 4 == 0, "tile must hold whole vectors");

  //! Shared memory of one block.
  struct TempStorage {
    float dt[kChannels][kRow];                        //!< dt per channel and step.
    float dtu[kChannels][kRow];                       //!< dt * u per channel and step.
    float y[kChannels][kThreadsPerChannel][kRow];     //!< Partial sums of C*h per lane.
    float B[kTileLen][kBCRow];                        //!< Variable B of the tile, step-major.
    float C[kTileLen][kBCRow];                        //!< Variable C of the tile, step-major.
  };

  //! Number of blocks for @p p when the sequence is cut into @p splits ranges.
  static int64_t grid_size(const SelectiveScanParams& p, int64_t splits = 1) {
    const int64_t per_group = p.dim / p.n_groups;
    return p.batch * p.n_groups * ((per_group + kChannels - 1) / kChannels) * splits;
  }
};

namespace detail {

// Loads one 16-byte vector of kV elements starting at src, of which `valid` are inside the
// sequence (the rest read as zero). 16-byte access when `vec` and the vector is whole.
template <typename T>
SSMKIT_DEVICE uint4 load_raw(const T* __restrict__ src, int valid, bool vec) {
  constexpr int kV = kVecElems<T>;
  uint4 raw = make_uint4(0, 0, 0, 0);
  if (vec && valid >= kV) {
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
template <class Traits, bool kStatePass = false>
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
  const bool vec_B = Bvar && is_aligned(Bvar, 16) && p.B_dstate_stride % kV == 0;
  const bool vec_C = Cvar && is_aligned(Cvar, 16) && p.C_dstate_stride % kV == 0;

  // Recurrence role of this thread: channel c, states n0 .. n0 + kS - 1.
  const int c = tid / kTPC;
  const int lane_in_channel = tid % kTPC;
  const int n0 = lane_in_channel * kS;
  const bool c_valid = c < n_chan;
  const int64_t d = d_begin + (c_valid ? c : 0);
  float a_log2[kS], h[kS], Bc[kS], Cc[kS];
#pragma unroll
  for (int i = 0; i < kS; ++i) {
    const int n = n0 + i;
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
        const float loc = c_valid && n0 + i < dstate ? split.ws_state[row * p.dstate + n0 + i] : 0.f;
        h[i] = fmaf(fast_exp2(dts * a_log2[i]), h[i], loc);
      }
    }
  }
  float dtsum = 0.f;

  // Element role of this thread (loads, dt, epilogue): vectors v = tid + j * kThreads.
  float bias_v[kVPT], D_v[kVPT];
#pragma unroll
  for (int j = 0; j < kVPT; ++j) {
    const int cv = (tid + j * Traits::kThreads) / Traits::kVecsPerRow;
    const bool ok = cv < n_chan;
    bias_v[j] = ok && p.delta_bias ? p.delta_bias[d_begin + cv] : 0.f;
    D_v[j] = ok && p.D ? p.D[d_begin + cv] : 0.f;
  }
  auto vec_of = [&](int j, int& cv, int& tv) {
    const int v = tid + j * Traits::kThreads;
    cv = v / Traits::kVecsPerRow;
    tv = (v % Traits::kVecsPerRow) * kV;
    return (Traits::kVecsPerTile % Traits::kThreads == 0 || v < Traits::kVecsPerTile) && cv < n_chan;
  };

  // Raw registers of the next tile, loaded while the current one is computed.
  uint4 raw_u[kVPT], raw_dl[kVPT], raw_B[kBCV], raw_C[kBCV];
  auto valid_of = [&](int64_t t0) { return static_cast<int>(t_end - t0 < kL ? t_end - t0 : kL); };
  auto load_tile = [&](int64_t t0) {
    const int valid_t = valid_of(t0);
#pragma unroll
    for (int j = 0; j < kVPT; ++j) {
      int cv, tv;
      if (vec_of(j, cv, tv)) {
        const int64_t dv = d_begin + cv;
        raw_u[j] = detail::load_raw(u + dv * p.u_dim_stride + t0 + tv, valid_t - tv, vec_x);
        raw_dl[j] = detail::load_raw(delta + dv * p.delta_dim_stride + t0 + tv, valid_t - tv, vec_x);
      }
    }
#pragma unroll
    for (int j = 0; j < kBCV; ++j) {
      const int v = tid + j * Traits::kThreads;
      const int n = v / Traits::kVecsPerRow;
      const int tv = (v % Traits::kVecsPerRow) * kV;
      if (n < dstate) {
        if (Bvar) raw_B[j] = detail::load_raw(Bvar + n * p.B_dstate_stride + t0 + tv, valid_t - tv, vec_B);
        if (Cvar) raw_C[j] = detail::load_raw(Cvar + n * p.C_dstate_stride + t0 + tv, valid_t - tv, vec_C);
      }
    }
  };

  // Converts the raw tile to dt, dt*u, B, C in shared memory; keeps u for the epilogue.
  float u_keep[kVPT][kV];
  auto commit_tile = [&](int64_t t0) {
    const int valid_t = valid_of(t0);
#pragma unroll
    for (int j = 0; j < kVPT; ++j) {
      int cv, tv;
      const bool ok = vec_of(j, cv, tv);
      if (Traits::kVecsPerTile % Traits::kThreads == 0 || tid + j * Traits::kThreads < Traits::kVecsPerTile) {
        float dts[kV], dtus[kV];
#pragma unroll
        for (int i = 0; i < kV; ++i) {
          float dt = 0.f, uu = 0.f;
          if (ok && tv + i < valid_t) {  // steps past the end get dt = 0: the state is unchanged
            uu = detail::raw_at<T>(raw_u[j], i);
            dt = detail::raw_at<T>(raw_dl[j], i) + bias_v[j];
            if (p.delta_softplus) dt = softplus_fast(dt);
          }
          u_keep[j][i] = uu;
          dts[i] = dt;
          dtus[i] = dt * uu;
        }
        // 16-byte stores: rows are 16-byte aligned and tv is a multiple of the vector width.
#pragma unroll
        for (int i = 0; i < kV; i += 4) {
          *reinterpret_cast<float4*>(&smem.dt[cv][tv + i]) = make_float4(dts[i], dts[i + 1], dts[i + 2], dts[i + 3]);
          *reinterpret_cast<float4*>(&smem.dtu[cv][tv + i]) = make_float4(dtus[i], dtus[i + 1], dtus[i + 2], dtus[i + 3]);
        }
      }
    }
#pragma unroll
    for (int j = 0; j < kBCV; ++j) {
      const int v = tid + j * Traits::kThreads;
      const int n = v / Traits::kVecsPerRow;
      const int tv = (v % Traits::kVecsPerRow) * kV;
      if (n < Traits::kNState) {
        const bool ok = n < dstate;
#pragma unroll
        for (int i = 0; i < kV; ++i) {
          if (Bvar) smem.B[tv + i][n] = ok ? detail::raw_at<T>(raw_B[j], i) : 0.f;
          if (Cvar) smem.C[tv + i][n] = ok ? detail::raw_at<T>(raw_C[j], i) : 0.f;
        }
      }
    }
  };

  load_tile(t_begin);
  commit_tile(t_begin);
  for (int64_t t0 = t_begin; t0 < t_end; t0 += kL) {
    const int valid_t = valid_of(t0);
    const bool has_next = t0 + kL < t_end;
    __syncthreads();  // the tile's dt, dt*u, B, C are in shared memory
    if (has_next) load_tile(t0 + kL);
    uint4 raw_z[kVPT];
    if (z) {
#pragma unroll
      for (int j = 0; j < kVPT; ++j) {
        int cv, tv;
        if (vec_of(j, cv, tv) && tv < valid_t)
          raw_z[j] = detail::load_raw(z + (d_begin + cv) * p.z_dim_stride + t0 + tv, valid_t - tv, vec_x);
      }
    }

    // The recurrence, four steps at a time. Variable B and C (the common case) read shared
    // memory only; otherwise the constant values in registers stand in.
    auto recurrence = [&](auto var_bc) {
      constexpr bool kVarBC = decltype(var_bc)::value;
#pragma unroll 2
      for (int t = 0; t < kL; t += 4) {
        const float4 dt4 = *reinterpret_cast<const float4*>(&smem.dt[c][t]);
        const float4 dtu4 = *reinterpret_cast<const float4*>(&smem.dtu[c][t]);
        const float dts[4] = {dt4.x, dt4.y, dt4.z, dt4.w};
        const float dtus[4] = {dtu4.x, dtu4.y, dtu4.z, dtu4.w};
        float ys[4];
#pragma unroll
        for (int s4 = 0; s4 < 4; ++s4) {
          float Bv[kS], Cv[kS];
#pragma unroll
          for (int i = 0; i < kS; i += 4) {
            if (kVarBC || Bvar) {
              const float4 q = *reinterpret_cast<const float4*>(&smem.B[t + s4][n0 + i]);
              Bv[i] = q.x; Bv[i + 1] = q.y; Bv[i + 2] = q.z; Bv[i + 3] = q.w;
            } else {
              Bv[i] = Bc[i]; Bv[i + 1] = Bc[i + 1]; Bv[i + 2] = Bc[i + 2]; Bv[i + 3] = Bc[i + 3];
            }
            if (kStatePass) {
              Cv[i] = Cv[i + 1] = Cv[i + 2] = Cv[i + 3] = 0.f;
            } else if (kVarBC || Cvar) {
              const float4 q = *reinterpret_cast<const float4*>(&smem.C[t + s4][n0 + i]);
              Cv[i] = q.x; Cv[i + 1] = q.y; Cv[i + 2] = q.z; Cv[i + 3] = q.w;
            } else {
              Cv[i] = Cc[i]; Cv[i + 1] = Cc[i + 1]; Cv[i + 2] = Cc[i + 2]; Cv[i + 3] = Cc[i + 3];
            }
          }
          ys[s4] = scan_step<kS>(h, a_log2, dts[s4], dtus[s4], Bv, Cv);
          if (kStatePass) dtsum += dts[s4];
        }
        if (!kStatePass)
          *reinterpret_cast<float4*>(&smem.y[c][lane_in_channel][t]) = make_float4(ys[0], ys[1], ys[2], ys[3]);
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
        commit_tile(t0 + kL);
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
        float acc = smem.y[qc][0][qt];
#pragma unroll
        for (int l = 1; l < kTPC; ++l) acc += smem.y[qc][l][qt];
        smem.y[qc][0][qt] = acc;
      }
      __syncthreads();
    }

    // Epilogue: sum the partials, add D*u, gate, store.
#pragma unroll
    for (int j = 0; j < kVPT; ++j) {
      int cv, tv;
      if (vec_of(j, cv, tv) && tv < valid_t) {
        float o[kV];
#pragma unroll
        for (int i = 0; i < kV; i += 4) {
          float4 acc = *reinterpret_cast<const float4*>(&smem.y[cv][0][tv + i]);
#pragma unroll
          for (int l = 1; l < kPartials; ++l) {
            const float4 q = *reinterpret_cast<const float4*>(&smem.y[cv][l][tv + i]);
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
        store_from_float<T, kV>(out + (d_begin + cv) * p.out_dim_stride + t0 + tv, o, vec_x, valid_t - tv);
      }
    }
    // The next tile's shared memory: dt, dt*u, B and C were last read before the barrier above;
    // y is next written after the barrier at the top of the loop.
    if (has_next) commit_tile(t0 + kL);
  }

  if (kStatePass) {
    if (c_valid) {
      const int64_t row = (sidx * p.batch + b) * p.dim + d;
#pragma unroll
      for (int i = 0; i < kS; ++i)
        if (n0 + i < dstate) split.ws_state[row * p.dstate + n0 + i] = h[i];
      if (lane_in_channel == 0) split.ws_dtsum[row] = dtsum;
    }
  } else if (p.last_state && c_valid && t_end == p.seqlen) {
    float* ls = p.last_state + b * p.last_state_batch_stride + d * p.last_state_dim_stride;
#pragma unroll
    for (int i = 0; i < kS; ++i)
      if (n0 + i < dstate) ls[n0 + i] = h[i];
  }
}

SSMKIT_NAMESPACE_END
