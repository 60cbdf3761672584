#include "scheduler.hh"

#include "http_client/async_client.hh"
#include "log/log.hh"

#include <system_error>

namespace strata::transcoded {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kProgressEvery = std::chrono::seconds(2);
constexpr auto kExtendEvery = std::chrono::seconds(30);
constexpr std::size_t kFinishedKept = 50;
constexpr int kRecordTries = 4; // a metad call: 4 tries, 1 s, 2 s, 4 s apart

const char* reason_or(const WorkerOutcome& o, const char* fallback) {
    return o.reason.empty() ? fallback : o.reason.c_str();
}

// A transport error or 5xx is worth trying again; a 4xx answer will not change.
bool retryable(int status) {
    return status == 0 || status >= 500;
}

} // namespace

struct Scheduler::Slot {
    std::uint64_t number = 0;
    LeasedJob job;
    std::shared_ptr<WorkerProcess> worker;
    WorkerProgress progress;
    Clock::time_point started = Clock::now(), last_sent{}, last_extend = Clock::now();
    bool progress_dirty = false; // progress not reported to metad yet
    bool in_flight = false;      // a metad call of this job is on its way
    bool cancelled = false;      // by an operator
    bool lease_lost = false;     // the queue no longer holds it for us: touch nothing
    std::vector<std::pair<nlohmann::json, std::function<void(int, std::string)>>> waiting;
    WorkerOutcome outcome;
};

Scheduler::Scheduler(uv_loop_t* loop, JobQueue& jobs, Settings settings,
                     std::vector<std::string> worker_command, std::filesystem::path work_root,
                     unsigned max_attempts, std::string worker_executable)
    : loop_(loop), jobs_(jobs), settings_(std::move(settings)), command_(std::move(worker_command)),
      executable_(std::move(worker_executable)), work_root_(std::move(work_root)),
      max_attempts_(max_attempts),
      metad_(std::make_unique<http_client::AsyncClient>(loop, settings_.metad)) {
    // Leftovers of workers killed with an earlier daemon: nobody will finish them.
    std::error_code ec;
    std::filesystem::remove_all(work_root_, ec);
    std::filesystem::create_directories(work_root_);
    tick_ = new uv_timer_t;
    uv_timer_init(loop_, tick_);
    tick_->data = this;
    // Once a second: jobs whose backoff ended, leases to extend, progress to report.
    uv_timer_start(
        tick_, [](uv_timer_t* t) { static_cast<Scheduler*>(t->data)->on_tick(); }, 0, 1000);
    wake_ = new uv_async_t;
    uv_async_init(loop_, wake_, [](uv_async_t* a) { static_cast<Scheduler*>(a->data)->fill(); });
    wake_->data = this;
}

Scheduler::~Scheduler() {
    stop();
}

