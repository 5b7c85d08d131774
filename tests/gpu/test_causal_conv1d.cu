/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// The causal conv1d kernels (forward in both layouts, decode update) against the
// double-precision host reference.
#include <catch2/catch.hpp>

#include <ssmkit/causal_conv1d.cuh>
#include <ssmkit/reference/causal_conv1d.cuh>

#include <string>
#include <vector>

#include "../common.cuh"

using namespace ssmkit_test;
using ssmkit::DType;

namespace {

const DType kTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};

struct FwdCase {
  DType dtype = DType::kBFloat16, wdtype = DType::kFloat32;
  int64_t batch = 2, dim = 8, seqlen = 100, width = 4;
  bool channel_last = false, bias = true, silu = true, init = false, final = true, seq_idx = false;
  uint64_t seed = 1;
  std::string name() const {
    char buf[256];
    std::snprintf(buf, sizeof buf, "x %s w %s B%lld D%lld L%lld W%lld %s%s%s%s%s%s seed%llu",
                  ssmkit::to_string(dtype), ssmkit::to_string(wdtype), (long long)batch, (long long)dim,
                  (long long)seqlen, (long long)width, channel_last ? "channel-last " : "channel-first ",
                  bias ? "bias " : "", silu ? "silu " : "", init ? "init " : "", final ? "final " : "",
                  seq_idx ? "seq_idx " : "", (unsigned long long)seed);
    return buf;
  }
};

// Index of (b, d, t) in a (batch, dim, len) tensor stored channel-first or channel-last.
struct Layout {
  int64_t bs, ds, ts;
  Layout(int64_t dim, int64_t len, bool last) : bs(dim * len), ds(last ? 1 : len), ts(last ? dim : 1) {}
  int64_t at(int64_t b, int64_t d, int64_t t) const { return b * bs + d * ds + t * ts; }
};

struct FwdProblem {
  FwdCase c;
  ssmkit::CausalConv1dParams host, dev;
  HostTensor x, w, bias, init;
  std::vector<int32_t> seq;
  DeviceBuffer dx, dw, dbias, dinit, dseq, dout, dfinal;

  explicit FwdProblem(const FwdCase& cs) : c(cs) {
    std::mt19937_64 rng(c.seed);
    const int64_t S = c.width > 1 ? c.width - 1 : 1;
    host = ssmkit::make_causal_conv1d_params(c.dtype, c.wdtype, c.batch, c.dim, c.seqlen, c.width, c.channel_last);
    host.silu = c.silu;
    // States in the same layout as x (channel-last states: strides (D*S, 1, D)).
    const Layout sl(c.dim, S, c.channel_last);
    host.initial_states_batch_stride = host.final_states_batch_stride = sl.bs;
    host.initial_states_dim_stride = host.final_states_dim_stride = sl.ds;
    host.initial_states_seq_stride = host.final_states_seq_stride = sl.ts;
    const size_t nx = c.batch * c.dim * c.seqlen, ns = c.batch * c.dim * S;
    x = make_host(c.dtype, nx);
    fill_normal(x, rng);
    w = make_host(c.wdtype, c.dim * c.width);
    fill_normal(w, rng, 0.5f);
    bias = make_host(c.wdtype, c.dim);
    fill_normal(bias, rng, 0.3f);
    init = make_host(c.dtype, ns);
    fill_normal(init, rng);
    seq.resize(c.batch * c.seqlen);
    std::uniform_int_distribution<int> brk(0, 9);
    for (int64_t b = 0; b < c.batch; ++b) {
      int32_t s = 0;
      for (int64_t t = 0; t < c.seqlen; ++t) {
        if (t > 0 && brk(rng) == 0) ++s;  // a new segment about every 10 positions
        seq[b * c.seqlen + t] = s;
      }
    }
    const int es = ssmkit::dtype_size(c.dtype);
    dx = DeviceBuffer(x.bytes.size()); dx.upload(x.data(), x.bytes.size());
    dw = DeviceBuffer(w.bytes.size()); dw.upload(w.data(), w.bytes.size());
    dbias = DeviceBuffer(bias.bytes.size()); dbias.upload(bias.data(), bias.bytes.size());
    dinit = DeviceBuffer(init.bytes.size()); dinit.upload(init.data(), init.bytes.size());
    dseq = DeviceBuffer(seq.size() * 4); dseq.upload(seq.data(), seq.size() * 4);
    dout = DeviceBuffer(nx * es);
    dfinal = DeviceBuffer(ns * es);
    host.x = x.data();
    host.weight = w.data();
    host.bias = c.bias ? bias.data() : nullptr;
    host.initial_states = c.init ? init.data() : nullptr;
    host.seq_idx = c.seq_idx ? seq.data() : nullptr;
    host.out = x.data();  // never written by the reference
    host.final_states = nullptr;
    dev = host;
    dev.x = dx.get();
    dev.weight = dw.get();
    dev.bias = c.bias ? dbias.get() : nullptr;
    dev.initial_states = c.init ? dinit.get() : nullptr;
    dev.seq_idx = c.seq_idx ? dseq.as<int32_t>() : nullptr;
    dev.out = dout.get();
    dev.final_states = c.final && c.width > 1 ? dfinal.get() : nullptr;
  }

