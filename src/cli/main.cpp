#include <CLI/CLI.hpp>

#include "figshift/cli.hpp"

int main(int argc, char** argv) {
  CLI::App app{"figshift: user-aware traffic splitting for API migrations"};
  app.require_subcommand(1);
  std::string config_path = "config/figshift.json";

  auto* serve = app.add_subcommand("serve", "run the proxy daemon");
  serve->add_option("-c,--config", config_path, "static configuration file")->capture_default_str();

  auto* check =
      app.add_subcommand("check-config", "validate a config file and its store, then exit");
  check->add_option("-c,--config", config_path, "static configuration file")->capture_default_str();

  std::string username, salt, split;
  int buckets = 100;
  auto* bucket = app.add_subcommand("bucket", "show the hash, bucket and group of a username");
  bucket->add_option("username", username, "the username (UTF-8)")->required();
  bucket->add_option("--salt", salt, "hash-salt prepended to the username");
  bucket->add_option("--buckets", buckets, "100 (the sample's rule) or 10000, as the store's key")
      ->check(CLI::IsMember({100, 10000}))
      ->capture_default_str();
  auto* split_option =
      bucket->add_option("--split", split,
                         "traffic split in percent, to show the group: 0..100, with --buckets "
                         "10000 up to two decimals");

  std::string demo_address = "127.0.0.1";
  std::uint16_t port_a = 9001, port_b1 = 9002, port_b2 = 9003;
  auto* demo = app.add_subcommand("demo-upstreams", "serve demo APIs A, B1 and B2");
  demo->add_option("--address", demo_address, "address to listen on")->capture_default_str();
  demo->add_option("--port-a", port_a, "port of API A")->capture_default_str();
  demo->add_option("--port-b1", port_b1, "port of API B1")->capture_default_str();
  demo->add_option("--port-b2", port_b2, "port of API B2")->capture_default_str();

  // ---- Control subcommands: clients of a running daemon's admin API ------
  app.footer(
      "Control commands (shift, rollback, status, kv) talk to a running daemon's admin API:\n"
      "  --admin URL (or FIGSHIFT_ADMIN_URL; default http://127.0.0.1:9901), bearer token from\n"
      "  --token-file FILE or FIGSHIFT_ADMIN_TOKEN.\n"
      "Exit codes: 0 ok; 1 other error; 2 usage error; 3 cannot connect to the admin API;\n"
      "  4 unauthorized (token missing or wrong); 5 precondition failed (the store changed since\n"
      "  it was read: re-read and retry); 6 invalid write (the message names the key).\n");
  figshift::cli::AdminOptions admin;
  const auto admin_options = [&admin](CLI::App* sub) {
    sub->add_option("--admin", admin.url,
                    "admin API base URL, http:// only (default http://127.0.0.1:9901)")
        ->envname("FIGSHIFT_ADMIN_URL");
    sub->add_option("--token-file", admin.token_file,
                    "file holding the admin bearer token (default: env FIGSHIFT_ADMIN_TOKEN)");
    sub->add_option("--timeout", admin.timeout_seconds, "connect + request deadline in seconds")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    return sub;
  };

  int shift_percent = 0, shift_seconds = 0;
  bool no_wait = false;
  auto* shift = admin_options(app.add_subcommand(
      "shift",
      "shift traffic: move the split to <percent> at once, or ramp it over --over seconds while\n"
      "showing progress (Ctrl-C stops watching; the ramp keeps running). Exit 1 when another\n"
      "write replaces the ramp while watching."));
  shift->add_option("percent", shift_percent, "target split, percent of users in the new group")
      ->required()
      ->check(CLI::Range(0, 100));
  shift->add_option("--over", shift_seconds, "ramp duration in seconds (0: at once)")
      ->capture_default_str()
      ->check(CLI::Range(0, 86400));
  shift->add_flag("--no-wait", no_wait, "start the ramp and return at once");

  std::string rollout_steps;
  bool rollout_no_wait = false;
  auto* rollout = admin_options(app.add_subcommand(
      "rollout",
      "start a guarded multi-step rollout (traffic-plan): each step ramps to TO% over OVER_S\n"
      "seconds, then holds HOLD_S; the `guard` key's thresholds roll it back on their own"));
  rollout
      ->add_option("--steps", rollout_steps,
                   "TO:OVER_S[:HOLD_S],... e.g. 5:60:300,25:120:600,100:300")
      ->required();
  rollout->add_flag("--no-wait", rollout_no_wait, "start the plan and return at once");
  auto* guard = app.add_subcommand("guard", "the rollout guard");
  guard->require_subcommand(1);
  auto* guard_reset = admin_options(guard->add_subcommand(
      "reset",
      "delete guard-tripped after a trip, so that shifts and rollouts above 0 work again"));
  auto* rollback = admin_options(app.add_subcommand(
      "rollback", "split 0 at once and cancel any ramp: every user goes to the legacy upstream"));

  bool status_json = false;
  auto* status = admin_options(
      app.add_subcommand("status", "show the split, ramp, upstreams, routes, counters"));
  status->add_flag("--json", status_json, "print GET /admin/status as is");

  auto* kv =
      app.add_subcommand("kv", "read and write the routing store (keys: docs/design.md section 2)");
  kv->require_subcommand(1);
  std::string kv_key, kv_value, kv_if_match, kv_file, kv_output, kv_match;
  bool kv_json = false, kv_replace = false;
  auto* kv_get =
      admin_options(kv->add_subcommand("get", "print a key's value (exit 1 when absent)"));
  kv_get->add_option("key", kv_key, "the key")->required();
  kv_get->add_flag("--json", kv_json, "print {\"key\",\"value\",\"etag\"}");
  auto* kv_put =
      admin_options(kv->add_subcommand("put", "set a key (validated with the whole store)"));
  kv_put->add_option("key", kv_key, "the key")->required();
  kv_put->add_option("value", kv_value, "the value")->required();
  kv_put->add_option("--if-match", kv_if_match,
                     "only if the store's ETag is still this one (exit 5 otherwise)");
  auto* kv_delete =
      admin_options(kv->add_subcommand("delete", "delete a key (exit 1 when absent)"));
  kv_delete->add_option("key", kv_key, "the key")->required();
  kv_delete->add_option("--if-match", kv_if_match,
                        "only if the store's ETag is still this one (exit 5 otherwise)");
  auto* kv_export =
      admin_options(kv->add_subcommand("export", "the whole store as a KeyValueStore import file"));
  kv_export->add_option("-o,--output", kv_output, "write to this file instead of stdout");
  auto* kv_import = admin_options(kv->add_subcommand(
      "import",
      "write every item of a KeyValueStore import file in one atomic batch, guarded by the ETag\n"
      "read just before (a concurrent change makes it fail with exit 5, nothing lost)"));
  kv_import
      ->add_option("file", kv_file, "KeyValueStore import file {\"data\":[{\"key\",\"value\"}]}")
      ->required()
      ->check(CLI::ExistingFile);
  kv_import->add_option("--if-match", kv_if_match,
                        "guard with this ETag instead of the one just read");
  kv_import->add_flag("--replace", kv_replace,
                      "also delete every current key absent from the file");
  kv_import->add_option(
      "--match", kv_match,
      "only keys matching this glob, in the file and for --replace (e.g. 'APIGW_*_URL')");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 2, whatever CLI11's own code.
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (*serve) return figshift::cli::run_serve(config_path);
  if (*check) return figshift::cli::run_check_config(config_path);
  if (*bucket)
    return figshift::cli::run_bucket(username, salt, buckets,
                                     split_option->count() ? std::optional(split) : std::nullopt);
  if (*demo)
    return figshift::cli::run_demo_upstreams(demo_address,
                                             {{"A", port_a}, {"B1", port_b1}, {"B2", port_b2}});
  if (*shift) return figshift::cli::run_shift(admin, shift_percent, shift_seconds, !no_wait);
  if (*rollback) return figshift::cli::run_rollback(admin);
  if (*rollout) return figshift::cli::run_rollout(admin, rollout_steps, !rollout_no_wait);
  if (*guard_reset) return figshift::cli::run_guard_reset(admin);
  if (*status) return figshift::cli::run_status(admin, status_json);
  if (*kv_get) return figshift::cli::run_kv_get(admin, kv_key, kv_json);
  if (*kv_put) return figshift::cli::run_kv_put(admin, kv_key, kv_value, kv_if_match);
  if (*kv_delete) return figshift::cli::run_kv_delete(admin, kv_key, kv_if_match);
  if (*kv_export) return figshift::cli::run_kv_export(admin, kv_output);
  if (*kv_import)
    return figshift::cli::run_kv_import(admin, kv_file, kv_if_match, kv_replace, kv_match);
  return 1;
}
