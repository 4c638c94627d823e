#!/bin/sh
# Installs the producer package from a build tree into a temporary prefix, checks that its
# headers pull in nothing from Boost, libpqxx, libpq, simdjson or yaml-cpp, then configures,
# builds and runs tests/producer/install_app against it.
# usage: install_test.sh BUILD_DIR APP_SOURCE_DIR CXX_COMPILER CMAKE [APP_FLAGS]
# APP_FLAGS (e.g. -fsanitize=address,undefined) are added to the app's compile and link flags.
set -eu
build_dir=$1 app_dir=$2 cxx=$3 cmake=$4 app_flags=${5:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

"$cmake" --install "$build_dir" --component producer --prefix "$prefix" >/dev/null

# -H lists every header the umbrella header includes, one per line.
echo '#include <tally/producer.h>' > "$work/probe.cpp"
"$cxx" -std=c++20 -fsyntax-only -H -I "$prefix/include" "$work/probe.cpp" 2> "$work/headers"
if grep -E 'boost|pqxx|libpq|simdjson|yaml-cpp' "$work/headers"; then
  echo "install_test: installed headers include private dependencies (above)" >&2
  exit 1
fi

"$cmake" -S "$app_dir" -B "$work/build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS="$app_flags" \
  -DCMAKE_EXE_LINKER_FLAGS="$app_flags" >/dev/null
"$cmake" --build "$work/build" -j2 >/dev/null
"$work/build/install_app"
