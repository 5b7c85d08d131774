/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
// ssmkit._ssmkit_torch: the decode step on torch tensors read natively.
//
// A decode step runs once per layer and token, so the Python call must cost little. Exporting
// ten tensors through DLPack and allocating the output from Python costs several microseconds;
// here each tensor is read in place (pointer, sizes, strides, dtype, device) into a borrowed
// DLPack description and handed to the checks and launcher of ssmkit._ssmkit through the
// C entry it publishes as the capsule `_decode_entry_v1`. The two modules share no C++ types:
// only that entry, with a plain C signature. Built only where the interpreter has torch
// (SSMKIT_BUILD_TORCH_EXT); the Python wrapper falls back to the DLPack path without it.
#include <torch/extension.h>

#include <cstdint>

#include "dlpack_abi.h"

namespace dl = ssmkit_dlpack;
namespace py = pybind11;

namespace {

using DecodeEntry = int (*)(const dl::Tensor* const*, int, int, std::uintptr_t);
DecodeEntry g_decode_entry = nullptr;

// The DLPack element type of a torch dtype.
dl::DataType dl_dtype(c10::ScalarType s) {
  dl::DataType d;
  d.lanes = 1;
  d.bits = static_cast<uint8_t>(c10::elementSize(s) * 8);
  if (s == c10::ScalarType::BFloat16) d.code = dl::kBfloat;
  else if (c10::isFloatingType(s)) d.code = dl::kFloat;
  else if (c10::isComplexType(s)) d.code = dl::kComplex;
  else if (s == c10::ScalarType::Bool) d.code = dl::kBool;
  else if (c10::isSignedType(s)) d.code = dl::kInt;
  else d.code = dl::kUInt;
  return d;
}

// Describes @p t in place: the description points into the tensor's own size and stride
// arrays, so it is valid while @p t is alive and unchanged.
const dl::Tensor* describe(const at::Tensor& t, dl::Tensor& d) {
  d.data = t.data_ptr();
  d.device.device_type = t.is_cuda() ? dl::kCUDA : dl::kCPU;
  d.device.device_id = t.is_cuda() ? t.get_device() : 0;
  d.ndim = static_cast<int32_t>(t.dim());
  d.dtype = dl_dtype(t.scalar_type());
  d.shape = const_cast<int64_t*>(t.sizes().data());
  d.strides = const_cast<int64_t*>(t.strides().data());
  d.byte_offset = 0;
  return &d;
}

const dl::Tensor* describe(const c10::optional<at::Tensor>& t, dl::Tensor& d) {
  return t.has_value() && t->defined() ? describe(*t, d) : nullptr;
}

// selective_state_update on torch tensors; see ssmkit.selective_state_update. Returns out
// (allocated like x when not given). `stream` is the cudaStream_t to launch on, as an int.
at::Tensor selective_state_update(const at::Tensor& state, const at::Tensor& x, const at::Tensor& dt,
                                  const at::Tensor& A, const at::Tensor& B, const at::Tensor& C,
                                  const c10::optional<at::Tensor>& D, const c10::optional<at::Tensor>& z,
                                  const c10::optional<at::Tensor>& dt_bias, bool dt_softplus,
                                  const c10::optional<at::Tensor>& state_batch_indices,
                                  const c10::optional<at::Tensor>& dst_state_batch_indices,
                                  const c10::optional<at::Tensor>& intermediate_states,
                                  const c10::optional<at::Tensor>& out, std::uintptr_t stream) {
  at::Tensor o = out.has_value() && out->defined() ? *out : at::empty_like(x);
  dl::Tensor d[13];
  const dl::Tensor* t[13] = {describe(state, d[0]),
                             describe(x, d[1]),
                             describe(dt, d[2]),
                             describe(A, d[3]),
                             describe(B, d[4]),
                             describe(C, d[5]),
                             describe(D, d[6]),
                             describe(z, d[7]),
                             describe(dt_bias, d[8]),
                             describe(state_batch_indices, d[9]),
                             describe(dst_state_batch_indices, d[10]),
                             describe(o, d[11]),
                             describe(intermediate_states, d[12])};
  if (g_decode_entry(t, 13, dt_softplus ? 1 : 0, stream) != 0) throw py::error_already_set();
  return o;
}

}  // namespace

PYBIND11_MODULE(_ssmkit_torch, m) {
  m.doc() = "ssmkit decode step on torch tensors (low-level; use ssmkit.selective_state_update).";
  py::object cap = py::module_::import("ssmkit._ssmkit").attr("_decode_entry_v1");
  void* entry = PyCapsule_GetPointer(cap.ptr(), "ssmkit._decode_entry_v1");
  if (entry == nullptr) throw py::error_already_set();
  g_decode_entry = reinterpret_cast<DecodeEntry>(entry);
  m.def("selective_state_update", &selective_state_update, py::arg("state"), py::arg("x"), py::arg("dt"),
        py::arg("A"), py::arg("B"), py::arg("C"), py::arg("D"), py::arg("z"), py::arg("dt_bias"),
        py::arg("dt_softplus"), py::arg("state_batch_indices"), py::arg("dst_state_batch_indices"),
        py::arg("intermediate_states"), py::arg("out"), py::arg("stream"),
        "Enqueue the decode step on `stream` (a cudaStream_t as an int); every tensor in the shapes "
        "of ssmkit.selective_state_update. Returns out. Invalid arguments raise ValueError naming the "
        "argument; CUDA failures raise RuntimeError.");
}
