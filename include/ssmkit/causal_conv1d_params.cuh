/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file causal_conv1d_params.cuh
//! @brief Parameters of the causal depthwise conv1d (forward and decode update) and their
//! validation (no GPU work).
#pragma once

#include <cstdint>

#include "config.cuh"
#include "selective_scan_params.cuh"
#include "status.cuh"
#include "types.cuh"

SSMKIT_NAMESPACE_BEGIN

//! Largest convolution width the conv1d kernels support.
constexpr int64_t kMaxConvWidth = 8;

//! Arguments of one causal conv1d forward call. Sizes and strides are int64 and count elements.
//! Optional inputs are null pointers.
//!
//! For every batch b, channel d and position t:
//! @code
//!   out[b,d,t] = act(bias[d] + sum_{k<W} weight[d,k] * x[b,d,t-W+1+k])
//! @endcode
//! where x at a position before 0 is initial_states[b,d,W-1+pos] (or 0 without initial
//! states), act is the identity or silu, and with seq_idx a term is dropped unless
//! seq_idx[b,t-W+1+k] == seq_idx[b,t] (packed sequences see nothing of their neighbours).
//!
//! Layouts: x is either channel-first (x_seq_stride == 1) or channel-last (x_dim_stride == 1,
//! e.g. strides (L*D, 1, D)); out must have the same unit-stride dimension as x. Initial and
//! final states and seq_idx take any strides.
//!
//! initial_states together with seq_idx is rejected (as upstream causal-conv1d does): start
//! a packed batch by putting the carried inputs in front of the first segment instead.
//! final_states receives the last W-1 inputs of each row: x[b,d,L-W+1 .. L-1], where positions
//! before 0 come from initial_states (or are 0). It must not overlap initial_states.
struct CausalConv1dParams {
  DType dtype = DType::kFloat32;         //!< Type of x, out, initial and final states.
  DType weight_dtype = DType::kFloat32;  //!< Type of weight and bias.
  int64_t batch = 0;                     //!< B: batch size.
  int64_t dim = 0;                       //!< D: number of channels.
  int64_t seqlen = 0;                    //!< L: sequence length.
  int64_t width = 0;                     //!< W: convolution width, 1..8.

  const void* x = nullptr;     //!< (batch, dim, seqlen) input.
  int64_t x_batch_stride = 0;  //!< Stride of x between batches.
  int64_t x_dim_stride = 0;    //!< Stride of x between channels.
  int64_t x_seq_stride = 1;    //!< Stride of x between positions.

  const void* weight = nullptr;     //!< (dim, width) filter taps, in weight_dtype.
  int64_t weight_dim_stride = 0;    //!< Stride of weight between channels.
  int64_t weight_width_stride = 1;  //!< Stride of weight between taps.
  const void* bias = nullptr;       //!< Optional (dim,) contiguous bias, in weight_dtype.

  const int32_t* seq_idx = nullptr;  //!< Optional (batch, seqlen) sequence index per position.
  int64_t seq_idx_batch_stride = 0;  //!< Stride of seq_idx between batches.
  int64_t seq_idx_seq_stride = 1;    //!< Stride of seq_idx between positions.

  const void* initial_states = nullptr;  //!< Optional (batch, dim, width-1) inputs before 0.
  int64_t initial_states_batch_stride = 0;  //!< Stride between batches.
  int64_t initial_states_dim_stride = 0;    //!< Stride between channels.
  int64_t initial_states_seq_stride = 1;    //!< Stride between positions.

  void* final_states = nullptr;           //!< Optional (batch, dim, width-1) last inputs.
  int64_t final_states_batch_stride = 0;  //!< Stride between batches.
  int64_t final_states_dim_stride = 0;    //!< Stride between channels.
  int64_t final_states_seq_stride = 1;    //!< Stride between positions.

  void* out = nullptr;           //!< (batch, dim, seqlen) output in dtype.
  int64_t out_batch_stride = 0;  //!< Stride of out between batches.
  int64_t out_dim_stride = 0;    //!< Stride of out between channels.
  int64_t out_seq_stride = 1;    //!< Stride of out between positions.

  bool silu = false;  //!< Apply silu to the result.
};

