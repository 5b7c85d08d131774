/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file status.cuh
//! @brief Status: the error type every host entry point returns (never throws).
#pragma once

#include <cstdarg>
#include <cstdio>

#include "config.cuh"

SSMKIT_NAMESPACE_BEGIN

//! What went wrong, if anything.
enum class StatusCode : int {
  kSuccess = 0,          //!< No error.
  kInvalidArgument = 1,  //!< An argument has a wrong value, shape, stride or alignment.
  kNotSupported = 2,     //!< Valid input that this build or device does not support.
  kCudaError = 3,        //!< A CUDA runtime call or a kernel launch failed.
};

//! Result of a host entry point: a code and a message that names the offending argument.
//! Trivially copyable, allocates nothing, never throws.
class Status {
 public:
  //! Maximum message length including the terminating zero.
  static constexpr int kMaxMessage = 256;

  //! A success status.
  Status() noexcept : code_(StatusCode::kSuccess), cuda_error_(cudaSuccess) { message_[0] = '\0'; }

  //! The success status.
  static Status Ok() noexcept { return Status(); }

  //! A status with @p code and a printf-style message.
  static Status Error(StatusCode code, const char* fmt, ...) noexcept
#if defined(__GNUC__)
      __attribute__((format(printf, 2, 3)))
#endif
  {
    Status s;
    s.code_ = code;
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(s.message_, kMaxMessage, fmt, args);
    va_end(args);
    return s;
  }

  //! A kCudaError status for @p err, prefixed with what was being done.
  static Status FromCuda(cudaError_t err, const char* what) noexcept {
    Status s = Error(StatusCode::kCudaError, "%s: %s (%s)", what, cudaGetErrorName(err),
                     cudaGetErrorString(err));
    s.cuda_error_ = err;
    return s;
  }

  //! True on success.
  bool ok() const noexcept { return code_ == StatusCode::kSuccess; }
  //! True on success.
  explicit operator bool() const noexcept { return ok(); }
  //! The code.
  StatusCode code() const noexcept { return code_; }
  //! The CUDA error behind a kCudaError status (cudaSuccess otherwise).
  cudaError_t cuda_error() const noexcept { return cuda_error_; }
  //! The message; empty on success.
  const char* message() const noexcept { return message_; }

 private:
  StatusCode code_;
  cudaError_t cuda_error_;
  char message_[kMaxMessage];
};

//! Name of a status code, for printing.
inline const char* to_string(StatusCode code) noexcept {
  switch (code) {
    case StatusCode::kSuccess: return "success";
    case StatusCode::kInvalidArgument: return "invalid argument";
    case StatusCode::kNotSupported: return "not supported";
    case StatusCode::kCudaError: return "CUDA error";
  }
  return "unknown";
}

SSMKIT_NAMESPACE_END

//! Evaluates a CUDA runtime call; on failure returns a Status naming the call from the
//! enclosing function.
#define SSMKIT_CUDA_TRY(call)                                                                     \
  do {                                                                                            \
    cudaError_t ssmkit_err_ = (call);                                                             \
    if (ssmkit_err_ != cudaSuccess) return ::ssmkit::Status::FromCuda(ssmkit_err_, #call);        \
  } while (0)

//! Evaluates an expression yielding a Status and returns it from the enclosing function on
//! failure.
#define SSMKIT_TRY(expr)                                                                          \
  do {                                                                                            \
    ::ssmkit::Status ssmkit_st_ = (expr);                                                         \
    if (!ssmkit_st_.ok()) return ssmkit_st_;                                                      \
  } while (0)
