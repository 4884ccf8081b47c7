#pragma once
// Validation of a whole store content into an immutable routing Snapshot
// (docs/design.md §2). Thread-safety: a pure function; the Snapshot it returns
// is immutable and may be shared between threads.

#include <cstdint>
#include <memory>
#include <string>

#include "figshift/routing.hpp"
#include "figshift/store/kv_map.hpp"

namespace figshift {

// Validates a whole store content. Throws InvalidStore. Beyond the rules of
// each key: no key or value may hold a control character (C0, DEL, C1), and
// route prefixes and replacement prefixes are URL paths starting with '/'
// (RFC 3986 pchar and '/', %HH escapes well formed, UTF-8 beyond ASCII allowed).
std::shared_ptr<const Snapshot> build_snapshot(const KvMap& kv, std::uint64_t version = 0,
                                               std::string etag = {});

// A `traffic-split` value as the store reads it, in hundredths of a point:
// with 100 buckets an integer 0..100, with 10000 up to two decimals. Throws
// InvalidStore naming the key (for `figshift bucket --split`).
int parse_traffic_split(const std::string& text, int buckets);

}  // namespace figshift
