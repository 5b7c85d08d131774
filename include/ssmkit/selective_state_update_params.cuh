/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file selective_state_update_params.cuh
//! @brief Parameters of the decode step (selective state update) and their validation.
#pragma once

#include <cstdint>

#include "config.cuh"
#include "status.cuh"
#include "types.cuh"

SSMKIT_NAMESPACE_BEGIN

//! Largest state size the selective state update supports.
constexpr int64_t kMaxStateUpdateDState = 256;

//! Arguments of one decode step: @c ntokens tokens applied in order to a recurrent state that
//! is updated in place. Sizes and strides are int64 and count elements, not bytes; a stride
//! may be 0 to broadcast. The state's last dimension (dstate) is contiguous. Optional inputs
//! are null pointers.
//!
//! Mamba-2 form: state (slots, nheads, headdim, dstate); x, dt, z, out (batch, ntokens,
//! nheads, headdim); A (nheads, headdim, dstate), usually broadcast over headdim and dstate
//! (strides 0) so that each head has one decay; B, C (batch, ntokens, ngroups, dstate);
//! D, dt_bias (nheads, headdim). The Mamba-1 form is the same with nheads = dim, headdim = 1
//! and ngroups = 1. For every batch row b, token t, head h, channel p and state n:
//! @code
//!   dt  = dt[b,t,h,p] + dt_bias[h,p];  dt = dt_softplus ? softplus(dt) : dt
//!   s   = state[src,h,p,n] * exp(A[h,p,n] * dt) + B[b,t,g,n] * dt * x[b,t,h,p]   (g = h / (nheads / ngroups))
//!   y   = sum_n s * C[b,t,g,n] + D[h,p] * x[b,t,h,p]
//!   out = z ? y * silu(z[b,t,h,p]) : y
//! @endcode
//! The state stays in fp32 registers across the tokens of one call; it is rounded to
//! @c state_dtype where it is stored: after each token into @c intermediate_states (if given)
//! and after the last token into slot @c dst.
//!
//! State pool: row b reads slot src = state_batch_indices[b] (b when null) and writes slot
//! dst = dst_state_batch_indices[b] (src when null). src < 0 marks a padding row: its outputs
//! are 0 and no state is read or written. dst < 0 computes the outputs but keeps every slot.
//! Rows must write distinct slots, and no row may write a slot another row reads.
struct SelectiveStateUpdateParams {
  DType dtype = DType::kFloat32;        //!< Type of x, dt, z, B, C and out.
  DType state_dtype = DType::kFloat32;  //!< Type of state and intermediate_states.
  int64_t batch = 0;    //!< Batch rows (sequences decoded in this call).
  int64_t ntokens = 1;  //!< T: tokens per row, applied in order.
  int64_t nheads = 0;   //!< H (Mamba-1: the channel count D).
  int64_t headdim = 1;  //!< P (Mamba-1: 1).
  int64_t dstate = 0;   //!< N: state size, 1..256.
  int64_t ngroups = 1;  //!< G: groups of B and C; must divide nheads.

  void* state = nullptr;            //!< (slots, H, P, N) recurrent state, updated in place.
  int64_t state_batch_stride = 0;   //!< Stride between slots.
  int64_t state_head_stride = 0;    //!< Stride between heads.
  int64_t state_dim_stride = 0;     //!< Stride between channels of a head.

  const int32_t* state_batch_indices = nullptr;      //!< Optional (batch,) slot each row reads.
  const int32_t* dst_state_batch_indices = nullptr;  //!< Optional (batch,) slot each row writes.

  const void* x = nullptr;     //!< (batch, T, H, P) input.
  int64_t x_batch_stride = 0;  //!< Stride of x between rows.
  int64_t x_token_stride = 0;  //!< Stride of x between tokens.
  int64_t x_head_stride = 0;   //!< Stride of x between heads.
  int64_t x_dim_stride = 0;    //!< Stride of x between channels.

