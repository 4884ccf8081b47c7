#include "admin/admin_api.hpp"

#include "admin/dashboard.hpp"
#include "admin/views.hpp"
#include "figshift/routing.hpp"
#include "figshift/store/kvs_format.hpp"
#include "figshift/store/store.hpp"

#include <boost/url/pct_string_view.hpp>
#include <nlohmann/json.hpp>

namespace figshift::admin {
namespace {

using json = nlohmann::json;

constexpr std::string_view kv_prefix = "/admin/kv/";
constexpr std::int64_t max_shift_seconds = 86'400;

// Messages may quote client bytes (a path, a key, an If-Match value) that are
// not UTF-8: replace those instead of letting the JSON writer throw.
ApiResponse reply(unsigned status, const json& body) {
  return {status, body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n", {}};
}

ApiResponse error(unsigned status, std::string_view message) {
  return reply(status, json{{"error", message}});
}

ApiResponse method_not_allowed(const char* allow) {
  auto res = error(405, "method not allowed");
  res.headers.emplace_back("Allow", allow);
  return res;
}

ApiResponse write_result(const WriteResult& result, const Store& store) {
  switch (result.status) {
    case WriteStatus::ok: {
      auto res = reply(200, json{{"etag", result.etag}, {"version", store.version()}});
      res.headers.emplace_back("ETag", result.etag);
      return res;
    }
    case WriteStatus::precondition_failed: return error(412, result.message);
    case WriteStatus::invalid: return error(400, result.message);
    case WriteStatus::io_error: return error(500, result.message);
    case WriteStatus::unavailable: return error(503, result.message);
  }
  return error(500, "unexpected write status");
}

// The request body as JSON; nullopt when it is not JSON.
std::optional<json> json_body(const ApiRequest& request) {
  try {
    return json::parse(request.body);
  } catch (const json::exception&) {  // also out_of_range: a number too large (406)
    return std::nullopt;
  }
}

std::optional<std::string> if_match_of(const ApiRequest& request) {
  if (request.if_match.empty()) return std::nullopt;
  return request.if_match;
}

// The 409 for a move above 0 while the guard is tripped (it needs a reset first).
ApiResponse refused_while_tripped(const std::string& guard_tripped) {
  return reply(409, json{{"error", "the guard tripped: the split stays 0 until it is reset "
                                   "(figshift guard reset, or DELETE /admin/kv/guard-tripped)"},
                         {"guard_tripped", json::parse(guard_tripped, nullptr, false)}});
}

// (#17) Ramps and plans move in whole points: one starting from 0.25 would
// start at 0 and send the users of buckets 0-24 back to legacy.
ApiResponse ramp_from_fraction_refused(const Snapshot& snapshot, std::int64_t now) {
  const int split = snapshot.split_hundredths_at(now);
  return error(409, "the split is " + std::to_string(split / 100) + "." +
                        (split % 100 < 10 ? "0" : "") + std::to_string(split % 100) +
                        " (buckets 10000): ramps and rollouts move in whole points; shift to a "
                        "whole point without a duration first");
}

ApiResponse traffic_shift(const ApiRequest& request, AdminContext& context) {
  const std::optional<json> parsed = json_body(request);
  if (!parsed || !parsed->is_object())
    return error(400, "body must be JSON {\"percent\":P,\"seconds\":S}");
  const json& body = *parsed;
  for (const auto& [name, _] : body.items())
    if (name != "percent" && name != "seconds") return error(400, "unknown field \"" + name + "\"");
  const auto percent = body.find("percent");
  if (percent == body.end() || !percent->is_number_integer() || percent->get<std::int64_t>() < 0 ||
      percent->get<std::int64_t>() > 100)
    return error(400, "percent: must be an integer from 0 to 100");
  std::int64_t seconds = 0;
  if (auto s = body.find("seconds"); s != body.end()) {
    if (!s->is_number_integer() || s->get<std::int64_t>() < 0 ||
        s->get<std::int64_t>() > max_shift_seconds)
      return error(400, "seconds: must be an integer from 0 to " + std::to_string(max_shift_seconds));
    seconds = s->get<std::int64_t>();
  }
  const int target = percent->get<int>();
  const auto snapshot = context.store.snapshot();
  if (snapshot->guard_tripped && target > 0) return refused_while_tripped(*snapshot->guard_tripped);
  const auto now = context.now_ms();
  if (seconds > 0 && snapshot->split_hundredths_at(now) % 100 != 0)
    return ramp_from_fraction_refused(*snapshot, now);
  Batch batch;
  batch.puts.emplace_back("traffic-split", std::to_string(target));
  batch.deletes.push_back("traffic-plan");  // a manual shift ends a rollout
  if (seconds > 0 && snapshot->split_at(now) != target) {  // a ramp from 0 to 0 is no ramp
    batch.puts.emplace_back("traffic-ramp", json{{"from", snapshot->split_at(now)},
                                                 {"to", target},
                                                 {"start_ms", now},
                                                 {"duration_ms", seconds * 1000}}
                                                .dump());
  } else {
    batch.deletes.push_back("traffic-ramp");
  }
  // The ramp starts from the split this snapshot gives: refuse if the store moved meanwhile.
  auto if_match = if_match_of(request);
  if (!if_match) if_match = snapshot->etag;
  auto result = context.store.apply(batch, if_match);
  if (result.status != WriteStatus::ok) return write_result(result, context.store);
  return reply(200, status_json(context));
}

// POST /admin/rollout {"steps":[{"to":5,"over_s":60,"hold_s":300},…]}: a
// traffic-plan starting now from the current split.
ApiResponse rollout(const ApiRequest& request, AdminContext& context) {
  const std::optional<json> parsed = json_body(request);
  if (!parsed || !parsed->is_object() || !parsed->contains("steps") || parsed->size() != 1)
    return error(400, "body must be JSON {\"steps\":[{\"to\":P,\"over_s\":S,\"hold_s\":S},…]}");
  const auto snapshot = context.store.snapshot();
  const auto now = context.now_ms();
  const json& steps = (*parsed)["steps"];
  int final_to = 0;
  if (steps.is_array() && !steps.empty() && steps.back().is_object() && steps.back().contains("to") &&
      steps.back()["to"].is_number_integer())
    final_to = steps.back()["to"].get<int>();
  if (snapshot->guard_tripped) return refused_while_tripped(*snapshot->guard_tripped);
  if (snapshot->split_hundredths_at(now) % 100 != 0)
    return ramp_from_fraction_refused(*snapshot, now);
  const json plan{{"start_ms", now}, {"from", snapshot->split_at(now)}, {"steps", steps}};
  Batch batch;
  // traffic-split holds where the plan ends (as a shift's does), so deleting the
  // plan by hand leaves that split; the store validates the plan itself.
  batch.puts.emplace_back("traffic-split", std::to_string(std::clamp(final_to, 0, 100)));
  batch.puts.emplace_back("traffic-plan", plan.dump());
  batch.deletes.push_back("traffic-ramp");
  auto if_match = if_match_of(request);
  if (!if_match) if_match = snapshot->etag;  // the plan starts from this snapshot's split
  auto result = context.store.apply(batch, if_match);
  if (result.status != WriteStatus::ok) return write_result(result, context.store);
  return reply(200, status_json(context));
}

ApiResponse rollback(AdminContext& context) {
  Batch batch;
  batch.puts.emplace_back("traffic-split", "0");
  batch.deletes.push_back("traffic-ramp");
  batch.deletes.push_back("traffic-plan");
  auto result = context.store.apply(batch);
  if (result.status != WriteStatus::ok) return write_result(result, context.store);
  return reply(200, status_json(context));
}

ApiResponse kv_all(const ApiRequest& request, AdminContext& context) {
  if (request.method == "GET") {
    ApiResponse res{200, to_kvs_json(context.store.items()), {}};
    res.headers.emplace_back("ETag", context.store.etag());
    return res;
  }
  if (request.method != "POST") return method_not_allowed("GET, POST");
  const std::optional<json> parsed = json_body(request);
  if (!parsed)
    return error(400, "body must be JSON {\"puts\":[{\"key\",\"value\"}],\"deletes\":[{\"key\"}]}");
  if (!parsed->is_object()) return error(400, "body must be a JSON object");
  const json& body = *parsed;
  Batch batch;
  for (const auto& [name, list] : body.items()) {
    if (name != "puts" && name != "deletes") return error(400, "unknown field \"" + name + "\"");
    if (!list.is_array()) return error(400, name + ": must be an array");
    for (const auto& item : list) {
      const bool put = name == "puts";
      if (!item.is_object() || !item.contains("key") || !item["key"].is_string() ||
          (put && (!item.contains("value") || !item["value"].is_string())) ||
          item.size() != (put ? 2u : 1u))
        return error(400, name + (put ? ": items must be {\"key\": string, \"value\": string}"
                                      : ": items must be {\"key\": string}"));
      if (put)
        batch.puts.emplace_back(item["key"].get<std::string>(), item["value"].get<std::string>());
      else
        batch.deletes.push_back(item["key"].get<std::string>());
    }
  }
  return write_result(context.store.apply(batch, if_match_of(request)), context.store);
}

ApiResponse kv_one(const ApiRequest& request, const std::string& key, AdminContext& context) {
  if (request.method == "GET") {
    const auto items = context.store.items();
    const auto it = items.find(key);
    if (it == items.end()) return error(404, "no such key: " + key);
    auto res = reply(200, json{{"key", key}, {"value", it->second}});
    res.headers.emplace_back("ETag", context.store.etag());
    return res;
  }
  Batch batch;
  if (request.method == "PUT") {
    batch.puts.emplace_back(key, request.body);
  } else if (request.method == "DELETE") {
    if (!context.store.items().count(key)) return error(404, "no such key: " + key);
    batch.deletes.push_back(key);
  } else {
    return method_not_allowed("GET, PUT, DELETE");
  }
  return write_result(context.store.apply(batch, if_match_of(request)), context.store);
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view text) {
  // Only the escapes are checked: other bytes (even ones a URL may not hold
  // unencoded) pass through as they came, and '+' stays '+'.
  const auto encoded = boost::urls::make_pct_string_view(text);
  if (!encoded) return std::nullopt;
  return encoded->decode();
}

ApiResponse refusal_response(const Refusal& refusal) {
  auto res = error(refusal.status, refusal.message);
  if (refusal.status == 401)
    res.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"figshift-admin\"");
  return res;
}

ApiResponse handle(const ApiRequest& request, AdminContext& context) {
  const std::string_view path = path_of(request.target);

  if ((path == "/healthz" || path == "/readyz") && request.method != "GET" &&
      request.method != "HEAD")
    return method_not_allowed("GET, HEAD");
  if (path == "/healthz") return reply(200, json{{"status", "ok"}});
  if (path == "/readyz")
    return context.draining() ? reply(503, json{{"status", "draining"}})
                              : reply(200, json{{"status", "ready"}});

  // The dashboard page carries no data: served without the token (everything it fetches needs it).
  if (path == "/" && request.method == "GET") return dashboard_response();

  // Everything else needs the token, and answers 401 before revealing whether the route exists.
  if (!context.token.empty() && needs_token(request.method, path) &&
      !bearer_matches(request.authorization, context.token))
    return refusal_response(Refusal{401, "unauthorized", {}});

  if (path == "/metrics") {
    if (request.method != "GET") return method_not_allowed("GET");
    ApiResponse res{200, metrics_text(context), {}};
    res.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return res;
  }
  if (path == "/admin/status") {
    if (request.method != "GET") return method_not_allowed("GET");
    return reply(200, status_json(context));
  }
  if (path == "/admin/traffic-shift") {
    if (request.method != "POST") return method_not_allowed("POST");
    return traffic_shift(request, context);
  }
  if (path == "/admin/rollout") {
    if (request.method != "POST") return method_not_allowed("POST");
    return rollout(request, context);
  }
  if (path == "/admin/rollback") {
    if (request.method != "POST") return method_not_allowed("POST");
    return rollback(context);
  }
  if (path == "/") return method_not_allowed("GET");
  if (path == "/admin/kv") return kv_all(request, context);
  if (path.starts_with(kv_prefix) && path.size() > kv_prefix.size()) {
    auto key = percent_decode(path.substr(kv_prefix.size()));
    if (!key) return error(400, "malformed percent-encoding in the key");
    return kv_one(request, *key, context);
  }
  return error(404, "no such admin route: " + std::string(path));
}

}  // namespace figshift::admin
