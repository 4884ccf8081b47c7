#pragma once
// The etcd v3 JSON gateway's wire format (api/etcdserverpb/rpc.proto through
// grpc-gateway): int64 fields are JSON strings, bytes are base64, fields with
// their zero value are left out (a PUT event has no "type", a first revision's
// "created" may be absent), and each watch message is {"result": {...}} or
// {"error": {...}} on its own line. Pure functions: no I/O, no shared state;
// a malformed message gives an error string, never an exception.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "figshift/store/kv_map.hpp"

namespace figshift::etcd {

std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

// The end of the key range holding every key that starts with `prefix`
// (the prefix with its last byte incremented, as etcdctl --prefix does).
std::string prefix_range_end(std::string_view prefix);

// A range read of everything under the prefix (keys_only: no values, for the heartbeat).
std::string range_request(std::string_view prefix, bool keys_only);

struct RangeResult {
  std::int64_t revision = 0;                     // the cluster's revision at the read
  KvMap kv;                                      // store keys (prefix removed) -> values
  std::map<std::string, std::int64_t> mod_revision;  // store key -> its mod_revision
};
// `error` is set (and the result meaningless) when the body is not a range response.
RangeResult parse_range(std::string_view body, std::string_view prefix, std::string& error);

// A write of `next` over `seen` (etcd's content at `revision`) as one
// transaction: it succeeds only when no key under the prefix was modified or
// created after `revision` (a Compare on the whole range) and every key of
// `seen` still exists (a deleted key has no mod_revision left to compare).
// Per-key existence checks are made for at most `max_key_checks` keys (etcd
// allows 128 compares per transaction by default).
std::string write_txn(std::string_view prefix, const KvMap& seen, std::int64_t revision,
                      const KvMap& next, std::size_t max_key_checks = 100);
// Puts every key only while nothing at all exists under the prefix.
std::string seed_txn(std::string_view prefix, const KvMap& kv);
// Number of put and delete operations write_txn would send.
std::size_t write_ops(const KvMap& seen, const KvMap& next);

struct TxnResult {
  bool succeeded = false;
  std::int64_t revision = 0;
};
TxnResult parse_txn(std::string_view body, std::string& error);

struct WatchEvent {
  bool deleted = false;
  std::string key;  // store key (prefix removed)
  std::string value;
  std::int64_t mod_revision = 0;
};
struct WatchMessage {
  std::int64_t revision = 0;  // header.revision
  bool created = false;
  bool canceled = false;
  std::int64_t compact_revision = 0;
  std::string cancel_reason;
  std::vector<WatchEvent> events;
};
std::string watch_request(std::string_view prefix, std::int64_t start_revision);
// One line of the watch stream. {"error": …} gives `error` with etcd's message.
WatchMessage parse_watch_line(std::string_view line, std::string_view prefix, std::string& error);

// POST /v3/auth/authenticate: the request, and the token from its answer.
std::string auth_request(std::string_view name, std::string_view password);
std::string parse_auth(std::string_view body, std::string& error);

// etcd's own message from an error body ({"error": "...", "message": "..."}), else the body.
std::string error_message(std::string_view body);

}  // namespace figshift::etcd
