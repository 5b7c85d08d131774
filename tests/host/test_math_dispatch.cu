/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// Host math, type conversions, Status and the dispatch tables.
#include <catch2/catch.hpp>

#include <ssmkit/dispatch.cuh>
#include <ssmkit/selective_scan.cuh>
#include <ssmkit/math.cuh>
#include <ssmkit/status.cuh>
#include <ssmkit/thread/scan_step.cuh>
#include <ssmkit/types.cuh>

#include <cmath>
#include <set>
#include <string>

TEST_CASE("softplus, silu and exp2 on the host", "[host][math]") {
  for (float x : {-30.f, -5.f, -0.5f, 0.f, 0.3f, 5.f, 19.9f}) {
    CHECK(ssmkit::softplus(x) == Approx(std::log1p(std::exp(double(x)))).epsilon(1e-6));
    CHECK(ssmkit::softplus_ref(x) == Approx(std::log1p(std::exp(double(x)))).epsilon(1e-14));
  }
  CHECK(ssmkit::softplus(20.5f) == 20.5f);  // above the threshold softplus is the identity
  CHECK(ssmkit::softplus(25.f) == 25.f);
  CHECK(ssmkit::softplus(-100.f) >= 0.f);
  for (float x : {-8.f, -1.f, 0.f, 0.7f, 6.f}) {
    CHECK(ssmkit::silu(x) == Approx(x / (1.0 + std::exp(-double(x)))).epsilon(1e-6));
    CHECK(ssmkit::sigmoid(x) == Approx(1.0 / (1.0 + std::exp(-double(x)))).epsilon(1e-6));
  }
  // softplus_fast (the kernels' form; the host evaluates ex2 exactly, so this checks the
  // polynomial and the rounding of exp's argument): relative error below 1e-6 for x >= -16,
  // below 4e-6 down to -80 (the float argument -|x|*log2(e) carries 2^-24 of it), identity
  // above 20.
  double worst_near = 0, worst_far = 0;
  for (int i = 0; i <= 200000; ++i) {
    const float x = -80.f + 100.f * float(i) / 200000.f;
    const double want = ssmkit::softplus_ref(x);
    const double rel = std::fabs(ssmkit::softplus_fast(x) - want) / want;
    (x >= -16.f ? worst_near : worst_far) = std::fmax(x >= -16.f ? worst_near : worst_far, rel);
  }
  CHECK(worst_near < 1e-6);
  CHECK(worst_far < 4e-6);
  CHECK(ssmkit::softplus_fast(20.5f) == 20.5f);
  CHECK(ssmkit::fast_exp2(3.f) == 8.f);
  CHECK(ssmkit::fast_exp2(-1.5f * ssmkit::kLog2e) == Approx(std::exp(-1.5)).epsilon(1e-6));
}

TEST_CASE("scan pairs compose like the recurrence", "[host][math]") {
  using ssmkit::ScanPair;
  const ScanPair s1{0.5f, 2.f}, s2{0.25f, -1.f}, s3{2.f, 3.f};
  // Associativity.
  const ScanPair l = ssmkit::compose(ssmkit::compose(s1, s2), s3);
  const ScanPair r = ssmkit::compose(s1, ssmkit::compose(s2, s3));
  CHECK(l.a == Approx(r.a));
  CHECK(l.b == Approx(r.b));
  // Sequential scan from h = 1 gives the states of h = a h + b.
  ScanPair items[3] = {s1, s2, s3};
  ssmkit::thread_inclusive_scan(items, ScanPair{1.f, 1.f});
  double h = 1;
  const ScanPair in[3] = {s1, s2, s3};
  for (int i = 0; i < 3; ++i) {
    h = in[i].a * h + in[i].b;
    CHECK(items[i].b == Approx(h));
  }
  // scan_step on the host agrees with the recurrence.
  float hs[4] = {1, 2, 3, 4}, al[4] = {-1, -0.5f, 0, -2}, Bv[4] = {1, 1, 1, 1}, Cv[4] = {1, 0, 2, 0};
  const float y = ssmkit::scan_step<4>(hs, al, 0.5f, 2.f, Bv, Cv);
  CHECK(hs[0] == Approx(std::exp2(-0.5) * 1 + 2));
  CHECK(hs[2] == Approx(3 + 2));
  CHECK(y == Approx(hs[0] + 2 * hs[2]));
}

