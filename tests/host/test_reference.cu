/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// Properties of the host reference of the selective scan (no GPU needed).
#include <catch2/catch.hpp>

#include <ssmkit/reference/selective_scan.cuh>

#include <cmath>
#include <random>
#include <vector>

using ssmkit::DType;

namespace {

struct Inputs {
  int64_t Bn, Dn, L, N, G;
  std::vector<float> u, delta, z, A, B, C, D, bias, h0;
  ssmkit::SelectiveScanParams p;
  Inputs(int64_t b, int64_t d, int64_t l, int64_t n, int64_t g, uint64_t seed)
      : Bn(b), Dn(d), L(l), N(n), G(g) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> nd;
    std::uniform_real_distribution<float> ud(0.05f, 0.5f), ua(-2.f, -0.1f);
    auto fill = [&](std::vector<float>& v, size_t n, auto& dist) { v.resize(n); for (auto& x : v) x = dist(rng); };
    fill(u, b * d * l, nd);
    fill(delta, b * d * l, ud);
    fill(z, b * d * l, nd);
    fill(A, d * n, ua);
    fill(B, b * g * n * l, nd);
    fill(C, b * g * n * l, nd);
    fill(D, d, nd);
    fill(bias, d, nd);
    fill(h0, b * d * n, nd);
    p = ssmkit::make_selective_scan_params(DType::kFloat32, b, d, l, n, g);
    p.u = u.data(); p.delta = delta.data(); p.A = A.data(); p.B = B.data(); p.C = C.data();
    p.out = u.data();  // never written by the reference
  }
  std::vector<double> run(std::vector<double>* last = nullptr) const {
    std::vector<double> out(Bn * Dn * L);
    if (last) last->assign(Bn * Dn * N, 0.0);
    REQUIRE(ssmkit::reference::selective_scan_fwd(p, out.data(), last ? last->data() : nullptr).ok());
    return out;
  }
};

}  // namespace

TEST_CASE("reference: A -> 0 gives running sums of dt*u*B weighted by C", "[host][reference]") {
  Inputs in(1, 3, 50, 4, 1, 1);
  std::fill(in.A.begin(), in.A.end(), 0.f);
  const std::vector<double> out = in.run();
  for (int64_t d = 0; d < in.Dn; ++d) {
      std::vector<double> h(in.N, 0.0);
      for (int64_t t = 0; t < in.L; ++t) {
        double y = 0;
        for (int64_t n = 0; n < in.N; ++n) {
          h[n] += double(in.delta[d * in.L + t]) * in.B[n * in.L + t] * in.u[d * in.L + t];
          y += in.C[n * in.L + t] * h[n];
        }
        REQUIRE(out[d * in.L + t] == Approx(y).epsilon(1e-12).margin(1e-12));
      }
    }
}

TEST_CASE("reference: dt = 0 gives D*u (gated by silu(z))", "[host][reference]") {
  Inputs in(2, 3, 20, 8, 1, 2);
  std::fill(in.delta.begin(), in.delta.end(), 0.f);
  in.p.D = in.D.data();
  in.p.z = in.z.data();
  const std::vector<double> out = in.run();
  for (int64_t b = 0; b < in.Bn; ++b)
    for (int64_t d = 0; d < in.Dn; ++d)
      for (int64_t t = 0; t < in.L; ++t) {
        const size_t i = (b * in.Dn + d) * in.L + t;
        const double zz = in.z[i];
        REQUIRE(out[i] == Approx(double(in.D[d]) * in.u[i] * zz / (1 + std::exp(-zz))).epsilon(1e-12));
      }
}

