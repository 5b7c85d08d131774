/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// Every rejection of can_implement() for the selective scan, with the argument it names.
#include <catch2/catch.hpp>

#include <ssmkit/selective_scan.cuh>

#include <functional>
#include <string>

using ssmkit::DType;
using ssmkit::SelectiveScanParams;
using ssmkit::StatusCode;

namespace {

// Valid arguments pointing into a (never dereferenced) aligned host arena.
struct Valid {
  alignas(16) static inline unsigned char arena[1 << 12];
  SelectiveScanParams p;
  Valid(DType t = DType::kBFloat16) {
    p = ssmkit::make_selective_scan_params(t, 2, 8, 64, 16, 2);
    p.u = arena; p.delta = arena + 16; p.A = reinterpret_cast<const float*>(arena + 32);
    p.B = arena + 48; p.C = arena + 64; p.out = arena + 80;
  }
};

void expect_rejected(const std::function<void(SelectiveScanParams&)>& mutate, const std::string& names) {
  Valid v;
  mutate(v.p);
  const ssmkit::Status st = ssmkit::can_implement(v.p);
  INFO("expected a rejection naming '" << names << "', got: " << st.message());
  CHECK(st.code() == StatusCode::kInvalidArgument);
  CHECK(std::string(st.message()).find(names) != std::string::npos);
  // Launchers refuse the same arguments before touching the GPU.
  CHECK(ssmkit::selective_scan_fwd(v.p, nullptr).code() == StatusCode::kInvalidArgument);
}

}  // namespace

TEST_CASE("can_implement accepts valid arguments", "[host][can_implement]") {
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    Valid v(t);
    CHECK(ssmkit::can_implement(v.p).ok());
    v.p.B_variable = false;
    v.p.B_dim_stride = 16;
    v.p.B_dstate_stride = 1;
    CHECK(ssmkit::can_implement(v.p).ok());
  }
  Valid v;
  v.p.dstate = 1;
  CHECK(ssmkit::can_implement(v.p).ok());
  v.p.dstate = 256;
  CHECK(ssmkit::can_implement(v.p).ok());
  v.p.seqlen = 1;
  CHECK(ssmkit::can_implement(v.p).ok());
}

TEST_CASE("can_implement rejects bad sizes", "[host][can_implement]") {
  expect_rejected([](auto& p) { p.dtype = static_cast<DType>(7); }, "dtype");
  expect_rejected([](auto& p) { p.batch = 0; }, "batch");
  expect_rejected([](auto& p) { p.dim = -1; }, "dim");
  expect_rejected([](auto& p) { p.seqlen = 0; }, "seqlen");
  expect_rejected([](auto& p) { p.dstate = 0; }, "dstate");
  expect_rejected([](auto& p) { p.dstate = 257; }, "dstate");
  expect_rejected([](auto& p) { p.n_groups = 3; }, "n_groups");
  expect_rejected([](auto& p) { p.n_groups = 0; }, "n_groups");
}

TEST_CASE("can_implement rejects null required pointers", "[host][can_implement]") {
  expect_rejected([](auto& p) { p.u = nullptr; }, "u must not be null");
  expect_rejected([](auto& p) { p.delta = nullptr; }, "delta");
  expect_rejected([](auto& p) { p.A = nullptr; }, "A");
  expect_rejected([](auto& p) { p.B = nullptr; }, "B");
  expect_rejected([](auto& p) { p.C = nullptr; }, "C");
  expect_rejected([](auto& p) { p.out = nullptr; }, "out");
}

