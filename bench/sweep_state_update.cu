/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// Configuration sweep of the decode-step kernel (states per thread, rows per thread, threads
// per block) on the Mamba-1 2.8b and Mamba-2 2.7b decode shapes over batch sizes, timed as
// ssmkit_bench times them (CUDA-graph replay of 100 launches, bf16 activations, fp32 state).
// Every configuration is first checked against the run-time launcher on a batch of 3. The
// run-time launcher is timed on the same shapes, so its choices can be compared with the
// best configuration. Built with -DSSMKIT_BENCH_SWEEP=ON.
//
// Compiled with -DSSMKIT_SWEEP_LAUNCHER_ONLY it times the run-time launcher alone, which
// also builds against older ssmkit headers for a before/after comparison in one run.
#include <ssmkit/selective_state_update.cuh>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_common.cuh"
#include "selective_state_update.cuh"

namespace {

using ssmkit::DType;
using ssmkit_bench::fill;

struct Shape {
  const char* name;
  bool mamba2;
  int64_t H, P, N;
};
const Shape kMamba1{"mamba-2.8b", false, 5120, 1, 16};
const Shape kMamba2{"mamba2-2.7b", true, 80, 64, 128};

// Device buffers and parameters of one decode call (the benchmark's data).
struct Problem {
  ssmkit::SelectiveStateUpdateParams p;
  std::vector<void*> bufs;
  void* state0 = nullptr;  // pristine copy of the state
  size_t state_bytes = 0, out_bytes = 0;
  double bytes = 0;  // state read and written, x, z, dt, B, C read, out written

  Problem(const Shape& s, int64_t batch) {
    p = ssmkit::make_selective_state_update_params(DType::kBFloat16, DType::kFloat32, batch, s.H, s.P, s.N);
    const int64_t per_head = s.mamba2 ? 1 : s.P;
    if (s.mamba2) ssmkit_bench::set_per_head_strides(p, s.H);
    const size_t nstate = size_t(batch * s.H * s.P * s.N), nx = size_t(batch * s.H * s.P);
    const size_t ndt = size_t(batch * s.H * per_head), nbc = size_t(batch * s.N);
    const size_t na = s.mamba2 ? size_t(s.H) : size_t(s.H * s.P * s.N), nv = size_t(s.H * per_head);
    state_bytes = nstate * 4;
    out_bytes = nx * 2;
    p.state = alloc(state_bytes);
    fill(p.state, nstate, DType::kFloat32, 1, -1.f, 1.f);
    state0 = alloc(state_bytes);
    BENCH_CUDA(cudaMemcpy(state0, p.state, state_bytes, cudaMemcpyDeviceToDevice));
    void* x = alloc(nx * 2); fill(x, nx, DType::kBFloat16, 2, -1.f, 1.f);
    void* z = alloc(nx * 2); fill(z, nx, DType::kBFloat16, 3, -2.f, 2.f);
    void* dt = alloc(ndt * 2); fill(dt, ndt, DType::kBFloat16, 4, -3.f, 0.5f);
    void* Bm = alloc(nbc * 2); fill(Bm, nbc, DType::kBFloat16, 5, -1.f, 1.f);
    void* Cm = alloc(nbc * 2); fill(Cm, nbc, DType::kBFloat16, 6, -1.f, 1.f);
    void* A = alloc(na * 4); fill(A, na, DType::kFloat32, 7, -3.f, -0.2f);
    void* Dv = alloc(nv * 4); fill(Dv, nv, DType::kFloat32, 8, -1.f, 1.f);
    void* bias = alloc(nv * 4); fill(bias, nv, DType::kFloat32, 9, -0.1f, 0.1f);
    p.x = x; p.z = z; p.dt = dt; p.B = Bm; p.C = Cm;
    p.A = static_cast<float*>(A); p.D = static_cast<float*>(Dv); p.dt_bias = static_cast<float*>(bias);
    p.dt_softplus = true;
    p.out = alloc(out_bytes);
    bytes = 2.0 * nstate * 4 + (3.0 * nx + ndt + 2.0 * nbc) * 2;
  }
  ~Problem() { for (void* q : bufs) cudaFree(q); }
  Problem(const Problem&) = delete;
  Problem& operator=(const Problem&) = delete;

  void* alloc(size_t n) {
    void* q;
    BENCH_CUDA(cudaMalloc(&q, n));
    bufs.push_back(q);
    return q;
  }
  void reset() { BENCH_CUDA(cudaMemcpy(p.state, state0, state_bytes, cudaMemcpyDeviceToDevice)); }