//! Arguments of one causal conv1d decode update: @c seqlen new tokens per row go through the
//! convolution, continuing from the inputs kept in conv_state, and conv_state is updated.
//!
//! Without cache_seqlens the state row (state_len >= width-1 inputs, oldest first) is shifted
//! left by seqlen and the new tokens are appended. With cache_seqlens the row is a circular
//! buffer: the newest input before this call sits at (cache_seqlens[b] - 1) mod state_len and
//! the new tokens are written from cache_seqlens[b] mod state_len on (the caller advances
//! cache_seqlens). conv_state_indices[b] picks the state row of batch entry b; an index < 0
//! marks padding: that entry's output is 0 and no state is touched.
struct CausalConv1dUpdateParams {
  DType dtype = DType::kFloat32;         //!< Type of x, out and conv_state.
  DType weight_dtype = DType::kFloat32;  //!< Type of weight and bias.
  int64_t batch = 0;                     //!< B: batch entries.
  int64_t dim = 0;                       //!< D: number of channels.
  int64_t seqlen = 1;                    //!< T: new tokens per entry.
  int64_t width = 0;                     //!< W: convolution width, 1..8.
  int64_t state_len = 0;                 //!< S: inputs kept per state row, >= width-1.
  int64_t state_pool = 0;                //!< Rows of the state pool (batch without indices).

  const void* x = nullptr;     //!< (batch, dim, seqlen) new tokens.
  int64_t x_batch_stride = 0;  //!< Stride of x between batches.
  int64_t x_dim_stride = 0;    //!< Stride of x between channels.
  int64_t x_seq_stride = 1;    //!< Stride of x between tokens.

  void* conv_state = nullptr;         //!< (state_pool, dim, state_len), updated in place.
  int64_t state_batch_stride = 0;     //!< Stride of conv_state between pool rows.
  int64_t state_dim_stride = 0;       //!< Stride of conv_state between channels.
  int64_t state_seq_stride = 1;       //!< Stride of conv_state between positions.

  const void* weight = nullptr;     //!< (dim, width) filter taps, in weight_dtype.
  int64_t weight_dim_stride = 0;    //!< Stride of weight between channels.
  int64_t weight_width_stride = 1;  //!< Stride of weight between taps.
  const void* bias = nullptr;       //!< Optional (dim,) contiguous bias, in weight_dtype.

  const int32_t* cache_seqlens = nullptr;       //!< Optional (batch,): circular-buffer mode.
  const int32_t* conv_state_indices = nullptr;  //!< Optional (batch,): pool row per entry.

  void* out = nullptr;           //!< (batch, dim, seqlen) output in dtype.
  int64_t out_batch_stride = 0;  //!< Stride of out between batches.
  int64_t out_dim_stride = 0;    //!< Stride of out between channels.
  int64_t out_seq_stride = 1;    //!< Stride of out between tokens.

  bool silu = false;  //!< Apply silu to the result.
};

//! Forward parameters for contiguous tensors: x and out (batch, dim, seqlen) channel-first, or
//! channel-last storage (strides (seqlen*dim, 1, dim)) when @p channel_last; weight (dim,
//! width); states (batch, dim, width-1) contiguous; seq_idx (batch, seqlen). Every pointer
//! null and every option off.
inline CausalConv1dParams make_causal_conv1d_params(DType dtype, DType weight_dtype, int64_t batch,
                                                    int64_t dim, int64_t seqlen, int64_t width,
                                                    bool channel_last = false) noexcept {
  CausalConv1dParams p;
  p.dtype = dtype;
  p.weight_dtype = weight_dtype;
  p.batch = batch;
  p.dim = dim;
  p.seqlen = seqlen;
  p.width = width;
  p.x_batch_stride = p.out_batch_stride = dim * seqlen;
  p.x_dim_stride = p.out_dim_stride = channel_last ? 1 : seqlen;
  p.x_seq_stride = p.out_seq_stride = channel_last ? dim : 1;
  p.weight_dim_stride = width;
  p.weight_width_stride = 1;
  p.seq_idx_batch_stride = seqlen;
  p.seq_idx_seq_stride = 1;
  const int64_t ws = width > 1 ? width - 1 : 1;
  p.initial_states_batch_stride = p.final_states_batch_stride = dim * ws;
  p.initial_states_dim_stride = p.final_states_dim_stride = ws;
  p.initial_states_seq_stride = p.final_states_seq_stride = 1;
  return p;
}

