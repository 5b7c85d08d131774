/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// The decode-step host reference (its defining properties) and every rejection of
// can_implement() for SelectiveStateUpdateParams, with the argument it names.
#include <catch2/catch.hpp>

#include <ssmkit/reference/selective_state_update.cuh>
#include <ssmkit/selective_state_update.cuh>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>

#include "../state_update_problem.cuh"

using namespace ssmkit_test;
using ssmkit::DType;
using ssmkit::SelectiveStateUpdateParams;
using ssmkit::StatusCode;

TEST_CASE("state update reference: dt = 0 keeps the state and reads it out", "[host][decode]") {
  for (bool m2 : {false, true}) {
    SsuCase c = m2 ? SsuCase{} : SsuCase::mamba1(2, 6, 16);
    c.dtype = DType::kFloat32;
    c.z = false;
    c.bias = false;
    c.softplus = false;
    INFO(c.name());
    SsuProblem pb(c, false);
    for (size_t i = 0; i < pb.dt.size(); ++i) pb.dt.set(i, 0.f);
    std::vector<double> state_ref;
    const std::vector<double> out = pb.reference(&state_ref);
    const auto& p = pb.host;
    for (int64_t b = 0; b < c.batch; ++b)
      for (int64_t h = 0; h < c.nheads; ++h)
        for (int64_t q = 0; q < c.headdim; ++q) {
          const int64_t g = h / (c.nheads / c.ngroups);
          double y = 0;
          for (int64_t n = 0; n < c.dstate; ++n) {
            const size_t si = size_t(((b * c.nheads + h) * c.headdim + q) * c.dstate + n);
            CHECK(pb.ref_state.at(si) == pb.state0.at(si));
            CHECK(state_ref[si] == pb.state0.at(si));
            y += pb.state0.at(si) * pb.C.at(size_t(b * p.C_batch_stride + g * p.C_group_stride + n));
          }
          const double Dv = p.D[h * p.D_head_stride + q * p.D_dim_stride];
          y += Dv * pb.x.at(size_t(b * p.x_batch_stride + h * p.x_head_stride + q));
          CHECK(out[size_t((b * c.nheads + h) * c.headdim + q)] == Approx(y).epsilon(1e-12).margin(1e-12));
        }
  }
}

TEST_CASE("state update reference: padding rows output 0 and keep every slot", "[host][decode]") {
  SsuCase c;
  c.batch = 6;
  c.pool = true;
  c.ntokens = 2;
  SsuProblem pb(c, false);
  const std::vector<double> out = pb.reference();
  const int64_t row = c.nheads * c.headdim * c.dstate;
  std::vector<bool> read(size_t(pb.slots), false);
  for (int64_t b = 0; b < c.batch; ++b) {
    if (pb.src_idx[b] >= 0) { read[size_t(pb.src_idx[b])] = true; continue; }
    for (int64_t t = 0; t < c.ntokens; ++t)
      for (int64_t i = 0; i < c.nheads * c.headdim; ++i)
        CHECK(out[size_t((b * c.ntokens + t) * c.nheads * c.headdim + i)] == 0.0);
  }
  size_t changed = 0;
  for (int64_t s = 0; s < pb.slots; ++s) {
    const bool same = std::memcmp(pb.ref_state.bytes.data() + s * row * 4, pb.state0.bytes.data() + s * row * 4,
                                  size_t(row) * 4) == 0;
    if (!read[size_t(s)]) CHECK(same);  // padding rows' and unused slots stay as they were
    else changed += same ? 0 : 1;
  }
  CHECK(changed == 4);  // rows 0, 2, 3, 5 update their slots
}

