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

const char* reason_or(const WorkerOutcome& o, const char* fallback) {
    return o.reason.empty() ? fallback : o.reason.c_str();
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
    std::vector<std::pair<nlohmann::json, std::function<void(int, std::string)>>> waiting;
    bool cancelled = false; // by an operator
    WorkerOutcome outcome;
};

Scheduler::Scheduler(uv_loop_t* loop, JobQueue& jobs, Settings settings,
                     std::vector<std::string> worker_command, std::filesystem::path work_root,
                     unsigned max_attempts)
    : loop_(loop), jobs_(jobs), settings_(std::move(settings)), command_(std::move(worker_command)),
      work_root_(std::move(work_root)), max_attempts_(max_attempts),
      metad_(std::make_unique<http_client::AsyncClient>(loop, settings_.metad)) {
    // Leftovers of workers killed with an earlier daemon: nobody will finish them.
    std::error_code ec;
    std::filesystem::remove_all(work_root_, ec);
    std::filesystem::create_directories(work_root_);
    tick_ = new uv_timer_t;
    uv_timer_init(loop_, tick_);
    tick_->data = this;
    // Once a second: jobs whose backoff ended, and a retry of anything that failed to start.
    uv_timer_start(
        tick_,
        [](uv_timer_t* t) {
            auto* self = static_cast<Scheduler*>(t->data);
            self->fill();
            for (auto& [n, s] : self->slots_)
                self->report_progress(*s);
        },
        0, 1000);
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
    // kills the daemon must not run forever.
    for (auto& [n, s] : slots_) {
        if (s->worker) s->worker->cancel();
        if (!jobs_.failed(s->job, "the daemon stopped while the job ran"))
            log::warning("job {}: its lease was lost", s->job.id.str());
    }
    slots_.clear();
    metad_.reset(); // its callbacks run now, and find no slot
    for (uv_handle_t* h :
         {reinterpret_cast<uv_handle_t*>(tick_), reinterpret_cast<uv_handle_t*>(wake_)})
        if (h)
            uv_close(h, [](uv_handle_t* h) {
                if (h->type == UV_TIMER)
                    delete reinterpret_cast<uv_timer_t*>(h);
                else
                    delete reinterpret_cast<uv_async_t*>(h);
            });
    tick_ = nullptr;
    wake_ = nullptr;
}

void Scheduler::update(Settings settings) {
    bool new_metad = settings.metad != settings_.metad;
    settings_ = std::move(settings);
    if (new_metad) metad_ = std::make_unique<http_client::AsyncClient>(loop_, settings_.metad);
    fill();
}

void Scheduler::wake() {
    if (wake_) uv_async_send(wake_);
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
                            {"work_dir", (work_root_ / s.job.id.str()).string()}};
    WorkerLimits limits{
        command_, settings_.nice, settings_.memory_bytes,
        std::chrono::duration_cast<std::chrono::milliseconds>(settings_.job_timeout),
        std::chrono::duration_cast<std::chrono::milliseconds>(settings_.stall_timeout)};
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

void Scheduler::progressed(Slot& s, const WorkerProgress& p) {
    s.progress = p;
    s.progress_dirty = true;
    auto now = Clock::now();
    if (now - s.last_extend >= kExtendEvery) {
        s.last_extend = now;
        if (!jobs_.extend(s.job)) log::warning("job {}: its lease was lost", s.job.id.str());
    }
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
    record(s,
           {{"state", "processing"},
            {"processing", {{"percent", s.progress.percent}, {"stage", s.progress.stage}}}},
           [](int, std::string) {});
}

