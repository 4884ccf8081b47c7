#include <CLI/CLI.hpp>

#include "figshift/cli.hpp"

int main(int argc, char** argv) {
  CLI::App app{"figshift: user-aware traffic splitting for API migrations"};
  app.require_subcommand(1);
  std::string config_path = "config/figshift.json";

  auto* serve = app.add_subcommand("serve", "run the proxy daemon");
  serve->add_option("-c,--config", config_path, "static configuration file")->capture_default_str();

  auto* check = app.add_subcommand("check-config", "validate a config file and its store, then exit");
  check->add_option("-c,--config", config_path, "static configuration file")->capture_default_str();

  std::string username, salt;
  int split = -1;
  auto* bucket = app.add_subcommand("bucket", "show the hash, bucket and group of a username");
  bucket->add_option("username", username, "the username (UTF-8)")->required();
  bucket->add_option("--salt", salt, "hash-salt prepended to the username");
  bucket->add_option("--split", split, "traffic split in percent, to show the group")
      ->check(CLI::Range(0, 100));

  std::string demo_address = "127.0.0.1";
  std::uint16_t port_a = 9001, port_b1 = 9002, port_b2 = 9003;
  auto* demo = app.add_subcommand("demo-upstreams", "serve demo APIs A, B1 and B2");
  demo->add_option("--address", demo_address, "address to listen on")->capture_default_str();
  demo->add_option("--port-a", port_a, "port of API A")->capture_default_str();
  demo->add_option("--port-b1", port_b1, "port of API B1")->capture_default_str();
  demo->add_option("--port-b2", port_b2, "port of API B2")->capture_default_str();

  CLI11_PARSE(app, argc, argv);

  if (*serve) return figshift::cli::run_serve(config_path);
  if (*check) return figshift::cli::run_check_config(config_path);
  if (*bucket) return figshift::cli::run_bucket(username, salt, split);
  if (*demo)
    return figshift::cli::run_demo_upstreams(
        demo_address, {{"A", port_a}, {"B1", port_b1}, {"B2", port_b2}});
  return 1;
}
