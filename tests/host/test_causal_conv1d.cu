/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// Properties of the causal conv1d host reference, and every rejection of can_implement() for
// the forward and the update, with the argument it names.
#include <catch2/catch.hpp>

#include <ssmkit/causal_conv1d.cuh>
#include <ssmkit/reference/causal_conv1d.cuh>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

using ssmkit::CausalConv1dParams;
using ssmkit::CausalConv1dUpdateParams;
using ssmkit::DType;
using ssmkit::StatusCode;

namespace {

std::vector<float> randn(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// fp32 forward problem with contiguous channel-first tensors.
struct Fwd {
  int64_t B, D, L, W;
  std::vector<float> x, w, bias, init;
  std::vector<int32_t> seq;
  Fwd(int64_t b, int64_t d, int64_t l, int64_t wd, uint64_t seed) : B(b), D(d), L(l), W(wd) {
    x = randn(B * D * L, seed);
    w = randn(D * W, seed + 1);
    bias = randn(D, seed + 2);
    init = randn(B * D * (W > 1 ? W - 1 : 1), seed + 3);
  }
  CausalConv1dParams params(bool use_bias, bool use_init) {
    CausalConv1dParams p = ssmkit::make_causal_conv1d_params(DType::kFloat32, DType::kFloat32, B, D, L, W);
    p.x = x.data();
    p.weight = w.data();
    p.bias = use_bias ? bias.data() : nullptr;
    p.initial_states = use_init ? init.data() : nullptr;
    p.out = x.data();  // never written by the reference
    return p;
  }
  std::vector<double> run(const CausalConv1dParams& p, std::vector<double>* fin = nullptr) {
    std::vector<double> out(B * D * p.seqlen);
    if (fin) fin->assign(B * D * (W - 1), 0.0);
    const ssmkit::Status st = ssmkit::reference::causal_conv1d_fwd(p, out.data(), fin ? fin->data() : nullptr);
    INFO(st.message());
    REQUIRE(st.ok());
    return out;
  }
};

}  // namespace

TEST_CASE("conv1d reference: width 1 is a per-channel scale", "[host][conv1d]") {
  Fwd f(2, 5, 9, 1, 11);
  const auto out = f.run(f.params(true, false));
  for (int64_t b = 0; b < f.B; ++b)
    for (int64_t d = 0; d < f.D; ++d)
      for (int64_t t = 0; t < f.L; ++t) {
        const size_t i = (b * f.D + d) * f.L + t;
        CHECK(out[i] == Approx(double(f.w[d]) * f.x[i] + f.bias[d]).epsilon(1e-12));
      }
}

TEST_CASE("conv1d reference: identity weight e_{W-1} reproduces x", "[host][conv1d]") {
  for (int64_t W = 1; W <= 8; ++W) {
    Fwd f(2, 3, 13, W, 20 + W);
    for (int64_t d = 0; d < f.D; ++d)
      for (int64_t k = 0; k < W; ++k) f.w[d * W + k] = k == W - 1 ? 1.f : 0.f;
    const auto out = f.run(f.params(false, W > 1));
    for (size_t i = 0; i < out.size(); ++i) CHECK(out[i] == double(f.x[i]));
    // silu of the identity
    auto p = f.params(false, false);
    p.silu = true;
    const auto o2 = f.run(p);
    for (size_t i = 0; i < o2.size(); ++i) CHECK(o2[i] == Approx(ssmkit::silu_ref(f.x[i])).epsilon(1e-12));
  }
}

TEST_CASE("conv1d reference: seq_idx boundaries cut the window", "[host][conv1d]") {
  const int64_t W = 4, L = 20;
  Fwd f(1, 3, L, W, 31);
  // Segments [0,5) [5,6) [6,14) [14,20)
  const int64_t starts[] = {0, 5, 6, 14, L};
  f.seq.resize(L);
  for (int s = 0; s < 4; ++s)
    for (int64_t t = starts[s]; t < starts[s + 1]; ++t) f.seq[t] = s * 3 + 1;
  auto p = f.params(true, false);
  p.seq_idx = f.seq.data();
  const auto out = f.run(p);
  // Each segment alone, as a sequence of its own starting from zeros.
  for (int s = 0; s < 4; ++s) {
    auto q = f.params(true, false);
    q.seqlen = starts[s + 1] - starts[s];
    q.x = f.x.data() + starts[s];
    q.x_dim_stride = q.out_dim_stride = L;
    q.x_batch_stride = q.out_batch_stride = f.D * L;
    std::vector<double> seg(f.D * q.seqlen);
    REQUIRE(ssmkit::reference::causal_conv1d_fwd(q, seg.data()).ok());
    for (int64_t d = 0; d < f.D; ++d)
      for (int64_t t = 0; t < q.seqlen; ++t)
        CHECK(out[d * L + starts[s] + t] == Approx(seg[d * q.seqlen + t]).epsilon(1e-12));
  }
}

TEST_CASE("conv1d reference: pieces with initial/final states equal one pass", "[host][conv1d]") {
  for (int64_t W : {2, 4, 8}) {
    const int64_t L = 23;
    Fwd f(2, 3, L, W, 40 + W);
    auto whole_p = f.params(true, true);
    whole_p.silu = true;
    std::vector<double> whole_fin;
    const auto whole = f.run(whole_p, &whole_fin);
    // Pieces of 1, W-2 (possibly 0 skipped), 5, rest: shorter than W-1 included.
    std::vector<int64_t> pieces = {1, W - 2, 5};
    int64_t used = 0;
    for (int64_t n : pieces) used += n;
    pieces.push_back(L - used);
    std::vector<float> carry(f.init);
    int64_t t0 = 0;
    for (int64_t n : pieces) {
      if (n == 0) continue;
      auto p = f.params(true, false);
      p.silu = true;
      p.seqlen = n;
      p.x = f.x.data() + t0;
      p.x_dim_stride = L;
      p.x_batch_stride = f.D * L;
      p.out_dim_stride = n;
      p.out_batch_stride = f.D * n;
      p.initial_states = carry.data();
      std::vector<double> fin;
      const auto out = f.run(p, &fin);
      for (int64_t r = 0; r < f.B * f.D; ++r)
        for (int64_t t = 0; t < n; ++t)
          CHECK(out[r * n + t] == Approx(whole[r * L + t0 + t]).epsilon(1e-12));
      for (size_t i = 0; i < carry.size(); ++i) carry[i] = static_cast<float>(fin[i]);
      t0 += n;
    }
    for (size_t i = 0; i < whole_fin.size(); ++i) CHECK(double(carry[i]) == whole_fin[i]);
  }
}

TEST_CASE("conv1d reference: final states of a short sequence come from the initial states", "[host][conv1d]") {
  const int64_t W = 6;
  Fwd f(1, 2, 2, W, 55);
  std::vector<double> fin;
  f.run(f.params(false, true), &fin);
  for (int64_t d = 0; d < 2; ++d) {
    // last W-1 = 5 inputs: init[2], init[3], init[4], x[0], x[1]
    CHECK(fin[d * 5 + 0] == f.init[d * 5 + 2]);
    CHECK(fin[d * 5 + 2] == f.init[d * 5 + 4]);
    CHECK(fin[d * 5 + 3] == f.x[d * 2 + 0]);
    CHECK(fin[d * 5 + 4] == f.x[d * 2 + 1]);
  }
  f.run(f.params(false, false), &fin);
  CHECK(fin[0] == 0.0);
}

TEST_CASE("conv1d reference: update equals the forward over the same tokens", "[host][conv1d]") {
  for (bool circular : {false, true}) {
    for (int64_t T : {1, 3}) {
      const int64_t B = 2, D = 3, W = 4, S = circular ? 7 : 5;
      std::vector<float> state = randn(B * D * S, 60 + T);
      std::vector<float> x = randn(B * D * T, 61 + T), w = randn(D * W, 62), bias = randn(D, 63);
      std::vector<int32_t> lens = {9, 2};
      // The W-1 newest kept inputs per row, in time order, as forward initial states.
      std::vector<float> init(B * D * (W - 1));
      for (int64_t b = 0; b < B; ++b)
        for (int64_t d = 0; d < D; ++d)
          for (int64_t k = 0; k < W - 1; ++k) {
            int64_t s = circular ? ((lens[b] - (W - 1) + k) % S + S) % S : S - (W - 1) + k;
            init[(b * D + d) * (W - 1) + k] = state[(b * D + d) * S + s];
          }
      CausalConv1dParams f = ssmkit::make_causal_conv1d_params(DType::kFloat32, DType::kFloat32, B, D, T, W);
      f.x = x.data(); f.weight = w.data(); f.bias = bias.data(); f.initial_states = init.data();
      f.out = x.data(); f.silu = true;
      std::vector<double> fwd(B * D * T), fin(B * D * (W - 1));
      REQUIRE(ssmkit::reference::causal_conv1d_fwd(f, fwd.data(), fin.data()).ok());

      CausalConv1dUpdateParams u = ssmkit::make_causal_conv1d_update_params(DType::kFloat32, DType::kFloat32, B, D, T, W, S, B);
      u.x = x.data(); u.weight = w.data(); u.bias = bias.data(); u.conv_state = state.data();
      u.out = x.data(); u.silu = true;
      if (circular) u.cache_seqlens = lens.data();
      std::vector<double> upd(B * D * T);
      REQUIRE(ssmkit::reference::causal_conv1d_update(u, upd.data()).ok());
      for (size_t i = 0; i < upd.size(); ++i) CHECK(upd[i] == Approx(fwd[i]).epsilon(1e-12));
      // The state's newest W-1 inputs are now the forward's final states.
      for (int64_t b = 0; b < B; ++b)
        for (int64_t d = 0; d < D; ++d)
          for (int64_t k = 0; k < W - 1; ++k) {
            const int64_t newest = circular ? lens[b] + T : S;
            int64_t s = newest - (W - 1) + k;
            if (circular) s = ((s % S) + S) % S;
            CHECK(double(state[(b * D + d) * S + s]) == fin[(b * D + d) * (W - 1) + k]);
          }
    }
  }
}

TEST_CASE("conv1d reference: update padding entries give 0 and leave the pool alone", "[host][conv1d]") {
  const int64_t B = 3, D = 2, W = 3, S = 2, pool = 4;
  std::vector<float> state = randn(pool * D * S, 70), before = state;
  std::vector<float> x = randn(B * D, 71), w = randn(D * W, 72);
  std::vector<int32_t> idx = {2, -1, 0};
  CausalConv1dUpdateParams u = ssmkit::make_causal_conv1d_update_params(DType::kFloat32, DType::kFloat32, B, D, 1, W, S, pool);
  u.x = x.data(); u.weight = w.data(); u.conv_state = state.data(); u.out = x.data();
  u.conv_state_indices = idx.data();
  std::vector<double> out(B * D);
  REQUIRE(ssmkit::reference::causal_conv1d_update(u, out.data()).ok());
  CHECK(out[1 * D + 0] == 0.0);
  CHECK(out[1 * D + 1] == 0.0);
  for (int64_t r : {1, 3})
    for (int64_t i = 0; i < D * S; ++i) CHECK(state[r * D * S + i] == before[r * D * S + i]);
  // Row 2 (entry 0) shifted by one: new[0] = old[1], new[1] = x.
  CHECK(state[2 * D * S + 0] == before[2 * D * S + 1]);
  CHECK(state[2 * D * S + 1] == x[0]);
}

namespace {

alignas(16) unsigned char g_arena[1 << 12];

CausalConv1dParams valid_fwd() {
  CausalConv1dParams p = ssmkit::make_causal_conv1d_params(DType::kBFloat16, DType::kFloat32, 2, 8, 64, 4);
  p.x = g_arena; p.weight = g_arena + 64; p.out = g_arena + 128;
  return p;
}

CausalConv1dUpdateParams valid_upd() {
  CausalConv1dUpdateParams p = ssmkit::make_causal_conv1d_update_params(DType::kBFloat16, DType::kBFloat16, 2, 8, 1, 4, 3, 2);
  p.x = g_arena; p.weight = g_arena + 64; p.out = g_arena + 128; p.conv_state = g_arena + 256;
  return p;
}

void expect_fwd_rejected(const std::function<void(CausalConv1dParams&)>& mutate, const std::string& names,
                         StatusCode code = StatusCode::kInvalidArgument) {
  CausalConv1dParams p = valid_fwd();
  mutate(p);
  const ssmkit::Status st = ssmkit::can_implement(p);
  INFO("expected a rejection naming '" << names << "', got: " << st.message());
  CHECK(st.code() == code);
  CHECK(std::string(st.message()).find(names) != std::string::npos);
  CHECK(ssmkit::causal_conv1d_fwd(p, nullptr).code() == code);
}

void expect_upd_rejected(const std::function<void(CausalConv1dUpdateParams&)>& mutate, const std::string& names,
                         StatusCode code = StatusCode::kInvalidArgument) {
  CausalConv1dUpdateParams p = valid_upd();
  mutate(p);
  const ssmkit::Status st = ssmkit::can_implement(p);
  INFO("expected a rejection naming '" << names << "', got: " << st.message());
  CHECK(st.code() == code);
  CHECK(std::string(st.message()).find(names) != std::string::npos);
  CHECK(ssmkit::causal_conv1d_update(p, nullptr).code() == code);
}

}  // namespace

TEST_CASE("conv1d can_implement accepts valid arguments", "[host][can_implement][conv1d]") {
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    CausalConv1dParams p = valid_fwd();
    p.dtype = t;
    p.weight_dtype = t;
    CHECK(ssmkit::can_implement(p).ok());
    CausalConv1dUpdateParams u = valid_upd();
    u.dtype = u.weight_dtype = t;
    CHECK(ssmkit::can_implement(u).ok());
  }
  CausalConv1dParams p = valid_fwd();
  for (int64_t w = 1; w <= 8; ++w) { p.width = w; CHECK(ssmkit::can_implement(p).ok()); }
  CausalConv1dParams cl = ssmkit::make_causal_conv1d_params(DType::kBFloat16, DType::kBFloat16, 2, 8, 64, 4, true);
  cl.x = g_arena; cl.weight = g_arena; cl.out = g_arena + 64;
  CHECK(ssmkit::can_implement(cl).ok());
  CHECK(ssmkit::causal_conv1d_is_channel_last(cl));
  CHECK(!ssmkit::causal_conv1d_is_channel_last(valid_fwd()));
  CausalConv1dUpdateParams u = valid_upd();
  u.conv_state_indices = reinterpret_cast<const int32_t*>(g_arena);
  u.state_pool = 1;
  CHECK(ssmkit::can_implement(u).ok());
}

