/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// ssmkit example: one decode step (one new token per sequence) of a whole Mamba mixer layer in
// plain CUDA C++: cuBLAS for the projections, ssmkit for the conv update and the state update.
//
// Mamba-1 (mamba-130m and mamba-2.8b sizes):
//   x, z      = split(in_proj(h))                      cuBLAS: bf16 in and out, fp32 accumulation
//   x         = silu(conv1d_update(x, conv_state))     ssmkit::causal_conv1d_update, width 4
//   dt', B, C = split(x_proj(x));  dt = dt_proj(dt')   cuBLAS
//   y         = selective_state_update(ssm_state, x, dt, A, B, C, D, z,
//                                      dt_bias = dt_proj's bias, softplus)     ssmkit
//   out       = out_proj(y)                            cuBLAS
// Mamba-2 (mamba2-2.7b size):
//   z, xBC, dt = split(in_proj(h))
//   x, B, C    = split(silu(conv1d_update(xBC, conv_state)))
//   y          = selective_state_update(ssm_state, x, dt, A, B, C, D, dt_bias, softplus)
//                (H heads of P = 64 channels; A, dt, dt_bias and D are one value per head,
//                broadcast over the channels and states by zero strides; G groups of B and C)
//   out        = out_proj(rmsnorm(y * silu(z)) * norm_weight)   (the norm is a kernel below)
// The layer is the mixer alone: the residual add and the norm in front of it are not included.
//
// Weights are random (fixed seed), scaled so that activations stay of order one. Activations
// are bf16 and the recurrent state fp32. Both states live in a pool of 2 * batch slots that a
// slot table indexes, as in a serving engine; the slots no row uses must stay untouched.
//
// What it does, for each model size:
//   1. runs 3 steps from random non-zero states (every activation buffer filled with NaN
//      first) and checks the layer output and both updated states against the same layer
//      computed on the host in double: ssmkit's host references for the conv and the state
//      update, the projections, gating and norm written here, activations rounded to bf16
//      where the GPU stores them. Up to 8 batch rows are checked. Any element off by more than
//      2e-2 of its value plus 2e-2 of the tensor's RMS fails the run (bf16 rounding of the
//      activations, where the GPU's fp32 sums and the host's double sums round to different
//      neighbours, leaves differences of a few 1e-3 of the RMS);
//   2. times the step eagerly (each launch issued on a stream) and replayed from a CUDA graph
//      captured once (CUDA events, median of repetitions), over enough copies of the layer
//      that their weights exceed twice the L2 cache, so that the weights come from DRAM as in
//      a whole model; prints microseconds per token per layer.
//
//   decode_layer [--batch B] [--model NAME] [--quick]
//
// --quick times few repetitions (for CTest). Exit status: 0 passed, 1 mismatch or error,
// 2 bad arguments, 77 no CUDA GPU (reported as skipped by CTest).
#include <ssmkit/causal_conv1d.cuh>
#include <ssmkit/reference/causal_conv1d.cuh>
#include <ssmkit/reference/selective_state_update.cuh>
#include <ssmkit/selective_state_update.cuh>

#include <cublas_v2.h>
#include <cub/block/block_reduce.cuh>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using bf16 = __nv_bfloat16;
using ssmkit::DType;

constexpr int kConvWidth = 4;
constexpr int kSkipCode = 77;
constexpr int kVerifySteps = 3;
constexpr int64_t kMaxVerifiedRows = 8;
constexpr double kNormEps = 1e-5;
constexpr double kRtol = 2e-2;  // of the element's reference value
constexpr double kAtol = 2e-2;  // of the tensor's reference RMS

// ---------------------------------------------------------------------------------------------
// Errors: every CUDA, cuBLAS and ssmkit status is checked; a failure throws, main() prints it.
// ---------------------------------------------------------------------------------------------
[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail(std::string(what) + ": " + cudaGetErrorString(e));
}
void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) fail(std::string(what) + ": " + cublasGetStatusString(s));
}
void check(const ssmkit::Status& s, const char* what) {
  if (!s.ok()) fail(std::string(what) + ": " + s.message());
}
#define CHECK(call) check((call), #call)

// splitmix64: fast enough to fill a few hundred million weights in about a second.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  double uniform(double lo, double hi) {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return lo + (hi - lo) * static_cast<double>(z >> 11) * 0x1.0p-53;
  }

 private:
  uint64_t s_;
};

