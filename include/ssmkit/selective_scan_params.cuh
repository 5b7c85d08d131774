/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file selective_scan_params.cuh
//! @brief Parameters of the Mamba-1 selective scan and their validation (no GPU work).
#pragma once

#include <cstdint>

#include "config.cuh"
#include "status.cuh"
#include "types.cuh"

SSMKIT_NAMESPACE_BEGIN

//! Largest state size the selective scan supports.
constexpr int64_t kMaxScanDState = 256;

//! Widest causal conv1d the scan can fuse (Mamba-1 blocks use 4).
constexpr int64_t kMaxFusedConvWidth = 4;

//! The depthwise causal conv1d that the scan can run on its input in the same kernel (the x
//! branch of a Mamba-1 block): with @c weight set, SelectiveScanParams::u holds the conv's
//! input x and the scan reads
//! @code
//!   u[b,d,t] = act(bias[d] + sum_k weight[d,k] * x[b,d,t - (width-1) + k]),  act = silu or none
//! @endcode
//! where x before step 0 comes from @c initial_states (or is zero). The conv's output is never
//! written unless @c out is set. Sizes and strides count elements; the taps of a weight row
//! and the W-1 entries of a state row are contiguous.
struct ScanConv1dParams {
  const void* weight = nullptr;          //!< (dim, width) in weight_dtype; null: no conv.
  DType weight_dtype = DType::kFloat32;  //!< Type of weight and bias: float32 or the scan's dtype.
  int64_t width = 4;                     //!< W, 1..kMaxFusedConvWidth.
  int64_t weight_dim_stride = 4;         //!< Stride of weight between channels.
  const void* bias = nullptr;            //!< Optional (dim,) bias in weight_dtype.
  bool silu = true;                      //!< Apply silu to the conv's output.

  const void* initial_states = nullptr;     //!< Optional (batch, dim, W-1) inputs before step 0, in dtype.
  int64_t initial_states_batch_stride = 0;  //!< Stride of initial_states between batches.
  int64_t initial_states_dim_stride = 0;    //!< Stride of initial_states between channels.
  void* final_states = nullptr;             //!< Optional (batch, dim, W-1) last W-1 inputs, in dtype.
  int64_t final_states_batch_stride = 0;    //!< Stride of final_states between batches.
  int64_t final_states_dim_stride = 0;      //!< Stride of final_states between channels.

  void* out = nullptr;          //!< Optional (batch, dim, seqlen) conv output u, in dtype (for a backward pass).
  int64_t out_batch_stride = 0;  //!< Stride of out between batches.
  int64_t out_dim_stride = 0;    //!< Stride of out between channels.
};

//! Arguments of one selective-scan forward call. Sizes and strides are int64 and count
//! elements, not bytes. The last dimension (the sequence, length @c seqlen) of @c u, @c delta,
//! @c z, @c out and of variable @c B / @c C is contiguous. Optional inputs are null pointers.
//!
//! Recurrence, for every batch b, channel d and state n:
//! @code
//!   dt      = delta[b,d,t] + delta_bias[d];  dt = delta_softplus ? softplus(dt) : dt
//!   h[n]    = exp(dt * A[d,n]) * h[n] + dt * B[n,t] * u[b,d,t]     (h starts at h0 or 0)
//!   y       = sum_n C[n,t] * h[n] + D[d] * u[b,d,t]
//!   out     = z ? y * silu(z[b,d,t]) : y
//! @endcode
//! B and C are either constant, (dim, dstate) float, or variable, (batch, n_groups, dstate,
//! seqlen) in @c dtype, where channel d reads group d / (dim / n_groups).
struct SelectiveScanParams {
  DType dtype = DType::kFloat32;  //!< Type of u, delta, z, out and of variable B and C.
  int64_t batch = 0;              //!< B: batch size.
  int64_t dim = 0;                //!< D: number of channels.
  int64_t seqlen = 0;             //!< L: sequence length.
  int64_t dstate = 0;             //!< N: state size, 1..256.
  int64_t n_groups = 1;           //!< G: groups of variable B/C; must divide dim.

  const void* u = nullptr;     //!< (batch, dim, seqlen) input.
  int64_t u_batch_stride = 0;  //!< Stride of u between batches.
  int64_t u_dim_stride = 0;    //!< Stride of u between channels.

