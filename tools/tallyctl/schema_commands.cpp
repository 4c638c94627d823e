// tallyctl schema list | schema show NAME: the stored timeseries schemas, read from Postgres.
#include <iostream>

#include "cli.h"
#include "database.h"
#include "output.h"
#include "tally/common/http_message.h"
#include "tally/common/names.h"
#include "tally/schema/schema_json.h"
#include "tally/schema/views.h"

namespace tally::ctl {
namespace {

constexpr const char* kUsage = R"(usage: tallyctl [--db URL] schema COMMAND

  list [--format table|json|csv]
                 every stored schema: name, version, datum type, fields, number of series
  show NAME [--format table|json]
                 one timeseries: its latest schema, fields and SQL view
)";

// Every version of every schema (or of one name), with its number of series.
constexpr const char* kSchemaQuery =
    "SELECT s.timeseries_name, s.version, s.target_name, s.metric_name, s.datum_type, "
    "s.fields::text, s.units, s.description, "
    "(extract(epoch FROM s.created_at) * 1000000)::bigint, "
    "(SELECT count(*) FROM tally.timeseries t "
    " WHERE t.timeseries_name = s.timeseries_name AND t.version = s.version) "
    "FROM tally.timeseries_schema s ";

struct SchemaRow {
  schema::TimeseriesSchema schema;
  std::string datum_type;  // as stored
  Timestamp created_at;
  std::string n_series;
};

Result<std::vector<SchemaRow>> read_schemas(pg::Connection& conn,
                                            const std::optional<std::string>& name) {
  auto rows =
      name
          ? conn.exec(std::string(kSchemaQuery) + "WHERE s.timeseries_name = $1 ORDER BY s.version",
                      {*name})
          : conn.exec(std::string(kSchemaQuery) + "ORDER BY 1, 2");
  if (!rows.ok()) return rows.status();
  std::vector<SchemaRow> out;
  for (int r = 0; r < rows->size(); ++r) {
    SchemaRow row;
    row.schema.timeseries_name = rows->get(r, 0);
    row.schema.version = static_cast<uint32_t>(std::stoul(std::string(rows->get(r, 1))));
    row.schema.target_name = rows->get(r, 2);
    row.schema.metric_name = rows->get(r, 3);
    row.datum_type = rows->get(r, 4);
    if (auto t = parse_datum_type(row.datum_type)) row.schema.datum_type = *t;
    auto fields = schema::parse_fields_json(rows->get(r, 5));
    if (!fields.ok()) {
      return fields.status().with_context("stored schema of '" + row.schema.timeseries_name + "'");
    }
    row.schema.fields = std::move(fields).value();
    row.schema.units = rows->get(r, 6);
    row.schema.description = rows->get(r, 7);
    row.created_at = Timestamp(std::chrono::microseconds(std::stoll(std::string(rows->get(r, 8)))));
    row.n_series = rows->get(r, 9);
    out.push_back(std::move(row));
  }
  return out;
}

std::string fields_text(const schema::TimeseriesSchema& s) {
  std::string out;
  for (const schema::FieldSchema& f : s.fields) {
    if (!out.empty()) out += ',';
    out += f.name + ":" + std::string(to_string(f.type));
  }
  return out.empty() ? "-" : out;
}

std::string view_reference(const std::string& timeseries_name) {
  std::string quoted = "\"";
  for (char c : schema::view_name(timeseries_name)) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return "tally_ts." + quoted + "\"";
}

std::string row_json(const SchemaRow& row, const std::vector<uint32_t>& versions = {}) {
  const schema::TimeseriesSchema& s = row.schema;
  std::string out = "{\"timeseries_name\":";
  append_json_string(out, s.timeseries_name);
  out += ",\"version\":" + std::to_string(s.version);
  if (!versions.empty()) {
    out += ",\"versions\":[";
    for (std::size_t i = 0; i < versions.size(); ++i) {
      out += (i > 0 ? "," : "") + std::to_string(versions[i]);
    }
    out += ']';
  }
  out += ",\"target_name\":";
  append_json_string(out, s.target_name);
  out += ",\"metric_name\":";
  append_json_string(out, s.metric_name);
  out += ",\"datum_type\":";
  append_json_string(out, row.datum_type);
  out += ",\"fields\":[";
  for (std::size_t i = 0; i < s.fields.size(); ++i) {
    const schema::FieldSchema& f = s.fields[i];
    out += i > 0 ? ",{\"name\":" : "{\"name\":";
    append_json_string(out, f.name);
    out += ",\"type\":\"" + std::string(to_string(f.type)) + "\",\"source\":\"" +
           std::string(to_string(f.source)) + "\",\"sql_type\":\"" +
           std::string(schema::field_sql_type(f.type)) + "\"}";
  }
  out += "],\"units\":";
  append_json_string(out, s.units);
  out += ",\"description\":";
  append_json_string(out, s.description);
  out += ",\"created_at\":\"" + format_rfc3339(row.created_at) + "\",\"n_series\":" + row.n_series +
         ",\"view\":";
  append_json_string(out, view_reference(s.timeseries_name));
  out += '}';
  return out;
}

int fail(Context& ctx, const Status& s) {
  ctx.err << "tallyctl: " << s.message() << "\n";
  return kExitFailure;
}

int do_list(Context& ctx, const Args& args) {
  args.allow_only("schema list", {});
  args.expect_positionals("schema list", 2, 0, "no positional arguments");
  const OutputFormat format = output_format(args, /*allow_csv=*/true);
  auto conn = open_database(ctx, "schema list");
  if (!conn) return kExitFailure;
  auto rows = read_schemas(*conn, std::nullopt);
  if (!rows.ok()) return fail(ctx, rows.status());
  if (format == OutputFormat::kJson) {
    std::vector<std::string> items;
    for (const SchemaRow& r : *rows) items.push_back(row_json(r));
    print_json_array(ctx.out, items);
    return kExitOk;
  }
  Table table{{"name", "version", "datum_type", "fields", "series"}};
  for (const SchemaRow& r : *rows) {
    table.rows.push_back({r.schema.timeseries_name, std::to_string(r.schema.version), r.datum_type,
                          fields_text(r.schema), r.n_series});
  }
  if (format == OutputFormat::kCsv) {
    print_csv(ctx.out, table);
  } else {
    print_table(ctx.out, table);
  }
  if (rows->empty()) ctx.err << "no schemas stored yet\n";
  return kExitOk;
}

int do_show(Context& ctx, const Args& args) {
  args.allow_only("schema show", {});
  args.expect_positionals("schema show", 2, 1, "a timeseries NAME");
  const OutputFormat format = output_format(args);
  const std::string name = args.positionals[2];
  if (Status s = validate_timeseries_name(name); !s.ok()) {
    throw UsageError("'" + name + "' is not a timeseries name: " + s.message());
  }
  auto conn = open_database(ctx, "schema show");
  if (!conn) return kExitFailure;
  auto rows = read_schemas(*conn, name);
  if (!rows.ok()) return fail(ctx, rows.status());
  if (rows->empty()) {
    throw UsageError("unknown timeseries '" + name +
                     "' (tallyctl schema list shows the stored ones)");
  }
  std::vector<uint32_t> versions;
  for (const SchemaRow& r : *rows) versions.push_back(r.schema.version);
  const SchemaRow& latest = rows->back();
  const schema::TimeseriesSchema& s = latest.schema;
  if (format == OutputFormat::kJson) {
    ctx.out << row_json(latest, versions) << "\n";
    return kExitOk;
  }
  std::string version = std::to_string(s.version);
  if (versions.size() > 1) {
    version += " (stored versions:";
    for (uint32_t v : versions) version += " " + std::to_string(v);
    version += ")";
  }
  print_fields(ctx.out, {{"name", s.timeseries_name},
                         {"version", version},
                         {"target", s.target_name},
                         {"metric", s.metric_name},
                         {"datum_type", latest.datum_type},
                         {"units", s.units.empty() ? "-" : s.units},
                         {"description", s.description.empty() ? "-" : s.description},
                         {"created_at", format_rfc3339(latest.created_at)},
                         {"series", latest.n_series},
                         {"view", view_reference(s.timeseries_name)}});
  ctx.out << "\n";
  Table fields{{"field", "type", "source", "sql_type"}};
  for (const schema::FieldSchema& f : s.fields) {
    fields.rows.push_back({f.name, std::string(to_string(f.type)), std::string(to_string(f.source)),
                           std::string(schema::field_sql_type(f.type))});
  }
  print_table(ctx.out, fields);
  return kExitOk;
}

}  // namespace

int schema_command(Context& ctx, const Args& args) {
  if (args.has("--help")) {
    ctx.out << kUsage;
    return kExitOk;
  }
  if (args.positionals.size() < 2) {
    throw UsageError(std::string("'schema' needs a command\n") + kUsage);
  }
  const std::string& command = args.positionals[1];
  if (command == "list") return do_list(ctx, args);
  if (command == "show") return do_show(ctx, args);
  throw UsageError("unknown command 'schema " + command + "'\n" + kUsage);
}

}  // namespace tally::ctl
