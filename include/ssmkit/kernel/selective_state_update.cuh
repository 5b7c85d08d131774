/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file kernel/selective_state_update.cuh
//! @brief The decode-step (selective state update) kernel template and its traits.
#pragma once

#include <cstdint>

#include "../config.cuh"
#include "../math.cuh"
#include "../selective_state_update_params.cuh"
#include "../types.cuh"

SSMKIT_NAMESPACE_BEGIN

//! Compile-time configuration of the selective-state-update kernel.
//!
//! One (batch row, head, channel) is a "row" of @c kNState states. A row is spread over
//! @c kLanes adjacent lanes of a warp, @c kStatesPerThread contiguous states each, loaded and
//! stored with 16-byte accesses; the lanes sum their parts of C*state with shuffles. The
//! state stays in registers across the tokens of a call. No shared memory: the op is bound by
//! reading and writing the state once, and many small blocks fill the GPU even at batch 1.
//! @tparam T                 element type of x, dt, z, B, C and out
//! @tparam TState            element type of the state
//! @tparam kNState_          largest state size handled (the run-time dstate may be smaller)
//! @tparam kStatesPerThread_ states held by one thread (a multiple of 8: whole 16-byte vectors
//!                           of every element type)
//! @tparam kThreads_         threads per block
//! @tparam kMinBlocksPerSM_  blocks per SM the register budget is sized for
//!                           (__launch_bounds__): the op needs many bytes in flight, so
//!                           occupancy matters more than registers
//!
//! The grid is (row blocks of one batch row, batch): block coordinates give the batch row
//! without 64-bit division.
template <typename T, typename TState, int kNState_, int kStatesPerThread_ = 8, int kThreads_ = 64,
          int kMinBlocksPerSM_ = 16>
struct SelectiveStateUpdateTraits {
  using Element = T;                                          //!< Activation type.
  using State = TState;                                       //!< State type.
  static constexpr int kNState = kNState_;                    //!< State capacity.
  static constexpr int kStatesPerThread = kStatesPerThread_ < kNState_ ? kStatesPerThread_ : kNState_;  //!< States per thread.
  static constexpr int kLanes = kNState / kStatesPerThread;  //!< Lanes per row.
  static constexpr int kThreads = kThreads_;                  //!< Threads per block.
  static constexpr int kRowsPerBlock = kThreads / kLanes;     //!< Rows per block.
  static constexpr int kMinBlocksPerSM = kMinBlocksPerSM_;    //!< For __launch_bounds__.

  static_assert(kNState % kStatesPerThread == 0, "kStatesPerThread must divide kNState");
  static_assert(kStatesPerThread % 8 == 0, "states per thread must be a multiple of 8");
  // 16 states per thread gave wrong results for dstate = 1 on an H100 in testing: until that
  // configuration is understood and tested, only 8 states per thread are allowed.
  static_assert(kStatesPerThread == 8, "only 8 states per thread are tested");
  static_assert(kLanes >= 1 && kLanes <= 32 && (kLanes & (kLanes - 1)) == 0,
                "a row's lanes must be a power of two within one warp");
  static_assert(kThreads % 32 == 0, "bad block size");

  //! Number of blocks along x (the rows of one batch row) for @p p; y is the batch.
  static int64_t grid_x(const SelectiveStateUpdateParams& p) {
    return (p.nheads * p.headdim + kRowsPerBlock - 1) / kRowsPerBlock;
  }
};

