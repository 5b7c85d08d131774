/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file kernel/selective_state_update.cuh
//! @brief The decode-step (selective state update) kernel template and its traits.
#pragma once

#include <cstdint>

#include "../config.cuh"
#include "../launch.cuh"
#include "../math.cuh"
#include "../selective_state_update_params.cuh"
#include "../types.cuh"

SSMKIT_NAMESPACE_BEGIN

//! Compile-time configuration of the selective-state-update kernel.
//!
//! One (batch row, head, channel) is a "row" of @c kNState states. A row is spread over
//! @c kLanes adjacent lanes of a warp; each lane holds @c kStatesPerThread states as chunks of
//! 8 consecutive states, interleaved over the lanes (lane l holds chunks l, l + kLanes, ...),
//! so that one load instruction of a warp reads whole 32-byte sectors. A thread owns
//! @c kRowsPerThread rows, @c kRowGroups rows apart, and issues the loads of all of them before
//! it uses any: more bytes in flight per thread without more threads. The lanes of a row sum
//! their parts of C*state with shuffles. The state stays in registers across the tokens of a
//! call. No shared memory: the op is bound by reading and writing the state once.
//! @tparam T                 element type of x, dt, z, B, C and out
//! @tparam TState            element type of the state
//! @tparam kNState_          largest state size handled (the run-time dstate may be smaller)
//! @tparam kStatesPerThread_ states held by one thread per row (a multiple of 8; clamped to
//!                           kNState_)
//! @tparam kRowsPerThread_   rows owned by one thread
//! @tparam kThreads_         threads per block
//! @tparam kMinBlocksPerSM_  blocks per SM the register budget is sized for (__launch_bounds__)
//! @tparam kScalarA_         A is broadcast over dstate (A_dstate_stride == 0, Mamba-2): one
//!                           exp2 per row and token, and no A vector in registers
//! @tparam kVec_             every chunk is whole and every row of state, intermediate
//!                           states, B, C (and A unless kScalarA_) is contiguous and 16-byte
//!                           aligned (see ssu_vectorizable()): only 16-byte accesses, no
//!                           element-wise fallback in the code
//!
//! The grid is (row blocks of one batch row, batch): a block's rows all belong to one batch
//! row, so the state slot is read once per block, and block coordinates give the batch row
//! without 64-bit division.
template <typename T, typename TState, int kNState_, int kStatesPerThread_ = 8, int kRowsPerThread_ = 1,
          int kThreads_ = 64, int kMinBlocksPerSM_ = 1, bool kScalarA_ = false, bool kVec_ = false>
struct SelectiveStateUpdateTraits {
  using Element = T;                                          //!< Activation type.
  using State = TState;                                       //!< State type.
  static constexpr int kNState = kNState_;                    //!< State capacity.
  static constexpr int kStatesPerThread = kStatesPerThread_ < kNState_ ? kStatesPerThread_ : kNState_;  //!< States per thread and row.
  static constexpr int kChunk = 8;                            //!< Consecutive states per chunk.
  static constexpr int kChunks = kStatesPerThread / kChunk;   //!< Chunks per thread and row.
  static constexpr int kLanes = kNState / kStatesPerThread;   //!< Lanes per row.
  static constexpr int kRowsPerThread = kRowsPerThread_;      //!< Rows per thread.
  static constexpr int kThreads = kThreads_;                  //!< Threads per block.
  static constexpr int kRowGroups = kThreads / kLanes;        //!< Rows a block covers at once.
  static constexpr int kRowsPerBlock = kRowGroups * kRowsPerThread;  //!< Rows per block.
  static constexpr int kMinBlocksPerSM = kMinBlocksPerSM_;    //!< For __launch_bounds__.
  static constexpr bool kScalarA = kScalarA_;                 //!< One decay per row.
  static constexpr bool kVec = kVec_;                         //!< 16-byte accesses only.