// Device memory, freed on destruction.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) { CHECK(cudaMalloc(&ptr_, bytes)); }
  DeviceBuffer(DeviceBuffer&& o) noexcept { swap(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept { swap(o); return *this; }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { if (ptr_) cudaFree(ptr_); }
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  // A new buffer holding a copy of this one.
  DeviceBuffer copy() const {
    DeviceBuffer d(bytes_);
    CHECK(cudaMemcpy(d.ptr_, ptr_, bytes_, cudaMemcpyDeviceToDevice));
    return d;
  }

 private:
  void swap(DeviceBuffer& o) noexcept { std::swap(ptr_, o.ptr_); std::swap(bytes_, o.bytes_); }
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

double load(DType t, const void* base, size_t i) {
  switch (t) {
    case DType::kFloat32: return static_cast<const float*>(base)[i];
    case DType::kFloat16: return ssmkit::to_float(static_cast<const __half*>(base)[i]);
    case DType::kBFloat16: return ssmkit::to_float(static_cast<const bf16*>(base)[i]);
  }
  return NAN;
}

void store(DType t, void* base, size_t i, double v) {
  const float f = static_cast<float>(v);
  switch (t) {
    case DType::kFloat32: static_cast<float*>(base)[i] = f; break;
    case DType::kFloat16: static_cast<__half*>(base)[i] = ssmkit::from_float<__half>(f); break;
    case DType::kBFloat16: static_cast<bf16*>(base)[i] = ssmkit::from_float<bf16>(f); break;
  }
}

// ---------------------------------------------------------------------------------------------
// Tensors of a layer, each in two copies: the host copy holds the values of the host
// computation (the reference), the device copy those of the GPU.
// ---------------------------------------------------------------------------------------------
enum class Side { kHost, kDevice };

class Tensor {
 public:
  Tensor() = default;
  Tensor(DType dtype, size_t n) : dtype_(dtype), n_(n), host_(n * ssmkit::dtype_size(dtype)), dev_(bytes()) {}

  bool empty() const { return n_ == 0; }
  size_t size() const { return n_; }
  size_t bytes() const { return n_ * ssmkit::dtype_size(dtype_); }
  // Address of element `off` of the given copy.
  void* at(Side s, int64_t off) const {
    char* base = s == Side::kHost ? const_cast<char*>(host_.data()) : static_cast<char*>(dev_.get());
    return base + off * ssmkit::dtype_size(dtype_);
  }
  template <typename T>
  const T* host() const { return reinterpret_cast<const T*>(host_.data()); }

  double get(size_t i) const { return load(dtype_, host_.data(), i); }
  // Stores v rounded to the dtype, and unrounded where keep_exact() was called.
  void set(size_t i, double v) {
    store(dtype_, host_.data(), i, v);
    if (!exact_.empty()) exact_[i] = v;
  }
  // The host value of element i before rounding (after keep_exact()), else the stored one.
  double reference(size_t i) const { return exact_.empty() ? get(i) : exact_[i]; }
  void keep_exact() { exact_.assign(n_, NAN); }

  // Host copy from f(i), then uploaded.
  template <class F>
  Tensor& fill(F f) {
    for (size_t i = 0; i < n_; ++i) set(i, f(i));
    upload();
    return *this;
  }
  void upload() { CHECK(cudaMemcpy(dev_.get(), host_.data(), bytes(), cudaMemcpyHostToDevice)); }
  // Device copy filled with 0xFF bytes: NaN in fp32 and bf16, so an unwritten element fails.
  void poison() { CHECK(cudaMemset(dev_.get(), 0xFF, bytes())); }
  std::vector<double> download() const {
    std::vector<char> raw(bytes());
    CHECK(cudaMemcpy(raw.data(), dev_.get(), bytes(), cudaMemcpyDeviceToHost));
    std::vector<double> v(n_);
    for (size_t i = 0; i < n_; ++i) v[i] = load(dtype_, raw.data(), i);
    return v;
  }
  // A tensor with a copy of the device values and no host copy (for the timing replicas).
  Tensor device_copy() const {
    Tensor t;
    t.dtype_ = dtype_;
    t.n_ = n_;
    t.dev_ = dev_.copy();
    return t;
  }

 private:
  DType dtype_ = DType::kBFloat16;
  size_t n_ = 0;
  std::vector<char> host_;
  std::vector<double> exact_;
  DeviceBuffer dev_;
};

// Rows of a tensor: element i of batch row r is t[off + r * ld + i].
struct Rows {
  Tensor* t = nullptr;
  int64_t off = 0;
  int64_t ld = 0;
  void* at(Side s) const { return t->at(s, off); }
  size_t index(int64_t r, int64_t i) const { return static_cast<size_t>(off + r * ld + i); }
  // Host values of the first `rows` rows from a contiguous (rows, width) result.
  void set_host(const std::vector<double>& v, int64_t rows, int64_t width) const {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < width; ++i) t->set(index(r, i), v[r * width + i]);
  }
};

// The slot table of the state pools: row b reads and writes slot slot[b].
struct SlotTable {
  std::vector<int32_t> host;
  DeviceBuffer dev;
  const int32_t* at(Side s) const {
    return s == Side::kHost ? host.data() : static_cast<const int32_t*>(dev.get());
  }
};

// What the GPU work is issued with.
struct Gpu {
  cudaDeviceProp prop{};
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  DeviceBuffer blas_workspace;
  cudaEvent_t start = nullptr, stop = nullptr;

  Gpu() {
    CHECK(cudaGetDeviceProperties(&prop, 0));
    CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CHECK(cudaEventCreate(&start));
    CHECK(cudaEventCreate(&stop));
    CHECK(cublasCreate(&blas));
    CHECK(cublasSetStream(blas, stream));
    // A workspace of our own, so that graph capture never makes cuBLAS allocate; partial sums
    // of split reductions stay in fp32, not in the bf16 output type.
    blas_workspace = DeviceBuffer(size_t{32} << 20);
    CHECK(cublasSetWorkspace(blas, blas_workspace.get(), blas_workspace.bytes()));
    CHECK(cublasSetMathMode(blas, CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION));
  }
  ~Gpu() {
    if (blas) cublasDestroy(blas);
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    if (stream) cudaStreamDestroy(stream);
  }
  Gpu(const Gpu&) = delete;
  Gpu& operator=(const Gpu&) = delete;
};

// ---------------------------------------------------------------------------------------------
// The operations of a step. Each one runs on the GPU for the whole batch, or on the host, in
// double, for its first rows; a layer is a list of them.
// ---------------------------------------------------------------------------------------------
class Op {
 public:
  virtual ~Op() = default;
  virtual void device(const Gpu& gpu, int64_t batch) const = 0;
  virtual void host(int64_t rows) const = 0;
};

// out = in · Wᵀ with W (m, k) row-major, as a PyTorch Linear stores it: one GEMM with n = batch
// (bf16 in and out, fp32 accumulation). In cuBLAS' column-major terms W is a (k, m) matrix
// used transposed and the input rows are the k-long columns of B.
class Linear final : public Op {
 public:
  Linear(const Tensor& w, int64_t m, int64_t k, Rows in, Rows out) : w_(w), m_(m), k_(k), in_(in), out_(out) {}
  void device(const Gpu& gpu, int64_t batch) const override {
    const float one = 1.f, zero = 0.f;
    CHECK(cublasGemmEx(gpu.blas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(m_), static_cast<int>(batch),
                       static_cast<int>(k_), &one, w_.at(Side::kDevice, 0), CUDA_R_16BF, static_cast<int>(k_),
                       in_.at(Side::kDevice), CUDA_R_16BF, static_cast<int>(in_.ld), &zero,
                       out_.at(Side::kDevice), CUDA_R_16BF, static_cast<int>(out_.ld), CUBLAS_COMPUTE_32F,
                       CUBLAS_GEMM_DEFAULT));
  }
  void host(int64_t rows) const override {
    std::vector<double> x(static_cast<size_t>(k_));
    const bf16* w = w_.host<bf16>();
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < k_; ++j) x[j] = in_.t->get(in_.index(r, j));
      for (int64_t i = 0; i < m_; ++i) {
        const bf16* wi = w + i * k_;
        double acc = 0.0;
        for (int64_t j = 0; j < k_; ++j) acc += static_cast<double>(ssmkit::to_float(wi[j])) * x[j];
        out_.t->set(out_.index(r, i), acc);
      }
    }
  }

 private:
  const Tensor& w_;
  int64_t m_, k_;
  Rows in_, out_;
};