TEST_CASE("reference: pieces with state carry equal one pass", "[host][reference]") {
  Inputs in(2, 4, 37, 5, 2, 3);
  in.p.D = in.D.data();
  in.p.z = in.z.data();
  in.p.delta_bias = in.bias.data();
  in.p.delta_softplus = true;
  in.p.h0 = in.h0.data();
  std::vector<double> last_whole;
  const std::vector<double> whole = in.run(&last_whole);

  // Run [0, 10) then [10, 37) with the first piece's last state as the second's h0.
  const int64_t cut = 10;
  std::vector<double> pieces(whole.size());
  std::vector<float> carry(in.h0);
  int64_t start = 0;
  for (int64_t len : {cut, in.L - cut}) {
    ssmkit::SelectiveScanParams p = in.p;
    p.seqlen = len;
    p.u = in.u.data() + start;
    p.delta = in.delta.data() + start;
    p.z = in.z.data() + start;
    p.B = in.B.data() + start;
    p.C = in.C.data() + start;
    p.out = in.u.data();
    p.h0 = carry.data();
    std::vector<double> out(in.Bn * in.Dn * len), last(in.Bn * in.Dn * in.N);
    REQUIRE(ssmkit::reference::selective_scan_fwd(p, out.data(), last.data()).ok());
    for (int64_t r = 0; r < in.Bn * in.Dn; ++r)
      for (int64_t t = 0; t < len; ++t) pieces[r * in.L + start + t] = out[r * len + t];
    for (size_t i = 0; i < carry.size(); ++i) carry[i] = static_cast<float>(last[i]);
    start += len;
  }
  // The carried state passes through float between pieces, as it does on the GPU.
  for (size_t i = 0; i < whole.size(); ++i) REQUIRE(pieces[i] == Approx(whole[i]).epsilon(1e-6).margin(1e-6));
  for (size_t i = 0; i < carry.size(); ++i) REQUIRE(carry[i] == Approx(last_whole[i]).epsilon(1e-6).margin(1e-6));
}

TEST_CASE("reference: group broadcast — channel d reads group d / (D / G)", "[host][reference]") {
  // With G groups whose B/C are identical copies, the result equals the one-group result.
  Inputs one(1, 6, 15, 3, 1, 4);
  Inputs three(1, 6, 15, 3, 3, 4);
  three.u = one.u; three.delta = one.delta; three.A = one.A;
  for (int64_t g = 0; g < 3; ++g)
    for (size_t i = 0; i < one.B.size(); ++i) {
      three.B[g * one.B.size() + i] = one.B[i];
      three.C[g * one.C.size() + i] = one.C[i];
    }
  three.p.u = three.u.data(); three.p.delta = three.delta.data(); three.p.A = three.A.data();
  three.p.B = three.B.data(); three.p.C = three.C.data(); three.p.out = three.u.data();
  const auto a = one.run();
  const auto b = three.run();
  for (size_t i = 0; i < a.size(); ++i) REQUIRE(a[i] == Approx(b[i]).epsilon(1e-12));

  // Changing group 1's B changes exactly channels 2 and 3.
  for (int64_t i = 0; i < 3 * 15; ++i) three.B[1 * 3 * 15 + i] += 1.f;
  const auto c = three.run();
  for (int64_t d = 0; d < 6; ++d) {
    bool changed = false;
    for (int64_t t = 1; t < 15; ++t) changed |= std::fabs(c[d * 15 + t] - b[d * 15 + t]) > 1e-9;
    CHECK(changed == (d == 2 || d == 3));
  }
}

TEST_CASE("reference: constant B/C equal variable B/C repeated over time", "[host][reference]") {
  Inputs in(1, 2, 9, 3, 1, 5);
  std::vector<float> Bc(in.Dn * in.N), Cc(in.Dn * in.N);
  std::mt19937_64 rng(6);
  std::normal_distribution<float> nd;
  for (auto& x : Bc) x = nd(rng);
  for (auto& x : Cc) x = nd(rng);
  ssmkit::SelectiveScanParams pc = in.p;
  pc.B_variable = pc.C_variable = false;
  pc.B = Bc.data(); pc.C = Cc.data();
  pc.B_dim_stride = pc.C_dim_stride = in.N;
  pc.B_dstate_stride = pc.C_dstate_stride = 1;
  std::vector<double> oc(in.Dn * in.L);
  REQUIRE(ssmkit::reference::selective_scan_fwd(pc, oc.data()).ok());
  // One channel at a time with variable B/C filled from that channel's constants.
  for (int64_t d = 0; d < in.Dn; ++d) {
    Inputs one(1, 1, in.L, in.N, 1, 5);
    std::copy(in.u.begin() + d * in.L, in.u.begin() + (d + 1) * in.L, one.u.begin());
    std::copy(in.delta.begin() + d * in.L, in.delta.begin() + (d + 1) * in.L, one.delta.begin());
    std::copy(in.A.begin() + d * in.N, in.A.begin() + (d + 1) * in.N, one.A.begin());
    for (int64_t n = 0; n < in.N; ++n)
      for (int64_t t = 0; t < in.L; ++t) {
        one.B[n * in.L + t] = Bc[d * in.N + n];
        one.C[n * in.L + t] = Cc[d * in.N + n];
      }
    const auto ov = one.run();
    for (int64_t t = 0; t < in.L; ++t) REQUIRE(ov[t] == Approx(oc[d * in.L + t]).epsilon(1e-12));
  }
}

