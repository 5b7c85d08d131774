/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// ssmkit benchmark. In one run on one device it measures the two ceilings — device-to-device
// copy bandwidth and the exp2 (MUFU) rate — and then each case's median time (CUDA events,
// inputs rotated beyond L2), G elements/s, % of copy bandwidth and % of the exp2 bound.
// Prints a table and writes JSON (--json FILE); --compare FILE prints the ratio to a saved run.
//
//   bench [--json out.json] [--compare old.json] [--filter substring] [--reps N] [--host-in-time]
//
// Each timed call is preceded by a 50 us busy kernel, so that the events time the GPU's work
// and not the host's (Timer); --host-in-time leaves it out.
#include <ssmkit/selective_scan.cuh>

#include "bench_common.cuh"
#include "causal_conv1d.cuh"
#include "fused_conv_scan.cuh"
#include "selective_state_update.cuh"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace ssmkit_bench;

// Each thread runs kChains independent chains x = 2^-x; every step is one MUFU.EX2.
constexpr int kChains = 8;
__global__ void exp2_rate_kernel(float* sink, int iters) {
  float x[kChains];
#pragma unroll
  for (int c = 0; c < kChains; ++c) x[c] = 0.001f * (threadIdx.x + c);
  for (int i = 0; i < iters; ++i) {
#pragma unroll
    for (int c = 0; c < kChains; ++c) x[c] = ssmkit::fast_exp2(-x[c]);
  }
  float s = 0;
#pragma unroll
  for (int c = 0; c < kChains; ++c) s += x[c];
  if (s == 12345.f) sink[0] = s;  // keeps the chains alive
}

struct Case {
  std::string name;
  ssmkit::DType dtype;
  int64_t B, D, L, N;
  bool z;
  double anchor_ms;  // mamba-ssm CUDA kernel on an H100 (ANCHORS), 0 if none
};