// out = silu(conv1d(x)) over `dim` channels, width 4, continuing from the pooled conv state.
class ConvUpdate final : public Op {
 public:
  ConvUpdate(int64_t dim, Rows x, const Tensor& weight, const Tensor& bias, Tensor& state,
             const SlotTable& slots, int64_t nslots, Rows out)
      : dim_(dim), x_(x), weight_(weight), bias_(bias), state_(state), slots_(slots), nslots_(nslots), out_(out) {}
  void device(const Gpu& gpu, int64_t batch) const override {
    CHECK(ssmkit::causal_conv1d_update(params(Side::kDevice, batch), gpu.stream));
  }
  void host(int64_t rows) const override {
    std::vector<double> ref(static_cast<size_t>(rows * dim_));
    CHECK(ssmkit::reference::causal_conv1d_update(params(Side::kHost, rows), ref.data()));
    out_.set_host(ref, rows, dim_);
  }

 private:
  ssmkit::CausalConv1dUpdateParams params(Side s, int64_t batch) const {
    auto p = ssmkit::make_causal_conv1d_update_params(DType::kBFloat16, DType::kBFloat16, batch, dim_,
                                                      /*seqlen=*/1, kConvWidth, kConvWidth - 1, nslots_);
    p.x = x_.at(s);
    p.x_batch_stride = x_.ld;
    p.x_dim_stride = 1;
    p.out = out_.at(s);
    p.out_batch_stride = out_.ld;
    p.out_dim_stride = 1;
    p.conv_state = state_.at(s, 0);
    p.conv_state_indices = slots_.at(s);
    p.weight = weight_.at(s, 0);
    p.bias = bias_.at(s, 0);
    p.silu = true;
    return p;
  }
  int64_t dim_;
  Rows x_;
  const Tensor &weight_, &bias_;
  Tensor& state_;
  const SlotTable& slots_;
  int64_t nslots_;
  Rows out_;
};

// The selective state update of H heads of P channels with N states, G groups of B and C.
// Inside a row, x, z and out are (H, P), B and C (G, N); dt is (H, P), or (H) with one value
// per head (Mamba-2), which is then also how A, D and dt_bias are stored.
struct SsmShape {
  int64_t nheads, headdim, dstate, ngroups;
  bool per_head;
};

class StateUpdate final : public Op {
 public:
  StateUpdate(SsmShape shape, Rows x, Rows dt, Rows B, Rows C, Rows z, const Tensor& A, const Tensor& D,
              const Tensor& dt_bias, Tensor& state, const SlotTable& slots, Rows out)
      : s_(shape), x_(x), dt_(dt), B_(B), C_(C), z_(z), A_(A), D_(D), dt_bias_(dt_bias), state_(state),
        slots_(slots), out_(out) {}
  void device(const Gpu& gpu, int64_t batch) const override {
    CHECK(ssmkit::selective_state_update(params(Side::kDevice, batch), gpu.stream));
  }
  void host(int64_t rows) const override {
    const int64_t width = s_.nheads * s_.headdim;
    std::vector<double> ref(static_cast<size_t>(rows * width));
    CHECK(ssmkit::reference::selective_state_update(params(Side::kHost, rows), ref.data()));
    out_.set_host(ref, rows, width);
  }

