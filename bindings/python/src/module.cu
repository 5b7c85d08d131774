/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file module.cu
//! @brief The extension module _ssmkit: the selective scan on DLPack tensors, no framework link.
//!
//! Tensors arrive as DLPack capsules (or objects with __dlpack__). Every capsule is consumed:
//! it is renamed to its "used_" name and its managed tensor is released by this module once
//! the launch has been enqueued. The caller keeps the original tensors alive until the call
//! returns, so releasing the managed tensors early never frees memory the kernel still reads.

#include <Python.h>
#include <pybind11/pybind11.h>

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <ssmkit/causal_conv1d.cuh>
#include <ssmkit/selective_scan.cuh>
#include <ssmkit/selective_state_update.cuh>

#include "dlpack_abi.h"

namespace py = pybind11;
namespace dl = ssmkit_dlpack;

namespace {

#define SSMKIT_STR_(x) #x
#define SSMKIT_STR(x) SSMKIT_STR_(x)
constexpr const char* kVersionString =
    SSMKIT_STR(SSMKIT_VERSION_MAJOR) "." SSMKIT_STR(SSMKIT_VERSION_MINOR) "." SSMKIT_STR(SSMKIT_VERSION_PATCH);

[[noreturn]] void value_error(const std::string& msg) { throw py::value_error(msg); }

const char* device_type_name(int32_t t) {
  switch (t) {
    case dl::kCPU: return "cpu";
    case dl::kCUDA: return "cuda";
    case dl::kCUDAHost: return "cuda_host";
    case dl::kOpenCL: return "opencl";
    case dl::kVulkan: return "vulkan";
    case dl::kMetal: return "metal";
    case dl::kVPI: return "vpi";
    case dl::kROCM: return "rocm";
    case dl::kROCMHost: return "rocm_host";
    case dl::kExtDev: return "ext_dev";
    case dl::kCUDAManaged: return "cuda_managed";
    case dl::kOneAPI: return "oneapi";
    case dl::kWebGPU: return "webgpu";
    case dl::kHexagon: return "hexagon";
    case dl::kMAIA: return "maia";
    default: return nullptr;
  }
}

// Messages are built with std::string and std::to_string only (no iostreams).
std::string device_string(const dl::Device& d) {
  const char* name = device_type_name(d.device_type);
  std::string s = name ? std::string(name) : "device type " + std::to_string(d.device_type);
  if (d.device_type != dl::kCPU) s += ":" + std::to_string(d.device_id);
  return s;
}

std::string dtype_string(const dl::DataType& t) {
  const std::string bits = std::to_string(static_cast<int>(t.bits));
  std::string s;
  switch (t.code) {
    case dl::kInt: s = "int" + bits; break;
    case dl::kUInt: s = "uint" + bits; break;
    case dl::kFloat: s = "float" + bits; break;
    case dl::kBfloat: s = "bfloat" + bits; break;
    case dl::kComplex: s = "complex" + bits; break;
    case dl::kBool: s = "bool"; break;
    case dl::kOpaqueHandle: s = "opaque handle"; break;
    default: s = "type code " + std::to_string(static_cast<int>(t.code)) + " (" + bits + " bits)"; break;
  }
  if (t.lanes != 1) s += "x" + std::to_string(static_cast<int>(t.lanes));
  return s;
}

std::string shape_string(const std::vector<int64_t>& v) {
  std::string s = "(";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(static_cast<long long>(v[i]));
  }
  if (v.size() == 1) s += ",";
  return s + ")";
}

//! One consumed DLPack tensor. Owns the managed tensor and releases it on destruction (with
//! the GIL held, since some producers' deleters touch Python objects).
class DLArg {
 public:
  DLArg() = default;
  DLArg(const DLArg&) = delete;
  DLArg& operator=(const DLArg&) = delete;
  ~DLArg() { release(); }

