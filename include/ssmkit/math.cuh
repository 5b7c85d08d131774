/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file math.cuh
//! @brief Scalar math shared by kernels and the host reference: softplus, silu, exp2.
#pragma once

#include <cmath>

#include "config.cuh"

SSMKIT_NAMESPACE_BEGIN

//! log2(e), to turn exp(x) into exp2(x * kLog2e).
constexpr float kLog2e = 1.4426950408889634f;

//! softplus(x) = log(1 + exp(x)), and x itself for x > 20 (the threshold mamba-ssm uses).
SSMKIT_HOST_DEVICE float softplus(float x) { return x > 20.f ? x : log1pf(expf(x)); }

//! Logistic sigmoid 1 / (1 + exp(-x)).
SSMKIT_HOST_DEVICE float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }

//! silu(x) = x * sigmoid(x).
SSMKIT_HOST_DEVICE float silu(float x) { return x * sigmoid(x); }

//! 2^x. On the device this is one MUFU.EX2 instruction (ex2.approx.ftz.f32: relative error
//! about 2^-22, subnormal results flushed to zero); on the host it is std::exp2.
SSMKIT_HOST_DEVICE float fast_exp2(float x) {
#if defined(__CUDA_ARCH__)
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#else
  return std::exp2(x);
#endif
}

//! log2(x) (device: lg2.approx.ftz.f32, one MUFU.LG2; host: std::log2).
SSMKIT_HOST_DEVICE float fast_log2(float x) {
#if defined(__CUDA_ARCH__)
  float y;
  asm("lg2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#else
  return std::log2(x);
#endif
}

//! softplus with two MUFU operations (ex2, lg2) and a short series where lg2(1 + e) would lose
//! bits: relative error below 3e-6 everywhere. Same threshold as softplus().
SSMKIT_HOST_DEVICE float softplus_fast(float x) {
  const float e = fast_exp2(x * kLog2e);
  const float series = e * fmaf(e, fmaf(e, fmaf(e, -0.25f, 1.f / 3.f), -0.5f), 1.f);
  const float r = e < 0.03125f ? series : fast_log2(1.f + e) * 0.6931471805599453f;
  return x > 20.f ? x : r;
}

//! silu with two MUFU operations (ex2, rcp); relative error about 1e-6. For x below about
//! -87 the exponential overflows and the result is 0 (true value below 1e-36).
SSMKIT_HOST_DEVICE float silu_fast(float x) {
  const float e = fast_exp2(-x * kLog2e);
#if defined(__CUDA_ARCH__)
  return __fdividef(x, 1.f + e);
#else
  return x / (1.f + e);
#endif
}

//! Double-precision softplus with the same threshold, for references.
inline double softplus_ref(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }

//! Double-precision silu, for references.
inline double silu_ref(double x) { return x / (1.0 + std::exp(-x)); }

SSMKIT_NAMESPACE_END
