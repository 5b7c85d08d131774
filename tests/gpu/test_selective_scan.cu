/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// The selective-scan kernel against the double-precision host reference.
#include <catch2/catch.hpp>

#include <ssmkit/selective_scan.cuh>

#include "../scan_problem.cuh"

using namespace ssmkit_test;
using ssmkit::DType;

namespace {

// Compares the problem's device out (and last_state, when requested) with the reference.
void expect_matches_reference(const ScanProblem& pb) {
  std::vector<double> ref, ref_last;
  pb.reference(ref, ref_last);
  double rtol, atol;
  tolerances(pb.c.dtype, rtol, atol);
  const HostTensor out = pb.download_out();
  const ErrorStats es = compare([&](size_t i) { return pb.out_at(out, i); }, ref, rtol, atol);
  INFO("out: " << es.describe());
  CHECK(es.failures == 0);
  if (pb.c.last) {
    const std::vector<float> last = pb.download_last();
    const ErrorStats ls = compare([&](size_t i) { return double(last[i]); }, ref_last, 2e-4, 2e-5);
    INFO("last_state: " << ls.describe());
    CHECK(ls.failures == 0);
  }
}

// Runs the kernel through the run-time dispatcher and checks out and last_state.
void check_case(const ScanCase& c) {
  INFO(c.name());
  ScanProblem pb(c);
  pb.dout.poison();
  pb.dlast.poison();
  const ssmkit::Status st = ssmkit::selective_scan_fwd(pb.dev, nullptr);
  INFO(st.message());
  REQUIRE(st.ok());
  SSMKIT_TEST_CUDA(cudaDeviceSynchronize());
  expect_matches_reference(pb);
}

const DType kTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};

}  // namespace

TEST_CASE("selective scan: dtype x dstate x seqlen, all options on", "[gpu][scan]") {
  const int64_t Ns[] = {1, 4, 16, 32, 64, 128, 256};
  for (DType t : kTypes)
    for (int64_t n : Ns) {
      const int64_t tile = ssmkit::scan_dstate_bucket(n) <= 32 ? 64 : (ssmkit::scan_dstate_bucket(n) <= 128 ? 32 : 16);
      const int64_t Ls[] = {1, 7, tile - 1, tile + 1, 4096, 65537};
      for (int64_t L : Ls) {
        ScanCase c;
        c.dtype = t;
        c.dstate = n;
        c.seqlen = L;
        c.n_groups = 2;
        c.batch = L > 10000 ? 1 : 2;
        c.dim = L > 10000 ? 4 : 6;
        c.seed = 1000 + n * 7 + L;
        check_case(c);
      }
    }
}

TEST_CASE("selective scan: one factor at a time", "[gpu][scan][sanitize]") {
  for (DType t : kTypes) {
    ScanCase base;
    base.dtype = t;
    base.batch = 2;
    base.dim = 12;
    base.seqlen = 300;
    base.dstate = 16;
    base.n_groups = 2;
    std::vector<ScanCase> cases;
    cases.push_back(base);
    for (int bc = 0; bc < 3; ++bc) {  // constant B and C, each alone
      ScanCase c = base;
      c.B_var = bc != 0;
      c.C_var = bc != 1;
      cases.push_back(c);
    }
    for (int64_t g : {1, 2, 4}) { ScanCase c = base; c.n_groups = g; cases.push_back(c); }
    { ScanCase c = base; c.z = false; cases.push_back(c); }
    { ScanCase c = base; c.D = false; cases.push_back(c); }
    { ScanCase c = base; c.bias = false; cases.push_back(c); }
    { ScanCase c = base; c.softplus = false; cases.push_back(c); }
    { ScanCase c = base; c.h0 = false; cases.push_back(c); }
    { ScanCase c = base; c.last = false; cases.push_back(c); }
    { ScanCase c = base; c.z = c.D = c.bias = c.softplus = c.h0 = c.last = false; cases.push_back(c); }
    { ScanCase c = base; c.row_pad = 8; c.batch_pad = 24; cases.push_back(c); }      // strided, still aligned
    { ScanCase c = base; c.row_pad = 3; c.batch_pad = 5; cases.push_back(c); }       // strided, unaligned rows
    { ScanCase c = base; c.offset = 1; cases.push_back(c); }                          // unaligned start
    { ScanCase c = base; c.dim = 40; c.n_groups = 4; cases.push_back(c); }           // partial blocks
    { ScanCase c = base; c.dim = 4; c.n_groups = 4; cases.push_back(c); }            // one channel per group
    { ScanCase c = base; c.dim = 70; c.n_groups = 1; c.seqlen = 129; cases.push_back(c); }
    { ScanCase c = base; c.dstate = 33; cases.push_back(c); }                         // odd N
    { ScanCase c = base; c.dstate = 200; c.seqlen = 45; cases.push_back(c); }
    { ScanCase c = base; c.batch = 5; c.seqlen = 17; cases.push_back(c); }
    { ScanCase c = base; c.batch = 2; c.dim = 8192; c.seqlen = 200; c.n_groups = 1; cases.push_back(c); }  // enough blocks: one range
    for (size_t i = 0; i < cases.size(); ++i) {
      cases[i].seed = 77 + i;
      check_case(cases[i]);
    }
  }
}