  //! Takes @p obj (a capsule or an object with __dlpack__) as the tensor argument @p name.
  void consume(py::handle obj, const char* name) {
    name_ = name;
    py::object cap = py::reinterpret_borrow<py::object>(obj);
    if (!PyCapsule_CheckExact(cap.ptr())) {
      if (!py::hasattr(cap, "__dlpack__"))
        value_error(name_ + " must be a DLPack capsule or an object with __dlpack__, got " +
                    std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
      cap = cap.attr("__dlpack__")();
      if (!PyCapsule_CheckExact(cap.ptr()))
        value_error(name_ + ".__dlpack__() did not return a capsule");
    }
    PyObject* c = cap.ptr();
    const char* cname = PyCapsule_GetName(c);
    if (cname == nullptr) {
      PyErr_Clear();
      value_error(name_ + ": the DLPack capsule has no name");
    }
    const std::string sname(cname);
    if (sname == dl::kCapsuleName) {
      auto* mt = static_cast<dl::ManagedTensor*>(PyCapsule_GetPointer(c, dl::kCapsuleName));
      if (mt == nullptr) throw py::error_already_set();
      legacy_ = mt;
      if (PyCapsule_SetName(c, dl::kUsedCapsuleName) != 0) throw py::error_already_set();
      t_ = &mt->dl_tensor;
    } else if (sname == dl::kVersionedCapsuleName) {
      auto* mt = static_cast<dl::ManagedTensorVersioned*>(
          PyCapsule_GetPointer(c, dl::kVersionedCapsuleName));
      if (mt == nullptr) throw py::error_already_set();
      versioned_ = mt;
      if (PyCapsule_SetName(c, dl::kUsedVersionedCapsuleName) != 0) throw py::error_already_set();
      if (mt->version.major != dl::kMajorVersion)
        value_error(name_ + ": unsupported DLPack ABI version " + std::to_string(mt->version.major) +
                    "." + std::to_string(mt->version.minor));
      read_only_ = (mt->flags & dl::kFlagReadOnly) != 0;
      t_ = &mt->dl_tensor;
    } else if (sname == dl::kUsedCapsuleName || sname == dl::kUsedVersionedCapsuleName) {
      value_error(name_ + ": the DLPack capsule has already been consumed");
    } else {
      value_error(name_ + ": not a DLPack capsule (capsule name '" + sname + "')");
    }
    if (t_->ndim < 0) value_error(name_ + ": negative number of dimensions");
  }

  //! Views @p t, owned by the caller and alive for the call, as the tensor argument @p name
  //! (nothing to release). A null @p t leaves the argument absent.
  void borrow(const dl::Tensor* t, const char* name) {
    release();
    name_ = name;
    t_ = const_cast<dl::Tensor*>(t);
    read_only_ = false;
    if (t_ && t_->ndim < 0) value_error(name_ + ": negative number of dimensions");
  }

  bool present() const { return t_ != nullptr; }
  const std::string& name() const { return name_; }
  int ndim() const { return t_->ndim; }
  //! Bytes per element.
  int64_t itemsize() const { return (int64_t(t_->dtype.bits) * t_->dtype.lanes + 7) / 8; }
  int64_t size(int i) const { return t_->shape[i]; }
  std::vector<int64_t> shape() const { return std::vector<int64_t>(t_->shape, t_->shape + t_->ndim); }
  const dl::Device& device() const { return t_->device; }
  bool read_only() const { return read_only_; }

  //! Stride of dimension @p i in elements (compact row-major when the producer gave none).
  int64_t stride(int i) const {
    if (t_->strides) return t_->strides[i];
    int64_t s = 1;
    for (int k = t_->ndim - 1; k > i; --k) s *= t_->shape[k];
    return s;
  }

  void* data() const {
    if (t_->data == nullptr) return nullptr;
    return static_cast<char*>(t_->data) + t_->byte_offset;
  }

  //! The ssmkit dtype of the tensor; false if it is none of float32, float16 and bfloat16.
  bool try_dtype(ssmkit::DType& out) const {
    const auto& t = t_->dtype;
    if (t.lanes != 1) return false;
    if (t.code == dl::kFloat && t.bits == 32) out = ssmkit::DType::kFloat32;
    else if (t.code == dl::kFloat && t.bits == 16) out = ssmkit::DType::kFloat16;
    else if (t.code == dl::kBfloat && t.bits == 16) out = ssmkit::DType::kBFloat16;
    else return false;
    return true;
  }

  //! The ssmkit dtype, or a ValueError naming the argument.
  ssmkit::DType dtype() const {
    ssmkit::DType d;
    if (!try_dtype(d))
      value_error(name_ + " has unsupported dtype " + dtype_string(t_->dtype) +
                  " (expected float32, float16 or bfloat16)");
    return d;
  }

  void expect_ndim(int nd, const char* what) const {
    if (ndim() != nd)
      value_error(name_ + " must be " + std::to_string(nd) + "-D " + what + ", got " +
                  std::to_string(ndim()) + "-D with shape " + shape_string(shape()));
  }

  void expect_shape(const std::vector<int64_t>& want, const std::string& what) const {
    if (shape() != want)
      value_error(name_ + " must have shape " + shape_string(want) + what + ", got " +
                  shape_string(shape()));
  }

  void expect_dtype(ssmkit::DType want, const std::string& what) const {
    ssmkit::DType got;
    if (!try_dtype(got))
      value_error(name_ + " must be " + ssmkit::to_string(want) + what + ", got " +
                  dtype_string(t_->dtype));
    if (got != want)
      value_error(name_ + " must be " + ssmkit::to_string(want) + what + ", got " +
                  ssmkit::to_string(got));
  }

  //! Dimension @p i must have stride 1 (a dimension of size 1 has no meaningful stride).
  void expect_unit_stride(int i, const char* what) const {
    if (size(i) > 1 && stride(i) != 1)
      value_error(name_ + " must be contiguous in its " + what + " dimension (stride 1), got stride " +
                  std::to_string(stride(i)));
  }

  void release() {
    if (legacy_ && legacy_->deleter) legacy_->deleter(legacy_);
    if (versioned_ && versioned_->deleter) versioned_->deleter(versioned_);
    legacy_ = nullptr;
    versioned_ = nullptr;
    t_ = nullptr;
  }

 private:
  std::string name_;
  dl::ManagedTensor* legacy_ = nullptr;
  dl::ManagedTensorVersioned* versioned_ = nullptr;
  dl::Tensor* t_ = nullptr;
  bool read_only_ = false;
};

//! Restores the calling thread's current CUDA device on scope exit.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    cudaError_t err = cudaGetDevice(&prev_);
    if (err != cudaSuccess) {
      cudaGetLastError();
      throw std::runtime_error(std::string("cudaGetDevice failed: ") + cudaGetErrorString(err));
    }
    if (prev_ != device) {
      err = cudaSetDevice(device);
      if (err != cudaSuccess) {
        cudaGetLastError();
        throw std::runtime_error("cudaSetDevice(" + std::to_string(device) +
                                 ") failed: " + cudaGetErrorString(err));
      }
      switched_ = true;
    }
  }
  ~DeviceGuard() {
    if (switched_) cudaSetDevice(prev_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int prev_ = 0;
  bool switched_ = false;
};

void selective_scan_fwd(py::object u_obj, py::object delta_obj, py::object A_obj, py::object B_obj,
                        py::object C_obj, py::object D_obj, py::object z_obj,
                        py::object delta_bias_obj, bool delta_softplus, py::object h0_obj,
                        py::object out_obj, py::object last_state_obj, py::object stream_obj,
                        py::object workspace_obj, py::object conv_weight_obj, py::object conv_bias_obj,
                        bool conv_silu, py::object conv_init_obj, py::object conv_final_obj,
                        py::object conv_out_obj) {
  // Consume every capsule first, so that each one is released whatever fails later.
  DLArg u, delta, A, B, C, D, z, delta_bias, h0, out, last_state, workspace;
  DLArg conv_weight, conv_bias, conv_init, conv_final, conv_out;
  if (!workspace_obj.is_none()) workspace.consume(workspace_obj, "workspace");
  if (!conv_weight_obj.is_none()) conv_weight.consume(conv_weight_obj, "conv_weight");
  if (!conv_bias_obj.is_none()) conv_bias.consume(conv_bias_obj, "conv_bias");
  if (!conv_init_obj.is_none()) conv_init.consume(conv_init_obj, "conv_initial_states");
  if (!conv_final_obj.is_none()) conv_final.consume(conv_final_obj, "conv_final_states");
  if (!conv_out_obj.is_none()) conv_out.consume(conv_out_obj, "conv_out");
  u.consume(u_obj, "u");
  delta.consume(delta_obj, "delta");
  A.consume(A_obj, "A");
  B.consume(B_obj, "B");
  C.consume(C_obj, "C");
  if (!D_obj.is_none()) D.consume(D_obj, "D");
  if (!z_obj.is_none()) z.consume(z_obj, "z");
  if (!delta_bias_obj.is_none()) delta_bias.consume(delta_bias_obj, "delta_bias");
  if (!h0_obj.is_none()) h0.consume(h0_obj, "h0");
  out.consume(out_obj, "out");
  if (!last_state_obj.is_none()) last_state.consume(last_state_obj, "last_state");

  std::uintptr_t stream_value = 0;
  if (!stream_obj.is_none()) {
    if (!PyLong_Check(stream_obj.ptr()))
      value_error("stream must be an int (a cudaStream_t as an integer) or None");
    const unsigned long long v = PyLong_AsUnsignedLongLong(stream_obj.ptr());
    if (PyErr_Occurred()) {
      PyErr_Clear();
      value_error("stream must be a non-negative int that fits a pointer");
    }
    stream_value = static_cast<std::uintptr_t>(v);
  }
  auto stream = reinterpret_cast<cudaStream_t>(stream_value);

  // Shapes, dtypes and layouts.
  u.expect_ndim(3, "(batch, dim, seqlen)");
  const ssmkit::DType dtype = u.dtype();
  const std::string dt_name = ssmkit::to_string(dtype);
  const int64_t batch = u.size(0), dim = u.size(1), seqlen = u.size(2);
  const std::vector<int64_t> bdl = {batch, dim, seqlen};
  u.expect_unit_stride(2, "last");

  delta.expect_ndim(3, "(batch, dim, seqlen)");
  delta.expect_shape(bdl, " like u");
  delta.expect_dtype(dtype, " like u");
  delta.expect_unit_stride(2, "last");

  A.expect_ndim(2, "(dim, dstate)");
  A.expect_dtype(ssmkit::DType::kFloat32, "");
  const int64_t dstate = A.size(1);
  if (A.size(0) != dim)
    value_error("A must have shape (dim, dstate) with dim = " + std::to_string(dim) +
                " as in u, got " + shape_string(A.shape()));

  int64_t n_groups = 1;
  bool have_groups = false;
  auto check_BC = [&](DLArg& m) -> bool {
    if (m.ndim() == 2) {
      m.expect_shape({dim, dstate}, " (dim, dstate) like A");
      m.expect_dtype(ssmkit::DType::kFloat32, " when constant (2-D)");
      return false;
    }
    if (m.ndim() == 4) {
      if (m.size(0) != batch || m.size(2) != dstate || m.size(3) != seqlen ||
          (have_groups && m.size(1) != n_groups)) {
        std::string g = have_groups ? std::to_string(n_groups) : std::string("n_groups");
        value_error(m.name() + " must have shape (" + std::to_string(batch) + ", " + g + ", " +
                    std::to_string(dstate) + ", " + std::to_string(seqlen) +
                    ") = (batch, n_groups, dstate, seqlen), got " + shape_string(m.shape()));
      }
      m.expect_dtype(dtype, " like u when variable (4-D)");
      m.expect_unit_stride(3, "last");
      if (!have_groups) {
        n_groups = m.size(1);
        have_groups = true;
        if (n_groups < 1 || dim % n_groups != 0)
          value_error(m.name() + ": n_groups (dimension 1) must be >= 1 and divide dim = " +
                      std::to_string(dim) + ", got " + std::to_string(n_groups));
      }
      return true;
    }
    value_error(m.name() +
                " must be 2-D (dim, dstate) or 4-D (batch, n_groups, dstate, seqlen), got " +
                std::to_string(m.ndim()) + "-D with shape " + shape_string(m.shape()));
  };
  const bool B_variable = check_BC(B);
  const bool C_variable = check_BC(C);

  auto check_vec = [&](DLArg& v) {
    if (!v.present()) return;
    v.expect_ndim(1, "(dim,)");
    v.expect_shape({dim}, " (dim,)");
    v.expect_dtype(ssmkit::DType::kFloat32, "");
    v.expect_unit_stride(0, "only");
  };
  check_vec(D);
  check_vec(delta_bias);

  if (z.present()) {
    z.expect_ndim(3, "(batch, dim, seqlen)");
    z.expect_shape(bdl, " like u");
    z.expect_dtype(dtype, " like u");
    z.expect_unit_stride(2, "last");
  }

  const std::vector<int64_t> bdn = {batch, dim, dstate};
  auto check_state = [&](DLArg& s) {
    if (!s.present()) return;
    s.expect_ndim(3, "(batch, dim, dstate)");
    s.expect_shape(bdn, " (batch, dim, dstate)");
    s.expect_dtype(ssmkit::DType::kFloat32, "");
    s.expect_unit_stride(2, "last (dstate)");
  };
  check_state(h0);

  out.expect_ndim(3, "(batch, dim, seqlen)");
  out.expect_shape(bdl, " like u");
  out.expect_dtype(dtype, " like u");
  out.expect_unit_stride(2, "last");
  if (out.read_only()) value_error("out is read-only");

  check_state(last_state);
  if (last_state.present() && last_state.read_only()) value_error("last_state is read-only");

  // Fused conv: weight (dim, W), bias (dim,) in the weight's dtype (float32 or u's), states
  // (batch, dim, W-1) and conv_out (batch, dim, seqlen) in u's dtype.
  int64_t conv_w = 0;
  ssmkit::DType conv_wt = ssmkit::DType::kFloat32;
  if (conv_weight.present()) {
    conv_weight.expect_ndim(2, "(dim, width)");
    conv_w = conv_weight.size(1);
    conv_weight.expect_shape({dim, conv_w}, " (dim, width)");
    conv_wt = conv_weight.dtype();
    conv_weight.expect_unit_stride(1, "last (width)");
    if (conv_bias.present()) {
      conv_bias.expect_ndim(1, "(dim,)");
      conv_bias.expect_shape({dim}, " (dim,)");
      conv_bias.expect_dtype(conv_wt, " like conv_weight");
      conv_bias.expect_unit_stride(0, "only");
    }
    const std::vector<int64_t> bds = {batch, dim, conv_w - 1};
    for (DLArg* st : {&conv_init, &conv_final}) {
      if (!st->present()) continue;
      st->expect_ndim(3, "(batch, dim, width - 1)");
      st->expect_shape(bds, " (batch, dim, width - 1)");
      st->expect_dtype(dtype, " like u");
      if (conv_w > 2) st->expect_unit_stride(2, "last");
    }
    if (conv_final.present() && conv_final.read_only()) value_error("conv_final_states is read-only");
    if (conv_out.present()) {
      conv_out.expect_ndim(3, "(batch, dim, seqlen)");
      conv_out.expect_shape(bdl, " like u");
      conv_out.expect_dtype(dtype, " like u");
      conv_out.expect_unit_stride(2, "last");
      if (conv_out.read_only()) value_error("conv_out is read-only");
    }
  } else if (conv_bias.present() || conv_init.present() || conv_final.present() || conv_out.present()) {
    value_error("conv_bias, conv_initial_states, conv_final_states and conv_out need conv_weight");
  }

  // Devices: everything on one CUDA device.
  const DLArg* all[] = {&u,  &delta,      &A,         &B,         &C,         &D,
                        &z,  &delta_bias, &h0,        &out,       &last_state, &conv_weight,
                        &conv_bias, &conv_init, &conv_final, &conv_out};
  for (const DLArg* a : all) {
    if (!a->present()) continue;
    if (a->device().device_type != dl::kCUDA)
      value_error(a->name() + " must be a CUDA tensor, got a tensor on " +
                  device_string(a->device()));
  }
  const int device = u.device().device_id;
  for (const DLArg* a : all) {
    if (!a->present()) continue;
    if (a->device().device_id != device)
      value_error(a->name() + " is on " + device_string(a->device()) + " but u is on " +
                  device_string(u.device()) + "; all tensors must be on the same device");
  }

  // Parameters (strides in elements).
  ssmkit::SelectiveScanParams p;
  p.dtype = dtype;
  p.batch = batch;
  p.dim = dim;
  p.seqlen = seqlen;
  p.dstate = dstate;
  p.n_groups = n_groups;

  p.u = u.data();
  p.u_batch_stride = u.stride(0);
  p.u_dim_stride = u.stride(1);
  p.delta = delta.data();
  p.delta_batch_stride = delta.stride(0);
  p.delta_dim_stride = delta.stride(1);
  p.A = static_cast<const float*>(A.data());
  p.A_dim_stride = A.stride(0);
  p.A_dstate_stride = A.stride(1);

  p.B = B.data();
  p.B_variable = B_variable;
  if (B_variable) {
    p.B_batch_stride = B.stride(0);
    p.B_group_stride = B.stride(1);
    p.B_dstate_stride = B.stride(2);
  } else {
    p.B_dim_stride = B.stride(0);
    p.B_dstate_stride = B.stride(1);
  }
  p.C = C.data();
  p.C_variable = C_variable;
  if (C_variable) {
    p.C_batch_stride = C.stride(0);
    p.C_group_stride = C.stride(1);
    p.C_dstate_stride = C.stride(2);
  } else {
    p.C_dim_stride = C.stride(0);
    p.C_dstate_stride = C.stride(1);
  }

  if (D.present()) p.D = static_cast<const float*>(D.data());
  if (delta_bias.present()) p.delta_bias = static_cast<const float*>(delta_bias.data());
  p.delta_softplus = delta_softplus;
  if (z.present()) {
    p.z = z.data();
    p.z_batch_stride = z.stride(0);
    p.z_dim_stride = z.stride(1);
  }
  if (h0.present()) {
    p.h0 = static_cast<const float*>(h0.data());
    p.h0_batch_stride = h0.stride(0);
    p.h0_dim_stride = h0.stride(1);
  }
  p.out = out.data();
  p.out_batch_stride = out.stride(0);
  p.out_dim_stride = out.stride(1);
  if (last_state.present()) {
    p.last_state = static_cast<float*>(last_state.data());
    p.last_state_batch_stride = last_state.stride(0);
    p.last_state_dim_stride = last_state.stride(1);
  }

  if (conv_weight.present()) {
    ssmkit::set_contiguous_scan_conv(p, conv_w, conv_wt);
    p.conv.weight = conv_weight.data();
    p.conv.weight_dim_stride = conv_weight.stride(0);
    p.conv.silu = conv_silu;
    if (conv_bias.present()) p.conv.bias = conv_bias.data();
    if (conv_init.present()) {
      p.conv.initial_states = conv_init.data();
      p.conv.initial_states_batch_stride = conv_init.stride(0);
      p.conv.initial_states_dim_stride = conv_init.stride(1);
    }
    if (conv_final.present()) {
      p.conv.final_states = conv_final.data();
      p.conv.final_states_batch_stride = conv_final.stride(0);
      p.conv.final_states_dim_stride = conv_final.stride(1);
    }
    if (conv_out.present()) {
      p.conv.out = conv_out.data();
      p.conv.out_batch_stride = conv_out.stride(0);
      p.conv.out_dim_stride = conv_out.stride(1);
    }
  }

  const ssmkit::Status check = ssmkit::can_implement(p);
  if (!check.ok()) value_error(check.message());
  if (workspace.present()) {
    if (workspace.ndim() != 1 || workspace.stride(0) != 1)
      value_error("workspace must be a contiguous 1-D tensor");
    if (workspace.device().device_type != dl::kCUDA || workspace.device().device_id != device)
      value_error("workspace must be on the same CUDA device as u");
    p.workspace = workspace.data();
    p.workspace_bytes = static_cast<size_t>(workspace.size(0)) * workspace.itemsize();
    if (!ssmkit::is_aligned(p.workspace, 16)) value_error("workspace must be 16-byte aligned");
  }

  ssmkit::Status st;
  {
    DeviceGuard guard(device);
    py::gil_scoped_release nogil;
    st = ssmkit::selective_scan_fwd(p, stream);
  }
  if (!st.ok()) {
    if (st.code() == ssmkit::StatusCode::kInvalidArgument) value_error(st.message());
    throw std::runtime_error(st.message());
  }
  // The DLArg destructors release the managed tensors here, with the GIL held.
}

// Bytes of workspace the selective scan can use for these sizes on `device` (0: none needed).
// Sizing needs no tensors: the arguments are checked with placeholder pointers.
size_t selective_scan_workspace_bytes(int64_t batch, int64_t dim, int64_t seqlen, int64_t dstate,
                                      int64_t n_groups, const std::string& dtype, int device) {
  ssmkit::DType t;
  if (dtype == "float32") t = ssmkit::DType::kFloat32;
  else if (dtype == "float16") t = ssmkit::DType::kFloat16;
  else if (dtype == "bfloat16") t = ssmkit::DType::kBFloat16;
  else value_error("dtype must be float32, float16 or bfloat16, got " + dtype);
  auto p = ssmkit::make_selective_scan_params(t, batch, dim, seqlen, dstate, n_groups);
  alignas(16) static const unsigned char placeholder[16] = {};
  p.u = p.delta = p.B = p.C = placeholder;
  p.A = reinterpret_cast<const float*>(placeholder);
  p.out = const_cast<unsigned char*>(placeholder);
  size_t bytes = 0;
  DeviceGuard guard(device);
  const ssmkit::Status st = ssmkit::selective_scan_workspace_size(p, bytes);
  if (!st.ok()) {
    if (st.code() == ssmkit::StatusCode::kInvalidArgument) value_error(st.message());
    throw std::runtime_error(st.message());
  }
  return bytes;
}

int cuda_device_count() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

}  // namespace