 private:
  ssmkit::SelectiveStateUpdateParams params(Side s, int64_t batch) const {
    auto p = ssmkit::make_selective_state_update_params(DType::kBFloat16, DType::kFloat32, batch, s_.nheads,
                                                        s_.headdim, s_.dstate, s_.ngroups);
    p.state = state_.at(s, 0);
    p.state_batch_indices = slots_.at(s);
    p.x = x_.at(s);
    p.x_batch_stride = x_.ld;
    p.dt = dt_.at(s);
    p.dt_batch_stride = dt_.ld;
    p.B = B_.at(s);
    p.B_batch_stride = B_.ld;
    p.C = C_.at(s);
    p.C_batch_stride = C_.ld;
    if (z_.t) {
      p.z = z_.at(s);
      p.z_batch_stride = z_.ld;
    }
    p.out = out_.at(s);
    p.out_batch_stride = out_.ld;
    p.A = static_cast<const float*>(A_.at(s, 0));
    p.D = static_cast<const float*>(D_.at(s, 0));
    p.dt_bias = static_cast<const float*>(dt_bias_.at(s, 0));
    p.dt_softplus = true;
    if (s_.per_head) {  // one dt, A, D and dt_bias per head: zero strides over channels and states
      p.dt_head_stride = 1;
      p.dt_dim_stride = 0;
      p.A_head_stride = p.D_head_stride = p.dt_bias_head_stride = 1;
      p.A_dim_stride = p.A_dstate_stride = p.D_dim_stride = p.dt_bias_dim_stride = 0;
    }
    return p;
  }
  SsmShape s_;
  Rows x_, dt_, B_, C_, z_;
  const Tensor &A_, &D_, &dt_bias_;
  Tensor& state_;
  const SlotTable& slots_;
  Rows out_;
};

// out = g * rsqrt(mean(g^2) + eps) * weight with g = y * silu(z), the mean taken over groups of
// `group` contiguous channels: one block per (group, batch row), fp32 inside.
template <int kThreads>
__global__ void __launch_bounds__(kThreads)
    gated_rmsnorm_kernel(const bf16* y, int64_t y_ld, const bf16* z, int64_t z_ld, const bf16* weight,
                         bf16* out, int64_t out_ld, int group, float eps) {
  using Reduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename Reduce::TempStorage reduce;
  __shared__ float scale;
  const int64_t first = int64_t(blockIdx.x) * group;
  y += blockIdx.y * y_ld + first;
  z += blockIdx.y * z_ld + first;
  out += blockIdx.y * out_ld + first;
  weight += first;
  auto gated = [&](int i) { return __bfloat162float(y[i]) * ssmkit::silu(__bfloat162float(z[i])); };
  float sum = 0.f;
  for (int i = threadIdx.x; i < group; i += kThreads) {
    const float g = gated(i);
    sum += g * g;
  }
  sum = Reduce(reduce).Sum(sum);
  if (threadIdx.x == 0) scale = rsqrtf(sum / group + eps);
  __syncthreads();
  for (int i = threadIdx.x; i < group; i += kThreads)
    out[i] = __float2bfloat16_rn(gated(i) * scale * __bfloat162float(weight[i]));
}

class GatedRmsNorm final : public Op {
 public:
  GatedRmsNorm(int64_t width, int64_t group, Rows y, Rows z, const Tensor& weight, Rows out)
      : width_(width), group_(group), y_(y), z_(z), weight_(weight), out_(out) {}
  void device(const Gpu& gpu, int64_t batch) const override {
    constexpr int kThreads = 256;
    const dim3 grid(static_cast<unsigned>(width_ / group_), static_cast<unsigned>(batch));
    gated_rmsnorm_kernel<kThreads><<<grid, kThreads, 0, gpu.stream>>>(
        static_cast<const bf16*>(y_.at(Side::kDevice)), y_.ld, static_cast<const bf16*>(z_.at(Side::kDevice)),
        z_.ld, static_cast<const bf16*>(weight_.at(Side::kDevice, 0)), static_cast<bf16*>(out_.at(Side::kDevice)),
        out_.ld, static_cast<int>(group_), static_cast<float>(kNormEps));
    CHECK(cudaGetLastError());
  }
  void host(int64_t rows) const override {
    std::vector<double> g(static_cast<size_t>(group_));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t first = 0; first < width_; first += group_) {
        double sum = 0.0;
        for (int64_t i = 0; i < group_; ++i) {
          g[i] = y_.t->get(y_.index(r, first + i)) * ssmkit::silu_ref(z_.t->get(z_.index(r, first + i)));
          sum += g[i] * g[i];
        }
        const double scale = 1.0 / std::sqrt(sum / group_ + kNormEps);
        for (int64_t i = 0; i < group_; ++i)
          out_.t->set(out_.index(r, first + i), g[i] * scale * weight_.get(first + i));
      }
  }

 private:
  int64_t width_, group_;
  Rows y_, z_;
  const Tensor& weight_;
  Rows out_;
};

// ---------------------------------------------------------------------------------------------
// Model sizes and the layer.
// ---------------------------------------------------------------------------------------------
struct ModelSpec {
  const char* name;
  bool mamba2;
  int64_t d_model, d_inner, dstate;
  int64_t dt_rank;  // Mamba-1
  int64_t headdim, ngroups;  // Mamba-2
};

const ModelSpec kModels[] = {
    {"mamba-130m", false, 768, 1536, 16, 48, 0, 0},
    {"mamba-2.8b", false, 2560, 5120, 16, 160, 0, 0},
    {"mamba2-2.7b", true, 2560, 5120, 128, 0, 64, 1},
};

