/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// Configuration sweep of the causal conv1d kernels on the benchmark shapes, to choose the
// defaults of ConvDefaultConfig and ConvUpdateDefaultConfig: forward tile, chunk, channels
// per thread and blocks per SM, the grid policy, and the update's entries per thread, with
// and without programmatic dependent launch. Built with -DSSMKIT_BENCH_SWEEP=ON.
#include <ssmkit/causal_conv1d.cuh>

#include <cstdio>
#include <utility>
#include <vector>

#include "bench_common.cuh"

namespace {

using ssmkit::CausalConv1dParams;
using ssmkit::CausalConv1dUpdateParams;
using ssmkit::DType;
using ssmkit_bench::Timer;

double g_copy_gbs = 0;
int g_sms = 0;
Timer* g_timer = nullptr;

// Input sets of one forward shape, rotated so that every call reads from DRAM.
struct FwdSets {
  std::vector<CausalConv1dParams> ps;
  std::vector<void*> bufs;
  double bytes = 0;
  FwdSets(DType t, int64_t B, int64_t D, int64_t L, bool last) {
    const int es = ssmkit::dtype_size(t);
    const size_t nx = size_t(B * D * L);
    bytes = 2.0 * nx * es;
    void *w, *bias;
    BENCH_CUDA(cudaMalloc(&w, D * 4 * es));
    BENCH_CUDA(cudaMalloc(&bias, D * es));
    bufs = {w, bias};
    ssmkit_bench::fill(w, D * 4, t, 21, -0.5f, 0.5f);
    ssmkit_bench::fill(bias, D, t, 22, -0.1f, 0.1f);
    for (int s = 0; s < 3; ++s) {
      auto p = ssmkit::make_causal_conv1d_params(t, t, B, D, L, 4, last);
      void *x, *out;
      BENCH_CUDA(cudaMalloc(&x, nx * es));
      BENCH_CUDA(cudaMalloc(&out, nx * es));
      bufs.push_back(x);
      bufs.push_back(out);
      ssmkit_bench::fill(x, nx, t, 600 + s, -1.f, 1.f);
      p.x = x; p.out = out; p.weight = w; p.bias = bias; p.silu = true;
      ps.push_back(p);
    }
    BENCH_CUDA(cudaDeviceSynchronize());
  }
  ~FwdSets() { for (void* b : bufs) cudaFree(b); }
};

template <typename F>
void report(const char* what, const FwdSets& s, F&& launch) {
  const double ms = g_timer->median_ms([&](int i) { launch(s.ps[i % s.ps.size()]); }, 30);
  BENCH_CUDA(cudaGetLastError());
  std::printf("%-58s %8.4f ms %6.1f%% copy BW\n", what, ms, 100.0 * s.bytes / (ms * 1e-3) / (g_copy_gbs * 1e9));
}

// Channel-first: through the launcher (one block per tile), and as bare kernel launches whose
// blocks walk 2 and 4 tiles each (the next tile's loads in flight during the current one).
template <typename T, int kTile, int kMinBlocks, int kThreads = 128>
void channel_first(const FwdSets& s, const char* shape) {
  using Tr = ssmkit::CausalConv1dTraits<T, T, 4, kTile, false, kMinBlocks, 0, kThreads>;
  char buf[160];
  std::snprintf(buf, sizeof buf, "cf %s tile %d minblocks %d threads %d launcher", shape, kTile, kMinBlocks, kThreads);
  report(buf, s, [](const CausalConv1dParams& p) {
    const ssmkit::Status st = ssmkit::causal_conv1d_fwd<T, T, 4, false, kTile, kMinBlocks, 0, kThreads>(p, nullptr);
    if (!st.ok()) std::printf("error: %s\n", st.message());
  });
  for (int per_block : {2, 4}) {
    std::snprintf(buf, sizeof buf, "cf %s tile %d minblocks %d threads %d %d tiles per block", shape, kTile,
                  kMinBlocks, kThreads, per_block);
    report(buf, s, [&](const CausalConv1dParams& p) {
      const int64_t tiles = p.batch * p.dim * Tr::num_tiles(p);
      ssmkit::causal_conv1d_fwd_channel_first_kernel<Tr>
          <<<unsigned((tiles + per_block - 1) / per_block), Tr::kThreads>>>(p);
    });
  }
}

// Channel-last: run lengths for one and for two resident waves; with kShortRuns also runs of
// one and of four chunks (many waves of short-lived threads, as the channel-first grid).
template <typename T, int kChunk, int kMinBlocks, int kChannels, bool kShortRuns = false>
void channel_last(const FwdSets& s, const char* shape) {
  using Tr = ssmkit::CausalConv1dTraits<T, T, 4, kChunk, true, kMinBlocks, kChannels>;
  for (int waves : {1, 2, -1, -4}) {
    if (waves < 0 && !kShortRuns) continue;
    char buf[160];
    if (waves > 0)
      std::snprintf(buf, sizeof buf, "cl %s chunk %d minblocks %d channels %d waves %d", shape, kChunk,
                    kMinBlocks, kChannels, waves);
    else
      std::snprintf(buf, sizeof buf, "cl %s chunk %d minblocks %d channels %d runs of %d chunks", shape,
                    kChunk, kMinBlocks, kChannels, -waves);
    report(buf, s, [&](const CausalConv1dParams& p) {
      const int64_t run = waves > 0 ? Tr::run_length(p, g_sms * waves) : int64_t{-waves} * kChunk;
      ssmkit::causal_conv1d_fwd_channel_last_kernel<Tr>
          <<<unsigned(Tr::grid_size(p, g_sms, run)), Tr::kThreads>>>(p, run);
    });
  }
}

// The run-time launcher (ssmkit::causal_conv1d_fwd), as the benchmark calls it.
void launcher(const FwdSets& s, const char* shape) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s %s run-time launcher", ssmkit::causal_conv1d_is_channel_last(s.ps[0]) ? "cl" : "cf", shape);
  report(buf, s, [](const CausalConv1dParams& p) {
    const ssmkit::Status st = ssmkit::causal_conv1d_fwd(p, nullptr);
    if (!st.ok()) std::printf("error: %s\n", st.message());
  });
}

