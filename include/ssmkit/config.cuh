/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file config.cuh
//! @brief Version, ABI namespace and portability macros.
#pragma once

#include <cuda_runtime.h>

//! Major version of ssmkit.
#define SSMKIT_VERSION_MAJOR 0
//! Minor version of ssmkit.
#define SSMKIT_VERSION_MINOR 1
//! Patch version of ssmkit.
#define SSMKIT_VERSION_PATCH 0
//! Version as one integer: major * 10000 + minor * 100 + patch.
#define SSMKIT_VERSION (SSMKIT_VERSION_MAJOR * 10000 + SSMKIT_VERSION_MINOR * 100 + SSMKIT_VERSION_PATCH)

//! Inline namespace that carries the ABI version, so that two copies of ssmkit of different
//! versions linked into one program never share a symbol.
#define SSMKIT_ABI_NAMESPACE v0_1

//! Opens the ssmkit namespace (with its ABI-versioned inline namespace).
#define SSMKIT_NAMESPACE_BEGIN                                                                    \
  namespace ssmkit {                                                                              \
  inline namespace SSMKIT_ABI_NAMESPACE {
//! Closes what SSMKIT_NAMESPACE_BEGIN opened.
#define SSMKIT_NAMESPACE_END                                                                      \
  }                                                                                               \
  }

//! Marks a function callable from host and device code.
#define SSMKIT_HOST_DEVICE __host__ __device__ __forceinline__
//! Marks a device-only inline function.
#define SSMKIT_DEVICE __device__ __forceinline__

//! `#pragma unroll` in device compilation, nothing in host compilation (host compilers warn
//! about the unknown pragma in __host__ __device__ functions).
#if defined(__CUDA_ARCH__)
#define SSMKIT_PRAGMA_UNROLL _Pragma("unroll")
#else
#define SSMKIT_PRAGMA_UNROLL
#endif

#if defined(__CUDACC__) && !defined(__CUDACC_RTC__)
#if __CUDACC_VER_MAJOR__ < 12
#error "ssmkit needs the CUDA Toolkit 12.0 or newer"
#endif
#endif

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ < 700)
#error "ssmkit device code needs compute capability 7.0 or newer"
#endif

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 800)
//! Defined to 1 where cp.async (sm_80+) is available in device code.
#define SSMKIT_HAS_CP_ASYNC 1
#endif

//! When defined to 1, every launcher synchronises its stream after the launch and reports an
//! asynchronous fault as the launcher's own Status (a debugging aid; off by default).
#ifndef SSMKIT_DEBUG_SYNC
#define SSMKIT_DEBUG_SYNC 0
#endif
