/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// Helpers shared by ssmkit's tests: device buffers, seeded random inputs, output poisoning,
// and error statistics against a double-precision reference.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <ssmkit/types.cuh>

namespace ssmkit_test {

#define SSMKIT_TEST_CUDA(call)                                                                   \
  do {                                                                                           \
    cudaError_t e_ = (call);                                                                     \
    if (e_ != cudaSuccess)                                                                       \
      throw std::runtime_error(std::string(#call) + ": " + cudaGetErrorString(e_));              \
  } while (0)

inline bool gpu_available() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

// Owning device allocation of raw bytes.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (bytes) SSMKIT_TEST_CUDA(cudaMalloc(&ptr_, bytes));
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr; o.bytes_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  ~DeviceBuffer() { if (ptr_) cudaFree(ptr_); }
  void* get() const { return ptr_; }
  template <typename T> T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }
  void upload(const void* src, size_t n) { SSMKIT_TEST_CUDA(cudaMemcpy(ptr_, src, n, cudaMemcpyHostToDevice)); }
  void download(void* dst, size_t n) const { SSMKIT_TEST_CUDA(cudaMemcpy(dst, ptr_, n, cudaMemcpyDeviceToHost)); }
  // Fills with 0xFF bytes: NaN in every float type, so an unwritten element fails a check.
  // cudaMemset returns before it has run and goes to the legacy default stream, which a
  // non-blocking stream does not wait for: without the synchronization a kernel launched on
  // one could write its output before the poison lands on it.
  void poison() {
    SSMKIT_TEST_CUDA(cudaMemset(ptr_, 0xFF, bytes_));
    SSMKIT_TEST_CUDA(cudaDeviceSynchronize());
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Runs enqueue(s) on stream s, either directly or captured into a CUDA graph that is then
// launched once; waits for s either way.
template <typename F>
void run_on_stream(cudaStream_t s, bool graph, F&& enqueue) {
  cudaGraph_t g = nullptr;
  if (graph) SSMKIT_TEST_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  enqueue(s);
  if (graph) {
    SSMKIT_TEST_CUDA(cudaStreamEndCapture(s, &g));
    cudaGraphExec_t ge;
    SSMKIT_TEST_CUDA(cudaGraphInstantiate(&ge, g, 0));
    SSMKIT_TEST_CUDA(cudaGraphLaunch(ge, s));
    SSMKIT_TEST_CUDA(cudaStreamSynchronize(s));
    SSMKIT_TEST_CUDA(cudaGraphExecDestroy(ge));
    SSMKIT_TEST_CUDA(cudaGraphDestroy(g));
  }
  SSMKIT_TEST_CUDA(cudaStreamSynchronize(s));
}

// A producer for programmatic-dependent-launch tests: lets a dependent grid start at once
// (griddepcontrol.launch_dependents), sleeps about `delay_ns`, then copies n bytes from src to
// dst. A dependent kernel that read its inputs before griddepcontrol.wait would see dst's old
// contents.
__global__ inline void delayed_copy_kernel(const unsigned char* src, unsigned char* dst, size_t n,
                                           unsigned delay_ns) {
#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 900)
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 700)
  for (unsigned t = 0; t < delay_ns; t += 1000) __nanosleep(1000);
#endif
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = src[i];
}

// Keeps `buf`'s contents in `staging` and poisons `buf`; restore_behind_producer() then
// enqueues the delayed copy back: the inputs a dependent kernel must wait for. (poison()
// synchronizes the device, so the device-to-device copy before it has run too.)
inline void stage_and_poison(DeviceBuffer& buf, DeviceBuffer& staging) {
  staging = DeviceBuffer(buf.bytes());
  SSMKIT_TEST_CUDA(cudaMemcpy(staging.get(), buf.get(), buf.bytes(), cudaMemcpyDeviceToDevice));
  buf.poison();
}
inline void restore_behind_producer(DeviceBuffer& buf, const DeviceBuffer& staging, cudaStream_t s) {
  delayed_copy_kernel<<<64, 256, 0, s>>>(staging.as<unsigned char>(), buf.as<unsigned char>(), buf.bytes(),
                                         20000);
  SSMKIT_TEST_CUDA(cudaGetLastError());
}

// Host tensor stored in a run-time dtype (float, half or bfloat16 bytes).
struct HostTensor {
  ssmkit::DType dtype = ssmkit::DType::kFloat32;
  std::vector<unsigned char> bytes;
  size_t size() const { return bytes.size() / ssmkit::dtype_size(dtype); }
  void* data() { return bytes.data(); }
  const void* data() const { return bytes.data(); }
  double at(size_t i) const {
    switch (dtype) {
      case ssmkit::DType::kFloat32: return reinterpret_cast<const float*>(bytes.data())[i];
      case ssmkit::DType::kFloat16: return ssmkit::to_float(reinterpret_cast<const __half*>(bytes.data())[i]);
      case ssmkit::DType::kBFloat16: return ssmkit::to_float(reinterpret_cast<const __nv_bfloat16*>(bytes.data())[i]);
    }
    return 0.0;
  }
  void set(size_t i, float v) {
    switch (dtype) {
      case ssmkit::DType::kFloat32: reinterpret_cast<float*>(bytes.data())[i] = v; break;
      case ssmkit::DType::kFloat16: reinterpret_cast<__half*>(bytes.data())[i] = ssmkit::from_float<__half>(v); break;
      case ssmkit::DType::kBFloat16: reinterpret_cast<__nv_bfloat16*>(bytes.data())[i] = ssmkit::from_float<__nv_bfloat16>(v); break;
    }
  }
};

inline HostTensor make_host(ssmkit::DType t, size_t n) {
  HostTensor h;
  h.dtype = t;
  h.bytes.resize(n * ssmkit::dtype_size(t));
  return h;
}

// Fills with uniform values in [lo, hi), rounded to the tensor's dtype.
inline void fill_uniform(HostTensor& h, std::mt19937_64& rng, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  for (size_t i = 0; i < h.size(); ++i) h.set(i, dist(rng));
}
inline void fill_normal(HostTensor& h, std::mt19937_64& rng, float scale = 1.f) {
  std::normal_distribution<float> dist(0.f, scale);
  for (size_t i = 0; i < h.size(); ++i) h.set(i, dist(rng));
}

// Error statistics of a result against a double reference.
struct ErrorStats {
  double max_rel = 0;   // max |out - ref| / (|ref| + floor)
  double mean_rel = 0;  // mean of the same
  size_t worst = 0;     // index of the worst element
  double worst_out = 0, worst_ref = 0;
  size_t nonfinite = 0;  // elements that are NaN or Inf (e.g. never written)
  size_t failures = 0;   // elements outside tolerance
  std::string describe() const {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "max rel err %.3g, mean rel err %.3g, worst at %zu (got %.7g, want %.7g), "
                  "%zu outside tolerance, %zu non-finite",
                  max_rel, mean_rel, worst, worst_out, worst_ref, failures, nonfinite);
    return buf;
  }
};

// Element i passes when |out - ref| <= atol * scale + rtol * |ref|, where scale is the RMS of
// the reference (so tiny reference values are judged against the data's magnitude).
template <typename GetOut>
ErrorStats compare(GetOut out_at, const std::vector<double>& ref, double rtol, double atol) {
  ErrorStats s;
  double sq = 0;
  for (double r : ref) sq += r * r;
  const double scale = ref.empty() ? 1.0 : std::sqrt(sq / ref.size()) + 1e-30;
  double sum = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double o = out_at(i);
    const double r = ref[i];
    if (!std::isfinite(o)) {
      ++s.nonfinite;
      ++s.failures;
      if (s.max_rel < INFINITY) { s.max_rel = INFINITY; s.worst = i; s.worst_out = o; s.worst_ref = r; }
      continue;
    }
    const double err = std::fabs(o - r);
    const double rel = err / (std::fabs(r) + atol * scale);
    sum += rel;
    if (rel > s.max_rel) { s.max_rel = rel; s.worst = i; s.worst_out = o; s.worst_ref = r; }
    if (err > atol * scale + rtol * std::fabs(r)) ++s.failures;
  }
  s.mean_rel = ref.empty() ? 0 : sum / ref.size();
  return s;
}

// Tolerances per dtype: output rounding of the type plus fp32 arithmetic.
inline void tolerances(ssmkit::DType t, double& rtol, double& atol) {
  rtol = 2e-4;
  atol = 2e-5;
  switch (t) {
    case ssmkit::DType::kFloat32: rtol = 2e-4; atol = 2e-5; break;
    case ssmkit::DType::kFloat16: rtol = 2e-3; atol = 5e-4; break;
    case ssmkit::DType::kBFloat16: rtol = 1.6e-2; atol = 4e-3; break;
  }
}

}  // namespace ssmkit_test
