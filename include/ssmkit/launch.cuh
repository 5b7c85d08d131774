/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file launch.cuh
//! @brief Launch options of the decode-path launchers (programmatic dependent launch) and the
//! device side of it; the launchers' cache of device facts.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <utility>

#include "config.cuh"

SSMKIT_NAMESPACE_BEGIN

//! How a launcher enqueues its kernel. The default is a plain launch.
struct LaunchOptions {
  //! Launch with programmatic dependent launch (the launch attribute
  //! cudaLaunchAttributeProgrammaticStreamSerialization): the grid may be scheduled while the
  //! preceding kernel of the stream is still running, so that the launch latency overlaps it.
  //! The kernels that take this option execute `griddepcontrol.wait` before their first
  //! memory access, so every input written by earlier work is seen, whatever that work is.
  //! They also execute `griddepcontrol.launch_dependents` at once, which lets a following
  //! kernel launched with this option start early in the same way. A request, not a
  //! guarantee: where the device (before sm_90) or the driver cannot honour it, the kernel is
  //! launched plainly. Capturable in a CUDA graph (the edge becomes a programmatic one).
  bool pdl = false;
};

namespace detail {

// Device ordinals below this have their facts cached by the launchers; higher ones are queried
// on every call.
constexpr int kCachedDevices = 64;

// One int per device, kept for the process: slot dev holds value + 1, 0 until stored (static
// storage starts zeroed). Ordinals at or above kCachedDevices are never stored.
struct DeviceIntCache {
  std::atomic<int> slots[kCachedDevices];

  // The stored value of @p dev, if any.
  bool load(int dev, int& value) const {
    if (dev < 0 || dev >= kCachedDevices) return false;
    const int c = slots[dev].load(std::memory_order_relaxed);
    if (c == 0) return false;
    value = c - 1;
    return true;
  }
  void store(int dev, int value) {
    if (dev >= 0 && dev < kCachedDevices) slots[dev].store(value + 1, std::memory_order_relaxed);
  }
};

// cudaDeviceGetAttribute(kAttr) of device @p dev, read once per process and device: the
// launchers need a few device facts on every call, and each query is host time a short kernel
// waits for. A failed query is not stored.
template <cudaDeviceAttr kAttr>
cudaError_t cached_device_attribute(int dev, int& value) {
  static DeviceIntCache cache;
  if (cache.load(dev, value)) return cudaSuccess;
  const cudaError_t e = cudaDeviceGetAttribute(&value, kAttr, dev);
  if (e == cudaSuccess) cache.store(dev, value);
  return e;
}

// The current device and its SM count.
inline cudaError_t current_device_sms(int& dev, int& sms) {
  const cudaError_t e = cudaGetDevice(&dev);
  if (e != cudaSuccess) return e;
  return cached_device_attribute<cudaDevAttrMultiProcessorCount>(dev, sms);
}

// Waits until the grids this one depends on have completed and their writes are visible, then
// lets a dependent grid launched with programmatic stream serialization start its blocks.
// No-ops for a grid launched without that attribute, and before sm_90.
SSMKIT_DEVICE void grid_dependency_sync() {
#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 900)
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Launches kernel<<<grid, block, smem, stream>>>(args...), with the programmatic stream
// serialization attribute when opts.pdl. Returns the launch's error (cudaGetLastError()).
template <typename... KArgs, typename... Args>
cudaError_t launch_kernel(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                          const LaunchOptions& opts, Args&&... args) {
  if (opts.pdl) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    const cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
    if (e != cudaErrorNotSupported) return e;
    (void)cudaGetLastError();  // not honoured here: launch plainly
  }
  kernel<<<grid, block, smem, stream>>>(std::forward<Args>(args)...);
  return cudaGetLastError();
}

}  // namespace detail

SSMKIT_NAMESPACE_END
