#include "figshift/util/file.hpp"

#include <cerrno>
#include <fstream>
#include <sstream>

namespace figshift {

std::optional<std::string> read_file(const std::filesystem::path& path, std::error_code& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = std::error_code(errno, std::generic_category());
    return std::nullopt;
  }
  error.clear();
  // A folder opens but reads as nothing: callers then see "" and refuse it as
  // content (an empty store file is not JSON), as they always have.
  std::stringstream text;
  text << in.rdbuf();
  return std::move(text).str();
}

std::optional<std::string> read_file(const std::filesystem::path& path) {
  std::error_code ignored;
  return read_file(path, ignored);
}

}  // namespace figshift