namespace {

// Runs `whole` (already run as one call) again as pieces of the given lengths, each starting
// from the previous piece's last state and, with the fused conv, its conv state, and checks
// that the pieces give the one call's out, last state and conv state.
void expect_pieces_equal_one_call(ScanProblem& whole, const std::vector<int64_t>& pieces) {
  const ScanCase& c = whole.c;
  const HostTensor out_whole = whole.download_out();
  const std::vector<float> last_whole = whole.download_last();
  const int es = ssmkit::dtype_size(c.dtype);
  const bool conv = c.conv_w > 0;
  DeviceBuffer carry(c.batch * c.dim * c.dstate * 4);
  carry.upload(whole.h0.data(), whole.h0.size() * 4);
  DeviceBuffer conv_a(conv ? whole.dcinit.bytes() : 0), conv_b(conv ? whole.dcinit.bytes() : 0);
  if (conv) conv_a.upload(whole.conv_init.data(), whole.dcinit.bytes());
  whole.dout.poison();
  int64_t t0 = 0;
  for (int64_t len : pieces) {
    ssmkit::SelectiveScanParams p = whole.dev;
    auto adv = [&](const void* ptr) { return ptr ? static_cast<const void*>(static_cast<const unsigned char*>(ptr) + t0 * es) : nullptr; };
    p.seqlen = len;
    p.u = adv(p.u);
    p.delta = adv(p.delta);
    p.z = adv(p.z);
    p.out = const_cast<void*>(adv(p.out));
    p.B = adv(p.B);  // variable B/C: (batch, groups, dstate, seqlen) rows keep their strides
    p.C = adv(p.C);
    p.h0 = carry.as<float>();
    p.last_state = carry.as<float>();  // in place: each block reads its h0 before writing
    if (conv) {
      p.conv.initial_states = conv_a.get();
      p.conv.final_states = conv_b.get();
      p.conv.out = nullptr;
    }
    const ssmkit::Status st = ssmkit::selective_scan_fwd(p, nullptr);
    INFO(st.message());
    REQUIRE(st.ok());
    if (conv) std::swap(conv_a, conv_b);
    t0 += len;
  }
  REQUIRE(t0 == c.seqlen);
  SSMKIT_TEST_CUDA(cudaDeviceSynchronize());
  const HostTensor out_pieces = whole.download_out();
  std::vector<double> ref;
  for (size_t i = 0; i < size_t(c.batch * c.dim * c.seqlen); ++i) ref.push_back(whole.out_at(out_whole, i));
  // Pieces long enough to be cut into ranges carry the state through a sum of dt (not the
  // product of the steps' decays), so fp32 results differ in the last bits, and a 16-bit
  // output may round one step the other way: allow two units in the last place.
  const double out_tol = c.dtype == DType::kFloat32 ? 1e-5 : (c.dtype == DType::kFloat16 ? 2e-3 : 1.6e-2);
  const ErrorStats es1 = compare([&](size_t i) { return whole.out_at(out_pieces, i); }, ref, out_tol, 1e-6);
  INFO(c.name() << " pieces vs one call: " << es1.describe());
  CHECK(es1.failures == 0);
  std::vector<float> last_pieces(last_whole.size());
  carry.download(last_pieces.data(), last_pieces.size() * 4);
  std::vector<double> lref(last_whole.begin(), last_whole.end());
  const ErrorStats es2 = compare([&](size_t i) { return double(last_pieces[i]); }, lref, 1e-5, 1e-6);
  INFO("last state: " << es2.describe());
  CHECK(es2.failures == 0);
  if (conv) {  // the conv state after the last piece is the one call's final state
    const std::vector<double> want = whole.expected_conv_final();
    HostTensor fin = make_host(c.dtype, want.size());
    conv_a.download(fin.data(), fin.bytes.size());
    const ErrorStats es3 = compare([&](size_t i) { return fin.at(i); }, want, 0.0, 0.0);
    INFO("conv state: " << es3.describe());
    CHECK(es3.failures == 0);
  }
}

}  // namespace