// Every tensor a layer holds (a form uses some of them).
enum Role : int {
  kHidden, kWIn, kProj, kConvW, kConvB, kConvState, kConvOut, kWX, kXDbl, kWDt, kDt,
  kA, kD, kDtBias, kSsmState, kY, kNormW, kYNorm, kWOut, kOut, kRoleCount
};
constexpr Role kWeights[] = {kWIn, kConvW, kConvB, kWX, kWDt, kA, kD, kDtBias, kNormW, kWOut};
constexpr Role kActivations[] = {kProj, kConvOut, kXDbl, kDt, kY, kYNorm, kOut};

struct Layer {
  const ModelSpec* spec = nullptr;
  int64_t batch = 0, nslots = 0;
  std::array<Tensor, kRoleCount> t;
  SlotTable slots;
  std::vector<std::unique_ptr<Op>> ops;

  // Mamba-1 and Mamba-2 as lists of operations on the tensors above.
  void wire() {
    const ModelSpec& m = *spec;
    const int64_t Dm = m.d_model, Di = m.d_inner, N = m.dstate;
    auto rows = [&](Role r, int64_t off, int64_t ld) { return Rows{&t[r], off, ld}; };
    ops.clear();
    if (!m.mamba2) {
      const int64_t R = m.dt_rank, xdbl = R + 2 * N;
      ops.push_back(std::make_unique<Linear>(t[kWIn], 2 * Di, Dm, rows(kHidden, 0, Dm), rows(kProj, 0, 2 * Di)));
      ops.push_back(std::make_unique<ConvUpdate>(Di, rows(kProj, 0, 2 * Di), t[kConvW], t[kConvB], t[kConvState],
                                                 slots, nslots, rows(kConvOut, 0, Di)));
      ops.push_back(std::make_unique<Linear>(t[kWX], xdbl, Di, rows(kConvOut, 0, Di), rows(kXDbl, 0, xdbl)));
      ops.push_back(std::make_unique<Linear>(t[kWDt], Di, R, rows(kXDbl, 0, xdbl), rows(kDt, 0, Di)));
      ops.push_back(std::make_unique<StateUpdate>(
          SsmShape{Di, 1, N, 1, false}, rows(kConvOut, 0, Di), rows(kDt, 0, Di), rows(kXDbl, R, xdbl),
          rows(kXDbl, R + N, xdbl), rows(kProj, Di, 2 * Di), t[kA], t[kD], t[kDtBias], t[kSsmState], slots,
          rows(kY, 0, Di)));
      ops.push_back(std::make_unique<Linear>(t[kWOut], Dm, Di, rows(kY, 0, Di), rows(kOut, 0, Dm)));
    } else {
      const int64_t G = m.ngroups, P = m.headdim, H = Di / P;
      const int64_t conv_dim = Di + 2 * G * N, proj = Di + conv_dim + H;
      ops.push_back(std::make_unique<Linear>(t[kWIn], proj, Dm, rows(kHidden, 0, Dm), rows(kProj, 0, proj)));
      ops.push_back(std::make_unique<ConvUpdate>(conv_dim, rows(kProj, Di, proj), t[kConvW], t[kConvB],
                                                 t[kConvState], slots, nslots, rows(kConvOut, 0, conv_dim)));
      ops.push_back(std::make_unique<StateUpdate>(
          SsmShape{H, P, N, G, true}, rows(kConvOut, 0, conv_dim), rows(kProj, Di + conv_dim, proj),
          rows(kConvOut, Di, conv_dim), rows(kConvOut, Di + G * N, conv_dim), Rows{}, t[kA], t[kD], t[kDtBias],
          t[kSsmState], slots, rows(kY, 0, Di)));
      ops.push_back(std::make_unique<GatedRmsNorm>(Di, Di / G, rows(kY, 0, Di), rows(kProj, 0, proj), t[kNormW],
                                                   rows(kYNorm, 0, Di)));
      ops.push_back(std::make_unique<Linear>(t[kWOut], Dm, Di, rows(kYNorm, 0, Di), rows(kOut, 0, Dm)));
    }
  }

  void step_device(const Gpu& gpu) const {
    for (const auto& op : ops) op->device(gpu, batch);
  }
  void step_host(int64_t rows) const {
    for (const auto& op : ops) op->host(rows);
  }

  size_t bytes_of(const Role* roles, size_t n) const {
    size_t b = 0;
    for (size_t i = 0; i < n; ++i) b += t[roles[i]].bytes();
    return b;
  }
  size_t weight_bytes() const { return bytes_of(kWeights, std::size(kWeights)); }
  // Bytes of one slot of both state pools.
  size_t state_bytes_per_slot() const {
    return (t[kConvState].bytes() + t[kSsmState].bytes()) / static_cast<size_t>(nslots);
  }
  size_t total_bytes() const {
    size_t b = 0;
    for (const Tensor& x : t) b += x.bytes();
    return b;
  }
  // Slot of batch row b; the pool has 2 * batch slots and the even ones stay unused.
  static int32_t slot_of(int64_t b, int64_t nslots) { return static_cast<int32_t>(nslots - 1 - 2 * b); }

  // Another layer with copies of this one's device tensors (same values, other memory).
  std::unique_ptr<Layer> device_copy() const {
    auto c = std::make_unique<Layer>();
    c->spec = spec;
    c->batch = batch;
    c->nslots = nslots;
    for (int r = 0; r < kRoleCount; ++r)
      if (!t[r].empty()) c->t[r] = t[r].device_copy();
    c->slots.dev = slots.dev.copy();
    c->wire();
    return c;
  }
};