  void check(const ssmkit::Status& st) {
    INFO(st.message());
    REQUIRE(st.ok());
    SSMKIT_TEST_CUDA(cudaDeviceSynchronize());
    const int64_t S = c.width - 1;
    std::vector<double> ref(c.batch * c.dim * c.seqlen), ref_fin(c.batch * c.dim * (S > 0 ? S : 1));
    const ssmkit::Status rs = ssmkit::reference::causal_conv1d_fwd(host, ref.data(), ref_fin.data());
    INFO(rs.message());
    REQUIRE(rs.ok());
    HostTensor out = make_host(c.dtype, ref.size());
    dout.download(out.data(), out.bytes.size());
    const Layout ol(c.dim, c.seqlen, c.channel_last);
    double rtol, atol;
    tolerances(c.dtype, rtol, atol);
    const ErrorStats es = compare([&](size_t i) {
      const int64_t t = i % c.seqlen, d = (i / c.seqlen) % c.dim, b = i / (c.seqlen * c.dim);
      return out.at(ol.at(b, d, t));
    }, ref, rtol, atol);
    INFO("out: " << es.describe());
    CHECK(es.failures == 0);
    if (dev.final_states) {
      HostTensor fin = make_host(c.dtype, c.batch * c.dim * S);
      dfinal.download(fin.data(), fin.bytes.size());
      const Layout sl(c.dim, S, c.channel_last);
      ref_fin.resize(c.batch * c.dim * S);
      const ErrorStats fs = compare([&](size_t i) {
        const int64_t k = i % S, d = (i / S) % c.dim, b = i / (S * c.dim);
        return fin.at(sl.at(b, d, k));
      }, ref_fin, 0.0, 0.0);  // copies: exact
      INFO("final_states: " << fs.describe());
      CHECK(fs.failures == 0);
    }
  }

  void run_and_check() {
    dout.poison();
    dfinal.poison();
    check(ssmkit::causal_conv1d_fwd(dev, nullptr));
  }
};

// The launch error of the last bare kernel launch, as a Status naming @p what.
ssmkit::Status launch_status(const char* what) {
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? ssmkit::Status::Ok() : ssmkit::Status::FromCuda(e, what);
}

// The channel-first kernel of the default configuration (W 4) on a grid of `blocks` blocks,
// fewer than the tiles: every block walks several tiles, crossing rows.
template <typename T>
ssmkit::Status launch_channel_first_grid(const ssmkit::CausalConv1dParams& p, unsigned blocks) {
  using Cfg = ssmkit::ConvDefaultConfig<T, false, 4>;
  using Tr = ssmkit::CausalConv1dTraits<T, T, 4, Cfg::kTileLen, false, Cfg::kMinBlocksPerSM>;
  ssmkit::causal_conv1d_fwd_channel_first_kernel<Tr><<<blocks, Tr::kThreads>>>(p);
  return launch_status("channel-first kernel");
}

