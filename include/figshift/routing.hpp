#pragma once
// The routing rule of docs/design.md §1: pure functions over an immutable Snapshot.
// Thread-safety: every function here is pure; a Snapshot is immutable once
// built and may be read from any number of threads. Nothing here does I/O.
// Lifetime: a Decision points into the Snapshot it was decided from, which
// must outlive it.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace figshift {

// An upstream API as the store defines it (`APIGW_<NAME>_URL`), parsed once.
struct Upstream {
  std::string name;         // "A", "B1", ...
  std::string url;          // as written in the store
  bool tls = false;         // https://
  std::string host;         // host name or IP literal, without brackets
  std::uint16_t port = 0;   // explicit or the scheme's default
  std::string host_header;  // what goes into Host: host, or host:port when not default
  std::string base_path;    // "" or "/prod" (never ends with '/')
  std::string origin;       // "https://host:port": the connection pool key
};

struct Route {
  std::string prefix;                      // "/orders"; "/" matches every path
  std::size_t upstream = 0;                // index into Snapshot::upstreams
  std::optional<std::string> replacement;  // replaces the prefix when set
};

// Longest segment-boundary prefix match: "/orders" matches "/orders" and
// "/orders/7", not "/ordersx".
class RouteTable {
 public:
  RouteTable() = default;
  explicit RouteTable(std::vector<Route> routes);
  const Route* match(std::string_view path) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;  // longest prefix first
};

struct Ramp {
  int from = 0;
  int to = 0;
  std::int64_t start_ms = 0;
  std::int64_t duration_ms = 0;
};

// Where a ramp stands at `now_ms`, for the status API and the metrics.
struct RampProgress {
  std::int64_t elapsed_ms = 0;    // 0 before the start, at most duration_ms
  std::int64_t remaining_ms = 0;  // duration_ms - elapsed_ms
  double fraction = 1.0;          // elapsed / duration; 1 for a ramp of no duration
  bool active = false;            // now_ms < start_ms + duration_ms
};
RampProgress ramp_progress(const Ramp& ramp, std::int64_t now_ms);

// The split at `now_ms`: `split` without a ramp; during a ramp
// from + (to - from) * elapsed / duration, floored, clamped to the ramp's ends.
int split_at(int split, const std::optional<Ramp>& ramp, std::int64_t now_ms);

// A guarded rollout (`traffic-plan`, issue #16): from `from`, each step ramps
// linearly to `to` over `over_ms`, then holds for `hold_ms`; the last level
// stays once every step is done. Like a ramp it is data plus the wall clock,
// so every replica computes the same split with no leader.
struct PlanStep {
  int to = 0;
  std::int64_t over_ms = 0;
  std::int64_t hold_ms = 0;  // the last step's hold: how long it is shown as holding
};
struct TrafficPlan {
  int from = 0;  // the split when the plan was written
  std::int64_t start_ms = 0;
  std::vector<PlanStep> steps;  // never empty; `to` never decreases (validated by the store)
};

// Where a plan stands at `now_ms`.
struct PlanProgress {
  int split = 0;                 // the split now
  std::size_t step = 0;          // the current step (index); steps.size() once done
  bool holding = false;          // ramped to the step's `to`, holding it
  bool done = false;             // every step ramped and held
  std::int64_t step_start_ms = 0;  // when the current step's ramp began
  std::int64_t next_change_ms = 0;  // when the current phase ends (0 once done)
};
PlanProgress plan_progress(const TrafficPlan& plan, std::int64_t now_ms);

// Thresholds of `guard` (issue #16): over the last `window_s`, the requests of
// the new group that reached one new upstream must keep their error ratio
// (5xx, the proxy's own 502/504 included) and p99 latency under these.
struct Guard {
  std::optional<double> max_error_ratio;
  std::optional<std::int64_t> max_p99_ms;
  std::int64_t window_s = 30;
  std::int64_t min_requests = 100;  // fewer in the window: no verdict
  bool relative_to_legacy = false;  // the error ratio above the legacy group's
  bool operator==(const Guard&) const = default;
};

