#include <openssl/crypto.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <boost/asio/ip/address.hpp>
#include <cstdlib>
#include <optional>

#include "figshift/admin.hpp"
#include "figshift/util/file.hpp"

namespace figshift {

std::string load_admin_token(const Config& config) {
  std::string token;
  if (!config.admin.token_file.empty()) {
    std::optional<std::string> text = read_file(config.admin.token_file);
    if (!text)
      throw ConfigError("admin.token_file: cannot read " + config.admin.token_file.string());
    token = std::move(*text);
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' '))
      token.pop_back();
    if (token.empty()) throw ConfigError("admin.token_file: " + config.admin.token_file.string() + " is empty");
    // Whoever can read the token can change the routing: say so (never the token itself).
    struct stat st {};
    if (::stat(config.admin.token_file.c_str(), &st) == 0 && (st.st_mode & 044) != 0)
      spdlog::warn(
          "admin.token_file: {} is readable by group or others (mode {:03o}); run chmod 600 {}",
          config.admin.token_file.string(), st.st_mode & 0777, config.admin.token_file.string());
  } else if (!config.admin.token_env.empty()) {
    const char* value = std::getenv(config.admin.token_env.c_str());
    if (!value || !*value)
      throw ConfigError("admin.token_env: environment variable " + config.admin.token_env +
                        " is not set or empty");
    token = value;
  }
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(config.admin.listen.address, ec);
  if (ec) throw ConfigError("admin.address: \"" + config.admin.listen.address + "\" is not an IP address");
  if (!address.is_loopback() && token.empty())
    throw ConfigError("admin.address: " + config.admin.listen.address +
                      " is not a loopback address; configure admin.token_file or admin.token_env");
  return token;
}

bool bearer_matches(std::string_view authorization, std::string_view token) {
  constexpr std::string_view scheme = "Bearer ";
  if (authorization.size() < scheme.size()) return false;
  for (std::size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) !=
        std::tolower(static_cast<unsigned char>(scheme[i])))
      return false;
  auto presented = authorization.substr(scheme.size());
  // Length is not secret (the token's length is fixed by the operator); the bytes are.
  return presented.size() == token.size() &&
         CRYPTO_memcmp(presented.data(), token.data(), token.size()) == 0;
}

}  // namespace figshift