__global__ void empty_kernel() {}

// A plain 16-byte copy kernel, one vector per thread: what a kernel that only streams the
// same bytes reaches at this size (the ceiling is a 1 GiB cudaMemcpy).
__global__ void copy_kernel(const uint4* __restrict__ src, uint4* __restrict__ dst, size_t n) {
  const size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (i < n) dst[i] = __ldg(src + i);
}

// The same with streaming cache hints (ld.global.cs / st.global.cs: evict first).
__global__ void copy_kernel_cs(const uint4* __restrict__ src, uint4* __restrict__ dst, size_t n) {
  const size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (i < n) __stcs(dst + i, __ldcs(src + i));
}

// Copies of the forward's bytes (x read, out written): cudaMemcpy and copy_kernel.
void copy_same_size(const FwdSets& s, const char* shape) {
  const size_t n = size_t(s.bytes / 2);
  char buf[160];
  std::snprintf(buf, sizeof buf, "copy %s cudaMemcpy of the same bytes", shape);
  report(buf, s, [&](const CausalConv1dParams& p) {
    BENCH_CUDA(cudaMemcpyAsync(p.out, p.x, n, cudaMemcpyDeviceToDevice));
  });
  std::snprintf(buf, sizeof buf, "copy %s 16-byte copy kernel of the same bytes", shape);
  report(buf, s, [&](const CausalConv1dParams& p) {
    const size_t v = n / 16;
    copy_kernel<<<unsigned((v + 255) / 256), 256>>>(static_cast<const uint4*>(p.x), static_cast<uint4*>(p.out), v);
  });
  std::snprintf(buf, sizeof buf, "copy %s 16-byte copy kernel, streaming hints", shape);
  report(buf, s, [&](const CausalConv1dParams& p) {
    const size_t v = n / 16;
    copy_kernel_cs<<<unsigned((v + 255) / 256), 256>>>(static_cast<const uint4*>(p.x), static_cast<uint4*>(p.out), v);
  });
}

// Update: 200 launches captured in one graph, time per call.
template <int kRows>
double update_graph(const std::vector<CausalConv1dUpdateParams>& ps, bool pdl) {
  using T = __nv_bfloat16;
  return ssmkit_bench::graph_ms_per_call(*g_timer, 200, 20, [&](int i, cudaStream_t stream) {
    const CausalConv1dUpdateParams& p = ps[i % ps.size()];
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(unsigned((p.batch + kRows - 1) / kRows),
                       unsigned((p.dim / 8 + ssmkit::kConvUpdateThreads - 1) / ssmkit::kConvUpdateThreads));
    cfg.blockDim = dim3(ssmkit::kConvUpdateThreads);
    cfg.stream = stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = pdl ? 1 : 0;
    BENCH_CUDA(cudaLaunchKernelEx(&cfg, ssmkit::causal_conv1d_update_vec_kernel<T, T, 4, kRows>, p));
  });
}