namespace detail {

// Plain (coherent) loads and stores of kN contiguous elements as floats; the state is written
// by the same kernel, so it is not read through the read-only path.
template <typename T, int kN>
SSMKIT_DEVICE void ssu_load(const T* src, float (&dst)[kN], bool vec, int valid) {
  constexpr int kV = kVecElems<T>;
  if (vec) {
#pragma unroll
    for (int v = 0; v < kN / kV; ++v) {
      const uint4 raw = reinterpret_cast<const uint4*>(src)[v];
      const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
      for (int i = 0; i < kV; ++i) dst[v * kV + i] = to_float(e[i]);
    }
  } else {
#pragma unroll
    for (int i = 0; i < kN; ++i) dst[i] = i < valid ? to_float(src[i]) : 0.f;
  }
}

template <typename T, int kN>
SSMKIT_DEVICE void ssu_store(T* dst, const float (&src)[kN], bool vec, int valid) {
  constexpr int kV = kVecElems<T>;
  if (vec) {
#pragma unroll
    for (int v = 0; v < kN / kV; ++v) {
      uint4 raw;
      T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
      for (int i = 0; i < kV; ++i) e[i] = from_float<T>(src[v * kV + i]);
      reinterpret_cast<uint4*>(dst)[v] = raw;
    }
  } else {
#pragma unroll
    for (int i = 0; i < kN; ++i)
      if (i < valid) dst[i] = from_float<T>(src[i]);
  }
}

// kN elements at src with stride `stride` (vector loads when contiguous and aligned).
template <typename T, int kN>
SSMKIT_DEVICE void ssu_load_strided(const T* src, int64_t stride, float (&dst)[kN], int valid) {
  if (stride == 1 && valid == kN && is_aligned(src, 16)) {
    load_to_float<T, kN>(src, dst, true, kN);
  } else {
#pragma unroll
    for (int i = 0; i < kN; ++i) dst[i] = i < valid ? to_float(__ldg(src + i * stride)) : 0.f;
  }
}

}  // namespace detail

