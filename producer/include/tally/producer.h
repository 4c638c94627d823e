// Everything an app needs to expose metrics to Tally: the metric helpers, MetricSet, the
// ProducerRegistry, the embedded server and the registration client. See docs/producer.md.
#pragma once

#include "tally/common/field.h"
#include "tally/common/log.h"
#include "tally/common/sample.h"
#include "tally/common/time.h"
#include "tally/producer/counter.h"
#include "tally/producer/gauge.h"
#include "tally/producer/histogram.h"
#include "tally/producer/metric_set.h"
#include "tally/producer/producer.h"
#include "tally/producer/registration.h"
#include "tally/producer/server.h"
