// A transcode job as metad submits it (ARCHITECTURE.md, flow 2): which file version to
// process, what it is, and where its bytes are. Parsed from and written as JSON:
//   {"file_id": 42, "version": 3, "kind": "video", "source": "<blockd content address>",
//    "bytes": 7340032, "duration_seconds": 20.5}
// bytes and duration_seconds are hints for the job's priority (0 or absent: unknown).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace strata::transcoded {

enum class Kind { image, video };

struct Job {
    std::uint64_t file_id = 0;
    std::uint64_t version = 0;
    Kind kind = Kind::image;
    std::string source;
    std::uint64_t bytes = 0;
    double duration_seconds = 0;
};

// Throws std::invalid_argument saying which field is wrong.
Job parse_job(const nlohmann::json& j);
// The job a metad event asks for (metad delivers its events to POST /v1/events when
// transcoded is one of its events.sinks): a "file.created" event of a file in state
// "processing" whose type is image/* or video/*. nullopt for any other event (nothing to
// do); std::invalid_argument for such an event that lacks what a job needs.
std::optional<Job> job_of_event(const nlohmann::json& event);
nlohmann::json to_json(const Job& job);
const char* kind_name(Kind k);

// One job per file version: submitting the same file id and version again is a no-op.
std::string idempotency_key(const Job& job);

// Priority classes, served strictly in this order (small images before long videos).
enum class Priority : unsigned { images = 0, short_videos = 1, videos = 2, long_videos = 3 };
inline constexpr unsigned kPriorities = 4;
const char* priority_name(Priority p); // "images", "short", "videos", "long"

// Where a video goes by its duration (or, unknown, by its size).
struct PriorityRules {
    double short_video_seconds = 60;
    double long_video_seconds = 600;
    std::uint64_t short_video_bytes = 50ull << 20; // when the duration is unknown
    std::uint64_t long_video_bytes = 500ull << 20;
};

// A pure function of the job's fields, so that one file version always lands in the same
// class (its idempotency key lives in that class's queue).
Priority priority_of(const Job& job, const PriorityRules& rules);

} // namespace strata::transcoded