TEST_CASE("state update reference: T tokens equal T one-token calls", "[host][decode]") {
  for (bool m2 : {false, true}) {
    SsuCase c = m2 ? SsuCase{} : SsuCase::mamba1(2, 5, 16);
    c.dtype = DType::kFloat32;
    c.state_dtype = DType::kFloat32;
    c.ntokens = 4;
    c.inter = true;
    c.pool = true;
    c.batch = 4;
    INFO(c.name());
    SsuProblem whole(c, false);
    std::vector<double> state_ref;
    const std::vector<double> out_whole = whole.reference(&state_ref);

    SsuProblem steps(c, false);  // same seed: same inputs
    const int64_t HP = c.nheads * c.headdim;
    for (int64_t t = 0; t < c.ntokens; ++t) {
      SelectiveStateUpdateParams p = steps.host;
      auto adv = [&](const void* ptr, int64_t stride, DType dt) {
        return ptr ? static_cast<const void*>(static_cast<const unsigned char*>(ptr) + t * stride * ssmkit::dtype_size(dt)) : nullptr;
      };
      p.ntokens = 1;
      p.x = adv(p.x, p.x_token_stride, c.dtype);
      p.dt = adv(p.dt, p.dt_token_stride, c.dtype);
      p.z = adv(p.z, p.z_token_stride, c.dtype);
      p.B = adv(p.B, p.B_token_stride, c.dtype);
      p.C = adv(p.C, p.C_token_stride, c.dtype);
      p.intermediate_states = const_cast<void*>(adv(p.intermediate_states, p.inter_token_stride, c.state_dtype));
      std::vector<double> o(size_t(c.batch * HP));
      REQUIRE(ssmkit::reference::selective_state_update(p, o.data()).ok());
      for (int64_t b = 0; b < c.batch; ++b)
        for (int64_t i = 0; i < HP; ++i)
          CHECK(o[size_t(b * HP + i)] ==
                Approx(out_whole[size_t((b * c.ntokens + t) * HP + i)]).epsilon(1e-5).margin(1e-6));
    }
    for (size_t i = 0; i < whole.ref_state.size(); ++i)
      CHECK(steps.ref_state.at(i) == Approx(whole.ref_state.at(i)).epsilon(1e-5).margin(1e-6));
    // Intermediate states: written for every token of the non-padding rows; the last token's
    // equals the final state.
    const int64_t N = c.dstate;
    for (int64_t b = 0; b < c.batch; ++b) {
      for (int64_t t = 0; t < c.ntokens; ++t)
        for (int64_t i = 0; i < HP * N; ++i) {
          const double w = whole.ref_inter.at(size_t((b * c.ntokens + t) * HP * N + i));
          if (whole.src_idx[b] < 0) { CHECK(std::isnan(w)); continue; }
          CHECK(steps.ref_inter.at(size_t((b * c.ntokens + t) * HP * N + i)) == Approx(w).epsilon(1e-5).margin(1e-6));
          if (t == c.ntokens - 1) CHECK(w == Approx(state_ref[size_t(b * HP * N + i)]).epsilon(1e-6));
        }
    }
  }
}

TEST_CASE("state update reference: separate destination slots keep the source slots", "[host][decode]") {
  SsuCase c;
  c.batch = 4;
  c.dst = true;
  SsuProblem pb(c, false);
  std::vector<double> state_ref;
  pb.reference(&state_ref);
  const int64_t row = c.nheads * c.headdim * c.dstate;
  for (int64_t b = 0; b < c.batch; ++b) {
    const int64_t s = pb.src_idx[b], d = pb.dst_idx[b];
    CHECK(std::memcmp(pb.ref_state.bytes.data() + s * row * 4, pb.state0.bytes.data() + s * row * 4, size_t(row) * 4) == 0);
    if (d < 0) continue;
    for (int64_t i = 0; i < row; ++i)
      CHECK(pb.ref_state.at(size_t(d * row + i)) == Approx(state_ref[size_t(b * row + i)]).epsilon(1e-6));
  }
}

namespace {

// Valid arguments pointing into a (never dereferenced) aligned host arena.
struct ValidSsu {
  alignas(16) static inline unsigned char arena[1 << 12];
  SelectiveStateUpdateParams p;
  explicit ValidSsu(DType t = DType::kBFloat16, DType ts = DType::kFloat32) {
    p = ssmkit::make_selective_state_update_params(t, ts, 2, 4, 8, 16, 2, 2);
    p.state = arena; p.x = arena + 16; p.dt = arena + 32; p.A = reinterpret_cast<const float*>(arena + 48);
    p.B = arena + 64; p.C = arena + 80; p.out = arena + 96;
  }
};

void expect_rejected(const std::function<void(SelectiveStateUpdateParams&)>& mutate, const std::string& names) {
  ValidSsu v;
  mutate(v.p);
  const ssmkit::Status st = ssmkit::can_implement(v.p);
  INFO("expected a rejection naming '" << names << "', got: " << st.message());
  CHECK(st.code() == StatusCode::kInvalidArgument);
  CHECK(std::string(st.message()).find(names) != std::string::npos);
  // Launchers refuse the same arguments before touching the GPU.
  CHECK(ssmkit::selective_state_update(v.p, nullptr).code() == StatusCode::kInvalidArgument);
}

const void* odd(const void* p) { return static_cast<const unsigned char*>(p) + 1; }

}  // namespace