  const void* delta = nullptr;     //!< (batch, dim, seqlen) time steps before bias/softplus.
  int64_t delta_batch_stride = 0;  //!< Stride of delta between batches.
  int64_t delta_dim_stride = 0;    //!< Stride of delta between channels.

  const float* A = nullptr;     //!< (dim, dstate) float32 decay rates (negative for a stable scan).
  int64_t A_dim_stride = 0;     //!< Stride of A between channels.
  int64_t A_dstate_stride = 1;  //!< Stride of A between states.

  const void* B = nullptr;      //!< Input matrix: constant (dim, dstate) float32 or variable.
  bool B_variable = true;       //!< True: B is (batch, n_groups, dstate, seqlen) in dtype.
  int64_t B_batch_stride = 0;   //!< Variable B: stride between batches.
  int64_t B_group_stride = 0;   //!< Variable B: stride between groups.
  int64_t B_dim_stride = 0;     //!< Constant B: stride between channels.
  int64_t B_dstate_stride = 0;  //!< Stride between states (both forms).

  const void* C = nullptr;      //!< Output matrix, same two forms as B.
  bool C_variable = true;       //!< True: C is (batch, n_groups, dstate, seqlen) in dtype.
  int64_t C_batch_stride = 0;   //!< Variable C: stride between batches.
  int64_t C_group_stride = 0;   //!< Variable C: stride between groups.
  int64_t C_dim_stride = 0;     //!< Constant C: stride between channels.
  int64_t C_dstate_stride = 0;  //!< Stride between states (both forms).

  const float* D = nullptr;           //!< Optional (dim,) float32 skip connection.
  const float* delta_bias = nullptr;  //!< Optional (dim,) float32 added to delta.
  bool delta_softplus = false;        //!< Apply softplus to delta + delta_bias.

  const void* z = nullptr;     //!< Optional (batch, dim, seqlen) gate: out = y * silu(z).
  int64_t z_batch_stride = 0;  //!< Stride of z between batches.
  int64_t z_dim_stride = 0;    //!< Stride of z between channels.

  const float* h0 = nullptr;    //!< Optional (batch, dim, dstate) float32 initial state.
  int64_t h0_batch_stride = 0;  //!< Stride of h0 between batches.
  int64_t h0_dim_stride = 0;    //!< Stride of h0 between channels (states are contiguous).

  void* out = nullptr;          //!< (batch, dim, seqlen) output in dtype.
  int64_t out_batch_stride = 0;  //!< Stride of out between batches.
  int64_t out_dim_stride = 0;    //!< Stride of out between channels.

  void* workspace = nullptr;   //!< Optional device scratch (see selective_scan_workspace_size()).
  size_t workspace_bytes = 0;  //!< Bytes at workspace.

  float* last_state = nullptr;          //!< Optional (batch, dim, dstate) float32 final state.
  int64_t last_state_batch_stride = 0;  //!< Stride of last_state between batches.
  int64_t last_state_dim_stride = 0;    //!< Stride of last_state between channels.

  //! Optional causal conv1d fused in front of the scan (conv.weight null: none).
  ScanConv1dParams conv;
};

//! Parameters for contiguous tensors of the given sizes: all strides filled in, every pointer
//! null and every option off. Set the pointers (and options) afterwards.
//! @param dtype      type of u, delta, z, out and of variable B/C
//! @param batch      B
//! @param dim        D
//! @param seqlen     L
//! @param dstate     N
//! @param n_groups   G (variable B/C)
//! @param B_variable B is (batch, G, N, L) rather than (D, N)
//! @param C_variable C is (batch, G, N, L) rather than (D, N)
inline SelectiveScanParams make_selective_scan_params(DType dtype, int64_t batch, int64_t dim,
                                                      int64_t seqlen, int64_t dstate,
                                                      int64_t n_groups = 1, bool B_variable = true,
                                                      bool C_variable = true) noexcept {
  SelectiveScanParams p;
  p.dtype = dtype;
  p.batch = batch;
  p.dim = dim;
  p.seqlen = seqlen;
  p.dstate = dstate;
  p.n_groups = n_groups;
  p.u_dim_stride = p.delta_dim_stride = p.z_dim_stride = p.out_dim_stride = seqlen;
  p.u_batch_stride = p.delta_batch_stride = p.z_batch_stride = p.out_batch_stride = dim * seqlen;
  p.A_dim_stride = dstate;
  p.A_dstate_stride = 1;
  p.B_variable = B_variable;
  p.C_variable = C_variable;
  p.B_batch_stride = p.C_batch_stride = n_groups * dstate * seqlen;
  p.B_group_stride = p.C_group_stride = dstate * seqlen;
  p.B_dim_stride = p.C_dim_stride = dstate;
  p.B_dstate_stride = B_variable ? seqlen : 1;
  p.C_dstate_stride = C_variable ? seqlen : 1;
  p.h0_dim_stride = p.last_state_dim_stride = dstate;
  p.h0_batch_stride = p.last_state_batch_stride = dim * dstate;
  p.conv.weight_dim_stride = p.conv.width;
  p.conv.initial_states_dim_stride = p.conv.final_states_dim_stride = p.conv.width - 1;
  p.conv.initial_states_batch_stride = p.conv.final_states_batch_stride = dim * (p.conv.width - 1);
  p.conv.out_dim_stride = seqlen;
  p.conv.out_batch_stride = dim * seqlen;
  return p;
}

