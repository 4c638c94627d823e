// The sample mix the benchmarks of DESIGN.md §10 measure with (issue 8): f64 gauges, cumulative
// counters and histograms with 20 bins, 4–8 fields per series, as a service exposes them.
// Header-only so every benchmark binary builds the same bytes from the same seed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "tally/common/sample.h"

namespace tally::bench {

// Out of every 10 series: 5 f64 gauges, 3 cumulative_u64 counters, 2 histogram_f64 (20 bins).
inline DatumType mix_datum_type(std::size_t i) {
  const std::size_t k = i % 10;
  if (k < 5) return DatumType::kF64;
  if (k < 8) return DatumType::kCumulativeU64;
  return DatumType::kHistogramF64;
}

inline Timestamp bench_time(int64_t seconds_after_start) {
  // A fixed day, so that every run writes the same partitions.
  return Timestamp(std::chrono::seconds(1'795'000'000 + seconds_after_start));
}

// Series `i` of producer `producer` (2 target fields + 2–6 metric fields = 4–8 fields), its datum
// taken at scrape `scrape`. A timeseries has one schema, so the metric name says how many fields
// it has: "load_f4" is the gauge with 4 metric fields. i % 10 picks both the datum type and the
// field count, giving 10 timeseries.
inline Sample mix_sample(std::size_t producer, std::size_t i, int64_t scrape = 0) {
  Target target{"bench_service",
                {{"name", std::string("svc") + std::to_string(producer)},
                 {"instance", static_cast<uint32_t>(producer)}}};
  Metric metric;
  const std::size_t n_metric_fields = 2 + i % 5;
  metric.fields.push_back({"route", "/v1/items/" + std::to_string(i / 8)});
  metric.fields.push_back({"status_code", static_cast<uint16_t>(200 + (i % 8) * 50)});
  if (n_metric_fields > 2) metric.fields.push_back({"method", std::string(i % 3 ? "GET" : "POST")});
  if (n_metric_fields > 3) metric.fields.push_back({"shard", static_cast<int64_t>(i % 16)});
  if (n_metric_fields > 4) metric.fields.push_back({"zone", std::string("us-east-1a")});
  if (n_metric_fields > 5) metric.fields.push_back({"cached", (i & 1) == 0});
  Sample s;
  s.timestamp = bench_time(scrape * 10) + std::chrono::microseconds(123456 + i);
  const Timestamp start = bench_time(-3600);
  const double x = static_cast<double>(i) + 0.25 * static_cast<double>(scrape);
  switch (mix_datum_type(i)) {
    case DatumType::kF64:
      metric.name = "load_f" + std::to_string(n_metric_fields);
      s.datum = x * 1.37 + 0.001;
      break;
    case DatumType::kCumulativeU64:
      metric.name = "requests_f" + std::to_string(n_metric_fields);
      s.datum = Cumulative<uint64_t>{start, static_cast<uint64_t>(i * 1000 + scrape * 17)};
      break;
    default: {
      metric.name = "latency_f" + std::to_string(n_metric_fields);
      Histogram<double> h;
      h.start_time = start;
      h.bins.push_back({std::nullopt, 1});
      double edge = 1e-4;
      for (int b = 1; b < 20; ++b, edge *= 2)
        h.bins.push_back({edge, static_cast<uint64_t>(b + i % 7)});
      for (const auto& b : h.bins) h.n_samples += b.count;
      h.min = 5e-5;
      h.max = 30.5;
      h.sum_of_samples = 12.75 + x;
      h.squared_mean = 0.5;
      s.datum = std::move(h);
    }
  }
  s.series = make_timeseries(std::move(target), std::move(metric));
  return s;
}

inline std::vector<Sample> mix_samples(std::size_t producer, std::size_t n, int64_t scrape = 0) {
  std::vector<Sample> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(mix_sample(producer, i, scrape));
  return out;
}

// The same series as Prometheus text 0.0.4 (what a prometheus-cpp or client_golang app serves):
// gauges, counters and 20-bucket histograms, labels for the fields.
inline std::string mix_prometheus_text(std::size_t n_samples) {
  std::string out;
  char num[64];
  auto labels = [&](std::size_t i, std::string& o) {
    o += "route=\"/v1/items/" + std::to_string(i / 8) + "\",status_code=\"" +
         std::to_string(200 + (i % 8) * 50) + "\"";
    const std::size_t extra = i % 5;
    if (extra > 0) o += i % 3 ? ",method=\"GET\"" : ",method=\"POST\"";
    if (extra > 1) o += ",shard=\"" + std::to_string(i % 16) + "\"";
    if (extra > 2) o += ",zone=\"us-east-1a\"";
    if (extra > 3) o += (i & 1) == 0 ? ",cached=\"true\"" : ",cached=\"false\"";
  };
  // Families must be contiguous: one family per timeseries, i.e. per i % 10.
  for (std::size_t group = 0; group < 10; ++group) {
    const DatumType type = mix_datum_type(group);
    const std::string n = std::to_string(2 + group % 5);
    const std::string family = type == DatumType::kF64             ? "load_f" + n
                               : type == DatumType::kCumulativeU64 ? "requests_f" + n + "_total"
                                                                   : "latency_f" + n + "_seconds";
    out += "# HELP " + family + " Bench series.\n# TYPE " + family +
           (type == DatumType::kF64             ? " gauge\n"
            : type == DatumType::kCumulativeU64 ? " counter\n"
                                                : " histogram\n");
    for (std::size_t i = group; i < n_samples; i += 10) {
      if (type == DatumType::kF64) {
        out += family + "{";
        labels(i, out);
        std::snprintf(num, sizeof num, "} %.17g\n", static_cast<double>(i) * 1.37 + 0.001);
        out += num;
      } else if (type == DatumType::kCumulativeU64) {
        out += family + "{";
        labels(i, out);
        out += "} " + std::to_string(i * 1000) + "\n";
      } else {
        const std::string base = "latency_f" + n + "_seconds";
        uint64_t cumulative = 0;
        double edge = 1e-4;
        for (int b = 0; b < 20; ++b, edge *= 2) {
          cumulative += static_cast<uint64_t>(b + 1 + i % 7);
          out += base + "_bucket{";
          labels(i, out);
          if (b == 19) {
            out += ",le=\"+Inf\"} ";
          } else {
            std::snprintf(num, sizeof num, ",le=\"%g\"} ", edge);
            out += num;
          }
          out += std::to_string(cumulative) + "\n";
        }
        out += base + "_sum{";
        labels(i, out);
        std::snprintf(num, sizeof num, "} %.17g\n", 12.75 + static_cast<double>(i));
        out += num;
        out += base + "_count{";
        labels(i, out);
        out += "} " + std::to_string(cumulative) + "\n";
      }
    }
  }
  return out;
}

}  // namespace tally::bench