TEST_CASE("state update can_implement accepts valid arguments", "[host][decode][can_implement]") {
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16})
    for (DType ts : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
      ValidSsu v(t, ts);
      CHECK(ssmkit::can_implement(v.p).ok());
    }
  ValidSsu v;
  v.p.A_dim_stride = v.p.A_dstate_stride = v.p.dt_dim_stride = 0;  // Mamba-2 broadcast
  v.p.dstate = 1;
  CHECK(ssmkit::can_implement(v.p).ok());
  const auto big = ssmkit::make_selective_state_update_params(DType::kBFloat16, DType::kFloat32, 2, 4, 8, 256, 2, 2);
  v.p.dstate = 256;
  v.p.state_batch_stride = big.state_batch_stride;
  v.p.state_head_stride = big.state_head_stride;
  v.p.state_dim_stride = big.state_dim_stride;
  CHECK(ssmkit::can_implement(v.p).ok());
  v.p.state_batch_indices = reinterpret_cast<const int32_t*>(ValidSsu::arena + 112);
  v.p.state_batch_stride = 0;  // a pool: slots are the caller's to keep apart
  CHECK(ssmkit::can_implement(v.p).ok());
}

TEST_CASE("state update can_implement rejects bad sizes", "[host][decode][can_implement]") {
  expect_rejected([](auto& p) { p.dtype = static_cast<DType>(7); }, "dtype");
  expect_rejected([](auto& p) { p.state_dtype = static_cast<DType>(9); }, "state_dtype");
  expect_rejected([](auto& p) { p.batch = 0; }, "batch");
  expect_rejected([](auto& p) { p.ntokens = 0; }, "ntokens");
  expect_rejected([](auto& p) { p.nheads = 0; }, "nheads");
  expect_rejected([](auto& p) { p.headdim = -1; }, "headdim");
  expect_rejected([](auto& p) { p.nheads = int64_t{1} << 20; p.headdim = int64_t{1} << 12; }, "nheads * headdim");
  expect_rejected([](auto& p) { p.dstate = 0; }, "dstate");
  expect_rejected([](auto& p) { p.dstate = 257; }, "dstate");
  expect_rejected([](auto& p) { p.ngroups = 3; }, "ngroups");
  expect_rejected([](auto& p) { p.ngroups = 0; }, "ngroups");
}

TEST_CASE("state update can_implement rejects null and misaligned pointers", "[host][decode][can_implement]") {
  expect_rejected([](auto& p) { p.state = nullptr; }, "state must not be null");
  expect_rejected([](auto& p) { p.x = nullptr; }, "x must not be null");
  expect_rejected([](auto& p) { p.dt = nullptr; }, "dt must not be null");
  expect_rejected([](auto& p) { p.A = nullptr; }, "A must not be null");
  expect_rejected([](auto& p) { p.B = nullptr; }, "B must not be null");
  expect_rejected([](auto& p) { p.C = nullptr; }, "C must not be null");
  expect_rejected([](auto& p) { p.out = nullptr; }, "out must not be null");
  expect_rejected([](auto& p) { p.state = const_cast<void*>(odd(p.state)); }, "state is not aligned");
  expect_rejected([](auto& p) { p.x = odd(p.x); }, "x is not aligned");
  expect_rejected([](auto& p) { p.dt = odd(p.dt); }, "dt is not aligned");
  expect_rejected([](auto& p) { p.A = static_cast<const float*>(odd(p.A)); }, "A is not aligned");
  expect_rejected([](auto& p) { p.B = odd(p.B); }, "B is not aligned");
  expect_rejected([](auto& p) { p.C = odd(p.C); }, "C is not aligned");
  expect_rejected([](auto& p) { p.out = const_cast<void*>(odd(p.out)); }, "out is not aligned");
  expect_rejected([](auto& p) { p.z = odd(p.x); }, "z is not aligned");
  expect_rejected([](auto& p) { p.D = static_cast<const float*>(odd(p.A)); }, "D is not aligned");
  expect_rejected([](auto& p) { p.dt_bias = static_cast<const float*>(odd(p.A)); }, "dt_bias is not aligned");
  expect_rejected([](auto& p) { p.state_batch_indices = static_cast<const int32_t*>(odd(p.A)); },
                  "state_batch_indices is not aligned");
  expect_rejected([](auto& p) { p.dst_state_batch_indices = static_cast<const int32_t*>(odd(p.A)); },
                  "dst_state_batch_indices is not aligned");
  expect_rejected([](auto& p) { p.intermediate_states = const_cast<void*>(odd(p.state)); },
                  "intermediate_states is not aligned");
}

