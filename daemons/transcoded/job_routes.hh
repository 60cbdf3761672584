// The job API on strata-transcoded's socket (strata-daemon(8), "Jobs"): metad submits jobs,
// operators (stratactl transcode) look at the queue, cancel and retry. Writes are durable
// before the answer (they run off the loop: each is an fsync'ed LMDB commit).
#pragma once

#include "http/router.hh"
#include "job_queue.hh"

namespace strata::transcoded {

void add_job_routes(http::Router& router, JobQueue& jobs);
// A job's state and history as the API shows it.
nlohmann::json job_json(const JobInfo& info);

} // namespace strata::transcoded