TEST_CASE("dtype traits and conversions", "[host][types]") {
  CHECK(ssmkit::dtype_size(ssmkit::DType::kFloat32) == 4);
  CHECK(ssmkit::dtype_size(ssmkit::DType::kFloat16) == 2);
  CHECK(ssmkit::dtype_size(ssmkit::DType::kBFloat16) == 2);
  CHECK(ssmkit::kVecElems<float> == 4);
  CHECK(ssmkit::kVecElems<__nv_bfloat16> == 8);
  CHECK(ssmkit::to_float(ssmkit::from_float<__half>(1.5f)) == 1.5f);
  CHECK(ssmkit::to_float(ssmkit::from_float<__nv_bfloat16>(-3.f)) == -3.f);
  CHECK(ssmkit::to_float(ssmkit::from_float<__nv_bfloat16>(1.f + 1.f / 512)) == 1.f);  // rounds to 8 bits
  CHECK(std::string(ssmkit::to_string(ssmkit::DType::kBFloat16)) == "bfloat16");
}

TEST_CASE("Status carries a code and a message", "[host][status]") {
  const ssmkit::Status ok;
  CHECK(ok.ok());
  CHECK(std::string(ok.message()).empty());
  const auto e = ssmkit::Status::Error(ssmkit::StatusCode::kInvalidArgument, "x is %d", 3);
  CHECK_FALSE(e.ok());
  CHECK(std::string(e.message()) == "x is 3");
  const auto c = ssmkit::Status::FromCuda(cudaErrorInvalidValue, "cudaMemcpy");
  CHECK(c.code() == ssmkit::StatusCode::kCudaError);
  CHECK(c.cuda_error() == cudaErrorInvalidValue);
  CHECK(std::string(c.message()).find("cudaMemcpy") == 0);
  CHECK(std::string(ssmkit::to_string(ssmkit::StatusCode::kCudaError)) == "CUDA error");
}

TEST_CASE("dispatch covers every dtype and dstate in [1, 256]", "[host][dispatch]") {
  std::set<int> buckets;
  for (int64_t n = 1; n <= 256; ++n) {
    const int b = ssmkit::scan_dstate_bucket(n);
    REQUIRE(b >= n);
    REQUIRE((b == 16 || b / 2 < n));  // the smallest bucket that holds n
    int seen = 0;
    REQUIRE(ssmkit::dispatch_scan_dstate(n, [&](auto k) { seen = decltype(k)::value; return ssmkit::Status::Ok(); }).ok());
    REQUIRE(seen == b);
    buckets.insert(b);
  }
  CHECK(buckets == std::set<int>{16, 32, 64, 128, 256});
  for (int64_t bad : {0LL, -3LL, 257LL, 100000LL}) {
    CHECK(ssmkit::scan_dstate_bucket(bad) == 0);
    const auto st = ssmkit::dispatch_scan_dstate(bad, [](auto) { return ssmkit::Status::Ok(); });
    CHECK(st.code() == ssmkit::StatusCode::kInvalidArgument);
    CHECK(std::string(st.message()).find("dstate") != std::string::npos);
  }
  int sizes = 0;
  for (auto t : {ssmkit::DType::kFloat32, ssmkit::DType::kFloat16, ssmkit::DType::kBFloat16})
    REQUIRE(ssmkit::dispatch_dtype(t, "dtype", [&](auto tag) {
      sizes += int(sizeof(typename decltype(tag)::type));
      return ssmkit::TypeTraits<typename decltype(tag)::type>::kDType == t ? ssmkit::Status::Ok()
                                                                           : ssmkit::Status::Error(ssmkit::StatusCode::kInvalidArgument, "mismatch");
    }).ok());
  CHECK(sizes == 8);
  const auto st = ssmkit::dispatch_dtype(static_cast<ssmkit::DType>(9), "u", [](auto) { return ssmkit::Status::Ok(); });
  CHECK(st.code() == ssmkit::StatusCode::kInvalidArgument);
  CHECK(std::string(st.message()).find("u") == 0);
}