  static_assert(kNState % kChunk == 0, "kNState must be a multiple of 8");
  static_assert(kStatesPerThread % kChunk == 0, "states per thread must be a multiple of 8");
  static_assert(kNState % kStatesPerThread == 0, "kStatesPerThread must divide kNState");
  static_assert(kLanes >= 1 && kLanes <= 32 && (kLanes & (kLanes - 1)) == 0,
                "a row's lanes must be a power of two within one warp");
  static_assert(kRowsPerThread >= 1, "at least one row per thread");
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "bad block size");
  static_assert(kMinBlocksPerSM >= 1, "kMinBlocksPerSM must be >= 1");

  //! Number of blocks along x (the rows of one batch row) for @p p; y is the batch.
  static int64_t grid_x(const SelectiveStateUpdateParams& p) {
    return (p.nheads * p.headdim + kRowsPerBlock - 1) / kRowsPerBlock;
  }
};

namespace detail {

// Load paths: the state is read once per call and written by the same thread (evict-first
// streaming loads and stores, ld/st.global.cs); every other input is read-only (__ldg).
enum class SsuPath { kReadOnly, kStreaming };

template <SsuPath kPath>
SSMKIT_DEVICE uint4 ssu_ld16(const void* p) {
  if constexpr (kPath == SsuPath::kStreaming) return __ldcs(static_cast<const uint4*>(p));
  else return __ldg(static_cast<const uint4*>(p));
}

// One element, kept in its storage type (converted where it is used, so that no instruction
// waits for the load before the remaining loads are issued).
template <SsuPath kPath, typename T>
SSMKIT_DEVICE T ssu_ld1(const T* p) {
  if constexpr (sizeof(T) == 4) {
    const float v = kPath == SsuPath::kStreaming ? __ldcs(reinterpret_cast<const float*>(p))
                                                 : __ldg(reinterpret_cast<const float*>(p));
    return *reinterpret_cast<const T*>(&v);
  } else {
    const unsigned short v = kPath == SsuPath::kStreaming ? __ldcs(reinterpret_cast<const unsigned short*>(p))
                                                          : __ldg(reinterpret_cast<const unsigned short*>(p));
    return *reinterpret_cast<const T*>(&v);
  }
}

// Register image of kN elements of T (kN a multiple of 8), filled by 16-byte loads or element
// by element, and read as floats where it is used.
template <typename T, int kN>
struct SsuRaw {
  static constexpr int kVecs = kN * int(sizeof(T)) / 16;  //!< 16-byte vectors.
  uint4 v[kVecs];
  SSMKIT_DEVICE float operator[](int i) const { return to_float(reinterpret_cast<const T*>(v)[i]); }
};

// Chunk k (8 elements) of `dst` from src (element stride `stride`): as 16-byte vectors when
// `vec` (contiguous, 16-byte aligned, all 8 valid), else element by element, the first
// `valid` read and the rest set to 0.
template <SsuPath kPath, typename T, int kN>
SSMKIT_DEVICE void ssu_load8(const T* src, int64_t stride, bool vec, int valid, SsuRaw<T, kN>& dst, int k) {
  constexpr int kV = kVecElems<T>;
  if (vec) {
#pragma unroll
    for (int v = 0; v < 8 / kV; ++v) dst.v[k * 8 / kV + v] = ssu_ld16<kPath>(src + v * kV);
  } else {
    T* e = reinterpret_cast<T*>(dst.v) + k * 8;
#pragma unroll
    for (int i = 0; i < 8; ++i) e[i] = i < valid ? ssu_ld1<kPath>(src + i * stride) : from_float<T>(0.f);
  }
}

// The sector-aligned mapping of the all-vector kernels for a 4-byte state (kSplit): chunk k
// of a lane is two quads of 4 consecutive states, quad q at
// k * kLanes * 8 + q * kLanes * 4 + lane * 4. One load or store instruction of a row's lanes
// then covers whole 32-byte sectors of the state (and of A), where 32-byte chunks per lane
// left every sector half used by each instruction (Nsight Compute: 46 % excess sectors).
template <int kLanes>
SSMKIT_DEVICE int ssu_quad(int k, int q, int lane) {
  return k * kLanes * 8 + q * kLanes * 4 + lane * 4;
}

// Quad (k, q) of dst (4 elements) from src: 16 bytes for 4-byte types, 8 for 2-byte types.
template <SsuPath kPath, typename T, int kN>
SSMKIT_DEVICE void ssu_load_quad(const T* src, SsuRaw<T, kN>& dst, int k, int q) {
  if constexpr (sizeof(T) == 4) {
    dst.v[k * 2 + q] = ssu_ld16<kPath>(src);
  } else {
    const uint2* p2 = reinterpret_cast<const uint2*>(src);
    reinterpret_cast<uint2*>(dst.v)[k * 2 + q] = kPath == SsuPath::kStreaming ? __ldcs(p2) : __ldg(p2);
  }
}

// Four fp32 states to dst (16-byte aligned) with a streaming store.
SSMKIT_DEVICE void ssu_store_quad(float* dst, const float* src) {
  __stcs(reinterpret_cast<float4*>(dst), make_float4(src[0], src[1], src[2], src[3]));
}

// One chunk of 8 states to dst (contiguous) with streaming stores; as 16-byte vectors when
// `vec`, else the first `valid` elements one by one.
template <typename T>
SSMKIT_DEVICE void ssu_store8(T* dst, bool vec, int valid, const float* src) {
  constexpr int kV = kVecElems<T>;
  if (vec) {
#pragma unroll
    for (int v = 0; v < 8 / kV; ++v) {
      uint4 raw;
      T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
      for (int i = 0; i < kV; ++i) e[i] = from_float<T>(src[v * kV + i]);
      __stcs(reinterpret_cast<uint4*>(dst + v * kV), raw);
    }
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      if (i < valid) {
        if constexpr (sizeof(T) == 4) {
          __stcs(reinterpret_cast<float*>(dst + i), src[i]);
        } else {
          const T e = from_float<T>(src[i]);
          __stcs(reinterpret_cast<unsigned short*>(dst + i), *reinterpret_cast<const unsigned short*>(&e));
        }
      }
    }
  }
}

