// The registry's state in Postgres (tally.producers, tally.collectors): registration with
// assignment, heartbeats, listing, and the periodic GC. Stateless apart from its options, so
// any number of registries (threads or processes) can share one database.
//
// Liveness is decided by the database's clock (now()), never the registry host's, so replicas
// agree. Every change to an assignment happens in a transaction holding one advisory lock
// (kAssignmentLockKey), so concurrent registrations on several registries cannot all pick the
// same least-loaded collector. Callers pass a connection used by one thread at a time.
//
// Errors: "not_found", "conflict" (a producer registered by another token), "forbidden",
// "no_live_collector" is not an error (see Registration), and database errors with the codes
// of pg::Connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tally/common/pg.h"
#include "tally/common/result.h"
#include "tally/registry/records.h"

namespace tally::registry {

// pg_advisory_xact_lock key for assignments: "tallyREG" in ASCII.
inline constexpr int64_t kAssignmentLockKey = 8386103194288276807;

struct StoreOptions {
  std::chrono::microseconds collector_ttl = std::chrono::seconds(15);
  std::chrono::microseconds producer_lease = std::chrono::minutes(10);
  // A collector silent this long is forgotten (its row deleted) by gc().
  std::chrono::microseconds forget_collector_after = std::chrono::seconds(150);
};

// Who asks for a change to a producer.
struct Caller {
  std::optional<std::string> owner;  // stored as registered_by
  bool may_change_any = false;       // admin (or `auth: none`)
};

struct RegistrationRequest {
  ProducerSpec spec;
  Caller caller;
};

struct Registration {
  Uuid id;
  std::optional<Uuid> collector_id;  // nullopt (or a dead collector) when none is live
  std::optional<std::string> collector_address;
  bool created = false;            // false: a renewal
  std::optional<Uuid> moved_from;  // set when the producer left a dead collector
  bool assigned_to_live = false;   // false: no live collector, answer 503
};

struct Heartbeat {
  CollectorRecord collector;
  bool revived = false;  // new, or back after being dead: unassigned producers may move to it
};

template <class T>
struct Page {
  std::vector<T> items;
  std::optional<Uuid> next;  // the last id of this page when more items follow
};

struct PageQuery {
  std::optional<Uuid> after;
  int limit = 100;
};

struct GcOptions {
  // Move producers away from dead collectors and forget long-dead collectors. The registry
  // turns this off for one collector_ttl after it starts (or regains the database), so that
  // collectors get a chance to heartbeat before they are declared dead.
  bool move_from_dead = true;
};

struct GcReport {
  std::vector<Uuid> expired;             // producers whose lease ran out, deleted
  int64_t reassigned = 0;                // moved from a dead collector to a live one
  int64_t assigned = 0;                  // unassigned producers given to a live collector
  std::vector<CollectorRecord> emptied;  // dead collectors whose producers were moved
  std::vector<Uuid> forgotten;           // collector rows deleted
  // How long after the end of the pass the earliest live collector's last heartbeat becomes
  // older than collector_ttl, by the database's clock (zero: it already is; call gc() again);
  // nullopt when no collector is live. The registry runs its next pass then, so that a death
  // is acted on at once rather than up to one gc_interval later.
  std::optional<std::chrono::microseconds> next_expiry;
};

struct Counts {
  int64_t producers = 0;
  int64_t unassigned = 0;
  int64_t live_collectors = 0;
  int64_t collectors = 0;
};

class RegistryStore {
 public:
  explicit RegistryStore(StoreOptions options);
  const StoreOptions& options() const { return options_; }

  // Registers or renews: register_producers() with one request. The database function holds
  // the assignment lock only while it runs on the server. A new producer goes to the live
  // collector with the fewest producers (ties: the smaller id). A renewal renews the lease,
  // updates the other fields and keeps the assignment while that collector is live;
  // otherwise it moves to the least-loaded live one.
  Result<Registration> register_producer(pg::Connection& conn, const ProducerSpec& spec,
                                         const Caller& caller) const;
  // Several registrations in one call to tally.register_producers (schema/sql/003_*.sql): one
  // lock, one insert, one commit for all, each decided as register_producer would in turn.
  // The ids must be distinct. The outer error is the database's (nothing was stored); an inner
  // one is that request's own ("conflict").
  Result<std::vector<Result<Registration>>> register_producers(
      pg::Connection& conn, std::span<const RegistrationRequest> requests) const;
  Result<std::optional<ProducerRecord>> get_producer(pg::Connection& conn, const Uuid& id) const;
  Result<Page<ProducerRecord>> list_producers(pg::Connection& conn, const PageQuery& page,
                                              const std::optional<Uuid>& collector_id) const;
  // "not_found", or "forbidden" when a producer token deletes another token's producer.
  Status delete_producer(pg::Connection& conn, const Uuid& id, const Caller& caller) const;

  Result<Heartbeat> heartbeat(pg::Connection& conn, const CollectorSpec& spec) const;
  Result<std::optional<CollectorRecord>> get_collector(pg::Connection& conn, const Uuid& id) const;
  Result<Page<CollectorRecord>> list_collectors(pg::Connection& conn, const PageQuery& page) const;

  // One GC pass in one transaction: deletes expired producers, moves the producers of dead
  // collectors to live ones and assigns unassigned producers (in id order, each to the
  // currently least-loaded, ties to the smaller id: plan_assignments(), done in one statement
  // on the server), forgets collectors silent for forget_collector_after (their producers,
  // which only remain when no collector is live, become unassigned), and says when the next
  // live collector will expire.
  Result<GcReport> gc(pg::Connection& conn, const GcOptions& gc_options) const;

  Result<Counts> counts(pg::Connection& conn) const;

 private:
  StoreOptions options_;
  std::string ttl_us_;
  std::string lease_us_;
  std::string forget_us_;
};

}  // namespace tally::registry
