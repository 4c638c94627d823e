#include "tally/collector/pgstats/target_poller.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "tally/common/http_message.h"
#include "tally/common/log.h"

namespace tally::collector::pgstats {
namespace {

using std::chrono::duration_cast;

// What the monitored server's pg_stat_activity shows for the monitor's sessions.
constexpr std::string_view kApplicationName = "tally-pgstats";
constexpr uint16_t kDefaultPort = 5432;

bool is_uri(std::string_view url) {
  return url.starts_with("postgresql://") || url.starts_with("postgres://");
}

std::string first_of_list(std::string_view list) {
  return std::string(list.substr(0, list.find(',')));
}

// The key=value pairs of a libpq connection string: values may be single-quoted, with
// backslash escapes inside or outside quotes.
std::vector<std::pair<std::string, std::string>> parse_conninfo(std::string_view s) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t i = 0;
  const auto skip_space = [&] {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  };
  while (true) {
    skip_space();
    if (i >= s.size()) break;
    std::string key;
    while (i < s.size() && s[i] != '=' && !std::isspace(static_cast<unsigned char>(s[i]))) {
      key += s[i++];
    }
    skip_space();
    if (i >= s.size() || s[i] != '=') break;  // malformed: libpq will say so when connecting
    ++i;
    skip_space();
    std::string value;
    if (i < s.size() && s[i] == '\'') {
      ++i;
      while (i < s.size() && s[i] != '\'') {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        value += s[i++];
      }
      ++i;
    } else {
      while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        value += s[i++];
      }
    }
    out.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

Result<uint16_t> parse_port(std::string_view text) {
  if (text.empty()) return kDefaultPort;
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || value == 0 || value > 65535) {
    return Status::error("port '" + std::string(text) + "' is not a number in 1..65535", "bad_url");
  }
  return static_cast<uint16_t>(value);
}

bool uri_has_param(std::string_view url, std::string_view key) {
  const std::size_t q = url.find('?');
  if (q == std::string_view::npos) return false;
  for (const auto& [k, v] : parse_query(url.substr(q + 1))) {
    if (k == key) return true;
  }
  return false;
}

bool conninfo_has_param(std::string_view url, std::string_view key) {
  for (const auto& [k, v] : parse_conninfo(url)) {
    if (k == key) return true;
  }
  return false;
}

std::string duration_text(Clock::duration d) {
  return format_duration(duration_cast<std::chrono::microseconds>(d));
}

// libpq's message names the URL it was given: show the configured one, not the one with the
// parameters the monitor added.
std::string configured_url_message(std::string message, const std::string& used,
                                   const std::string& configured) {
  const std::string from = pg::redact_url(used);
  if (const std::size_t at = message.find(from); at != std::string::npos) {
    message.replace(at, from.size(), pg::redact_url(configured));
  }
  return message;
}

}  // namespace

Result<Instance> parse_instance(std::string name, std::string_view url) {
  std::string host;
  std::string port;
  if (is_uri(url)) {
    const std::string_view rest = url.substr(url.find("://") + 3);
    const std::string_view authority = rest.substr(0, rest.find_first_of("/?"));
    const std::size_t at = authority.rfind('@');
    const std::string_view hosts =
        at == std::string_view::npos ? authority : authority.substr(at + 1);
    const std::string_view first = hosts.substr(0, hosts.find(','));
    if (first.starts_with('[')) {
      const std::size_t close = first.find(']');
      if (close == std::string_view::npos) {
        return Status::error("unterminated [IPv6 address] in the URL", "bad_url");
      }
      host = std::string(first.substr(1, close - 1));
      const std::string_view after = first.substr(close + 1);
      if (after.starts_with(':')) port = std::string(after.substr(1));
    } else {
      const std::size_t colon = first.find(':');
      host = percent_decode(first.substr(0, colon), false);
      if (colon != std::string_view::npos) port = std::string(first.substr(colon + 1));
    }
    if (const std::size_t q = rest.find('?'); q != std::string_view::npos) {
      // Query parameters override the authority, as in libpq.
      for (const auto& [k, v] : parse_query(rest.substr(q + 1))) {
        if (k == "host") host = first_of_list(v);
        if (k == "port") port = first_of_list(v);
      }
    }
  } else {
    std::string hostaddr;
    for (const auto& [k, v] : parse_conninfo(url)) {
      if (k == "host") host = first_of_list(v);
      if (k == "hostaddr") hostaddr = first_of_list(v);
      if (k == "port") port = first_of_list(v);
    }
    if (host.empty()) host = hostaddr;
  }
  auto number = parse_port(port);
  if (!number.ok()) return number.status();
  return Instance{std::move(name), host.empty() ? std::string("localhost") : host, *number};
}

