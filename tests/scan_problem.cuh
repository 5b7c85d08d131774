/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// One selective-scan test problem: random inputs on host and device, the kernel's output, and
// the double reference, with every layout option a test may vary.
#pragma once

#include <ssmkit/reference/selective_scan.cuh>
#include <ssmkit/selective_scan.cuh>

#include <algorithm>
#include <string>

#include "common.cuh"

namespace ssmkit_test {

struct ScanCase {
  ssmkit::DType dtype = ssmkit::DType::kBFloat16;
  int64_t batch = 2, dim = 8, seqlen = 100, dstate = 16, n_groups = 1;
  bool B_var = true, C_var = true;
  bool z = true, D = true, bias = true, softplus = true, h0 = true, last = true;
  int64_t row_pad = 0;    // extra elements between channel rows of u/delta/z/out
  int64_t batch_pad = 0;  // extra elements between batches
  int64_t offset = 0;     // elements the u/delta/z/out data starts past an allocation
  // Fused causal conv1d: width 0 = none.
  int64_t conv_w = 0;
  bool conv_bias = true, conv_silu = true, conv_init = true, conv_final = true, conv_out = true;
  bool conv_w_fp32 = true;  // weight and bias in float32 (else in dtype)
  uint64_t seed = 1;

  std::string name() const {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "%s B%lld D%lld L%lld N%lld G%lld %s%s%s%s%s%s%s%s pad%lld/%lld off%lld seed%llu",
                  ssmkit::to_string(dtype), (long long)batch, (long long)dim, (long long)seqlen,
                  (long long)dstate, (long long)n_groups, B_var ? "Bvar " : "Bconst ",
                  C_var ? "Cvar " : "Cconst ", z ? "z " : "", D ? "D " : "", bias ? "bias " : "",
                  softplus ? "softplus " : "", h0 ? "h0 " : "", last ? "last " : "",
                  (long long)row_pad, (long long)batch_pad, (long long)offset,
                  (unsigned long long)seed);
    std::string s = buf;
    if (conv_w > 0) {
      std::snprintf(buf, sizeof buf, " conv W%lld%s%s%s%s%s%s", (long long)conv_w, conv_bias ? " bias" : "",
                    conv_silu ? " silu" : "", conv_init ? " init" : "", conv_final ? " final" : "",
                    conv_out ? " out" : "", conv_w_fp32 ? " w32" : " wdtype");
      s += buf;
    }
    return s;
  }
};

struct ScanProblem {
  ScanCase c;
  ssmkit::SelectiveScanParams host;  // pointers into host memory
  ssmkit::SelectiveScanParams dev;   // same arguments, device pointers
  HostTensor u, delta, z, B, C;
  std::vector<float> A, D, bias, h0;
  DeviceBuffer du, ddelta, dz, dB, dC, dA, dD, dbias, dh0, dout, dlast;
  HostTensor conv_weight, conv_bias, conv_init;  // fused conv inputs (conv_w > 0)
  DeviceBuffer dcw, dcb, dcinit, dcfinal, dcout;
  size_t x_elems = 0;  // elements of each (padded) u/delta/z/out allocation

