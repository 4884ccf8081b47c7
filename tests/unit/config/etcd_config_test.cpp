// parse_config: the store block of the etcd backend (#14). Checked without etcd.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "figshift/config.hpp"

namespace figshift {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const fs::path config_file = "/etc/figshift/figshift.json";

json with_store(const json& store) {
  return json{{"listen", json::array({{{"address", "0.0.0.0"}, {"port", 8080}}})},
              {"store", store}};
}

json etcd_store() {
  return json{{"backend", "etcd"},
              {"endpoints", {"http://127.0.0.1:2379"}},
              {"prefix", "/figshift/"},
              {"seed", "kvs.json"},
              {"cache", "../var/kvs-cache.json"}};
}

std::string error_of(const json& store) {
  try {
    parse_config(with_store(store).dump(), config_file);
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted: " << store.dump();
  return {};
}

TEST(EtcdConfig, TheIssueExampleParsesWithPathsRelativeToTheConfigFile) {
  const Config c = parse_config(with_store(etcd_store()).dump(), config_file);
  EXPECT_EQ(c.store.backend, "etcd");
  ASSERT_EQ(c.store.endpoints.size(), 1u);
  EXPECT_EQ(c.store.endpoints[0], "http://127.0.0.1:2379");
  EXPECT_EQ(c.store.prefix, "/figshift/");
  EXPECT_EQ(c.store.seed, fs::path("/etc/figshift/kvs.json"));
  EXPECT_EQ(c.store.cache, fs::path("/etc/var/kvs-cache.json"));
  EXPECT_TRUE(c.store.path.empty());
}

TEST(EtcdConfig, SeveralEndpointsAndTheDefaultPrefix) {
  json store = etcd_store();
  store.erase("prefix");
  store["endpoints"] = {"http://10.0.0.1:2379", "http://etcd-2.internal:2379/"};
  const Config c = parse_config(with_store(store).dump(), config_file);
  EXPECT_EQ(c.store.endpoints.size(), 2u);
  EXPECT_EQ(c.store.prefix, "/figshift/");
}

TEST(EtcdConfig, EndpointsAreRequiredAndMustBeHttpHostPort) {
  json store = etcd_store();
  store.erase("endpoints");
  EXPECT_EQ(error_of(store), "store.endpoints: is required for the etcd backend");
  store["endpoints"] = json::array();
  EXPECT_NE(error_of(store).find("store.endpoints: must be a non-empty array"), std::string::npos);
  store["endpoints"] = {"127.0.0.1:2379"};
  EXPECT_NE(error_of(store).find("store.endpoints[0]: must start with http://"), std::string::npos);
  store["endpoints"] = {"http://127.0.0.1:2379", "http://127.0.0.1"};
  EXPECT_NE(error_of(store).find("store.endpoints[1]: must be http://host:port"), std::string::npos);
  store["endpoints"] = {"http://127.0.0.1:2379/v3"};
  EXPECT_NE(error_of(store).find("store.endpoints[0]: must be http://host:port"), std::string::npos);
  store["endpoints"] = {"http://127.0.0.1:99999"};
  EXPECT_NE(error_of(store).find("store.endpoints[0]"), std::string::npos);
  store["endpoints"] = {2379};
  EXPECT_NE(error_of(store).find("store.endpoints[0]: must be a string"), std::string::npos);
}

TEST(EtcdConfig, HttpsAndTlsFilesAreRefusedAsNotSupportedYet) {
  json store = etcd_store();
  store["endpoints"] = {"https://127.0.0.1:2379"};
  EXPECT_NE(error_of(store).find("https endpoints are not supported yet"), std::string::npos);
  store = etcd_store();
  store["ca_file"] = "ca.pem";
  EXPECT_NE(error_of(store).find("store.ca_file: TLS to etcd is not supported yet"), std::string::npos);
  store = etcd_store();
  store["cert_file"] = "c.pem";
  EXPECT_NE(error_of(store).find("store.cert_file:"), std::string::npos);
}

TEST(EtcdConfig, UsernameAndPasswordFileGoTogether) {
  json store = etcd_store();
  store["username"] = "figshift";
  EXPECT_EQ(error_of(store), "store.username: username and password_file go together");
  store.erase("username");
  store["password_file"] = "etcd.password";
  EXPECT_EQ(error_of(store), "store.password_file: username and password_file go together");
  store["username"] = "figshift";
  const Config c = parse_config(with_store(store).dump(), config_file);
  EXPECT_EQ(c.store.username, "figshift");
  EXPECT_EQ(c.store.password_file, fs::path("/etc/figshift/etcd.password"));
}

TEST(EtcdConfig, UnknownKeysAndFileBackendKeysAreErrors) {
  json store = etcd_store();
  store["endpoint"] = "http://127.0.0.1:2379";
  EXPECT_EQ(error_of(store), "store.endpoint: unknown key");
  store = etcd_store();
  store["path"] = "kvs.json";
  EXPECT_NE(error_of(store).find("store.path: is for the file backend"), std::string::npos);
  store = etcd_store();
  store["reload_interval_ms"] = 100;
  EXPECT_NE(error_of(store).find("store.reload_interval_ms: is for the file backend"),
            std::string::npos);
  store = etcd_store();
  store["prefix"] = "";
  EXPECT_EQ(error_of(store), "store.prefix: must not be empty");
  store["prefix"] = "/fig\nshift/";
  EXPECT_EQ(error_of(store), "store.prefix: must not hold control characters");
}

TEST(EtcdConfig, TheFileBackendRefusesEtcdKeysAndUnknownBackendsAreNamed) {
  json store{{"backend", "file"}, {"path", "kvs.json"}, {"endpoints", {"http://127.0.0.1:2379"}}};
  EXPECT_EQ(error_of(store), "store.endpoints: unknown key");
  store = json{{"backend", "consul"}};
  EXPECT_NE(error_of(store).find("store.backend: \"consul\" is not supported"), std::string::npos);
}

}  // namespace
}  // namespace figshift
