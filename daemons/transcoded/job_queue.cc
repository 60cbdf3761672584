#include "job_queue.hh"

#include <charconv>
#include <stdexcept>

namespace strata::transcoded {

std::string JobId::str() const {
    return std::string(priority_name(priority)) + "." + std::to_string(n);
}

std::optional<JobId> JobId::parse(std::string_view s) {
    auto dot = s.find('.');
    if (dot == s.npos) return std::nullopt;
    std::string_view cls = s.substr(0, dot), num = s.substr(dot + 1);
    if (num.starts_with('0')) return std::nullopt; // one spelling per id: no "short.06"
    for (unsigned p = 0; p < kPriorities; ++p)
        if (cls == priority_name(static_cast<Priority>(p))) {
            std::uint64_t n = 0;
            auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), n);
            if (ec != std::errc() || end != num.data() + num.size() || n == 0) return std::nullopt;
            return JobId{static_cast<Priority>(p), n};
        }
    return std::nullopt;
}

JobQueue::JobQueue(lmdb::Env& env, queue::Options options, PriorityRules rules) : rules_(rules) {
    for (unsigned p = 0; p < kPriorities; ++p)
        queues_[p] = std::make_unique<queue::Queue>(
            env, std::string("jobs-") + priority_name(static_cast<Priority>(p)), options);
}

JobId JobQueue::submit(const Job& job) {
    parse_job(to_json(job)); // the same checks as a job that came as JSON
    Priority p = priority_of(job, rules_);
    return JobId{p, of(p).enqueue(to_json(job).dump(), idempotency_key(job))};
}

std::optional<LeasedJob> JobQueue::lease() {
    for (unsigned p = 0; p < kPriorities; ++p)
        while (auto l = queues_[p]->lease()) {
            LeasedJob out{JobId{static_cast<Priority>(p), l->id}, {}, std::move(*l)};
            try {
                out.job = parse_job(nlohmann::json::parse(out.lease.payload));
                return out;
            } catch (const std::exception& e) {
                // Written by submit(), so only a damaged store gets here: set it aside.
                (void)queues_[p]->bury(out.lease, std::string("unreadable job: ") + e.what());
            }
        }
    return std::nullopt;
}

bool JobQueue::done(const LeasedJob& j) {
    return of(j.id.priority).ack(j.lease);
}

bool JobQueue::failed(const LeasedJob& j, std::string_view why) {
    return of(j.id.priority).nack(j.lease, why);
}

bool JobQueue::failed_for_good(const LeasedJob& j, std::string_view why) {
    return of(j.id.priority).bury(j.lease, why);
}

bool JobQueue::extend(LeasedJob& j) {
    return of(j.id.priority).extend(j.lease);
}

namespace {

JobInfo info_of(const JobId& id, const queue::ItemInfo& i) {
    JobInfo out{id, i.state, i.attempts, i.enqueued_at, i.due, i.last_error, {}};
    try {
        out.job = parse_job(nlohmann::json::parse(i.payload));
    } catch (const std::exception&) {
        out.last_error = out.last_error.empty() ? "unreadable job" : out.last_error;
    }
    return out;
}

} // namespace

std::optional<JobInfo> JobQueue::find(const JobId& id) const {
    auto i = of(id.priority).find(id.n);
    if (!i) return std::nullopt;
    return info_of(id, *i);
}

bool JobQueue::cancel(const JobId& id) {
    return of(id.priority).cancel(id.n);
}

bool JobQueue::retry(const JobId& id) {
    return of(id.priority).requeue_dead(id.n);
}

std::array<queue::Counts, kPriorities> JobQueue::counts() const {
    std::array<queue::Counts, kPriorities> out;
    for (unsigned p = 0; p < kPriorities; ++p)
        out[p] = queues_[p]->counts();
    return out;
}

std::vector<JobInfo> JobQueue::dead(std::size_t limit) const {
    std::vector<JobInfo> out;
    for (unsigned p = 0; p < kPriorities && out.size() < limit; ++p)
        for (const auto& i : queues_[p]->list_dead(0, limit - out.size()))
            out.push_back(info_of(JobId{static_cast<Priority>(p), i.id}, i));
    return out;
}

} // namespace strata::transcoded
