#include "common_keys.h"

#include <cstdlib>

namespace tally::config {

std::string read_listen(MapReader& top, const std::string& fallback) {
  const std::string listen = top.string("listen", fallback);
  auto parsed = HostPort::parse(listen, /*allow_zero=*/true);
  if (!parsed.ok()) top.fail("listen", parsed.error());
  return listen;
}

std::string read_database_url(MapReader& database) {
  std::string url = database.string("url", "");
  if (const char* env = std::getenv("TALLY_DATABASE_URL"); env != nullptr && *env != '\0') {
    url = env;
  }
  if (url.empty()) {
    database.fail("url", "required (or set TALLY_DATABASE_URL), e.g. postgresql://tally@127.0.0.1/tally");
  }
  return url;
}

std::vector<Network> read_networks(MapReader& map, const std::string& key) {
  std::vector<Network> out;
  for (const std::string& text : map.string_list(key)) {
    auto network = Network::parse(text);
    if (!network.ok()) map.fail(key, network.error());
    out.push_back(*network);
  }
  return out;
}

std::string read_token(MapReader& map) {
  const auto token = map.optional_string("token");
  const auto file = map.optional_string("token_file");
  if (token && file) map.fail("token", "give token or token_file, not both");
  if (file) return read_secret_file(map, "token_file", *file);
  return token.value_or("");
}

}  // namespace tally::config
