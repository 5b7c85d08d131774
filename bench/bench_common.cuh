/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// Shared pieces of ssmkit's benchmark program: timing, device fills, the run context with the
// measured ceilings, and the result rows every op's cases append to.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <ssmkit/types.cuh>

#define BENCH_CUDA(call)                                                                         \
  do {                                                                                           \
    cudaError_t e_ = (call);                                                                     \
    if (e_ != cudaSuccess) {                                                                     \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(1);                                                                              \
    }                                                                                            \
  } while (0)

namespace ssmkit_bench {

// Keeps one GPU thread busy for `ns` nanoseconds (globaltimer).
__global__ inline void busy_wait_kernel(unsigned long long ns) {
  unsigned long long t0, t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  do {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  } while (t - t0 < ns);
}

// Median of CUDA-event times of f(i) over `reps` runs after a warm-up: at least three calls,
// and calls until 20 ms of GPU work have run (at most 400 calls). On an H100 the first few
// milliseconds of calls on freshly allocated buffers can run slower than the rest: the
// channel-last conv1d forward at B8 D3072 L2048 measured 0.094 ms over its first 30 calls and
// 0.080 ms over every later set of 30 in the same process (bench/NOTES.md).
//
// What the events time: by default each timed call is preceded on its stream by a kernel that
// keeps the GPU busy for lead_us (50 us), so that the host enqueues the first event, does the
// call's host work (a launcher's checks and the launch) and enqueues the second event while
// the GPU is still busy: the interval is then the GPU's work for the call, from the end of that
// kernel to the end of the call's last kernel, as it runs inside a stream or a graph that keeps
// the GPU fed. With host_in_time (the benchmark's --host-in-time) the lead kernel is left out:
// the GPU is idle when the first event is recorded, and the interval also holds whatever host
// work the call does before its launch. host_us_per_call() measures that host work by itself.
struct Timer {
  cudaEvent_t a, b;
  bool host_in_time = false;
  double lead_us = 50;
  Timer() { BENCH_CUDA(cudaEventCreate(&a)); BENCH_CUDA(cudaEventCreate(&b)); }
  ~Timer() { cudaEventDestroy(a); cudaEventDestroy(b); }
  template <typename F>
  double median_ms(F&& f, int reps, cudaStream_t s = nullptr) {
    std::vector<double> t;
    BENCH_CUDA(cudaEventRecord(a, s));
    for (int i = 0; i < 400; ++i) {
      f(i);
      if (i < 2) continue;
      BENCH_CUDA(cudaEventRecord(b, s));
      BENCH_CUDA(cudaEventSynchronize(b));
      float ms = 0;
      BENCH_CUDA(cudaEventElapsedTime(&ms, a, b));
      if (ms >= 20.f) break;
    }
    for (int i = 0; i < reps; ++i) {
      if (!host_in_time) busy_wait_kernel<<<1, 1, 0, s>>>(static_cast<unsigned long long>(lead_us * 1e3));
      BENCH_CUDA(cudaEventRecord(a, s));
      f(i);
      BENCH_CUDA(cudaEventRecord(b, s));
      BENCH_CUDA(cudaEventSynchronize(b));
      float ms = 0;
      BENCH_CUDA(cudaEventElapsedTime(&ms, a, b));
      t.push_back(ms);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  }
};

// Device-to-device copy bandwidth (bytes read + written per second / 1e9) of a 1 GiB copy:
// the ceiling that every "% of copy bandwidth" figure is measured against.
inline double measure_copy_gbs(Timer& timer) {
  const size_t n = size_t(1) << 30;
  void *src, *dst;
  BENCH_CUDA(cudaMalloc(&src, n));
  BENCH_CUDA(cudaMalloc(&dst, n));
  BENCH_CUDA(cudaMemset(src, 1, n));
  const double ms = timer.median_ms([&](int) { BENCH_CUDA(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice)); }, 20);
  BENCH_CUDA(cudaFree(src));
  BENCH_CUDA(cudaFree(dst));
  return 2.0 * n / (ms * 1e-3) / 1e9;
}

// Milliseconds per call of `calls` calls of launch(i, stream) captured in one CUDA graph:
// median graph replay time over `reps` replays, divided by `calls`.
template <typename F>
double graph_ms_per_call(Timer& timer, int calls, int reps, F&& launch) {
  cudaStream_t stream;
  BENCH_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  BENCH_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  for (int i = 0; i < calls; ++i) launch(i, stream);
  BENCH_CUDA(cudaStreamEndCapture(stream, &graph));
  BENCH_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  BENCH_CUDA(cudaDeviceSynchronize());
  const double ms = timer.median_ms([&](int) { BENCH_CUDA(cudaGraphLaunch(exec, stream)); }, reps, stream) / calls;
  BENCH_CUDA(cudaStreamSynchronize(stream));
  BENCH_CUDA(cudaGraphExecDestroy(exec));
  BENCH_CUDA(cudaGraphDestroy(graph));
  BENCH_CUDA(cudaStreamDestroy(stream));
  return ms;
}

// Host microseconds per call of f() (a launcher call that enqueues work): the median of 5 runs
// of 16 calls each, timed on the host without waiting for the GPU between calls.
template <class F>
double host_us_per_call(F&& f) {
  std::vector<double> us;
  for (int run = 0; run < 6; ++run) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 16; ++i) f();
    const auto t1 = std::chrono::steady_clock::now();
    BENCH_CUDA(cudaDeviceSynchronize());
    if (run > 0) us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / 16);
  }
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

