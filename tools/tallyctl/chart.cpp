#include "chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ostream>

namespace tally::ctl {
namespace {

// A braille cell is 2 dots wide and 4 high; bit of the dot at (x, y) counted from top left.
constexpr uint8_t kDotBits[4][2] = {{0x01, 0x08}, {0x02, 0x10}, {0x04, 0x20}, {0x40, 0x80}};

class Canvas {
 public:
  Canvas(int columns, int rows)
      : columns_(columns), rows_(rows), cells_(static_cast<std::size_t>(columns * rows), 0) {}
  int width() const { return columns_ * 2; }
  int height() const { return rows_ * 4; }

  void dot(int x, int y) {
    if (x < 0 || y < 0 || x >= width() || y >= height()) return;
    cells_[static_cast<std::size_t>((y / 4) * columns_ + x / 2)] |= kDotBits[y % 4][x % 2];
  }

  void line(int x0, int y0, int x1, int y1) {
    const int dx = std::abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    const int dy = -std::abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    while (true) {
      dot(x0, y0);
      if (x0 == x1 && y0 == y1) return;
      const int e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x0 += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y0 += sy;
      }
    }
  }

  // Row `row` as UTF-8: braille for cells with dots, spaces for empty ones.
  std::string row(int row) const {
    std::string out;
    for (int c = 0; c < columns_; ++c) {
      const uint8_t bits = cells_[static_cast<std::size_t>(row * columns_ + c)];
      if (bits == 0) {
        out += ' ';
        continue;
      }
      const unsigned cp = 0x2800u + bits;  // U+2800…U+28FF: three bytes in UTF-8
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return out;
  }

 private:
  int columns_;
  int rows_;
  std::vector<uint8_t> cells_;
};

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// RFC 3339 to the second, "2026-11-22T10:00:00Z": an axis label needs no more.
std::string time_label(Timestamp t) {
  std::string s = format_rfc3339(std::chrono::floor<std::chrono::seconds>(t));
  if (const auto dot = s.find(".000000Z"); dot != std::string::npos) s.replace(dot, 8, "Z");
  return s;
}

std::string pad_left(const std::string& s, std::size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

}  // namespace

void draw_chart(std::ostream& out, const std::string& title, const std::vector<ChartPoint>& points,
                Timestamp from, Timestamp to, std::chrono::microseconds step,
                const ChartOptions& options) {
  out << title << '\n';
  double lo = INFINITY, hi = -INFINITY;
  for (const ChartPoint& p : points) {
    if (!std::isfinite(p.value)) continue;
    lo = std::min(lo, p.value);
    hi = std::max(hi, p.value);
  }
  if (lo > hi) {
    out << "  (no values to draw)\n\n";
    return;
  }
  if (lo == hi) {  // a flat line sits in the middle
    const double pad = lo == 0 ? 1 : std::abs(lo) / 10;
    lo -= pad;
    hi += pad;
  }
  const int rows = std::max(3, options.height);
  const std::string top = number(hi), middle = number((lo + hi) / 2), bottom = number(lo);
  const std::size_t label_width = std::max({top.size(), middle.size(), bottom.size()});
  const int columns = std::max(30, options.width) - static_cast<int>(label_width) - 2;

  Canvas canvas(columns, rows);
  const double span = static_cast<double>(std::max<int64_t>(1, (to - from).count()));
  const auto x_of = [&](Timestamp t) {
    const double f = static_cast<double>((t - from).count()) / span;
    return static_cast<int>(std::lround(std::clamp(f, 0.0, 1.0) * (canvas.width() - 1)));
  };
  const auto y_of = [&](double v) {
    return static_cast<int>(std::lround((hi - v) / (hi - lo) * (canvas.height() - 1)));
  };
  const ChartPoint* previous = nullptr;
  for (const ChartPoint& p : points) {
    if (!std::isfinite(p.value)) {
      previous = nullptr;
      continue;
    }
    if (previous != nullptr && p.time - previous->time == step) {
      canvas.line(x_of(previous->time), y_of(previous->value), x_of(p.time), y_of(p.value));
    } else {
      canvas.dot(x_of(p.time), y_of(p.value));
    }
    previous = &p;
  }

  const int middle_row = rows / 2;
  for (int r = 0; r < rows; ++r) {
    std::string label;
    if (r == 0) label = top;
    if (r == middle_row) label = middle;
    if (r == rows - 1) label = bottom;
    out << pad_left(label, label_width) << (label.empty() ? " │" : " ┤") << canvas.row(r) << '\n';
  }
  std::string axis;
  for (int c = 0; c < columns; ++c) axis += "─";
  out << std::string(label_width + 1, ' ') << "└" << axis << '\n';
  const std::string start = time_label(from), end = time_label(to);
  std::string times = std::string(label_width + 2, ' ') + start;
  const std::size_t total = label_width + 2 + static_cast<std::size_t>(columns);
  if (times.size() + 2 + end.size() <= total) {
    times += std::string(total - times.size() - end.size(), ' ') + end;
  }
  out << times << "\n\n";
}

}  // namespace tally::ctl
