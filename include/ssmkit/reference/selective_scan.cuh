/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file reference/selective_scan.cuh
//! @brief Host reference of the selective-scan forward, accumulating in double.
//!
//! It reads the same SelectiveScanParams as the kernels, with every pointer in host memory,
//! and follows the recurrence of SelectiveScanParams literally, one state at a time, in
//! double precision with exact exp, log1p and sigmoid. Tests compare every kernel with it.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "../config.cuh"
#include "../math.cuh"
#include "../selective_scan_params.cuh"
#include "../status.cuh"
#include "../types.cuh"

SSMKIT_NAMESPACE_BEGIN
namespace reference {

namespace detail {

template <typename T>
double load_as_double(const void* base, int64_t index) {
  return static_cast<double>(to_float(static_cast<const T*>(base)[index]));
}

inline double load_elem(DType t, const void* base, int64_t index) {
  switch (t) {
    case DType::kFloat32: return load_as_double<float>(base, index);
    case DType::kFloat16: return load_as_double<__half>(base, index);
    case DType::kBFloat16: return load_as_double<__nv_bfloat16>(base, index);
  }
  return 0.0;
}

}  // namespace detail

//! Selective scan forward on the host, in double.
//! @param[in]  p              arguments; every pointer is host memory (p.out and
//!                            p.last_state are not written)
//! @param[out] out_ref        (batch, dim, seqlen) contiguous output, in double
//! @param[out] last_state_ref optional (batch, dim, dstate) contiguous final state, or null
//! @param[in]  d_begin        first channel to compute (the others are left untouched)
//! @param[in]  d_end          one past the last channel to compute; -1 for dim
//! @param[out] conv_out_ref   optional (batch, dim, seqlen) contiguous output of the fused
//!                            conv (p.conv), or null
//! @return can_implement(p)'s verdict on the arguments, or Ok
inline Status selective_scan_fwd(const SelectiveScanParams& p, double* out_ref,
                                 double* last_state_ref = nullptr, int64_t d_begin = 0,
                                 int64_t d_end = -1, double* conv_out_ref = nullptr) {
  SSMKIT_TRY(can_implement(p));
  if (out_ref == nullptr)
    return Status::Error(StatusCode::kInvalidArgument, "out_ref must not be null");
  if (d_end < 0) d_end = p.dim;
  const int64_t per_group = p.dim / p.n_groups;
  std::vector<double> h(static_cast<size_t>(p.dstate)), conv_u;
  const ScanConv1dParams& cv = p.conv;
  const int64_t W = cv.width;
  for (int64_t b = 0; b < p.batch; ++b) {
    for (int64_t d = d_begin; d < d_end; ++d) {
      const int64_t g = d / per_group;
      for (int64_t n = 0; n < p.dstate; ++n)
        h[n] = p.h0 ? p.h0[b * p.h0_batch_stride + d * p.h0_dim_stride + n] : 0.0;
      // Fused conv: u is the conv of the input row (history from conv.initial_states or zero).
      if (cv.weight) {
        conv_u.assign(static_cast<size_t>(p.seqlen), 0.0);
        for (int64_t t = 0; t < p.seqlen; ++t) {
          double acc = cv.bias ? detail::load_elem(cv.weight_dtype, cv.bias, d) : 0.0;
          for (int64_t k = 0; k < W; ++k) {
            const int64_t s = t - (W - 1) + k;
            double x = 0.0;
            if (s >= 0)
              x = detail::load_elem(p.dtype, p.u, b * p.u_batch_stride + d * p.u_dim_stride + s);
            else if (cv.initial_states)
              x = detail::load_elem(p.dtype, cv.initial_states, b * cv.initial_states_batch_stride +
                                                                    d * cv.initial_states_dim_stride + (W - 1 + s));
            acc += detail::load_elem(cv.weight_dtype, cv.weight, d * cv.weight_dim_stride + k) * x;
          }
          conv_u[t] = cv.silu ? silu_ref(acc) : acc;
          if (conv_out_ref) conv_out_ref[(b * p.dim + d) * p.seqlen + t] = conv_u[t];
        }
      }
      const double Dd = p.D ? p.D[d] : 0.0;
      const double bias = p.delta_bias ? p.delta_bias[d] : 0.0;
      for (int64_t t = 0; t < p.seqlen; ++t) {
        const double u = cv.weight ? conv_u[t] : detail::load_elem(p.dtype, p.u, b * p.u_batch_stride + d * p.u_dim_stride + t);
        double dt = detail::load_elem(p.dtype, p.delta, b * p.delta_batch_stride + d * p.delta_dim_stride + t) + bias;
        if (p.delta_softplus) dt = softplus_ref(dt);
        double y = 0.0;
        for (int64_t n = 0; n < p.dstate; ++n) {
          const double a = p.A[d * p.A_dim_stride + n * p.A_dstate_stride];
          const double Bn =
              p.B_variable
                  ? detail::load_elem(p.dtype, p.B, b * p.B_batch_stride + g * p.B_group_stride + n * p.B_dstate_stride + t)
                  : static_cast<const float*>(p.B)[d * p.B_dim_stride + n * p.B_dstate_stride];
          const double Cn =
              p.C_variable
                  ? detail::load_elem(p.dtype, p.C, b * p.C_batch_stride + g * p.C_group_stride + n * p.C_dstate_stride + t)
                  : static_cast<const float*>(p.C)[d * p.C_dim_stride + n * p.C_dstate_stride];
          h[n] = std::exp(dt * a) * h[n] + dt * Bn * u;
          y += Cn * h[n];
        }
        y += Dd * u;
        if (p.z) y *= silu_ref(detail::load_elem(p.dtype, p.z, b * p.z_batch_stride + d * p.z_dim_stride + t));
        out_ref[(b * p.dim + d) * p.seqlen + t] = y;
      }
      if (last_state_ref)
        for (int64_t n = 0; n < p.dstate; ++n) last_state_ref[(b * p.dim + d) * p.dstate + n] = h[n];
    }
  }
  return Status::Ok();
}

}  // namespace reference
SSMKIT_NAMESPACE_END