TEST_CASE("selective scan: pieces with state carry equal one call", "[gpu][scan][carry][sanitize]") {
  for (DType t : kTypes) {
    for (int64_t n : {16, 64}) {
      ScanCase c;
      c.dtype = t;
      c.batch = 2;
      c.dim = 10;
      c.seqlen = 1000;
      c.dstate = n;
      c.h0 = true;
      c.seed = 5 + n;
      ScanProblem whole(c);
      whole.dout.poison();
      REQUIRE(ssmkit::selective_scan_fwd(whole.dev, nullptr).ok());
      expect_pieces_equal_one_call(whole, {1, 63, 200, 7, 729});
    }
  }
}

TEST_CASE("selective scan: caller-provided workspace for a split sequence", "[gpu][scan][sanitize]") {
  ScanCase c;
  c.dtype = DType::kFloat16;
  c.batch = 1;
  c.dim = 16;
  c.seqlen = 3000;
  c.dstate = 16;
  c.seed = 21;
  ScanProblem pb(c);
  size_t bytes = 0;
  REQUIRE(ssmkit::selective_scan_workspace_size(pb.dev, bytes).ok());
  REQUIRE(bytes > 0);  // few channels, long sequence: the launch cuts the sequence into ranges
  DeviceBuffer ws(bytes);
  ws.poison();
  ssmkit::SelectiveScanParams p = pb.dev;
  p.workspace = ws.get();
  p.workspace_bytes = bytes - 1;
  const ssmkit::Status small = ssmkit::selective_scan_fwd(p, nullptr);
  CHECK(small.code() == ssmkit::StatusCode::kInvalidArgument);
  CHECK(std::string(small.message()).find("workspace_bytes") != std::string::npos);
  p.workspace_bytes = bytes;
  pb.dout.poison();
  pb.dlast.poison();
  REQUIRE(ssmkit::selective_scan_fwd(p, nullptr).ok());
  SSMKIT_TEST_CUDA(cudaDeviceSynchronize());
  expect_matches_reference(pb);
}

TEST_CASE("selective scan: compile-time launcher and CUDA graph capture", "[gpu][scan][graph][sanitize]") {
  ScanCase c;
  c.dtype = DType::kBFloat16;
  c.batch = 2;
  c.dim = 24;
  c.seqlen = 513;
  c.dstate = 16;
  c.seed = 42;
  ScanProblem pb(c);
  pb.dout.poison();
  cudaStream_t s;
  SSMKIT_TEST_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cudaGraph_t graph;
  SSMKIT_TEST_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  const ssmkit::Status st = ssmkit::selective_scan_fwd<__nv_bfloat16, 16>(pb.dev, s);
  SSMKIT_TEST_CUDA(cudaStreamEndCapture(s, &graph));
  INFO(st.message());
  REQUIRE(st.ok());
  cudaGraphExec_t exec;
  SSMKIT_TEST_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  SSMKIT_TEST_CUDA(cudaGraphLaunch(exec, s));
  SSMKIT_TEST_CUDA(cudaStreamSynchronize(s));
  expect_matches_reference(pb);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(s);

  // The compile-time launcher refuses a mismatched dtype or an oversized dstate.
  CHECK(ssmkit::selective_scan_fwd<float, 16>(pb.dev, nullptr).code() == ssmkit::StatusCode::kInvalidArgument);
  ssmkit::SelectiveScanParams big = pb.dev;
  big.dstate = 17;
  CHECK(ssmkit::selective_scan_fwd<__nv_bfloat16, 16>(big, nullptr).code() == ssmkit::StatusCode::kInvalidArgument);
}