  // Out and state after one call from the pristine state, as floats.
  void run_once(ssmkit::Status (*launch)(const ssmkit::SelectiveStateUpdateParams&, cudaStream_t),
                std::vector<float>& out, std::vector<float>& state) {
    reset();
    BENCH_CUDA(cudaMemset(p.out, 0xFF, out_bytes));
    const ssmkit::Status st = launch(p, nullptr);
    if (!st.ok()) { std::fprintf(stderr, "launch: %s\n", st.message()); std::exit(1); }
    BENCH_CUDA(cudaDeviceSynchronize());
    std::vector<__nv_bfloat16> ob(out_bytes / 2);
    BENCH_CUDA(cudaMemcpy(ob.data(), p.out, out_bytes, cudaMemcpyDeviceToHost));
    out.resize(ob.size());
    for (size_t i = 0; i < ob.size(); ++i) out[i] = __bfloat162float(ob[i]);
    state.resize(state_bytes / 4);
    BENCH_CUDA(cudaMemcpy(state.data(), p.state, state_bytes, cudaMemcpyDeviceToHost));
  }

  // Median time of one launch, from a graph of 100 launches (as ssmkit_bench).
  double graph_us(ssmkit::Status (*launch)(const ssmkit::SelectiveStateUpdateParams&, cudaStream_t),
                  ssmkit_bench::Timer& timer) {
    constexpr int kLaunches = 100;
    cudaStream_t s;
    BENCH_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    cudaGraph_t graph;
    BENCH_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < kLaunches; ++i) {
      const ssmkit::Status st = launch(p, s);
      if (!st.ok()) { std::fprintf(stderr, "launch: %s\n", st.message()); std::exit(1); }
    }
    BENCH_CUDA(cudaStreamEndCapture(s, &graph));
    cudaGraphExec_t exec;
    BENCH_CUDA(cudaGraphInstantiate(&exec, graph, 0));
    const double ms = timer.median_ms([&](int) { BENCH_CUDA(cudaGraphLaunch(exec, s)); }, 20, s);
    BENCH_CUDA(cudaStreamSynchronize(s));
    BENCH_CUDA(cudaGraphExecDestroy(exec));
    BENCH_CUDA(cudaGraphDestroy(graph));
    BENCH_CUDA(cudaStreamDestroy(s));
    return ms * 1e3 / kLaunches;
  }
};

ssmkit::Status run_time_launcher(const ssmkit::SelectiveStateUpdateParams& p, cudaStream_t s) {
  return ssmkit::selective_state_update(p, s);
}

double g_copy_gbs = 0;

double pct_bw(const Problem& pb, double us) { return 100.0 * pb.bytes / (us * 1e-6) / (g_copy_gbs * 1e9); }

#if !defined(SSMKIT_SWEEP_LAUNCHER_ONLY)
// One configuration: the all-vector kernel with A per state (Mamba-1) or per head (Mamba-2).
template <bool kScalarA, int kN, int kS, int kRows, int kThreads, int kMinBlocks>
ssmkit::Status launch_config(const ssmkit::SelectiveStateUpdateParams& p, cudaStream_t s) {
  using Traits = ssmkit::SelectiveStateUpdateTraits<__nv_bfloat16, float, kN, kS, kRows, kThreads, kMinBlocks,
                                                    kScalarA, true>;
  const dim3 grid(static_cast<unsigned>(Traits::grid_x(p)), static_cast<unsigned>(p.batch));
  ssmkit::selective_state_update_kernel<Traits><<<grid, kThreads, 0, s>>>(p);
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? ssmkit::Status::Ok() : ssmkit::Status::FromCuda(e, "kernel");
}

template <int kS, int kRows, int kThreads, int kMinBlocks = 1>
struct Cfg {};

// The floor: a kernel that does nothing, on the grid of configuration (kN, kS, kRows,
// kThreads) and with the same parameter block.
__global__ void empty_kernel(const ssmkit::SelectiveStateUpdateParams p) {
  if (p.batch < 0) static_cast<float*>(p.state)[0] = 0.f;  // never: keeps the parameters
}

// A kernel that reads every 8-byte word of the parameter block and nothing else: the cost of
// fetching the parameters into the constant cache of every SM, over the empty kernel.
__global__ void touch_params_kernel(const ssmkit::SelectiveStateUpdateParams p) {
  const int64_t* w = reinterpret_cast<const int64_t*>(&p);
  int64_t s = 0;
#pragma unroll
  for (int i = 0; i < int(sizeof(p) / 8); ++i) s ^= w[i] + i;
  if (s == 0x7fffffff12345678ll) static_cast<float*>(p.state)[0] = 0.f;  // never
}

// The state read and written in place with 16-byte accesses (and A read, for Mamba-1), one
// thread per 16 states: the memory floor of one call.
__global__ void copy_state_kernel(const ssmkit::SelectiveStateUpdateParams p, int64_t nvec, bool read_a) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= nvec) return;
  uint4* st = static_cast<uint4*>(p.state);
  uint4 v = __ldcs(st + i);
  if (read_a) {
    const uint4 a = __ldg(reinterpret_cast<const uint4*>(p.A) + i);
    v.x ^= a.x & 1u;
  }
  __stcs(st + i, v);
}