TEST_CASE("conv1d forward can_implement names the offending argument", "[host][can_implement][conv1d]") {
  expect_fwd_rejected([](auto& p) { p.dtype = static_cast<DType>(9); }, "dtype");
  expect_fwd_rejected([](auto& p) { p.weight_dtype = DType::kFloat16; }, "weight_dtype", StatusCode::kNotSupported);
  expect_fwd_rejected([](auto& p) { p.batch = 0; }, "batch");
  expect_fwd_rejected([](auto& p) { p.dim = 0; }, "dim");
  expect_fwd_rejected([](auto& p) { p.seqlen = 0; }, "seqlen");
  expect_fwd_rejected([](auto& p) { p.width = 0; }, "width");
  expect_fwd_rejected([](auto& p) { p.width = 9; }, "width");
  expect_fwd_rejected([](auto& p) { p.x = nullptr; }, "x must not be null");
  expect_fwd_rejected([](auto& p) { p.x = g_arena + 1; }, "x is not aligned");
  expect_fwd_rejected([](auto& p) { p.weight = nullptr; }, "weight must not be null");
  expect_fwd_rejected([](auto& p) { p.weight = g_arena + 2; }, "weight is not aligned");
  expect_fwd_rejected([](auto& p) { p.out = nullptr; }, "out must not be null");
  expect_fwd_rejected([](auto& p) { p.bias = g_arena + 1; }, "bias");
  expect_fwd_rejected([](auto& p) { p.seq_idx = reinterpret_cast<const int32_t*>(g_arena + 2); }, "seq_idx");
  expect_fwd_rejected([](auto& p) { p.initial_states = g_arena + 1; }, "initial_states");
  expect_fwd_rejected([](auto& p) { p.final_states = g_arena + 1; }, "final_states");
  expect_fwd_rejected([](auto& p) { p.x_batch_stride = -1; }, "x_batch_stride");
  expect_fwd_rejected([](auto& p) { p.x_dim_stride = -1; }, "x_dim_stride");
  expect_fwd_rejected([](auto& p) { p.x_seq_stride = -1; }, "x_seq_stride");
  expect_fwd_rejected([](auto& p) { p.out_batch_stride = -1; }, "out_batch_stride");
  expect_fwd_rejected([](auto& p) { p.weight_dim_stride = -1; }, "weight_dim_stride");
  expect_fwd_rejected([](auto& p) { p.weight_width_stride = -1; }, "weight_width_stride");
  expect_fwd_rejected([](auto& p) { p.seq_idx = reinterpret_cast<const int32_t*>(g_arena); p.seq_idx_seq_stride = -1; }, "seq_idx_seq_stride");
  expect_fwd_rejected([](auto& p) { p.initial_states = g_arena; p.initial_states_dim_stride = -3; }, "initial_states_dim_stride");
  expect_fwd_rejected([](auto& p) { p.final_states = g_arena; p.final_states_seq_stride = -1; }, "final_states_seq_stride");
  expect_fwd_rejected([](auto& p) { p.width = 1; p.initial_states = g_arena; }, "initial_states");
  expect_fwd_rejected([](auto& p) { p.width = 1; p.final_states = g_arena; }, "final_states");
  expect_fwd_rejected([](auto& p) { p.initial_states = g_arena; p.seq_idx = reinterpret_cast<const int32_t*>(g_arena); }, "initial_states cannot be combined with seq_idx");
  expect_fwd_rejected([](auto& p) { p.initial_states = g_arena; p.final_states = g_arena; }, "final_states must not be the same memory");
  expect_fwd_rejected([](auto& p) { p.x_seq_stride = 8; p.x_dim_stride = 2; }, "x_dim_stride");
  expect_fwd_rejected([](auto& p) { p.out_seq_stride = 8; }, "out_seq_stride");
  expect_fwd_rejected([](auto& p) { p.out_dim_stride = 10; }, "out: channel stride");
  expect_fwd_rejected([](auto& p) { p.out_batch_stride = 100; }, "out: batch stride");
  expect_fwd_rejected([](auto& p) { p.x_seq_stride = 8; p.x_dim_stride = 1; p.out_seq_stride = 8; p.out_dim_stride = 1; p.out_batch_stride = 8 * 64; p.out_dim_stride = 2; }, "out_dim_stride");
  expect_fwd_rejected([](auto& p) { p.x_seq_stride = 8; p.x_dim_stride = 1; p.out_seq_stride = 4; p.out_dim_stride = 1; }, "out_seq_stride");
}

