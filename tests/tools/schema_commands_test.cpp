// tallyctl schema list | show against a real database.
#include <doctest/doctest.h>

#include <boost/json.hpp>

#include "support/child_process.h"
#include "support/test_db.h"
#include "tally/schema/migrations.h"
#include "tally/schema/schema_store.h"

using namespace tally;
using namespace tally::test;
namespace json = boost::json;

namespace {

schema::TimeseriesSchema make_schema(std::string name, DatumType type,
                                     std::vector<schema::FieldSchema> fields,
                                     uint32_t version = 1) {
  schema::TimeseriesSchema s;
  s.timeseries_name = std::move(name);
  s.target_name = s.timeseries_name.substr(0, s.timeseries_name.find(':'));
  s.metric_name = s.timeseries_name.substr(s.timeseries_name.find(':') + 1);
  s.fields = std::move(fields);
  s.datum_type = type;
  s.version = version;
  return s;
}

// Two schemas, one with two versions, and three series of http_service:requests v1.
void store_schemas(const TestDatabase& db) {
  auto conn = db.connect();
  REQUIRE(schema::apply_migrations(*conn).ok());
  schema::SchemaStore store;
  using schema::FieldSource;
  auto requests = make_schema("http_service:requests", DatumType::kCumulativeU64,
                              {{"name", FieldType::kString, FieldSource::kTarget},
                               {"status_code", FieldType::kU16, FieldSource::kMetric}});
  requests.units = "requests";
  requests.description = "HTTP requests served";
  REQUIRE(store.check(*conn, requests).ok());
  REQUIRE(store
              .check(*conn, make_schema("disk:usage", DatumType::kF64,
                                        {{"path", FieldType::kString, FieldSource::kMetric}}))
              .ok());
  REQUIRE(store
              .check(*conn, make_schema("disk:usage", DatumType::kU64,
                                        {{"device", FieldType::kString, FieldSource::kTarget},
                                         {"path", FieldType::kString, FieldSource::kMetric}},
                                        2))
              .ok());
  auto r = conn->exec(
      "INSERT INTO tally.timeseries (timeseries_key, timeseries_name, version, fields) VALUES "
      "(1, 'http_service:requests', 1, '{}'), (2, 'http_service:requests', 1, '{}'), "
      "(3, 'http_service:requests', 1, '{}'), (4, 'disk:usage', 2, '{}')");
  REQUIRE_MESSAGE(r.ok(), r.error());
}

CommandResult tallyctl(const TestDatabase& db, std::vector<std::string> args) {
  args.insert(args.begin(), TALLY_TALLYCTL_PATH);
  return run_command(args, {{"TALLY_DATABASE_URL", db.url()}});
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("schema list shows name, version, datum type, fields and series count") {
  TestDatabase db;
  store_schemas(db);
  CommandResult table = tallyctl(db, {"schema", "list"});
  REQUIRE_MESSAGE(table.exit_code == 0, table.err);
  CHECK(table.out ==
        "NAME                   VERSION  DATUM_TYPE      FIELDS                       SERIES\n"
        "disk:usage             1        f64             path:string                  0\n"
        "disk:usage             2        u64             device:string,path:string    1\n"
        "http_service:requests  1        cumulative_u64  name:string,status_code:u16  3\n");

  CommandResult csv = tallyctl(db, {"schema", "list", "--format", "csv"});
  REQUIRE(csv.exit_code == 0);
  CHECK(contains(csv.out, "name,version,datum_type,fields,series\r\n"));
  CHECK(contains(csv.out,
                 "http_service:requests,1,cumulative_u64,\"name:string,status_code:u16\",3"));

  CommandResult as_json = tallyctl(db, {"--format", "json", "schema", "list"});
  REQUIRE(as_json.exit_code == 0);
  const json::array items = json::parse(as_json.out).as_array();
  REQUIRE(items.size() == 3);
  const json::object& requests = items.at(2).as_object();
  CHECK(requests.at("timeseries_name").as_string() == "http_service:requests");
  CHECK(requests.at("version").as_int64() == 1);
  CHECK(requests.at("datum_type").as_string() == "cumulative_u64");
  CHECK(requests.at("n_series").as_int64() == 3);
  CHECK(requests.at("units").as_string() == "requests");
  CHECK(requests.at("description").as_string() == "HTTP requests served");
  CHECK(requests.at("view").as_string() == "tally_ts.\"http_service:requests\"");
  const json::array& fields = requests.at("fields").as_array();
  REQUIRE(fields.size() == 2);
  CHECK(fields.at(1).at("name").as_string() == "status_code");
  CHECK(fields.at(1).at("type").as_string() == "u16");
  CHECK(fields.at(1).at("source").as_string() == "metric");
  CHECK(fields.at(1).at("sql_type").as_string() == "integer");
}

TEST_CASE("schema show prints the latest version, its fields and its view") {
  TestDatabase db;
  store_schemas(db);
  CommandResult show = tallyctl(db, {"schema", "show", "disk:usage"});
  REQUIRE_MESSAGE(show.exit_code == 0, show.err);
  CHECK(contains(show.out, "version:      2 (stored versions: 1 2)\n"));
  CHECK(contains(show.out, "datum_type:   u64\n"));
  CHECK(contains(show.out, "series:       1\n"));
  CHECK(contains(show.out, "view:         tally_ts.\"disk:usage\"\n"));
  CHECK(contains(show.out,
                 "FIELD   TYPE    SOURCE  SQL_TYPE\n"
                 "device  string  target  text\n"
                 "path    string  metric  text\n"));

  CommandResult as_json =
      tallyctl(db, {"schema", "show", "http_service:requests", "--format", "json"});
  REQUIRE(as_json.exit_code == 0);
  const json::object o = json::parse(as_json.out).as_object();
  CHECK(o.at("versions").as_array().size() == 1);
  CHECK(o.at("target_name").as_string() == "http_service");
  CHECK(o.at("metric_name").as_string() == "requests");
  CHECK(o.at("n_series").as_int64() == 3);
}

TEST_CASE("schema commands: unknown names, bad usage, no database, empty database") {
  TestDatabase db;
  auto conn = db.connect();
  REQUIRE(schema::apply_migrations(*conn).ok());

  CommandResult empty = tallyctl(db, {"schema", "list"});
  CHECK(empty.exit_code == 0);
  CHECK(empty.out == "NAME  VERSION  DATUM_TYPE  FIELDS  SERIES\n");
  CHECK(contains(empty.err, "no schemas stored yet"));
  CHECK(tallyctl(db, {"schema", "list", "--format", "json"}).out == "[]\n");

  CommandResult unknown = tallyctl(db, {"schema", "show", "nope:missing"});
  CHECK(unknown.exit_code == 2);
  CHECK(contains(unknown.err, "unknown timeseries 'nope:missing'"));
  CommandResult bad_name = tallyctl(db, {"schema", "show", "Nope"});
  CHECK(bad_name.exit_code == 2);
  CHECK(contains(bad_name.err, "'Nope' is not a timeseries name"));
  CHECK(tallyctl(db, {"schema", "show"}).exit_code == 2);
  CHECK(tallyctl(db, {"schema", "drop"}).exit_code == 2);
  CHECK(tallyctl(db, {"schema", "list", "--format", "yaml"}).exit_code == 2);

  CommandResult no_db = run_command({TALLY_TALLYCTL_PATH, "schema", "list"});
  CHECK(no_db.exit_code == 2);
  CHECK(contains(no_db.err, "give --db URL or TALLY_DATABASE_URL"));
  CommandResult down = run_command(
      {TALLY_TALLYCTL_PATH, "--db", "postgresql://postgres@127.0.0.1:1/none", "schema", "list"});
  CHECK(down.exit_code == 1);
  CHECK(contains(down.err, "cannot connect"));
}
