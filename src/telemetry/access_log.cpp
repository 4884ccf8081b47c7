#include <fmt/format.h>
#include <spdlog/async.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>

#include "figshift/telemetry.hpp"

namespace figshift {
namespace {

constexpr std::size_t queue_lines = 64 * 1024;

// JSON string escaping for the few fields that carry client bytes.
void append_json_string(fmt::memory_buffer& out, std::string_view text) {
  out.push_back('"');
  for (unsigned char c : text) {
    switch (c) {
      case '"': out.append(std::string_view("\\\"")); break;
      case '\\': out.append(std::string_view("\\\\")); break;
      case '\n': out.append(std::string_view("\\n")); break;
      case '\r': out.append(std::string_view("\\r")); break;
      case '\t': out.append(std::string_view("\\t")); break;
      default:
        if (c < 0x20 || c >= 0x7f)  // keeps every line valid UTF-8 whatever the client sent
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
        else
          out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
}

std::atomic<unsigned> logger_serial{0};

}  // namespace

AccessLog::AccessLog(const std::string& path)
    : pool_(std::make_shared<spdlog::details::thread_pool>(queue_lines, 1)) {
  spdlog::sink_ptr sink;
  if (path == "-")
    sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  else
    sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path);
  logger_ = std::make_shared<spdlog::async_logger>(
      "access" + std::to_string(logger_serial++), std::move(sink), pool_,
      spdlog::async_overflow_policy::overrun_oldest);
  logger_->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ",%v)", spdlog::pattern_time_type::utc);
  logger_->set_level(spdlog::level::info);
}

AccessLog::~AccessLog() {
  // The logger holds its pool only weakly: drain the queue before the pool's thread goes.
  logger_->flush();
  logger_.reset();
  pool_.reset();
}

void AccessLog::flush() { logger_->flush(); }

void AccessLog::write(const AccessRecord& r) {
  fmt::memory_buffer line;
  fmt::format_to(std::back_inserter(line), R"("conn":{},"client":)", r.connection);
  append_json_string(line, r.client);
  line.append(std::string_view(R"(,"method":)"));
  append_json_string(line, r.method);
  line.append(std::string_view(R"(,"path":)"));
  append_json_string(line, r.target);
  fmt::format_to(std::back_inserter(line), R"(,"status":{},"upstream":)", r.status);
  if (r.upstream.empty())
    line.append(std::string_view("null"));
  else
    append_json_string(line, r.upstream);
  line.append(std::string_view(R"(,"group":)"));
  if (r.group.empty())
    line.append(std::string_view("null"));
  else
    append_json_string(line, r.group);
  if (r.bucket >= 0)
    fmt::format_to(std::back_inserter(line), R"(,"bucket":{})", r.bucket);
  else
    line.append(std::string_view(R"(,"bucket":null)"));
  fmt::format_to(std::back_inserter(line), R"(,"latency_ms":{:.3f},"bytes":{})", r.latency_ms,
                 r.bytes);
  if (!r.username.empty()) {
    line.append(std::string_view(R"(,"user":)"));
    append_json_string(line, r.username);
  }
  line.push_back('}');
  logger_->info(std::string_view(line.data(), line.size()));
}

}  // namespace figshift