enum class Mode { proxy, redirect };

enum class Group { legacy, migrated };

// Who is the user (`user-key`, #17): which part of a request names the user
// whose key value is hashed into a bucket. `name` is the header name, the
// cookie name or the JWT claim ("sub" for plain `jwt`); empty for basic.
struct UserKey {
  enum class Kind { basic, header, cookie, jwt };
  Kind kind = Kind::basic;
  std::string name;
  bool operator==(const UserKey&) const = default;
};

// Immutable routing configuration, validated and built by the store.
struct Snapshot {
  std::vector<Upstream> upstreams;  // sorted by name
  std::size_t legacy = 0;           // index of the legacy upstream
  RouteTable routes;
  int split = 0;  // traffic-split
  std::optional<Ramp> ramp;
  std::optional<TrafficPlan> plan;   // traffic-plan; never together with a ramp
  std::optional<Guard> guard;        // guard
  std::optional<std::string> guard_tripped;  // guard-tripped, as stored (JSON)
  UserKey user_key;                          // user-key (#17); basic by default
  // pin:<user> (#17): key values that go to one group whatever the split.
  std::map<std::string, Group, std::less<>> pins;
  int buckets = 100;  // buckets (#17): 100 (the sample's) or 10000
  // traffic-split in hundredths of a point (#17): 25 for "0.25", 5000 for "50";
  // `split` is its whole part, for everything that shows a percentage.
  int split_hundredths = 0;
  std::string salt;              // hash-salt (UTF-8)
  std::int32_t salt_seed = 0;    // java_hash_code(utf16(salt)), so requests hash only the user
  Mode mode = Mode::proxy;
  std::uint64_t version = 0;     // store version this was built from
  std::string etag;

  int split_at(std::int64_t now_ms) const {
    return plan ? plan_progress(*plan, now_ms).split : figshift::split_at(split, ramp, now_ms);
  }
  // The split now in hundredths of a point (#17): split_at(now_ms) * 100 with
  // 100 buckets; with 10000 a ramp or a plan moves in whole points, and once a
  // ramp is over the stored (possibly finer) split holds.
  int split_hundredths_at(std::int64_t now_ms) const;
  // The bucket threshold now: users in buckets below it are migrated. In
  // 100-bucket mode exactly split_at(now_ms), the sample's rule.
  int threshold_at(std::int64_t now_ms) const {
    return buckets == 100 ? split_at(now_ms) : split_hundredths_at(now_ms);
  }
  const Upstream* find(std::string_view name) const;
};

// ASCII case-insensitive equality (HTTP auth schemes, header and cookie names).
bool iequals_ascii(std::string_view a, std::string_view b);

// RFC 7617 Basic credentials -> the raw (undecoded UTF-8) username bytes, or
// nullopt for anonymous: no header, another scheme, bad base64, no ':'.
std::optional<std::string> basic_auth_username(std::string_view authorization);

// The first UTF-8 sequence of `bytes` (not empty), read as the WHATWG
// decoder reads it: a well-formed sequence (`valid`, `length` 1 to 4), or the
// maximal subpart of an ill-formed one (not `valid`, `length` at least 1: the
// bytes one U+FFFD stands for). Well-formed excludes overlongs, surrogates and
// code points above U+10FFFF.
struct Utf8Sequence {
  char32_t code_point = 0;  // when valid
  std::size_t length = 1;
  bool valid = false;
};
Utf8Sequence decode_utf8(std::string_view bytes);

// Whether every sequence of `bytes` is well-formed UTF-8.
bool valid_utf8(std::string_view bytes);

// WHATWG UTF-8 decode (U+FFFD per maximal subpart) into UTF-16 code units.
std::u16string utf8_to_utf16(std::string_view bytes);

