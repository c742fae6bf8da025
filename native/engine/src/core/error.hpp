// Errors inside the engine are C++ exceptions carrying an lcx_status; the C API (api.cpp)
// catches every one of them, stores the message for lcx_last_error() and returns the status.
// Nothing in the engine may call exit() or abort(): the engine lives inside the app's worker.
#pragma once
#include <cstdarg>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "longctx.h"

namespace lcx {

class Error : public std::runtime_error {
 public:
  Error(lcx_status status, const std::string& msg) : std::runtime_error(msg), status_(status) {}
  lcx_status status() const { return status_; }

 private:
  lcx_status status_;
};

// printf-style throw: fail(LCX_ERR_SHAPE, "%s: tensor %s is %dx%d, expected %dx%d", ...)
[[noreturn]] inline void fail(lcx_status status, const char* fmt, ...)
    __attribute__((format(printf, 2, 3)));
[[noreturn]] inline void fail(lcx_status status, const char* fmt, ...) {
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  throw Error(status, buf);
}

}  // namespace lcx