TEST_CASE("reference: rejects what can_implement rejects", "[host][reference]") {
  Inputs in(1, 2, 4, 2, 1, 7);
  ssmkit::SelectiveScanParams p = in.p;
  p.u = nullptr;
  std::vector<double> out(8);
  const ssmkit::Status st = ssmkit::reference::selective_scan_fwd(p, out.data());
  CHECK(st.code() == ssmkit::StatusCode::kInvalidArgument);
  CHECK(std::string(st.message()).find("u") != std::string::npos);
  CHECK(ssmkit::reference::selective_scan_fwd(in.p, nullptr).code() == ssmkit::StatusCode::kInvalidArgument);
}

TEST_CASE("reference: fused conv equals the conv reference, then the scan", "[host][reference][conv]") {
  for (int64_t W : {1, 2, 4}) {
    Inputs in(2, 3, 37, 4, 1, 40 + W);
    std::mt19937_64 rng(7);
    std::normal_distribution<float> nd;
    std::vector<float> w(in.Dn * W), cb(in.Dn), init(in.Bn * in.Dn * (W > 1 ? W - 1 : 1));
    for (auto& v : w) v = 0.5f * nd(rng);
    for (auto& v : cb) v = 0.1f * nd(rng);
    for (auto& v : init) v = nd(rng);
    ssmkit::SelectiveScanParams fused = in.p;
    ssmkit::set_contiguous_scan_conv(fused, W);
    fused.conv.weight = w.data();
    fused.conv.bias = cb.data();
    fused.conv.initial_states = W > 1 ? init.data() : nullptr;
    std::vector<double> out_fused(in.Bn * in.Dn * in.L), conv_out(in.Bn * in.Dn * in.L);
    REQUIRE(ssmkit::reference::selective_scan_fwd(fused, out_fused.data(), nullptr, 0, -1, conv_out.data()).ok());

    // The conv by hand, in double, then the plain scan on its output.
    std::vector<float> u2(in.u.size());
    for (int64_t b = 0; b < in.Bn; ++b)
      for (int64_t d = 0; d < in.Dn; ++d)
        for (int64_t t = 0; t < in.L; ++t) {
          double acc = cb[d];
          for (int64_t k = 0; k < W; ++k) {
            const int64_t s = t - (W - 1) + k;
            const double x = s >= 0 ? in.u[(b * in.Dn + d) * in.L + s] : init[(b * in.Dn + d) * (W - 1) + (W - 1 + s)];
            acc += double(w[d * W + k]) * x;
          }
          const double want = ssmkit::silu_ref(acc);
          CHECK(conv_out[(b * in.Dn + d) * in.L + t] == Approx(want).epsilon(1e-12));
          u2[(b * in.Dn + d) * in.L + t] = float(want);
        }
    // The plain scan sees u rounded to float; compare loosely.
    ssmkit::SelectiveScanParams plain = in.p;
    plain.u = u2.data();
    std::vector<double> out_plain(in.Bn * in.Dn * in.L);
    REQUIRE(ssmkit::reference::selective_scan_fwd(plain, out_plain.data()).ok());
    for (size_t i = 0; i < out_plain.size(); ++i)
      CHECK(out_fused[i] == Approx(out_plain[i]).epsilon(1e-5).margin(1e-6));
  }
}