// Java String.hashCode over UTF-16 code units, continuing from `seed`
// (hash(a + b) == java_hash_code(b, java_hash_code(a))).
std::int32_t java_hash_code(std::u16string_view units, std::int32_t seed = 0);

// (h + 2^31) mod 100, in 64-bit.
int bucket_of_hash(std::int32_t h);
// (h + 2^31) mod `buckets` (100 or 10000, #17), in 64-bit.
int bucket_of_hash(std::int32_t h, int buckets);

// Bucket of a username given as UTF-8 bytes, with the salt prepended.
int bucket_of(std::string_view username_utf8, std::string_view salt_utf8 = {});

struct RequestHead {
  std::string_view target;         // request-target as received (origin or absolute form)
  std::string_view authorization;  // empty when absent
  // For a user-key other than basic (#17), what the caller read for it:
  // header:<Name> the header's value, cookie:<name> the Cookie header, jwt the
  // claim of a token whose signature and claims the caller verified
  // (figshift/identity.hpp). nullopt when absent, repeated or not verified.
  std::optional<std::string_view> user_field;
};

// The user-key value of a request (#17), or nullopt for anonymous. Basic:
// the username of basic_auth_username; header: the field without surrounding
// whitespace; cookie: cookie_value of the field; jwt: the field as given.
// An empty value is anonymous. `scratch` holds the bytes when they are decoded.
std::optional<std::string_view> user_key_value(const RequestHead& head, const UserKey& key,
                                               std::string& scratch);

// The value of cookie `name` in a Cookie header (RFC 6265 §4.2.1:
// "a=1; b=2"), quotes around it removed; nullopt when absent or given twice
// (two values would let the client choose). Pairs without '=' are skipped.
std::optional<std::string_view> cookie_value(std::string_view cookie_header, std::string_view name);

// A 64-bit hash of a user-key value for counting unique users (#17): never
// stored with the value; salted with the snapshot's salt seed. Never 0.
std::uint64_t user_count_hash(std::string_view value, std::int32_t salt_seed);

struct Decision {
  Group group = Group::legacy;
  int bucket = -1;                     // -1: anonymous
  bool pinned = false;                 // a pin:<user> chose the group (#17)
  std::uint64_t user_hash = 0;         // user_count_hash of the user; 0: anonymous
  const Upstream* upstream = nullptr;  // points into the Snapshot
  std::string target;                  // base path + (rewritten) path + "?" query
};

// The whole rule. `now_ms` is Unix time in milliseconds (ramps are wall-clock data).
Decision decide(const RequestHead& head, const Snapshot& snapshot, std::int64_t now_ms);

// "/prod" + "/orders/7" -> "/prod/orders/7", never doubling or dropping the '/'.
std::string join_path(std::string_view base, std::string_view path);

// The path and query of a request-target: the origin form as is, the absolute
// form ("http://host/p?q", RFC 9112 §3.2.2) without scheme and authority.
struct PathAndQuery {
  std::string_view path;                  // "/" when the target has none
  std::optional<std::string_view> query;  // set when the target had a '?', even an empty one
};
PathAndQuery split_target(std::string_view target);

// Why a request path is refused, or "" when it is routable. Refused: a
// backslash (raw or %5C), an encoded slash (%2F) or NUL (%00), those or a dot
// encoded twice (%252E, %252F, %255C, %2500), and a dot segment with
// parameters ("..;", ".;x", also spelled with %2E and %3B). Upstreams disagree
// on what these mean (Tomcat and Spring read "..;" as "..", IIS reads '\' as
// '/', many decode %2F before routing), so any of them could climb out of a
// route's rewritten prefix there after figshift routed it.
std::string_view path_problem(std::string_view path);

// RFC 3986 dot-segment removal ("/a/./b/../c" -> "/a/c"), with "%2e" taken as
// '.', so a path cannot climb out of a route's prefix on the upstream.
std::string normalize_path(std::string_view path);

}  // namespace figshift