TEST_CASE("state update can_implement rejects bad strides", "[host][decode][can_implement]") {
  expect_rejected([](auto& p) { p.state_batch_stride = -1; }, "state_batch_stride");
  expect_rejected([](auto& p) { p.state_head_stride = -1; }, "state_head_stride");
  expect_rejected([](auto& p) { p.state_dim_stride = -1; }, "state_dim_stride");
  expect_rejected([](auto& p) { p.x_batch_stride = -1; }, "x_batch_stride");
  expect_rejected([](auto& p) { p.x_token_stride = -1; }, "x_token_stride");
  expect_rejected([](auto& p) { p.x_head_stride = -1; }, "x_head_stride");
  expect_rejected([](auto& p) { p.x_dim_stride = -1; }, "x_dim_stride");
  expect_rejected([](auto& p) { p.dt_batch_stride = -1; }, "dt_batch_stride");
  expect_rejected([](auto& p) { p.dt_token_stride = -1; }, "dt_token_stride");
  expect_rejected([](auto& p) { p.dt_head_stride = -1; }, "dt_head_stride");
  expect_rejected([](auto& p) { p.dt_dim_stride = -1; }, "dt_dim_stride");
  expect_rejected([](auto& p) { p.A_head_stride = -1; }, "A_head_stride");
  expect_rejected([](auto& p) { p.A_dim_stride = -1; }, "A_dim_stride");
  expect_rejected([](auto& p) { p.A_dstate_stride = -1; }, "A_dstate_stride");
  expect_rejected([](auto& p) { p.B_batch_stride = -1; }, "B_batch_stride");
  expect_rejected([](auto& p) { p.B_token_stride = -1; }, "B_token_stride");
  expect_rejected([](auto& p) { p.B_group_stride = -1; }, "B_group_stride");
  expect_rejected([](auto& p) { p.B_dstate_stride = -1; }, "B_dstate_stride");
  expect_rejected([](auto& p) { p.C_batch_stride = -1; }, "C_batch_stride");
  expect_rejected([](auto& p) { p.C_token_stride = -1; }, "C_token_stride");
  expect_rejected([](auto& p) { p.C_group_stride = -1; }, "C_group_stride");
  expect_rejected([](auto& p) { p.C_dstate_stride = -1; }, "C_dstate_stride");
  expect_rejected([](auto& p) { p.D = p.A; p.D_head_stride = -1; }, "D_head_stride");
  expect_rejected([](auto& p) { p.D = p.A; p.D_dim_stride = -1; }, "D_dim_stride");
  expect_rejected([](auto& p) { p.dt_bias = p.A; p.dt_bias_head_stride = -1; }, "dt_bias_head_stride");
  expect_rejected([](auto& p) { p.dt_bias = p.A; p.dt_bias_dim_stride = -1; }, "dt_bias_dim_stride");
  expect_rejected([](auto& p) { p.z = p.x; p.z_batch_stride = -1; }, "z_batch_stride");
  expect_rejected([](auto& p) { p.z = p.x; p.z_token_stride = -1; }, "z_token_stride");
  expect_rejected([](auto& p) { p.z = p.x; p.z_head_stride = -1; }, "z_head_stride");
  expect_rejected([](auto& p) { p.z = p.x; p.z_dim_stride = -1; }, "z_dim_stride");
  expect_rejected([](auto& p) { p.out_batch_stride = -1; }, "out_batch_stride");
  expect_rejected([](auto& p) { p.out_token_stride = -1; }, "out_token_stride");
  expect_rejected([](auto& p) { p.out_head_stride = -1; }, "out_head_stride");
  expect_rejected([](auto& p) { p.out_dim_stride = -1; }, "out_dim_stride");
  expect_rejected([](auto& p) { p.intermediate_states = p.state; p.inter_batch_stride = -1; }, "inter_batch_stride");
  expect_rejected([](auto& p) { p.intermediate_states = p.state; p.inter_token_stride = -1; }, "inter_token_stride");
  expect_rejected([](auto& p) { p.intermediate_states = p.state; p.inter_head_stride = -1; }, "inter_head_stride");
  expect_rejected([](auto& p) { p.intermediate_states = p.state; p.inter_dim_stride = -1; }, "inter_dim_stride");
  // Written tensors must not overlap themselves.
  expect_rejected([](auto& p) { p.out_dim_stride = 0; }, "out: a stride");
  expect_rejected([](auto& p) { p.out_token_stride = p.out_head_stride; }, "out: a stride");
  expect_rejected([](auto& p) { p.state_dim_stride = p.dstate - 1; }, "state: a stride");
  expect_rejected([](auto& p) { p.state_batch_stride = 0; }, "state: a stride");
  expect_rejected([](auto& p) { p.intermediate_states = p.state; p.inter_token_stride = 0; },
                  "intermediate_states: a stride");
}