//! Update parameters for contiguous tensors: x and out (batch, dim, seqlen), conv_state
//! (state_pool, dim, state_len), weight (dim, width). Every pointer null, no option on.
inline CausalConv1dUpdateParams make_causal_conv1d_update_params(
    DType dtype, DType weight_dtype, int64_t batch, int64_t dim, int64_t seqlen, int64_t width,
    int64_t state_len, int64_t state_pool) noexcept {
  CausalConv1dUpdateParams p;
  p.dtype = dtype;
  p.weight_dtype = weight_dtype;
  p.batch = batch;
  p.dim = dim;
  p.seqlen = seqlen;
  p.width = width;
  p.state_len = state_len;
  p.state_pool = state_pool;
  p.x_batch_stride = p.out_batch_stride = dim * seqlen;
  p.x_dim_stride = p.out_dim_stride = seqlen;
  p.x_seq_stride = p.out_seq_stride = 1;
  p.state_batch_stride = dim * state_len;
  p.state_dim_stride = state_len;
  p.state_seq_stride = 1;
  p.weight_dim_stride = width;
  p.weight_width_stride = 1;
  return p;
}

//! True when the forward of @p p runs the channel-last kernel (x's channel stride is 1 and its
//! position stride is not).
inline bool causal_conv1d_is_channel_last(const CausalConv1dParams& p) noexcept {
  return p.seqlen > 1 && p.x_seq_stride != 1;
}

namespace detail {

inline Status check_range(int64_t v, int64_t lo, int64_t hi, const char* name) noexcept {
  if (v < lo || v > hi)
    return Status::Error(StatusCode::kInvalidArgument, "%s must be in [%lld, %lld], got %lld", name,
                         static_cast<long long>(lo), static_cast<long long>(hi),
                         static_cast<long long>(v));
  return Status::Ok();
}

inline Status check_dtype(DType t, const char* name) noexcept {
  if (dtype_size(t) == 0)
    return Status::Error(StatusCode::kInvalidArgument, "%s: unknown element type %d", name,
                         static_cast<int>(t));
  return Status::Ok();
}

inline Status check_conv_weight_dtype(DType x, DType w) noexcept {
  SSMKIT_TRY(check_dtype(w, "weight_dtype"));
  if (w != x && w != DType::kFloat32)
    return Status::Error(StatusCode::kNotSupported,
                         "weight_dtype: weight must be %s (like x) or float32, got %s",
                         to_string(x), to_string(w));
  return Status::Ok();
}

inline Status check_strides3(int64_t a, int64_t b, int64_t c, const char* na, const char* nb,
                             const char* nc) noexcept {
  SSMKIT_TRY(check_nonneg(a, na));
  SSMKIT_TRY(check_nonneg(b, nb));
  return check_nonneg(c, nc);
}

}  // namespace detail

