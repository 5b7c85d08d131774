/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// Causal conv1d benchmark cases: the forward in both layouts and the decode update replayed
// from a CUDA graph, on the shapes of ANCHORS.md.
#pragma once

#include <ssmkit/causal_conv1d.cuh>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_common.cuh"

namespace ssmkit_bench {

namespace conv1d_detail {

struct FwdCase {
  std::string name;
  ssmkit::DType dtype;
  int64_t B, D, L, W;
  bool channel_last;
  double anchor_ms;  // causal-conv1d CUDA kernel on an H100 (ANCHORS), 0 if none
};

struct UpdCase {
  std::string name;
  ssmkit::DType dtype;
  int64_t B, D, W;
  double anchor_ms;  // causal-conv1d update replayed from a CUDA graph (ANCHORS)
  bool pdl = false;  // launched with programmatic dependent launch (LaunchOptions::pdl)
};

inline void die(const std::string& what, const ssmkit::Status& st) {
  std::fprintf(stderr, "%s: %s\n", what.c_str(), st.message());
  std::exit(1);
}

}  // namespace conv1d_detail

// Forward: x read once and out written once per element (the weight is negligible).
// Update: the state row read and written, x, out and the weight, per call; many calls
// captured in one CUDA graph, time per call from the graph's replay.
inline void bench_causal_conv1d(Context& ctx) {
  using ssmkit::DType;
  using namespace conv1d_detail;
  const std::vector<FwdCase> fwd = {
      {"mamba-790m train", DType::kBFloat16, 8, 3072, 2048, 4, false, 0.076},
      {"mamba-790m train", DType::kFloat32, 8, 3072, 2048, 4, false, 0.144},
      {"wide prefill", DType::kBFloat16, 4, 10240, 4096, 4, false, 0.234},
      {"wide prefill channel-last", DType::kBFloat16, 4, 10240, 4096, 4, true, 0.262},
      {"mamba-790m train channel-last", DType::kBFloat16, 8, 3072, 2048, 4, true, 0},
  };
  for (const FwdCase& c : fwd) {
    char shape[96];
    std::snprintf(shape, sizeof shape, "B%lld D%lld L%lld W%lld", (long long)c.B, (long long)c.D,
                  (long long)c.L, (long long)c.W);
    if (!ctx.selected("causal_conv1d_fwd " + c.name + " " + dtype_name(c.dtype) + " " + shape)) continue;
    const int es = ssmkit::dtype_size(c.dtype);
    const size_t nx = size_t(c.B * c.D * c.L);
    const size_t set_bytes = 2 * nx * es;
    const int sets = int(std::max<size_t>(2, std::min<size_t>(8, (size_t(4) * ctx.prop.l2CacheSize) / set_bytes + 1)));
    std::vector<void*> bufs;
    auto alloc = [&](size_t bytes) { void* p; BENCH_CUDA(cudaMalloc(&p, bytes)); bufs.push_back(p); return p; };
    void* w = alloc(c.D * c.W * es);
    void* bias = alloc(c.D * es);
    fill(w, c.D * c.W, c.dtype, 21, -0.5f, 0.5f);
    fill(bias, c.D, c.dtype, 22, -0.1f, 0.1f);
    std::vector<ssmkit::CausalConv1dParams> ps;
    for (int s = 0; s < sets; ++s) {
      auto p = ssmkit::make_causal_conv1d_params(c.dtype, c.dtype, c.B, c.D, c.L, c.W, c.channel_last);
      p.x = alloc(nx * es);
      fill(const_cast<void*>(p.x), nx, c.dtype, 600 + s, -1.f, 1.f);
      p.out = alloc(nx * es);
      p.weight = w;
      p.bias = bias;
      p.silu = true;
      ps.push_back(p);
    }
    BENCH_CUDA(cudaDeviceSynchronize());
    const double ms = ctx.timer.median_ms([&](int i) {
      const ssmkit::Status st = ssmkit::causal_conv1d_fwd(ps[i % sets], nullptr);
      if (!st.ok()) die(shape, st);
    }, ctx.reps);
    BENCH_CUDA(cudaDeviceSynchronize());
    for (void* p : bufs) BENCH_CUDA(cudaFree(p));
    Row r;
    r.op = "causal_conv1d_fwd";
    r.name = c.name;
    r.dtype = dtype_name(c.dtype);
    r.shape = shape;
    r.ms = ms;
    r.gelems = nx / (ms * 1e-3) / 1e9;
    r.pct_bw = 100.0 * (2.0 * nx * es) / (ms * 1e-3) / (ctx.copy_gbs * 1e9);
    r.anchor_ms = c.anchor_ms;
    ctx.add(r);
  }

  const std::vector<UpdCase> upd = {
      {"decode b1 graph", DType::kBFloat16, 1, 10240, 4, 0.00209},
      {"decode b64 graph", DType::kBFloat16, 64, 10240, 4, 0.00854},
      {"decode b256 graph", DType::kBFloat16, 256, 10240, 4, 0.0275},
      {"decode b1 graph, pdl", DType::kBFloat16, 1, 10240, 4, 0.00209, true},
      {"decode b64 graph, pdl", DType::kBFloat16, 64, 10240, 4, 0.00854, true},
      {"decode b256 graph, pdl", DType::kBFloat16, 256, 10240, 4, 0.0275, true},
  };
  for (const UpdCase& c : upd) {
    char shape[96];
    std::snprintf(shape, sizeof shape, "B%lld D%lld W%lld", (long long)c.B, (long long)c.D, (long long)c.W);
    if (!ctx.selected("causal_conv1d_update " + c.name + " " + dtype_name(c.dtype) + " " + shape)) continue;
    const int es = ssmkit::dtype_size(c.dtype);
    const int64_t S = c.W - 1;
    const size_t nstate = size_t(c.B * c.D * S), nx = size_t(c.B * c.D);
    const double bytes = (2.0 * nstate + 2.0 * nx + double(c.D) * c.W) * es;
    const int sets = int(std::max<double>(2, std::min<double>(16, 4.0 * ctx.prop.l2CacheSize / bytes + 1)));
    std::vector<void*> bufs;
    auto alloc = [&](size_t n) { void* p; BENCH_CUDA(cudaMalloc(&p, n)); bufs.push_back(p); return p; };
    std::vector<ssmkit::CausalConv1dUpdateParams> ps;
    for (int s = 0; s < sets; ++s) {
      auto p = ssmkit::make_causal_conv1d_update_params(c.dtype, c.dtype, c.B, c.D, 1, c.W, S, c.B);
      p.x = alloc(nx * es);
      fill(const_cast<void*>(p.x), nx, c.dtype, 700 + s, -1.f, 1.f);
      p.conv_state = alloc(nstate * es);
      fill(p.conv_state, nstate, c.dtype, 800 + s, -1.f, 1.f);
      p.weight = alloc(c.D * c.W * es);
      fill(const_cast<void*>(p.weight), c.D * c.W, c.dtype, 900 + s, -0.5f, 0.5f);
      p.out = alloc(nx * es);
      p.silu = true;
      ps.push_back(p);
    }
    ssmkit::LaunchOptions opts;
    opts.pdl = c.pdl;
    const double ms = graph_ms_per_call(ctx.timer, 200, ctx.reps, [&](int i, cudaStream_t stream) {
      const ssmkit::Status st = ssmkit::causal_conv1d_update(ps[i % sets], stream, opts);
      if (!st.ok()) die(shape, st);
    });
    for (void* p : bufs) BENCH_CUDA(cudaFree(p));
    Row r;
    r.op = "causal_conv1d_update";
    r.name = c.name;
    r.dtype = dtype_name(c.dtype);
    r.shape = shape;
    r.ms = ms;
    r.gelems = nx / (ms * 1e-3) / 1e9;
    r.pct_bw = 100.0 * bytes / (ms * 1e-3) / (ctx.copy_gbs * 1e9);
    r.anchor_ms = c.anchor_ms;
    ctx.add(r);
  }
}

}  // namespace ssmkit_bench
