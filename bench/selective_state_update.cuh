/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// Decode step (selective state update) on the Mamba-1 2.8b and Mamba-2 2.7b shapes. The
// kernel time is measured as decode engines run it: a CUDA graph of kLaunches launches is
// replayed and its time divided by kLaunches. Bytes: the fp32 state read and written once,
// plus x, dt, z, B, C read and out written.
#pragma once

#include <ssmkit/selective_state_update.cuh>

#include <cstdio>
#include <string>
#include <vector>

#include "bench_common.cuh"

namespace ssmkit_bench {

// Mamba-2 layers pass A, dt, dt_bias and D with one value per head (stride 0 over headdim and
// dstate): the strides of contiguous (batch, H) dt, (H,) A, D and dt_bias.
inline void set_per_head_strides(ssmkit::SelectiveStateUpdateParams& p, int64_t H) {
  p.dt_dim_stride = 0;
  p.dt_head_stride = 1;
  p.dt_token_stride = p.dt_batch_stride = H;
  p.A_head_stride = 1;
  p.A_dim_stride = p.A_dstate_stride = 0;
  p.D_head_stride = p.dt_bias_head_stride = 1;
  p.D_dim_stride = p.dt_bias_dim_stride = 0;
}

inline void bench_selective_state_update(Context& ctx) {
  using ssmkit::DType;
  struct DecodeCase {
    const char* name;
    bool mamba2;
    int64_t B, H, P, N, G;
    double anchor_us;  // mamba-ssm Triton kernel replayed from a CUDA graph (ANCHORS), 0 if none
    bool pdl = false;  // launched with programmatic dependent launch (LaunchOptions::pdl)
  };
  const std::vector<DecodeCase> cases = {
      {"mamba-2.8b decode", false, 1, 5120, 1, 16, 1, 2.06},
      {"mamba-2.8b decode", false, 16, 5120, 1, 16, 1, 4.83},
      {"mamba-2.8b decode", false, 128, 5120, 1, 16, 1, 33.0},
      {"mamba2-2.7b decode", true, 1, 80, 64, 128, 1, 3.75},
      {"mamba2-2.7b decode", true, 16, 80, 64, 128, 1, 33.6},
      {"mamba2-2.7b decode", true, 128, 80, 64, 128, 1, 289.0},
      // The same batch-1 steps launched with programmatic dependent launch: each launch
      // overlaps the end of the one before (the kernel still waits for it before reading).
      {"mamba-2.8b decode, pdl", false, 1, 5120, 1, 16, 1, 2.06, true},
      {"mamba2-2.7b decode, pdl", true, 1, 80, 64, 128, 1, 3.75, true},
  };
  constexpr int kLaunches = 100;
  const DType t = DType::kBFloat16;
  for (const DecodeCase& c : cases) {
    char shape[96];
    if (c.mamba2)
      std::snprintf(shape, sizeof shape, "B%lld H%lld P%lld N%lld G%lld", (long long)c.B, (long long)c.H,
                    (long long)c.P, (long long)c.N, (long long)c.G);
    else
      std::snprintf(shape, sizeof shape, "B%lld D%lld N%lld", (long long)c.B, (long long)c.H, (long long)c.N);
    if (!ctx.selected(std::string("selective_state_update ") + c.name + " " + dtype_name(t) + " " + shape)) continue;
    auto p = ssmkit::make_selective_state_update_params(t, DType::kFloat32, c.B, c.H, c.P, c.N, c.G);
    const int64_t per_head = c.mamba2 ? 1 : c.P;  // Mamba-2: one dt, dt_bias, D and A per head
    if (c.mamba2) set_per_head_strides(p, c.H);
    const size_t nstate = size_t(c.B * c.H * c.P * c.N), nx = size_t(c.B * c.H * c.P);
    const size_t ndt = size_t(c.B * c.H * per_head), nbc = size_t(c.B * c.G * c.N);
    std::vector<void*> bufs;
    auto alloc = [&](size_t bytes) { void* q; BENCH_CUDA(cudaMalloc(&q, bytes)); bufs.push_back(q); return q; };
    void* state = alloc(nstate * 4);
    fill(state, nstate, DType::kFloat32, 1, -1.f, 1.f);
    void* x = alloc(nx * 2); fill(x, nx, t, 2, -1.f, 1.f);
    void* z = alloc(nx * 2); fill(z, nx, t, 3, -2.f, 2.f);
    void* dt = alloc(ndt * 2); fill(dt, ndt, t, 4, -3.f, 0.5f);
    void* Bm = alloc(nbc * 2); fill(Bm, nbc, t, 5, -1.f, 1.f);
    void* Cm = alloc(nbc * 2); fill(Cm, nbc, t, 6, -1.f, 1.f);
    const size_t na = c.mamba2 ? size_t(c.H) : size_t(c.H * c.P * c.N);
    float* A = static_cast<float*>(alloc(na * 4)); fill(A, na, DType::kFloat32, 7, -3.f, -0.2f);
    float* Dv = static_cast<float*>(alloc(c.H * per_head * 4)); fill(Dv, c.H * per_head, DType::kFloat32, 8, -1.f, 1.f);
    float* bias = static_cast<float*>(alloc(c.H * per_head * 4)); fill(bias, c.H * per_head, DType::kFloat32, 9, -0.1f, 0.1f);
    void* out = alloc(nx * 2);
    p.state = state; p.x = x; p.z = z; p.dt = dt; p.B = Bm; p.C = Cm; p.A = A; p.D = Dv; p.dt_bias = bias;
    p.dt_softplus = true;
    p.out = out;

    cudaStream_t s;
    BENCH_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    cudaGraph_t graph;
    BENCH_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < kLaunches; ++i) {
      ssmkit::LaunchOptions opts;
      opts.pdl = c.pdl;
      const ssmkit::Status st = ssmkit::selective_state_update(p, s, opts);
      if (!st.ok()) { std::fprintf(stderr, "%s: %s\n", shape, st.message()); std::exit(1); }
    }
    BENCH_CUDA(cudaStreamEndCapture(s, &graph));
    cudaGraphExec_t exec;
    BENCH_CUDA(cudaGraphInstantiate(&exec, graph, 0));
    const double graph_ms = ctx.timer.median_ms([&](int) { BENCH_CUDA(cudaGraphLaunch(exec, s)); }, ctx.reps, s);
    BENCH_CUDA(cudaStreamSynchronize(s));
    BENCH_CUDA(cudaGraphExecDestroy(exec));
    BENCH_CUDA(cudaGraphDestroy(graph));
    BENCH_CUDA(cudaStreamDestroy(s));
    for (void* q : bufs) BENCH_CUDA(cudaFree(q));

    const double ms = graph_ms / kLaunches;
    const double bytes = 2.0 * nstate * 4 + (3.0 * nx + ndt + 2.0 * nbc) * 2;
    Row r;
    r.op = "selective_state_update";
    r.name = c.name;
    r.dtype = dtype_name(t);
    r.shape = shape;
    r.ms = ms;
    r.gelems = nstate / (ms * 1e-3) / 1e9;  // states updated per second
    r.pct_bw = 100.0 * bytes / (ms * 1e-3) / (ctx.copy_gbs * 1e9);
    r.anchor_ms = c.anchor_us / 1000.0;
    ctx.add(r);
  }
}

}  // namespace ssmkit_bench