// The channel-last kernel of a given configuration (chunk, blocks per SM, channels per thread),
// each thread walking runs of run_chunks chunks.
template <typename T, int kW, int kChunk, int kMinBlocks, int kChannels>
ssmkit::Status launch_channel_last_runs(const ssmkit::CausalConv1dParams& p, int run_chunks) {
  using Tr = ssmkit::CausalConv1dTraits<T, T, kW, kChunk, true, kMinBlocks, kChannels>;
  const int64_t run = int64_t(run_chunks) * Tr::kChunk;
  ssmkit::causal_conv1d_fwd_channel_last_kernel<Tr><<<unsigned(Tr::grid_size(p, 1, run)), Tr::kThreads>>>(p, run);
  return launch_status("channel-last kernel");
}

void check_fwd(const FwdCase& c) {
  INFO(c.name());
  FwdProblem pb(c);
  pb.run_and_check();
}

// The weight types compiled for inputs of type t: t itself and float.
std::vector<DType> weight_types(DType t) {
  std::vector<DType> v = {t};
  if (t != DType::kFloat32) v.push_back(DType::kFloat32);
  return v;
}

// Sequence lengths around the kernels' units: the channel-first tile (two 16-byte vectors
// per thread of 128 threads) and, channel-last, chunks of 4-16 positions and runs of a few
// chunks per thread.
std::vector<int64_t> fwd_lengths(DType t, bool last, int64_t W) {
  const int64_t tile = 128 * 2 * (16 / ssmkit::dtype_size(t));
  std::vector<int64_t> v = {1, W > 1 ? W - 1 : 2, W};
  if (last) {
    for (int64_t L : {7, 9, 17, 127, 129}) v.push_back(L);
  } else {
    v.push_back(tile - 1);
    v.push_back(tile + 1);
  }
  v.push_back(4096);
  return v;
}

}  // namespace

TEST_CASE("conv1d forward: dtype x weight dtype x width x seqlen x layout", "[gpu][conv1d]") {
  uint64_t seed = 100;
  for (DType t : kTypes)
    for (DType wt : weight_types(t)) {
      for (int64_t W = 1; W <= 8; ++W)
        for (bool last : {false, true}) {
          for (int64_t L : fwd_lengths(t, last, W)) {
            FwdCase c;
            c.dtype = t;
            c.wdtype = wt;
            c.width = W;
            c.seqlen = L;
            c.channel_last = last;
            c.batch = 2;
            c.dim = last ? 72 : 6;  // channel-last: a full and a partial chunk of channels
            const int opt = int(seed % 4);
            c.init = W > 1 && opt == 1;
            c.seq_idx = opt == 2;
            c.silu = opt != 3;
            c.bias = opt != 0;
            c.seed = seed++;
            check_fwd(c);
          }
        }
    }
}

TEST_CASE("conv1d forward: one factor at a time", "[gpu][conv1d][sanitize]") {
  for (DType t : kTypes)
    for (bool last : {false, true}) {
      FwdCase base;
      base.dtype = t;
      base.wdtype = t;
      base.channel_last = last;
      base.batch = 2;
      base.dim = last ? 40 : 5;
      base.seqlen = 300;
      base.width = 4;
      std::vector<FwdCase> cases;
      cases.push_back(base);
      { FwdCase c = base; c.bias = false; cases.push_back(c); }
      { FwdCase c = base; c.silu = false; cases.push_back(c); }
      { FwdCase c = base; c.init = true; cases.push_back(c); }
      { FwdCase c = base; c.final = false; cases.push_back(c); }
      { FwdCase c = base; c.seq_idx = true; cases.push_back(c); }
      { FwdCase c = base; c.init = true; c.seqlen = 2; cases.push_back(c); }   // L < W-1
      { FwdCase c = base; c.width = 8; c.init = true; c.seqlen = 5; cases.push_back(c); }
      { FwdCase c = base; c.seqlen = 17; c.dim = 3; c.wdtype = DType::kFloat32; cases.push_back(c); }
      for (size_t i = 0; i < cases.size(); ++i) {
        cases[i].seed = 500 + i;
        check_fwd(cases[i]);
      }
    }
}