// Past 2^31 elements: 64-bit offsets. B1 D4096 L524289 bf16 = 2^31 + 4096 elements per tensor.
// Inputs are generated on the device; a few whole channels are checked against the reference.
namespace {
__global__ void fill_hash(__nv_bfloat16* p, int64_t n, uint32_t seed, float lo, float hi) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    uint32_t x = uint32_t(i) * 0x9E3779B1u ^ uint32_t(i >> 32) * 0x85EBCA77u ^ seed;
    x ^= x >> 15; x *= 0x2C1B3C6Du; x ^= x >> 12; x *= 0x297A2D39u; x ^= x >> 15;
    p[i] = __float2bfloat16(lo + (hi - lo) * (x >> 8) * (1.f / 16777216.f));
  }
}
}  // namespace

TEST_CASE("selective scan: more than 2^31 elements", "[gpu][scan][huge]") {
  const int64_t Bn = 1, Dn = 4096, L = 524289, N = 16;
  const int64_t n = Bn * Dn * L;
  REQUIRE(n > (int64_t(1) << 31));
  size_t free_b = 0, total_b = 0;
  SSMKIT_TEST_CUDA(cudaMemGetInfo(&free_b, &total_b));
  if (free_b < size_t(n) * 2 * 3 + (size_t(1) << 30)) {
    WARN("not enough device memory for the 2^31-element case; skipped");
    return;
  }
  DeviceBuffer u(n * 2), delta(n * 2), out(n * 2), Bm(N * L * 2), Cm(N * L * 2), A(Dn * N * 4), last(Dn * N * 4);
  fill_hash<<<4096, 256>>>(u.as<__nv_bfloat16>(), n, 1, -1.f, 1.f);
  fill_hash<<<4096, 256>>>(delta.as<__nv_bfloat16>(), n, 2, -3.f, 0.5f);
  fill_hash<<<1024, 256>>>(Bm.as<__nv_bfloat16>(), N * L, 3, -1.f, 1.f);
  fill_hash<<<1024, 256>>>(Cm.as<__nv_bfloat16>(), N * L, 4, -1.f, 1.f);
  std::vector<float> hA(Dn * N);
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<float> ua(-3.f, -0.2f);
  for (auto& a : hA) a = ua(rng);
  A.upload(hA.data(), hA.size() * 4);
  SSMKIT_TEST_CUDA(cudaMemset(out.get(), 0xFF, n * 2));
  auto p = ssmkit::make_selective_scan_params(DType::kBFloat16, Bn, Dn, L, N);
  p.u = u.get(); p.delta = delta.get(); p.A = A.as<float>(); p.B = Bm.get(); p.C = Cm.get();
  p.out = out.get(); p.last_state = last.as<float>(); p.delta_softplus = true;
  const ssmkit::Status st = ssmkit::selective_scan_fwd(p, nullptr);
  INFO(st.message());
  REQUIRE(st.ok());
  SSMKIT_TEST_CUDA(cudaDeviceSynchronize());

  // Gather channels {0, 1, 2048, 4095} into a small host problem and compare.
  const int64_t chans[] = {0, 1, 2048, Dn - 1};
  const int64_t nc = 4;
  std::vector<__nv_bfloat16> hu(nc * L), hd(nc * L), ho(nc * L), hB(N * L), hC(N * L);
  std::vector<float> hAs(nc * N), hlast(Dn * N);
  for (int64_t k = 0; k < nc; ++k) {
    const size_t off = size_t(chans[k]) * L * 2;
    SSMKIT_TEST_CUDA(cudaMemcpy(hu.data() + k * L, static_cast<char*>(u.get()) + off, L * 2, cudaMemcpyDeviceToHost));
    SSMKIT_TEST_CUDA(cudaMemcpy(hd.data() + k * L, static_cast<char*>(delta.get()) + off, L * 2, cudaMemcpyDeviceToHost));
    SSMKIT_TEST_CUDA(cudaMemcpy(ho.data() + k * L, static_cast<char*>(out.get()) + off, L * 2, cudaMemcpyDeviceToHost));
    for (int64_t i = 0; i < N; ++i) hAs[k * N + i] = hA[chans[k] * N + i];
  }
  Bm.download(hB.data(), N * L * 2);
  Cm.download(hC.data(), N * L * 2);
  last.download(hlast.data(), hlast.size() * 4);
  auto hp = ssmkit::make_selective_scan_params(DType::kBFloat16, 1, nc, L, N);
  hp.u = hu.data(); hp.delta = hd.data(); hp.A = hAs.data(); hp.B = hB.data(); hp.C = hC.data();
  hp.out = ho.data(); hp.delta_softplus = true;
  std::vector<double> ref(nc * L), ref_last(nc * N);
  REQUIRE(ssmkit::reference::selective_scan_fwd(hp, ref.data(), ref_last.data()).ok());
  double rtol, atol;
  tolerances(DType::kBFloat16, rtol, atol);
  const ErrorStats es = compare([&](size_t i) { return double(ssmkit::to_float(ho[i])); }, ref, rtol, atol);
  INFO("out: " << es.describe());
  CHECK(es.failures == 0);
  const ErrorStats ls = compare([&](size_t i) { return double(hlast[chans[i / N] * N + i % N]); }, ref_last, 2e-4, 2e-5);
  INFO("last_state: " << ls.describe());
  CHECK(ls.failures == 0);
}

