// render_prometheus: the text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/) of given
// counters. The output is read back with a parser written from that format
// (label order is free, label values are escaped), so the checks are on
// samples, not on how the lines happen to be laid out.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "figshift/routing.hpp"
#include "figshift/telemetry/prometheus.hpp"
#include "figshift/telemetry/stats.hpp"

namespace figshift {
namespace {

using Labels = std::map<std::string, std::string>;

struct Sample {
  std::string name;
  Labels labels;
  std::string value;  // as written
};

struct Exposition {
  std::vector<Sample> samples;
  std::map<std::string, std::string> types;  // family -> counter, gauge, histogram, …
  std::vector<std::string> problems;          // lines that break the format
};

// metric_name [ "{" label_name "=" `"` label_value `"` { "," … } [ "," ] "}" ] value
// with label_value escapes \\ \" \n.
std::optional<Sample> parse_sample(const std::string& line) {
  Sample s;
  std::size_t i = 0;
  while (i < line.size() && (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_' ||
                             line[i] == ':'))
    s.name += line[i++];
  if (s.name.empty() || std::isdigit(static_cast<unsigned char>(s.name[0]))) return std::nullopt;
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      std::string label;
      while (i < line.size() && (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_'))
        label += line[i++];
      if (label.empty() || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"')
        return std::nullopt;
      i += 2;
      std::string value;
      for (;; ++i) {
        if (i >= line.size()) return std::nullopt;
        const char c = line[i];
        if (c == '"') break;
        if (c == '\\') {
          if (++i >= line.size()) return std::nullopt;
          if (line[i] == 'n')
            value += '\n';
          else if (line[i] == '\\' || line[i] == '"')
            value += line[i];
          else
            return std::nullopt;  // no other escape exists
        } else {
          value += c;
        }
      }
      ++i;  // the closing quote
      if (!s.labels.emplace(label, value).second) return std::nullopt;  // a label twice
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return std::nullopt;
    ++i;  // '}'
  }
  if (i >= line.size() || line[i] != ' ') return std::nullopt;
  s.value = line.substr(i + 1);
  if (s.value.empty() || s.value.find(' ') != std::string::npos) return std::nullopt;  // no timestamps here
  return s;
}

Exposition parse(const std::string& text) {
  Exposition e;
  if (text.empty() || text.back() != '\n') e.problems.push_back("the last line does not end in \\n");
  std::istringstream in(text);
  std::string line;
  std::set<std::string> seen_families;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string family, type;
      words >> family >> type;
      if (!e.types.emplace(family, type).second) e.problems.push_back("TYPE twice: " + line);
      continue;
    }
    if (line[0] == '#') continue;  // HELP and comments
    auto sample = parse_sample(line);
    if (!sample) {
      e.problems.push_back("unparsable: " + line);
      continue;
    }
    e.samples.push_back(*sample);
  }
  return e;
}

// The one sample with this name and exactly these labels.
std::optional<std::string> value_of(const Exposition& e, const std::string& name, const Labels& labels = {}) {
  std::optional<std::string> found;
  for (const auto& s : e.samples)
    if (s.name == name && s.labels == labels) {
      if (found) ADD_FAILURE() << "two samples " << name;
      found = s.value;
    }
  return found;
}

Upstream upstream(const std::string& name) {
  Upstream u;
  u.name = name;
  u.url = "http://" + name + ".example";
  return u;
}

Snapshot snapshot_of(std::vector<std::string> names, int split) {
  Snapshot s;
  for (const auto& n : names) s.upstreams.push_back(upstream(n));
  s.split = split;
  return s;
}

constexpr std::size_t connect_kind = static_cast<std::size_t>(UpstreamErrorKind::connect);

TEST(TelemetryPrometheus, RequestCountersByUpstreamGroupAndStatusClass) {
  TrafficStats stats;
  stats.upstreams["A"].responses[0][1] = 5;   // legacy, 2xx
  stats.upstreams["B1"].responses[1][1] = 3;  // new, 2xx
  stats.upstreams["B1"].responses[1][4] = 2;  // new, 5xx
  stats.upstreams["B1"].errors[connect_kind] = 2;
  const auto e = parse(render_prometheus(stats, snapshot_of({"A", "B1"}, 40), {}, 0));
  ASSERT_EQ(e.problems, std::vector<std::string>{});

  EXPECT_EQ(e.types.at("figshift_requests_total"), "counter");
  auto requests = [&](const char* up, const char* group, const char* code) {
    return value_of(e, "figshift_requests_total", {{"upstream", up}, {"group", group}, {"code", code}});
  };
  EXPECT_EQ(requests("A", "legacy", "2xx"), "5");
  EXPECT_EQ(requests("B1", "new", "2xx"), "3");
  EXPECT_EQ(requests("B1", "new", "5xx"), "2");
  EXPECT_EQ(requests("A", "new", "2xx"), "0");
  EXPECT_EQ(requests("B1", "legacy", "5xx"), "0");
  // Every group and status class of every upstream is a series (no gaps for rate()).
  std::size_t series = 0;
  for (const auto& s : e.samples)
    if (s.name == "figshift_requests_total") ++series;
  EXPECT_EQ(series, 2u * 2u * 5u);

  EXPECT_EQ(e.types.at("figshift_upstream_errors_total"), "counter");
  EXPECT_EQ(value_of(e, "figshift_upstream_errors_total", {{"upstream", "B1"}, {"kind", "connect"}}), "2");
  EXPECT_EQ(value_of(e, "figshift_upstream_errors_total", {{"upstream", "A"}, {"kind", "connect"}}), "0");
}

TEST(TelemetryPrometheus, AConfiguredUpstreamWithoutTrafficIsAZeroNotAMissingSeries) {
  TrafficStats stats;
  stats.upstreams["A"].responses[0][1] = 1;
  const auto e = parse(render_prometheus(stats, snapshot_of({"A", "B2"}, 0), {}, 0));
  ASSERT_EQ(e.problems, std::vector<std::string>{});
  EXPECT_EQ(value_of(e, "figshift_requests_total", {{"upstream", "B2"}, {"group", "new"}, {"code", "2xx"}}),
            "0");
  EXPECT_EQ(value_of(e, "figshift_upstream_latency_seconds_count", {{"upstream", "B2"}}), "0");
}

TEST(TelemetryPrometheus, LatencyHistogramBucketsAreCumulative) {
  TrafficStats stats;
  auto& latency = stats.upstreams["B1"].latency;
  for (double seconds : {0.0005, 0.001, 0.003, 0.3, 7.0}) latency.observe(seconds);
  const auto e = parse(render_prometheus(stats, snapshot_of({"B1"}, 0), {}, 0));
  ASSERT_EQ(e.problems, std::vector<std::string>{});
  EXPECT_EQ(e.types.at("figshift_upstream_latency_seconds"), "histogram");

  // le -> cumulative count: observations at or below the bound.
  std::map<double, double> buckets;
  bool inf_seen = false;
  double inf = -1;
  for (const auto& s : e.samples) {
    if (s.name != "figshift_upstream_latency_seconds_bucket") continue;
    ASSERT_EQ(s.labels.size(), 2u);
    ASSERT_EQ(s.labels.at("upstream"), "B1");
    const std::string& le = s.labels.at("le");
    if (le == "+Inf") {
      inf_seen = true;
      inf = std::stod(s.value);
    } else {
      ASSERT_TRUE(buckets.emplace(std::stod(le), std::stod(s.value)).second) << "le twice: " << le;
    }
  }
  ASSERT_TRUE(inf_seen) << "a histogram must have an le=\"+Inf\" bucket";
  ASSERT_EQ(buckets.size(), LatencyHistogram::bounds.size());
  const std::map<double, double> expected{
      {0.001, 2}, {0.0025, 2}, {0.005, 3}, {0.01, 3}, {0.025, 3}, {0.05, 3},
      {0.1, 3},   {0.25, 3},   {0.5, 4},   {1.0, 4},  {2.5, 4},   {5.0, 4}};
  EXPECT_EQ(buckets, expected);
  EXPECT_EQ(inf, 5);
  EXPECT_EQ(value_of(e, "figshift_upstream_latency_seconds_count", {{"upstream", "B1"}}), "5");
  const auto sum = value_of(e, "figshift_upstream_latency_seconds_sum", {{"upstream", "B1"}});
  ASSERT_TRUE(sum);
  EXPECT_NEAR(std::stod(*sum), 0.0005 + 0.001 + 0.003 + 0.3 + 7.0, 1e-9);
}

TEST(TelemetryPrometheus, SplitRampAndStoreGauges) {
  Snapshot s = snapshot_of({"A"}, 50);
  // README: during a ramp the split is from + (to - from) * elapsed / duration, floored.
  s.ramp = Ramp{.from = 10, .to = 50, .start_ms = 1'000'000, .duration_ms = 60'000};
  const StoreInfo store{.version = 12, .reload_successes = 3, .reload_failures = 1, .rejected_writes = 4};
  const auto e = parse(render_prometheus({}, s, store, 1'000'000 + 30'000));
  ASSERT_EQ(e.problems, std::vector<std::string>{});
  EXPECT_EQ(e.types.at("figshift_traffic_split_percent"), "gauge");
  EXPECT_EQ(value_of(e, "figshift_traffic_split_percent"), "30");         // 10 + 40 * 30/60
  EXPECT_EQ(value_of(e, "figshift_traffic_split_target_percent"), "50");  // the stored traffic-split
  EXPECT_EQ(value_of(e, "figshift_ramp_active"), "1");
  const auto progress = value_of(e, "figshift_ramp_progress_ratio");
  ASSERT_TRUE(progress);
  EXPECT_DOUBLE_EQ(std::stod(*progress), 0.5);
  EXPECT_EQ(value_of(e, "figshift_store_version"), "12");
  EXPECT_EQ(e.types.at("figshift_store_reloads_total"), "counter");
  EXPECT_EQ(value_of(e, "figshift_store_reloads_total", {{"result", "success"}}), "3");
  EXPECT_EQ(value_of(e, "figshift_store_reloads_total", {{"result", "failure"}}), "1");

  // After the ramp's end: the target, and no longer active.
  const auto after = parse(render_prometheus({}, s, store, 1'000'000 + 60'000));
  EXPECT_EQ(value_of(after, "figshift_traffic_split_percent"), "50");
  EXPECT_EQ(value_of(after, "figshift_ramp_active"), "0");
}

TEST(TelemetryPrometheus, TheCountersTheReadmeNames) {
  TrafficStats stats;
  stats.access_log_dropped_bytes = 4096;
  stats.tls_handshake_failures = 3;
  stats.body_budget_rejections = 17;
  stats.buffered_body_bytes = 25'165'824;
  const auto e = parse(render_prometheus(stats, snapshot_of({"A"}, 0), {}, 0));
  ASSERT_EQ(e.problems, std::vector<std::string>{});
  EXPECT_EQ(value_of(e, "figshift_access_log_dropped_bytes_total"), "4096");
  EXPECT_EQ(e.types.at("figshift_access_log_dropped_bytes_total"), "counter");
  EXPECT_EQ(value_of(e, "figshift_tls_handshake_failures_total"), "3");
  EXPECT_EQ(value_of(e, "figshift_body_budget_rejections_total"), "17");
  EXPECT_EQ(value_of(e, "figshift_buffered_body_bytes"), "25165824");
  EXPECT_EQ(e.types.at("figshift_buffered_body_bytes"), "gauge");
}

TEST(TelemetryPrometheus, EverySampleBelongsToAFamilyWithATypeLine) {
  TrafficStats stats;
  stats.upstreams["A"].latency.observe(0.01);
  const auto e = parse(render_prometheus(stats, snapshot_of({"A", "B1", "B2"}, 10), {}, 0));
  ASSERT_EQ(e.problems, std::vector<std::string>{});
  for (const auto& s : e.samples) {
    std::string family = s.name;
    if (!e.types.count(family))
      for (const char* suffix : {"_bucket", "_sum", "_count"})
        if (family.size() > std::string(suffix).size() &&
            family.compare(family.size() - std::string(suffix).size(), std::string::npos, suffix) == 0 &&
            e.types.count(family.substr(0, family.size() - std::string(suffix).size())) &&
            e.types.at(family.substr(0, family.size() - std::string(suffix).size())) == "histogram")
          family = family.substr(0, family.size() - std::string(suffix).size());
    EXPECT_TRUE(e.types.count(family)) << s.name << " has no # TYPE line";
    EXPECT_EQ(s.name.rfind("figshift_", 0), 0u) << s.name;
  }
}

// Label values must escape backslash, double quote and line feed. Upstream
// names reach the output as label values; the store only accepts [A-Z0-9]+
// today, but render_prometheus takes any Snapshot.
TEST(TelemetryPrometheus, LabelValuesAreEscaped) {
  const std::string odd = "we\"ird\\na\nme";
  TrafficStats stats;
  stats.upstreams[odd].responses[1][1] = 1;
  const auto e = parse(render_prometheus(stats, snapshot_of({odd}, 0), {}, 0));
  ASSERT_EQ(e.problems, std::vector<std::string>{});
  EXPECT_EQ(value_of(e, "figshift_requests_total", {{"upstream", odd}, {"group", "new"}, {"code", "2xx"}}),
            "1");
}

}  // namespace
}  // namespace figshift