TEST_CASE("conv1d forward: several tiles per block and long runs per thread", "[gpu][conv1d][sanitize]") {
  // Channel-first: the launcher (one block per tile), and 7 blocks for all the tiles, so that
  // blocks walk several tiles (crossing rows) with the next one in flight. Channel-last: few (batch, channel
  // group) columns, so that each thread walks a run of several chunks.
  uint64_t seed = 1200;
  for (DType t : kTypes)
    for (bool last : {false, true})
      for (int opt = 0; opt < 3; ++opt) {
        FwdCase c;
        c.dtype = t;
        c.wdtype = t;
        c.channel_last = last;
        c.batch = 2;
        c.dim = last ? 4096 : 600;
        c.seqlen = last ? 600 : 2500;
        c.width = 4;
        c.init = opt == 1;
        c.seq_idx = opt == 2;
        c.seed = seed++;
        check_fwd(c);
        if (!last) {  // the launcher gives one block per tile: also a grid of 7 blocks
          INFO(c.name() << " (7 blocks)");
          FwdProblem pb(c);
          pb.dout.poison();
          pb.dfinal.poison();
          pb.check(t == DType::kFloat32   ? launch_channel_first_grid<float>(pb.dev, 7)
                   : t == DType::kFloat16 ? launch_channel_first_grid<__half>(pb.dev, 7)
                                          : launch_channel_first_grid<__nv_bfloat16>(pb.dev, 7));
        }
      }
}

// A candidate channel-last configuration for 16-bit types up to width 4 (4 channels and 8
// positions per thread, registers for 3 blocks per SM: 8-byte channel vectors, which no
// default takes for these types), checked before a launcher rule may take it: through the
// compile-time launcher and with runs of 1, 5 and up to 1000 chunks per thread; aligned rows
// (dim 72) and rows that take the element-wise path (dim 37, a partial channel group); plain,
// with initial states, with seq_idx.
TEST_CASE("conv1d forward: channel-last candidate with 4 channels and 8 positions per thread",
          "[gpu][conv1d][sanitize]") {
  uint64_t seed = 1900;
  for (DType t : {DType::kFloat16, DType::kBFloat16})
    for (int64_t dim : {37, 72})
      for (int opt = 0; opt < 3; ++opt)
        for (int W = 1; W <= 4; ++W)
          for (int64_t L : {int64_t(1), int64_t(W > 1 ? W - 1 : 2), int64_t(W), int64_t(9), int64_t(129), int64_t(600)}) {
            FwdCase c;
            c.dtype = t;
            c.wdtype = t;
            c.channel_last = true;
            c.batch = 2;
            c.dim = dim;
            c.seqlen = L;
            c.width = W;
            c.init = opt == 1 && W > 1;
            c.seq_idx = opt == 2;
            c.seed = seed++;
            INFO(c.name());
            FwdProblem pb(c);
            ssmkit::dispatch_conv_width(W, [&](auto w) {
              constexpr int kW = decltype(w)::value;
              const auto run = [&](auto tag) {
                using T = typename decltype(tag)::type;
                pb.dout.poison();
                pb.dfinal.poison();
                pb.check(ssmkit::causal_conv1d_fwd<T, T, kW, true, 8, 3, 4>(pb.dev, nullptr));
                for (int run_chunks : {1, 5, 1000}) {
                  INFO("runs of " << run_chunks << " chunks");
                  pb.dout.poison();
                  pb.dfinal.poison();
                  pb.check(launch_channel_last_runs<T, kW, 8, 3, 4>(pb.dev, run_chunks));
                }
              };
              if (t == DType::kFloat16) run(ssmkit::TypeTag<__half>{});
              else run(ssmkit::TypeTag<__nv_bfloat16>{});
              return ssmkit::Status::Ok();
            });
          }
}

