// `figshift kv get|put|delete|export|import`: the routing store, through a
// running daemon's admin API (docs/admin-api.md).

#include <fnmatch.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "admin_client.hpp"
#include "figshift/cli.hpp"
#include "figshift/store/kv_map.hpp"
#include "figshift/store/kvs_format.hpp"
#include "figshift/util/file.hpp"

namespace figshift::cli {
namespace {

using json = nlohmann::json;

std::string key_path(const std::string& key) {
  return "/admin/kv/" + percent_encode(key);
}

std::string if_match_of(const std::string& given) {
  return given.empty() ? "" : normalize_etag(given);
}

// "version 8, etag "…"" from a write's answer.
std::string write_summary(const AdminResponse& res) {
  std::ostringstream out;
  try {
    const json j = json::parse(res.body);
    if (j.is_object()) {
      if (auto v = j.find("version"); v != j.end() && v->is_number())
        out << "version " << v->get<long long>();
      if (auto e = j.find("etag"); e != j.end() && e->is_string())
        out << (out.tellp() > 0 ? ", " : "") << "etag " << e->get<std::string>();
    }
  } catch (const json::exception&) {
  }
  if (out.tellp() == 0 && !res.etag.empty()) out << "etag " << res.etag;
  return out.str();
}

bool matches(const std::string& pattern, const std::string& key) {
  return pattern.empty() || ::fnmatch(pattern.c_str(), key.c_str(), 0) == 0;
}

}  // namespace

int run_kv_get(const AdminOptions& admin, const std::string& key, bool as_json) {
  return run_guarded([&] {
    const AdminClient client(admin);
    const AdminResponse res = client.request("GET", key_path(key));
    if (res.status == 404) throw CliError(kExitError, "key \"" + key + "\" not found");
    client.check(res, "GET", key_path(key));
    const json j = parse_json(res, "GET " + key_path(key));
    if (!j.is_object() || !j.contains("value") || !j["value"].is_string())
      throw CliError(kExitError,
                     "the admin API answered GET " + key_path(key) + " without a value");
    if (as_json) {
      json out = {{"key", key}, {"value", j["value"]}, {"etag", res.etag}};
      std::cout << out.dump() << "\n";
    } else {
      std::cout << j["value"].get<std::string>() << "\n";
    }
    return kExitOk;
  });
}

int run_kv_put(const AdminOptions& admin, const std::string& key, const std::string& value,
               const std::string& if_match) {
  return run_guarded([&] {
    const AdminClient client(admin);
    const AdminResponse res = client.call("PUT", key_path(key), value, if_match_of(if_match),
                                          "text/plain; charset=utf-8");
    std::cout << "put " << key << ": " << write_summary(res) << "\n";
    return kExitOk;
  });
}

int run_kv_delete(const AdminOptions& admin, const std::string& key, const std::string& if_match) {
  return run_guarded([&] {
    const AdminClient client(admin);
    const AdminResponse res = client.request("DELETE", key_path(key), {}, if_match_of(if_match));
    if (res.status == 404) throw CliError(kExitError, "key \"" + key + "\" not found");
    client.check(res, "DELETE", key_path(key));
    std::cout << "deleted " << key << ": " << write_summary(res) << "\n";
    return kExitOk;
  });
}

int run_kv_export(const AdminOptions& admin, const std::string& output_path) {
  return run_guarded([&] {
    const AdminClient client(admin);
    const AdminResponse res = client.call("GET", "/admin/kv");
    if (output_path.empty() || output_path == "-") {
      std::cout << res.body << std::flush;
      return kExitOk;
    }
    const std::string tmp = output_path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << res.body;
      out.close();
      if (!out) {
        std::remove(tmp.c_str());
        throw CliError(kExitError, "cannot write " + output_path);
      }
    }
    if (std::rename(tmp.c_str(), output_path.c_str()) != 0) {
      std::remove(tmp.c_str());
      throw CliError(kExitError, "cannot write " + output_path);
    }
    std::size_t count = 0;
    try {
      count = parse_kvs_json(res.body).size();
    } catch (const InvalidStore&) {
    }
    std::cout << "exported " << count << " keys to " << output_path
              << (res.etag.empty() ? "" : " (etag " + res.etag + ")") << "\n";
    return kExitOk;
  });
}

int run_kv_import(const AdminOptions& admin, const std::string& path, const std::string& if_match,
                  bool replace, const std::string& match) {
  return run_guarded([&] {
    KvMap wanted;
    {
      const std::optional<std::string> text = read_file(path);
      if (!text) throw CliError(kExitError, "cannot read " + path);
      try {
        wanted = parse_kvs_json(*text);
      } catch (const InvalidStore& e) {
        throw CliError(kExitError, path + ": " + e.what());
      }
    }
    for (auto it = wanted.begin(); it != wanted.end();)
      it = matches(match, it->first) ? std::next(it) : wanted.erase(it);

    const AdminClient client(admin);
    // Read the current store: its ETag guards the batch, its keys are the
    // candidates for --replace.
    const AdminResponse current = client.call("GET", "/admin/kv");
    KvMap existing;
    try {
      existing = parse_kvs_json(current.body);
    } catch (const InvalidStore& e) {
      throw CliError(kExitError,
                     std::string("the admin API answered GET /admin/kv with ") + e.what());
    }
    std::string guard = if_match_of(if_match);
    if (guard.empty()) guard = current.etag;
    if (guard.empty())
      throw CliError(kExitError,
                     "the admin API answered GET /admin/kv without an ETag; pass --if-match");

    json puts = json::array();
    json deletes = json::array();
    std::size_t changed = 0;
    for (const auto& [key, value] : wanted) {
      puts.push_back({{"key", key}, {"value", value}});
      auto it = existing.find(key);
      if (it == existing.end() || it->second != value) ++changed;
    }
    if (replace)
      for (const auto& [key, value] : existing)
        if (matches(match, key) && !wanted.count(key)) deletes.push_back({{"key", key}});
    if (puts.empty() && deletes.empty()) {
      std::cout << "nothing to import from " << path
                << (match.empty() ? "" : " (no key matches " + match + ")") << "\n";
      return kExitOk;
    }
    const json batch = {{"puts", puts}, {"deletes", deletes}};
    const AdminResponse res = client.call("POST", "/admin/kv", batch.dump(), guard);
    std::cout << "imported " << puts.size() << " keys (" << changed << " new or changed)";
    if (replace) std::cout << ", deleted " << deletes.size();
    std::cout << ": " << write_summary(res) << "\n";
    return kExitOk;
  });
}

}  // namespace figshift::cli
