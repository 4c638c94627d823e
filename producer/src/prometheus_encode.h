// Tally samples as Prometheus text 0.0.4, for the producer server's GET /metrics.
//
// Family name <target>_<metric>; every target field, then every metric field, becomes a label
// (value as format_field_value writes it). Cumulative datums are counters, named with a
// "_total" suffix unless the metric name already ends in it. Numeric and bool gauges are gauges
// (bool as 0/1). Histograms become _bucket{le=…} (cumulative, ending in le="+Inf"), _sum and
// _count; a Tally bin holds its lower edge, so a sample exactly on an edge counts in the bucket
// above that edge. String gauges are info-style: the string goes in a "value" label and the
// sample value is 1. Bytes and missing datums have no Prometheus form and are left out, as is a
// sample whose family name was already used with another type. An "err" item becomes a comment.
#pragma once

#include <span>
#include <string>

#include "tally/common/collect_json.h"

namespace tally {

std::string encode_prometheus(std::span<const CollectItem> items);

}  // namespace tally
