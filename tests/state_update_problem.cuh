/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// One decode-step (selective state update) test problem: random inputs on the host (and on
// the device on request), in the Mamba-1 or the Mamba-2 layout, with a state pool, padding
// rows, separate destination slots and intermediate states as options.
#pragma once

#include <ssmkit/reference/selective_state_update.cuh>
#include <ssmkit/selective_state_update.cuh>

#include <algorithm>
#include <numeric>
#include <string>

#include "common.cuh"

namespace ssmkit_test {

struct SsuCase {
  ssmkit::DType dtype = ssmkit::DType::kBFloat16;        // x, dt, z, B, C, out
  ssmkit::DType state_dtype = ssmkit::DType::kFloat32;   // state, intermediate states
  bool mamba2 = true;  // Mamba-2: A, dt, dt_bias, D broadcast over headdim (and A over dstate)
  int64_t batch = 3, nheads = 4, headdim = 8, dstate = 16, ngroups = 2, ntokens = 1;
  bool z = true, D = true, bias = true, softplus = true;
  bool pool = false;   // state_batch_indices into a larger pool, with padding rows
  bool dst = false;    // separate destination slots
  bool inter = false;  // intermediate states
  uint64_t seed = 1;

  // Mamba-1 form of dim channels: nheads = dim, headdim = 1, ngroups = 1.
  static SsuCase mamba1(int64_t batch, int64_t dim, int64_t dstate) {
    SsuCase c;
    c.mamba2 = false;
    c.batch = batch;
    c.nheads = dim;
    c.headdim = 1;
    c.ngroups = 1;
    c.dstate = dstate;
    return c;
  }

  std::string name() const {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "%s x %s-state %s B%lld T%lld H%lld P%lld N%lld G%lld %s%s%s%s%s%s%sseed%llu",
                  ssmkit::to_string(dtype), ssmkit::to_string(state_dtype), mamba2 ? "mamba2" : "mamba1",
                  (long long)batch, (long long)ntokens, (long long)nheads, (long long)headdim,
                  (long long)dstate, (long long)ngroups, z ? "z " : "", D ? "D " : "", bias ? "bias " : "",
                  softplus ? "softplus " : "", pool ? "pool " : "", dst ? "dst " : "", inter ? "inter " : "",
                  (unsigned long long)seed);
    return buf;
  }
};

struct SsuProblem {
  SsuCase c;
  ssmkit::SelectiveStateUpdateParams host;  // pointers into host memory (state: ref_state)
  ssmkit::SelectiveStateUpdateParams dev;   // same arguments, device pointers
  int64_t slots = 0;
  HostTensor x, dt, z, B, C, state0, ref_state, ref_inter;
  std::vector<float> A, D, bias;
  std::vector<int32_t> src_idx, dst_idx;
  DeviceBuffer dx, ddt, dz, dB, dC, dA, dD, dbias, dstate, dsrc, ddst, dout, dinter;

