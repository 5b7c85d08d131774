/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file dlpack_abi.h
//! @brief The part of the DLPack C ABI that the Python bindings consume.
//!
//! Only the structures and constants that the bindings read are declared here. Layouts follow
//! the DLPack ABI (version 0.x "legacy" managed tensors and the 1.x "versioned" ones); the
//! names live in a namespace of their own so that they never collide with another copy of the
//! DLPack declarations in the same program.
#pragma once

#include <cstdint>

namespace ssmkit_dlpack {

//! Device types (DLDeviceType). Only the values the bindings name in messages are listed.
enum DeviceType : int32_t {
  kCPU = 1,
  kCUDA = 2,
  kCUDAHost = 3,
  kOpenCL = 4,
  kVulkan = 7,
  kMetal = 8,
  kVPI = 9,
  kROCM = 10,
  kROCMHost = 11,
  kExtDev = 12,
  kCUDAManaged = 13,
  kOneAPI = 14,
  kWebGPU = 15,
  kHexagon = 16,
  kMAIA = 17,
};

//! Type codes (DLDataTypeCode).
enum TypeCode : uint8_t {
  kInt = 0,
  kUInt = 1,
  kFloat = 2,
  kOpaqueHandle = 3,
  kBfloat = 4,
  kComplex = 5,
  kBool = 6,
};

//! Where a tensor lives (DLDevice).
struct Device {
  int32_t device_type;  //!< A DeviceType value.
  int32_t device_id;    //!< Ordinal of the device of that type.
};

//! Element type (DLDataType): code, bit width and vector lanes.
struct DataType {
  uint8_t code;    //!< A TypeCode value.
  uint8_t bits;    //!< Bits per lane.
  uint16_t lanes;  //!< Lanes per element (1 for scalars).
};

//! A strided view of memory (DLTensor). Shape and strides count elements; strides may be
//! null, meaning compact row-major.
struct Tensor {
  void* data;            //!< Base pointer (for CUDA, a device pointer).
  Device device;         //!< Device of @c data.
  int32_t ndim;          //!< Number of dimensions.
  DataType dtype;        //!< Element type.
  int64_t* shape;        //!< ndim sizes.
  int64_t* strides;      //!< ndim strides in elements, or null for compact row-major.
  uint64_t byte_offset;  //!< Offset in bytes from @c data to the first element.
};

//! A tensor together with its owner (DLManagedTensor), carried by a "dltensor" capsule.
struct ManagedTensor {
  Tensor dl_tensor;                       //!< The tensor.
  void* manager_ctx;                      //!< Producer's context.
  void (*deleter)(ManagedTensor* self);   //!< Releases the tensor; may be null.
};

//! ABI version of a versioned managed tensor (DLPackVersion).
struct Version {
  uint32_t major;  //!< Incompatible changes.
  uint32_t minor;  //!< Compatible additions.
};

//! Flag bit of ManagedTensorVersioned::flags: the data must not be written.
constexpr uint64_t kFlagReadOnly = uint64_t{1} << 0;

//! A tensor with its owner and ABI version (DLManagedTensorVersioned), carried by a
//! "dltensor_versioned" capsule.
struct ManagedTensorVersioned {
  Version version;                                //!< ABI version; major must be 1.
  void* manager_ctx;                              //!< Producer's context.
  void (*deleter)(ManagedTensorVersioned* self);  //!< Releases the tensor; may be null.
  uint64_t flags;                                 //!< Bit mask of kFlag* values.
  Tensor dl_tensor;                               //!< The tensor.
};

//! Capsule names of the Python exchange protocol. A consumer renames the capsule to the
//! "used_" name once it has taken ownership of the managed tensor.
constexpr const char* kCapsuleName = "dltensor";
constexpr const char* kUsedCapsuleName = "used_dltensor";
constexpr const char* kVersionedCapsuleName = "dltensor_versioned";
constexpr const char* kUsedVersionedCapsuleName = "used_dltensor_versioned";

//! The only major version of the versioned ABI these declarations describe.
constexpr uint32_t kMajorVersion = 1;

}  // namespace ssmkit_dlpack