TEST_CASE("conv1d update can_implement names the offending argument", "[host][can_implement][conv1d]") {
  expect_upd_rejected([](auto& p) { p.dtype = static_cast<DType>(9); }, "dtype");
  expect_upd_rejected([](auto& p) { p.weight_dtype = DType::kFloat16; }, "weight_dtype", StatusCode::kNotSupported);
  expect_upd_rejected([](auto& p) { p.batch = 0; }, "batch");
  expect_upd_rejected([](auto& p) { p.dim = 0; }, "dim");
  expect_upd_rejected([](auto& p) { p.seqlen = 0; }, "seqlen");
  expect_upd_rejected([](auto& p) { p.width = 9; }, "width");
  expect_upd_rejected([](auto& p) { p.state_len = 2; }, "state_len");
  expect_upd_rejected([](auto& p) { p.state_pool = 1; }, "state_pool");
  expect_upd_rejected([](auto& p) { p.conv_state_indices = reinterpret_cast<const int32_t*>(g_arena); p.state_pool = 0; }, "state_pool");
  expect_upd_rejected([](auto& p) { p.x = nullptr; }, "x must not be null");
  expect_upd_rejected([](auto& p) { p.conv_state = nullptr; }, "conv_state must not be null");
  expect_upd_rejected([](auto& p) { p.conv_state = g_arena + 1; }, "conv_state is not aligned");
  expect_upd_rejected([](auto& p) { p.weight = nullptr; }, "weight must not be null");
  expect_upd_rejected([](auto& p) { p.out = nullptr; }, "out must not be null");
  expect_upd_rejected([](auto& p) { p.bias = g_arena + 1; }, "bias");
  expect_upd_rejected([](auto& p) { p.cache_seqlens = reinterpret_cast<const int32_t*>(g_arena + 2); }, "cache_seqlens");
  expect_upd_rejected([](auto& p) { p.conv_state_indices = reinterpret_cast<const int32_t*>(g_arena + 2); }, "conv_state_indices");
  expect_upd_rejected([](auto& p) { p.x_seq_stride = -1; }, "x_seq_stride");
  expect_upd_rejected([](auto& p) { p.out_dim_stride = -1; }, "out_dim_stride");
  expect_upd_rejected([](auto& p) { p.state_batch_stride = -1; }, "state_batch_stride");
  expect_upd_rejected([](auto& p) { p.state_seq_stride = 0; }, "state_seq_stride");
  expect_upd_rejected([](auto& p) { p.state_dim_stride = 0; }, "state_dim_stride");
  expect_upd_rejected([](auto& p) { p.weight_width_stride = -1; }, "weight_width_stride");
  expect_upd_rejected([](auto& p) { p.seqlen = 2; p.out_seq_stride = 0; }, "out_seq_stride");
  expect_upd_rejected([](auto& p) { p.out_dim_stride = 0; }, "out_dim_stride");
}