std::string with_connection_params(std::string_view url,
                                   const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out(url);
  if (is_uri(url)) {
    bool query = url.find('?') != std::string_view::npos;
    for (const auto& [k, v] : params) {
      if (uri_has_param(url, k)) continue;
      out += query ? '&' : '?';
      query = true;
      out += k + "=" + v;  // the values added are plain numbers and words: nothing to escape
    }
  } else {
    for (const auto& [k, v] : params) {
      if (conninfo_has_param(url, k)) continue;
      out += " " + k + "='" + v + "'";
    }
  }
  return out;
}

Clock::time_point Backoff::failed(Clock::time_point now) {
  const Clock::time_point at = now + next_;
  next_ = std::min(next_ * 2, max_);
  return at;
}

TargetStats::TargetStats(const PgTarget& target, Timestamp added) {
  s_.name = target.name;
  s_.source = std::string(to_string(target.source));
  s_.added = added;
}

void TargetStats::count_poll() {
  std::lock_guard lock(mu_);
  ++s_.polls;
}

void TargetStats::count_skipped() {
  std::lock_guard lock(mu_);
  ++s_.polls_skipped;
}

void TargetStats::count_samples(std::size_t n) {
  std::lock_guard lock(mu_);
  s_.samples += n;
}

void TargetStats::connected(int server_version, const std::vector<std::string>& queries) {
  std::lock_guard lock(mu_);
  s_.connected = true;
  s_.server_version = server_version;
  ++s_.connects;
  for (const std::string& q : queries) s_.queries.try_emplace(q);  // zeros from the start
}

void TargetStats::connect_failed() {
  std::lock_guard lock(mu_);
  ++s_.connect_errors;
}

void TargetStats::disconnected() {
  std::lock_guard lock(mu_);
  s_.connected = false;
}

void TargetStats::observe(const std::string& query, double seconds, Outcome outcome) {
  std::lock_guard lock(mu_);
  QueryStats& q = s_.queries[query];
  ++q.runs;
  if (outcome == Outcome::kError) ++q.errors;
  if (outcome == Outcome::kTimeout) ++q.timeouts;
  q.latency.observe(seconds);
}

TargetSnapshot TargetStats::snapshot() const {
  std::lock_guard lock(mu_);
  return s_;
}

TargetPoller::TargetPoller(PgTarget target, Instance instance, PollerOptions options,
                           const std::vector<QuerySpec>& queries, Watchdog& watchdog,
                           TargetStats& stats)
    : target_(std::move(target)),
      instance_(std::move(instance)),
      sample_target_(make_target(instance_)),
      options_(options),
      all_queries_(queries),
      watchdog_(watchdog),
      stats_(stats),
      backoff_(options.min_backoff, options.max_backoff) {}

TargetPoller::~TargetPoller() { close(); }

void TargetPoller::close() {
  if (!conn_) return;
  conn_.reset();
  stats_.disconnected();
}

bool TargetPoller::connect() {
  const Clock::time_point now = options_.clock->now();
  if (now < retry_at_) return false;
  // libpq counts connect_timeout in whole seconds and treats less than 2 as 2.
  const auto connect_timeout = std::max<std::chrono::seconds>(
      std::chrono::seconds(2), std::chrono::ceil<std::chrono::seconds>(options_.query_timeout));
  // A network that stops answering mid-query is noticed by TCP within about 4 × query_timeout
  // (keepalives, tcp_user_timeout): the watchdog's cancel cannot reach a server that is gone.
  const std::string t = std::to_string(connect_timeout.count());
  const std::string url = with_connection_params(
      target_.url, {{"keepalives", "1"},
                    {"keepalives_idle", t},
                    {"keepalives_interval", t},
                    {"keepalives_count", "3"},
                    {"tcp_user_timeout", std::to_string(connect_timeout.count() * 4000)}});
  Status failure;
  auto opened = pg::Connection::open(url, connect_timeout);
  int version = 0;
  if (!opened.ok()) {
    failure = opened.status();
  } else {
    // The server's own backstop, should the watchdog's cancel not get through: twice the
    // timeout, so the watchdog normally acts first and the timeout is counted as such.
    const auto statement_timeout =
        duration_cast<std::chrono::milliseconds>(options_.query_timeout) * 2;
    auto set =
        (*opened)->exec("SET statement_timeout = " + std::to_string(statement_timeout.count()) +
                        "; SET application_name = '" + std::string(kApplicationName) + "'");
    version = (*opened)->server_version();
    if (!set.ok()) {
      failure = set.status().with_context("session set-up");
    } else if (version < kMinServerVersion) {
      failure = Status::error("server_version_num " + std::to_string(version) +
                                  " is older than 10, the oldest Tally monitors",
                              "unsupported_version");
    }
  }
  if (!failure.ok()) {
    stats_.connect_failed();
    retry_at_ = backoff_.failed(now);
    if (!connect_failing_) {
      log_warn("pgstats_connect_failed",
               {{"target", target_.name},
                {"error", configured_url_message(failure.message(), url, target_.url)},
                {"retry_in", duration_text(retry_at_ - now)},
                {"note", "logged once until it connects"}});
    }
    connect_failing_ = true;
    return false;
  }
  conn_ = std::shared_ptr<pg::Connection>(std::move(*opened));
  if (version != version_) {
    version_ = version;
    queries_.clear();
    for (const QuerySpec* q : select_queries(all_queries_, version)) {
      queries_.push_back(Prepared{q, build_sql(*q, version), result_columns(*q, version)});
    }
  }
  std::vector<std::string> names;
  for (const Prepared& p : queries_) names.push_back(p.spec->name);
  stats_.connected(version, names);
  backoff_.reset();
  retry_at_ = {};
  // Reconnecting after a timeout is routine; the first connection and a recovery are news.
  const bool news = connect_failing_ || !ever_connected_;
  log(news ? LogLevel::kInfo : LogLevel::kDebug, "pgstats_connected",
      {{"target", target_.name},
       {"host", instance_.host},
       {"port", std::to_string(instance_.port)},
       {"server_version", std::to_string(version)},
       {"queries", std::to_string(queries_.size())}});
  connect_failing_ = false;
  ever_connected_ = true;
  return true;
}