//! Turns on the fused causal conv1d of @p p for contiguous tensors of width @p width: sets
//! conv.width and every conv stride (weight (dim, width), states (batch, dim, width - 1), out
//! like u) and conv.weight_dtype; the pointers stay as they are. Set conv.weight (and the
//! optional conv pointers) afterwards.
inline void set_contiguous_scan_conv(SelectiveScanParams& p, int64_t width,
                                     DType weight_dtype = DType::kFloat32) noexcept {
  p.conv.width = width;
  p.conv.weight_dtype = weight_dtype;
  p.conv.weight_dim_stride = width;
  p.conv.initial_states_dim_stride = p.conv.final_states_dim_stride = width - 1;
  p.conv.initial_states_batch_stride = p.conv.final_states_batch_stride = p.dim * (width - 1);
  p.conv.out_dim_stride = p.seqlen;
  p.conv.out_batch_stride = p.dim * p.seqlen;
}

namespace detail {

inline Status check_ptr(const void* p, const char* name, int align) noexcept {
  if (p == nullptr) return Status::Error(StatusCode::kInvalidArgument, "%s must not be null", name);
  if (!is_aligned(p, align))
    return Status::Error(StatusCode::kInvalidArgument,
                         "%s is not aligned to its element size (%d bytes)", name, align);
  return Status::Ok();
}

inline Status check_opt_ptr(const void* p, const char* name, int align) noexcept {
  return p == nullptr ? Status::Ok() : check_ptr(p, name, align);
}

inline Status check_nonneg(int64_t v, const char* name) noexcept {
  if (v < 0) return Status::Error(StatusCode::kInvalidArgument, "%s must be >= 0, got %lld", name,
                                  static_cast<long long>(v));
  return Status::Ok();
}

// An output (batch, dim, inner) with contiguous inner dimension must not overlap itself.
inline Status check_output_layout(int64_t batch_stride, int64_t dim_stride, int64_t batch,
                                  int64_t dim, int64_t inner, const char* name) noexcept {
  if (dim > 1 && dim_stride < inner)
    return Status::Error(StatusCode::kInvalidArgument,
                         "%s: channel stride %lld is smaller than the row length %lld (rows overlap)",
                         name, static_cast<long long>(dim_stride), static_cast<long long>(inner));
  if (batch > 1 && batch_stride < (dim - 1) * dim_stride + inner)
    return Status::Error(StatusCode::kInvalidArgument,
                         "%s: batch stride %lld is too small for %lld channels of stride %lld "
                         "(batches overlap)",
                         name, static_cast<long long>(batch_stride), static_cast<long long>(dim),
                         static_cast<long long>(dim_stride));
  return Status::Ok();
}

// The fused conv's arguments (SelectiveScanParams::conv).
inline Status check_scan_conv(const SelectiveScanParams& p, int esize) noexcept {
  const ScanConv1dParams& cv = p.conv;
  if (cv.weight == nullptr) {
    if (cv.bias || cv.initial_states || cv.final_states || cv.out)
      return Status::Error(StatusCode::kInvalidArgument,
                           "conv: bias, initial_states, final_states and out need conv.weight");
    return Status::Ok();
  }
  if (cv.width < 1 || cv.width > kMaxFusedConvWidth)
    return Status::Error(StatusCode::kInvalidArgument,
                         "conv.width must be in [1, %lld] for the fused conv, got %lld (run "
                         "causal_conv1d_fwd, then the scan)",
                         static_cast<long long>(kMaxFusedConvWidth), static_cast<long long>(cv.width));
  if (cv.weight_dtype != DType::kFloat32 && cv.weight_dtype != p.dtype)
    return Status::Error(StatusCode::kInvalidArgument,
                         "conv.weight_dtype must be float32 or the scan's dtype (%s), got %s",
                         to_string(p.dtype), to_string(cv.weight_dtype));
  const int wsize = dtype_size(cv.weight_dtype);
  SSMKIT_TRY(check_ptr(cv.weight, "conv.weight", wsize));
  SSMKIT_TRY(check_opt_ptr(cv.bias, "conv.bias", wsize));
  SSMKIT_TRY(check_opt_ptr(cv.initial_states, "conv.initial_states", esize));
  SSMKIT_TRY(check_opt_ptr(cv.final_states, "conv.final_states", esize));
  SSMKIT_TRY(check_opt_ptr(cv.out, "conv.out", esize));
  if (cv.weight_dim_stride < cv.width)
    return Status::Error(StatusCode::kInvalidArgument,
                         "conv.weight_dim_stride %lld is smaller than conv.width %lld",
                         static_cast<long long>(cv.weight_dim_stride), static_cast<long long>(cv.width));
  const int64_t states = cv.width - 1;
  if (cv.initial_states && states > 0) {
    SSMKIT_TRY(check_nonneg(cv.initial_states_batch_stride, "conv.initial_states_batch_stride"));
    SSMKIT_TRY(check_nonneg(cv.initial_states_dim_stride, "conv.initial_states_dim_stride"));
  }
  if (cv.final_states && states > 0) {
    SSMKIT_TRY(check_nonneg(cv.final_states_batch_stride, "conv.final_states_batch_stride"));
    SSMKIT_TRY(check_nonneg(cv.final_states_dim_stride, "conv.final_states_dim_stride"));
    SSMKIT_TRY(check_output_layout(cv.final_states_batch_stride, cv.final_states_dim_stride, p.batch,
                                   p.dim, states, "conv.final_states"));
    if (cv.final_states == cv.initial_states)
      return Status::Error(StatusCode::kInvalidArgument,
                           "conv.final_states must not be conv.initial_states (blocks of one call "
                           "read the initial states while others write the final ones)");
  }
  if (cv.out) {
    SSMKIT_TRY(check_nonneg(cv.out_batch_stride, "conv.out_batch_stride"));
    SSMKIT_TRY(check_nonneg(cv.out_dim_stride, "conv.out_dim_stride"));
    SSMKIT_TRY(check_output_layout(cv.out_batch_stride, cv.out_dim_stride, p.batch, p.dim, p.seqlen,
                                   "conv.out"));
    if (cv.out == p.u || cv.out == p.out)
      return Status::Error(StatusCode::kInvalidArgument,
                           "conv.out must not be u or out (the conv's input is read after its "
                           "output is written)");
  }
  return Status::Ok();
}

}  // namespace detail

