/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file reference/causal_conv1d.cuh
//! @brief Host reference of the causal conv1d forward and decode update, in double.
//!
//! They read the same parameter structs as the kernels, with every pointer in host memory,
//! and follow the formulas of CausalConv1dParams and CausalConv1dUpdateParams literally.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "../causal_conv1d_params.cuh"
#include "../config.cuh"
#include "../math.cuh"
#include "../status.cuh"
#include "../types.cuh"
#include "selective_scan.cuh"

SSMKIT_NAMESPACE_BEGIN
namespace reference {

//! Causal conv1d forward on the host, in double.
//! @param[in]  p                 arguments; every pointer is host memory (p.out and
//!                               p.final_states are not written)
//! @param[out] out_ref           (batch, dim, seqlen) contiguous output, in double
//! @param[out] final_states_ref  optional (batch, dim, width-1) contiguous last inputs, or null
//! @return can_implement(p)'s verdict on the arguments, or Ok
inline Status causal_conv1d_fwd(const CausalConv1dParams& p, double* out_ref,
                                double* final_states_ref = nullptr) {
  SSMKIT_TRY(can_implement(p));
  if (out_ref == nullptr)
    return Status::Error(StatusCode::kInvalidArgument, "out_ref must not be null");
  const int64_t W = p.width;
  for (int64_t b = 0; b < p.batch; ++b) {
    for (int64_t d = 0; d < p.dim; ++d) {
      // x of this row at position pos (pos may be negative).
      auto xat = [&](int64_t pos) -> double {
        if (pos >= 0)
          return detail::load_elem(p.dtype, p.x, b * p.x_batch_stride + d * p.x_dim_stride +
                                                     pos * p.x_seq_stride);
        if (p.initial_states == nullptr || pos < -(W - 1)) return 0.0;
        return detail::load_elem(p.dtype, p.initial_states,
                                 b * p.initial_states_batch_stride + d * p.initial_states_dim_stride +
                                     (W - 1 + pos) * p.initial_states_seq_stride);
      };
      auto seq = [&](int64_t pos) -> int64_t {
        return p.seq_idx[b * p.seq_idx_batch_stride + pos * p.seq_idx_seq_stride];
      };
      const double bias = p.bias ? detail::load_elem(p.weight_dtype, p.bias, d) : 0.0;
      for (int64_t t = 0; t < p.seqlen; ++t) {
        double acc = bias;
        for (int64_t k = 0; k < W; ++k) {
          const int64_t pos = t - (W - 1) + k;
          if (p.seq_idx && (pos < 0 || seq(pos) != seq(t))) continue;
          acc += detail::load_elem(p.weight_dtype, p.weight,
                                   d * p.weight_dim_stride + k * p.weight_width_stride) *
                 xat(pos);
        }
        out_ref[(b * p.dim + d) * p.seqlen + t] = p.silu ? silu_ref(acc) : acc;
      }
      if (final_states_ref)
        for (int64_t k = 0; k < W - 1; ++k)
          final_states_ref[(b * p.dim + d) * (W - 1) + k] = xat(p.seqlen - (W - 1) + k);
    }
  }
  return Status::Ok();
}

//! Causal conv1d decode update on the host, in double; the state is updated in place.
//! @param[in]     p       arguments; every pointer is host memory (p.out is not written;
//!                        p.conv_state is updated like the kernel does)
//! @param[out]    out_ref (batch, dim, seqlen) contiguous output, in double
//! @return can_implement(p)'s verdict on the arguments, or Ok
inline Status causal_conv1d_update(const CausalConv1dUpdateParams& p, double* out_ref) {
  SSMKIT_TRY(can_implement(p));
  if (out_ref == nullptr)
    return Status::Error(StatusCode::kInvalidArgument, "out_ref must not be null");
  const int64_t W = p.width, S = p.state_len, T = p.seqlen;
  for (int64_t b = 0; b < p.batch; ++b) {
    const int64_t row = p.conv_state_indices ? p.conv_state_indices[b] : b;
    for (int64_t d = 0; d < p.dim; ++d) {
      double* out = out_ref + (b * p.dim + d) * T;
      if (row < 0) {
        for (int64_t t = 0; t < T; ++t) out[t] = 0.0;
        continue;
      }
      auto sidx = [&](int64_t s) {
        return row * p.state_batch_stride + d * p.state_dim_stride + s * p.state_seq_stride;
      };
      // The inputs in time order: the last W-1 kept ones, then the new tokens.
      std::vector<double> seq;
      int64_t newest = S;  // one past the newest kept input, in buffer positions
      if (p.cache_seqlens) newest = ((p.cache_seqlens[b] % S) + S) % S;
      for (int64_t k = W - 1; k >= 1; --k) {
        int64_t s = newest - k;
        if (p.cache_seqlens) s = ((s % S) + S) % S;
        seq.push_back(detail::load_elem(p.dtype, p.conv_state, sidx(s)));
      }
      std::vector<double> xs(static_cast<size_t>(T));
      for (int64_t t = 0; t < T; ++t)
        xs[t] = detail::load_elem(p.dtype, p.x, b * p.x_batch_stride + d * p.x_dim_stride + t * p.x_seq_stride);
      seq.insert(seq.end(), xs.begin(), xs.end());
      const double bias = p.bias ? detail::load_elem(p.weight_dtype, p.bias, d) : 0.0;
      for (int64_t t = 0; t < T; ++t) {
        double acc = bias;
        for (int64_t k = 0; k < W; ++k)
          acc += detail::load_elem(p.weight_dtype, p.weight, d * p.weight_dim_stride + k * p.weight_width_stride) *
                 seq[t + k];
        out[t] = p.silu ? silu_ref(acc) : acc;
      }
      // State update, through a copy of the row in time order.
      if (S == 0) continue;
      std::vector<double> old(static_cast<size_t>(S));
      for (int64_t s = 0; s < S; ++s) old[s] = detail::load_elem(p.dtype, p.conv_state, sidx(s));
      auto store = [&](int64_t s, double v) {
        const int64_t i = sidx(s);
        switch (p.dtype) {
          case DType::kFloat32: static_cast<float*>(p.conv_state)[i] = static_cast<float>(v); break;
          case DType::kFloat16: static_cast<__half*>(p.conv_state)[i] = from_float<__half>(static_cast<float>(v)); break;
          case DType::kBFloat16: static_cast<__nv_bfloat16*>(p.conv_state)[i] = from_float<__nv_bfloat16>(static_cast<float>(v)); break;
        }
      };
      if (p.cache_seqlens) {
        for (int64_t t = 0; t < T; ++t) store((newest + t) % S, xs[t]);
      } else {
        std::vector<double> all(old);
        all.insert(all.end(), xs.begin(), xs.end());
        for (int64_t s = 0; s < S; ++s) store(s, all[s + T]);
      }
    }
  }
  return Status::Ok();
}

}  // namespace reference
SSMKIT_NAMESPACE_END