// Further ops, one file each, written with the helpers above (DLArg, value_error, ...); each
// defines `void register_<op>(py::module_& m)`.
namespace {
#include "conv1d.inc"
#include "decode.inc"
}  // namespace

PYBIND11_MODULE(_ssmkit, m) {
  m.doc() = "ssmkit CUDA kernels on DLPack tensors (low-level; use ssmkit.selective_scan_fn).";
  m.attr("__version__") = kVersionString;
  m.attr("VERSION_MAJOR") = SSMKIT_VERSION_MAJOR;
  m.attr("VERSION_MINOR") = SSMKIT_VERSION_MINOR;
  m.attr("VERSION_PATCH") = SSMKIT_VERSION_PATCH;
  m.attr("MAX_DSTATE") = static_cast<long long>(ssmkit::kMaxScanDState);

  m.def("selective_scan_fwd", &selective_scan_fwd, py::arg("u"), py::arg("delta"), py::arg("A"),
        py::arg("B"), py::arg("C"), py::arg("D").none(true), py::arg("z").none(true),
        py::arg("delta_bias").none(true), py::arg("delta_softplus"), py::arg("h0").none(true),
        py::arg("out"), py::arg("last_state").none(true), py::arg("stream").none(true),
        py::arg("workspace") = py::none(), py::arg("conv_weight") = py::none(),
        py::arg("conv_bias") = py::none(), py::arg("conv_silu") = true,
        py::arg("conv_initial_states") = py::none(), py::arg("conv_final_states") = py::none(),
        py::arg("conv_out") = py::none(),
        R"doc(Enqueue the selective-scan forward on `stream`.

Every tensor argument is a DLPack capsule (or an object with __dlpack__) of a CUDA tensor;
D, z, delta_bias, h0 and last_state may be None. `out` (and `last_state` when given) must be
preallocated. `stream` is a cudaStream_t as an int (0 = legacy default stream). Shapes:
u, delta, z, out (batch, dim, seqlen) in one dtype (float32, float16 or bfloat16);
A (dim, dstate) float32; B and C (dim, dstate) float32 or (batch, n_groups, dstate, seqlen)
in u's dtype; D, delta_bias (dim,) float32; h0, last_state (batch, dim, dstate) float32.
`workspace` (optional, a 1-D CUDA tensor of at least selective_scan_workspace_bytes(...)
bytes) avoids a stream-ordered allocation when the launch cuts the sequence into ranges.
With `conv_weight` (dim, width <= 4), u is the input of a causal conv1d run in the same kernel:
the scan reads silu(conv(u) + conv_bias) (no silu with conv_silu false); conv_initial_states
and conv_final_states are (batch, dim, width - 1) in u's dtype, conv_out (batch, dim, seqlen)
receives the conv's output.
Invalid arguments raise ValueError naming the argument; CUDA failures raise RuntimeError.
Capsules are consumed.)doc");

  m.def("selective_scan_workspace_bytes", &selective_scan_workspace_bytes, py::arg("batch"),
        py::arg("dim"), py::arg("seqlen"), py::arg("dstate"), py::arg("n_groups"),
        py::arg("dtype"), py::arg("device"),
        "Bytes of workspace selective_scan_fwd can use for these sizes on CUDA device `device` "
        "(0 when the launch does not cut the sequence into ranges).");

  register_conv1d(m);
  register_decode(m);

  m.def("cuda_device_count", &cuda_device_count,
        "Number of visible CUDA devices (0 when there is no device or driver).");
}