namespace {

// Checks the fused conv's output and final states (exact copies of inputs) of a finished
// launch against the reference.
void expect_conv_matches_reference(ScanProblem& pb) {
  const ScanCase& c = pb.c;
  std::vector<double> ref, ref_last, ref_conv;
  pb.reference(ref, ref_last, &ref_conv);
  double rtol, atol;
  tolerances(c.dtype, rtol, atol);
  if (c.conv_out) {
    HostTensor co = make_host(c.dtype, pb.x_elems);
    pb.dcout.download(co.data(), co.bytes.size());
    const ErrorStats es = compare([&](size_t i) { return pb.out_at(co, i); }, ref_conv, rtol, atol);
    INFO("conv out: " << es.describe());
    CHECK(es.failures == 0);
  }
  if (c.conv_final && c.conv_w > 1) {
    const std::vector<double> want = pb.expected_conv_final();
    HostTensor fin = make_host(c.dtype, want.size());
    pb.dcfinal.download(fin.data(), fin.bytes.size());
    const ErrorStats es = compare([&](size_t i) { return fin.at(i); }, want, 0.0, 0.0);
    INFO("conv final states: " << es.describe());
    CHECK(es.failures == 0);
  }
}

// Runs a case with the fused conv through the run-time launcher and checks out, last_state,
// the conv output and the conv's final states against the reference.
void check_conv_case(const ScanCase& c) {
  INFO(c.name());
  ScanProblem pb(c);
  pb.dout.poison();
  pb.dlast.poison();
  pb.dcout.poison();
  pb.dcfinal.poison();
  const ssmkit::Status st = ssmkit::selective_scan_fwd(pb.dev, nullptr);
  INFO(st.message());
  REQUIRE(st.ok());
  SSMKIT_TEST_CUDA(cudaDeviceSynchronize());
  expect_matches_reference(pb);
  expect_conv_matches_reference(pb);
}

}  // namespace

TEST_CASE("selective scan with fused conv1d: width x length x options", "[gpu][scan][conv][sanitize]") {
  uint64_t seed = 500;
  for (DType t : kTypes)
    for (int64_t w = 1; w <= 4; ++w)
      for (int64_t L : {int64_t(1), w - 1 > 0 ? w - 1 : int64_t(2), int64_t(33), int64_t(300)}) {
        ScanCase c;
        c.dtype = t;
        c.batch = 2;
        c.dim = 40;  // a partial block of channels
        c.seqlen = L;
        c.dstate = 16;
        c.conv_w = w;
        c.seed = seed++;
        check_conv_case(c);
      }
  // One option off at a time, N = 64, unaligned and strided rows.
  for (DType t : kTypes) {
    ScanCase base;
    base.dtype = t;
    base.dim = 12;
    base.seqlen = 129;
    base.dstate = 64;
    base.conv_w = 4;
    std::vector<ScanCase> cases(8, base);
    cases[1].conv_bias = false;
    cases[2].conv_silu = false;
    cases[3].conv_init = false;
    cases[4].conv_final = cases[4].conv_out = false;
    cases[5].conv_w_fp32 = false;
    cases[6].offset = 1;
    cases[7].row_pad = 3;
    cases[7].batch_pad = 5;
    for (ScanCase& c : cases) {
      c.seed = seed++;
      check_conv_case(c);
    }
  }
}

