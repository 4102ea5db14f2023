// experiments/fill_report.h — the fill client's report of one run: a text
// summary, one JSON object (--json) or one CSV line (--csv). The field names
// and their order are what the experiment drivers read.
#ifndef TINYCACHED_EXPERIMENTS_FILL_REPORT_H_
#define TINYCACHED_EXPERIMENTS_FILL_REPORT_H_

#include "experiments/fill_options.h"
#include "experiments/fill_shape.h"

namespace tinycached::fill {

void PrintJson(const Options& o, const ItemShape& shape, const FillResult& r);
void PrintText(const Options& o, const ItemShape& shape, const FillResult& r);
// Appends the run to o.csv_path (a header line first if the file is new or
// empty); false if it cannot be written.
bool AppendCsv(const Options& o, const ItemShape& shape, const FillResult& r);

}  // namespace tinycached::fill

#endif  // TINYCACHED_EXPERIMENTS_FILL_REPORT_H_
