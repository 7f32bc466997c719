// The self-contained HTML report of one or more load-generator runs: a summary table, latency
// CDFs (TTFT, TPOT, ITL, end to end) with one line per run, and throughput against latency
// across the runs of each series (a request-rate or concurrency sweep). Plots are inline SVG:
// the file needs no network and no script.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "bench/bench_report.h"

namespace tokenfab {

struct PlotSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in order
};

// An SVG line chart with axes, ticks and a legend.
std::string SvgLinePlot(const std::string& title, const std::string& x_label,
                        const std::string& y_label, const std::vector<PlotSeries>& series,
                        bool log_x = false);

// `title` heads the page; runs are grouped into sweep series by the label's prefix before " @"
// (e.g. "tokenfab @ c=64" and "tokenfab @ c=8" form the series "tokenfab").
std::string HtmlReport(const std::string& title, const std::vector<RunSummary>& runs);

}  // namespace tokenfab