TEST_CASE("selective scan: every launch shape of the run-time launcher at N = 16", "[gpu][scan][conv]") {
  // Grids of the default configuration (32 channels a block) at about 1, 1.75, 2.5 and 4 blocks
  // per SM of this device: the few-channels shape, the 2- and 3-blocks pipelined loops, and a
  // grid above 3 blocks per SM (the 3-blocks loop for 16-bit types, with 16-bit B and C rows,
  // or float ones with the fused conv; the element or default configuration for fp32); each
  // without and with the fused conv.
  int dev = 0, sms = 0;
  SSMKIT_TEST_CUDA(cudaGetDevice(&dev));
  SSMKIT_TEST_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  uint64_t seed = 7300;
  for (DType t : kTypes)
    for (int64_t quarter_blocks : {4, 7, 10, 16})
      for (bool conv : {false, true}) {
        ScanCase c;
        c.dtype = t;
        c.batch = 2;
        c.dim = 32 * (int64_t(sms) * quarter_blocks / 8) - 8;  // partial last block of channels
        c.seqlen = 75;
        c.dstate = 16;
        c.conv_w = conv ? 4 : 0;
        c.seed = seed++;
        if (conv) check_conv_case(c);
        else check_case(c);
      }
}

TEST_CASE("selective scan with fused conv1d: dstate 32 through the launcher", "[gpu][scan][conv]") {
  // At N = 32 the launcher takes the 8-states-per-thread pipelined configuration on sm_90 and
  // newer (ScanSm90Config), the default elsewhere.
  uint64_t seed = 700;
  for (DType t : kTypes)
    for (int64_t L : {int64_t(33), int64_t(300)}) {
      ScanCase c;
      c.dtype = t;
      c.batch = 2;
      c.dim = 72;
      c.seqlen = L;
      c.dstate = 32;
      c.conv_w = 4;
      c.seed = seed++;
      check_conv_case(c);
    }
}

TEST_CASE("selective scan with fused conv1d: long sequences cut into ranges", "[gpu][scan][conv]") {
  for (DType t : kTypes)
    for (int64_t n : {16, 128}) {
      ScanCase c;
      c.dtype = t;
      c.batch = 1;
      c.dim = 6;
      c.seqlen = 4100;
      c.dstate = n;
      c.conv_w = 4;
      c.seed = 900 + n;
      check_conv_case(c);
    }
}

TEST_CASE("selective scan with fused conv1d: pieces carrying both states equal one call", "[gpu][scan][conv][carry][sanitize]") {
  for (DType t : kTypes) {
    ScanCase c;
    c.dtype = t;
    c.batch = 2;
    c.dim = 10;
    c.seqlen = 1000;
    c.dstate = 16;
    c.conv_w = 4;
    c.conv_out = false;
    c.seed = 31;
    ScanProblem whole(c);
    whole.dout.poison();
    REQUIRE(ssmkit::selective_scan_fwd(whole.dev, nullptr).ok());
    expect_pieces_equal_one_call(whole, {1, 2, 61, 300, 636});
  }
}