  const void* dt = nullptr;     //!< (batch, T, H, P) time steps before bias and softplus.
  int64_t dt_batch_stride = 0;  //!< Stride of dt between rows.
  int64_t dt_token_stride = 0;  //!< Stride of dt between tokens.
  int64_t dt_head_stride = 0;   //!< Stride of dt between heads.
  int64_t dt_dim_stride = 0;    //!< Stride of dt between channels (0: one dt per head).

  const float* A = nullptr;     //!< (H, P, N) float32 decay rates.
  int64_t A_head_stride = 0;    //!< Stride of A between heads.
  int64_t A_dim_stride = 0;     //!< Stride of A between channels.
  int64_t A_dstate_stride = 0;  //!< Stride of A between states.

  const void* B = nullptr;      //!< (batch, T, G, N) input matrix.
  int64_t B_batch_stride = 0;   //!< Stride of B between rows.
  int64_t B_token_stride = 0;   //!< Stride of B between tokens.
  int64_t B_group_stride = 0;   //!< Stride of B between groups.
  int64_t B_dstate_stride = 1;  //!< Stride of B between states.

  const void* C = nullptr;      //!< (batch, T, G, N) output matrix.
  int64_t C_batch_stride = 0;   //!< Stride of C between rows.
  int64_t C_token_stride = 0;   //!< Stride of C between tokens.
  int64_t C_group_stride = 0;   //!< Stride of C between groups.
  int64_t C_dstate_stride = 1;  //!< Stride of C between states.

  const float* D = nullptr;  //!< Optional (H, P) float32 skip connection.
  int64_t D_head_stride = 0;  //!< Stride of D between heads.
  int64_t D_dim_stride = 0;   //!< Stride of D between channels.

  const float* dt_bias = nullptr;  //!< Optional (H, P) float32 added to dt.
  int64_t dt_bias_head_stride = 0;  //!< Stride of dt_bias between heads.
  int64_t dt_bias_dim_stride = 0;   //!< Stride of dt_bias between channels.
  bool dt_softplus = false;         //!< Apply softplus to dt + dt_bias.

  const void* z = nullptr;     //!< Optional (batch, T, H, P) gate: out = y * silu(z).
  int64_t z_batch_stride = 0;  //!< Stride of z between rows.
  int64_t z_token_stride = 0;  //!< Stride of z between tokens.
  int64_t z_head_stride = 0;   //!< Stride of z between heads.
  int64_t z_dim_stride = 0;    //!< Stride of z between channels.

  void* out = nullptr;           //!< (batch, T, H, P) output in dtype.
  int64_t out_batch_stride = 0;  //!< Stride of out between rows.
  int64_t out_token_stride = 0;  //!< Stride of out between tokens.
  int64_t out_head_stride = 0;   //!< Stride of out between heads.
  int64_t out_dim_stride = 0;    //!< Stride of out between channels.

  //! Optional (batch, T, H, P, N) buffer in state_dtype that receives the state after every
  //! token (for speculative decoding), indexed by batch row, not by slot.
  void* intermediate_states = nullptr;
  int64_t inter_batch_stride = 0;  //!< Stride of intermediate_states between rows.
  int64_t inter_token_stride = 0;  //!< Stride of intermediate_states between tokens.
  int64_t inter_head_stride = 0;   //!< Stride of intermediate_states between heads.
  int64_t inter_dim_stride = 0;    //!< Stride of intermediate_states between channels.
};

