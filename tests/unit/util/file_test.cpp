// read_file (src/util/file.cpp, include/figshift/util/file.hpp): a whole file,
// byte for byte, or nullopt and why it could not be opened.
#include "figshift/util/file.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <system_error>

#include "../store/store_test_support.hpp"

namespace figshift {
namespace {

using store_test::TempDir;
using store_test::write_text;

TEST(UtilReadFile, EveryByteAsWritten) {
  TempDir dir;
  const std::string bytes = std::string("line\r\nNUL \0 here\n\xFF\xFE no newline at the end", 38);
  write_text(dir / "f", bytes);
  std::error_code error;
  const auto text = read_file(dir / "f", error);
  ASSERT_TRUE(text.has_value()) << error.message();
  EXPECT_EQ(*text, bytes);
  EXPECT_EQ(read_file(dir / "f"), bytes);
}

TEST(UtilReadFile, AnEmptyFileIsAnEmptyString) {
  TempDir dir;
  write_text(dir / "empty", "");
  EXPECT_EQ(read_file(dir / "empty"), std::string());
}

TEST(UtilReadFile, AMissingFileIsNulloptWithItsErrno) {
  TempDir dir;
  std::error_code error;
  EXPECT_EQ(read_file(dir / "missing", error), std::nullopt);
  EXPECT_EQ(error, std::error_code(ENOENT, std::generic_category())) << error.message();
  EXPECT_EQ(read_file(dir / "missing"), std::nullopt);
}

}  // namespace
}  // namespace figshift