TEST_CASE("can_implement rejects misaligned pointers", "[host][can_implement]") {
  auto odd = [](const void* p) { return static_cast<const void*>(static_cast<const unsigned char*>(p) + 1); };
  expect_rejected([&](auto& p) { p.u = odd(p.u); }, "u is not aligned");
  expect_rejected([&](auto& p) { p.delta = odd(p.delta); }, "delta");
  expect_rejected([&](auto& p) { p.z = odd(p.u); }, "z");
  expect_rejected([&](auto& p) { p.out = const_cast<void*>(odd(p.out)); }, "out");
  expect_rejected([&](auto& p) { p.A = reinterpret_cast<const float*>(static_cast<const unsigned char*>(odd(p.A)) + 1); }, "A");
  expect_rejected([&](auto& p) { p.B = odd(p.B); }, "B");
  expect_rejected([&](auto& p) { p.C = odd(p.C); }, "C");
  expect_rejected([&](auto& p) { p.B_variable = false; p.B = static_cast<const unsigned char*>(p.B) + 2; }, "B");
  expect_rejected([&](auto& p) { p.D = reinterpret_cast<const float*>(odd(p.A)); }, "D");
  expect_rejected([&](auto& p) { p.delta_bias = reinterpret_cast<const float*>(odd(p.A)); }, "delta_bias");
  expect_rejected([&](auto& p) { p.h0 = reinterpret_cast<const float*>(odd(p.A)); }, "h0");
  expect_rejected([&](auto& p) { p.last_state = reinterpret_cast<float*>(const_cast<void*>(odd(p.out))); }, "last_state");
}

TEST_CASE("can_implement rejects bad strides", "[host][can_implement]") {
  expect_rejected([](auto& p) { p.u_dim_stride = -1; }, "u_dim_stride");
  expect_rejected([](auto& p) { p.u_batch_stride = -8; }, "u_batch_stride");
  expect_rejected([](auto& p) { p.delta_dim_stride = -1; }, "delta_dim_stride");
  expect_rejected([](auto& p) { p.delta_batch_stride = -1; }, "delta_batch_stride");
  expect_rejected([](auto& p) { p.A_dim_stride = -1; }, "A_dim_stride");
  expect_rejected([](auto& p) { p.A_dstate_stride = -1; }, "A_dstate_stride");
  expect_rejected([](auto& p) { p.B_batch_stride = -1; }, "B_batch_stride");
  expect_rejected([](auto& p) { p.B_group_stride = -1; }, "B_group_stride");
  expect_rejected([](auto& p) { p.B_dstate_stride = -1; }, "B_dstate_stride");
  expect_rejected([](auto& p) { p.C_batch_stride = -1; }, "C_batch_stride");
  expect_rejected([](auto& p) { p.C_group_stride = -1; }, "C_group_stride");
  expect_rejected([](auto& p) { p.C_dstate_stride = -1; }, "C_dstate_stride");
  expect_rejected([](auto& p) { p.B_variable = false; p.B_dim_stride = -1; }, "B_dim_stride");
  expect_rejected([](auto& p) { p.C_variable = false; p.C_dim_stride = -1; }, "C_dim_stride");
  expect_rejected([](auto& p) { p.z = p.u; p.z_dim_stride = -1; }, "z_dim_stride");
  expect_rejected([](auto& p) { p.z = p.u; p.z_batch_stride = -1; }, "z_batch_stride");
  expect_rejected([](auto& p) { p.h0 = p.A; p.h0_dim_stride = -1; }, "h0_dim_stride");
  expect_rejected([](auto& p) { p.h0 = p.A; p.h0_batch_stride = -1; }, "h0_batch_stride");
  expect_rejected([](auto& p) { p.out_dim_stride = -1; }, "out_dim_stride");
  expect_rejected([](auto& p) { p.out_batch_stride = -1; }, "out_batch_stride");
  // Outputs must not overlap themselves.
  expect_rejected([](auto& p) { p.out_dim_stride = p.seqlen - 1; }, "out: channel stride");
  expect_rejected([](auto& p) { p.out_batch_stride = p.seqlen; }, "out: batch stride");
  expect_rejected([](auto& p) { p.last_state = reinterpret_cast<float*>(p.out); p.last_state_dim_stride = 1; }, "last_state: channel stride");
  expect_rejected([](auto& p) { p.last_state = reinterpret_cast<float*>(p.out); p.last_state_batch_stride = 0; }, "last_state: batch stride");
  expect_rejected([](auto& p) { p.last_state = reinterpret_cast<float*>(p.out); p.last_state_batch_stride = -1; }, "last_state_batch_stride");
}