TEST_CASE("the sequence split heuristic", "[host][dispatch]") {
  using ssmkit::detail::choose_scan_split;
  // Enough blocks for half a wave or more: one range.
  CHECK(choose_scan_split(384, 2048, 32, 528).num_splits == 1);
  CHECK(choose_scan_split(265, 4096, 32, 528).num_splits == 1);
  CHECK(choose_scan_split(264, 4096, 32, 528).num_splits == 2);  // exactly half a wave
  // B1 D5120 on 132 SMs x 4 blocks: three ranges, each a whole number of tiles.
  const ssmkit::ScanSplit s = choose_scan_split(160, 4096, 32, 528);
  CHECK(s.num_splits == 3);
  CHECK(s.split_len % 32 == 0);
  CHECK(s.split_len * s.num_splits >= 4096);
  CHECK(s.split_len * (s.num_splits - 1) < 4096);
  // Never more than 16 ranges, and at least four tiles per range.
  CHECK(choose_scan_split(1, 1 << 20, 32, 528).num_splits == 16);
  CHECK(choose_scan_split(1, 300, 32, 528).num_splits == 2);   // 300 steps: two ranges of 160
  CHECK(choose_scan_split(1, 200, 32, 528).num_splits == 1);   // under eight tiles: one range
  CHECK(choose_scan_split(0, 4096, 32, 528).num_splits == 1);
  // Workspace: (ranges - 1) x rows x (dstate + 1) floats, none without a split.
  auto p = ssmkit::make_selective_scan_params(ssmkit::DType::kBFloat16, 1, 5120, 4096, 16);
  CHECK(ssmkit::detail::scan_split_bytes(p, ssmkit::ScanSplit{}) == 0);
  CHECK(ssmkit::detail::scan_split_bytes(p, s) >= size_t(2) * 5120 * 17 * sizeof(float));
}