namespace {

// Runs one explicit configuration of the compile-time launcher on a case and checks it.
template <typename T, int kS, int kTile, int kThreads, int kMinB, int kPipe, int kCPT, int kN = 16, bool kPacked = true>
void check_config(const ScanCase& c) {
  INFO(c.name() << " | N " << kN << " kS " << kS << " tile " << kTile << " threads " << kThreads << " minB " << kMinB
                << " pipeline " << kPipe << " channels/thread " << kCPT << " packed B/C " << kPacked);
  ScanProblem pb(c);
  pb.dout.poison();
  pb.dlast.poison();
  if (c.conv_w > 0) {
    pb.dcout.poison();
    pb.dcfinal.poison();
  }
  const ssmkit::Status st = ssmkit::selective_scan_fwd<T, kN, kS, kTile, kThreads, kMinB, kPipe, kCPT, kPacked>(pb.dev, nullptr);
  INFO(st.message());
  REQUIRE(st.ok());
  SSMKIT_TEST_CUDA(cudaDeviceSynchronize());
  expect_matches_reference(pb);
  if (c.conv_w > 0) expect_conv_matches_reference(pb);
}

// Fused-conv cases for the pipelined loop: every width, whole tiles and a partial one, a split
// sequence, each conv option off, unaligned rows.
std::vector<ScanCase> pipeline_conv_cases(DType t) {
  ScanCase base;
  base.dtype = t;
  base.batch = 2;
  base.dim = 64;
  base.seqlen = 167;
  base.dstate = 16;
  base.conv_w = 4;
  std::vector<ScanCase> cs;
  for (int64_t w = 1; w <= 4; ++w) { ScanCase c = base; c.conv_w = w; cs.push_back(c); }
  { ScanCase c = base; c.seqlen = 128; cs.push_back(c); }
  { ScanCase c = base; c.seqlen = 1000; c.batch = 1; cs.push_back(c); }
  { ScanCase c = base; c.conv_silu = false; c.conv_bias = false; cs.push_back(c); }
  { ScanCase c = base; c.conv_init = false; c.conv_w_fp32 = false; cs.push_back(c); }
  { ScanCase c = base; c.conv_out = false; c.conv_final = false; c.z = false; cs.push_back(c); }
  { ScanCase c = base; c.row_pad = 3; cs.push_back(c); }
  for (size_t i = 0; i < cs.size(); ++i) cs[i].seed = 1300 + i;
  return cs;
}

// Cases for whole-tile (pipelined) main loops: whole blocks of channels with tiles to spare
// and a partial last tile, an exact multiple of the tile, ranges of a split sequence (few
// blocks), partial channel blocks, options off, constant B/C, groups, unaligned rows, and a
// grid large enough for one range.
std::vector<ScanCase> pipeline_cases(DType t) {
  ScanCase base;
  base.dtype = t;
  base.batch = 2;
  base.dim = 128;
  base.seqlen = 167;
  base.dstate = 16;
  base.n_groups = 2;
  std::vector<ScanCase> cs;
  cs.push_back(base);
  { ScanCase c = base; c.seqlen = 192; cs.push_back(c); }
  { ScanCase c = base; c.seqlen = 1000; c.batch = 1; cs.push_back(c); }
  { ScanCase c = base; c.z = c.D = c.bias = c.softplus = false; cs.push_back(c); }
  { ScanCase c = base; c.z = false; c.h0 = false; cs.push_back(c); }
  { ScanCase c = base; c.dim = 40; c.n_groups = 1; cs.push_back(c); }
  { ScanCase c = base; c.B_var = false; cs.push_back(c); }
  { ScanCase c = base; c.C_var = false; c.B_var = false; cs.push_back(c); }
  { ScanCase c = base; c.row_pad = 3; cs.push_back(c); }
  { ScanCase c = base; c.dstate = 13; cs.push_back(c); }
  { ScanCase c = base; c.dim = 8192; c.n_groups = 1; c.seqlen = 133; cs.push_back(c); }
  for (size_t i = 0; i < cs.size(); ++i) cs[i].seed = 900 + i;
  return cs;
}

template <typename T>
void check_pipeline_configs(DType t) {
  // kPipe 1: the recurrence first in the loop body; 2: the element work first.
  for (const ScanCase& c : pipeline_cases(t)) {
    check_config<T, 4, 32, 128, 3, 1, 1>(c);
    check_config<T, 4, 32, 128, 3, 1, 1, 16, false>(c);  // B and C in shared memory as floats
    check_config<T, 4, 32, 128, 3, 2, 1>(c);
    // kPipe 3 and 4: as 1 and 2, the loads copied to shared memory asynchronously.
    check_config<T, 4, 32, 128, 3, 3, 1>(c);
    check_config<T, 4, 32, 128, 3, 4, 1>(c);
    check_config<T, 4, 32, 128, 2, 4, 1, 16, false>(c);
    check_config<T, 4, 32, 128, 2, 1, 1, 16, false>(c);  // ScanOneWaveConfig<T, 16, 2>
    check_config<T, 4, 16, 64, 3, 1, 2>(c);
    check_config<T, 4, 32, 64, 3, 1, 2>(c);
    // ScanSm90Config<T, 32>: 8 states per thread, 2 blocks per SM, float B and C rows, element
    // work first (dstate 32, or the case's own smaller one); and packed rows, recurrence first.
    ScanCase c32 = c;
    if (c32.dstate == 16) c32.dstate = 32;
    check_config<T, 8, 32, 128, 2, 2, 1, 32, false>(c32);
    check_config<T, 8, 32, 128, 2, 4, 1, 32, false>(c32);
    check_config<T, 8, 32, 128, 2, 1, 1, 32>(c32);
  }
  for (const ScanCase& c : pipeline_conv_cases(t)) {
    check_config<T, 4, 32, 128, 3, 2, 1>(c);  // ScanFusedConvConfig: 16-bit B and C, element work first
    check_config<T, 4, 32, 128, 3, 4, 1>(c);  // the same, loads copied asynchronously
    check_config<T, 4, 32, 128, 3, 1, 1>(c);
    check_config<T, 4, 32, 128, 3, 1, 1, 16, false>(c);
    check_config<T, 4, 32, 128, 2, 1, 1>(c);
    ScanCase c32 = c;
    c32.dstate = 32;
    check_config<T, 8, 32, 128, 2, 2, 1, 32, false>(c32);
  }
}

}  // namespace

