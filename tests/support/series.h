// Tests build samples with odd timeseries (bad names, duplicate fields, version 0) by editing
// one: a Timeseries is immutable once made, so the edit is made on a copy and the sample gets a
// new one (make_timeseries, which computes its key).
#pragma once

#include <utility>

#include "tally/common/sample.h"

namespace tally::test {

// Rebuilds s.series from a copy edited by `change(Timeseries&)` (an empty one when s has none).
template <class Change>
void change_series(Sample& s, Change&& change) {
  Timeseries t = s.series ? *s.series : Timeseries{};
  change(t);
  s.series = make_timeseries(std::move(t.target), std::move(t.metric), t.version);
}

}  // namespace tally::test