TEST_CASE("the launch-shape rule and the default configurations", "[host][dispatch]") {
  using ssmkit::detail::scan_launch_shape;
  using Shape = ssmkit::detail::ScanLaunchShape;
  // N = 16 on 132 SMs: mamba-130m training (B8 D1536, 384 blocks of 32 channels) and B4 D2048
  // (256) fit one wave of the pipelined loop at 3 and 2 blocks per SM; batch-1 prefill
  // B1 D5120 (160) takes the few-channels configuration, B8 D5120 (1280) the default.
  auto blocks16 = [](int64_t batch, int64_t dim) {
    using C = ssmkit::ScanDefaultConfig<16>;
    using Traits = ssmkit::SelectiveScanTraits<float, 16, C::kStatesPerThread, C::kTileLen, C::kThreads>;
    return Traits::grid_size(ssmkit::make_selective_scan_params(ssmkit::DType::kBFloat16, batch, dim, 2048, 16));
  };
  CHECK(blocks16(8, 1536) == 384);
  CHECK(scan_launch_shape(blocks16(8, 1536), 132) == Shape::kOneWave3);
  CHECK(scan_launch_shape(blocks16(4, 2048), 132) == Shape::kOneWave2);
  CHECK(scan_launch_shape(blocks16(1, 5120), 132) == Shape::kFewChannels);
  CHECK(scan_launch_shape(blocks16(8, 5120), 132) == Shape::kDefault);
  CHECK(scan_launch_shape(197, 132) == Shape::kFewChannels);
  CHECK(scan_launch_shape(198, 132) == Shape::kOneWave2);
  CHECK(scan_launch_shape(263, 132) == Shape::kOneWave2);
  CHECK(scan_launch_shape(264, 132) == Shape::kOneWave3);
  CHECK(scan_launch_shape(396, 132) == Shape::kOneWave3);
  CHECK(scan_launch_shape(397, 132) == Shape::kDefault);
  // With wave3_above (the fused conv, or 16-bit elements), grids above three blocks per SM
  // also take the pipelined loop.
  CHECK(scan_launch_shape(blocks16(8, 5120), 132, true) == Shape::kOneWave3);
  CHECK(scan_launch_shape(397, 132, true) == Shape::kOneWave3);
  CHECK(scan_launch_shape(396, 132, true) == Shape::kOneWave3);
  CHECK(scan_launch_shape(263, 132, true) == Shape::kOneWave2);
  CHECK(scan_launch_shape(197, 132, true) == Shape::kFewChannels);
  // Small GPUs (Jetson Orin: 8-16 SMs) follow the same rule.
  CHECK(scan_launch_shape(20, 16) == Shape::kFewChannels);
  CHECK(scan_launch_shape(40, 16) == Shape::kOneWave3);
  // Only N = 16 has distinct few-channels and one-wave configurations; the 2-blocks one only
  // for 16-bit types (fp32 takes its element configuration there).
  CHECK(ssmkit::ScanFewChannelsConfig<16>::kDistinct);
  CHECK_FALSE(ssmkit::ScanFewChannelsConfig<32>::kDistinct);
  CHECK_FALSE(ssmkit::ScanFewChannelsConfig<256>::kDistinct);
  CHECK(ssmkit::ScanOneWaveConfig<__nv_bfloat16, 16, 3>::kDistinct);
  CHECK(ssmkit::ScanOneWaveConfig<__half, 16, 2>::kDistinct);
  CHECK(ssmkit::ScanOneWaveConfig<float, 16, 3>::kDistinct);
  CHECK_FALSE(ssmkit::ScanOneWaveConfig<float, 16, 2>::kDistinct);
  CHECK_FALSE(ssmkit::ScanOneWaveConfig<__nv_bfloat16, 32, 3>::kDistinct);
  CHECK(ssmkit::ScanOneWaveConfig<float, 16, 3>::kTileLen == 16);
  CHECK(ssmkit::ScanOneWaveConfig<float, 16, 3>::kStatesPerThread == 4);
  CHECK(ssmkit::ScanOneWaveConfig<__nv_bfloat16, 16, 3>::kTileLen == 32);
  CHECK(ssmkit::ScanOneWaveConfig<__nv_bfloat16, 16, 2>::kStatesPerThread == 4);
  CHECK(ssmkit::ScanOneWaveConfig<__nv_bfloat16, 16, 3>::kPipeline);
  // fp32 at N = 16 takes 2 states per thread and 32-step tiles; other types the default.
  CHECK(ssmkit::ScanElementConfig<float, 16>::kDistinct);
  CHECK(ssmkit::ScanElementConfig<float, 16>::kTileLen == 32);
  CHECK(ssmkit::ScanElementConfig<float, 16>::kStatesPerThread == 2);
  CHECK_FALSE(ssmkit::ScanElementConfig<__nv_bfloat16, 16>::kDistinct);
  CHECK_FALSE(ssmkit::ScanElementConfig<float, 32>::kDistinct);
  CHECK(ssmkit::ScanSm90Config<__nv_bfloat16, 32>::kDistinct);
  CHECK(ssmkit::ScanSm90Config<__half, 32>::kDistinct);
  CHECK(ssmkit::ScanSm90Config<__nv_bfloat16, 32>::kPipeline);
  CHECK_FALSE(ssmkit::ScanSm90Config<float, 32>::kDistinct);
  CHECK_FALSE(ssmkit::ScanSm90Config<__nv_bfloat16, 16>::kDistinct);
  CHECK_FALSE(ssmkit::ScanSm90Config<__nv_bfloat16, 64>::kDistinct);
  // Every default gives a block at least 32 channels; at N = 256 two per thread.
  auto channels = [](auto cfg, auto n) {
    using C = decltype(cfg);
    return ssmkit::SelectiveScanTraits<float, decltype(n)::value, C::kStatesPerThread, C::kTileLen, C::kThreads, 0,
                                       false, C::kChannelsPerThread>::kChannels;
  };
  CHECK(channels(ssmkit::ScanDefaultConfig<16>{}, std::integral_constant<int, 16>{}) >= 32);
  CHECK(channels(ssmkit::ScanDefaultConfig<32>{}, std::integral_constant<int, 32>{}) >= 32);
  CHECK(channels(ssmkit::ScanDefaultConfig<64>{}, std::integral_constant<int, 64>{}) >= 32);
  CHECK(channels(ssmkit::ScanDefaultConfig<128>{}, std::integral_constant<int, 128>{}) >= 32);
  CHECK(channels(ssmkit::ScanDefaultConfig<256>{}, std::integral_constant<int, 256>{}) >= 32);
  CHECK(ssmkit::ScanDefaultConfig<256>::kChannelsPerThread == 2);
  // 16-bit B and C in shared memory: in the 3-blocks one-wave configuration of the 16-bit
  // types at N = 16 (with the fused conv too, whose configuration differs in the order of
  // the loop body), and only where the loop is pipelined and the elements are 16-bit; a
  // packed row fits in the float row it lies in.
  CHECK_FALSE(ssmkit::ScanDefaultConfig<16>::kPackedBC);
  CHECK(ssmkit::ScanOneWaveConfig<__nv_bfloat16, 16, 3>::kPackedBC);
  CHECK(ssmkit::ScanOneWaveConfig<__half, 16, 3>::kPackedBC);
  CHECK_FALSE(ssmkit::ScanOneWaveConfig<__nv_bfloat16, 16, 2>::kPackedBC);
  CHECK_FALSE(ssmkit::ScanOneWaveConfig<float, 16, 3>::kPackedBC);
  CHECK_FALSE(ssmkit::ScanSm90Config<__nv_bfloat16, 32>::kPackedBC);
  CHECK(ssmkit::ScanFusedConvConfig<__nv_bfloat16, 16>::kDistinct);
  CHECK(ssmkit::ScanFusedConvConfig<__nv_bfloat16, 16>::kPackedBC);
  CHECK(ssmkit::ScanFusedConvConfig<__half, 16>::kPipeline == 2);
  CHECK(ssmkit::ScanOneWaveConfig<__half, 16, 3>::kPipeline == 1);
  CHECK(ssmkit::ScanOneWaveConfig<__half, 16, 2>::kPipeline == 1);
  CHECK(ssmkit::ScanSm90Config<__half, 32>::kPipeline == 2);
  CHECK(ssmkit::ScanFusedConvConfig<float, 16>::kPipeline == ssmkit::ScanOneWaveConfig<float, 16, 3>::kPipeline);
  // The order of the loop body: element work first only where asked for and pipelined.
  using PackedBf16Pipe1 = ssmkit::SelectiveScanTraits<__nv_bfloat16, 16, 4, 32, 128, 3, 1, 1, true>;
  CHECK(ssmkit::SelectiveScanTraits<__nv_bfloat16, 16, 4, 32, 128, 3, 2, 1, true>::kElementFirst);
  CHECK_FALSE(PackedBf16Pipe1::kElementFirst);
  CHECK_FALSE(ssmkit::SelectiveScanTraits<__nv_bfloat16, 16, 4, 32, 128, 0, 0, 1, true>::kElementFirst);
  // kPipeline 3 and 4: the orders of 1 and 2 with the loads copied to shared memory, one
  // 16-byte slot per thread for each vector of u, delta and B/C; the slots still leave room
  // for the blocks per SM the registers are sized for on sm_90 (228 KB of shared memory per
  // SM, 1 KB of it reserved per block).
  using Async3 = ssmkit::SelectiveScanTraits<__nv_bfloat16, 16, 4, 32, 128, 3, 3, 1, true>;
  using Async4 = ssmkit::SelectiveScanTraits<__nv_bfloat16, 16, 4, 32, 128, 3, 4, 1, true>;
  CHECK(Async3::kAsyncLoads);
  CHECK_FALSE(Async3::kElementFirst);
  CHECK(Async4::kAsyncLoads);
  CHECK(Async4::kElementFirst);
  CHECK_FALSE(PackedBf16Pipe1::kAsyncLoads);
  CHECK_FALSE((ssmkit::SelectiveScanTraits<__nv_bfloat16, 16, 4, 32, 128, 3, 2, 1, true>::kAsyncLoads));
  CHECK_FALSE((ssmkit::SelectiveScanTraits<__nv_bfloat16, 16, 4, 32, 128, 0, 0, 1, true>::kAsyncLoads));
  CHECK(Async3::kRawSlots == 3);
  CHECK(sizeof(Async4::TempStorage) == sizeof(PackedBf16Pipe1::TempStorage) + 3 * 128 * 16 - 16);
  constexpr size_t kSm90SmemPerSM = 228 * 1024, kReservedPerBlock = 1024;
  CHECK(3 * (sizeof(Async3::TempStorage) + kReservedPerBlock) <= kSm90SmemPerSM);
  CHECK(3 * (sizeof(Async4::TempStorage) + kReservedPerBlock) <= kSm90SmemPerSM);
  using Async2 = ssmkit::SelectiveScanTraits<__half, 16, 4, 32, 128, 2, 4, 1, false>;
  CHECK(2 * (sizeof(Async2::TempStorage) + kReservedPerBlock) <= kSm90SmemPerSM);
  using Async32 = ssmkit::SelectiveScanTraits<__half, 32, 8, 32, 128, 2, 4, 1, false>;
  CHECK(Async32::kRawSlots == 4);
  CHECK(2 * (sizeof(Async32::TempStorage) + kReservedPerBlock) <= kSm90SmemPerSM);
  CHECK(ssmkit::ScanFusedConvConfig<__half, 16>::kMinBlocks == 3);
  CHECK_FALSE(ssmkit::ScanFusedConvConfig<float, 16>::kDistinct);
  CHECK_FALSE(ssmkit::ScanFusedConvConfig<__nv_bfloat16, 32>::kDistinct);
  using PackedBf16 = ssmkit::SelectiveScanTraits<__nv_bfloat16, 16, 4, 32, 128, 3, true, 1, true>;
  CHECK(PackedBf16::kPackedBC);
  CHECK(PackedBf16::kPackedRow == 40);
  CHECK(PackedBf16::kPackedRow * 2 <= PackedBf16::kRow * 4);
  CHECK(ssmkit::SelectiveScanTraits<__half, 32, 8, 32, 128, 2, true, 1, true>::kPackedBC);
  CHECK_FALSE(ssmkit::SelectiveScanTraits<float, 16, 4, 16, 128, 3, true, 1, true>::kPackedBC);
  CHECK_FALSE(ssmkit::SelectiveScanTraits<__nv_bfloat16, 16, 4, 32, 128, 0, false, 1, true>::kPackedBC);
  CHECK_FALSE(ssmkit::SelectiveScanTraits<__nv_bfloat16, 16, 4, 32, 128, 3, true, 1, false>::kPackedBC);
}