//! Checks forward arguments without touching the GPU. Returns kInvalidArgument (or
//! kNotSupported) with a message naming the first offending argument, or Ok.
inline Status can_implement(const CausalConv1dParams& p) noexcept {
  using detail::check_opt_ptr;
  using detail::check_ptr;
  SSMKIT_TRY(detail::check_dtype(p.dtype, "dtype"));
  SSMKIT_TRY(detail::check_conv_weight_dtype(p.dtype, p.weight_dtype));
  const int es = dtype_size(p.dtype), ws = dtype_size(p.weight_dtype);
  SSMKIT_TRY(detail::check_range(p.batch, 1, int64_t{1} << 31, "batch"));
  SSMKIT_TRY(detail::check_range(p.dim, 1, int64_t{1} << 40, "dim"));
  SSMKIT_TRY(detail::check_range(p.seqlen, 1, int64_t{1} << 40, "seqlen"));
  SSMKIT_TRY(detail::check_range(p.width, 1, kMaxConvWidth, "width"));
  SSMKIT_TRY(check_ptr(p.x, "x", es));
  SSMKIT_TRY(check_ptr(p.weight, "weight", ws));
  SSMKIT_TRY(check_ptr(p.out, "out", es));
  SSMKIT_TRY(check_opt_ptr(p.bias, "bias", ws));
  SSMKIT_TRY(check_opt_ptr(p.seq_idx, "seq_idx", 4));
  SSMKIT_TRY(check_opt_ptr(p.initial_states, "initial_states", es));
  SSMKIT_TRY(check_opt_ptr(p.final_states, "final_states", es));
  SSMKIT_TRY(detail::check_strides3(p.x_batch_stride, p.x_dim_stride, p.x_seq_stride,
                                    "x_batch_stride", "x_dim_stride", "x_seq_stride"));
  SSMKIT_TRY(detail::check_strides3(p.out_batch_stride, p.out_dim_stride, p.out_seq_stride,
                                    "out_batch_stride", "out_dim_stride", "out_seq_stride"));
  SSMKIT_TRY(detail::check_nonneg(p.weight_dim_stride, "weight_dim_stride"));
  SSMKIT_TRY(detail::check_nonneg(p.weight_width_stride, "weight_width_stride"));
  if (p.seq_idx) {
    SSMKIT_TRY(detail::check_nonneg(p.seq_idx_batch_stride, "seq_idx_batch_stride"));
    SSMKIT_TRY(detail::check_nonneg(p.seq_idx_seq_stride, "seq_idx_seq_stride"));
  }
  if (p.initial_states)
    SSMKIT_TRY(detail::check_strides3(p.initial_states_batch_stride, p.initial_states_dim_stride,
                                      p.initial_states_seq_stride, "initial_states_batch_stride",
                                      "initial_states_dim_stride", "initial_states_seq_stride"));
  if (p.final_states)
    SSMKIT_TRY(detail::check_strides3(p.final_states_batch_stride, p.final_states_dim_stride,
                                      p.final_states_seq_stride, "final_states_batch_stride",
                                      "final_states_dim_stride", "final_states_seq_stride"));
  if ((p.initial_states || p.final_states) && p.width < 2)
    return Status::Error(StatusCode::kInvalidArgument,
                         "%s: width 1 keeps no state (width - 1 = 0 inputs); pass null",
                         p.initial_states ? "initial_states" : "final_states");
  if (p.seq_idx && p.initial_states)
    return Status::Error(StatusCode::kInvalidArgument,
                         "initial_states cannot be combined with seq_idx (packed sequences "
                         "start from zeros)");
  if (p.initial_states && p.final_states && p.initial_states == p.final_states)
    return Status::Error(StatusCode::kInvalidArgument,
                         "final_states must not be the same memory as initial_states");
  if (causal_conv1d_is_channel_last(p)) {
    if (p.dim > 1 && p.x_dim_stride != 1)
      return Status::Error(StatusCode::kInvalidArgument,
                           "x: either the position stride (x_seq_stride, got %lld) or the "
                           "channel stride (x_dim_stride, got %lld) must be 1",
                           static_cast<long long>(p.x_seq_stride),
                           static_cast<long long>(p.x_dim_stride));
    if (p.dim > 1 && p.out_dim_stride != 1)
      return Status::Error(StatusCode::kInvalidArgument,
                           "out: x is channel-last, so out_dim_stride must be 1 too, got %lld",
                           static_cast<long long>(p.out_dim_stride));
    if (p.out_seq_stride < p.dim)
      return Status::Error(StatusCode::kInvalidArgument,
                           "out: out_seq_stride %lld is smaller than dim %lld (positions overlap)",
                           static_cast<long long>(p.out_seq_stride), static_cast<long long>(p.dim));
    if (p.batch > 1 && p.out_batch_stride < (p.seqlen - 1) * p.out_seq_stride + p.dim)
      return Status::Error(StatusCode::kInvalidArgument,
                           "out: batch stride %lld is too small (batches overlap)",
                           static_cast<long long>(p.out_batch_stride));
  } else {
    if (p.seqlen > 1 && p.out_seq_stride != 1)
      return Status::Error(StatusCode::kInvalidArgument,
                           "out: x is channel-first, so out_seq_stride must be 1 too, got %lld",
                           static_cast<long long>(p.out_seq_stride));
    SSMKIT_TRY(detail::check_output_layout(p.out_batch_stride, p.out_dim_stride, p.batch, p.dim,
                                           p.seqlen, "out"));
  }
  return Status::Ok();
}

