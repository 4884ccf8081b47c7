// Differential test: the C++ rule against reference.js, the same rule in
// JavaScript as the original CloudFront function computed it under Node.
// Usage: differential_test <cases.jsonl>; exits non-zero on any mismatch.

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "figshift/routing.hpp"

namespace {

constexpr std::size_t max_reported = 20;
// Fewer cases than this means the generator broke, not that the rule agrees.
constexpr std::size_t min_cases = 1000;

std::string describe_units(const std::u16string& units) {
  std::string out = "[";
  for (std::size_t i = 0; i < units.size(); ++i) {
    if (i != 0) out += ',';
    out += std::to_string(static_cast<unsigned>(units[i]));
  }
  return out + "]";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: differential_test <cases.jsonl>\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::cerr << "cannot open " << argv[1] << " (generate it with: node reference.js " << argv[1]
              << ")\n";
    return 2;
  }

  std::size_t cases = 0;
  std::size_t users = 0;
  std::size_t mismatches = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded() || !record.contains("authorization") || !record.contains("bucket")) {
      std::cerr << "line " << cases + 1 << ": not a case: " << line << '\n';
      return 2;
    }
    ++cases;
    const auto authorization = record["authorization"].get<std::string>();
    const auto salt = record.value("salt", std::string());
    std::optional<int> expected;
    std::u16string expected_units;
    if (!record["bucket"].is_null()) {
      ++users;
      expected = record["bucket"].get<int>();
      for (const auto& unit : record.value("units", nlohmann::json::array())) {
        expected_units.push_back(static_cast<char16_t>(unit.get<unsigned>()));
      }
    }

    const std::optional<std::string> username = figshift::basic_auth_username(authorization);
    std::optional<int> actual;
    std::u16string actual_units;
    if (username) {
      actual = figshift::bucket_of(*username, salt);
      actual_units = figshift::utf8_to_utf16(*username);
    }

    if (actual == expected && actual_units == expected_units) continue;
    if (++mismatches <= max_reported) {
      std::cerr << "MISMATCH " << line << "\n  c++: bucket "
                << (actual ? std::to_string(*actual) : std::string("anonymous")) << ", units "
                << describe_units(actual_units) << '\n';
    }
  }

  std::cout << cases << " cases (" << users << " users, " << cases - users << " anonymous), "
            << mismatches << " mismatches\n";
  if (cases < min_cases) {
    std::cerr << "too few cases: expected at least " << min_cases << '\n';
    return 1;
  }
  if (users == 0 || users == cases) {
    std::cerr << "the cases must mix users and anonymous requests\n";
    return 1;
  }
  return mismatches == 0 ? 0 : 1;
}
