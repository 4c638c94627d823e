#include "output.h"

#include <algorithm>
#include <cctype>
#include <ostream>

namespace tally::ctl {
namespace {

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

void print_csv_cell(std::ostream& out, const std::string& cell) {
  if (cell.find_first_of(",\"\r\n") == std::string::npos) {
    out << cell;
    return;
  }
  out << '"';
  for (char c : cell) {
    if (c == '"') out << '"';
    out << c;
  }
  out << '"';
}

}  // namespace

void print_table(std::ostream& out, const Table& table) {
  std::vector<std::size_t> widths(table.columns.size());
  for (std::size_t i = 0; i < table.columns.size(); ++i) widths[i] = table.columns[i].size();
  for (const auto& row : table.rows) {
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  const auto print_row = [&](const std::vector<std::string>& cells, bool header) {
    std::string line;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      const std::string cell = header ? upper(cells[i]) : cells[i];
      line += cell;
      if (i + 1 < cells.size()) line += std::string(widths[i] - cell.size() + 2, ' ');
    }
    out << line << '\n';
  };
  print_row(table.columns, true);
  for (const auto& row : table.rows) print_row(row, false);
}

void print_csv(std::ostream& out, const Table& table) {
  const auto print_row = [&](const std::vector<std::string>& cells) {
    for (std::size_t i = 0; i < cells.size(); ++i) {
      if (i > 0) out << ',';
      print_csv_cell(out, cells[i]);
    }
    out << "\r\n";
  };
  print_row(table.columns);
  for (const auto& row : table.rows) print_row(row);
}

void print_json_array(std::ostream& out, const std::vector<std::string>& items) {
  if (items.empty()) {
    out << "[]\n";
    return;
  }
  out << "[\n";
  for (std::size_t i = 0; i < items.size(); ++i) {
    out << "  " << items[i] << (i + 1 < items.size() ? ",\n" : "\n");
  }
  out << "]\n";
}

void print_fields(std::ostream& out,
                  const std::vector<std::pair<std::string, std::string>>& fields) {
  std::size_t width = 0;
  for (const auto& [key, value] : fields) width = std::max(width, key.size());
  for (const auto& [key, value] : fields) {
    out << key << ':' << std::string(width - key.size() + 2, ' ') << value << '\n';
  }
}

}  // namespace tally::ctl
