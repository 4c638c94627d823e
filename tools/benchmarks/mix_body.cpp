// Writes the bench mix (workload.h) as a producer would serve it, for the whole-system runs of
// tools/bench, whose stand-in producers serve these bytes as they are:
//   tally_mix_body json PRODUCER SAMPLES > body.json     (the collect response of §3.1)
//   tally_mix_body prometheus SAMPLES > body.txt        (Prometheus text 0.0.4)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tally/common/collect_json.h"
#include "workload.h"

int main(int argc, char** argv) {
  const std::string kind = argc > 1 ? argv[1] : "";
  std::string body;
  if (kind == "json" && argc == 4) {
    std::vector<tally::CollectItem> items(1);
    items[0].samples = tally::bench::mix_samples(std::strtoul(argv[2], nullptr, 10),
                                                 std::strtoul(argv[3], nullptr, 10));
    // Stamped around now rather than the mix's fixed day: the collector rejects samples
    // outside its accepted time window (retention_days back, 1 h ahead).
    const auto shift = std::chrono::floor<std::chrono::seconds>(tally::now()) -
                       tally::bench::bench_time(0);
    for (tally::Sample& s : items[0].samples) s.timestamp += shift;
    body = tally::encode_collect_response(items);
  } else if (kind == "prometheus" && argc == 3) {
    body = tally::bench::mix_prometheus_text(std::strtoul(argv[2], nullptr, 10));
  } else {
    std::fprintf(stderr, "usage: tally_mix_body json PRODUCER SAMPLES | prometheus SAMPLES\n");
    return 2;
  }
  std::fwrite(body.data(), 1, body.size(), stdout);
  return 0;
}
