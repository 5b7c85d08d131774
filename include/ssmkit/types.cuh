/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file types.cuh
//! @brief Element types (fp32, fp16, bf16), their traits and vectorised loads and stores.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "config.cuh"

SSMKIT_NAMESPACE_BEGIN

//! Run-time tag of an element type.
enum class DType : int {
  kFloat32 = 0,   //!< float
  kFloat16 = 1,   //!< __half
  kBFloat16 = 2,  //!< __nv_bfloat16
};

//! Name of a dtype, for messages.
inline const char* to_string(DType t) noexcept {
  switch (t) {
    case DType::kFloat32: return "float32";
    case DType::kFloat16: return "float16";
    case DType::kBFloat16: return "bfloat16";
  }
  return "unknown";
}

//! Size in bytes of one element of @p t (0 for an unknown tag).
inline int dtype_size(DType t) noexcept {
  switch (t) {
    case DType::kFloat32: return 4;
    case DType::kFloat16: return 2;
    case DType::kBFloat16: return 2;
  }
  return 0;
}

//! Traits of a storage type: its run-time tag and conversions to and from float.
//! @tparam T float, __half or __nv_bfloat16.
template <typename T>
struct TypeTraits;

//! Traits of float.
template <>
struct TypeTraits<float> {
  static constexpr DType kDType = DType::kFloat32;  //!< Run-time tag.
  //! Converts to float.
  static SSMKIT_HOST_DEVICE float to_float(float x) { return x; }
  //! Converts from float.
  static SSMKIT_HOST_DEVICE float from_float(float x) { return x; }
};

//! Traits of __half.
template <>
struct TypeTraits<__half> {
  static constexpr DType kDType = DType::kFloat16;  //!< Run-time tag.
  //! Converts to float.
  static SSMKIT_HOST_DEVICE float to_float(__half x) { return __half2float(x); }
  //! Converts from float, rounding to nearest.
  static SSMKIT_HOST_DEVICE __half from_float(float x) { return __float2half_rn(x); }
};

//! Traits of __nv_bfloat16.
template <>
struct TypeTraits<__nv_bfloat16> {
  static constexpr DType kDType = DType::kBFloat16;  //!< Run-time tag.
  //! Converts to float.
  static SSMKIT_HOST_DEVICE float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
  //! Converts from float, rounding to nearest.
  static SSMKIT_HOST_DEVICE __nv_bfloat16 from_float(float x) { return __float2bfloat16_rn(x); }
};

//! Converts any storage type to float.
template <typename T>
SSMKIT_HOST_DEVICE float to_float(T x) {
  return TypeTraits<T>::to_float(x);
}

//! Converts float to any storage type.
template <typename T>
SSMKIT_HOST_DEVICE T from_float(float x) {
  return TypeTraits<T>::from_float(x);
}

//! Number of elements of @p T in one 16-byte vector.
template <typename T>
constexpr int kVecElems = 16 / static_cast<int>(sizeof(T));

//! True if @p p is aligned to @p bytes.
SSMKIT_HOST_DEVICE bool is_aligned(const void* p, int bytes) {
  return (reinterpret_cast<std::uintptr_t>(p) % static_cast<std::uintptr_t>(bytes)) == 0;
}

//! Loads @p kN elements starting at @p src into floats. With @p vec true the load is done as
//! 16-byte vectors (@p src must be 16-byte aligned and kN a multiple of kVecElems<T>);
//! otherwise only the first @p valid elements are read and the rest are set to zero.
template <typename T, int kN>
SSMKIT_DEVICE void load_to_float(const T* __restrict__ src, float (&dst)[kN], bool vec, int valid) {
  constexpr int kV = kVecElems<T>;
  if (vec && valid >= kN) {
    static_assert(kN % kV == 0, "load width must be a multiple of the vector width");
#pragma unroll
    for (int v = 0; v < kN / kV; ++v) {
      const uint4 raw = __ldg(reinterpret_cast<const uint4*>(src) + v);
      const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
      for (int i = 0; i < kV; ++i) dst[v * kV + i] = to_float(e[i]);
    }
  } else {
#pragma unroll
    for (int i = 0; i < kN; ++i) dst[i] = i < valid ? to_float(src[i]) : 0.f;
  }
}

//! Stores @p kN floats to @p dst converted to @p T; as 16-byte vectors when @p vec is true
//! (same conditions as load_to_float), else only the first @p valid elements are written.
template <typename T, int kN>
SSMKIT_DEVICE void store_from_float(T* __restrict__ dst, const float (&src)[kN], bool vec, int valid) {
  constexpr int kV = kVecElems<T>;
  if (vec && valid >= kN) {
    static_assert(kN % kV == 0, "store width must be a multiple of the vector width");
#pragma unroll
    for (int v = 0; v < kN / kV; ++v) {
      uint4 raw;
      T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
      for (int i = 0; i < kV; ++i) e[i] = from_float<T>(src[v * kV + i]);
      reinterpret_cast<uint4*>(dst)[v] = raw;
    }
  } else {
#pragma unroll
    for (int i = 0; i < kN; ++i)
      if (i < valid) dst[i] = from_float<T>(src[i]);
  }
}

SSMKIT_NAMESPACE_END
