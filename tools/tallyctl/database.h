// The database connection of the commands that read Postgres directly (schema, query).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "cli.h"
#include "tally/common/pg.h"

namespace tally::ctl {

// Opens --db / TALLY_DATABASE_URL. No URL is a usage error; a failed connection is printed
// and returns nullptr (the command exits kExitFailure).
inline std::unique_ptr<pg::Connection> open_database(Context& ctx, const std::string& command) {
  if (ctx.database_url.empty()) {
    throw UsageError("'" + command + "' reads the database: give --db URL or TALLY_DATABASE_URL");
  }
  auto conn = pg::Connection::open(ctx.database_url, std::chrono::seconds(10));
  if (!conn.ok()) {
    ctx.err << "tallyctl: " << conn.error() << "\n";
    return nullptr;
  }
  return std::move(conn).value();
}

}  // namespace tally::ctl
