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

//! softplus with one MUFU operation: max(x, 0) + log1p(e) with e = exp(-|x|) in (0, 1] from
//! ex2, and log1p(e) = e * q(e), q a degree-7 polynomial fitted for relative error on [0, 1]
//! (3.8e-7 as evaluated in float). Relative error below 1e-6 for x >= -16 and below 4e-6 to
//! x = -80 (there the float argument of exp carries the error); 0 below about -87 (the
//! exponential is flushed). Same threshold as softplus(). The former form (ex2 and lg2, two MUFU operations) cost the same
//! instructions on the FMA pipe and one more on the MUFU, which the scan is short of.
SSMKIT_HOST_DEVICE float softplus_fast(float x) {
  const float e = fast_exp2(-fabsf(x) * kLog2e);
  float q = -0.008539026603102684f;
  q = fmaf(q, e, 0.04408899322152138f);
  q = fmaf(q, e, -0.10768082737922668f);
  q = fmaf(q, e, 0.17745180428028107f);
  q = fmaf(q, e, -0.2449544072151184f);
  q = fmaf(q, e, 0.3327547609806061f);
  q = fmaf(q, e, -0.4999740421772003f);
  q = fmaf(q, e, 0.9999998211860657f);
  const float r = fmaxf(x, 0.f) + e * q;
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