TEST_CASE("conv1d width dispatch covers 1..8", "[host][conv1d]") {
  for (int64_t w = 1; w <= 8; ++w) {
    int got = 0;
    CHECK(ssmkit::dispatch_conv_width(w, [&](auto c) { got = decltype(c)::value; return ssmkit::Status::Ok(); }).ok());
    CHECK(got == w);
  }
  const ssmkit::Status st = ssmkit::dispatch_conv_width(9, [](auto) { return ssmkit::Status::Ok(); });
  CHECK(std::string(st.message()).find("width") != std::string::npos);
  CHECK(ssmkit::dispatch_conv_weight_dtype<float>(DType::kBFloat16, [](auto) { return ssmkit::Status::Ok(); }).code() ==
        StatusCode::kNotSupported);
  CHECK(ssmkit::dispatch_conv_weight_dtype<__nv_bfloat16>(DType::kFloat32, [](auto) { return ssmkit::Status::Ok(); }).ok());
}

TEST_CASE("conv1d forward defaults: channel-last takes 16 bytes of channels for 2-byte types up to W4", "[host][conv1d]") {
  using BfLast4 = ssmkit::ConvDefaultConfig<__nv_bfloat16, true, 4>;
  CHECK(BfLast4::kChannels == 8);
  CHECK(BfLast4::kTileLen == 4);  // 64 bytes per thread per chunk
  CHECK(BfLast4::kMinBlocksPerSM == 3);
  using HalfLast2 = ssmkit::ConvDefaultConfig<__half, true, 2>;
  CHECK(HalfLast2::kChannels == 8);
  CHECK(HalfLast2::kMinBlocksPerSM == 3);
  // Wider filters and fp32 keep conv_channels() (at most 16 taps per thread) at 4 blocks per SM.
  using BfLast5 = ssmkit::ConvDefaultConfig<__nv_bfloat16, true, 5>;
  CHECK(BfLast5::kChannels == ssmkit::detail::conv_channels<__nv_bfloat16>(5));
  CHECK(BfLast5::kMinBlocksPerSM == 4);
  using F32Last4 = ssmkit::ConvDefaultConfig<float, true, 4>;
  CHECK(F32Last4::kChannels == ssmkit::detail::conv_channels<float>(4));
  CHECK(F32Last4::kChannels * sizeof(float) <= 16);
  CHECK(F32Last4::kMinBlocksPerSM == 4);
  // Channel-first is unchanged: 8 blocks per SM (6 above W5).
  CHECK(ssmkit::ConvDefaultConfig<__nv_bfloat16, false, 4>::kMinBlocksPerSM == 8);
  CHECK(ssmkit::ConvDefaultConfig<__nv_bfloat16, false, 8>::kMinBlocksPerSM == 6);
}
