/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file dispatch.cuh
//! @brief Every run-time to compile-time switch of ssmkit, each with an error branch.
#pragma once

#include <cstdint>
#include <type_traits>

#include "config.cuh"
#include "status.cuh"
#include "types.cuh"

SSMKIT_NAMESPACE_BEGIN

//! Carries a type through a generic lambda.
template <typename T>
struct TypeTag {
  using type = T;  //!< The carried type.
};

//! Calls @p f(TypeTag<T>{}) with T the storage type of @p dtype.
//! @return what @p f returns, or kInvalidArgument naming @p what for an unknown dtype.
template <typename F>
Status dispatch_dtype(DType dtype, const char* what, F&& f) {
  switch (dtype) {
    case DType::kFloat32: return f(TypeTag<float>{});
    case DType::kFloat16: return f(TypeTag<__half>{});
    case DType::kBFloat16: return f(TypeTag<__nv_bfloat16>{});
  }
  return Status::Error(StatusCode::kInvalidArgument, "%s: unknown dtype %d", what,
                       static_cast<int>(dtype));
}

//! State-size buckets of the selective scan: a run-time dstate runs in the smallest bucket
//! that holds it.
constexpr int kScanDStateBuckets[] = {16, 32, 64, 128, 256};

//! The bucket a run-time @p dstate runs in, or 0 if none holds it.
constexpr int scan_dstate_bucket(int64_t dstate) {
  for (int bkt : kScanDStateBuckets)
    if (dstate >= 1 && dstate <= bkt) return bkt;
  return 0;
}

//! Calls @p f(std::integral_constant<int, kNState>{}) with the bucket of @p dstate.
//! @return what @p f returns, or kInvalidArgument if dstate is outside [1, 256].
template <typename F>
Status dispatch_scan_dstate(int64_t dstate, F&& f) {
  switch (scan_dstate_bucket(dstate)) {
    case 16: return f(std::integral_constant<int, 16>{});
    case 32: return f(std::integral_constant<int, 32>{});
    case 64: return f(std::integral_constant<int, 64>{});
    case 128: return f(std::integral_constant<int, 128>{});
    case 256: return f(std::integral_constant<int, 256>{});
    default: break;
  }
  return Status::Error(StatusCode::kInvalidArgument, "dstate must be in [1, 256], got %lld",
                       static_cast<long long>(dstate));
}

//! Calls @p f(std::integral_constant<int, kWidth>{}) with the causal conv1d width @p width.
//! @return what @p f returns, or kInvalidArgument if width is outside [1, 8].
template <typename F>
Status dispatch_conv_width(int64_t width, F&& f) {
  switch (width) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 5: return f(std::integral_constant<int, 5>{});
    case 6: return f(std::integral_constant<int, 6>{});
    case 7: return f(std::integral_constant<int, 7>{});
    case 8: return f(std::integral_constant<int, 8>{});
    default: break;
  }
  return Status::Error(StatusCode::kInvalidArgument, "width must be in [1, 8], got %lld",
                       static_cast<long long>(width));
}

//! Calls @p f(TypeTag<TW>{}) with the conv1d weight type for inputs of type @p T: either T
//! itself or float (the two combinations the conv1d kernels are compiled for).
//! @return what @p f returns, or kNotSupported naming weight_dtype for any other type.
template <typename T, typename F>
Status dispatch_conv_weight_dtype(DType weight_dtype, F&& f) {
  if (weight_dtype == TypeTraits<T>::kDType) return f(TypeTag<T>{});
  if constexpr (!std::is_same<T, float>::value) {
    if (weight_dtype == DType::kFloat32) return f(TypeTag<float>{});
  }
  return Status::Error(StatusCode::kNotSupported,
                       "weight_dtype: weight must be %s (like x) or float32, got %s",
                       to_string(TypeTraits<T>::kDType), to_string(weight_dtype));
}

namespace detail {

//! @p T, as a type that depends on @p Deferred. The run-time launchers are templates with one
//! defaulted parameter and name their per-dtype entry through this alias, so that a translation
//! unit instantiates their kernels only where it calls them (including a header costs nothing).
template <typename T, typename Deferred>
struct deferred_type {
  using type = T;
};
template <typename T, typename Deferred>
using deferred_t = typename deferred_type<T, Deferred>::type;

//! Accepts only the defaulted parameter of a run-time launcher (`launcher<float>(...)` is an
//! error rather than a silent call of the run-time dispatch).
template <typename Deferred>
using if_defaulted_t = std::enable_if_t<std::is_void<Deferred>::value, int>;

}  // namespace detail

SSMKIT_NAMESPACE_END
