// strata-transcoded's configuration beyond the common keys (transcoded.conf(5)): where the
// other daemons are, the workers' limits, and the image and video pipelines' options. The
// daemon reads it from its config; each worker gets its part as JSON with the job, so a
// reload applies to the jobs that start afterwards.
#pragma once

#include "config/config.hh"
#include "config/schema.hh"
#include "image_pipeline.hh"
#include "video_pipeline.hh"

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace strata::transcoded {

// What a worker needs besides its job.
struct PipelineSettings {
    std::string blockd = "unix:/run/strata/blockd.sock";
    std::uint64_t max_source_bytes = 64ull << 30;
    ImageOptions image;
    VideoOptions video;
};

struct Settings {
    std::string metad = "unix:/run/strata/metad.sock";
    unsigned workers = 2;
    int nice = 10;
    std::uint64_t memory_bytes = 4ull << 30;
    std::chrono::seconds job_timeout{4 * 3600};
    std::chrono::seconds stall_timeout{120};
    unsigned max_attempts = 5;              // restart: the queue's options
    std::chrono::seconds retry_backoff{30}; // doubles each attempt, up to an hour
    PipelineSettings pipeline;
};

void extend_schema(config::Schema& s);
// Throws std::invalid_argument for values whose combination cannot work (a segment length
// that is not a multiple of the keyframe interval, a malformed ladder rung).
Settings settings_of(const config::Config& c);

// The ladder's config form, "NAME HEIGHT KBPS" (e.g. "720p 720 2800"): "" or why not.
std::string check_rung(const std::string& spec);
Rung parse_rung(const std::string& spec);

nlohmann::json to_json(const PipelineSettings& p);
// Throws std::invalid_argument (nlohmann errors included) for anything malformed.
PipelineSettings pipeline_settings_of(const nlohmann::json& j);

} // namespace strata::transcoded