void update_cases() {
  using T = __nv_bfloat16;
  {  // Floor: an empty kernel per graph node.
    const double ms = ssmkit_bench::graph_ms_per_call(*g_timer, 200, 20, [](int, cudaStream_t stream) {
      empty_kernel<<<1, 32, 0, stream>>>();
    });
    std::printf("empty kernel per graph node: %.2f us\n", ms * 1e3);
  }
  for (int64_t B : {1, 64, 256}) {
    const int64_t D = 10240, W = 4, S = 3;
    const size_t nstate = size_t(B * D * S), nx = size_t(B * D);
    const double bytes = (2.0 * nstate + 2.0 * nx + double(D) * W) * 2;
    const int sets = int(std::max<double>(2, std::min<double>(16, 4.0 * 50e6 / bytes + 1)));
    std::vector<CausalConv1dUpdateParams> ps;
    std::vector<void*> bufs;
    for (int s = 0; s < sets; ++s) {
      auto p = ssmkit::make_causal_conv1d_update_params(DType::kBFloat16, DType::kBFloat16, B, D, 1, W, S, B);
      void *x, *st, *w, *out;
      BENCH_CUDA(cudaMalloc(&x, nx * 2));
      BENCH_CUDA(cudaMalloc(&st, nstate * 2));
      BENCH_CUDA(cudaMalloc(&w, D * W * 2));
      BENCH_CUDA(cudaMalloc(&out, nx * 2));
      bufs.insert(bufs.end(), {x, st, w, out});
      ssmkit_bench::fill(x, nx, DType::kBFloat16, 700 + s, -1.f, 1.f);
      ssmkit_bench::fill(st, nstate, DType::kBFloat16, 800 + s, -1.f, 1.f);
      ssmkit_bench::fill(w, D * W, DType::kBFloat16, 900 + s, -0.5f, 0.5f);
      p.x = x; p.conv_state = st; p.weight = w; p.out = out; p.silu = true;
      ps.push_back(p);
    }
    BENCH_CUDA(cudaDeviceSynchronize());
    for (bool pdl : {false, true}) {
      const double r1 = update_graph<1>(ps, pdl), r2 = update_graph<2>(ps, pdl), r4 = update_graph<4>(ps, pdl);
      auto pct = [&](double ms) { return 100.0 * bytes / (ms * 1e-3) / (g_copy_gbs * 1e9); };
      std::printf("update B%-3lld %s rows1 %.2f us (%.1f%%)  rows2 %.2f us (%.1f%%)  rows4 %.2f us (%.1f%%)\n",
                  (long long)B, pdl ? "pdl   " : "no-pdl", r1 * 1e3, pct(r1), r2 * 1e3, pct(r2), r4 * 1e3, pct(r4));
    }
    // What a copy of the same bytes gets as a graph node: state and x read, state and out
    // written, one 16-byte vector per thread (the update's own ceiling at this size).
    std::vector<std::pair<uint4*, uint4*>> cps;
    const size_t nv = (nstate + nx) * 2 / 16;
    for (int s = 0; s < sets; ++s) {
      void *src, *dst;
      BENCH_CUDA(cudaMalloc(&src, nv * 16));
      BENCH_CUDA(cudaMalloc(&dst, nv * 16));
      bufs.insert(bufs.end(), {src, dst});
      ssmkit_bench::fill(src, nv * 8, DType::kBFloat16, 1000 + s, -1.f, 1.f);
      cps.emplace_back(static_cast<uint4*>(src), static_cast<uint4*>(dst));
    }
    BENCH_CUDA(cudaDeviceSynchronize());
    for (bool cs : {false, true}) {
      const double ms = ssmkit_bench::graph_ms_per_call(*g_timer, 200, 20, [&](int i, cudaStream_t stream) {
        const auto& c = cps[i % cps.size()];
        if (cs) copy_kernel_cs<<<unsigned((nv + 255) / 256), 256, 0, stream>>>(c.first, c.second, nv);
        else copy_kernel<<<unsigned((nv + 255) / 256), 256, 0, stream>>>(c.first, c.second, nv);
      });
      std::printf("update B%-3lld copy kernel of the same bytes per graph node%s %.2f us (%.1f%%)\n", (long long)B,
                  cs ? ", streaming hints" : "", ms * 1e3, 100.0 * bytes / (ms * 1e-3) / (g_copy_gbs * 1e9));
    }
    for (void* b : bufs) BENCH_CUDA(cudaFree(b));
  }
}

}  // namespace

