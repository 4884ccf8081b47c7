#pragma once
// The subcommands of the `figshift` binary. Each returns the process exit code.
// Thread-safety: each runs on the calling thread and owns the process while it
// runs (signal handlers, standard output): call one at a time, from main.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace figshift::cli {

// `figshift serve`: runs the daemon until SIGTERM/SIGINT, then drains.
int run_serve(const std::string& config_path);
// `figshift check-config`: validates the config file and the store it points at.
int run_check_config(const std::string& config_path);
// `figshift bucket`: the routing rule for one username, explained. `buckets`
// is 100 or 10000; `split`, if given, is read as the store reads
// `traffic-split` for that many buckets. A bad split is a usage error (2).
int run_bucket(const std::string& username, const std::string& salt, int buckets,
               const std::optional<std::string>& split);

struct DemoUpstream {
  std::string name;  // "A", "B1", "B2"
  std::uint16_t port = 0;
};

// Serves one small JSON API per entry on `address` until SIGINT/SIGTERM:
// {"message":"Hello from API B1","path":"/v2/orders/1","method":"GET"}.
int run_demo_upstreams(const std::string& address, const std::vector<DemoUpstream>& upstreams);

// ---- Control subcommands: clients of a running daemon's admin API ----------
// Exit codes: 0 ok, 1 other error, 2 usage error, 3 admin API unreachable,
// 4 unauthorized (401), 5 precondition failed (412), 6 invalid write (400).

struct AdminOptions {
  std::string url;              // base URL, http:// only; default http://127.0.0.1:9901
  std::string token_file;       // bearer token file; empty: env FIGSHIFT_ADMIN_TOKEN, if set
  double timeout_seconds = 10;  // connect + request deadline, per request
};

// `figshift shift <percent> [--over <seconds>] [--no-wait]`: starts a ramp and
// shows its progress until it ends (or SIGINT, which only stops watching).
int run_shift(const AdminOptions& admin, int percent, int seconds, bool wait);
// `figshift rollout --steps TO:OVER_S[:HOLD_S],...`: a guarded multi-step plan
// (traffic-plan), shown step by step until it is done, ended or the guard trips.
int run_rollout(const AdminOptions& admin, const std::string& steps, bool wait);
// `figshift guard reset`: deletes guard-tripped, so shifts above 0 work again.
int run_guard_reset(const AdminOptions& admin);
// `figshift rollback`: split 0 at once, any ramp deleted.
int run_rollback(const AdminOptions& admin);
// `figshift status [--json]`.
int run_status(const AdminOptions& admin, bool json);

// `figshift kv get|put|delete|export|import`. An empty if_match sends none.
int run_kv_get(const AdminOptions& admin, const std::string& key, bool json);
int run_kv_put(const AdminOptions& admin, const std::string& key, const std::string& value,
               const std::string& if_match);
int run_kv_delete(const AdminOptions& admin, const std::string& key, const std::string& if_match);
int run_kv_export(const AdminOptions& admin, const std::string& output_path);
// One atomic batch: puts for every item of the file (only keys matching
// `match`, a glob, when set); with `replace`, deletes of every current key
// (matching `match`) absent from the file. If-Match: `if_match`, else the ETag
// read just before.
int run_kv_import(const AdminOptions& admin, const std::string& path, const std::string& if_match,
                  bool replace, const std::string& match);

}  // namespace figshift::cli