TEST_CASE("compile-time launcher rejects a mismatched instantiation", "[host][can_implement]") {
  Valid v(DType::kBFloat16);
  const ssmkit::Status a = ssmkit::selective_scan_fwd<float, 16>(v.p, nullptr);
  CHECK(a.code() == StatusCode::kInvalidArgument);
  CHECK(std::string(a.message()).find("dtype") != std::string::npos);
  v.p.dtype = DType::kFloat32;
  v.p.dstate = 32;
  const ssmkit::Status b = ssmkit::selective_scan_fwd<float, 16>(v.p, nullptr);
  CHECK(b.code() == StatusCode::kInvalidArgument);
  CHECK(std::string(b.message()).find("dstate") != std::string::npos);
}

TEST_CASE("can_implement checks the fused conv", "[host][can_implement][conv]") {
  auto with_conv = [](SelectiveScanParams& p) {
    ssmkit::set_contiguous_scan_conv(p, 4);
    p.conv.weight = Valid::arena + 512;
  };
  {
    Valid v;
    with_conv(v.p);
    CHECK(ssmkit::can_implement(v.p).ok());
    v.p.conv.bias = Valid::arena + 1024;
    v.p.conv.initial_states = Valid::arena + 1536;
    v.p.conv.final_states = Valid::arena + 2048;
    v.p.conv.out = Valid::arena + 2560;
    v.p.conv.silu = false;
    CHECK(ssmkit::can_implement(v.p).ok());
    ssmkit::set_contiguous_scan_conv(v.p, 1, DType::kBFloat16);
    CHECK(ssmkit::can_implement(v.p).ok());
  }
  auto odd = [](const void* p) { return static_cast<const void*>(static_cast<const unsigned char*>(p) + 1); };
  expect_rejected([](auto& p) { p.conv.bias = p.A; }, "need conv.weight");
  expect_rejected([](auto& p) { p.conv.out = p.out; }, "need conv.weight");
  expect_rejected([&](auto& p) { with_conv(p); p.conv.width = 5; }, "conv.width must be in [1, 4]");
  expect_rejected([&](auto& p) { with_conv(p); p.conv.width = 0; }, "conv.width");
  expect_rejected([&](auto& p) { with_conv(p); p.conv.weight_dtype = DType::kFloat16; }, "conv.weight_dtype");
  expect_rejected([&](auto& p) { with_conv(p); p.conv.weight = odd(p.conv.weight); }, "conv.weight is not aligned");
  expect_rejected([&](auto& p) { with_conv(p); p.conv.bias = odd(p.A); }, "conv.bias");
  expect_rejected([&](auto& p) { with_conv(p); p.conv.initial_states = odd(p.u); }, "conv.initial_states");
  expect_rejected([&](auto& p) { with_conv(p); p.conv.final_states = const_cast<void*>(odd(p.u)); }, "conv.final_states");
  expect_rejected([&](auto& p) { with_conv(p); p.conv.out = const_cast<void*>(odd(p.u)); }, "conv.out");
  expect_rejected([&](auto& p) { with_conv(p); p.conv.weight_dim_stride = 3; }, "conv.weight_dim_stride");
  expect_rejected([&](auto& p) { with_conv(p); p.conv.initial_states = p.u; p.conv.initial_states_dim_stride = -1; }, "conv.initial_states_dim_stride");
  expect_rejected([&](auto& p) { with_conv(p); p.conv.final_states = p.out; p.conv.final_states_batch_stride = -1; }, "conv.final_states_batch_stride");
  expect_rejected([&](auto& p) { with_conv(p); p.conv.final_states = p.out; p.conv.final_states_dim_stride = 2; }, "conv.final_states: channel stride");
  expect_rejected([&](auto& p) { with_conv(p); p.conv.initial_states = p.u; p.conv.final_states = const_cast<void*>(p.u); }, "must not be conv.initial_states");
  expect_rejected([&](auto& p) { with_conv(p); p.conv.out = const_cast<void*>(p.u); }, "conv.out must not be u");
  expect_rejected([&](auto& p) { with_conv(p); p.conv.out = Valid::arena + 2560; p.conv.out_dim_stride = -1; }, "conv.out_dim_stride");
  expect_rejected([&](auto& p) { with_conv(p); p.conv.out = Valid::arena + 2560; p.conv.out_batch_stride = 8; }, "conv.out: batch stride");
}