// n / d and n % d for a block-uniform divisor d >= 1 (a shift when d is a power of two).
SSMKIT_DEVICE void ssu_divmod(unsigned n, unsigned d, unsigned& q, unsigned& r) {
  if ((d & (d - 1)) == 0) {
    const int s = __ffs(static_cast<int>(d)) - 1;
    q = n >> s;
    r = n & (d - 1);
  } else {
    q = n / d;
    r = n - q * d;
  }
}

// The per-token inputs of one thread as loaded: x, dt and z of each row, B and C of one group.
template <typename T, int kRows, int kS>
struct SsuTokenInputs {
  T x[kRows], dt[kRows], z[kRows];
  SsuRaw<T, kS> B, C;
};

}  // namespace detail

//! The selective-state-update kernel: one launch applies p.ntokens tokens to every row.
//!
//! Every load of a token is issued before any instruction waits for one (values stay in
//! their storage type until used), and the state loads go first: a call costs one memory
//! round trip (two with state_batch_indices, whose slot the state address waits for). Safe to
//! launch with programmatic dependent launch (LaunchOptions::pdl): it touches no memory before
//! the preceding grid is done.
//! @tparam Traits a SelectiveStateUpdateTraits
template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kMinBlocksPerSM)
    selective_state_update_kernel(const SelectiveStateUpdateParams p) {
  using T = typename Traits::Element;
  using TS = typename Traits::State;
  using detail::SsuPath;
  constexpr int kS = Traits::kStatesPerThread;
  constexpr int kChunks = Traits::kChunks;
  constexpr int kLanes = Traits::kLanes;
  constexpr int kRows = Traits::kRowsPerThread;
  constexpr int kRowGroups = Traits::kRowGroups;
  constexpr bool kVec = Traits::kVec;
  // Sector-aligned quads (detail::ssu_quad) where a row spans several lanes of a 4-byte state.
  constexpr bool kSplit = kVec && sizeof(TS) == 4 && kLanes >= 2;

  detail::grid_dependency_sync();
  const int64_t b = blockIdx.y + int64_t(blockIdx.z) * gridDim.y;
  if (b >= p.batch) return;  // whole block
  const int64_t src = p.state_batch_indices ? int64_t(__ldg(p.state_batch_indices + b)) : b;
  const int64_t dst = p.dst_state_batch_indices ? int64_t(__ldg(p.dst_state_batch_indices + b)) : src;

  // Rows (head, channel) of this thread; the sizes are below 2^31 (can_implement). A row past
  // the end (last block) reads the last row and writes nothing.
  const int lane = static_cast<int>(threadIdx.x % kLanes);
  const unsigned headdim = static_cast<unsigned>(p.headdim);
  const unsigned nrows = static_cast<unsigned>(p.nheads) * headdim;
  const unsigned row0 = blockIdx.x * unsigned(Traits::kRowsPerBlock) + threadIdx.x / unsigned(kLanes);
  bool live[kRows];
  unsigned hh[kRows], cc[kRows], gg[kRows];
#pragma unroll
  for (int j = 0; j < kRows; ++j) {
    const unsigned hp = row0 + unsigned(j * kRowGroups);
    live[j] = hp < nrows;
    detail::ssu_divmod(live[j] ? hp : nrows - 1, headdim, hh[j], cc[j]);
    unsigned r;
    if (p.ngroups == 1) gg[j] = 0;
    else detail::ssu_divmod(hh[j], static_cast<unsigned>(p.nheads / p.ngroups), gg[j], r);
  }

  // This lane's chunks: chunk k holds states n0[k] .. n0[k] + 7, of which the first cvalid[k]
  // are below dstate (all 8 when kVec).
  const int dstate = static_cast<int>(p.dstate);
  const bool full = kVec || dstate == Traits::kNState;
  int n0[kChunks], cvalid[kChunks];
  // Whole chunks, tested on dstate itself: ptxas for sm_90 (CUDA 13.0) folded a test of the
  // clamped count above (cvalid == 8) into the predicate of a min instruction that was true
  // for dstate = 1, and 16-byte loads then read past a row of A (compute-sanitizer memcheck).
  bool cfull[kChunks];
#pragma unroll
  for (int k = 0; k < kChunks; ++k) {
    n0[k] = (k * kLanes + lane) * Traits::kChunk;
    const int v = dstate - n0[k];
    cvalid[k] = kVec ? Traits::kChunk : (v < 0 ? 0 : (v < Traits::kChunk ? v : Traits::kChunk));
    cfull[k] = kVec || v >= Traits::kChunk;
  }

  // 1. The state, unless the row is padding (src < 0).
  TS* const state = static_cast<TS*>(p.state);
  int64_t row_off[kRows];
  detail::SsuRaw<TS, kS> sraw[kRows];
#pragma unroll
  for (int j = 0; j < kRows; ++j) row_off[j] = hh[j] * p.state_head_stride + cc[j] * p.state_dim_stride;
  if (src >= 0) {
#pragma unroll
    for (int j = 0; j < kRows; ++j) {
      const TS* sp = state + src * p.state_batch_stride + row_off[j];
      const bool vec = kVec || (full && is_aligned(sp, 16));
#pragma unroll
      for (int k = 0; k < kChunks; ++k) {
        if constexpr (kSplit) {
          detail::ssu_load_quad<SsuPath::kStreaming>(sp + detail::ssu_quad<kLanes>(k, 0, lane), sraw[j], k, 0);
          detail::ssu_load_quad<SsuPath::kStreaming>(sp + detail::ssu_quad<kLanes>(k, 1, lane), sraw[j], k, 1);
        } else {
          detail::ssu_load8<SsuPath::kStreaming>(sp + n0[k], 1, vec, cvalid[k], sraw[j], k);
        }
      }
    }
  }

  // 2. Token 0's inputs and the per-row constants.
  const T* const xb = static_cast<const T*>(p.x) + b * p.x_batch_stride;
  const T* const dtb = static_cast<const T*>(p.dt) + b * p.dt_batch_stride;
  const T* const zb = p.z ? static_cast<const T*>(p.z) + b * p.z_batch_stride : nullptr;
  const T* const Bb = static_cast<const T*>(p.B) + b * p.B_batch_stride;
  const T* const Cb = static_cast<const T*>(p.C) + b * p.C_batch_stride;
  detail::SsuTokenInputs<T, kRows, kS> in;
  auto load_bc = [&](int64_t t, unsigned g) {
    const T* Bp = Bb + t * p.B_token_stride + g * p.B_group_stride;
    const T* Cp = Cb + t * p.C_token_stride + g * p.C_group_stride;
#pragma unroll
    for (int k = 0; k < kChunks; ++k) {
      if constexpr (kSplit) {  // B_dstate_stride == C_dstate_stride == 1 (kVec)
#pragma unroll
        for (int q = 0; q < 2; ++q) {
          detail::ssu_load_quad<SsuPath::kReadOnly>(Bp + detail::ssu_quad<kLanes>(k, q, lane), in.B, k, q);
          detail::ssu_load_quad<SsuPath::kReadOnly>(Cp + detail::ssu_quad<kLanes>(k, q, lane), in.C, k, q);
        }
        continue;
      }
      const T* bk = Bp + int64_t(n0[k]) * p.B_dstate_stride;
      const T* ck = Cp + int64_t(n0[k]) * p.C_dstate_stride;
      const bool bvec = kVec || (p.B_dstate_stride == 1 && cfull[k] && is_aligned(bk, 16));
      const bool cvec = kVec || (p.C_dstate_stride == 1 && cfull[k] && is_aligned(ck, 16));
      detail::ssu_load8<SsuPath::kReadOnly>(bk, p.B_dstate_stride, bvec, cvalid[k], in.B, k);
      detail::ssu_load8<SsuPath::kReadOnly>(ck, p.C_dstate_stride, cvec, cvalid[k], in.C, k);
    }
  };
  auto load_token = [&](int64_t t) {
#pragma unroll
    for (int j = 0; j < kRows; ++j) {
      in.x[j] = __ldg(xb + t * p.x_token_stride + hh[j] * p.x_head_stride + cc[j] * p.x_dim_stride);
      in.dt[j] = __ldg(dtb + t * p.dt_token_stride + hh[j] * p.dt_head_stride + cc[j] * p.dt_dim_stride);
      in.z[j] = zb ? __ldg(zb + t * p.z_token_stride + hh[j] * p.z_head_stride + cc[j] * p.z_dim_stride)
                   : from_float<T>(0.f);
    }
    load_bc(t, gg[0]);
  };
  load_token(0);
  // A as loaded: exp(A * dt) is computed as exp2(A * (dt * log2(e))).
  float a[kRows][Traits::kScalarA ? 1 : kS];
  float Dv[kRows], bias[kRows];
#pragma unroll
  for (int j = 0; j < kRows; ++j) {
    const float* Ap = p.A + hh[j] * p.A_head_stride + cc[j] * p.A_dim_stride;
    if constexpr (Traits::kScalarA) {
      a[j][0] = __ldg(Ap);
    } else {
      detail::SsuRaw<float, kS> araw;
#pragma unroll
      for (int k = 0; k < kChunks; ++k) {
        if constexpr (kSplit) {  // A_dstate_stride == 1 (kVec, A not broadcast)
          detail::ssu_load_quad<SsuPath::kReadOnly>(Ap + detail::ssu_quad<kLanes>(k, 0, lane), araw, k, 0);
          detail::ssu_load_quad<SsuPath::kReadOnly>(Ap + detail::ssu_quad<kLanes>(k, 1, lane), araw, k, 1);
          continue;
        }
        const float* ak = Ap + int64_t(n0[k]) * p.A_dstate_stride;
        const bool vec = kVec || (p.A_dstate_stride == 1 && cfull[k] && is_aligned(ak, 16));
        detail::ssu_load8<SsuPath::kReadOnly>(ak, p.A_dstate_stride, vec, cvalid[k], araw, k);
      }
#pragma unroll
      for (int i = 0; i < kS; ++i) a[j][i] = araw[i];
    }
    Dv[j] = p.D ? __ldg(p.D + hh[j] * p.D_head_stride + cc[j] * p.D_dim_stride) : 0.f;
    bias[j] = p.dt_bias ? __ldg(p.dt_bias + hh[j] * p.dt_bias_head_stride + cc[j] * p.dt_bias_dim_stride) : 0.f;
  }

  T* const outb = static_cast<T*>(p.out) + b * p.out_batch_stride;
  auto out_ptr = [&](int j, int64_t t) {
    return outb + t * p.out_token_stride + hh[j] * p.out_head_stride + cc[j] * p.out_dim_stride;
  };
  if (src < 0) {  // padding row (the whole block): outputs 0, no slot touched
#pragma unroll
    for (int j = 0; j < kRows; ++j)
      if (live[j] && lane == j % kLanes)
        for (int64_t t = 0; t < p.ntokens; ++t) *out_ptr(j, t) = from_float<T>(0.f);
    return;
  }

  // 3. The recurrence, in fp32 registers across the tokens.
  float s[kRows][kS];
#pragma unroll
  for (int j = 0; j < kRows; ++j)
#pragma unroll
    for (int i = 0; i < kS; ++i) s[j][i] = sraw[j][i];
  const unsigned mask = kLanes == 32 ? 0xffffffffu
                                     : (((1u << kLanes) - 1u) << ((threadIdx.x % 32) / kLanes * kLanes));
  TS* const interb = p.intermediate_states ? static_cast<TS*>(p.intermediate_states) + b * p.inter_batch_stride
                                           : nullptr;
  // Stores the rows' states to base + row offset (live rows only).
  auto store_rows = [&](TS* base, const int64_t (&off)[kRows]) {
#pragma unroll
    for (int j = 0; j < kRows; ++j) {
      if (!live[j]) continue;
      TS* sp = base + off[j];
      const bool vec = kVec || (full && is_aligned(sp, 16));
#pragma unroll
      for (int k = 0; k < kChunks; ++k) {
        if constexpr (kSplit) {
          detail::ssu_store_quad(reinterpret_cast<float*>(sp) + detail::ssu_quad<kLanes>(k, 0, lane), &s[j][k * 8]);
          detail::ssu_store_quad(reinterpret_cast<float*>(sp) + detail::ssu_quad<kLanes>(k, 1, lane), &s[j][k * 8 + 4]);
        } else {
          detail::ssu_store8<TS>(sp + n0[k], vec, cvalid[k], &s[j][k * 8]);
        }
      }
    }
  };
#pragma unroll 1
  for (int64_t t = 0; t < p.ntokens; ++t) {
    if (t > 0) load_token(t);
    float Bf[kS], Cf[kS];
#pragma unroll
    for (int i = 0; i < kS; ++i) {
      Bf[i] = in.B[i];
      Cf[i] = in.C[i];
    }
    float y[kRows];
#pragma unroll
    for (int j = 0; j < kRows; ++j) {
      if (j > 0 && gg[j] != gg[j - 1]) {  // rows of another group (rare)
        load_bc(t, gg[j]);
#pragma unroll
        for (int i = 0; i < kS; ++i) {
          Bf[i] = in.B[i];
          Cf[i] = in.C[i];
        }
      }
      float dt = to_float(in.dt[j]) + bias[j];
      if (p.dt_softplus) dt = softplus_fast(dt);
      const float dtl = dt * kLog2e;
      const float dtx = dt * to_float(in.x[j]);
      // Two partial sums halve the dependent chain of C*state.
      float y0 = 0.f, y1 = 0.f;
      if constexpr (Traits::kScalarA) {
        const float dA = fast_exp2(a[j][0] * dtl);
#pragma unroll
        for (int i = 0; i < kS; ++i) {
          s[j][i] = fmaf(s[j][i], dA, Bf[i] * dtx);
          if (i % 2) y1 = fmaf(s[j][i], Cf[i], y1); else y0 = fmaf(s[j][i], Cf[i], y0);
        }
      } else {
#pragma unroll
        for (int i = 0; i < kS; ++i) {
          s[j][i] = fmaf(s[j][i], fast_exp2(a[j][i] * dtl), Bf[i] * dtx);
          if (i % 2) y1 = fmaf(s[j][i], Cf[i], y1); else y0 = fmaf(s[j][i], Cf[i], y0);
        }
      }
      y[j] = y0 + y1;
    }
    // The rows' reductions interleave, so their shuffle latencies overlap.
#pragma unroll
    for (int o = kLanes / 2; o > 0; o /= 2)
#pragma unroll
      for (int j = 0; j < kRows; ++j) y[j] += __shfl_xor_sync(mask, y[j], o, kLanes);
#pragma unroll
    for (int j = 0; j < kRows; ++j) {
      if (!live[j] || lane != j % kLanes) continue;  // every lane holds the sum: spread the stores
      float o = fmaf(Dv[j], to_float(in.x[j]), y[j]);
      if (zb) o *= silu_fast(to_float(in.z[j]));
      *out_ptr(j, t) = from_float<T>(o);
    }
    if (interb) {
      int64_t off[kRows];
#pragma unroll
      for (int j = 0; j < kRows; ++j)
        off[j] = t * p.inter_token_stride + hh[j] * p.inter_head_stride + cc[j] * p.inter_dim_stride;
      store_rows(interb, off);
    }
  }
  if (dst >= 0) store_rows(state + dst * p.state_batch_stride, row_off);
}