//! Parameters for contiguous tensors of the given sizes (Mamba-2 layout; Mamba-1 with
//! nheads = dim, headdim = 1, ngroups = 1): every stride filled in, A, D and dt_bias full
//! (H, P, N) / (H, P) tensors, every pointer null and every option off.
//! @param dtype       type of x, dt, z, B, C and out
//! @param state_dtype type of the state
//! @param batch       batch rows (the state pool has one slot per row unless indices are set)
//! @param nheads      H
//! @param headdim     P
//! @param dstate      N
//! @param ngroups     G
//! @param ntokens     T
inline SelectiveStateUpdateParams make_selective_state_update_params(
    DType dtype, DType state_dtype, int64_t batch, int64_t nheads, int64_t headdim,
    int64_t dstate, int64_t ngroups = 1, int64_t ntokens = 1) noexcept {
  SelectiveStateUpdateParams p;
  p.dtype = dtype;
  p.state_dtype = state_dtype;
  p.batch = batch;
  p.ntokens = ntokens;
  p.nheads = nheads;
  p.headdim = headdim;
  p.dstate = dstate;
  p.ngroups = ngroups;
  p.state_dim_stride = dstate;
  p.state_head_stride = headdim * dstate;
  p.state_batch_stride = nheads * headdim * dstate;
  p.x_dim_stride = p.dt_dim_stride = p.z_dim_stride = p.out_dim_stride = 1;
  p.x_head_stride = p.dt_head_stride = p.z_head_stride = p.out_head_stride = headdim;
  p.x_token_stride = p.dt_token_stride = p.z_token_stride = p.out_token_stride = nheads * headdim;
  p.x_batch_stride = p.dt_batch_stride = p.z_batch_stride = p.out_batch_stride =
      ntokens * nheads * headdim;
  p.A_dstate_stride = 1;
  p.A_dim_stride = dstate;
  p.A_head_stride = headdim * dstate;
  p.B_dstate_stride = p.C_dstate_stride = 1;
  p.B_group_stride = p.C_group_stride = dstate;
  p.B_token_stride = p.C_token_stride = ngroups * dstate;
  p.B_batch_stride = p.C_batch_stride = ntokens * ngroups * dstate;
  p.D_dim_stride = p.dt_bias_dim_stride = 1;
  p.D_head_stride = p.dt_bias_head_stride = headdim;
  p.inter_dim_stride = dstate;
  p.inter_head_stride = headdim * dstate;
  p.inter_token_stride = nheads * headdim * dstate;
  p.inter_batch_stride = ntokens * nheads * headdim * dstate;
  return p;
}

namespace detail {

inline Status ssu_check_ptr(const void* p, const char* name, int align) noexcept {
  if (p == nullptr) return Status::Error(StatusCode::kInvalidArgument, "%s must not be null", name);
  if (!is_aligned(p, align))
    return Status::Error(StatusCode::kInvalidArgument,
                         "%s is not aligned to its element size (%d bytes)", name, align);
  return Status::Ok();
}

inline Status ssu_check_strides(const char* tensor, const char* const* names, const int64_t* strides,
                                int n) noexcept {
  for (int i = 0; i < n; ++i)
    if (strides[i] < 0)
      return Status::Error(StatusCode::kInvalidArgument, "%s_%s_stride must be >= 0, got %lld",
                           tensor, names[i], static_cast<long long>(strides[i]));
  return Status::Ok();
}

// A written tensor must not overlap itself: with its dimensions of size > 1 ordered by stride,
// every stride must exceed the extent of the dimensions inside it (a sufficient condition).
inline Status ssu_check_no_overlap(const char* name, const int64_t* sizes, const int64_t* strides,
                                   int n, int64_t inner) noexcept {
  int64_t sz[5], st[5];
  int m = 0;
  for (int i = 0; i < n && m < 5; ++i)
    if (sizes[i] > 1) { sz[m] = sizes[i]; st[m] = strides[i]; ++m; }
  for (int i = 1; i < m; ++i)  // insertion sort by stride
    for (int j = i; j > 0 && st[j] < st[j - 1]; --j) {
      const int64_t a = sz[j], b = st[j];
      sz[j] = sz[j - 1]; st[j] = st[j - 1]; sz[j - 1] = a; st[j - 1] = b;
    }
  int64_t extent = inner;
  for (int i = 0; i < m; ++i) {
    if (st[i] < extent)
      return Status::Error(StatusCode::kInvalidArgument,
                           "%s: a stride of %lld is smaller than the %lld elements inside it "
                           "(the tensor overlaps itself)",
                           name, static_cast<long long>(st[i]), static_cast<long long>(extent));
    extent = st[i] * (sz[i] - 1) + extent;
  }
  return Status::Ok();
}

}  // namespace detail