TEST_CASE("the launchers' device-fact cache", "[host][dispatch]") {
  // With a device, the cached value equals a direct query on every call; without one (CI),
  // every call returns the query's error: a failed query is never cached.
  int direct = -1;
  const cudaError_t e = cudaDeviceGetAttribute(&direct, cudaDevAttrMultiProcessorCount, 0);
  (void)cudaGetLastError();
  for (int call = 0; call < 3; ++call) {
    int cached = -1;
    const cudaError_t c = ssmkit::detail::cached_device_attribute<cudaDevAttrMultiProcessorCount>(0, cached);
    (void)cudaGetLastError();
    CHECK(c == e);
    if (e == cudaSuccess) CHECK(cached == direct);
  }
  // Ordinals past the cache are queried directly, with the query's result.
  int v = -1;
  const cudaError_t far = ssmkit::detail::cached_device_attribute<cudaDevAttrMultiProcessorCount>(
      ssmkit::detail::kCachedDevices + 3, v);
  (void)cudaGetLastError();
  CHECK(far != cudaSuccess);  // no machine has that many devices
  // The launch-shape query reports the missing device as a Status, not a crash.
  auto p = ssmkit::make_selective_scan_params(ssmkit::DType::kBFloat16, 8, 1536, 2048, 16);
  ssmkit::detail::ScanLaunchShape shape{};
  const ssmkit::Status st = ssmkit::detail::scan_launch_shape_of<__nv_bfloat16, 16>(p, shape);
  CHECK(st.ok() == (e == cudaSuccess));
}