//! The decode step for the serving layout (see detail::ssu_serving_layout()): one token, no
//! intermediate states, dstate equal to the capacity, and every tensor laid out as the model
//! layers pass them: within a batch row, state, x, z, out and A contiguous over (head,
//! channel[, state]), B and C over (group, state), dt, dt_bias and D one value per head (or
//! per channel where headdim is 1), batch below 65536. Batch offsets (and state slots) keep
//! their 64-bit strides; everything else is 32-bit index arithmetic on a few parameters, so
//! a warp issues its loads after a short prologue. It computes what
//! selective_state_update_kernel computes (up to the order of the C*state sum), with the
//! same configurations (one row per thread).
//! @tparam Traits a SelectiveStateUpdateTraits with kRowsPerThread_ = 1 and kVec_ = true
template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kMinBlocksPerSM)
    selective_state_update_serving_kernel(const SelectiveStateUpdateParams p) {
  using T = typename Traits::Element;
  using TS = typename Traits::State;
  using detail::SsuPath;
  constexpr int kN = Traits::kNState;
  constexpr int kS = Traits::kStatesPerThread;
  constexpr int kChunks = Traits::kChunks;
  constexpr int kLanes = Traits::kLanes;
  static_assert(Traits::kRowsPerThread == 1 && Traits::kVec, "the serving kernel takes one row per thread");

  detail::grid_dependency_sync();
  const int b = static_cast<int>(blockIdx.y);
  const int64_t src = p.state_batch_indices ? int64_t(__ldg(p.state_batch_indices + b)) : b;
  const int64_t dst = p.dst_state_batch_indices ? int64_t(__ldg(p.dst_state_batch_indices + b)) : src;
  const int lane = static_cast<int>(threadIdx.x % kLanes);
  const int P = static_cast<int>(p.headdim);
  const int rows = static_cast<int>(p.nheads) * P;
  int r = static_cast<int>(blockIdx.x) * Traits::kRowsPerBlock + static_cast<int>(threadIdx.x / kLanes);
  const bool live = r < rows;
  if (!live) r = rows - 1;  // reads the last row, writes nothing
  unsigned hu, cu;
  detail::ssu_divmod(static_cast<unsigned>(r), static_cast<unsigned>(P), hu, cu);
  const int h = static_cast<int>(hu);
  int g = 0;
  if (p.ngroups > 1) {
    unsigned gu, ru;
    detail::ssu_divmod(hu, static_cast<unsigned>(p.nheads / p.ngroups), gu, ru);
    g = static_cast<int>(gu);
  }

  // 1. The state (unless the row is padding), then every other input.
  TS* const state = static_cast<TS*>(p.state);
  const int srow = r * kN;
  detail::SsuRaw<TS, kS> sraw;
  if (src >= 0) {
    const TS* sp = state + src * p.state_batch_stride + srow;
#pragma unroll
    for (int k = 0; k < kChunks; ++k)
      detail::ssu_load8<SsuPath::kStreaming>(sp + (k * kLanes + lane) * 8, 1, true, 8, sraw, k);
  }
  const T* const Bp = static_cast<const T*>(p.B) + b * p.B_batch_stride + g * kN;
  const T* const Cp = static_cast<const T*>(p.C) + b * p.C_batch_stride + g * kN;
  detail::SsuRaw<T, kS> Braw, Craw;
#pragma unroll
  for (int k = 0; k < kChunks; ++k) {
    detail::ssu_load8<SsuPath::kReadOnly>(Bp + (k * kLanes + lane) * 8, 1, true, 8, Braw, k);
    detail::ssu_load8<SsuPath::kReadOnly>(Cp + (k * kLanes + lane) * 8, 1, true, 8, Craw, k);
  }
  const T xv = __ldg(static_cast<const T*>(p.x) + b * p.x_batch_stride + r);
  const T dtv = __ldg(static_cast<const T*>(p.dt) + b * p.dt_batch_stride + h);
  const T zv = p.z ? __ldg(static_cast<const T*>(p.z) + b * p.z_batch_stride + r) : from_float<T>(0.f);
  const float Dv = p.D ? __ldg(p.D + h) : 0.f;
  const float bias = p.dt_bias ? __ldg(p.dt_bias + h) : 0.f;
  float a[Traits::kScalarA ? 1 : kS];
  if constexpr (Traits::kScalarA) {
    a[0] = __ldg(p.A + h);
  } else {
    detail::SsuRaw<float, kS> araw;
#pragma unroll
    for (int k = 0; k < kChunks; ++k)
      detail::ssu_load8<SsuPath::kReadOnly>(p.A + srow + (k * kLanes + lane) * 8, 1, true, 8, araw, k);
#pragma unroll
    for (int i = 0; i < kS; ++i) a[i] = araw[i];
  }
  T* const outp = static_cast<T*>(p.out) + b * p.out_batch_stride + r;
  if (src < 0) {  // padding row: output 0, no slot touched
    if (live && lane == 0) *outp = from_float<T>(0.f);
    return;
  }

  // 2. The recurrence and the output.
  float dt = to_float(dtv) + bias;
  if (p.dt_softplus) dt = softplus_fast(dt);
  const float dtl = dt * kLog2e;
  const float dtx = dt * to_float(xv);
  float s[kS];
  float y0 = 0.f, y1 = 0.f;
  const float dA0 = Traits::kScalarA ? fast_exp2(a[0] * dtl) : 0.f;
#pragma unroll
  for (int i = 0; i < kS; ++i) {
    const float dA = Traits::kScalarA ? dA0 : fast_exp2(a[i] * dtl);
    s[i] = fmaf(sraw[i], dA, Braw[i] * dtx);
    if (i % 2) y1 = fmaf(s[i], Craw[i], y1); else y0 = fmaf(s[i], Craw[i], y0);
  }
  float y = y0 + y1;
  const unsigned mask = kLanes == 32 ? 0xffffffffu
                                     : (((1u << kLanes) - 1u) << ((threadIdx.x % 32) / kLanes * kLanes));
#pragma unroll
  for (int o = kLanes / 2; o > 0; o /= 2) y += __shfl_xor_sync(mask, y, o, kLanes);
  if (live && lane == 0) {
    float o = fmaf(Dv, to_float(xv), y);
    if (p.z) o *= silu_fast(to_float(zv));
    *outp = from_float<T>(o);
  }
  if (live && dst >= 0) {
    TS* const sp = state + dst * p.state_batch_stride + srow;
#pragma unroll
    for (int k = 0; k < kChunks; ++k) detail::ssu_store8<TS>(sp + (k * kLanes + lane) * 8, true, 8, &s[k * 8]);
  }
}

SSMKIT_NAMESPACE_END
