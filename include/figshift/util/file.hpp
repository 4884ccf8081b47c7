#pragma once
// Reading a whole file into memory, the one way every module does it.
// Thread-safety: no shared state; safe from any thread. The result owns its bytes.

#include <filesystem>
#include <optional>
#include <string>
#include <system_error>

namespace figshift {

// The whole content of the file at `path`, byte for byte (binary mode).
// nullopt when it cannot be opened; `error` then holds why (the errno of the
// failed open). Callers word their own message: each names the setting or
// command the file came from.
std::optional<std::string> read_file(const std::filesystem::path& path, std::error_code& error);
std::optional<std::string> read_file(const std::filesystem::path& path);

}  // namespace figshift