TEST_CASE("conv1d forward: unaligned rows and strided channels", "[gpu][conv1d][sanitize]") {
  for (DType t : {DType::kFloat16, DType::kFloat32}) {
    // Channel-first rows of odd length inside a wider row pitch, starting one element in.
    FwdCase c;
    c.dtype = c.wdtype = t;
    c.batch = 2; c.dim = 3; c.seqlen = 301; c.width = 3; c.init = true; c.seed = 900;
    FwdProblem pb(c);
    const int es = ssmkit::dtype_size(t);
    const int64_t pitch = 307, bstride = 3 * pitch + 5;
    HostTensor xs = make_host(t, 1 + c.batch * bstride);
    std::mt19937_64 rng(3);
    fill_normal(xs, rng);
    DeviceBuffer dxs(xs.bytes.size()), douts(xs.bytes.size());
    dxs.upload(xs.data(), xs.bytes.size());
    douts.poison();
    ssmkit::CausalConv1dParams h = pb.host, d = pb.dev;
    h.x = static_cast<const unsigned char*>(xs.data()) + es;
    d.x = static_cast<const unsigned char*>(dxs.get()) + es;
    d.out = static_cast<unsigned char*>(douts.get()) + es;
    h.x_dim_stride = d.x_dim_stride = d.out_dim_stride = pitch;
    h.x_batch_stride = d.x_batch_stride = d.out_batch_stride = bstride;
    REQUIRE(ssmkit::causal_conv1d_fwd(d, nullptr).ok());
    SSMKIT_TEST_CUDA(cudaDeviceSynchronize());
    std::vector<double> ref(c.batch * c.dim * c.seqlen);
    REQUIRE(ssmkit::reference::causal_conv1d_fwd(h, ref.data()).ok());
    HostTensor out = make_host(t, xs.size());
    douts.download(out.data(), out.bytes.size());
    double rtol, atol;
    tolerances(t, rtol, atol);
    const ErrorStats es1 = compare([&](size_t i) {
      const int64_t tt = i % c.seqlen, dd = (i / c.seqlen) % c.dim, b = i / (c.seqlen * c.dim);
      return out.at(1 + b * bstride + dd * pitch + tt);
    }, ref, rtol, atol);
    INFO(c.name() << " strided: " << es1.describe());
    CHECK(es1.failures == 0);
  }
}

TEST_CASE("conv1d forward: pieces with initial/final states equal one pass", "[gpu][conv1d][sanitize]") {
  for (DType t : kTypes)
    for (bool last : {false, true}) {
      FwdCase c;
      c.dtype = t; c.wdtype = DType::kFloat32; c.channel_last = last;
      c.batch = 2; c.dim = last ? 70 : 4; c.seqlen = 700; c.width = 5; c.init = true; c.seed = 31;
      FwdProblem whole(c);
      whole.run_and_check();
      HostTensor out_whole = make_host(t, c.batch * c.dim * c.seqlen);
      whole.dout.download(out_whole.data(), out_whole.bytes.size());
      // Run as pieces: the final states of one piece are the initial states of the next.
      const int64_t pieces[] = {1, 3, 200, 496};
      const int es = ssmkit::dtype_size(t);
      DeviceBuffer sa(whole.dinit.bytes()), sb(whole.dinit.bytes());
      SSMKIT_TEST_CUDA(cudaMemcpy(sa.get(), whole.dinit.get(), sa.bytes(), cudaMemcpyDeviceToDevice));
      whole.dout.poison();
      int64_t t0 = 0;
      for (int64_t n : pieces) {
        ssmkit::CausalConv1dParams p = whole.dev;
        p.seqlen = n;
        const int64_t off = t0 * (last ? c.dim : 1) * es;
        p.x = static_cast<const unsigned char*>(p.x) + off;
        p.out = static_cast<unsigned char*>(p.out) + off;
        p.initial_states = sa.get();
        p.final_states = sb.get();
        const ssmkit::Status st = ssmkit::causal_conv1d_fwd(p, nullptr);
        INFO(st.message());
        REQUIRE(st.ok());
        std::swap(sa, sb);
        t0 += n;
      }
      SSMKIT_TEST_CUDA(cudaDeviceSynchronize());
      HostTensor out_p = make_host(t, out_whole.size());
      whole.dout.download(out_p.data(), out_p.bytes.size());
      std::vector<double> ref(out_whole.size());
      for (size_t i = 0; i < ref.size(); ++i) ref[i] = out_whole.at(i);
      const ErrorStats e = compare([&](size_t i) { return out_p.at(i); }, ref, 0.0, 0.0);
      INFO(c.name() << " pieces vs one pass: " << e.describe());
      CHECK(e.failures == 0);
      HostTensor f1 = make_host(t, whole.init.size()), f2 = make_host(t, whole.init.size());
      whole.dfinal.download(f1.data(), f1.bytes.size());
      sa.download(f2.data(), f2.bytes.size());
      CHECK(f1.bytes == f2.bytes);
    }
}