  explicit ScanProblem(const ScanCase& cs) : c(cs) {
    using namespace ssmkit;
    std::mt19937_64 rng(c.seed);
    const int64_t row = c.seqlen + c.row_pad;
    const int64_t bstride = c.dim * row + c.batch_pad;
    x_elems = static_cast<size_t>(c.offset + c.batch * bstride);
    host = make_selective_scan_params(c.dtype, c.batch, c.dim, c.seqlen, c.dstate, c.n_groups, c.B_var, c.C_var);
    host.u_dim_stride = host.delta_dim_stride = host.z_dim_stride = host.out_dim_stride = row;
    host.u_batch_stride = host.delta_batch_stride = host.z_batch_stride = host.out_batch_stride = bstride;
    host.delta_softplus = c.softplus;

    u = make_host(c.dtype, x_elems);
    fill_normal(u, rng);
    delta = make_host(c.dtype, x_elems);
    if (c.softplus) fill_uniform(delta, rng, -4.f, 1.f); else fill_uniform(delta, rng, 0.01f, 0.6f);
    z = make_host(c.dtype, x_elems);
    fill_normal(z, rng);
    A.resize(c.dim * c.dstate);
    std::uniform_real_distribution<float> ua(-3.f, -0.2f);
    for (auto& a : A) a = ua(rng);
    const size_t bc_elems = c.batch * c.n_groups * c.dstate * c.seqlen;
    B = make_host(c.B_var ? c.dtype : DType::kFloat32, c.B_var ? bc_elems : c.dim * c.dstate);
    C = make_host(c.C_var ? c.dtype : DType::kFloat32, c.C_var ? bc_elems : c.dim * c.dstate);
    fill_normal(B, rng);
    fill_normal(C, rng);
    std::normal_distribution<float> nd(0.f, 1.f);
    D.resize(c.dim);
    for (auto& v : D) v = nd(rng);
    bias.resize(c.dim);
    for (auto& v : bias) v = 0.1f * nd(rng);
    h0.resize(c.batch * c.dim * c.dstate);
    for (auto& v : h0) v = nd(rng);

    const int es = dtype_size(c.dtype);
    du = DeviceBuffer(x_elems * es); du.upload(u.data(), x_elems * es);
    ddelta = DeviceBuffer(x_elems * es); ddelta.upload(delta.data(), x_elems * es);
    dz = DeviceBuffer(x_elems * es); dz.upload(z.data(), x_elems * es);
    dB = DeviceBuffer(B.bytes.size()); dB.upload(B.data(), B.bytes.size());
    dC = DeviceBuffer(C.bytes.size()); dC.upload(C.data(), C.bytes.size());
    dA = DeviceBuffer(A.size() * 4); dA.upload(A.data(), A.size() * 4);
    dD = DeviceBuffer(D.size() * 4); dD.upload(D.data(), D.size() * 4);
    dbias = DeviceBuffer(bias.size() * 4); dbias.upload(bias.data(), bias.size() * 4);
    dh0 = DeviceBuffer(h0.size() * 4); dh0.upload(h0.data(), h0.size() * 4);
    dout = DeviceBuffer(x_elems * es);
    dlast = DeviceBuffer(c.batch * c.dim * c.dstate * 4);

    auto off = [&](const void* p) { return static_cast<const void*>(static_cast<const unsigned char*>(p) + c.offset * es); };
    host.u = off(u.data());
    host.delta = off(delta.data());
    host.z = c.z ? off(z.data()) : nullptr;
    host.A = A.data();
    host.B = B.data();
    host.C = C.data();
    host.D = c.D ? D.data() : nullptr;
    host.delta_bias = c.bias ? bias.data() : nullptr;
    host.h0 = c.h0 ? h0.data() : nullptr;
    host.out = const_cast<void*>(host.u);  // never written: the reference returns its result in double
    host.last_state = nullptr;

    dev = host;
    dev.u = off(du.get());
    dev.delta = off(ddelta.get());
    dev.z = c.z ? off(dz.get()) : nullptr;
    dev.A = dA.as<float>();
    dev.B = dB.get();
    dev.C = dC.get();
    dev.D = c.D ? dD.as<float>() : nullptr;
    dev.delta_bias = c.bias ? dbias.as<float>() : nullptr;
    dev.h0 = c.h0 ? dh0.as<float>() : nullptr;
    dev.out = const_cast<void*>(off(dout.get()));
    dev.last_state = c.last ? dlast.as<float>() : nullptr;
    if (c.conv_w > 0) add_conv(rng);
  }