//! The selective-state-update kernel: one launch applies p.ntokens tokens to every row.
//! @tparam Traits a SelectiveStateUpdateTraits
template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kMinBlocksPerSM)
    selective_state_update_kernel(const SelectiveStateUpdateParams p) {
  using T = typename Traits::Element;
  using TS = typename Traits::State;
  constexpr int kS = Traits::kStatesPerThread;
  constexpr int kLanes = Traits::kLanes;

  // Row (head, channel) of batch row b; the sizes are below 2^31 (can_implement).
  const unsigned hp = blockIdx.x * unsigned(Traits::kRowsPerBlock) + threadIdx.x / unsigned(kLanes);
  const int lane = static_cast<int>(threadIdx.x % kLanes);
  const unsigned headdim = static_cast<unsigned>(p.headdim);
  if (hp >= static_cast<unsigned>(p.nheads) * headdim) return;  // all lanes of a row leave together
  const int64_t b = blockIdx.y + int64_t(blockIdx.z) * gridDim.y;
  if (b >= p.batch) return;
  const int64_t h = hp / headdim;
  const int64_t c = hp - unsigned(h) * headdim;
  const int64_t g = unsigned(h) / static_cast<unsigned>(p.nheads / p.ngroups);

  T* __restrict__ out = static_cast<T*>(p.out) + b * p.out_batch_stride + h * p.out_head_stride + c * p.out_dim_stride;
  int64_t src = b;
  if (p.state_batch_indices) src = p.state_batch_indices[b];
  if (src < 0) {  // padding row
    if (lane == 0)
      for (int64_t t = 0; t < p.ntokens; ++t) out[t * p.out_token_stride] = from_float<T>(0.f);
    return;
  }
  const int64_t dst = p.dst_state_batch_indices ? int64_t(p.dst_state_batch_indices[b]) : src;

  const int n0 = lane * kS;
  const int dstate = static_cast<int>(p.dstate);
  const int valid = dstate - n0 < 0 ? 0 : (dstate - n0 < kS ? dstate - n0 : kS);
  const int64_t state_off = h * p.state_head_stride + c * p.state_dim_stride + n0;
  TS* const state = static_cast<TS*>(p.state);

  float s[kS];
  {
    const TS* sp = state + src * p.state_batch_stride + state_off;
    detail::ssu_load<TS, kS>(sp, s, valid == kS && is_aligned(sp, 16), valid);
  }
  // A, scaled by log2(e) so that exp(A*dt) is one exp2.
  float a[kS];
  const float* Ap = p.A + h * p.A_head_stride + c * p.A_dim_stride + int64_t(n0) * p.A_dstate_stride;
  const bool a_scalar = p.A_dstate_stride == 0;
  if (a_scalar) {
    const float a0 = valid > 0 ? __ldg(Ap) : 0.f;
#pragma unroll
    for (int i = 0; i < kS; ++i) a[i] = a0;
  } else
    detail::ssu_load_strided<float, kS>(Ap, p.A_dstate_stride, a, valid);
#pragma unroll
  for (int i = 0; i < kS; ++i) a[i] *= kLog2e;
  const float Dv = p.D ? __ldg(p.D + h * p.D_head_stride + c * p.D_dim_stride) : 0.f;
  const float bias = p.dt_bias ? __ldg(p.dt_bias + h * p.dt_bias_head_stride + c * p.dt_bias_dim_stride) : 0.f;

  const T* x = static_cast<const T*>(p.x) + b * p.x_batch_stride + h * p.x_head_stride + c * p.x_dim_stride;
  const T* dtp = static_cast<const T*>(p.dt) + b * p.dt_batch_stride + h * p.dt_head_stride + c * p.dt_dim_stride;
  const T* z = p.z ? static_cast<const T*>(p.z) + b * p.z_batch_stride + h * p.z_head_stride + c * p.z_dim_stride : nullptr;
  const T* Bp = static_cast<const T*>(p.B) + b * p.B_batch_stride + g * p.B_group_stride + int64_t(n0) * p.B_dstate_stride;
  const T* Cp = static_cast<const T*>(p.C) + b * p.C_batch_stride + g * p.C_group_stride + int64_t(n0) * p.C_dstate_stride;
  TS* inter = p.intermediate_states
                  ? static_cast<TS*>(p.intermediate_states) + b * p.inter_batch_stride + h * p.inter_head_stride +
                        c * p.inter_dim_stride + n0
                  : nullptr;
  const unsigned mask = kLanes == 32 ? 0xffffffffu
                                     : (((1u << kLanes) - 1u) << ((threadIdx.x % 32) / kLanes * kLanes));

  // Pointers advance by one token per step (fewer live registers than indexing by t).
#pragma unroll 1
  for (int64_t t = 0; t < p.ntokens; ++t, x += p.x_token_stride, dtp += p.dt_token_stride,
               Bp += p.B_token_stride, Cp += p.C_token_stride, out += p.out_token_stride) {
    const float xv = to_float(__ldg(x));
    float dt = to_float(__ldg(dtp)) + bias;
    if (p.dt_softplus) dt = softplus_fast(dt);
    float Bv[kS], Cv[kS];
    detail::ssu_load_strided<T, kS>(Bp, p.B_dstate_stride, Bv, valid);
    detail::ssu_load_strided<T, kS>(Cp, p.C_dstate_stride, Cv, valid);
    const float dtx = dt * xv;
    float y = 0.f;
    if (a_scalar) {  // one decay for the row (Mamba-2): one exp2
      const float dA = fast_exp2(a[0] * dt);
#pragma unroll
      for (int i = 0; i < kS; ++i) {
        s[i] = fmaf(s[i], dA, Bv[i] * dtx);
        y = fmaf(s[i], Cv[i], y);
      }
    } else {
#pragma unroll
      for (int i = 0; i < kS; ++i) {
        s[i] = fmaf(s[i], fast_exp2(a[i] * dt), Bv[i] * dtx);
        y = fmaf(s[i], Cv[i], y);
      }
    }
#pragma unroll
    for (int o = kLanes / 2; o > 0; o /= 2) y += __shfl_xor_sync(mask, y, o, kLanes);
    if (inter) {
      detail::ssu_store<TS, kS>(inter, s, valid == kS && is_aligned(inter, 16), valid);
      inter += p.inter_token_stride;
    }
    if (lane == 0) {
      float o = fmaf(Dv, xv, y);
      if (z) o *= silu_fast(to_float(__ldg(z + t * p.z_token_stride)));
      *out = from_float<T>(o);
    }
  }
  if (dst >= 0) {
    TS* sp = state + dst * p.state_batch_stride + state_off;
    detail::ssu_store<TS, kS>(sp, s, valid == kS && is_aligned(sp, 16), valid);
  }
}

SSMKIT_NAMESPACE_END