TEST_CASE("selective scan: pipelined main loop and two channels per thread", "[gpu][scan][pipeline]") {
  check_pipeline_configs<__nv_bfloat16>(DType::kBFloat16);
  check_pipeline_configs<__half>(DType::kFloat16);
  for (const ScanCase& c : pipeline_cases(DType::kFloat32)) {
    check_config<float, 4, 16, 128, 3, 1, 1>(c);
    check_config<float, 4, 16, 64, 3, 1, 2>(c);
  }
  for (const ScanCase& c : pipeline_conv_cases(DType::kFloat32)) check_config<float, 4, 16, 128, 3, 1, 1>(c);
}

// Configurations the sweeps time as candidates for the run-time launcher's rules: fp32 at
// N = 16 with 2 states per thread and 32-step tiles (large grids), and 8 states per thread in
// the pipelined loop at N = 16 (sequences cut into many ranges). Checked here on the same
// cases as the pipelined loop, split sequences included, before a rule may take them.
TEST_CASE("selective scan: candidate configurations at N = 16", "[gpu][scan][pipeline]") {
  for (const ScanCase& c : pipeline_cases(DType::kFloat32)) check_config<float, 2, 32, 128, 0, false, 1>(c);
  for (const ScanCase& c : pipeline_cases(DType::kBFloat16)) {
    check_config<__nv_bfloat16, 8, 32, 128, 2, 1, 1>(c);
    check_config<__nv_bfloat16, 8, 32, 64, 3, 1, 1>(c);
  }
  for (const ScanCase& c : pipeline_cases(DType::kFloat16)) check_config<__half, 8, 32, 128, 2, 1, 1>(c);
}

TEST_CASE("selective scan: pipelined main loop, sanitizer size", "[gpu][scan][sanitize]") {
  ScanCase c;
  c.dtype = DType::kBFloat16;
  c.batch = 1;
  c.dim = 64;
  c.seqlen = 167;
  c.seed = 4242;
  check_config<__nv_bfloat16, 4, 32, 128, 3, 1, 1>(c);
  check_config<__nv_bfloat16, 4, 32, 128, 3, 1, 1, 16, false>(c);
  check_config<__nv_bfloat16, 4, 32, 128, 3, 3, 1>(c);
  check_config<__nv_bfloat16, 4, 32, 128, 3, 4, 1>(c);
  check_config<__nv_bfloat16, 4, 16, 64, 3, 1, 2>(c);
  c.dim = 40;
  check_config<__nv_bfloat16, 4, 16, 64, 3, 1, 2>(c);
  c.dstate = 29;
  check_config<__nv_bfloat16, 8, 32, 128, 2, 1, 1, 32>(c);
  c.dim = 64;
  c.dstate = 32;
  c.dtype = DType::kFloat16;
  check_config<__half, 8, 32, 128, 2, 1, 1, 32>(c);
  // The fused conv in the pipelined loop.
  c.dtype = DType::kBFloat16;
  c.dstate = 16;
  c.conv_w = 4;
  check_config<__nv_bfloat16, 4, 32, 128, 3, 1, 1>(c);
  check_config<__nv_bfloat16, 4, 32, 128, 3, 1, 1, 16, false>(c);
  check_config<__nv_bfloat16, 4, 32, 128, 3, 4, 1>(c);
}