//! Checks update arguments without touching the GPU. Returns kInvalidArgument (or
//! kNotSupported) with a message naming the first offending argument, or Ok.
inline Status can_implement(const CausalConv1dUpdateParams& p) noexcept {
  using detail::check_opt_ptr;
  using detail::check_ptr;
  SSMKIT_TRY(detail::check_dtype(p.dtype, "dtype"));
  SSMKIT_TRY(detail::check_conv_weight_dtype(p.dtype, p.weight_dtype));
  const int es = dtype_size(p.dtype), ws = dtype_size(p.weight_dtype);
  SSMKIT_TRY(detail::check_range(p.batch, 1, int64_t{1} << 31, "batch"));
  SSMKIT_TRY(detail::check_range(p.dim, 1, int64_t{1} << 31, "dim"));
  SSMKIT_TRY(detail::check_range(p.seqlen, 1, int64_t{1} << 31, "seqlen"));
  SSMKIT_TRY(detail::check_range(p.width, 1, kMaxConvWidth, "width"));
  if (p.state_len < p.width - 1 || p.state_len > (int64_t{1} << 31))
    return Status::Error(StatusCode::kInvalidArgument,
                         "state_len must be >= width - 1 = %lld, got %lld",
                         static_cast<long long>(p.width - 1), static_cast<long long>(p.state_len));
  if (p.state_len < 1 && p.cache_seqlens)
    return Status::Error(StatusCode::kInvalidArgument,
                         "cache_seqlens: a circular buffer needs state_len >= 1");
  if (p.conv_state_indices ? p.state_pool < 1 : p.state_pool < p.batch)
    return Status::Error(StatusCode::kInvalidArgument,
                         "state_pool must be >= %s, got %lld",
                         p.conv_state_indices ? "1" : "batch (no conv_state_indices)",
                         static_cast<long long>(p.state_pool));
  SSMKIT_TRY(check_ptr(p.x, "x", es));
  if (p.state_len > 0) SSMKIT_TRY(check_ptr(p.conv_state, "conv_state", es));
  SSMKIT_TRY(check_ptr(p.weight, "weight", ws));
  SSMKIT_TRY(check_ptr(p.out, "out", es));
  SSMKIT_TRY(check_opt_ptr(p.bias, "bias", ws));
  SSMKIT_TRY(check_opt_ptr(p.cache_seqlens, "cache_seqlens", 4));
  SSMKIT_TRY(check_opt_ptr(p.conv_state_indices, "conv_state_indices", 4));
  SSMKIT_TRY(detail::check_strides3(p.x_batch_stride, p.x_dim_stride, p.x_seq_stride,
                                    "x_batch_stride", "x_dim_stride", "x_seq_stride"));
  SSMKIT_TRY(detail::check_strides3(p.out_batch_stride, p.out_dim_stride, p.out_seq_stride,
                                    "out_batch_stride", "out_dim_stride", "out_seq_stride"));
  SSMKIT_TRY(detail::check_strides3(p.state_batch_stride, p.state_dim_stride, p.state_seq_stride,
                                    "state_batch_stride", "state_dim_stride", "state_seq_stride"));
  SSMKIT_TRY(detail::check_nonneg(p.weight_dim_stride, "weight_dim_stride"));
  SSMKIT_TRY(detail::check_nonneg(p.weight_width_stride, "weight_width_stride"));
  if (p.state_len > 1 && p.state_seq_stride == 0)
    return Status::Error(StatusCode::kInvalidArgument,
                         "conv_state: state_seq_stride must not be 0 (positions overlap)");
  if (p.state_len > 0 && p.dim > 1 && p.state_dim_stride == 0)
    return Status::Error(StatusCode::kInvalidArgument,
                         "conv_state: state_dim_stride must not be 0 (channels overlap)");
  if (p.seqlen > 1 && p.out_seq_stride == 0)
    return Status::Error(StatusCode::kInvalidArgument,
                         "out: out_seq_stride must not be 0 (tokens overlap)");
  if (p.dim > 1 && p.out_dim_stride == 0)
    return Status::Error(StatusCode::kInvalidArgument,
                         "out: out_dim_stride must not be 0 (channels overlap)");
  return Status::Ok();
}

SSMKIT_NAMESPACE_END