std::vector<Sample> TargetPoller::poll() {
  std::vector<Sample> out;
  {
    std::lock_guard lock(abort_mu_);
    if (aborted_) return out;
  }
  stats_.count_poll();
  if (!conn_ && !connect()) return out;
  for (const Prepared& p : queries_) {
    if (!run_query(p, out)) break;
  }
  {
    std::lock_guard lock(abort_mu_);
    if (aborted_) return {};
  }
  stats_.count_samples(out.size());
  return out;
}

void TargetPoller::abort() {
  std::lock_guard lock(abort_mu_);
  aborted_ = true;
  if (running_ != 0) (void)watchdog_.fire_now(running_);
}

bool TargetPoller::run_query(const Prepared& p, std::vector<Sample>& out) {
  const QuerySpec& q = *p.spec;
  const std::shared_ptr<pg::Connection> conn = conn_;
  const auto started = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(abort_mu_);
    if (aborted_) return false;
    // The action keeps the connection alive while it cancels, whatever this thread does.
    running_ =
        watchdog_.arm(options_.clock->now() + options_.query_timeout, [conn] { conn->cancel(); });
  }
  auto rows = conn->exec(p.sql);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  bool fired = false;
  bool aborted = false;
  {
    std::lock_guard lock(abort_mu_);
    fired = watchdog_.disarm(running_);
    running_ = 0;
    aborted = aborted_;
  }
  if (aborted) {
    close();
    return false;
  }
  // 57014 (query_canceled) without the watchdog: the server's statement_timeout backstop.
  if (fired || (!rows.ok() && rows.status().code() == "sqlstate_57014")) {
    stats_.observe(q.name, seconds, TargetStats::Outcome::kTimeout);
    log_warn("pgstats_query_timeout",
             {{"target", target_.name},
              {"query", q.name},
              {"timeout", format_duration(options_.query_timeout)},
              {"action", "cancelled; the connection is closed and reopened at the next poll"}});
    // A cancel may still be on its way to the server: the session is not reused.
    close();
    return false;
  }
  Result<std::vector<Sample>> samples =
      rows.ok() ? to_samples(q, version_, ResultTable::from(*rows, p.columns), sample_target_,
                             tally::now())
                : Result<std::vector<Sample>>(rows.status());
  if (!samples.ok()) {
    stats_.observe(q.name, seconds, TargetStats::Outcome::kError);
    if (failing_queries_.insert(q.name).second) {
      log_warn("pgstats_query_failed", {{"target", target_.name},
                                        {"query", q.name},
                                        {"error", samples.error()},
                                        {"note", "logged once until it succeeds"}});
    }
    if (conn->broken()) {
      close();
      return false;
    }
    return true;
  }
  stats_.observe(q.name, seconds, TargetStats::Outcome::kOk);
  if (failing_queries_.erase(q.name) > 0) {
    log_info("pgstats_query_recovered", {{"target", target_.name}, {"query", q.name}});
  }
  out.insert(out.end(), std::make_move_iterator(samples->begin()),
             std::make_move_iterator(samples->end()));
  return true;
}

}  // namespace tally::collector::pgstats
