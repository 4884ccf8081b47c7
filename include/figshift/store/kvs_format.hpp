#pragma once
// The CloudFront KeyValueStore import file format, read and written, and the
// store's content hash (ETag). Thread-safety: pure functions, no shared state.

#include <string>
#include <string_view>

#include "figshift/store/kv_map.hpp"

namespace figshift {

// CloudFront KeyValueStore import file: {"data":[{"key":"…","value":"…"}]}.
KvMap parse_kvs_json(std::string_view text);  // throws InvalidStore
std::string to_kvs_json(const KvMap& kv);     // stable, pretty-printed

// Content hash of a store, quoted as an HTTP entity tag.
std::string etag_of(const KvMap& kv);

}  // namespace figshift
