// The job API on strata-transcoded's socket (strata-daemon(8), "Jobs"): metad submits jobs,
// operators (stratactl transcode) look at the queue, cancel and retry. Writes are durable
// before the answer (most run off the loop: each is an fsync'ed LMDB commit; a cancel runs
// on it, where the workers are).
#pragma once

#include "http/router.hh"
#include "job_queue.hh"
#include "scheduler.hh"

namespace strata::transcoded {

// POST /v1/events takes metad's events (job_of_event): the jobs they ask for are submitted,
// every other event is acknowledged and ignored. `scheduler` may be null (tests without
// workers): jobs then wait.
void add_job_routes(http::Router& router, JobQueue& jobs, Scheduler* scheduler);
// A job's state and history as the API shows it.
nlohmann::json job_json(const JobInfo& info);

} // namespace strata::transcoded
