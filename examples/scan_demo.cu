/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// ssmkit demo: runs the Mamba-1 selective scan on a mamba-130m-sized batch (bf16, z gate,
// D skip, delta bias, softplus, initial and final state), checks it against the host
// reference in double, and prints the throughput.
//
//   scan_demo [batch dim seqlen dstate]
#include <ssmkit/reference/selective_scan.cuh>
#include <ssmkit/selective_scan.cuh>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#define DEMO_CUDA(call)                                                                         \
  do {                                                                                          \
    cudaError_t e_ = (call);                                                                    \
    if (e_ != cudaSuccess) {                                                                    \
      std::fprintf(stderr, "%s failed: %s\n", #call, cudaGetErrorString(e_));                   \
      return 1;                                                                                 \
    }                                                                                           \
  } while (0)

int main(int argc, char** argv) {
  int64_t Bn = 2, Dn = 1536, L = 2048, N = 16;
  if (argc == 5) {
    Bn = std::atoll(argv[1]); Dn = std::atoll(argv[2]); L = std::atoll(argv[3]); N = std::atoll(argv[4]);
  }
  int ndev = 0;
  if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
    std::printf("no CUDA GPU found: the scan demo needs one, so nothing was run.\n");
    return 0;
  }
  cudaDeviceProp prop{};
  DEMO_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("ssmkit %d.%d.%d selective scan demo on %s\n", SSMKIT_VERSION_MAJOR, SSMKIT_VERSION_MINOR,
              SSMKIT_VERSION_PATCH, prop.name);

  // Random inputs on the host, stored in bf16 (A, D, delta_bias and the state in float).
  using T = __nv_bfloat16;
  const size_t nx = Bn * Dn * L, nbc = Bn * N * L;
  std::mt19937_64 rng(2024);
  std::normal_distribution<float> nd;
  std::uniform_real_distribution<float> ud(-4.f, 1.f), ua(-3.f, -0.2f);
  std::vector<T> u(nx), delta(nx), z(nx), Bm(nbc), Cm(nbc);
  std::vector<float> A(Dn * N), Dv(Dn), bias(Dn), h0(Bn * Dn * N);
  for (auto& v : u) v = __float2bfloat16(nd(rng));
  for (auto& v : delta) v = __float2bfloat16(ud(rng));
  for (auto& v : z) v = __float2bfloat16(nd(rng));
  for (auto& v : Bm) v = __float2bfloat16(nd(rng));
  for (auto& v : Cm) v = __float2bfloat16(nd(rng));
  for (auto& v : A) v = ua(rng);
  for (auto& v : Dv) v = nd(rng);
  for (auto& v : bias) v = 0.1f * nd(rng);
  for (auto& v : h0) v = nd(rng);

  auto p = ssmkit::make_selective_scan_params(ssmkit::DType::kBFloat16, Bn, Dn, L, N);
  p.delta_softplus = true;
  std::vector<void*> bufs;
  auto upload = [&](const void* src, size_t bytes) -> void* {
    void* d = nullptr;
    if (cudaMalloc(&d, bytes) != cudaSuccess) return nullptr;
    bufs.push_back(d);
    if (src) cudaMemcpy(d, src, bytes, cudaMemcpyHostToDevice);
    return d;
  };
  p.u = upload(u.data(), nx * 2);
  p.delta = upload(delta.data(), nx * 2);
  p.z = upload(z.data(), nx * 2);
  p.B = upload(Bm.data(), nbc * 2);
  p.C = upload(Cm.data(), nbc * 2);
  p.A = static_cast<const float*>(upload(A.data(), A.size() * 4));
  p.D = static_cast<const float*>(upload(Dv.data(), Dv.size() * 4));
  p.delta_bias = static_cast<const float*>(upload(bias.data(), bias.size() * 4));
  p.h0 = static_cast<const float*>(upload(h0.data(), h0.size() * 4));
  p.out = upload(nullptr, nx * 2);
  p.last_state = static_cast<float*>(upload(nullptr, h0.size() * 4));
  DEMO_CUDA(cudaGetLastError());

  // Validate, launch, time.
  ssmkit::Status st = ssmkit::can_implement(p);
  if (!st.ok()) { std::fprintf(stderr, "can_implement: %s\n", st.message()); return 1; }
  cudaEvent_t e0, e1;
  DEMO_CUDA(cudaEventCreate(&e0));
  DEMO_CUDA(cudaEventCreate(&e1));
  DEMO_CUDA(cudaMemset(p.out, 0xFF, nx * 2));  // NaN everywhere: an unwritten element fails the check
  st = ssmkit::selective_scan_fwd(p, nullptr);   // warm-up and the result that is checked
  if (!st.ok()) { std::fprintf(stderr, "selective_scan_fwd: %s\n", st.message()); return 1; }
  DEMO_CUDA(cudaEventRecord(e0));
  const int reps = 10;
  for (int i = 0; i < reps; ++i) st = ssmkit::selective_scan_fwd(p, nullptr);
  DEMO_CUDA(cudaEventRecord(e1));
  DEMO_CUDA(cudaEventSynchronize(e1));
  float ms = 0;
  DEMO_CUDA(cudaEventElapsedTime(&ms, e0, e1));
  ms /= reps;

  // Check every 97th channel against the reference in double.
  std::vector<T> out(nx);
  std::vector<float> last(h0.size());
  DEMO_CUDA(cudaMemcpy(out.data(), p.out, nx * 2, cudaMemcpyDeviceToHost));
  DEMO_CUDA(cudaMemcpy(last.data(), p.last_state, last.size() * 4, cudaMemcpyDeviceToHost));
  ssmkit::SelectiveScanParams hp = p;
  hp.u = u.data(); hp.delta = delta.data(); hp.z = z.data(); hp.B = Bm.data(); hp.C = Cm.data();
  hp.A = A.data(); hp.D = Dv.data(); hp.delta_bias = bias.data(); hp.h0 = h0.data();
  hp.out = out.data(); hp.last_state = nullptr;
  std::vector<double> ref(nx, 0.0), ref_last(h0.size(), 0.0);
  double max_err = 0, scale = 0;
  size_t checked = 0, bad = 0;
  for (int64_t d = 0; d < Dn; d += 97) {
    st = ssmkit::reference::selective_scan_fwd(hp, ref.data(), ref_last.data(), d, d + 1);
    if (!st.ok()) { std::fprintf(stderr, "reference: %s\n", st.message()); return 1; }
    for (int64_t b = 0; b < Bn; ++b)
      for (int64_t t = 0; t < L; ++t) {
        const size_t i = (b * Dn + d) * L + t;
        scale = std::fmax(scale, std::fabs(ref[i]));
      }
  }
  for (int64_t d = 0; d < Dn; d += 97)
    for (int64_t b = 0; b < Bn; ++b) {
      for (int64_t t = 0; t < L; ++t) {
        const size_t i = (b * Dn + d) * L + t;
        const double o = __bfloat162float(out[i]);
        const double err = std::fabs(o - ref[i]);
        if (!(err <= 1.6e-2 * std::fabs(ref[i]) + 4e-3 * scale)) ++bad;  // NaN counts as bad
        max_err = std::fmax(max_err, err / (std::fabs(ref[i]) + 1e-3 * scale));
        ++checked;
      }
      for (int64_t n = 0; n < N; ++n) {
        const size_t i = (b * Dn + d) * N + n;
        if (!(std::fabs(last[i] - ref_last[i]) <= 2e-4 * std::fabs(ref_last[i]) + 1e-4)) ++bad;
      }
    }
  for (void* b : bufs) cudaFree(b);

  std::printf("shape B%lld D%lld L%lld N%lld bf16: %.4f ms, %.1f G elements/s, %.3g exp2/s\n", (long long)Bn,
              (long long)Dn, (long long)L, (long long)N, ms, nx / (ms * 1e-3) / 1e9, double(nx) * N / (ms * 1e-3));
  std::printf("checked %zu outputs against the double reference: max rel err %.3g, %zu outside tolerance\n",
              checked, max_err, bad);
  std::printf("%s\n", bad == 0 ? "PASSED" : "FAILED");
  return bad == 0 ? 0 : 1;
}
