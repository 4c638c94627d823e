// jemalloc's options for tally-collector, read by jemalloc at start-up (MALLOC_CONF in the
// environment still overrides them). Linked only when the collector is (docs/decisions.md).
//
// oversize_threshold:0 keeps allocations above 8 MiB in the ordinary arenas. By default they get
// an arena of their own that gives their pages back to the kernel as soon as they are freed, so
// every response body of that size (a producer of 10,000 samples answers ~10 MB of JSON) was
// faulted in and zeroed page by page again: 4-5 % of a collector's CPU on oximeter JSON. In the
// ordinary arenas freed pages are kept for jemalloc's decay time (10 s) and reused.
extern "C" {
// NOLINTNEXTLINE: the name and type are jemalloc's interface
const char* malloc_conf = "oversize_threshold:0";
}
