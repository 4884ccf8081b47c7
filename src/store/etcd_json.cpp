// The etcd v3 JSON gateway's messages, built and read (see etcd_json.hpp for
// the encoding rules they follow).
#include "store/etcd_json.hpp"

#include <charconv>
#include <nlohmann/json.hpp>

namespace figshift::etcd {
namespace {

using json = nlohmann::json;

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// An int64 field: a JSON string (protojson) or, leniently, a number; absent is 0.
bool int64_field(const json& object, const char* name, std::int64_t& out) {
  out = 0;
  const auto it = object.find(name);
  if (it == object.end()) return true;
  if (it->is_number_integer()) {
    out = it->get<std::int64_t>();
    return true;
  }
  if (!it->is_string()) return false;
  const auto& text = it->get_ref<const std::string&>();
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

bool bytes_field(const json& object, const char* name, std::string& out) {
  out.clear();
  const auto it = object.find(name);
  if (it == object.end()) return true;
  if (!it->is_string()) return false;
  auto decoded = base64_decode(it->get_ref<const std::string&>());
  if (!decoded) return false;
  out = std::move(*decoded);
  return true;
}

bool bool_field(const json& object, const char* name) {
  const auto it = object.find(name);
  return it != object.end() && it->is_boolean() && it->get<bool>();
}

std::optional<json> parse_object(std::string_view body, std::string& error) {
  json parsed = json::parse(body, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    error = "etcd sent something that is not a JSON object: " +
            std::string(body.substr(0, 200));
    return std::nullopt;
  }
  return parsed;
}

// The revision of a response's "header" (every etcd response carries one).
bool header_revision(const json& object, std::int64_t& out) {
  const auto header = object.find("header");
  return header != object.end() && header->is_object() && int64_field(*header, "revision", out) &&
         out > 0;
}

json range_compare(std::string_view prefix, const char* target, const char* result,
                   const char* field, std::int64_t value) {
  return json{{"key", base64_encode(prefix)},
              {"range_end", base64_encode(prefix_range_end(prefix))},
              {"target", target},
              {"result", result},
              {field, std::to_string(value)}};
}

json put_op(std::string_view prefix, const std::string& key, const std::string& value) {
  return json{{"request_put",
               {{"key", base64_encode(std::string(prefix) + key)}, {"value", base64_encode(value)}}}};
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16 |
                       static_cast<unsigned char>(bytes[i + 1]) << 8 |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (i < bytes.size()) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (const char c : text) {
    int v = -1;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+' || c == '-') v = 62;  // the URL-safe alphabet too
    else if (c == '/' || c == '_') v = 63;
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  if (bits >= 6) return std::nullopt;  // one stray character
  return out;
}

std::string prefix_range_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xFF) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

std::string range_request(std::string_view prefix, bool keys_only) {
  json request{{"key", base64_encode(prefix)}, {"range_end", base64_encode(prefix_range_end(prefix))}};
  if (keys_only) request["keys_only"] = true;
  return request.dump();
}

RangeResult parse_range(std::string_view body, std::string_view prefix, std::string& error) {
  RangeResult out;
  error.clear();
  auto parsed = parse_object(body, error);
  if (!parsed) return out;
  if (!header_revision(*parsed, out.revision)) {
    error = "etcd range response without a header revision";
    return out;
  }
  const auto kvs = parsed->find("kvs");
  if (kvs == parsed->end()) return out;  // no keys: the field is left out
  if (!kvs->is_array()) {
    error = "etcd range response: kvs is not an array";
    return out;
  }
  for (const auto& kv : *kvs) {
    std::string key, value;
    std::int64_t mod = 0;
    if (!kv.is_object() || !bytes_field(kv, "key", key) || !bytes_field(kv, "value", value) ||
        !int64_field(kv, "mod_revision", mod) || !key.starts_with(prefix)) {
      error = "etcd range response: malformed key-value " + kv.dump();
      return out;
    }
    key.erase(0, prefix.size());
    out.mod_revision[key] = mod;
    out.kv[key] = std::move(value);
  }
  return out;
}

std::size_t write_ops(const KvMap& seen, const KvMap& next) {
  std::size_t n = 0;
  for (const auto& [key, value] : next) {
    const auto it = seen.find(key);
    if (it == seen.end() || it->second != value) ++n;
  }
  for (const auto& entry : seen)
    if (!next.count(entry.first)) ++n;
  return n;
}

std::string write_txn(std::string_view prefix, const KvMap& seen, std::int64_t revision,
                      const KvMap& next, std::size_t max_key_checks) {
  json compare = json::array();
  // Nothing under the prefix was written after the revision this replica last saw.
  compare.push_back(range_compare(prefix, "MOD", "LESS", "mod_revision", revision + 1));
  // ... and nothing it saw was deleted since (a missing key has version 0).
  if (seen.size() <= max_key_checks)
    for (const auto& entry : seen)
      compare.push_back(json{{"key", base64_encode(std::string(prefix) + entry.first)},
                             {"target", "VERSION"},
                             {"result", "GREATER"},
                             {"version", "0"}});
  json success = json::array();
  for (const auto& [key, value] : next) {
    const auto it = seen.find(key);
    if (it == seen.end() || it->second != value) success.push_back(put_op(prefix, key, value));
  }
  for (const auto& entry : seen)
    if (!next.count(entry.first))
      success.push_back(json{
          {"request_delete_range", {{"key", base64_encode(std::string(prefix) + entry.first)}}}});
  return json{{"compare", compare}, {"success", success}}.dump();
}

std::string seed_txn(std::string_view prefix, const KvMap& kv) {
  // An empty range compares as one key with every field 0; any existing key
  // has a create_revision of at least 1, so this holds only while the prefix is empty.
  json compare = json::array({range_compare(prefix, "CREATE", "LESS", "create_revision", 1)});
  json success = json::array();
  for (const auto& [key, value] : kv) success.push_back(put_op(prefix, key, value));
  return json{{"compare", compare}, {"success", success}}.dump();
}

TxnResult parse_txn(std::string_view body, std::string& error) {
  TxnResult out;
  error.clear();
  auto parsed = parse_object(body, error);
  if (!parsed) return out;
  if (!header_revision(*parsed, out.revision)) {
    error = "etcd txn response without a header revision";
    return out;
  }
  out.succeeded = bool_field(*parsed, "succeeded");
  return out;
}

std::string watch_request(std::string_view prefix, std::int64_t start_revision) {
  return json{{"create_request",
               {{"key", base64_encode(prefix)},
                {"range_end", base64_encode(prefix_range_end(prefix))},
                {"start_revision", std::to_string(start_revision)}}}}
      .dump();
}

WatchMessage parse_watch_line(std::string_view line, std::string_view prefix, std::string& error) {
  WatchMessage out;
  error.clear();
  auto parsed = parse_object(line, error);
  if (!parsed) return out;
  if (const auto e = parsed->find("error"); e != parsed->end()) {
    error = "etcd watch error: " + error_message(e->dump());
    return out;
  }
  const auto result = parsed->find("result");
  if (result == parsed->end() || !result->is_object()) {
    error = "etcd watch message without a result: " + std::string(line.substr(0, 200));
    return out;
  }
  const json& r = *result;
  // A cancelled watch's header carries no revision (etcd 3.4 leaves it 0, so out).
  const auto header = r.find("header");
  if (header == r.end() || !header->is_object() || !int64_field(*header, "revision", out.revision) ||
      !int64_field(r, "compact_revision", out.compact_revision)) {
    error = "etcd watch message without a valid header: " + std::string(line.substr(0, 200));
    return out;
  }
  out.created = bool_field(r, "created");
  out.canceled = bool_field(r, "canceled");
  if (const auto reason = r.find("cancel_reason"); reason != r.end() && reason->is_string())
    out.cancel_reason = reason->get<std::string>();
  const auto events = r.find("events");
  if (events == r.end()) return out;
  if (!events->is_array()) {
    error = "etcd watch message: events is not an array";
    return out;
  }
  for (const auto& e : *events) {
    WatchEvent event;
    const auto type = e.is_object() ? e.find("type") : e.end();
    event.deleted = type != e.end() && *type == "DELETE";  // PUT is 0: left out
    const auto kv = e.is_object() ? e.find("kv") : e.end();
    if (kv == e.end() || !kv->is_object() || !bytes_field(*kv, "key", event.key) ||
        !bytes_field(*kv, "value", event.value) ||
        !int64_field(*kv, "mod_revision", event.mod_revision) || !event.key.starts_with(prefix)) {
      error = "etcd watch message: malformed event " + e.dump();
      return out;
    }
    event.key.erase(0, prefix.size());
    out.events.push_back(std::move(event));
  }
  return out;
}

std::string auth_request(std::string_view name, std::string_view password) {
  return json{{"name", name}, {"password", password}}.dump();
}

std::string parse_auth(std::string_view body, std::string& error) {
  error.clear();
  auto parsed = parse_object(body, error);
  if (!parsed) return {};
  const auto token = parsed->find("token");
  if (token == parsed->end() || !token->is_string() || token->get_ref<const std::string&>().empty()) {
    error = "etcd authenticate response without a token";
    return {};
  }
  return token->get<std::string>();
}

std::string error_message(std::string_view body) {
  json parsed = json::parse(body, nullptr, false);
  if (parsed.is_object()) {
    for (const char* field : {"message", "error"}) {
      const auto it = parsed.find(field);
      if (it != parsed.end() && it->is_string()) return it->get<std::string>();
    }
  }
  return std::string(body.substr(0, 200));
}

}  // namespace figshift::etcd