void Scheduler::stop() {
    if (stopped_) return;
    stopped_ = true;
    // Jobs cut short by a stop are not their fault, but they count an attempt: a job that
    // kills the daemon must not run forever. (Its file stays "processing" if that was its
    // last attempt: metad cannot be waited for here.)
    for (auto& entry : slots_) {
        Slot* s = entry.second.get();
        if (s->worker) s->worker->cancel();
        if (!s->lease_lost)
            guarded("a stopped job",
                    [&] { return jobs_.failed(s->job, "the daemon stopped while the job ran"); });
    }
    slots_.clear();
    metad_.reset(); // its callbacks run now, and find no slot
    uv_async_t* wake = nullptr;
    {
        std::lock_guard lock(wake_mu_);
        std::swap(wake, wake_);
    }
    if (tick_)
        uv_close(reinterpret_cast<uv_handle_t*>(tick_),
                 [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    if (wake)
        uv_close(reinterpret_cast<uv_handle_t*>(wake),
                 [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
    tick_ = nullptr;
}

void Scheduler::update(Settings settings) {
    settings.metad = settings_.metad; // restart only: its calls in flight must not be cut
    settings_ = std::move(settings);
    fill();
}

void Scheduler::wake() {
    std::lock_guard lock(wake_mu_); // stop() may be closing it
    if (wake_) uv_async_send(wake_);
}

template <class F>
bool Scheduler::guarded(const char* what, F&& f) {
    try {
        return f();
    } catch (const std::exception& e) { // LMDB trouble: logged, the lease runs out
        log::error("{}: the job queue failed: {}", what, e.what());
        return false;
    }
}

void Scheduler::on_tick() {
    fill();
    auto now = Clock::now();
    for (auto& entry : slots_) {
        Slot* s = entry.second.get();
        // The lease outlives every job that runs: extended while the worker runs (or
        // its result is recorded), whether it reports progress or not.
        if (!s->lease_lost && now - s->last_extend >= kExtendEvery) {
            s->last_extend = now;
            if (!guarded("extending a lease", [&] { return jobs_.extend(s->job); })) {
                log::warning("job {}: its lease was lost: its worker is stopped", s->job.id.str());
                s->lease_lost = true;
                if (s->worker) s->worker->cancel();
            }
        }
        report_progress(*s);
    }
}

void Scheduler::fill() {
    if (stopped_) return;
    while (slots_.size() < settings_.workers) {
        std::optional<LeasedJob> job;
        try {
            job = jobs_.lease();
        } catch (const std::exception& e) {
            log::error("leasing a job: {}", e.what());
            return;
        }
        if (!job) return;
        start(std::move(*job));
    }
}

void Scheduler::start(LeasedJob job) {
    auto slot = std::make_unique<Slot>();
    Slot& s = *slot;
    s.number = next_slot_++;
    s.job = std::move(job);
    slots_[s.number] = std::move(slot);
    nlohmann::json input = {{"job", to_json(s.job.job)},
                            {"settings", to_json(settings_.pipeline)},
                            {"work_dir", work_dir(s).string()}};
    WorkerLimits limits;
    limits.command = command_;
    limits.executable = executable_;
    limits.nice = settings_.nice;
    limits.memory_bytes = settings_.memory_bytes;
    limits.job_timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(settings_.job_timeout);
    limits.stall_timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(settings_.stall_timeout);
    log::info("job {}: file {} version {}, attempt {}", s.job.id.str(), s.job.job.file_id,
              s.job.job.version, s.job.lease.attempt);
    std::uint64_t n = s.number;
    s.worker = WorkerProcess::start(
        loop_, limits, input.dump(),
        [this, n](const WorkerProgress& p) {
            if (auto it = slots_.find(n); it != slots_.end()) progressed(*it->second, p);
        },
        [this, n](WorkerOutcome o) { settle(n, std::move(o)); });
}

std::filesystem::path Scheduler::work_dir(const Slot& s) const {
    return work_root_ / s.job.id.str();
}

void Scheduler::progressed(Slot& s, const WorkerProgress& p) {
    s.progress = p;
    s.progress_dirty = true;
    report_progress(s);
}

// At most one report every kProgressEvery a job, and only one metad call of a job at a
// time: the last report is sent when its turn comes (the tick retries it).
void Scheduler::report_progress(Slot& s) {
    if (!s.progress_dirty || s.in_flight || !s.worker ||
        Clock::now() - s.last_sent < kProgressEvery)
        return;
    s.progress_dirty = false;
    s.last_sent = Clock::now();
    record(
        s,
        {{"state", "processing"},
         {"processing", {{"percent", s.progress.percent}, {"stage", s.progress.stage}}}},
        [](int, std::string) {}, 1);
}

// PUT /v1/nodes/{file}/processing, tried up to `tries` times while metad is unreachable or
// answers 5xx; `then` gets the last status (0: transport error) and why. The calls of one
// job go one after the other, in order: a late progress report must not overwrite the
// result.
void Scheduler::record(Slot& s, nlohmann::json body,
                       std::function<void(int status, std::string)> then, int tries) {
    if (s.in_flight) {
        s.waiting.emplace_back(std::move(body), std::move(then));
        return;
    }
    s.in_flight = true;
    send(s.number, std::move(body), std::move(then), tries, 1);
}

void Scheduler::send(std::uint64_t n, nlohmann::json body,
                     std::function<void(int, std::string)> then, int tries, int attempt) {
    auto it = slots_.find(n);
    if (it == slots_.end() || !metad_) return;
    http_client::Request r;
    r.method = "PUT";
    r.path = "/v1/nodes/" + std::to_string(it->second->job.job.file_id) + "/processing";
    r.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
    r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    metad_->request(std::move(r), [this, n, body = std::move(body), then = std::move(then), tries,
                                   attempt](http_client::Result res) mutable {
        int status = res.error ? 0 : res.response.status;
        std::string why = res.error
                              ? std::string("metad: ") + res.error->what()
                              : "metad answered " + std::to_string(status) +
                                    (status == 200 ? "" : ": " + res.response.body.substr(0, 300));
        if (retryable(status) && attempt < tries && !stopped_ && slots_.count(n)) {
            later(std::chrono::seconds(1 << (attempt - 1)),
                  [this, n, body = std::move(body), then = std::move(then), tries,
                   attempt]() mutable {
                      send(n, std::move(body), std::move(then), tries, attempt + 1);
                  });
            return;
        }
        if (auto it = slots_.find(n); it != slots_.end()) it->second->in_flight = false;
        then(status, why);
        auto it = slots_.find(n); // `then` may have ended the slot
        if (it == slots_.end() || it->second->in_flight || it->second->waiting.empty()) return;
        auto [next_body, next] = std::move(it->second->waiting.front());
        it->second->waiting.erase(it->second->waiting.begin());
        record(*it->second, std::move(next_body), std::move(next));
    });
}

// Runs `f` on the loop after `wait`, unless the scheduler stopped meanwhile.
void Scheduler::later(std::chrono::milliseconds wait, std::function<void()> f) {
    struct Timer {
        uv_timer_t handle;
        std::function<void()> f;
        Scheduler* self;
    };
    auto* t = new Timer{{}, std::move(f), this};
    uv_timer_init(loop_, &t->handle);
    t->handle.data = t;
    uv_timer_start(
        &t->handle,
        [](uv_timer_t* h) {
            auto* t = static_cast<Timer*>(h->data);
            if (!t->self->stopped_) t->f();
            uv_close(reinterpret_cast<uv_handle_t*>(h),
                     [](uv_handle_t* h) { delete static_cast<Timer*>(h->data); });
        },
        static_cast<std::uint64_t>(wait.count()), 0);
}

void Scheduler::settle(std::uint64_t n, WorkerOutcome o) {
    auto it = slots_.find(n);
    if (it == slots_.end()) return; // stopped meanwhile
    Slot& s = *it->second;
    s.worker.reset();
    s.progress_dirty = false;
    s.outcome = std::move(o);
    using K = WorkerOutcome::Kind;
    // An operator's cancel wins over whatever the worker did meanwhile, except a result.
    if (s.cancelled && s.outcome.kind != K::done) s.outcome.kind = K::cancelled;
    std::error_code ec;
    std::filesystem::remove_all(work_dir(s), ec); // a killed worker leaves its files
    const auto& out = s.outcome;
    if (s.lease_lost) return finish(s, outcome_name(out.kind), "the job's lease was lost");
    if (out.kind == K::done) return record_result(s);
    std::string reason = out.kind == K::cancelled ? "cancelled by an operator"
                         : out.kind == K::failed  ? reason_or(out, "the worker failed")
                                                  : std::string(outcome_name(out.kind)) + ": " +
                                                       reason_or(out, "no reason given");
    bool for_good = (out.kind == K::failed && out.permanent) || out.kind == K::cancelled;
    bool last = s.job.lease.attempt >= max_attempts_;
    log::warning("job {}: {}{}", s.job.id.str(), reason,
                 for_good || last ? "" : " (it will be retried)");
    if (!for_good && !last) {
        guarded("a failed job", [&] { return jobs_.failed(s.job, reason); });
        return finish(s, outcome_name(out.kind), reason);
    }
    // For good: the file's state follows first (failed, with the reason, for clients and
    // stratactl), then the job is set aside. Were it the other way round, a metad that
    // cannot be reached would leave the file "processing" behind a dead job.
    fail_file(s, reason, outcome_name(out.kind), out.kind == K::cancelled);
}

// The worker's renditions go to metad; only then is the job acked.
void Scheduler::record_result(Slot& s) {
    std::uint64_t n = s.number;
    record(
        s,
        {{"state", "ready"},
         {"renditions", s.outcome.result.value("renditions", nlohmann::json::array())}},
        [this, n](int status, std::string why) {
            auto it = slots_.find(n);
            if (it == slots_.end()) return;
            Slot& s = *it->second;
            if (status == 200) {
                guarded("a done job", [&] { return jobs_.done(s.job); });
                return finish(s, "done", "");
            }
            if (status == 404) { // nobody to record it for
                guarded("a job of a deleted file", [&] {
                    return jobs_.failed_for_good(s.job,
                                                 "the file was deleted while it was processed");
                });
                return finish(s, "failed", "the file was deleted while it was processed");
            }
            std::string reason = "recording the renditions: " + why;
            log::warning("job {}: {}", s.job.id.str(), reason);
            // A refusal (4xx, e.g. 413: more renditions than metad's http.max_body_bytes)
            // will not change; an unreachable metad may, on the job's next attempt.
            if (!retryable(status) || s.job.lease.attempt >= max_attempts_)
                return fail_file(s, reason, "failed", false);
            guarded("a job not recorded", [&] { return jobs_.failed(s.job, reason); });
            finish(s, "failed", reason);
        },
        kRecordTries);
}

// Marks the file failed in metad, then dead-letters (or, cancelled, removes) the job.
void Scheduler::fail_file(Slot& s, const std::string& reason, const char* outcome, bool cancelled) {
    std::uint64_t n = s.number;
    record(
        s, {{"state", "failed"}, {"processing", {{"error", reason}}}},
        [this, n, reason, outcome = std::string(outcome), cancelled](int status, std::string why) {
            auto it = slots_.find(n);
            if (it == slots_.end()) return;
            Slot& s = *it->second;
            if (status != 200 && status != 404)
                log::warning("job {}: marking the file failed: {}", s.job.id.str(), why);
            guarded("a job that failed for good", [&] {
                return jobs_.failed_for_good(s.job, reason) &&
                       (!cancelled || jobs_.cancel(s.job.id));
            });
            finish(s, outcome.c_str(), reason);
        },
        kRecordTries);
}

void Scheduler::finish(Slot& s, const char* outcome, const std::string& reason) {
    FinishedJob f{s.job.id,
                  s.job.job.file_id,
                  outcome,
                  reason,
                  std::chrono::duration<double>(Clock::now() - s.started).count(),
                  s.outcome.cpu_seconds,
                  s.outcome.max_rss_bytes};
    finished_.insert(finished_.begin(), std::move(f));
    if (finished_.size() > kFinishedKept) finished_.pop_back();
    slots_.erase(s.number);
    fill();
}

Scheduler::CancelResult Scheduler::cancel(const JobId& id) {
    for (auto& [n, s] : slots_)
        if (s->job.id.str() == id.str()) {
            if (!s->worker) return CancelResult::too_late; // its result is being recorded
            s->cancelled = true;
            s->worker->cancel();
            return CancelResult::cancelling;
        }
    return CancelResult::not_here;
}

std::vector<RunningJob> Scheduler::running() const {
    std::vector<RunningJob> out;
    for (const auto& [n, s] : slots_)
        out.push_back({s->job.id, s->job.job.file_id, s->worker ? s->worker->pid() : 0, s->progress,
                       s->started});
    return out;
}

std::vector<FinishedJob> Scheduler::finished() const {
    return finished_;
}

} // namespace strata::transcoded
