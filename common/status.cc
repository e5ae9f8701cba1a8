#include "common/status.h"

namespace deepfm {

std::string Status::ToString() const {
  if (ok()) return "OK";
  const char* name = "UNKNOWN";
  switch (code_) {
    case Code::kOk: name = "OK"; break;
    case Code::kInvalidArgument: name = "INVALID_ARGUMENT"; break;
    case Code::kNotFound: name = "NOT_FOUND"; break;
    case Code::kAlreadyExists: name = "ALREADY_EXISTS"; break;
    case Code::kFailedPrecondition: name = "FAILED_PRECONDITION"; break;
    case Code::kAborted: name = "ABORTED"; break;
    case Code::kUnimplemented: name = "UNIMPLEMENTED"; break;
    case Code::kInternal: name = "INTERNAL"; break;
    case Code::kUnavailable: name = "UNAVAILABLE"; break;
    case Code::kDataLoss: name = "DATA_LOSS"; break;
  }
  return std::string(name) + ": " + message_;
}

}  // namespace deepfm