// Selective scan forward on the shapes of ANCHORS.md.
void bench_selective_scan(Context& ctx) {
  using ssmkit::DType;
  const std::vector<Case> cases = {
      {"mamba-130m train", DType::kBFloat16, 8, 1536, 2048, 16, true, 0.451},
      {"mamba-130m train", DType::kFloat16, 8, 1536, 2048, 16, true, 0.444},
      {"mamba-130m train", DType::kFloat32, 8, 1536, 2048, 16, true, 0.883},
      {"mamba-2.8b prefill b1", DType::kBFloat16, 1, 5120, 4096, 16, true, 0.401},
      {"mamba-2.8b train", DType::kBFloat16, 8, 5120, 2048, 16, true, 1.455},
      {"long context 64k", DType::kFloat16, 1, 2048, 65536, 16, false, 2.763},
      {"dstate sweep", DType::kBFloat16, 4, 2048, 2048, 16, true, 0.31},
      {"dstate sweep", DType::kBFloat16, 4, 2048, 2048, 32, true, 0.54},
      {"dstate sweep", DType::kBFloat16, 4, 2048, 2048, 64, true, 1.02},
      {"dstate sweep", DType::kBFloat16, 4, 2048, 2048, 128, true, 1.96},
      {"dstate sweep", DType::kBFloat16, 4, 2048, 2048, 256, true, 3.87},
  };
  for (const Case& c : cases) {
    char shape[96];
    std::snprintf(shape, sizeof shape, "B%lld D%lld L%lld N%lld%s", (long long)c.B, (long long)c.D, (long long)c.L,
                  (long long)c.N, c.z ? "" : " no-z");
    if (!ctx.selected("selective_scan_fwd " + c.name + " " + dtype_name(c.dtype) + " " + shape)) continue;
    const int es = ssmkit::dtype_size(c.dtype);
    const size_t nx = size_t(c.B * c.D * c.L), nbc = size_t(c.B * c.N * c.L);
    const size_t set_bytes = (nx * (c.z ? 3 : 2) + 2 * nbc) * es;
    const int sets = int(std::max<size_t>(1, std::min<size_t>(8, (size_t(4) * ctx.prop.l2CacheSize) / set_bytes + 1)));
    std::vector<void*> bufs;
    auto alloc = [&](size_t bytes) { void* p; BENCH_CUDA(cudaMalloc(&p, bytes)); bufs.push_back(p); return p; };
    std::vector<ssmkit::SelectiveScanParams> ps;
    float* A = static_cast<float*>(alloc(c.D * c.N * 4));
    float* Dv = static_cast<float*>(alloc(c.D * 4));
    float* bias = static_cast<float*>(alloc(c.D * 4));
    fill(A, c.D * c.N, DType::kFloat32, 11, -3.f, -0.2f);
    fill(Dv, c.D, DType::kFloat32, 12, -1.f, 1.f);
    fill(bias, c.D, DType::kFloat32, 13, -0.1f, 0.1f);
    void* out = alloc(nx * es);
    for (int s = 0; s < sets; ++s) {
      auto p = ssmkit::make_selective_scan_params(c.dtype, c.B, c.D, c.L, c.N);
      void* u = alloc(nx * es); fill(u, nx, c.dtype, 100 + s, -1.f, 1.f);
      void* dl = alloc(nx * es); fill(dl, nx, c.dtype, 200 + s, -3.f, 0.5f);
      void* Bm = alloc(nbc * es); fill(Bm, nbc, c.dtype, 300 + s, -1.f, 1.f);
      void* Cm = alloc(nbc * es); fill(Cm, nbc, c.dtype, 400 + s, -1.f, 1.f);
      p.u = u; p.delta = dl; p.B = Bm; p.C = Cm; p.A = A; p.D = Dv; p.delta_bias = bias; p.delta_softplus = true;
      if (c.z) { void* z = alloc(nx * es); fill(z, nx, c.dtype, 500 + s, -2.f, 2.f); p.z = z; }
      p.out = out;
      size_t ws_bytes = 0;
      const ssmkit::Status wst = ssmkit::selective_scan_workspace_size(p, ws_bytes);
      if (!wst.ok()) { std::fprintf(stderr, "%s: %s\n", shape, wst.message()); std::exit(1); }
      if (ws_bytes) { p.workspace = alloc(ws_bytes); p.workspace_bytes = ws_bytes; }
      ps.push_back(p);
    }
    BENCH_CUDA(cudaDeviceSynchronize());
    const double ms = ctx.timer.median_ms([&](int i) {
      const ssmkit::Status st = ssmkit::selective_scan_fwd(ps[i % sets], nullptr);
      if (!st.ok()) { std::fprintf(stderr, "%s: %s\n", shape, st.message()); std::exit(1); }
    }, ctx.reps);
    BENCH_CUDA(cudaDeviceSynchronize());
    for (void* p : bufs) BENCH_CUDA(cudaFree(p));
    const double bytes = double(nx) * (c.z ? 4 : 3) * es + 2.0 * nbc * es;
    Row r;
    r.op = "selective_scan_fwd";
    r.name = c.name;
    r.dtype = dtype_name(c.dtype);
    r.shape = shape;
    r.ms = ms;
    r.gelems = nx / (ms * 1e-3) / 1e9;
    r.pct_bw = 100.0 * bytes / (ms * 1e-3) / (ctx.copy_gbs * 1e9);
    r.pct_exp2 = 100.0 * (double(nx) * c.N / ctx.exp2_per_s) / (ms * 1e-3);
    r.anchor_ms = c.anchor_ms;
    ctx.add(r);
  }
}

// Every op's cases, in the order they run. An op adds its function here.
void (*const kBenches[])(Context&) = {bench_selective_scan, bench_fused_conv_scan,
                                      bench_selective_state_update, bench_causal_conv1d};

}  // namespace

