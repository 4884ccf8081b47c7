#pragma once
// The store's content (KvMap) and the error every rule of it throws
// (InvalidStore). Thread-safety: plain values; no shared state.

#include <map>
#include <stdexcept>
#include <string>

namespace figshift {

// The whole content of the routing store: key -> value, both UTF-8.
using KvMap = std::map<std::string, std::string>;

// A store content that breaks a rule; what() names the key and the reason.
// The message quotes keys and values as sent, so control bytes (C0, DEL, and
// the two bytes of a C1 control) and bytes that are not UTF-8 are shown as
// \xNN: it goes into logs, terminals and JSON error bodies, and a NUL would
// otherwise end what() where it starts.
struct InvalidStore : std::runtime_error {
  explicit InvalidStore(const std::string& message);
};

}  // namespace figshift
