// tallyctl's view of the registry API: requests with the token, JSON answers as flat records,
// and failures turned into messages a person can act on. JSON is handled in the .cpp only.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tally/common/result.h"

namespace tally::ctl {

// One JSON object from the registry.
struct Record {
  // Top-level fields in order, as display text: strings unquoted, null as nullopt, numbers
  // and booleans as JSON spells them, nested values as compact JSON.
  std::vector<std::pair<std::string, std::optional<std::string>>> fields;
  std::string json;  // the whole object, compact

  std::string get(std::string_view key) const;  // "" when absent or null
  bool is_null(std::string_view key) const;     // true when absent or null
};

// Failures carry these codes: "unreachable", "timeout", "unauthorized", "forbidden",
// "not_found", "conflict", "bad_request", "too_large", "no_live_collector",
// "database_unavailable", "protocol" (an answer that is not the registry's JSON), "error".
class RegistryClient {
 public:
  RegistryClient(std::string base_url, std::string token);

  Result<Record> get(const std::string& path);
  // Follows "next" until the last page; `path` may carry a query ("?collector_id=…").
  Result<std::vector<Record>> get_all(const std::string& path);
  // POSTs a JSON body; the answer on 2xx.
  Result<Record> post(const std::string& path, const std::string& json_body);
  Status del(const std::string& path);

  const std::string& base_url() const { return base_url_; }

 private:
  struct Answer {
    int status = 0;
    std::string body;
  };
  Result<Answer> send(std::string_view method, const std::string& path, const std::string& body);
  // A non-2xx answer as a Status with a message that says what to do.
  Status failure(const Answer& answer) const;

  std::string base_url_;
  std::string token_;
};

}  // namespace tally::ctl
