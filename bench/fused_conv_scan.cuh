/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// The x branch of a Mamba-1 block: causal conv1d (W4, silu) then the selective scan, as two
// launches (the conv's output written and read back) and as one fused scan launch.
#pragma once

#include <ssmkit/causal_conv1d.cuh>
#include <ssmkit/selective_scan.cuh>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_common.cuh"

namespace ssmkit_bench {

inline void bench_fused_conv_scan(Context& ctx) {
  using ssmkit::DType;
  struct FusedCase {
    const char* name;
    DType dtype;
    int64_t B, D, L, N, W;
  };
  const std::vector<FusedCase> cases = {
      {"mamba-130m train", DType::kBFloat16, 8, 1536, 2048, 16, 4},
      {"mamba-2.8b train", DType::kBFloat16, 8, 5120, 2048, 16, 4},
  };
  for (const FusedCase& c : cases) {
    char shape[96];
    std::snprintf(shape, sizeof shape, "B%lld D%lld L%lld N%lld W%lld", (long long)c.B, (long long)c.D,
                  (long long)c.L, (long long)c.N, (long long)c.W);
    if (!ctx.selected(std::string("conv1d+scan ") + c.name + " " + dtype_name(c.dtype) + " " + shape)) continue;
    const int es = ssmkit::dtype_size(c.dtype);
    const size_t nx = size_t(c.B * c.D * c.L), nbc = size_t(c.B * c.N * c.L);
    std::vector<void*> bufs;
    auto alloc = [&](size_t bytes) { void* p; BENCH_CUDA(cudaMalloc(&p, bytes)); bufs.push_back(p); return p; };
    void* x = alloc(nx * es); fill(x, nx, c.dtype, 1, -1.f, 1.f);
    void* u = alloc(nx * es);
    void* dl = alloc(nx * es); fill(dl, nx, c.dtype, 2, -3.f, 0.5f);
    void* z = alloc(nx * es); fill(z, nx, c.dtype, 3, -2.f, 2.f);
    void* Bm = alloc(nbc * es); fill(Bm, nbc, c.dtype, 4, -1.f, 1.f);
    void* Cm = alloc(nbc * es); fill(Cm, nbc, c.dtype, 5, -1.f, 1.f);
    void* out = alloc(nx * es);
    float* A = static_cast<float*>(alloc(c.D * c.N * 4)); fill(A, c.D * c.N, DType::kFloat32, 6, -3.f, -0.2f);
    float* Dv = static_cast<float*>(alloc(c.D * 4)); fill(Dv, c.D, DType::kFloat32, 7, -1.f, 1.f);
    float* bias = static_cast<float*>(alloc(c.D * 4)); fill(bias, c.D, DType::kFloat32, 8, -0.1f, 0.1f);
    void* w = alloc(c.D * c.W * es); fill(w, c.D * c.W, c.dtype, 9, -0.5f, 0.5f);
    void* wb = alloc(c.D * es); fill(wb, c.D, c.dtype, 10, -0.1f, 0.1f);

    auto cp = ssmkit::make_causal_conv1d_params(c.dtype, c.dtype, c.B, c.D, c.L, c.W, false);
    cp.x = x; cp.out = u; cp.weight = w; cp.bias = wb; cp.silu = true;
    auto sp = ssmkit::make_selective_scan_params(c.dtype, c.B, c.D, c.L, c.N);
    sp.u = u; sp.delta = dl; sp.z = z; sp.B = Bm; sp.C = Cm; sp.A = A; sp.D = Dv; sp.delta_bias = bias;
    sp.delta_softplus = true; sp.out = out;
    auto fp = sp;
    fp.u = x;
    ssmkit::set_contiguous_scan_conv(fp, c.W, c.dtype);
    fp.conv.weight = w; fp.conv.bias = wb; fp.conv.silu = true;
    for (ssmkit::SelectiveScanParams* p : {&sp, &fp}) {
      size_t ws = 0;
      const ssmkit::Status st = ssmkit::selective_scan_workspace_size(*p, ws);
      if (!st.ok()) { std::fprintf(stderr, "%s: %s\n", shape, st.message()); std::exit(1); }
      if (ws) { p->workspace = alloc(ws); p->workspace_bytes = ws; }
    }
    auto check = [&](const ssmkit::Status& st) {
      if (!st.ok()) { std::fprintf(stderr, "%s: %s\n", shape, st.message()); std::exit(1); }
    };
    BENCH_CUDA(cudaDeviceSynchronize());
    const double two_ms = ctx.timer.median_ms([&](int) {
      check(ssmkit::causal_conv1d_fwd(cp, nullptr));
      check(ssmkit::selective_scan_fwd(sp, nullptr));
    }, ctx.reps);
    const double fused_ms = ctx.timer.median_ms([&](int) { check(ssmkit::selective_scan_fwd(fp, nullptr)); }, ctx.reps);
    // Host time of one launcher call (its checks, device-fact reads and the launch itself): the
    // GPU waits for it when the stream is idle, as in the single-call timing above.
    const double conv_host_us = host_us_per_call([&] { check(ssmkit::causal_conv1d_fwd(cp, nullptr)); });
    const double fused_host_us = host_us_per_call([&] { check(ssmkit::selective_scan_fwd(fp, nullptr)); });
    BENCH_CUDA(cudaDeviceSynchronize());
    for (void* p : bufs) BENCH_CUDA(cudaFree(p));

    const double exp2_s = double(nx) * c.N / ctx.exp2_per_s;
    for (int fused = 0; fused < 2; ++fused) {
      Row r;
      r.op = "conv1d+scan";
      r.name = std::string(c.name) + (fused ? " fused (vs two launches)" : " two launches");
      r.dtype = dtype_name(c.dtype);
      r.shape = shape;
      r.ms = fused ? fused_ms : two_ms;
      r.gelems = nx / (r.ms * 1e-3) / 1e9;
      r.pct_exp2 = 100.0 * exp2_s / (r.ms * 1e-3);
      r.anchor_ms = fused ? two_ms : 0;
      ctx.add(r);
    }
    std::printf("%-22s host time per call: causal_conv1d_fwd %.2f us, fused selective_scan_fwd %.2f us\n",
                "", conv_host_us, fused_host_us);
  }
}

}  // namespace ssmkit_bench
