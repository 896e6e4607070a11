#include "varve/status.h"

namespace varve {

std::string Status::ToString() const {
  const char* name = "OK";
  switch (code_) {
    case Code::kOk: return "OK";
    case Code::kNotFound: name = "NotFound"; break;
    case Code::kCorruption: name = "Corruption"; break;
    case Code::kIOError: name = "IOError"; break;
    case Code::kInvalidArgument: name = "InvalidArgument"; break;
    case Code::kNotSupported: name = "NotSupported"; break;
    case Code::kBusy: name = "Busy"; break;
    case Code::kAborted: name = "Aborted"; break;
  }
  if (message_.empty()) return name;
  return std::string(name) + ": " + message_;
}

}  // namespace varve
