// The CloudFront KeyValueStore import file format, and the store's ETag.
#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include "figshift/routing.hpp"
#include "figshift/store/kv_map.hpp"
#include "figshift/store/kvs_format.hpp"

namespace figshift {
namespace {

std::string printable(std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const auto c = static_cast<unsigned char>(text[0]);
    const Utf8Sequence sequence = decode_utf8(text);
    const std::size_t n = sequence.length;
    // C1 controls (U+0080..U+009F, C2 80..C2 9F) too: U+009B is CSI to some terminals.
    const bool c1 =
        sequence.valid && n == 2 && c == 0xC2 && static_cast<unsigned char>(text[1]) <= 0x9F;
    if (!sequence.valid || c < 0x20 || c == 0x7F || c1) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
      text.remove_prefix(1);
    } else {
      out.append(text.substr(0, n));
      text.remove_prefix(n);
    }
  }
  return out;
}

}  // namespace

InvalidStore::InvalidStore(const std::string& message) : std::runtime_error(printable(message)) {}

KvMap parse_kvs_json(std::string_view text) {
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range (406) for a huge number
    throw InvalidStore(std::string("not valid JSON: ") + e.what());
  }
  if (!root.is_object() || !root.contains("data") || !root["data"].is_array())
    throw InvalidStore("expected a KeyValueStore import file {\"data\":[{\"key\":…,\"value\":…}]}");
  for (const auto& [name, _] : root.items())
    if (name != "data") throw InvalidStore("unknown top-level field \"" + name + "\"");
  KvMap kv;
  std::size_t index = 0;
  for (const auto& item : root["data"]) {
    const std::string where = "data[" + std::to_string(index++) + "]";
    if (!item.is_object() || !item.contains("key") || !item.contains("value") ||
        !item["key"].is_string() || !item["value"].is_string() || item.size() != 2)
      throw InvalidStore(where + ": must be {\"key\": string, \"value\": string}");
    auto key = item["key"].get<std::string>();
    if (!kv.emplace(key, item["value"].get<std::string>()).second)
      throw InvalidStore(where + ": duplicate key \"" + key + "\"");
  }
  return kv;
}

std::string to_kvs_json(const KvMap& kv) {
  nlohmann::ordered_json data = nlohmann::ordered_json::array();
  for (const auto& [key, value] : kv) data.push_back({{"key", key}, {"value", value}});
  return nlohmann::ordered_json{{"data", std::move(data)}}.dump(2) + "\n";
}

std::string etag_of(const KvMap& kv) {
  // Length-prefixed so that no two different contents serialise alike.
  std::string canonical;
  for (const auto& [key, value] : kv) {
    canonical += std::to_string(key.size()) + ":" + key;
    canonical += std::to_string(value.size()) + ":" + value;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(canonical.data(), canonical.size(), digest, &size, EVP_sha256(), nullptr);
  static constexpr char hex[] = "0123456789abcdef";
  std::string tag = "\"";
  for (unsigned i = 0; i < 10; ++i) {
    tag += hex[digest[i] >> 4];
    tag += hex[digest[i] & 15];
  }
  return tag + "\"";
}

}  // namespace figshift