__global__ inline void fill_kernel(void* p, size_t n, uint32_t seed, float lo, float hi, int dtype) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    uint32_t x = uint32_t(i) * 0x9E3779B1u ^ uint32_t(i >> 32) * 0x85EBCA77u ^ seed;
    x ^= x >> 15; x *= 0x2C1B3C6Du; x ^= x >> 12; x *= 0x297A2D39u; x ^= x >> 15;
    const float v = lo + (hi - lo) * (x >> 8) * (1.f / 16777216.f);
    if (dtype == 0) static_cast<float*>(p)[i] = v;
    else if (dtype == 1) static_cast<__half*>(p)[i] = __float2half(v);
    else static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16(v);
  }
}

// Fills n elements of dtype t with uniform values in [lo, hi) (never zeros by construction).
inline void fill(void* p, size_t n, ssmkit::DType t, uint32_t seed, float lo, float hi) {
  fill_kernel<<<2048, 256>>>(p, n, seed, lo, hi, static_cast<int>(t));
  BENCH_CUDA(cudaGetLastError());
}

inline std::string dtype_name(ssmkit::DType t) {
  return t == ssmkit::DType::kFloat32 ? "fp32" : t == ssmkit::DType::kFloat16 ? "fp16" : "bf16";
}

// One measured case. pct_* are negative where the column does not apply.
struct Row {
  std::string op;      // e.g. "selective_scan_fwd"
  std::string name;    // model shape it comes from, e.g. "mamba-130m train"
  std::string dtype;   // "bf16", ...
  std::string shape;   // e.g. "B8 D1536 L2048 N16"
  double ms = 0;       // median kernel time (or graph replay time)
  double gelems = -1;  // G elements / s, where meaningful
  double pct_bw = -1;  // % of measured copy bandwidth
  double pct_exp2 = -1;  // % of the exp2 bound
  double anchor_ms = 0;  // reference implementation on an H100 (ANCHORS.md), 0 if none
};

// What every op's benchmark function receives.
struct Context {
  cudaDeviceProp prop{};
  double copy_gbs = 0;    // measured device-to-device copy, bytes read + written per second / 1e9
  double exp2_per_s = 0;  // measured MUFU ex2 rate
  std::string filter;     // only cases whose label contains it
  int reps = 20;
  Timer timer;
  std::vector<Row> rows;

  bool selected(const std::string& label) const { return filter.empty() || label.find(filter) != std::string::npos; }

  // Records and prints a row.
  void add(const Row& r) {
    rows.push_back(r);
    char pb[32] = "", pe[32] = "", ge[32] = "", an[64] = "";
    if (r.pct_bw >= 0) std::snprintf(pb, sizeof pb, "%5.1f%% copy BW", r.pct_bw);
    if (r.pct_exp2 >= 0) std::snprintf(pe, sizeof pe, "%5.1f%% exp2 bound", r.pct_exp2);
    if (r.gelems >= 0) std::snprintf(ge, sizeof ge, "%7.1f Gelem/s", r.gelems);
    if (r.anchor_ms > 0 && r.anchor_ms < 0.1)
      std::snprintf(an, sizeof an, "(reference %.2f us: %.2fx)", r.anchor_ms * 1e3, r.anchor_ms / r.ms);
    else if (r.anchor_ms > 0)
      std::snprintf(an, sizeof an, "(reference %.4f ms: %.2fx)", r.anchor_ms, r.anchor_ms / r.ms);
    // Times below 0.1 ms (the decode steps) in microseconds with two decimals.
    char tm[32];
    if (r.ms < 0.1) std::snprintf(tm, sizeof tm, "%9.2f us", r.ms * 1e3);
    else std::snprintf(tm, sizeof tm, "%9.4f ms", r.ms);
    std::printf("%-22s %-30s %-4s %-24s %s %s %s %s %s\n", r.op.c_str(), r.name.c_str(), r.dtype.c_str(),
                r.shape.c_str(), tm, ge, pb, pe, an);
    std::fflush(stdout);
  }
};

}  // namespace ssmkit_bench
