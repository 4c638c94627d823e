# Writes OUTPUT, a C++ file defining tally::schema::embedded_migrations() from the INPUTS
# (a ;-list of sql/NNN_name.sql files, sorted). Run with `cmake -P`.
set(body "")
foreach(path IN LISTS INPUTS)
  get_filename_component(name ${path} NAME_WE)
  if(NOT name MATCHES "^([0-9]+)_[a-z0-9_]+$")
    message(FATAL_ERROR "migration ${path}: the name must be NNN_description.sql")
  endif()
  # Strip leading zeros so "010" is not read as an octal literal.
  string(REGEX REPLACE "^0+([0-9])" "\\1" version ${CMAKE_MATCH_1})
  file(READ ${path} sql)
  if(sql MATCHES "\\)tally_sql\"")
    message(FATAL_ERROR "migration ${path} contains the raw-string delimiter )tally_sql\"")
  endif()
  string(APPEND body "      {${version}, \"${name}\", R\"tally_sql(${sql})tally_sql\"},\n")
endforeach()
set(content "// Generated from schema/sql/*.sql by schema/cmake/embed_sql.cmake: do not edit.
#include \"tally/schema/migrations.h\"

namespace tally::schema {

const std::vector<Migration>& embedded_migrations() {
  static const std::vector<Migration> kMigrations = {
${body}  };
  return kMigrations;
}

}  // namespace tally::schema
")
# Only touch the file when it changes, so an unrelated re-run does not rebuild the library.
if(EXISTS ${OUTPUT})
  file(READ ${OUTPUT} old)
endif()
if(NOT old STREQUAL content)
  file(WRITE ${OUTPUT} "${content}")
endif()
