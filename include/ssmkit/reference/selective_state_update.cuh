/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file reference/selective_state_update.cuh
//! @brief Host reference of the decode step (selective state update), accumulating in double.
//!
//! It reads the same SelectiveStateUpdateParams as the kernels, with every pointer in host
//! memory, and follows the formulas of SelectiveStateUpdateParams literally in double
//! precision with exact exp, log1p and sigmoid. Like the kernel it keeps the state unrounded
//! across the tokens of one call and rounds it to state_dtype where it stores it.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "../config.cuh"
#include "../math.cuh"
#include "../selective_state_update_params.cuh"
#include "../status.cuh"
#include "../types.cuh"

SSMKIT_NAMESPACE_BEGIN
namespace reference {

namespace detail {

inline double ssu_get(DType t, const void* base, int64_t i) {
  switch (t) {
    case DType::kFloat32: return static_cast<const float*>(base)[i];
    case DType::kFloat16: return to_float(static_cast<const __half*>(base)[i]);
    case DType::kBFloat16: return to_float(static_cast<const __nv_bfloat16*>(base)[i]);
  }
  return 0.0;
}

inline void ssu_put(DType t, void* base, int64_t i, double v) {
  const float f = static_cast<float>(v);
  switch (t) {
    case DType::kFloat32: static_cast<float*>(base)[i] = f; break;
    case DType::kFloat16: static_cast<__half*>(base)[i] = from_float<__half>(f); break;
    case DType::kBFloat16: static_cast<__nv_bfloat16*>(base)[i] = from_float<__nv_bfloat16>(f); break;
  }
}

}  // namespace detail

//! Decode step on the host, in double. Updates p.state (and p.intermediate_states if given)
//! in place, in p.state_dtype, exactly where the kernel writes; p.out is not written.
//! @param[in,out] p         arguments; every pointer is host memory
//! @param[out]    out_ref   (batch, ntokens, nheads, headdim) contiguous output, in double
//! @param[out]    state_ref optional (batch, nheads, headdim, dstate) contiguous state after
//!                          the last token, unrounded, per batch row (padding rows untouched)
//! @return can_implement(p)'s verdict on the arguments, or Ok
inline Status selective_state_update(const SelectiveStateUpdateParams& p, double* out_ref,
                                     double* state_ref = nullptr) {
  SSMKIT_TRY(can_implement(p));
  if (out_ref == nullptr)
    return Status::Error(StatusCode::kInvalidArgument, "out_ref must not be null");
  const int64_t H = p.nheads, P = p.headdim, N = p.dstate, T = p.ntokens;
  const int64_t per_group = H / p.ngroups;
  std::vector<double> s(static_cast<size_t>(N));
  for (int64_t b = 0; b < p.batch; ++b) {
    const int64_t src = p.state_batch_indices ? p.state_batch_indices[b] : b;
    const int64_t dst = p.dst_state_batch_indices ? p.dst_state_batch_indices[b] : src;
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / per_group;
      for (int64_t c = 0; c < P; ++c) {
        double* o = out_ref + ((b * T) * H + h) * P + c;  // token stride H * P
        if (src < 0) {
          for (int64_t t = 0; t < T; ++t) o[t * H * P] = 0.0;
          continue;
        }
        const int64_t off = h * p.state_head_stride + c * p.state_dim_stride;
        for (int64_t n = 0; n < N; ++n)
          s[n] = detail::ssu_get(p.state_dtype, p.state, src * p.state_batch_stride + off + n);
        const double Dv = p.D ? p.D[h * p.D_head_stride + c * p.D_dim_stride] : 0.0;
        const double bias = p.dt_bias ? p.dt_bias[h * p.dt_bias_head_stride + c * p.dt_bias_dim_stride] : 0.0;
        for (int64_t t = 0; t < T; ++t) {
          const double x = detail::ssu_get(p.dtype, p.x, b * p.x_batch_stride + t * p.x_token_stride + h * p.x_head_stride + c * p.x_dim_stride);
          double dt = detail::ssu_get(p.dtype, p.dt, b * p.dt_batch_stride + t * p.dt_token_stride + h * p.dt_head_stride + c * p.dt_dim_stride) + bias;
          if (p.dt_softplus) dt = softplus_ref(dt);
          double y = 0.0;
          for (int64_t n = 0; n < N; ++n) {
            const double a = p.A[h * p.A_head_stride + c * p.A_dim_stride + n * p.A_dstate_stride];
            const double Bn = detail::ssu_get(p.dtype, p.B, b * p.B_batch_stride + t * p.B_token_stride + g * p.B_group_stride + n * p.B_dstate_stride);
            const double Cn = detail::ssu_get(p.dtype, p.C, b * p.C_batch_stride + t * p.C_token_stride + g * p.C_group_stride + n * p.C_dstate_stride);
            s[n] = s[n] * std::exp(a * dt) + Bn * dt * x;
            y += s[n] * Cn;
          }
          y += Dv * x;
          if (p.z) y *= silu_ref(detail::ssu_get(p.dtype, p.z, b * p.z_batch_stride + t * p.z_token_stride + h * p.z_head_stride + c * p.z_dim_stride));
          o[t * H * P] = y;
          if (p.intermediate_states) {
            const int64_t io = b * p.inter_batch_stride + t * p.inter_token_stride + h * p.inter_head_stride + c * p.inter_dim_stride;
            for (int64_t n = 0; n < N; ++n) detail::ssu_put(p.state_dtype, p.intermediate_states, io + n, s[n]);
          }
        }
        if (state_ref)
          for (int64_t n = 0; n < N; ++n) state_ref[((b * H + h) * P + c) * N + n] = s[n];
        if (dst >= 0)
          for (int64_t n = 0; n < N; ++n) detail::ssu_put(p.state_dtype, p.state, dst * p.state_batch_stride + off + n, s[n]);
      }
    }
  }
  return Status::Ok();
}

}  // namespace reference
SSMKIT_NAMESPACE_END
