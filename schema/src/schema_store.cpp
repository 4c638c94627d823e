#include "tally/schema/schema_store.h"

#include <charconv>

#include "tally/common/log.h"
#include "tally/schema/schema_json.h"
#include "tally/schema/views.h"

namespace tally::schema {
namespace {

SchemaCheck compare(const TimeseriesSchema& stored, const TimeseriesSchema& incoming,
                    bool inserted) {
  SchemaCheck check;
  check.stored = stored;
  check.inserted = inserted;
  if (auto difference = describe_difference(stored, incoming)) {
    check.conflict = "schema of '" + incoming.timeseries_name + "' v" +
                     std::to_string(incoming.version) +
                     " differs from the stored one: " + *difference +
                     "; stored: " + format_schema(stored) + "; new: " + format_schema(incoming);
  } else {
    check.accepted = true;
  }
  return check;
}

Status insert_if_absent(pg::Connection& conn, const TimeseriesSchema& s, bool& inserted) {
  auto r = conn.exec(
      "INSERT INTO tally.timeseries_schema (timeseries_name, version, target_name, metric_name, "
      "fields, datum_type, units, description) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
      "ON CONFLICT (timeseries_name, version) DO NOTHING",
      {s.timeseries_name, std::to_string(s.version), s.target_name, s.metric_name,
       fields_to_json(s.fields), std::string(to_string(s.datum_type)), s.units, s.description});
  if (!r.ok()) return r.status().with_context("storing schema of '" + s.timeseries_name + "'");
  inserted = r->affected() == 1;
  return {};
}

}  // namespace

Result<std::optional<TimeseriesSchema>> load_schema(pg::Connection& conn,
                                                    std::string_view timeseries_name,
                                                    uint32_t version) {
  auto rows = conn.exec(
      "SELECT target_name, metric_name, fields, datum_type, units, description "
      "FROM tally.timeseries_schema WHERE timeseries_name = $1 AND version = $2",
      {std::string(timeseries_name), std::to_string(version)});
  if (!rows.ok()) {
    return rows.status().with_context("reading schema of '" + std::string(timeseries_name) + "'");
  }
  if (rows->size() == 0) return std::optional<TimeseriesSchema>();
  TimeseriesSchema s;
  s.timeseries_name = timeseries_name;
  s.version = version;
  s.target_name = rows->get(0, 0);
  s.metric_name = rows->get(0, 1);
  auto fields = parse_fields_json(rows->get(0, 2));
  if (!fields.ok()) {
    return fields.status().with_context("stored schema of '" + s.timeseries_name + "'");
  }
  s.fields = std::move(fields).value();
  const auto datum = parse_datum_type(rows->get(0, 3));
  if (!datum) {
    return Status::error("stored schema of '" + s.timeseries_name + "': unknown datum type '" +
                             std::string(rows->get(0, 3)) + "'",
                         "decode");
  }
  s.datum_type = *datum;
  s.units = rows->get(0, 4);
  s.description = rows->get(0, 5);
  return std::optional<TimeseriesSchema>(std::move(s));
}

Result<SchemaCheck> SchemaStore::check(pg::Connection& conn, const TimeseriesSchema& schema) {
  {
    std::lock_guard lock(mu_);
    if (auto by_name = cache_.find(schema.timeseries_name); by_name != cache_.end()) {
      auto it = by_name->second.find(schema.version);
      if (it != by_name->second.end()) return compare(it->second, schema, false);
    }
  }
  // Two threads may both get here for a new schema: ON CONFLICT makes the race harmless, and
  // reading the row back means both compare against whichever insert won.
  bool inserted = false;
  if (Status s = insert_if_absent(conn, schema, inserted); !s.ok()) return s;
  auto stored = load_schema(conn, schema.timeseries_name, schema.version);
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) {
    return Status::error("schema of '" + schema.timeseries_name + "' vanished after insert",
                         "not_found");
  }
  TimeseriesSchema value = std::move(**stored);
  SchemaCheck result = compare(value, schema, inserted);
  // The view follows its schema; a failure costs only the view (refresh_views, run by the
  // collector's maintenance, makes it later), never the samples.
  if (inserted) {
    if (auto view = refresh_view(conn, schema.timeseries_name); !view.ok()) {
      log_warn("view_not_created",
               {{"timeseries", schema.timeseries_name}, {"error", view.error()}});
    }
  }
  std::lock_guard lock(mu_);
  cache_[schema.timeseries_name].emplace(schema.version, std::move(value));
  return result;
}

void SchemaStore::clear_cache() {
  std::lock_guard lock(mu_);
  cache_.clear();
}

}  // namespace tally::schema
