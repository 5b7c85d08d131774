/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file thread/scan_step.cuh
//! @brief Per-thread pieces of the scan: one time step of a register-resident slice of the
//! state, and a sequential scan of (a, b) pairs held in registers.
#pragma once

#include "../config.cuh"
#include "../math.cuh"

SSMKIT_NAMESPACE_BEGIN

//! An element of the linear recurrence h = a * h + b. Pairs compose associatively:
//! (a1, b1) then (a2, b2) equals (a1 * a2, a2 * b1 + b2).
struct ScanPair {
  float a;  //!< Multiplier (the decay).
  float b;  //!< Addend (the input).
};

//! Composition of two recurrence steps, @p first applied before @p second.
SSMKIT_HOST_DEVICE ScanPair compose(const ScanPair& first, const ScanPair& second) {
  return ScanPair{first.a * second.a, fmaf(second.a, first.b, second.b)};
}

//! Scan operator for CUB-style collectives: ScanPairOp()(earlier, later).
struct ScanPairOp {
  //! Returns compose(earlier, later).
  SSMKIT_HOST_DEVICE ScanPair operator()(const ScanPair& earlier, const ScanPair& later) const {
    return compose(earlier, later);
  }
};

//! Sequential inclusive scan of @p kItems pairs held by one thread, in place: afterwards
//! items[i] is the composition of @p carry_in and items[0..i]; with carry_in = (1, h) the b of
//! items[i] is the state after step i.
//! @tparam kItems number of pairs
template <int kItems>
SSMKIT_HOST_DEVICE void thread_inclusive_scan(ScanPair (&items)[kItems], ScanPair carry_in) {
  ScanPair acc = carry_in;
SSMKIT_PRAGMA_UNROLL
  for (int i = 0; i < kItems; ++i) {
    acc = compose(acc, items[i]);
    items[i] = acc;
  }
}

//! One time step of @p kStates states of one channel held in registers:
//! h[i] = exp2(dt * a_log2[i]) * h[i] + dtu * Bv[i]; returns sum_i Cv[i] * h[i].
//! @tparam kStates  states held by the calling thread
//! @param[in,out] h      the states
//! @param[in]     a_log2 A pre-multiplied by log2(e), so that exp(dt * A) = exp2(dt * a_log2)
//! @param[in]     dt     the step's time step (after bias and softplus)
//! @param[in]     dtu    dt times the step's input u
//! @param[in]     Bv     B of the step for these states
//! @param[in]     Cv     C of the step for these states
template <int kStates>
SSMKIT_HOST_DEVICE float scan_step(float (&h)[kStates], const float (&a_log2)[kStates], float dt,
                                   float dtu, const float (&Bv)[kStates], const float (&Cv)[kStates]) {
  float y = 0.f;
SSMKIT_PRAGMA_UNROLL
  for (int i = 0; i < kStates; ++i) {
    const float a = fast_exp2(dt * a_log2[i]);
    h[i] = fmaf(a, h[i], dtu * Bv[i]);
    y = fmaf(Cv[i], h[i], y);
  }
  return y;
}

SSMKIT_NAMESPACE_END
