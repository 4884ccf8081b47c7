// Validation of a whole store content into a Snapshot: every rule of
// DESIGN.md §2 is checked here, once per change, never per request.
#include "figshift/store/snapshot_builder.hpp"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "figshift/routing.hpp"
#include "figshift/store/kv_map.hpp"
#include "figshift/store/upstream_url.hpp"
#include "store/rollout_keys.hpp"
#include "store/user_keys.hpp"

namespace figshift {
namespace {

constexpr std::size_t max_key_bytes = 512;  // CloudFront KeyValueStore's limits
constexpr std::size_t max_value_bytes = 1024;

[[noreturn]] void bad(const std::string& key, const std::string& why) {
  throw InvalidStore(key + ": " + why);
}

// Control characters: C0 (0x00-0x1F), DEL and C1 (U+0080-U+009F). Refused in
// every key and value: the store's content reaches request lines, Location
// headers, log lines and terminals (`figshift status`), where a CR LF splits a
// message and an ESC or CSI drives the terminal. Expects valid UTF-8.
struct ControlAt {
  std::size_t offset;
  std::string shown;  // \x0d, or U+009B: never the raw character
};

std::optional<ControlAt> find_control(std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef", upper_hex[] = "0123456789ABCDEF";
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F)  // shown as InvalidStore escapes it, so both read alike
      return ControlAt{i, std::string("\\x") + hex[c >> 4] + hex[c & 15]};
    // In valid UTF-8, 0xC2 is always a lead byte; C2 80..C2 9F encode U+0080..U+009F.
    if (c == 0xC2 && i + 1 < text.size()) {
      const auto next = static_cast<unsigned char>(text[i + 1]);
      if (next <= 0x9F)
        return ControlAt{i, std::string("U+00") + upper_hex[next >> 4] + upper_hex[next & 15]};
    }
  }
  return std::nullopt;
}

// `text` in quotes, cut to a readable length on a character boundary.
std::string in_quotes(std::string_view text) {
  constexpr std::size_t limit = 64;
  if (text.size() <= limit) return "\"" + std::string(text) + "\"";
  std::size_t cut = limit;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return "\"" + std::string(text.substr(0, cut)) + "\xE2\x80\xA6\"";
}

bool upstream_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
  return true;
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

// What a URL path holds unencoded (RFC 3986 pchar and '/'): unreserved
// ALPHA DIGIT - . _ ~, sub-delims ! $ & ' ( ) * + , ; = and : @ /. Anything else
// ('?', '#', space, '"', '<', '\\', CR, LF, ...) would end the path, or the
// request line or header the path is written into.
bool url_path_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("-._~!$&'()*+,;=:@/").find(static_cast<char>(c)) !=
             std::string_view::npos;
}

bool hex_digit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Refuses a route prefix or replacement prefix (`what`) that is not a URL path
// starting with '/'. Beyond ASCII, UTF-8 characters are let through as an IRI
// path (RFC 3987) holds them: they cannot end a request line or a header, and
// control characters among them were refused before.
void check_url_path(const std::string& key, const std::string& what, std::string_view path) {
  if (!path.starts_with('/'))
    bad(key, "the " + what + " " + in_quotes(path) + " must start with '/'");
  for (std::size_t i = 0; i < path.size(); ++i) {
    const auto c = static_cast<unsigned char>(path[i]);
    if (c == '%') {
      if (i + 2 >= path.size() || !hex_digit(path[i + 1]) || !hex_digit(path[i + 2]))
        bad(key, "the " + what + " " + in_quotes(path) + " has " + in_quotes(path.substr(i, 3)) +
                     " at byte " + std::to_string(i) +
                     ", which is not a %HH escape ('%' and two hex digits)");
      i += 2;
    } else if (c < 0x80 && !url_path_char(c)) {
      bad(key, "the " + what + " " + in_quotes(path) +
                   " may only hold URL path characters (letters, digits, -._~!$&'()*+,;=:@/ and "
                   "%HH escapes); '" +
                   std::string(1, path[i]) + "' at byte " + std::to_string(i) + " is not one");
    }
  }
}