namespace {

struct UpdCase {
  DType dtype = DType::kBFloat16, wdtype = DType::kBFloat16;
  int64_t batch = 3, dim = 40, seqlen = 1, width = 4, extra = 0, pool = 0;
  bool circular = false, indices = false, bias = true, silu = true;
  uint64_t seed = 1;
  std::string name() const {
    char buf[256];
    std::snprintf(buf, sizeof buf, "update x %s w %s B%lld D%lld T%lld W%lld S=W-1+%lld %s%s%s%s seed%llu",
                  ssmkit::to_string(dtype), ssmkit::to_string(wdtype), (long long)batch, (long long)dim,
                  (long long)seqlen, (long long)width, (long long)extra, circular ? "circular " : "shift ",
                  indices ? "indices " : "", bias ? "bias " : "", silu ? "silu " : "", (unsigned long long)seed);
    return buf;
  }
};

struct UpdProblem {
  UpdCase c;
  ssmkit::CausalConv1dUpdateParams host, dev;
  HostTensor x, w, bias, state;
  std::vector<int32_t> lens, idx;
  DeviceBuffer dx, dw, dbias, dstate, dlens, didx, dout;
  int64_t S = 0, pool = 0;

  explicit UpdProblem(const UpdCase& cs) : c(cs) {
    std::mt19937_64 rng(c.seed);
    S = c.width - 1 + c.extra;
    if (c.circular && S < 1) S = 1;
    pool = c.indices ? c.batch + 2 : c.batch;
    host = ssmkit::make_causal_conv1d_update_params(c.dtype, c.wdtype, c.batch, c.dim, c.seqlen, c.width, S, pool);
    host.silu = c.silu;
    x = make_host(c.dtype, c.batch * c.dim * c.seqlen);
    fill_normal(x, rng);
    w = make_host(c.wdtype, c.dim * c.width);
    fill_normal(w, rng, 0.5f);
    bias = make_host(c.wdtype, c.dim);
    fill_normal(bias, rng, 0.3f);
    state = make_host(c.dtype, std::max<int64_t>(1, pool * c.dim * S));
    fill_normal(state, rng);
    std::uniform_int_distribution<int> ld(0, 50);
    for (int64_t b = 0; b < c.batch; ++b) lens.push_back(ld(rng));
    // Pool rows in reverse order, every third entry padding.
    for (int64_t b = 0; b < c.batch; ++b) idx.push_back(b % 3 == 1 ? -1 : int32_t(pool - 1 - b));
    dx = DeviceBuffer(x.bytes.size()); dx.upload(x.data(), x.bytes.size());
    dw = DeviceBuffer(w.bytes.size()); dw.upload(w.data(), w.bytes.size());
    dbias = DeviceBuffer(bias.bytes.size()); dbias.upload(bias.data(), bias.bytes.size());
    dstate = DeviceBuffer(state.bytes.size()); dstate.upload(state.data(), state.bytes.size());
    dlens = DeviceBuffer(lens.size() * 4); dlens.upload(lens.data(), lens.size() * 4);
    didx = DeviceBuffer(idx.size() * 4); didx.upload(idx.data(), idx.size() * 4);
    dout = DeviceBuffer(x.bytes.size());
    host.x = x.data();
    host.weight = w.data();
    host.bias = c.bias ? bias.data() : nullptr;
    host.conv_state = state.data();
    host.cache_seqlens = c.circular ? lens.data() : nullptr;
    host.conv_state_indices = c.indices ? idx.data() : nullptr;
    host.out = x.data();  // never written by the reference
    dev = host;
    dev.x = dx.get();
    dev.weight = dw.get();
    dev.bias = c.bias ? dbias.get() : nullptr;
    dev.conv_state = dstate.get();
    dev.cache_seqlens = c.circular ? dlens.as<int32_t>() : nullptr;
    dev.conv_state_indices = c.indices ? didx.as<int32_t>() : nullptr;
    dev.out = dout.get();
  }