  // The fused conv's weight (dim, W), bias, initial states (batch, dim, W-1), final states and
  // conv output (laid out like u).
  void add_conv(std::mt19937_64& rng) {
    using namespace ssmkit;
    const int64_t W = c.conv_w, S = W - 1;
    const DType wt = c.conv_w_fp32 ? DType::kFloat32 : c.dtype;
    set_contiguous_scan_conv(host, W, wt);
    host.conv.out_dim_stride = host.u_dim_stride;
    host.conv.out_batch_stride = host.u_batch_stride;
    host.conv.silu = c.conv_silu;
    conv_weight = make_host(wt, c.dim * W);
    fill_uniform(conv_weight, rng, -0.6f, 0.6f);
    conv_bias = make_host(wt, c.dim);
    fill_uniform(conv_bias, rng, -0.2f, 0.2f);
    conv_init = make_host(c.dtype, std::max<int64_t>(1, c.batch * c.dim * S));
    fill_normal(conv_init, rng);
    const int es = dtype_size(c.dtype);
    dcw = DeviceBuffer(conv_weight.bytes.size()); dcw.upload(conv_weight.data(), conv_weight.bytes.size());
    dcb = DeviceBuffer(conv_bias.bytes.size()); dcb.upload(conv_bias.data(), conv_bias.bytes.size());
    dcinit = DeviceBuffer(conv_init.bytes.size()); dcinit.upload(conv_init.data(), conv_init.bytes.size());
    dcfinal = DeviceBuffer(conv_init.bytes.size());
    dcout = DeviceBuffer(x_elems * es);
    host.conv.weight = conv_weight.data();
    host.conv.bias = c.conv_bias ? conv_bias.data() : nullptr;
    host.conv.initial_states = c.conv_init && S > 0 ? conv_init.data() : nullptr;
    const ScanConv1dParams hc = host.conv;
    dev.conv = hc;
    dev.conv.weight = dcw.get();
    dev.conv.bias = c.conv_bias ? dcb.get() : nullptr;
    dev.conv.initial_states = hc.initial_states ? dcinit.get() : nullptr;
    dev.conv.final_states = c.conv_final && S > 0 ? dcfinal.get() : nullptr;
    dev.conv.out = c.conv_out ? static_cast<unsigned char*>(dcout.get()) + c.offset * es : nullptr;
  }

  // The conv's final states the call must write: the last W-1 inputs of each row, taken from
  // the initial states (or zero) where the sequence is shorter. (batch, dim, W-1) contiguous.
  std::vector<double> expected_conv_final() const {
    const int64_t S = c.conv_w - 1;
    std::vector<double> v(c.batch * c.dim * S, 0.0);
    for (int64_t b = 0; b < c.batch; ++b)
      for (int64_t d = 0; d < c.dim; ++d)
        for (int64_t k = 0; k < S; ++k) {
          const int64_t t = c.seqlen - S + k;
          double x = 0.0;
          if (t >= 0) x = u.at(c.offset + b * host.u_batch_stride + d * host.u_dim_stride + t);
          else if (c.conv_init) x = conv_init.at((b * c.dim + d) * S + S + t);
          v[(b * c.dim + d) * S + k] = x;
        }
    return v;
  }

  // Reference output (batch, dim, seqlen), last state (batch, dim, dstate) and, with the fused
  // conv, the conv's output (batch, dim, seqlen), contiguous.
  void reference(std::vector<double>& out, std::vector<double>& last,
                 std::vector<double>* conv_out = nullptr) const {
    out.assign(c.batch * c.dim * c.seqlen, 0.0);
    last.assign(c.batch * c.dim * c.dstate, 0.0);
    if (conv_out) conv_out->assign(c.batch * c.dim * c.seqlen, 0.0);
    const ssmkit::Status st = ssmkit::reference::selective_scan_fwd(host, out.data(), last.data(), 0, -1,
                                                                    conv_out ? conv_out->data() : nullptr);
    if (!st.ok()) throw std::runtime_error(std::string("reference: ") + st.message());
  }

  // Downloads out; returns an accessor over the contiguous (batch, dim, seqlen) index.
  HostTensor download_out() const {
    HostTensor h = make_host(c.dtype, x_elems);
    dout.download(h.data(), h.bytes.size());
    return h;
  }
  double out_at(const HostTensor& h, size_t i) const {
    const int64_t t = i % c.seqlen;
    const int64_t d = (i / c.seqlen) % c.dim;
    const int64_t b = i / (c.seqlen * c.dim);
    return h.at(c.offset + b * host.out_batch_stride + d * host.out_dim_stride + t);
  }
  std::vector<float> download_last() const {
    std::vector<float> v(c.batch * c.dim * c.dstate);
    dlast.download(v.data(), v.size() * 4);
    return v;
  }
};

}  // namespace ssmkit_test