RouteSpec parse_route(const std::string& key, const std::string& value) {
  RouteSpec spec;
  spec.prefix = key.substr(6);
  check_url_path(key, "prefix", spec.prefix);
  const auto space = value.find(' ');
  spec.upstream = value.substr(0, space);
  if (!upstream_name(spec.upstream))
    bad(key, "value must be \"<NAME>\" or \"<NAME> <replacement-prefix>\" with NAME in [A-Z0-9]+");
  if (space != std::string::npos) {
    std::string replacement = value.substr(space + 1);
    check_url_path(key, "replacement prefix", replacement);
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
  std::optional<std::string> split_text;

  for (const auto& [key, value] : kv) {
    if (key.empty() || key.size() > max_key_bytes)
      bad(key.substr(0, 64), "keys must be 1 to " + std::to_string(max_key_bytes) + " bytes");
    if (value.size() > max_value_bytes)
      bad(key, "values must be at most " + std::to_string(max_value_bytes) + " bytes");
    // The store is JSON on disk and in the API: it can only hold valid UTF-8.
    if (!valid_utf8(key)) bad("(key)", "keys must be valid UTF-8");
    if (!valid_utf8(value)) bad(key, "values must be valid UTF-8");
    if (const auto control = find_control(key))
      bad(key, "keys may not hold control characters (" + control->shown + " at byte " +
                   std::to_string(control->offset) + ")");
    if (const auto control = find_control(value))
      bad(key, "value " + in_quotes(value) + " holds a control character (" + control->shown +
                   " at byte " + std::to_string(control->offset) +
                   "); keys and values may not hold control characters");
    if (key.starts_with("APIGW_") && key.ends_with("_URL") && key.size() > 10) {
      std::string name = key.substr(6, key.size() - 10);
      if (!upstream_name(name)) bad(key, "upstream names must match [A-Z0-9]+");
      s->upstreams.push_back(parse_upstream_url(std::move(name), value));
    } else if (key == "traffic-split") {
      split_text = value;  // its form depends on `buckets`, which may come later
    } else if (key == "user-key") {
      s->user_key = store_keys::parse_user_key(key, value);
    } else if (key.starts_with("pin:")) {
      s->pins.emplace(key.substr(4), store_keys::parse_pin(key, value));
    } else if (key == "buckets") {
      s->buckets = store_keys::parse_buckets(key, value);
    } else if (key == "traffic-ramp") {
      s->ramp = parse_ramp(key, value);
    } else if (key.starts_with("route:")) {
      routes.push_back(parse_route(key, value));
    } else if (key == "legacy-upstream") {
      if (!upstream_name(value)) bad(key, "must be an upstream NAME matching [A-Z0-9]+");
      legacy_name = value;
    } else if (key == "hash-salt") {
      s->salt = value;
    } else if (key == "traffic-plan") {
      s->plan = store_keys::parse_traffic_plan(key, value);
    } else if (key == "guard") {
      s->guard = store_keys::parse_guard(key, value);
    } else if (key == "guard-tripped") {
      store_keys::check_guard_tripped(key, value);
      s->guard_tripped = value;
    } else if (key == "mode") {
      if (value == "proxy")
        s->mode = Mode::proxy;
      else if (value == "redirect")
        s->mode = Mode::redirect;
      else
        bad(key, "must be \"proxy\" or \"redirect\", got \"" + value + "\"");
    } else {
      bad(key,
          "unknown key (expected APIGW_<NAME>_URL, traffic-split, traffic-ramp, "
          "traffic-plan, guard, guard-tripped, route:<prefix>, legacy-upstream, hash-salt, "
          "mode, user-key, pin:<user> or buckets)");
    }
  }
  if (split_text) {
    s->split_hundredths =
        store_keys::parse_split_hundredths("traffic-split", *split_text, s->buckets);
    s->split = s->split_hundredths / 100;
  }
  // Two schedules for one split would disagree; a new one replaces the old.
  if (s->ramp && s->plan)
    bad("traffic-plan",
        "a traffic-ramp is set too: only one of traffic-ramp and traffic-plan "
        "(a shift deletes the plan, a rollout deletes the ramp)");
  // A tripped guard is never silently re-armed: nothing may raise the split
  // until an operator deletes guard-tripped (`figshift guard reset`).
  if (s->guard_tripped && (s->split_hundredths != 0 || s->ramp || s->plan))
    bad("guard-tripped",
        "is set: traffic-split must stay 0, with no traffic-ramp or traffic-plan, "
        "until it is deleted (figshift guard reset)");
  // Key order is not name order ("APIGW_B1_URL" < "APIGW_B_URL"); find() needs name order.
  std::sort(s->upstreams.begin(), s->upstreams.end(),
            [](const Upstream& a, const Upstream& b) { return a.name < b.name; });

  const Upstream* legacy = s->find(legacy_name);
  if (!legacy)
    bad("legacy-upstream",
        "upstream \"" + legacy_name + "\" is not defined (set APIGW_" + legacy_name + "_URL)");
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

int parse_traffic_split(const std::string& text, int buckets) {
  return store_keys::parse_split_hundredths("traffic-split", text, buckets);
}

}  // namespace figshift