// PUT /v1/nodes/{file}/processing; `then` gets the status (0: transport error) and why.
// The calls of one job go one after the other, in order: a late progress report must not
// overwrite the result.
void Scheduler::record(Slot& s, nlohmann::json body,
                       std::function<void(int status, std::string)> then) {
    if (s.in_flight) {
        s.waiting.emplace_back(std::move(body), std::move(then));
        return;
    }
    s.in_flight = true;
    http_client::Request r;
    r.method = "PUT";
    r.path = "/v1/nodes/" + std::to_string(s.job.job.file_id) + "/processing";
    r.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
    r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::uint64_t n = s.number;
    metad_->request(std::move(r), [this, n, then = std::move(then)](http_client::Result res) {
        auto it = slots_.find(n);
        if (it != slots_.end()) it->second->in_flight = false;
        if (res.error)
            then(0, std::string("metad: ") + res.error->what());
        else
            then(res.response.status,
                 "metad answered " + std::to_string(res.response.status) +
                     (res.response.status == 200 ? "" : ": " + res.response.body.substr(0, 300)));
        it = slots_.find(n); // `then` may have ended the slot
        if (it == slots_.end() || it->second->in_flight || it->second->waiting.empty()) return;
        auto [body, next] = std::move(it->second->waiting.front());
        it->second->waiting.erase(it->second->waiting.begin());
        record(*it->second, std::move(body), std::move(next));
    });
}

void Scheduler::settle(std::uint64_t n, WorkerOutcome o) {
    auto it = slots_.find(n);
    if (it == slots_.end()) return; // stopped meanwhile
    Slot& s = *it->second;
    s.worker.reset();
    s.outcome = std::move(o);
    const auto& out = s.outcome;
    const std::string id = s.job.id.str();
    auto finished = [this, n](const char* outcome, std::string reason) {
        if (auto it = slots_.find(n); it != slots_.end()) finish(*it->second, outcome, reason);
    };
    using K = WorkerOutcome::Kind;
    if (out.kind == K::done) {
        record(s,
               {{"state", "ready"},
                {"renditions", out.result.value("renditions", nlohmann::json::array())}},
               [this, n, finished](int status, std::string why) {
                   auto it = slots_.find(n);
                   if (it == slots_.end()) return;
                   Slot& s = *it->second;
                   bool ok = true;
                   if (status == 200)
                       ok = jobs_.done(s.job);
                   else if (status == 404)
                       ok = jobs_.failed_for_good(s.job, "the file was deleted while it was "
                                                         "processed");
                   else
                       ok = jobs_.failed(s.job, "recording the renditions: " + why);
                   if (!ok) log::warning("job {}: its lease was lost", s.job.id.str());
                   finished(status == 200 ? "done" : "failed", status == 200 ? "" : why);
               });
        return;
    }
    std::string reason = out.kind == K::cancelled ? "cancelled by an operator"
                         : out.kind == K::failed  ? reason_or(out, "the worker failed")
                                                  : std::string(outcome_name(out.kind)) + ": " +
                                                       reason_or(out, "no reason given");
    bool for_good = (out.kind == K::failed && out.permanent) || out.kind == K::cancelled;
    bool last = s.job.lease.attempt >= max_attempts_;
    bool ok = true;
    if (out.kind == K::cancelled)
        ok = jobs_.failed_for_good(s.job, reason) && jobs_.cancel(s.job.id);
    else if (for_good)
        ok = jobs_.failed_for_good(s.job, reason);
    else
        ok = jobs_.failed(s.job, reason);
    if (!ok) log::warning("job {}: its lease was lost", id);
    log::warning("job {}: {}{}", id, reason, for_good || last ? "" : " (it will be retried)");
    if (!for_good && !last) return finish(s, outcome_name(out.kind), reason);
    // The file's state follows: failed, with the reason, for clients and stratactl.
    record(s, {{"state", "failed"}, {"processing", {{"error", reason}}}},
           [finished, kind = outcome_name(out.kind), reason](int status, std::string why) {
               if (status != 200 && status != 404) log::warning("marking the file failed: {}", why);
               finished(kind, reason);
           });
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

bool Scheduler::cancel(const JobId& id) {
    for (auto& [n, s] : slots_)
        if (s->job.id.str() == id.str() && s->worker) {
            s->cancelled = true;
            s->worker->cancel();
            return true;
        }
    return false;
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