TEST_CASE("state update: the all-vector kernel is chosen only where every row is aligned",
          "[host][decode]") {
  using ssmkit::detail::ssu_vectorizable;
  ValidSsu v;  // dstate 16, every pointer 16-byte aligned, contiguous rows
  CHECK(ssu_vectorizable(v.p, 16));
  CHECK_FALSE(ssu_vectorizable(v.p, 32));  // dstate below the capacity: partial chunks
  auto rejects = [](const std::function<void(SelectiveStateUpdateParams&)>& mutate) {
    ValidSsu w;
    mutate(w.p);
    REQUIRE(ssmkit::can_implement(w.p).ok());  // valid arguments, only not all-vector
    return !ssu_vectorizable(w.p, 16);
  };
  CHECK(rejects([](auto& p) { p.state = ValidSsu::arena + 4; }));
  CHECK(rejects([](auto& p) { p.state_batch_stride += 1; }));          // fp32 rows 4 bytes apart
  CHECK(rejects([](auto& p) { p.B = ValidSsu::arena + 66; }));
  CHECK(rejects([](auto& p) { p.C_token_stride += 4; }));              // bf16: 8 bytes
  CHECK(rejects([](auto& p) { p.B_dstate_stride = 2; p.B_group_stride = 32; p.B_token_stride = 64; p.B_batch_stride = 128; }));
  CHECK(rejects([](auto& p) { p.A = reinterpret_cast<const float*>(ValidSsu::arena + 52); }));
  CHECK(rejects([](auto& p) { p.intermediate_states = ValidSsu::arena + 8; }));
  // A broadcast over dstate (Mamba-2) is read as one scalar per row: its alignment is free.
  ValidSsu m2;
  m2.p.A = reinterpret_cast<const float*>(ValidSsu::arena + 52);
  m2.p.A_dim_stride = m2.p.A_dstate_stride = 0;
  m2.p.A_head_stride = 1;
  CHECK(ssu_vectorizable(m2.p, 16));
}

TEST_CASE("state update: the run-time launcher's configuration by batch size", "[host][decode]") {
  using ssmkit::detail::ssu_uses_bandwidth_config;
  // Mamba-1 2.8b (dim 5120, N 16) and Mamba-2 2.7b (80 heads of 64, N 128): the latency
  // configuration up to a batch of 2 and 8, the bandwidth configuration from 4 and 16.
  for (int64_t batch : {1, 2, 4, 8, 16, 32, 64, 128}) {
    INFO("batch " << batch);
    const auto m1 = ssmkit::make_selective_state_update_params(DType::kBFloat16, DType::kFloat32, batch, 5120, 1, 16);
    CHECK(ssu_uses_bandwidth_config<16>(m1) == (batch >= 4));
    const auto m2 = ssmkit::make_selective_state_update_params(DType::kBFloat16, DType::kFloat32, batch, 80, 64, 128);
    CHECK(ssu_uses_bandwidth_config<128>(m2) == (batch >= 16));
  }
}
