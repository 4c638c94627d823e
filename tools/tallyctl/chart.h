// `tallyctl query --format chart`: a series as a terminal line chart in Unicode braille (2×4
// dots per character), with the value axis labelled on the left and the time axis below.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "tally/common/time.h"

namespace tally::ctl {

struct ChartPoint {
  Timestamp time;  // the start of the point's step
  double value;    // NaN and infinities are not drawn
};

struct ChartOptions {
  int width = 80;   // characters, labels included (at least 30 are used)
  int height = 12;  // rows of the plot area (at least 3)
};

// Draws `points` (in time order) over [from, to): consecutive steps are joined by a line, a
// missing step leaves a gap. `title` is printed above the chart.
void draw_chart(std::ostream& out, const std::string& title, const std::vector<ChartPoint>& points,
                Timestamp from, Timestamp to, std::chrono::microseconds step,
                const ChartOptions& options = {});

}  // namespace tally::ctl
