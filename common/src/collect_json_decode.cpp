#include "tally/common/collect_json.h"
