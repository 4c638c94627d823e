// Printing results: aligned tables for people, JSON and CSV for programs.
#pragma once

#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

namespace tally::ctl {

struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;  // each as long as columns
};

// Columns padded to their widest cell, separated by two spaces; the header in capitals.
void print_table(std::ostream& out, const Table& table);
// RFC 4180: a header line, cells quoted when they hold a comma, quote or line break.
void print_csv(std::ostream& out, const Table& table);
// A JSON array of already-serialised JSON values, one per line.
void print_json_array(std::ostream& out, const std::vector<std::string>& items);
// "key:   value" lines with the values aligned.
void print_fields(std::ostream& out,
                  const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace tally::ctl