template <int kThreads>
ssmkit::Status launch_touch(const ssmkit::SelectiveStateUpdateParams& p, cudaStream_t s) {
  touch_params_kernel<<<unsigned((p.batch * p.nheads * p.headdim + kThreads - 1) / kThreads), kThreads, 0, s>>>(p);
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? ssmkit::Status::Ok() : ssmkit::Status::FromCuda(e, "touch_params_kernel");
}

template <bool kReadA>
ssmkit::Status launch_copy(const ssmkit::SelectiveStateUpdateParams& p, cudaStream_t s) {
  const int64_t nvec = p.batch * p.nheads * p.headdim * p.dstate / 4;  // fp32 state
  copy_state_kernel<<<unsigned((nvec + 127) / 128), 128, 0, s>>>(p, nvec, kReadA);
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? ssmkit::Status::Ok() : ssmkit::Status::FromCuda(e, "copy_state_kernel");
}

template <int kN, int kS, int kRows, int kThreads>
ssmkit::Status launch_empty(const ssmkit::SelectiveStateUpdateParams& p, cudaStream_t s) {
  using Traits = ssmkit::SelectiveStateUpdateTraits<__nv_bfloat16, float, kN, kS, kRows, kThreads>;
  const dim3 grid(static_cast<unsigned>(Traits::grid_x(p)), static_cast<unsigned>(p.batch));
  empty_kernel<<<grid, kThreads, 0, s>>>(p);
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? ssmkit::Status::Ok() : ssmkit::Status::FromCuda(e, "empty_kernel");
}

// Largest relative difference of a against b, relative to b's root mean square.
double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double rms = 0, worst = 0;
  for (float v : b) rms += double(v) * v;
  rms = std::sqrt(rms / std::max<size_t>(1, b.size())) + 1e-30;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(double(a[i]) - b[i]) / rms;
    worst = std::isnan(d) ? INFINITY : std::max(worst, d);
  }
  return worst;
}

template <bool kScalarA, int kN, class... Cfgs>
struct Sweep;

template <bool kScalarA, int kN, int... kS, int... kRows, int... kThreads, int... kMinBlocks>
struct Sweep<kScalarA, kN, Cfg<kS, kRows, kThreads, kMinBlocks>...> {
  static void run(const Shape& sh, const std::vector<int64_t>& batches, ssmkit_bench::Timer& timer) {
    using Launch = ssmkit::Status (*)(const ssmkit::SelectiveStateUpdateParams&, cudaStream_t);
    const Launch launches[] = {&launch_config<kScalarA, kN, kS, kRows, kThreads, kMinBlocks>...};
    const int cfg[][4] = {{kS, kRows, kThreads, kMinBlocks}...};
    const int n = int(sizeof(cfg) / sizeof(cfg[0]));
    std::vector<bool> ok(n, true);
    {  // check against the run-time launcher on a small batch
      Problem pb(sh, 3);
      std::vector<float> out_ref, state_ref, out, state;
      pb.run_once(run_time_launcher, out_ref, state_ref);
      for (int i = 0; i < n; ++i) {
        pb.run_once(launches[i], out, state);
        const double eo = max_rel_diff(out, out_ref), es = max_rel_diff(state, state_ref);
        ok[i] = eo < 1e-2 && es < 1e-5;
        if (!ok[i])
          std::printf("%s S%d R%d T%d M%d: MISMATCH out %.3g state %.3g\n", sh.name, cfg[i][0], cfg[i][1],
                      cfg[i][2], cfg[i][3], eo, es);
      }
    }
    for (int64_t B : batches) {
      Problem pb(sh, B);
      const double base = pb.graph_us(run_time_launcher, timer);
      std::printf("%-12s B%-4lld launcher              %8.2f us %5.1f%% copy BW\n", sh.name, (long long)B, base,
                  pct_bw(pb, base));
      int best = -1;
      double best_us = 1e30;
      for (int i = 0; i < n; ++i) {
        if (!ok[i]) continue;
        const double us = pb.graph_us(launches[i], timer);
        std::printf("%-12s B%-4lld S%-2d R%d T%-3d M%d          %8.2f us %5.1f%% copy BW\n", sh.name, (long long)B,
                    cfg[i][0], cfg[i][1], cfg[i][2], cfg[i][3], us, pct_bw(pb, us));
        if (us < best_us) { best_us = us; best = i; }
      }
      if (best >= 0)
        std::printf("BEST %-12s B%-4lld S%d R%d T%d M%d %.2f us %.1f%% (launcher %.2f us %.1f%%)\n", sh.name,
                    (long long)B, cfg[best][0], cfg[best][1], cfg[best][2], cfg[best][3], best_us,
                    pct_bw(pb, best_us), base, pct_bw(pb, base));
    }
  }
};
#endif

}  // namespace

