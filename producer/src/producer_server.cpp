#include <chrono>
#include <stdexcept>

#include "tally/common/collect_json.h"
#include "tally/common/http_server.h"
#include "tally/common/prometheus_text.h"
#include "tally/producer/metric_set.h"
#include "tally/producer/server.h"

namespace tally {
namespace {

// The self-metrics of one output format.
struct FormatMetrics {
  Counter* collections;
  Counter* bytes;
  HistogramF64* latency;

  void record(std::size_t body_bytes, std::chrono::steady_clock::duration took) const {
    collections->add();
    bytes->add(body_bytes);
    latency->record(std::chrono::duration<double>(took).count());
  }
};

FormatMetrics make_format_metrics(MetricSet& self, const std::string& format) {
  Fields fields{{"format", format}};
  // 50 µs to 3.3 s: serving is expected to take about a millisecond.
  return FormatMetrics{
      &self.counter("collections", fields), &self.counter("response_bytes", fields),
      &self.histogram("collection_latency", fields, exponential_edges(5e-5, 2, 17))};
}

}  // namespace

struct ProducerServer::Impl {
  Impl(std::shared_ptr<ProducerRegistry> r, ProducerServerOptions o)
      : registry(std::move(r)), options(std::move(o)) {
    if (!registry) throw std::invalid_argument("ProducerServer: null registry");
    if (options.collect_route.empty() || options.collect_route[0] != '/') {
      throw std::invalid_argument("ProducerServer: collect_route must start with '/'");
    }
    if (options.self_metrics) {
      self = std::make_shared<MetricSet>(
          Target{"tally_producer", {{"producer_id", options.producer_id}}});
      oximeter = make_format_metrics(*self, "oximeter");
      prometheus_text = make_format_metrics(*self, "prometheus");
    }
  }

  HttpResponse handle(const HttpRequest& request) {
    const bool collect = request.path == options.collect_route;
    const bool metrics = options.serve_prometheus && request.path == "/metrics";
    if (!collect && !metrics) {
      return HttpResponse::error(404, "not_found", "no such path: " + request.path);
    }
    if (request.method != "GET") {
      HttpResponse r = HttpResponse::error(405, "method_not_allowed", "use GET");
      r.headers.emplace_back("Allow", "GET");
      return r;
    }
    const auto started = std::chrono::steady_clock::now();
    HttpResponse response =
        collect
            ? HttpResponse::json(200, registry->collect_json())
            : HttpResponse{
                  200, std::string(prometheus::kContentType), {}, registry->collect_prometheus()};
    if (self) {
      (collect ? oximeter : prometheus_text)
          .record(response.body.size(), std::chrono::steady_clock::now() - started);
    }
    return response;
  }

  std::shared_ptr<ProducerRegistry> registry;
  const ProducerServerOptions options;
  std::shared_ptr<MetricSet> self;
  FormatMetrics oximeter{};
  FormatMetrics prometheus_text{};
  std::optional<ProducerRegistry::Id> self_id;
  std::unique_ptr<HttpServer> http;
};

ProducerServer::ProducerServer(std::shared_ptr<ProducerRegistry> registry,
                               ProducerServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(registry), std::move(options))) {}

ProducerServer::~ProducerServer() { stop(); }

Status ProducerServer::start() {
  Impl& s = *impl_;
  if (s.http) return Status::error("ProducerServer::start called twice", "listen");
  HttpServerOptions http_options;
  http_options.listen = s.options.listen;
  http_options.worker_threads = s.options.worker_threads;
  http_options.request_timeout = s.options.request_timeout;
  http_options.server_name = "tally-producer";
  s.http = std::make_unique<HttpServer>(http_options,
                                        [&s](const HttpRequest& r) { return s.handle(r); });
  if (Status st = s.http->start(); !st.ok()) {
    s.http.reset();
    return st;
  }
  if (s.self) s.self_id = s.registry->add(s.self);
  return {};
}

uint16_t ProducerServer::port() const { return impl_->http ? impl_->http->port() : 0; }

std::string ProducerServer::address() const {
  return impl_->http ? impl_->http->address() : std::string();
}

void ProducerServer::stop() {
  Impl& s = *impl_;
  if (s.http) s.http->stop();
  if (s.self_id) {
    s.registry->remove(*s.self_id);
    s.self_id.reset();
  }
}

}  // namespace tally
