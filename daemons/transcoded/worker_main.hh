// The worker side of strata-transcoded, run as `strata-transcoded --worker` by the daemon
// (worker_process.hh): one job per process, GStreamer in-process. It reads
//   {"job": {...job.hh...}, "settings": {...settings.hh...}, "work_dir": "/var/lib/...."}
// on stdin, fetches the source from blockd into work_dir, sniffs what it really is (never
// trusting the name or the declared type), runs the image or video pipeline, stores the
// outputs in blockd only once the pipeline has succeeded (a failing job writes nothing
// there), and answers on stdout with the worker protocol's lines. work_dir is removed at
// the end, also on failure.
//
// `strata-transcoded --process FILE OUTDIR` runs the same pipelines on a local file with the
// default settings and prints what it wrote, for operators trying a file and for the
// benchmark; nothing is stored.
#pragma once

#include <filesystem>
#include <iosfwd>

namespace strata::transcoded {

int run_worker(std::istream& in, std::ostream& out);
int run_process(const std::filesystem::path& input, const std::filesystem::path& out_dir,
                std::ostream& out, std::ostream& err);

} // namespace strata::transcoded