int main(int argc, char** argv) {
  cudaDeviceProp prop;
  BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
  if (argc == 3 && std::string(argv[1]) == "--once") {  // 20 plain launches, for a profiler
    const Shape& sh = std::string(argv[2]) == kMamba1.name ? kMamba1 : kMamba2;
    Problem pb(sh, 1);
    for (int i = 0; i < 20; ++i)
      if (!run_time_launcher(pb.p, nullptr).ok()) return 1;
    BENCH_CUDA(cudaDeviceSynchronize());
    return 0;
  }
  ssmkit_bench::Timer timer;
  {  // copy ceiling, as ssmkit_bench measures it
    const size_t n = size_t(1) << 30;
    void *a, *b;
    BENCH_CUDA(cudaMalloc(&a, n));
    BENCH_CUDA(cudaMalloc(&b, n));
    BENCH_CUDA(cudaMemset(a, 1, n));
    const double ms = timer.median_ms([&](int) { BENCH_CUDA(cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice)); }, 20);
    g_copy_gbs = 2.0 * n / (ms * 1e-3) / 1e9;
    BENCH_CUDA(cudaFree(a));
    BENCH_CUDA(cudaFree(b));
  }
  std::printf("device: %s, %d SMs; copy %.0f GB/s (read + write)\n", prop.name, prop.multiProcessorCount, g_copy_gbs);
  const std::vector<int64_t> batches = {1, 2, 4, 8, 16, 32, 64, 128};
#if defined(SSMKIT_SWEEP_LAUNCHER_ONLY)
  for (const Shape& sh : {kMamba1, kMamba2})
    for (int64_t B : batches) {
      Problem pb(sh, B);
      const double us = pb.graph_us(run_time_launcher, timer);
      std::printf("%-12s B%-4lld launcher              %8.2f us %5.1f%% copy BW\n", sh.name, (long long)B, us,
                  pct_bw(pb, us));
    }
#else
  {  // the launch floor at batch 1
    Problem m1(kMamba1, 1), m2(kMamba2, 1);
    std::printf("floor: empty kernel, grid of S16 R1 T32 on %s B1: %.2f us\n", kMamba1.name,
                m1.graph_us(launch_empty<16, 16, 1, 32>, timer));
    std::printf("floor: empty kernel, grid of S8 R1 T64 on %s B1: %.2f us\n", kMamba1.name,
                m1.graph_us(launch_empty<16, 8, 1, 64>, timer));
    std::printf("floor: empty kernel, grid of S16 R1 T64 on %s B1: %.2f us\n", kMamba2.name,
                m2.graph_us(launch_empty<128, 16, 1, 64>, timer));
    std::printf("floor: kernel reading its %zu-byte parameter block, %s B1 rows / 32: %.2f us\n",
                sizeof(ssmkit::SelectiveStateUpdateParams), kMamba1.name, m1.graph_us(launch_touch<32>, timer));
    std::printf("floor: state copied in place and A read, %s B1: %.2f us\n", kMamba1.name,
                m1.graph_us(launch_copy<true>, timer));
    std::printf("floor: state copied in place, %s B1: %.2f us\n", kMamba2.name, m2.graph_us(launch_copy<false>, timer));
    Problem m2b2(kMamba2, 2);
    std::printf("floor: state copied in place, %s B2: %.2f us\n", kMamba2.name, m2b2.graph_us(launch_copy<false>, timer));
  }
  if (argc == 2 && std::string(argv[1]) == "--floors") return 0;
  // Cfg<states per thread, rows per thread, threads, min blocks per SM (register cap)>.
  Sweep<false, 16, Cfg<8, 1, 32>, Cfg<8, 1, 64>, Cfg<8, 1, 128>, Cfg<8, 1, 64, 12>, Cfg<8, 1, 128, 6>,
        Cfg<16, 1, 32>, Cfg<16, 1, 64>, Cfg<16, 1, 128, 4>, Cfg<8, 2, 64, 8>, Cfg<8, 2, 128, 4>,
        Cfg<8, 2, 128, 5>, Cfg<8, 2, 128, 6>, Cfg<8, 4, 128, 4>, Cfg<16, 2, 128, 4>>::run(kMamba1, batches, timer);
  Sweep<true, 128, Cfg<8, 1, 64>, Cfg<8, 1, 128>, Cfg<16, 1, 32>, Cfg<16, 1, 64>, Cfg<16, 1, 128>,
        Cfg<32, 1, 64>, Cfg<32, 1, 128>, Cfg<16, 2, 128>, Cfg<16, 2, 128, 4>, Cfg<16, 2, 256>,
        Cfg<32, 2, 64>>::run(kMamba2, batches, timer);
#endif
  return 0;
}
