/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// The device functions a user can call from their own kernel: warp and block scans of
// (a, b) pairs, the running-prefix carry between tiles, and scan_step.
#include <catch2/catch.hpp>

#include <ssmkit/block/block_scan.cuh>
#include <ssmkit/kernel/selective_scan_fwd.cuh>
#include <ssmkit/thread/scan_step.cuh>
#include <ssmkit/warp/warp_scan.cuh>

#include <cstring>
#include <random>
#include <vector>

#include "../common.cuh"

using namespace ssmkit_test;

namespace {

constexpr int kThreads = 128, kItems = 4;

// One block scans a sequence of n pairs tile by tile, carrying the state with RunningPrefix.
__global__ void block_scan_kernel(const ssmkit::ScanPair* in, float* states, int n, float h0) {
  using Scan = ssmkit::BlockPairScan<kThreads, kItems>;
  __shared__ typename Scan::TempStorage storage;
  ssmkit::RunningPrefix prefix(h0);
  for (int base = 0; base < n; base += kThreads * kItems) {
    ssmkit::ScanPair items[kItems];
    for (int i = 0; i < kItems; ++i) {
      const int idx = base + threadIdx.x * kItems + i;
      items[i] = idx < n ? in[idx] : ssmkit::ScanPair{1.f, 0.f};  // identity past the end
    }
    Scan(storage).InclusiveScan(items, prefix);
    __syncthreads();  // storage is reused by the next tile
    for (int i = 0; i < kItems; ++i) {
      const int idx = base + threadIdx.x * kItems + i;
      if (idx < n) states[idx] = items[i].b;
    }
  }
}

__global__ void warp_scan_kernel(const ssmkit::ScanPair* in, float* states, float* agg_b) {
  using Scan = ssmkit::WarpPairScan<32>;
  __shared__ typename Scan::TempStorage storage;
  ssmkit::ScanPair out, agg;
  Scan(storage).InclusiveScan(in[threadIdx.x], out, agg);
  states[threadIdx.x] = out.b;
  if (threadIdx.x == 0) *agg_b = agg.b;
}

__global__ void group_sum_kernel(const float* in, float* out) {
  out[threadIdx.x] = ssmkit::group_sum<8>(in[threadIdx.x]);
}

std::vector<ssmkit::ScanPair> random_pairs(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> ua(0.5f, 1.f), ub(-1.f, 1.f);
  std::vector<ssmkit::ScanPair> v(n);
  for (auto& p : v) p = {ua(rng), ub(rng)};
  return v;
}

// Every 16-bit pattern, 8 to a 16-byte vector: the scan kernel's conversion from a raw vector
// (detail::raw_at, element index known at compile time and at run time) as floats' bits.
template <typename T>
__global__ void raw_at_kernel(float* fixed_index, float* run_index, int stride) {
  const int v = blockIdx.x * blockDim.x + threadIdx.x;
  if (v >= 65536 / 8) return;
  uint16_t bits[8];
  for (int i = 0; i < 8; ++i) bits[i] = static_cast<uint16_t>(v * 8 + i);
  uint4 raw;
  memcpy(&raw, bits, 16);
#pragma unroll
  for (int i = 0; i < 8; ++i) fixed_index[v * 8 + i] = ssmkit::detail::raw_at<T>(raw, i);
  for (int i = 0; i < 8; i += stride) run_index[v * 8 + i] = ssmkit::detail::raw_at<T>(raw, i);
}

template <typename T>
void check_raw_at(float (*convert)(uint16_t)) {
  DeviceBuffer dfix(65536 * 4), drun(65536 * 4);
  dfix.poison();
  drun.poison();
  raw_at_kernel<T><<<64, 128>>>(dfix.as<float>(), drun.as<float>(), 1);
  SSMKIT_TEST_CUDA(cudaGetLastError());
  std::vector<uint32_t> fix(65536), run(65536);
  dfix.download(fix.data(), 65536 * 4);
  drun.download(run.data(), 65536 * 4);
  int bad = 0;
  for (uint32_t b = 0; b < 65536; ++b) {
    const float want = convert(static_cast<uint16_t>(b));
    uint32_t w;
    memcpy(&w, &want, 4);
    const bool nan = want != want;
    // NaNs: any NaN will do; everything else bit for bit (signed zeros and subnormals included).
    auto same = [&](uint32_t g) {
      float gf;
      memcpy(&gf, &g, 4);
      return nan ? gf != gf : g == w;
    };
    if (!same(fix[b]) || !same(run[b])) {
      if (++bad <= 5) UNSCOPED_INFO("pattern 0x" << std::hex << b << ": got 0x" << fix[b] << " / 0x" << run[b] << ", want 0x" << w);
    }
  }
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("raw vector conversions of the scan kernel: every 16-bit pattern", "[gpu][device]") {
  SECTION("bf16") {
    check_raw_at<__nv_bfloat16>([](uint16_t b) {
      const uint32_t w = uint32_t(b) << 16;
      float f;
      memcpy(&f, &w, 4);
      return f;
    });
  }
  SECTION("fp16") {
    check_raw_at<__half>([](uint16_t b) {
      __half_raw r;
      r.x = b;
      return __half2float(__half(r));
    });
  }
}

TEST_CASE("BlockPairScan with RunningPrefix carries the state across tiles", "[gpu][device]") {
  for (int n : {1, 7, 511, 512, 513, 5000}) {
    INFO("n = " << n);
    const auto pairs = random_pairs(n, n);
    DeviceBuffer din(n * sizeof(ssmkit::ScanPair)), dout(n * 4);
    din.upload(pairs.data(), n * sizeof(ssmkit::ScanPair));
    dout.poison();
    block_scan_kernel<<<1, kThreads>>>(din.as<ssmkit::ScanPair>(), dout.as<float>(), n, 0.75f);
    SSMKIT_TEST_CUDA(cudaGetLastError());
    std::vector<float> got(n);
    dout.download(got.data(), n * 4);
    double h = 0.75;
    std::vector<double> ref(n);
    for (int i = 0; i < n; ++i) ref[i] = h = pairs[i].a * h + pairs[i].b;
    const ErrorStats es = compare([&](size_t i) { return double(got[i]); }, ref, 1e-5, 1e-6);
    INFO(es.describe());
    CHECK(es.failures == 0);
  }
}

TEST_CASE("WarpPairScan and group_sum", "[gpu][device]") {
  const auto pairs = random_pairs(32, 3);
  DeviceBuffer din(32 * sizeof(ssmkit::ScanPair)), dout(32 * 4), dagg(4);
  din.upload(pairs.data(), 32 * sizeof(ssmkit::ScanPair));
  dout.poison();
  warp_scan_kernel<<<1, 32>>>(din.as<ssmkit::ScanPair>(), dout.as<float>(), dagg.as<float>());
  SSMKIT_TEST_CUDA(cudaGetLastError());
  std::vector<float> got(32);
  float agg = 0;
  dout.download(got.data(), 128);
  dagg.download(&agg, 4);
  double h = 0;
  for (int i = 0; i < 32; ++i) {
    h = pairs[i].a * h + pairs[i].b;
    CHECK(got[i] == Approx(h).epsilon(1e-5).margin(1e-6));
  }
  CHECK(agg == Approx(h).epsilon(1e-5).margin(1e-6));

  std::vector<float> v(32);
  for (int i = 0; i < 32; ++i) v[i] = float(i * i % 11) - 3.f;
  DeviceBuffer dv(128), ds(128);
  dv.upload(v.data(), 128);
  group_sum_kernel<<<1, 32>>>(dv.as<float>(), ds.as<float>());
  SSMKIT_TEST_CUDA(cudaGetLastError());
  std::vector<float> s(32);
  ds.download(s.data(), 128);
  for (int i = 0; i < 32; ++i) {
    float want = 0;
    for (int j = i / 8 * 8; j < i / 8 * 8 + 8; ++j) want += v[j];
    CHECK(s[i] == want);
  }
}