  // Checks out and the updated pool against the reference (which updates the host state).
  void check() {
    std::vector<double> ref(c.batch * c.dim * c.seqlen);
    const ssmkit::Status rs = ssmkit::reference::causal_conv1d_update(host, ref.data());
    INFO(rs.message());
    REQUIRE(rs.ok());
    HostTensor out = make_host(c.dtype, ref.size());
    dout.download(out.data(), out.bytes.size());
    double rtol, atol;
    tolerances(c.dtype, rtol, atol);
    const ErrorStats es = compare([&](size_t i) { return out.at(i); }, ref, rtol, atol);
    INFO("out: " << es.describe());
    CHECK(es.failures == 0);
    HostTensor st = make_host(c.dtype, state.size());
    dstate.download(st.data(), st.bytes.size());
    CHECK(st.bytes == state.bytes);
  }
};

void check_upd(const UpdCase& c) {
  INFO(c.name());
  UpdProblem pb(c);
  pb.dout.poison();
  const ssmkit::Status st = ssmkit::causal_conv1d_update(pb.dev, nullptr);
  INFO(st.message());
  REQUIRE(st.ok());
  SSMKIT_TEST_CUDA(cudaDeviceSynchronize());
  pb.check();
}

}  // namespace

TEST_CASE("conv1d update: dtype x width x tokens x state mode x pool indices", "[gpu][conv1d]") {
  uint64_t seed = 2000;
  for (DType t : kTypes)
    for (DType wt : weight_types(t))
      for (int64_t W = 1; W <= 8; ++W)
        for (int64_t T : {1, 3})
          for (bool circ : {false, true})
            for (bool ind : {false, true}) {
              UpdCase c;
              c.dtype = t;
              c.wdtype = wt;
              c.width = W;
              c.seqlen = T;
              c.circular = circ;
              c.indices = ind;
              c.extra = (seed % 3 == 0) ? 2 : 0;
              c.bias = seed % 2 == 0;
              c.silu = seed % 5 != 0;
              c.seed = seed++;
              check_upd(c);
            }
}

TEST_CASE("conv1d update: small cases", "[gpu][conv1d][sanitize]") {
  uint64_t seed = 3000;
  for (DType t : kTypes)
    for (bool circ : {false, true})
      for (bool ind : {false, true}) {
        UpdCase c;
        c.dtype = t;
        c.wdtype = DType::kFloat32;
        c.batch = 4; c.dim = 130; c.seqlen = 3; c.width = 4; c.extra = 1;
        c.circular = circ; c.indices = ind; c.seed = seed++;
        check_upd(c);
      }
  // More tokens than the state holds.
  UpdCase c;
  c.seqlen = 5; c.width = 3; c.extra = 0; c.seed = seed++;
  check_upd(c);
}

TEST_CASE("conv1d update: large batch (and two entries per thread)", "[gpu][conv1d][sanitize]") {
  // The launcher (one entry per thread), then the vectorised kernel with two entries per
  // thread launched directly.
  uint64_t seed = 3500;
  for (DType t : kTypes)
    for (bool ind : {false, true}) {
      UpdCase c;
      c.dtype = t;
      c.wdtype = t;
      c.batch = 131;  // odd: the last thread of a column has one entry
      c.dim = 64;
      c.seqlen = 1;
      c.width = 4;
      c.indices = ind;
      c.seed = seed++;
      check_upd(c);
      INFO(c.name() << " (two entries per thread)");
      UpdProblem pb(c);
      pb.dout.poison();
      const int vec = 16 / ssmkit::dtype_size(t);
      const dim3 grid(unsigned((c.batch + 1) / 2),
                      unsigned((c.dim / vec + ssmkit::kConvUpdateThreads - 1) / ssmkit::kConvUpdateThreads));
      if (t == DType::kFloat32)
        ssmkit::causal_conv1d_update_vec_kernel<float, float, 4, 2><<<grid, ssmkit::kConvUpdateThreads>>>(pb.dev);
      else if (t == DType::kFloat16)
        ssmkit::causal_conv1d_update_vec_kernel<__half, __half, 4, 2><<<grid, ssmkit::kConvUpdateThreads>>>(pb.dev);
      else
        ssmkit::causal_conv1d_update_vec_kernel<__nv_bfloat16, __nv_bfloat16, 4, 2>
            <<<grid, ssmkit::kConvUpdateThreads>>>(pb.dev);
      SSMKIT_TEST_CUDA(cudaGetLastError());
      SSMKIT_TEST_CUDA(cudaDeviceSynchronize());
      pb.check();
    }
}