  explicit SsuProblem(const SsuCase& cs, bool on_device = true) : c(cs) {
    using namespace ssmkit;
    std::mt19937_64 rng(c.seed);
    const int64_t Bt = c.batch, T = c.ntokens, H = c.nheads, P = c.headdim, N = c.dstate, G = c.ngroups;
    host = make_selective_state_update_params(c.dtype, c.state_dtype, Bt, H, P, N, G, T);
    host.dt_softplus = c.softplus;
    const size_t nx = size_t(Bt * T * H * P);
    x = make_host(c.dtype, nx);
    fill_normal(x, rng);
    z = make_host(c.dtype, nx);
    fill_normal(z, rng);
    // Mamba-2: one dt, dt_bias, D and A per head (strides 0 over headdim and dstate).
    const int64_t per_head = c.mamba2 ? 1 : P;
    dt = make_host(c.dtype, size_t(Bt * T * H * per_head));
    if (c.softplus) fill_uniform(dt, rng, -4.f, 1.f); else fill_uniform(dt, rng, 0.01f, 0.6f);
    std::uniform_real_distribution<float> ua(-3.f, -0.2f);
    std::normal_distribution<float> nd(0.f, 1.f);
    A.resize(c.mamba2 ? H : H * P * N);
    for (auto& v : A) v = ua(rng);
    D.resize(H * per_head);
    for (auto& v : D) v = nd(rng);
    bias.resize(H * per_head);
    for (auto& v : bias) v = 0.1f * nd(rng);
    B = make_host(c.dtype, size_t(Bt * T * G * N));
    C = make_host(c.dtype, size_t(Bt * T * G * N));
    fill_normal(B, rng);
    fill_normal(C, rng);
    if (c.mamba2) {
      host.dt_dim_stride = 0;
      host.dt_head_stride = 1;
      host.dt_token_stride = H;
      host.dt_batch_stride = T * H;
      host.A_head_stride = 1;
      host.A_dim_stride = host.A_dstate_stride = 0;
      host.D_head_stride = host.dt_bias_head_stride = 1;
      host.D_dim_stride = host.dt_bias_dim_stride = 0;
    }

    // State pool: without indices one slot per row; with them 2 * batch + 1 slots, rows
    // reading a random permutation of slots, every third row padding.
    slots = c.pool || c.dst ? 2 * Bt + 1 : Bt;
    std::vector<int32_t> perm(slots);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    if (c.pool || c.dst) {
      src_idx.resize(Bt);
      for (int64_t b = 0; b < Bt; ++b) src_idx[b] = (c.pool && b % 3 == 1) ? -1 : perm[b];
    }
    if (c.dst) {  // destination slots disjoint from the source slots; one row keeps no state
      dst_idx.resize(Bt);
      for (int64_t b = 0; b < Bt; ++b) dst_idx[b] = (b == Bt - 1 && Bt > 2) ? -1 : perm[Bt + b];
    }
    const size_t nstate = size_t(slots * H * P * N);
    state0 = make_host(c.state_dtype, nstate);
    fill_normal(state0, rng);
    ref_state = state0;
    const size_t ninter = c.inter ? size_t(Bt * T * H * P * N) : 0;
    ref_inter = make_host(c.state_dtype, ninter);
    for (size_t i = 0; i < ninter; ++i) ref_inter.set(i, NAN);

    host.x = x.data();
    host.dt = dt.data();
    host.z = c.z ? z.data() : nullptr;
    host.A = A.data();
    host.B = B.data();
    host.C = C.data();
    host.D = c.D ? D.data() : nullptr;
    host.dt_bias = c.bias ? bias.data() : nullptr;
    host.state = ref_state.data();
    host.state_batch_indices = src_idx.empty() ? nullptr : src_idx.data();
    host.dst_state_batch_indices = dst_idx.empty() ? nullptr : dst_idx.data();
    host.intermediate_states = c.inter ? ref_inter.data() : nullptr;
    host.out = x.data();  // never written: the reference returns its result in double

    if (!on_device) return;
    auto up = [](DeviceBuffer& d, const void* src, size_t bytes) { d = DeviceBuffer(bytes); d.upload(src, bytes); };
    up(dx, x.data(), x.bytes.size());
    up(ddt, dt.data(), dt.bytes.size());
    up(dz, z.data(), z.bytes.size());
    up(dB, B.data(), B.bytes.size());
    up(dC, C.data(), C.bytes.size());
    up(dA, A.data(), A.size() * 4);
    up(dD, D.data(), D.size() * 4);
    up(dbias, bias.data(), bias.size() * 4);
    up(dstate, state0.data(), state0.bytes.size());
    if (!src_idx.empty()) up(dsrc, src_idx.data(), src_idx.size() * 4);
    if (!dst_idx.empty()) up(ddst, dst_idx.data(), dst_idx.size() * 4);
    dout = DeviceBuffer(nx * dtype_size(c.dtype));
    dout.poison();
    if (c.inter) {
      dinter = DeviceBuffer(ninter * dtype_size(c.state_dtype));
      dinter.poison();
    }
    dev = host;
    dev.x = dx.get();
    dev.dt = ddt.get();
    dev.z = c.z ? dz.get() : nullptr;
    dev.A = dA.as<float>();
    dev.B = dB.get();
    dev.C = dC.get();
    dev.D = c.D ? dD.as<float>() : nullptr;
    dev.dt_bias = c.bias ? dbias.as<float>() : nullptr;
    dev.state = dstate.get();
    dev.state_batch_indices = src_idx.empty() ? nullptr : dsrc.as<int32_t>();
    dev.dst_state_batch_indices = dst_idx.empty() ? nullptr : ddst.as<int32_t>();
    dev.intermediate_states = c.inter ? dinter.get() : nullptr;
    dev.out = dout.get();
  }

  // Runs the reference: out (batch, T, H, P) in double; ref_state / ref_inter updated.
  std::vector<double> reference(std::vector<double>* state_ref = nullptr) {
    std::vector<double> out(size_t(c.batch * c.ntokens * c.nheads * c.headdim), 0.0);
    if (state_ref) state_ref->assign(size_t(c.batch * c.nheads * c.headdim * c.dstate), NAN);
    const ssmkit::Status st =
        ssmkit::reference::selective_state_update(host, out.data(), state_ref ? state_ref->data() : nullptr);
    if (!st.ok()) throw std::runtime_error(std::string("reference: ") + st.message());
    return out;
  }
};

}  // namespace ssmkit_test
