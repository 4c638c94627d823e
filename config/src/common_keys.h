// Keys that several daemons' configs share, read the same way everywhere.
#pragma once

#include <string>
#include <vector>

#include "tally/common/network.h"
#include "yaml_reader.h"

namespace tally::config {

// `listen: host:port` (port 0 allowed: the OS picks one).
std::string read_listen(MapReader& top, const std::string& fallback);
// database.url, overridden by TALLY_DATABASE_URL; required.
std::string read_database_url(MapReader& database);
// A list of CIDR networks.
std::vector<Network> read_networks(MapReader& map, const std::string& key);
// `token` or `token_file` (at most one); "" when neither is given.
std::string read_token(MapReader& map);

}  // namespace tally::config