// A uniform distribution of variance 1/k: projection weights over k inputs keep unit scale.
double unit_scale(int64_t k) { return std::sqrt(3.0 / static_cast<double>(k)); }

// dt_bias such that softplus(dt_bias) is log-uniform in [1e-3, 0.1] (the usual initialisation).
double inverse_softplus_of_random_dt(Rng& rng) {
  const double dt = std::exp(rng.uniform(std::log(1e-3), std::log(0.1)));
  return dt + std::log(-std::expm1(-dt));
}

std::unique_ptr<Layer> make_layer(const ModelSpec& m, int64_t batch, uint64_t seed) {
  auto L = std::make_unique<Layer>();
  L->spec = &m;
  L->batch = batch;
  L->nslots = 2 * batch;
  Rng rng(seed);
  const int64_t Dm = m.d_model, Di = m.d_inner, N = m.dstate, S = L->nslots;
  const DType kBf = DType::kBFloat16, kF32 = DType::kFloat32;
  auto& t = L->t;
  auto uniform = [&](double a) { return [&rng, a](size_t) { return rng.uniform(-a, a); }; };
  auto around_one = [&](size_t) { return rng.uniform(0.5, 1.5); };

  // Sizes of the form: projection width, conv channels, heads and state per slot.
  int64_t proj, conv_dim, heads;
  if (!m.mamba2) {
    proj = 2 * Di;
    conv_dim = Di;
    heads = Di;
    const int64_t R = m.dt_rank;
    t[kWX] = Tensor(kBf, size_t((R + 2 * N) * Di));
    t[kWX].fill(uniform(unit_scale(Di)));
    t[kWDt] = Tensor(kBf, size_t(Di * R));
    t[kWDt].fill(uniform(1.0 / std::sqrt(double(R))));
    t[kXDbl] = Tensor(kBf, size_t(batch * (R + 2 * N)));
    t[kDt] = Tensor(kBf, size_t(batch * Di));
    t[kA] = Tensor(kF32, size_t(Di * N));  // A[d, n] around -(n + 1)
    t[kA].fill([&](size_t i) { return -double(i % size_t(N) + 1) * rng.uniform(0.5, 1.5); });
  } else {
    const int64_t G = m.ngroups;
    heads = Di / m.headdim;
    conv_dim = Di + 2 * G * N;
    proj = Di + conv_dim + heads;
    t[kA] = Tensor(kF32, size_t(heads));
    t[kA].fill([&](size_t) { return -rng.uniform(1.0, 16.0); });
    t[kNormW] = Tensor(kBf, size_t(Di));
    t[kNormW].fill(around_one);
    t[kYNorm] = Tensor(kBf, size_t(batch * Di));
  }
  // D and dt_bias: one per head (Mamba-1: per channel, its heads being the channels).
  t[kD] = Tensor(kF32, size_t(heads));
  t[kD].fill(around_one);
  t[kDtBias] = Tensor(kF32, size_t(heads));
  t[kDtBias].fill([&](size_t) { return inverse_softplus_of_random_dt(rng); });
  t[kWIn] = Tensor(kBf, size_t(proj * Dm));
  t[kWIn].fill(uniform(unit_scale(Dm)));
  t[kConvW] = Tensor(kBf, size_t(conv_dim * kConvWidth));
  t[kConvW].fill(uniform(unit_scale(kConvWidth)));
  t[kConvB] = Tensor(kBf, size_t(conv_dim));
  t[kConvB].fill(uniform(0.1));
  t[kWOut] = Tensor(kBf, size_t(Dm * Di));
  t[kWOut].fill(uniform(unit_scale(Di)));
  // Random, non-zero states in every slot (the unused ones must keep theirs).
  t[kConvState] = Tensor(kBf, size_t(S * conv_dim * (kConvWidth - 1)));
  t[kConvState].fill(uniform(std::sqrt(3.0)));
  t[kSsmState] = Tensor(kF32, size_t(S * Di * N));
  t[kSsmState].fill(uniform(1.0));

  t[kHidden] = Tensor(kBf, size_t(batch * Dm));
  t[kProj] = Tensor(kBf, size_t(batch * proj));
  t[kConvOut] = Tensor(kBf, size_t(batch * conv_dim));
  t[kY] = Tensor(kBf, size_t(batch * Di));
  t[kOut] = Tensor(kBf, size_t(batch * Dm));
  t[kOut].keep_exact();
  for (Role r : kActivations)
    if (!t[r].empty()) t[r].poison();

  L->slots.host.resize(size_t(batch));
  for (int64_t b = 0; b < batch; ++b) L->slots.host[b] = Layer::slot_of(b, S);
  L->slots.dev = DeviceBuffer(size_t(batch) * sizeof(int32_t));
  CHECK(cudaMemcpy(L->slots.dev.get(), L->slots.host.data(), size_t(batch) * sizeof(int32_t),
                   cudaMemcpyHostToDevice));
  L->wire();
  return L;
}

// ---------------------------------------------------------------------------------------------
// Verification against the host computation.
// ---------------------------------------------------------------------------------------------
struct Comparison {
  double max_err = 0;  // max |gpu - ref| / rms(ref)
  size_t bad = 0;      // elements outside the tolerance (NaN included)
  size_t checked = 0;
};