TEST_CASE("conv1d update: programmatic dependent launch after a kernel that writes the inputs",
          "[gpu][conv1d][pdl][sanitize]") {
  // The vectorised kernel (batch 1 and 300: one and two entries per thread) and the general
  // one (circular buffer with indices), in a stream and in a graph: the update must see the
  // producer's x and state, not the poison before them.
  cudaStream_t s;
  SSMKIT_TEST_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  uint64_t seed = 5100;
  for (int variant = 0; variant < 3; ++variant)
    for (bool graph : {false, true}) {
      UpdCase c;
      c.dim = 1024;
      c.batch = variant == 1 ? 300 : 1;
      c.circular = c.indices = variant == 2;
      c.seed = ++seed;
      INFO(c.name() << (graph ? " (pdl, graph)" : " (pdl)"));
      UpdProblem pb(c);
      pb.dout.poison();
      DeviceBuffer staged_x, staged_state;
      stage_and_poison(pb.dx, staged_x);
      stage_and_poison(pb.dstate, staged_state);
      ssmkit::Status st;
      run_on_stream(s, graph, [&](cudaStream_t q) {
        restore_behind_producer(pb.dx, staged_x, q);
        restore_behind_producer(pb.dstate, staged_state, q);
        ssmkit::LaunchOptions opts;
        opts.pdl = true;
        st = ssmkit::causal_conv1d_update(pb.dev, q, opts);
      });
      INFO(st.message());
      REQUIRE(st.ok());
      SSMKIT_TEST_CUDA(cudaStreamSynchronize(s));
      pb.check();
    }
  SSMKIT_TEST_CUDA(cudaStreamDestroy(s));
}

TEST_CASE("conv1d: launches under CUDA graph capture", "[gpu][conv1d][graph][sanitize]") {
  cudaStream_t s;
  SSMKIT_TEST_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  for (bool last : {false, true}) {
    FwdCase c;
    c.channel_last = last; c.dim = last ? 70 : 5; c.seqlen = 333; c.init = true; c.seed = 77;
    INFO(c.name());
    FwdProblem pb(c);
    pb.dout.poison();
    pb.dfinal.poison();
    cudaGraph_t g;
    cudaGraphExec_t ge;
    SSMKIT_TEST_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    const ssmkit::Status st = ssmkit::causal_conv1d_fwd(pb.dev, s);
    SSMKIT_TEST_CUDA(cudaStreamEndCapture(s, &g));
    REQUIRE(st.ok());
    SSMKIT_TEST_CUDA(cudaGraphInstantiate(&ge, g, 0));
    SSMKIT_TEST_CUDA(cudaGraphLaunch(ge, s));
    SSMKIT_TEST_CUDA(cudaStreamSynchronize(s));
    pb.check(ssmkit::Status::Ok());
    cudaGraphExecDestroy(ge);
    cudaGraphDestroy(g);
  }
  {
    UpdCase c;
    c.circular = true; c.indices = true; c.seqlen = 1; c.seed = 78;
    INFO(c.name());
    UpdProblem pb(c);
    pb.dout.poison();
    cudaGraph_t g;
    cudaGraphExec_t ge;
    SSMKIT_TEST_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    const ssmkit::Status st = ssmkit::causal_conv1d_update(pb.dev, s);
    SSMKIT_TEST_CUDA(cudaStreamEndCapture(s, &g));
    REQUIRE(st.ok());
    SSMKIT_TEST_CUDA(cudaGraphInstantiate(&ge, g, 0));
    SSMKIT_TEST_CUDA(cudaGraphLaunch(ge, s));
    SSMKIT_TEST_CUDA(cudaStreamSynchronize(s));
    pb.check();
    cudaGraphExecDestroy(ge);
    cudaGraphDestroy(g);
  }
  SSMKIT_TEST_CUDA(cudaStreamDestroy(s));
}
