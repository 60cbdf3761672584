// The transcoder's durable job queue: one lib/queue queue per priority class in one LMDB
// environment, leased strictly in class order (every image before any short video, and so
// on), each class FIFO. A job's id names its class: "images.12", "long.3". Submitting a
// file version again returns its job (the idempotency key lives in the class's queue, and
// a version always lands in the same class: priority_of is a pure function of the job).
#pragma once

#include "job.hh"
#include "lmdb/env.hh"
#include "queue/queue.hh"

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::transcoded {

struct JobId {
    Priority priority = Priority::images;
    std::uint64_t n = 0; // the item's id in its class's queue
    std::string str() const;
    // "images.12" -> JobId; nullopt for anything else.
    static std::optional<JobId> parse(std::string_view s);
};

struct LeasedJob {
    JobId id;
    Job job;
    queue::Lease lease;
};

struct JobInfo {
    JobId id;
    queue::State state = queue::State::pending;
    std::uint32_t attempts = 0;
    queue::TimePoint enqueued_at, due;
    std::string last_error;
    Job job;
};

class JobQueue {
public:
    // The Env must hold at least kPriorities * 7 named databases (lmdb::Env's directory
    // constructor allows 64) and outlive the queue.
    JobQueue(lmdb::Env& env, queue::Options options, PriorityRules rules = {});

    // Durable before it returns. Throws std::invalid_argument for an invalid job.
    JobId submit(const Job& job);
    // The first visible job of the most urgent class that has one.
    std::optional<LeasedJob> lease();
    [[nodiscard]] bool done(const LeasedJob& j);                         // ack
    [[nodiscard]] bool failed(const LeasedJob& j, std::string_view why); // nack: retry or dead
    [[nodiscard]] bool extend(LeasedJob& j);
    // Dead-letters a job whose failure retrying cannot fix (a corrupt file), at once.
    [[nodiscard]] bool failed_for_good(const LeasedJob& j, std::string_view why);

    std::optional<JobInfo> find(const JobId& id) const;
    // A pending or dead job is removed; false for a running (leased) or unknown one.
    bool cancel(const JobId& id);
    // A dead job goes back to pending, attempts reset.
    bool retry(const JobId& id);

    std::array<queue::Counts, kPriorities> counts() const;
    // Dead jobs of every class, most urgent class first.
    std::vector<JobInfo> dead(std::size_t limit = 100) const;
    const PriorityRules& rules() const { return rules_; }

private:
    queue::Queue& of(Priority p) const { return *queues_[static_cast<unsigned>(p)]; }
    std::array<std::unique_ptr<queue::Queue>, kPriorities> queues_;
    PriorityRules rules_;
};

} // namespace strata::transcoded