int main(int argc, char** argv) {
  std::string json_path, compare_path, filter;
  int reps = 20;
  bool host_in_time = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
    else if (!std::strcmp(argv[i], "--compare") && i + 1 < argc) compare_path = argv[++i];
    else if (!std::strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
    else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--host-in-time")) host_in_time = true;
    else {
      std::fprintf(stderr, "usage: %s [--json FILE] [--compare FILE] [--filter S] [--reps N] [--host-in-time]\n", argv[0]);
      return 2;
    }
  }
  int ndev = 0;
  if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
    std::printf("no CUDA GPU found: the benchmark needs one; nothing was measured.\n");
    return 0;
  }
  cudaDeviceProp prop{};
  BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
  int sm_clock_khz = 0, mem_clock_khz = 0, rt = 0, drv = 0;
  cudaDeviceGetAttribute(&sm_clock_khz, cudaDevAttrClockRate, 0);
  cudaDeviceGetAttribute(&mem_clock_khz, cudaDevAttrMemoryClockRate, 0);
  cudaRuntimeGetVersion(&rt);
  cudaDriverGetVersion(&drv);
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  std::printf("device: %s, %d SMs, SM clock %d MHz, memory clock %d MHz, L2 %d MB, CUDA runtime %d, driver %d, %s\n",
              prop.name, prop.multiProcessorCount, sm_clock_khz / 1000, mem_clock_khz / 1000,
              prop.l2CacheSize >> 20, rt, drv, date);
  Context ctx;
  ctx.prop = prop;
  ctx.filter = filter;
  ctx.reps = reps;
  ctx.timer.host_in_time = host_in_time;
  const char* timing = host_in_time ? "events around each call on an idle GPU (host work of the call included)"
                                    : "GPU time (each call behind a 50 us busy kernel, host work not included)";
  std::printf("timing: %s\n", timing);

  // Ceiling 1: device-to-device copy, bytes read + written.
  ctx.copy_gbs = measure_copy_gbs(ctx.timer);

  // Ceiling 2: MUFU ex2 rate.
  float* sink;
  BENCH_CUDA(cudaMalloc(&sink, 4));
  const int iters = 4096, eblocks = prop.multiProcessorCount * 8, ethreads = 256;
  const double exp_ms = ctx.timer.median_ms([&](int) { exp2_rate_kernel<<<eblocks, ethreads>>>(sink, iters); }, 10);
  BENCH_CUDA(cudaGetLastError());
  ctx.exp2_per_s = double(eblocks) * ethreads * iters * kChains / (exp_ms * 1e-3);
  std::printf("ceilings: copy %.0f GB/s (read + write), ex2.approx %.3g /s\n\n", ctx.copy_gbs, ctx.exp2_per_s);

  for (auto bench : kBenches) bench(ctx);

  // JSON.
  std::ostringstream js;
  js << "{\n  \"device\": \"" << prop.name << "\",\n  \"sms\": " << prop.multiProcessorCount
     << ",\n  \"sm_clock_mhz\": " << sm_clock_khz / 1000 << ",\n  \"cuda_runtime\": " << rt
     << ",\n  \"driver\": " << drv << ",\n  \"date\": \"" << date << "\",\n  \"copy_gbs\": " << ctx.copy_gbs
     << ",\n  \"exp2_per_s\": " << ctx.exp2_per_s << ",\n  \"timing\": \"" << (host_in_time ? "host-in-time" : "gpu")
     << "\",\n  \"cases\": [\n";
  for (size_t i = 0; i < ctx.rows.size(); ++i) {
    const Row& r = ctx.rows[i];
    js << "    {\"op\": \"" << r.op << "\", \"name\": \"" << r.name << "\", \"dtype\": \"" << r.dtype
       << "\", \"shape\": \"" << r.shape << "\", \"ms\": " << r.ms << ", \"gelems\": " << r.gelems
       << ", \"pct_copy_bw\": " << r.pct_bw << ", \"pct_exp2\": " << r.pct_exp2 << ", \"anchor_ms\": " << r.anchor_ms
       << "}" << (i + 1 < ctx.rows.size() ? "," : "") << "\n";
  }
  js << "  ]\n}\n";
  if (!json_path.empty()) {
    std::ofstream(json_path) << js.str();
    std::printf("\nwrote %s\n", json_path.c_str());
  }

  // Regression check against a saved run: match cases by their ordered key fields.
  if (!compare_path.empty()) {
    std::ifstream in(compare_path);
    std::string line;
    std::map<std::string, double> old;
    while (std::getline(in, line)) {
      const auto key_end = line.find(", \"ms\": ");
      if (line.find("\"op\"") == std::string::npos || key_end == std::string::npos) continue;
      old[line.substr(0, key_end)] = std::atof(line.c_str() + key_end + 8);
    }
    std::istringstream cur(js.str());
    std::printf("\ncompared with %s (old ms / new ms):\n", compare_path.c_str());
    while (std::getline(cur, line)) {
      const auto key_end = line.find(", \"ms\": ");
      if (line.find("\"op\"") == std::string::npos || key_end == std::string::npos) continue;
      const auto it = old.find(line.substr(0, key_end));
      if (it != old.end())
        std::printf("  %s: %.3fx\n", line.substr(4, key_end - 4).c_str(), it->second / std::atof(line.c_str() + key_end + 8));
    }
  }
  return 0;
}
