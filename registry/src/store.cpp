#include "tally/registry/store.h"

#include <algorithm>
#include <charconv>

#include "tally/schema/transaction.h"

namespace tally::registry {
namespace {

using schema::Transaction;

// Timestamps cross the wire as microseconds since the epoch ("us"): exact, and independent of
// the session's DateStyle and TimeZone.
// Column order read by read_producer(); `p` is tally.producers, `c` the assigned collector.
constexpr const char* kProducerColumns =
    "p.id, p.kind, p.address, p.route, p.interval_ms, p.format, p.target_name, p.collector_id, "
    "c.address, p.registered_by, "
    "(extract(epoch FROM p.registered_at) * 1000000)::bigint, "
    "(extract(epoch FROM p.renewed_at) * 1000000)::bigint, "
    "(extract(epoch FROM p.lease_expires_at) * 1000000)::bigint";

int64_t to_int64(std::string_view text) {
  int64_t v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

Timestamp to_timestamp(std::string_view us) {
  return Timestamp(std::chrono::microseconds(to_int64(us)));
}

std::optional<std::string> optional_text(const pg::Rows& rows, int row, int column) {
  if (rows.is_null(row, column)) return std::nullopt;
  return std::string(rows.get(row, column));
}

std::optional<Uuid> optional_uuid(const pg::Rows& rows, int row, int column) {
  if (rows.is_null(row, column)) return std::nullopt;
  auto id = Uuid::parse(rows.get(row, column));
  if (!id.ok()) return std::nullopt;
  return *id;
}

ProducerRecord read_producer(const pg::Rows& rows, int row) {
  ProducerRecord p;
  p.spec.id = *Uuid::parse(rows.get(row, 0));
  p.spec.kind = rows.get(row, 1);
  p.spec.address = rows.get(row, 2);
  p.spec.route = rows.get(row, 3);
  p.spec.interval_ms = to_int64(rows.get(row, 4));
  p.spec.format = rows.get(row, 5);
  p.spec.target_name = optional_text(rows, row, 6);
  p.collector_id = optional_uuid(rows, row, 7);
  p.collector_address = optional_text(rows, row, 8);
  p.registered_by = optional_text(rows, row, 9);
  p.registered_at = to_timestamp(rows.get(row, 10));
  p.renewed_at = to_timestamp(rows.get(row, 11));
  p.lease_expires_at = to_timestamp(rows.get(row, 12));
  return p;
}

// Column order read by read_collector(); $1 is collector_ttl in microseconds.
constexpr const char* kCollectorColumns =
    "id, address, (extract(epoch FROM first_seen) * 1000000)::bigint, "
    "(extract(epoch FROM last_seen) * 1000000)::bigint, "
    "last_seen > now() - $1::bigint * interval '1 microsecond', n_producers";

CollectorRecord read_collector(const pg::Rows& rows, int row) {
  CollectorRecord c;
  c.id = *Uuid::parse(rows.get(row, 0));
  c.address = rows.get(row, 1);
  c.first_seen = to_timestamp(rows.get(row, 2));
  c.last_seen = to_timestamp(rows.get(row, 3));
  c.alive = rows.get(row, 4) == "t";
  c.n_producers = to_int64(rows.get(row, 5));
  return c;
}

std::string uuid_array(const std::vector<Uuid>& ids) {
  std::string out = "{";
  for (const Uuid& id : ids) {
    if (out.size() > 1) out += ',';
    out += id.to_string();
  }
  out += '}';
  return out;
}

pg::Param optional_param(const std::optional<std::string>& s) {
  return s ? pg::Param(*s) : std::nullopt;
}

std::string us_text(std::chrono::microseconds d) { return std::to_string(d.count()); }

// A Postgres array literal ({"a","b",NULL}) of text values, for one array parameter.
std::string array_literal(const std::vector<std::optional<std::string>>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    if (!values[i]) {
      out += "NULL";
      continue;
    }
    out += '"';
    for (char c : *values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

// BEGIN and the assignment lock; the lock is released when the transaction ends.
Result<Transaction> begin_locked(pg::Connection& conn) {
  auto tx = Transaction::begin(conn);
  if (!tx.ok()) return tx.status();
  auto locked =
      conn.exec("SELECT pg_advisory_xact_lock(" + std::to_string(kAssignmentLockKey) + ")");
  if (!locked.ok()) return locked.status().with_context("assignment lock");
  return std::move(tx).value();
}

template <class T>
Page<T> make_page(std::vector<T> items, int limit, Uuid (*id_of)(const T&)) {
  Page<T> page;
  if (static_cast<int>(items.size()) > limit) {
    items.resize(limit);
    page.next = id_of(items.back());
  }
  page.items = std::move(items);
  return page;
}

Uuid producer_id(const ProducerRecord& p) { return p.spec.id; }
Uuid collector_id(const CollectorRecord& c) { return c.id; }

// Gives the unassigned producers and those of the dead collectors ($2) to the live ones ($1) in
// one statement, as plan_assignments() would: producers in id order, each to the collector that
// is least loaded at that moment, ties to the smaller id. That greedy hands out the "slots"
// (collector, level), level = the collector's count before it takes the producer, in the order
// (level, collector id), so the k-th producer takes the k-th slot. Only slots below the water
// level w are needed: the smallest w with sum(max(0, w - n)) >= the number of producers, which is
// min over j of ceil((count + the j smallest loads) / j); there are fewer than count + the number
// of live collectors of them. Returns how many were unassigned and how many moved.
constexpr const char* kAssignOrphansSql = R"sql(
WITH live AS (
  SELECT id, n_producers AS n, row_number() OVER w AS j, (sum(n_producers) OVER w)::bigint AS below
  FROM tally.collectors WHERE id = ANY($1::uuid[])
  WINDOW w AS (ORDER BY n_producers, id)),
orphans AS (
  SELECT id, collector_id AS was, row_number() OVER (ORDER BY id) AS k
  FROM tally.producers WHERE collector_id IS NULL OR collector_id = ANY($2::uuid[])),
water AS (
  SELECT min(((SELECT count(*) FROM orphans) + below + j - 1) / j) AS level FROM live),
slots AS (
  SELECT live.id, row_number() OVER (ORDER BY s.level, live.id) AS k
  FROM live, water, generate_series(live.n, water.level - 1) AS s(level)),
moved AS (
  UPDATE tally.producers p SET collector_id = slots.id
  FROM orphans JOIN slots ON slots.k = orphans.k
  WHERE p.id = orphans.id
  RETURNING orphans.was IS NULL AS unassigned)
SELECT count(*) FILTER (WHERE unassigned), count(*) FILTER (WHERE NOT unassigned) FROM moved)sql";

}  // namespace

RegistryStore::RegistryStore(StoreOptions options)
    : options_(options),
      ttl_us_(us_text(options.collector_ttl)),
      lease_us_(us_text(options.producer_lease)),
      forget_us_(us_text(options.forget_collector_after)) {}

Result<Registration> RegistryStore::register_producer(pg::Connection& conn,
                                                      const ProducerSpec& spec,
                                                      const Caller& caller) const {
  const RegistrationRequest request{spec, caller};
  auto results = register_producers(conn, std::span(&request, 1));
  if (!results.ok()) return results.status();
  return std::move(results->front());
}

Result<std::vector<Result<Registration>>> RegistryStore::register_producers(
    pg::Connection& conn, std::span<const RegistrationRequest> requests) const {
  // One statement in its own transaction: the function takes the assignment lock, and the lock
  // is released when the statement commits, without waiting for more client round trips.
  static const std::string kSql =
      "SELECT id, accepted, created, previous_collector_id, collector_id, collector_address,"
      "       collector_live"
      " FROM tally.register_producers($1::uuid[], $2::text[], $3::text[], $4::text[],"
      "                               $5::int[], $6::text[], $7::text[], $8::text[],"
      "                               $9::boolean[],"
      "                               $10::bigint * interval '1 microsecond',"
      "                               $11::bigint * interval '1 microsecond')";
  std::vector<std::optional<std::string>> ids, kinds, addresses, routes, intervals, formats,
      target_names, owners, may_change;
  for (const RegistrationRequest& r : requests) {
    ids.push_back(r.spec.id.to_string());
    kinds.push_back(r.spec.kind);
    addresses.push_back(r.spec.address);
    routes.push_back(r.spec.route);
    intervals.push_back(std::to_string(r.spec.interval_ms));
    formats.push_back(r.spec.format);
    target_names.push_back(r.spec.target_name);
    owners.push_back(r.caller.owner);
    may_change.push_back(r.caller.may_change_any ? "true" : "false");
  }
  auto rows = conn.exec(kSql, {array_literal(ids), array_literal(kinds), array_literal(addresses),
                               array_literal(routes), array_literal(intervals),
                               array_literal(formats), array_literal(target_names),
                               array_literal(owners), array_literal(may_change), ttl_us_,
                               lease_us_});
  if (!rows.ok()) return rows.status().with_context("registering producers");
  if (rows->size() != static_cast<int>(requests.size()))
    return Status::error("tally.register_producers returned the wrong number of rows", "internal");
  std::vector<Result<Registration>> out;
  out.reserve(requests.size());
  for (int row = 0; row < rows->size(); ++row) {
    const ProducerSpec& spec = requests[static_cast<std::size_t>(row)].spec;
    if (rows->get(row, 1) != "t") {
      out.push_back(Status::error("producer " + spec.id.to_string() +
                                      " was registered with another token; only that token or "
                                      "an admin may change it",
                                  "conflict"));
      continue;
    }
    Registration r;
    r.id = spec.id;
    r.created = rows->get(row, 2) == "t";
    const auto previous = optional_uuid(*rows, row, 3);
    r.collector_id = optional_uuid(*rows, row, 4);
    r.collector_address = optional_text(*rows, row, 5);
    r.assigned_to_live = rows->get(row, 6) == "t";
    if (previous && r.collector_id != previous) r.moved_from = previous;
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::optional<ProducerRecord>> RegistryStore::get_producer(pg::Connection& conn,
                                                                  const Uuid& id) const {
  static const std::string kSql = std::string("SELECT ") + kProducerColumns +
                                  " FROM tally.producers p LEFT JOIN tally.collectors c"
                                  " ON c.id = p.collector_id WHERE p.id = $1::uuid";
  auto rows = conn.exec(kSql, {id.to_string()});
  if (!rows.ok()) return rows.status().with_context("reading producer");
  if (rows->size() == 0) return std::optional<ProducerRecord>();
  return std::optional<ProducerRecord>(read_producer(*rows, 0));
}

Result<Page<ProducerRecord>> RegistryStore::list_producers(
    pg::Connection& conn, const PageQuery& page, const std::optional<Uuid>& collector) const {
  static const std::string kSql =
      std::string("SELECT ") + kProducerColumns +
      " FROM tally.producers p LEFT JOIN tally.collectors c ON c.id = p.collector_id"
      " WHERE ($1::uuid IS NULL OR p.collector_id = $1::uuid)"
      " AND ($2::uuid IS NULL OR p.id > $2::uuid)"
      " ORDER BY p.id LIMIT $3::int";
  auto rows = conn.exec(kSql, {collector ? pg::Param(collector->to_string()) : std::nullopt,
                               page.after ? pg::Param(page.after->to_string()) : std::nullopt,
                               std::to_string(page.limit + 1)});
  if (!rows.ok()) return rows.status().with_context("listing producers");
  std::vector<ProducerRecord> items;
  items.reserve(rows->size());
  for (int i = 0; i < rows->size(); ++i) items.push_back(read_producer(*rows, i));
  return make_page(std::move(items), page.limit, &producer_id);
}

Status RegistryStore::delete_producer(pg::Connection& conn, const Uuid& id,
                                      const Caller& caller) const {
  auto tx = begin_locked(conn);
  if (!tx.ok()) return tx.status();
  auto rows = conn.exec(
      "WITH gone AS (DELETE FROM tally.producers WHERE id = $1::uuid"
      "   AND ($2::boolean OR registered_by IS NOT DISTINCT FROM $3) RETURNING id)"
      " SELECT (SELECT count(*) FROM gone),"
      "        EXISTS (SELECT 1 FROM tally.producers WHERE id = $1::uuid)",
      {id.to_string(), caller.may_change_any ? "true" : "false", optional_param(caller.owner)});
  if (!rows.ok()) return rows.status().with_context("deleting producer");
  if (rows->get(0, 0) == "0") {
    if (rows->get(0, 1) == "t") {
      return Status::error("producer " + id.to_string() +
                               " was registered with another token; only that token or an "
                               "admin may delete it",
                           "forbidden");
    }
    return Status::error("no producer " + id.to_string(), "not_found");
  }
  return tx->commit();
}

Result<Heartbeat> RegistryStore::heartbeat(pg::Connection& conn, const CollectorSpec& spec) const {
  static const std::string kSql = R"sql(
WITH prev AS (
  SELECT last_seen > now() - $1::bigint * interval '1 microsecond' AS live
  FROM tally.collectors WHERE id = $2::uuid)
INSERT INTO tally.collectors AS c (id, address, first_seen, last_seen)
VALUES ($2::uuid, $3, now(), now())
ON CONFLICT (id) DO UPDATE SET address = EXCLUDED.address, last_seen = now()
RETURNING )sql" + std::string(kCollectorColumns) +
                                  ", COALESCE((SELECT live FROM prev), false)";
  auto rows = conn.exec(kSql, {ttl_us_, spec.id.to_string(), spec.address});
  if (!rows.ok()) return rows.status().with_context("recording heartbeat");
  Heartbeat h;
  h.collector = read_collector(*rows, 0);
  h.revived = rows->get(0, 6) != "t";
  return h;
}

Result<std::optional<CollectorRecord>> RegistryStore::get_collector(pg::Connection& conn,
                                                                    const Uuid& id) const {
  static const std::string kSql =
      std::string("SELECT ") + kCollectorColumns + " FROM tally.collectors WHERE id = $2::uuid";
  auto rows = conn.exec(kSql, {ttl_us_, id.to_string()});
  if (!rows.ok()) return rows.status().with_context("reading collector");
  if (rows->size() == 0) return std::optional<CollectorRecord>();
  return std::optional<CollectorRecord>(read_collector(*rows, 0));
}

Result<Page<CollectorRecord>> RegistryStore::list_collectors(pg::Connection& conn,
                                                             const PageQuery& page) const {
  static const std::string kSql = std::string("SELECT ") + kCollectorColumns +
                                  " FROM tally.collectors"
                                  " WHERE $2::uuid IS NULL OR id > $2::uuid"
                                  " ORDER BY id LIMIT $3::int";
  auto rows =
      conn.exec(kSql, {ttl_us_, page.after ? pg::Param(page.after->to_string()) : std::nullopt,
                       std::to_string(page.limit + 1)});
  if (!rows.ok()) return rows.status().with_context("listing collectors");
  std::vector<CollectorRecord> items;
  items.reserve(rows->size());
  for (int i = 0; i < rows->size(); ++i) items.push_back(read_collector(*rows, i));
  return make_page(std::move(items), page.limit, &collector_id);
}

Result<GcReport> RegistryStore::gc(pg::Connection& conn, const GcOptions& gc_options) const {
  GcReport report;
  auto tx = begin_locked(conn);
  if (!tx.ok()) return tx.status();

  auto expired =
      conn.exec("DELETE FROM tally.producers WHERE lease_expires_at <= now() RETURNING id");
  if (!expired.ok()) return expired.status().with_context("expiring producers");
  for (int i = 0; i < expired->size(); ++i)
    report.expired.push_back(*Uuid::parse(expired->get(i, 0)));

  // After the expiry: the triggers have already taken the expired producers off the counts.
  auto collectors = conn.exec(
      std::string("SELECT ") + kCollectorColumns + " FROM tally.collectors ORDER BY id", {ttl_us_});
  if (!collectors.ok()) return collectors.status().with_context("reading collectors");
  std::vector<Uuid> live;
  std::vector<Uuid> dead;
  for (int i = 0; i < collectors->size(); ++i) {
    CollectorRecord c = read_collector(*collectors, i);
    if (c.alive) {
      live.push_back(c.id);
    } else if (c.n_producers > 0 && gc_options.move_from_dead) {
      dead.push_back(c.id);
      report.emptied.push_back(std::move(c));
    }
  }
  if (live.empty()) report.emptied.clear();  // nowhere to move them: nothing happened

  if (!live.empty()) {
    auto moved = conn.exec(kAssignOrphansSql, {uuid_array(live), uuid_array(dead)});
    if (!moved.ok()) return moved.status().with_context("assigning producers");
    report.assigned = to_int64(moved->get(0, 0));
    report.reassigned = to_int64(moved->get(0, 1));
  }

  if (gc_options.move_from_dead) {
    auto old = conn.exec(
        "SELECT id FROM tally.collectors"
        " WHERE last_seen <= now() - $1::bigint * interval '1 microsecond'",
        {forget_us_});
    if (!old.ok()) return old.status().with_context("reading silent collectors");
    std::vector<Uuid> ids;
    for (int i = 0; i < old->size(); ++i) ids.push_back(*Uuid::parse(old->get(i, 0)));
    if (!ids.empty()) {
      // Producers are left on a dead collector only when none is live; unassigned, they go to
      // the first collector that appears.
      auto freed = conn.exec(
          "UPDATE tally.producers SET collector_id = NULL WHERE collector_id = ANY($1::uuid[])",
          {uuid_array(ids)});
      if (!freed.ok()) return freed.status().with_context("unassigning producers");
      // The age is checked again: a collector that heartbeats meanwhile is not forgotten.
      auto deleted = conn.exec(
          "DELETE FROM tally.collectors WHERE id = ANY($1::uuid[])"
          " AND last_seen <= now() - $2::bigint * interval '1 microsecond' RETURNING id",
          {uuid_array(ids), forget_us_});
      if (!deleted.ok()) return deleted.status().with_context("forgetting collectors");
      for (int i = 0; i < deleted->size(); ++i) {
        report.forgotten.push_back(*Uuid::parse(deleted->get(i, 0)));
      }
    }
  }

  // Measured last (by clock_timestamp(): from here, not from the start of the pass), but live
  // means live at the pass's now(): a collector that expired while the pass ran gives zero, and
  // the next pass moves its producers.
  auto expiry = conn.exec(
      "SELECT (extract(epoch FROM min(last_seen) + $1::bigint * interval '1 microsecond'"
      "                           - clock_timestamp()) * 1000000)::bigint"
      " FROM tally.collectors WHERE last_seen > now() - $1::bigint * interval '1 microsecond'",
      {ttl_us_});
  if (!expiry.ok()) return expiry.status().with_context("reading the next expiry");
  if (!expiry->is_null(0, 0)) {
    report.next_expiry =
        std::chrono::microseconds(std::max<int64_t>(0, to_int64(expiry->get(0, 0))));
  }

  if (Status s = tx->commit(); !s.ok()) return s.with_context("gc");
  return report;
}

Result<Counts> RegistryStore::counts(pg::Connection& conn) const {
  auto rows = conn.exec(
      "SELECT (SELECT count(*) FROM tally.producers),"
      "       (SELECT count(*) FROM tally.producers WHERE collector_id IS NULL),"
      "       (SELECT count(*) FROM tally.collectors"
      "         WHERE last_seen > now() - $1::bigint * interval '1 microsecond'),"
      "       (SELECT count(*) FROM tally.collectors)",
      {ttl_us_});
  if (!rows.ok()) return rows.status().with_context("counting");
  return Counts{to_int64(rows->get(0, 0)), to_int64(rows->get(0, 1)), to_int64(rows->get(0, 2)),
                to_int64(rows->get(0, 3))};
}

}  // namespace tally::registry