//! Checks @p p without touching the GPU. Returns kInvalidArgument with a message naming the
//! first offending argument, or Ok if a launcher can run it.
inline Status can_implement(const SelectiveScanParams& p) noexcept {
  using detail::check_nonneg;
  using detail::check_opt_ptr;
  using detail::check_ptr;
  const int esize = dtype_size(p.dtype);
  if (esize == 0)
    return Status::Error(StatusCode::kInvalidArgument, "dtype: unknown element type %d",
                         static_cast<int>(p.dtype));
  if (p.batch < 1) return Status::Error(StatusCode::kInvalidArgument, "batch must be >= 1, got %lld", static_cast<long long>(p.batch));
  if (p.dim < 1) return Status::Error(StatusCode::kInvalidArgument, "dim must be >= 1, got %lld", static_cast<long long>(p.dim));
  if (p.seqlen < 1) return Status::Error(StatusCode::kInvalidArgument, "seqlen must be >= 1, got %lld", static_cast<long long>(p.seqlen));
  if (p.dstate < 1 || p.dstate > kMaxScanDState)
    return Status::Error(StatusCode::kInvalidArgument, "dstate must be in [1, %lld], got %lld",
                         static_cast<long long>(kMaxScanDState), static_cast<long long>(p.dstate));
  if (p.n_groups < 1 || p.dim % p.n_groups != 0)
    return Status::Error(StatusCode::kInvalidArgument,
                         "n_groups must be >= 1 and divide dim (%lld), got %lld",
                         static_cast<long long>(p.dim), static_cast<long long>(p.n_groups));
  if (p.batch > (int64_t{1} << 31) / 2)
    return Status::Error(StatusCode::kInvalidArgument, "batch %lld is too large", static_cast<long long>(p.batch));

  SSMKIT_TRY(check_ptr(p.u, "u", esize));
  SSMKIT_TRY(check_ptr(p.delta, "delta", esize));
  SSMKIT_TRY(check_ptr(p.A, "A", 4));
  SSMKIT_TRY(check_ptr(p.B, "B", p.B_variable ? esize : 4));
  SSMKIT_TRY(check_ptr(p.C, "C", p.C_variable ? esize : 4));
  SSMKIT_TRY(check_ptr(p.out, "out", esize));
  SSMKIT_TRY(check_opt_ptr(p.D, "D", 4));
  SSMKIT_TRY(check_opt_ptr(p.delta_bias, "delta_bias", 4));
  SSMKIT_TRY(check_opt_ptr(p.z, "z", esize));
  SSMKIT_TRY(check_opt_ptr(p.h0, "h0", 4));
  SSMKIT_TRY(check_opt_ptr(p.last_state, "last_state", 4));

  SSMKIT_TRY(check_nonneg(p.u_batch_stride, "u_batch_stride"));
  SSMKIT_TRY(check_nonneg(p.u_dim_stride, "u_dim_stride"));
  SSMKIT_TRY(check_nonneg(p.delta_batch_stride, "delta_batch_stride"));
  SSMKIT_TRY(check_nonneg(p.delta_dim_stride, "delta_dim_stride"));
  SSMKIT_TRY(check_nonneg(p.A_dim_stride, "A_dim_stride"));
  SSMKIT_TRY(check_nonneg(p.A_dstate_stride, "A_dstate_stride"));
  SSMKIT_TRY(check_nonneg(p.B_dstate_stride, "B_dstate_stride"));
  SSMKIT_TRY(check_nonneg(p.C_dstate_stride, "C_dstate_stride"));
  if (p.B_variable) {
    SSMKIT_TRY(check_nonneg(p.B_batch_stride, "B_batch_stride"));
    SSMKIT_TRY(check_nonneg(p.B_group_stride, "B_group_stride"));
  } else {
    SSMKIT_TRY(check_nonneg(p.B_dim_stride, "B_dim_stride"));
  }
  if (p.C_variable) {
    SSMKIT_TRY(check_nonneg(p.C_batch_stride, "C_batch_stride"));
    SSMKIT_TRY(check_nonneg(p.C_group_stride, "C_group_stride"));
  } else {
    SSMKIT_TRY(check_nonneg(p.C_dim_stride, "C_dim_stride"));
  }
  if (p.z) {
    SSMKIT_TRY(check_nonneg(p.z_batch_stride, "z_batch_stride"));
    SSMKIT_TRY(check_nonneg(p.z_dim_stride, "z_dim_stride"));
  }
  if (p.h0) {
    SSMKIT_TRY(check_nonneg(p.h0_batch_stride, "h0_batch_stride"));
    SSMKIT_TRY(check_nonneg(p.h0_dim_stride, "h0_dim_stride"));
  }
  SSMKIT_TRY(check_nonneg(p.out_batch_stride, "out_batch_stride"));
  SSMKIT_TRY(check_nonneg(p.out_dim_stride, "out_dim_stride"));
  if (p.last_state) {
    SSMKIT_TRY(check_nonneg(p.last_state_batch_stride, "last_state_batch_stride"));
    SSMKIT_TRY(check_nonneg(p.last_state_dim_stride, "last_state_dim_stride"));
  }
  SSMKIT_TRY(detail::check_output_layout(p.out_batch_stride, p.out_dim_stride, p.batch, p.dim,
                                         p.seqlen, "out"));
  if (p.last_state)
    SSMKIT_TRY(detail::check_output_layout(p.last_state_batch_stride, p.last_state_dim_stride,
                                           p.batch, p.dim, p.dstate, "last_state"));
  return detail::check_scan_conv(p, esize);
}

SSMKIT_NAMESPACE_END