// Compares the device copy of t with its host reference over the elements `use` accepts.
Comparison compare(const Tensor& t, const std::function<bool(size_t)>& use) {
  const std::vector<double> gpu = t.download();
  double sq = 0;
  size_t n = 0;
  for (size_t i = 0; i < t.size(); ++i)
    if (use(i)) { sq += t.reference(i) * t.reference(i); ++n; }
  const double rms = n ? std::sqrt(sq / n) : 0.0;
  Comparison c;
  for (size_t i = 0; i < t.size(); ++i) {
    if (!use(i)) continue;
    const double ref = t.reference(i), err = std::fabs(gpu[i] - ref);
    if (!(err <= kRtol * std::fabs(ref) + kAtol * rms)) ++c.bad;
    c.max_err = std::fmax(c.max_err, std::isnan(err) ? INFINITY : err / (rms > 0 ? rms : 1.0));
    ++c.checked;
  }
  return c;
}

bool verify(Layer& L, const Gpu& gpu, uint64_t seed) {
  Rng rng(seed);
  const int64_t rows = std::min(L.batch, kMaxVerifiedRows);
  const int64_t Dm = L.spec->d_model;
  // Slots owned by a row the host does not compute are left out; the unused slots are kept.
  std::vector<char> skip_slot(size_t(L.nslots), 0);
  for (int64_t b = rows; b < L.batch; ++b) skip_slot[Layer::slot_of(b, L.nslots)] = 1;
  auto state_use = [&](const Tensor& s) {
    const size_t per_slot = s.size() / size_t(L.nslots);
    return [&skip_slot, per_slot](size_t i) { return !skip_slot[i / per_slot]; };
  };
  bool ok = true;
  for (int step = 1; step <= kVerifySteps; ++step) {
    L.t[kHidden].fill([&](size_t) { return rng.uniform(-std::sqrt(3.0), std::sqrt(3.0)); });
    // Uploads and the NaN fill run on the default stream, which the work stream (non-blocking)
    // does not wait for.
    CHECK(cudaDeviceSynchronize());
    L.step_device(gpu);
    CHECK(cudaStreamSynchronize(gpu.stream));
    L.step_host(rows);
    const Comparison out = compare(L.t[kOut], [&](size_t i) { return int64_t(i) / Dm < rows; });
    const Comparison conv = compare(L.t[kConvState], state_use(L.t[kConvState]));
    const Comparison ssm = compare(L.t[kSsmState], state_use(L.t[kSsmState]));
    const bool step_ok = out.bad == 0 && conv.bad == 0 && ssm.bad == 0;
    std::printf("  step %d: max |gpu - ref| / rms(ref): out %.2e, conv state %.2e, ssm state %.2e  "
                "(%zu, %zu, %zu elements) %s\n",
                step, out.max_err, conv.max_err, ssm.max_err, out.checked, conv.checked, ssm.checked,
                step_ok ? "ok" : "MISMATCH");
    if (!step_ok)
      std::printf("  outside |err| <= %.0e |ref| + %.0e rms(ref): out %zu, conv state %zu, ssm state %zu\n",
                  kRtol, kAtol, out.bad, conv.bad, ssm.bad);
    ok = ok && step_ok;
  }
  return ok;
}

// ---------------------------------------------------------------------------------------------
// Timing.
// ---------------------------------------------------------------------------------------------
// Median over `reps` repetitions of the time of one `launch`, each repetition timing `iters`
// launches back to back between two events; in microseconds.
double median_us(const Gpu& gpu, int iters, int reps, const std::function<void()>& launch) {
  std::vector<double> us;
  for (int r = 0; r < reps; ++r) {
    CHECK(cudaEventRecord(gpu.start, gpu.stream));
    for (int i = 0; i < iters; ++i) launch();
    CHECK(cudaEventRecord(gpu.stop, gpu.stream));
    CHECK(cudaEventSynchronize(gpu.stop));
    float ms = 0;
    CHECK(cudaEventElapsedTime(&ms, gpu.start, gpu.stop));
    us.push_back(1e3 * ms / iters);
  }
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

struct Timing {
  int layers = 0;
  double eager_us = 0, graph_us = 0;  // per token per layer
};

Timing time_layer(const Layer& L, const Gpu& gpu, bool quick) {
  // Copies of the layer until the weights exceed twice the L2 cache, within half the free memory.
  size_t free_bytes = 0, total = 0;
  CHECK(cudaMemGetInfo(&free_bytes, &total));
  const size_t want = 2 * size_t(gpu.prop.l2CacheSize);
  size_t copies = want > L.weight_bytes() ? (want + L.weight_bytes() - 1) / L.weight_bytes() - 1 : 0;
  copies = std::min({copies, size_t(63), free_bytes / 2 / L.total_bytes()});
  std::vector<std::unique_ptr<Layer>> owned;
  std::vector<const Layer*> layers{&L};
  for (size_t i = 0; i < copies; ++i) {
    owned.push_back(L.device_copy());
    layers.push_back(owned.back().get());
  }
  CHECK(cudaDeviceSynchronize());  // the copies ran on the default stream
  auto step = [&] {
    for (const Layer* l : layers) l->step_device(gpu);
  };
  const int iters = quick ? 3 : 20, reps = quick ? 3 : 15;
  step();  // warm-up
  Timing t;
  t.layers = static_cast<int>(layers.size());
  t.eager_us = median_us(gpu, iters, reps, step) / t.layers;

  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  CHECK(cudaStreamBeginCapture(gpu.stream, cudaStreamCaptureModeThreadLocal));
  step();
  CHECK(cudaStreamEndCapture(gpu.stream, &graph));
  CHECK(cudaGraphInstantiate(&exec, graph, 0));
  CHECK(cudaGraphLaunch(exec, gpu.stream));  // warm-up
  t.graph_us = median_us(gpu, iters, reps, [&] { CHECK(cudaGraphLaunch(exec, gpu.stream)); }) / t.layers;
  CHECK(cudaGraphExecDestroy(exec));
  CHECK(cudaGraphDestroy(graph));
  return t;
}

// ---------------------------------------------------------------------------------------------
// Command line and main.
// ---------------------------------------------------------------------------------------------
struct Options {
  int64_t batch = 1;
  const char* model = nullptr;  // all when null
  bool quick = false;
};

void usage() {
  std::fprintf(stderr, "usage: decode_layer [--batch B] [--model NAME] [--quick]\n"
                       "  --batch B     sequences decoded per step, 1..256 (default 1)\n"
                       "  --model NAME  one of:");
  for (const ModelSpec& m : kModels) std::fprintf(stderr, " %s", m.name);
  std::fprintf(stderr, " (default: all)\n  --quick       few timing repetitions (for CTest)\n");
}

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--quick") {
      o.quick = true;
    } else if (a == "--batch" && has_value) {
      char* end = nullptr;
      o.batch = std::strtoll(argv[++i], &end, 10);
      if (*end != '\0' || o.batch < 1 || o.batch > 256) return false;
    } else if (a == "--model" && has_value) {
      o.model = argv[++i];
      if (std::none_of(std::begin(kModels), std::end(kModels),
                       [&](const ModelSpec& m) { return std::strcmp(m.name, o.model) == 0; }))
        return false;
    } else {
      return false;
    }
  }
  return true;
}