int main() {
  cudaDeviceProp prop{};
  BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
  g_sms = prop.multiProcessorCount;
  Timer timer;
  g_timer = &timer;
  g_copy_gbs = ssmkit_bench::measure_copy_gbs(timer);
  std::printf("%s, %d SMs; copy %.0f GB/s\n", prop.name, g_sms, g_copy_gbs);
  using bf16 = __nv_bfloat16;
  {
    FwdSets s(DType::kBFloat16, 8, 3072, 2048, false);
    channel_first<bf16, 2048, 8>(s, "bf16 B8 D3072 L2048");
    channel_first<bf16, 2048, 6>(s, "bf16 B8 D3072 L2048");
    channel_first<bf16, 1024, 8>(s, "bf16 B8 D3072 L2048");
    channel_first<bf16, 4096, 4>(s, "bf16 B8 D3072 L2048");
    channel_first<bf16, 2048, 12>(s, "bf16 B8 D3072 L2048");
    channel_first<bf16, 2048, 4, 256>(s, "bf16 B8 D3072 L2048");
    channel_first<bf16, 2048, 6, 256>(s, "bf16 B8 D3072 L2048");
    channel_first<bf16, 2048, 8, 256>(s, "bf16 B8 D3072 L2048");
    channel_first<bf16, 4096, 4, 256>(s, "bf16 B8 D3072 L2048");
    channel_first<bf16, 4096, 2, 512>(s, "bf16 B8 D3072 L2048");
    channel_first<bf16, 4096, 4, 512>(s, "bf16 B8 D3072 L2048");
    copy_same_size(s, "bf16 B8 D3072 L2048");
  }
  {
    FwdSets s(DType::kFloat32, 8, 3072, 2048, false);
    channel_first<float, 1024, 8>(s, "fp32 B8 D3072 L2048");
    channel_first<float, 512, 12>(s, "fp32 B8 D3072 L2048");
    channel_first<float, 1024, 4, 256>(s, "fp32 B8 D3072 L2048");
    channel_first<float, 1024, 8, 256>(s, "fp32 B8 D3072 L2048");
    channel_first<float, 2048, 4, 256>(s, "fp32 B8 D3072 L2048");
  }
  {
    FwdSets s(DType::kBFloat16, 4, 10240, 4096, false);
    channel_first<bf16, 2048, 8>(s, "bf16 B4 D10240 L4096");
    channel_first<bf16, 1024, 8>(s, "bf16 B4 D10240 L4096");
    channel_first<bf16, 2048, 4, 256>(s, "bf16 B4 D10240 L4096");
    channel_first<bf16, 2048, 6, 256>(s, "bf16 B4 D10240 L4096");
    channel_first<bf16, 2048, 8, 256>(s, "bf16 B4 D10240 L4096");
    channel_first<bf16, 4096, 4, 256>(s, "bf16 B4 D10240 L4096");
    channel_first<bf16, 4096, 4, 512>(s, "bf16 B4 D10240 L4096");
    copy_same_size(s, "bf16 B4 D10240 L4096");
  }
  for (int shape = 0; shape < 2; ++shape) {
    const int64_t B = shape ? 8 : 4, D = shape ? 3072 : 10240, L = shape ? 2048 : 4096;
    const char* name = shape ? "bf16 B8 D3072 L2048" : "bf16 B4 D10240 L4096";
    FwdSets s(DType::kBFloat16, B, D, L, true);
    launcher(s, name);
    channel_last<bf16, 8, 4, 4>(s, name);
    channel_last<bf16, 4, 3, 8, true>(s, name);
    channel_last<bf16, 4, 4, 4>(s, name);
    channel_last<bf16, 8, 3, 4, true>(s, name);
    channel_last<bf16, 16, 2, 4>(s, name);
    channel_last<bf16, 4, 6, 2>(s, name);
    launcher(s, name);
    copy_same_size(s, name);
  }
  update_cases();
  return 0;
}