//! Checks @p p without touching the GPU. Returns kInvalidArgument with a message naming the
//! first offending argument, or Ok if a launcher can run it.
inline Status can_implement(const SelectiveStateUpdateParams& p) noexcept {
  using detail::ssu_check_ptr;
  using detail::ssu_check_strides;
  const int esize = dtype_size(p.dtype);
  const int ssize = dtype_size(p.state_dtype);
  if (esize == 0)
    return Status::Error(StatusCode::kInvalidArgument, "dtype: unknown element type %d",
                         static_cast<int>(p.dtype));
  if (ssize == 0)
    return Status::Error(StatusCode::kInvalidArgument, "state_dtype: unknown element type %d",
                         static_cast<int>(p.state_dtype));
  const struct { int64_t v; const char* name; } sizes[] = {
      {p.batch, "batch"}, {p.ntokens, "ntokens"}, {p.nheads, "nheads"}, {p.headdim, "headdim"}};
  for (const auto& s : sizes)
    if (s.v < 1)
      return Status::Error(StatusCode::kInvalidArgument, "%s must be >= 1, got %lld", s.name,
                           static_cast<long long>(s.v));
  if (p.dstate < 1 || p.dstate > kMaxStateUpdateDState)
    return Status::Error(StatusCode::kInvalidArgument, "dstate must be in [1, %lld], got %lld",
                         static_cast<long long>(kMaxStateUpdateDState), static_cast<long long>(p.dstate));
  if (p.ngroups < 1 || p.nheads % p.ngroups != 0)
    return Status::Error(StatusCode::kInvalidArgument,
                         "ngroups must be >= 1 and divide nheads (%lld), got %lld",
                         static_cast<long long>(p.nheads), static_cast<long long>(p.ngroups));
  if (p.nheads > 0x7fffffff / p.headdim)
    return Status::Error(StatusCode::kInvalidArgument, "nheads * headdim must be below 2^31, got %lld",
                         static_cast<long long>(p.nheads * p.headdim));
  if (p.batch > (int64_t{1} << 40) / (p.nheads * p.headdim))
    return Status::Error(StatusCode::kInvalidArgument, "batch * nheads * headdim is too large");

  SSMKIT_TRY(ssu_check_ptr(p.state, "state", ssize));
  SSMKIT_TRY(ssu_check_ptr(p.x, "x", esize));
  SSMKIT_TRY(ssu_check_ptr(p.dt, "dt", esize));
  SSMKIT_TRY(ssu_check_ptr(p.A, "A", 4));
  SSMKIT_TRY(ssu_check_ptr(p.B, "B", esize));
  SSMKIT_TRY(ssu_check_ptr(p.C, "C", esize));
  SSMKIT_TRY(ssu_check_ptr(p.out, "out", esize));
  if (p.D) SSMKIT_TRY(ssu_check_ptr(p.D, "D", 4));
  if (p.dt_bias) SSMKIT_TRY(ssu_check_ptr(p.dt_bias, "dt_bias", 4));
  if (p.z) SSMKIT_TRY(ssu_check_ptr(p.z, "z", esize));
  if (p.state_batch_indices) SSMKIT_TRY(ssu_check_ptr(p.state_batch_indices, "state_batch_indices", 4));
  if (p.dst_state_batch_indices)
    SSMKIT_TRY(ssu_check_ptr(p.dst_state_batch_indices, "dst_state_batch_indices", 4));
  if (p.intermediate_states)
    SSMKIT_TRY(ssu_check_ptr(p.intermediate_states, "intermediate_states", ssize));

  static const char* const k4[] = {"batch", "token", "head", "dim"};
  static const char* const k3[] = {"batch", "token", "group", "dstate"};
  static const char* const kA[] = {"head", "dim", "dstate"};
  static const char* const k2[] = {"head", "dim"};
  {
    const int64_t s[] = {p.state_batch_stride, p.state_head_stride, p.state_dim_stride};
    static const char* const n[] = {"batch", "head", "dim"};
    SSMKIT_TRY(ssu_check_strides("state", n, s, 3));
  }
  {
    const int64_t s[] = {p.x_batch_stride, p.x_token_stride, p.x_head_stride, p.x_dim_stride};
    SSMKIT_TRY(ssu_check_strides("x", k4, s, 4));
  }
  {
    const int64_t s[] = {p.dt_batch_stride, p.dt_token_stride, p.dt_head_stride, p.dt_dim_stride};
    SSMKIT_TRY(ssu_check_strides("dt", k4, s, 4));
  }
  {
    const int64_t s[] = {p.A_head_stride, p.A_dim_stride, p.A_dstate_stride};
    SSMKIT_TRY(ssu_check_strides("A", kA, s, 3));
  }
  {
    const int64_t s[] = {p.B_batch_stride, p.B_token_stride, p.B_group_stride, p.B_dstate_stride};
    SSMKIT_TRY(ssu_check_strides("B", k3, s, 4));
  }
  {
    const int64_t s[] = {p.C_batch_stride, p.C_token_stride, p.C_group_stride, p.C_dstate_stride};
    SSMKIT_TRY(ssu_check_strides("C", k3, s, 4));
  }
  if (p.D) {
    const int64_t s[] = {p.D_head_stride, p.D_dim_stride};
    SSMKIT_TRY(ssu_check_strides("D", k2, s, 2));
  }
  if (p.dt_bias) {
    const int64_t s[] = {p.dt_bias_head_stride, p.dt_bias_dim_stride};
    SSMKIT_TRY(ssu_check_strides("dt_bias", k2, s, 2));
  }
  if (p.z) {
    const int64_t s[] = {p.z_batch_stride, p.z_token_stride, p.z_head_stride, p.z_dim_stride};
    SSMKIT_TRY(ssu_check_strides("z", k4, s, 4));
  }
  {
    const int64_t s[] = {p.out_batch_stride, p.out_token_stride, p.out_head_stride, p.out_dim_stride};
    SSMKIT_TRY(ssu_check_strides("out", k4, s, 4));
    const int64_t n[] = {p.batch, p.ntokens, p.nheads, p.headdim};
    SSMKIT_TRY(detail::ssu_check_no_overlap("out", n, s, 4, 1));
  }
  {
    // Without indices row b owns slot b; with them the slots are the caller's to keep apart.
    const bool pool = p.state_batch_indices || p.dst_state_batch_indices;
    const int64_t s[] = {p.state_batch_stride, p.state_head_stride, p.state_dim_stride};
    const int64_t n[] = {pool ? 1 : p.batch, p.nheads, p.headdim};
    SSMKIT_TRY(detail::ssu_check_no_overlap("state", n, s, 3, p.dstate));
  }
  if (p.intermediate_states) {
    const int64_t s[] = {p.inter_batch_stride, p.inter_token_stride, p.inter_head_stride,
                         p.inter_dim_stride};
    static const char* const n4[] = {"batch", "token", "head", "dim"};
    SSMKIT_TRY(ssu_check_strides("inter", n4, s, 4));
    const int64_t n[] = {p.batch, p.ntokens, p.nheads, p.headdim};
    SSMKIT_TRY(detail::ssu_check_no_overlap("intermediate_states", n, s, 4, p.dstate));
  }
  return Status::Ok();
}

SSMKIT_NAMESPACE_END