int run(const Options& opt) {
  const Gpu gpu;
  std::printf("ssmkit %d.%d.%d layer decode step on %s (sm_%d%d, %d SMs, L2 %d MB), batch %lld\n",
              SSMKIT_VERSION_MAJOR, SSMKIT_VERSION_MINOR, SSMKIT_VERSION_PATCH, gpu.prop.name, gpu.prop.major,
              gpu.prop.minor, gpu.prop.multiProcessorCount, gpu.prop.l2CacheSize >> 20, (long long)opt.batch);
  struct Row {
    const ModelSpec* m;
    Timing t;
    double mbytes;
  };
  std::vector<Row> table;
  bool ok = true;
  uint64_t seed = 2024;
  for (const ModelSpec& m : kModels) {
    if (opt.model && std::strcmp(opt.model, m.name) != 0) continue;
    if (m.mamba2)
      std::printf("%s: Mamba-2, d_model %lld, d_inner %lld, %lld heads of %lld, N %lld, G %lld\n", m.name,
                  (long long)m.d_model, (long long)m.d_inner, (long long)(m.d_inner / m.headdim),
                  (long long)m.headdim, (long long)m.dstate, (long long)m.ngroups);
    else
      std::printf("%s: Mamba-1, d_model %lld, d_inner %lld, N %lld, dt_rank %lld\n", m.name, (long long)m.d_model,
                  (long long)m.d_inner, (long long)m.dstate, (long long)m.dt_rank);
    std::unique_ptr<Layer> L = make_layer(m, opt.batch, ++seed);
    const bool layer_ok = verify(*L, gpu, ++seed);
    ok = ok && layer_ok;
    // Memory a step must move: the weights, and the states of the batch read and written.
    const double bytes = double(L->weight_bytes()) + 2.0 * double(opt.batch) * double(L->state_bytes_per_slot());
    table.push_back({&m, time_layer(*L, gpu, opt.quick), bytes / 1e6});
  }

  std::printf("\nlayer decode step, us per token per layer (batch %lld, bf16 activations, fp32 state; "
              "median of CUDA-event timings%s)\n",
              (long long)opt.batch, opt.quick ? ", --quick: few repetitions" : "");
  std::printf("%-12s %-8s %7s %10s %10s %10s %11s\n", "model", "form", "layers", "MB/step", "eager us",
              "graph us", "graph GB/s");
  for (const Row& r : table)
    std::printf("%-12s %-8s %7d %10.2f %10.2f %10.2f %11.0f\n", r.m->name, r.m->mamba2 ? "Mamba-2" : "Mamba-1",
                r.t.layers, r.mbytes, r.t.eager_us, r.t.graph_us, r.mbytes * 1e6 / (r.t.graph_us * 1e-6) / 1e9);
  std::printf("(layers: copies of the layer, each with its own weights, run in turn so that the weights "
              "come from DRAM; MB/step: weights plus the batch's states, read and written)\n");
  std::printf("%s\n", ok ? "PASSED" : "FAILED: the GPU layer differs from the host reference");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  if (!parse(argc, argv, opt)) {
    usage();
    return 2;
  }
  int ndev = 0;
  const cudaError_t e = cudaGetDeviceCount(&ndev);
  if (e != cudaSuccess || ndev == 0) {
    std::printf("SKIPPED: no CUDA GPU found (%s); decode_layer needs one, so nothing was run.\n",
                e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    return kSkipCode;
  }
  try {
    return run(opt);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "decode_layer: error: %s\n", ex.what());
    return 1;
  }
}
