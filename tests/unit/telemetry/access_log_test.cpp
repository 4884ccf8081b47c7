// The access log (README "Admin API, CLI and observability", `access_log` in
// the config table): one JSON line per request with time, method, path,
// status, upstream, group, bucket, latency and bytes; the username only when
// given (access_log.include_username); written by a background thread to a
// file, here a temporary one; lines that cannot be written are dropped and
// counted, never blocking the caller.
#include "figshift/telemetry/access_log.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "figshift/routing.hpp"

namespace figshift {
namespace {

using json = nlohmann::json;

class TempFile {
 public:
  TempFile() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "figshift-access-XXXXXX").string();
    const int fd = ::mkstemp(pattern.data());
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    ::close(fd);
    path_ = pattern;
  }
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string read() const {
    std::ifstream in(path_, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  std::string path_;
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(text.substr(start, nl - start));
  EXPECT_EQ(start, text.size()) << "a line without its \\n: " << text.substr(start);
  return lines;
}

// Waits (up to 5 s) until `file` holds at least `n` lines: the writer thread is asynchronous.
std::string wait_for_lines(const TempFile& file, std::size_t n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    std::string text = file.read();
    std::size_t count = 0;
    for (char c : text) count += c == '\n';
    if (count >= n || std::chrono::steady_clock::now() > deadline) return text;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::int64_t unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// "2026-11-22T02:42:42.123Z" -> Unix ms.
std::int64_t parse_time(const std::string& text) {
  std::tm tm{};
  const char* end = ::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end || *end != '.') return -1;
  return static_cast<std::int64_t>(::timegm(&tm)) * 1000 + std::atoi(end + 1);
}

AccessRecord typical_record() {
  AccessRecord r;
  r.connection = 7;
  r.client = "127.0.0.1";
  r.method = "GET";
  r.target = "/orders/1?q=\"x\"&y=\\";  // a quote and a backslash: JSON-escaped
  r.status = 200;
  r.upstream = "B1";
  r.group = "new";
  r.bucket = 0;
  r.latency_ms = 12.5;
  r.bytes = 321;
  return r;
}

// The lines a log writes for `records`, written through one buffer to a fresh
// file (the buffer flushes when it goes, the log writes what is queued before
// it stops).
std::vector<std::string> lines_logged(const std::vector<AccessRecord>& records) {
  TempFile file;
  {
    AccessLog log(file.path());
    AccessLogBuffer buffer(log);
    for (const auto& record : records) buffer.write(record);
  }
  return lines_of(file.read());
}

TEST(TelemetryAccessLog, OneJsonLinePerRecordWithEveryField) {
  TempFile file;
  const auto before = unix_ms();
  {
    AccessLog log(file.path());
    AccessLogBuffer buffer(log);
    buffer.write(typical_record());
    buffer.flush();
  }  // the log writes what is queued before it stops
  const auto after = unix_ms();
  const auto lines = lines_of(file.read());
  ASSERT_EQ(lines.size(), 1u);
  const json j = json::parse(lines[0]);
  EXPECT_EQ(j.at("method"), "GET");
  EXPECT_EQ(j.at("path"), "/orders/1?q=\"x\"&y=\\");
  EXPECT_EQ(j.at("status"), 200);
  EXPECT_EQ(j.at("upstream"), "B1");
  EXPECT_EQ(j.at("group"), "new");
  EXPECT_EQ(j.at("bucket"), 0);
  EXPECT_DOUBLE_EQ(j.at("latency_ms").get<double>(), 12.5);
  EXPECT_EQ(j.at("bytes"), 321);
  EXPECT_FALSE(j.contains("user")) << "no username given: " << lines[0];
  // UTC with milliseconds, the moment the line was written.
  const std::string time = j.at("time");
  EXPECT_TRUE(std::regex_match(time, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << time;
  EXPECT_GE(parse_time(time), before);
  EXPECT_LE(parse_time(time), after);
}

TEST(TelemetryAccessLog, AnonymousRequestsAndTheProxysOwnAnswersHaveNulls) {
  AccessRecord r = typical_record();
  r.bucket = -1;    // anonymous
  r.upstream = "";  // answered by the proxy itself (e.g. a 400)
  r.group = "";
  r.status = 400;
  const auto lines = lines_logged({r});
  ASSERT_EQ(lines.size(), 1u);
  const json j = json::parse(lines[0]);
  EXPECT_TRUE(j.at("bucket").is_null()) << lines[0];
  EXPECT_TRUE(j.at("upstream").is_null()) << lines[0];
  EXPECT_TRUE(j.at("group").is_null()) << lines[0];
  EXPECT_EQ(j.at("status"), 400);
}

TEST(TelemetryAccessLog, TheUsernameAppearsOnlyWhenGiven) {
  AccessRecord with_user = typical_record();
  with_user.username = "alice";
  const auto lines = lines_logged({with_user, typical_record()});
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(json::parse(lines[0]).at("user"), "alice");
  EXPECT_FALSE(json::parse(lines[1]).contains("user")) << lines[1];
  EXPECT_EQ(lines[1].find("alice"), std::string::npos);
}

TEST(TelemetryAccessLog, Utf8IsKeptAsSentAndAnythingElseStaysValidJson) {
  AccessRecord record = typical_record();
  // é and ë (2 bytes each), an emoji (4), a C1 control (U+0085), a tab, and
  // two bytes that are not UTF-8 at all.
  record.target = "/caf\xc3\xa9?u=Zo\xc3\xab\xf0\x9f\x98\x80\xc2\x85\t\xff\xfe";
  record.username = "Zo\xc3\xab";
  const auto lines = lines_logged({record});
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(valid_utf8(lines[0])) << lines[0];
  const json j = json::parse(lines[0]);
  EXPECT_EQ(j.at("user"), "Zo\u00eb");
  EXPECT_EQ(j.at("path"), "/caf\u00e9?u=Zo\u00eb\U0001F600\u0085\t\ufffd\ufffd");
  // written as sent, not as \u00c3\u00ab (the bytes taken for Latin-1)
  EXPECT_NE(lines[0].find("Zo\xc3\xab"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("\\u0085\\u0009\\ufffd\\ufffd"), std::string::npos) << lines[0];
}

TEST(TelemetryAccessLog, ABufferHandsItsLinesOverOnceTheyReachFlushBytes) {
  TempFile file;
  AccessLog log(file.path());
  {
    AccessLogBuffer buffer(log, 4096);
    buffer.write(typical_record());
    buffer.write(typical_record());  // two short lines: well under 4096 bytes
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_EQ(file.read(), "") << "lines were written before the buffer reached flush_bytes";

    AccessRecord long_path = typical_record();
    const std::string path = "/" + std::string(5000, 'p');
    long_path.target = path;  // this line alone passes 4096 bytes
    buffer.write(long_path);
    const auto lines = lines_of(wait_for_lines(file, 3));
    ASSERT_EQ(lines.size(), 3u) << "the buffer should have been handed over whole";
    EXPECT_EQ(json::parse(lines[2]).at("path"), path);

    buffer.write(typical_record());  // under flush_bytes again: kept until flush()
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_EQ(lines_of(file.read()).size(), 3u);
    buffer.flush();
    EXPECT_EQ(lines_of(wait_for_lines(file, 4)).size(), 4u);
  }
}

TEST(TelemetryAccessLog, WritesThatFailAreDroppedAndCounted) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  AccessLog log("/dev/full");  // every write fails with ENOSPC, like a full disk
  EXPECT_EQ(log.dropped_bytes(), 0u);
  const std::string batch = "{\"a\":1}\n{\"b\":2}\n";
  log.submit(batch);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (log.dropped_bytes() < batch.size() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(log.dropped_bytes(), batch.size());
}

TEST(TelemetryAccessLog, AnUnopenableFileIsRefused) {
  EXPECT_THROW(AccessLog("/nonexistent-figshift-dir/access.log"), std::runtime_error);
}

}  // namespace
}  // namespace figshift
