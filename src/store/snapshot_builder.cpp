// Validation of a whole store content into a Snapshot: every rule of
// DESIGN.md §2 is checked here, once per change, never per request.
#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

#include "figshift/store.hpp"

namespace figshift {
namespace {

constexpr std::size_t max_key_bytes = 512;     // CloudFront KeyValueStore's limits
constexpr std::size_t max_value_bytes = 1024;

[[noreturn]] void bad(const std::string& key, const std::string& why) {
  throw InvalidStore(key + ": " + why);
}

// The store is JSON on disk and in the API: it can only hold valid UTF-8.
bool valid_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (length == 0 || i + length > text.size()) return false;
    std::uint32_t code = length == 1 ? c : c & (0xff >> (length + 1));
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0) != 0x80) return false;
      code = (code << 6) | (next & 0x3f);
    }
    static constexpr std::uint32_t min_for_length[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < min_for_length[length] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
      return false;  // overlong, out of range, or a surrogate
    i += length;
  }
  return true;
}

bool upstream_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
  return true;
}

int percent(const std::string& key, std::string_view text) {
  int value = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < 0 ||
      value > 100)
    bad(key, "must be an integer from 0 to 100, got \"" + std::string(text) + "\"");
  return value;
}

Ramp parse_ramp(const std::string& key, const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {  // also out_of_range: a huge number
    bad(key, "must be JSON {\"from\",\"to\",\"start_ms\",\"duration_ms\"}");
  }
  if (!j.is_object()) bad(key, "must be a JSON object");
  auto field = [&](const char* name, std::int64_t min, std::int64_t max) {
    auto it = j.find(name);
    if (it == j.end() || !it->is_number_integer())
      bad(key, std::string("\"") + name + "\" must be an integer");
    auto v = it->get<std::int64_t>();
    if (v < min || v > max)
      bad(key, std::string("\"") + name + "\" must be between " + std::to_string(min) + " and " +
                   std::to_string(max));
    return v;
  };
  for (const auto& [name, _] : j.items())
    if (name != "from" && name != "to" && name != "start_ms" && name != "duration_ms")
      bad(key, "unknown field \"" + name + "\"");
  Ramp r;
  r.from = static_cast<int>(field("from", 0, 100));
  r.to = static_cast<int>(field("to", 0, 100));
  r.start_ms = field("start_ms", 0, 253402300799999);  // up to year 9999
  r.duration_ms = field("duration_ms", 0, 366LL * 24 * 3600 * 1000);
  return r;
}

struct RouteSpec {
  std::string prefix, upstream;
  std::optional<std::string> replacement;
};

RouteSpec parse_route(const std::string& key, const std::string& value) {
  RouteSpec spec;
  spec.prefix = key.substr(6);
  if (!spec.prefix.starts_with('/')) bad(key, "the prefix must start with '/'");
  if (spec.prefix.find_first_of("?# \t") != std::string::npos)
    bad(key, "the prefix must be a plain path (no query, fragment or spaces)");
  const auto space = value.find(' ');
  spec.upstream = value.substr(0, space);
  if (!upstream_name(spec.upstream))
    bad(key, "value must be \"<NAME>\" or \"<NAME> <replacement-prefix>\" with NAME in [A-Z0-9]+");
  if (space != std::string::npos) {
    std::string replacement = value.substr(space + 1);
    if (!replacement.starts_with('/') || replacement.find_first_of("?# \t") != std::string::npos)
      bad(key, "the replacement prefix must be a plain path starting with '/'");
    spec.replacement = std::move(replacement);
  }
  return spec;
}

}  // namespace

std::shared_ptr<const Snapshot> build_snapshot(const KvMap& kv, std::uint64_t version,
                                               std::string etag) {
  auto s = std::make_shared<Snapshot>();
  s->version = version;
  s->etag = std::move(etag);
  std::string legacy_name = "A";
  std::vector<RouteSpec> routes;

  for (const auto& [key, value] : kv) {
    if (key.empty() || key.size() > max_key_bytes)
      bad(key.substr(0, 64), "keys must be 1 to " + std::to_string(max_key_bytes) + " bytes");
    if (value.size() > max_value_bytes)
      bad(key, "values must be at most " + std::to_string(max_value_bytes) + " bytes");
    if (!valid_utf8(key)) bad("(key)", "keys must be valid UTF-8");
    if (!valid_utf8(value)) bad(key, "values must be valid UTF-8");
    if (key.starts_with("APIGW_") && key.ends_with("_URL") && key.size() > 10) {
      std::string name = key.substr(6, key.size() - 10);
      if (!upstream_name(name)) bad(key, "upstream names must match [A-Z0-9]+");
      s->upstreams.push_back(parse_upstream_url(std::move(name), value));
    } else if (key == "traffic-split") {
      s->split = percent(key, value);
    } else if (key == "traffic-ramp") {
      s->ramp = parse_ramp(key, value);
    } else if (key.starts_with("route:")) {
      routes.push_back(parse_route(key, value));
    } else if (key == "legacy-upstream") {
      if (!upstream_name(value)) bad(key, "must be an upstream NAME matching [A-Z0-9]+");
      legacy_name = value;
    } else if (key == "hash-salt") {
      s->salt = value;
    } else if (key == "mode") {
      if (value == "proxy")
        s->mode = Mode::proxy;
      else if (value == "redirect")
        s->mode = Mode::redirect;
      else
        bad(key, "must be \"proxy\" or \"redirect\", got \"" + value + "\"");
    } else {
      bad(key, "unknown key (expected APIGW_<NAME>_URL, traffic-split, traffic-ramp, "
               "route:<prefix>, legacy-upstream, hash-salt or mode)");
    }
  }
  // Key order is not name order ("APIGW_B1_URL" < "APIGW_B_URL"); find() needs name order.
  std::sort(s->upstreams.begin(), s->upstreams.end(),
            [](const Upstream& a, const Upstream& b) { return a.name < b.name; });

  const Upstream* legacy = s->find(legacy_name);
  if (!legacy)
    bad("legacy-upstream", "upstream \"" + legacy_name + "\" is not defined (set APIGW_" +
                               legacy_name + "_URL)");
  s->legacy = static_cast<std::size_t>(legacy - s->upstreams.data());

  std::vector<Route> compiled;
  for (auto& spec : routes) {
    const Upstream* target = s->find(spec.upstream);
    if (!target)
      bad("route:" + spec.prefix, "upstream \"" + spec.upstream + "\" is not defined (set APIGW_" +
                                      spec.upstream + "_URL)");
    compiled.push_back(Route{std::move(spec.prefix),
                             static_cast<std::size_t>(target - s->upstreams.data()),
                             std::move(spec.replacement)});
  }
  s->routes = RouteTable(std::move(compiled));
  s->salt_seed = java_hash_code(utf8_to_utf16(s->salt));
  return s;
}

}  // namespace figshift
