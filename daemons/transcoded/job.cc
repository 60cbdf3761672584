#include "job.hh"

#include <cmath>
#include <stdexcept>

namespace strata::transcoded {

namespace {

std::uint64_t positive_id(const nlohmann::json& j, const char* name) {
    auto it = j.find(name);
    if (it == j.end()) throw std::invalid_argument(std::string(name) + " is missing");
    if (!it->is_number_unsigned() || it->get<std::uint64_t>() == 0)
        throw std::invalid_argument(std::string(name) + " must be a positive integer");
    return it->get<std::uint64_t>();
}

} // namespace

Job parse_job(const nlohmann::json& j) {
    if (!j.is_object()) throw std::invalid_argument("a job is a JSON object");
    Job job;
    job.file_id = positive_id(j, "file_id");
    job.version = positive_id(j, "version");
    auto kind = j.find("kind");
    if (kind == j.end() || !kind->is_string())
        throw std::invalid_argument("kind must be \"image\" or \"video\"");
    if (*kind == "image")
        job.kind = Kind::image;
    else if (*kind == "video")
        job.kind = Kind::video;
    else
        throw std::invalid_argument("kind must be \"image\" or \"video\"");
    auto source = j.find("source");
    if (source == j.end() || !source->is_string() || source->get<std::string>().empty() ||
        source->get<std::string>().size() > 256)
        throw std::invalid_argument("source must be a content address (1 to 256 characters)");
    job.source = source->get<std::string>();
    for (char c : job.source)
        if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
            throw std::invalid_argument("source has spaces, controls or non-ASCII bytes");
    if (auto b = j.find("bytes"); b != j.end() && !b->is_null()) {
        if (!b->is_number_unsigned()) throw std::invalid_argument("bytes must be an integer >= 0");
        job.bytes = b->get<std::uint64_t>();
    }
    if (auto d = j.find("duration_seconds"); d != j.end() && !d->is_null()) {
        if (!d->is_number() || !std::isfinite(d->get<double>()) || d->get<double>() < 0)
            throw std::invalid_argument("duration_seconds must be a number >= 0");
        job.duration_seconds = d->get<double>();
    }
    for (const auto& [k, v] : j.items())
        if (k != "file_id" && k != "version" && k != "kind" && k != "source" && k != "bytes" &&
            k != "duration_seconds")
            throw std::invalid_argument("unknown field " + k);
    return job;
}

std::optional<Job> job_of_event(const nlohmann::json& e) {
    if (!e.is_object()) throw std::invalid_argument("an event is a JSON object");
    auto type = e.find("type");
    if (type == e.end() || !type->is_string()) throw std::invalid_argument("type is missing");
    if (*type != "file.created") return std::nullopt;
    auto data = e.find("data");
    if (data == e.end() || !data->is_object()) throw std::invalid_argument("data is missing");
    if (data->value("state", std::string()) != "processing") return std::nullopt;
    std::string media = data->value("type", std::string());
    if (!media.starts_with("image/") && !media.starts_with("video/")) return std::nullopt;
    auto node = e.find("node");
    if (node == e.end() || !node->is_string())
        throw std::invalid_argument("node must be the file id as a decimal string");
    std::uint64_t id = 0;
    const std::string& s = node->get_ref<const std::string&>();
    if (s.empty() || s.size() > 20 || s.find_first_not_of("0123456789") != std::string::npos)
        throw std::invalid_argument("node must be the file id as a decimal string");
    try {
        id = std::stoull(s);
    } catch (const std::exception&) {
        throw std::invalid_argument("node is out of range");
    }
    nlohmann::json job = {{"file_id", id},
                          {"version", data->value("version", nlohmann::json())},
                          {"kind", media.starts_with("image/") ? "image" : "video"},
                          {"source", data->value("manifest", nlohmann::json())}};
    if (auto size = data->find("size"); size != data->end()) job["bytes"] = *size;
    return parse_job(job);
}

nlohmann::json to_json(const Job& job) {
    nlohmann::json j = {{"file_id", job.file_id},
                        {"version", job.version},
                        {"kind", kind_name(job.kind)},
                        {"source", job.source}};
    if (job.bytes) j["bytes"] = job.bytes;
    if (job.duration_seconds > 0) j["duration_seconds"] = job.duration_seconds;
    return j;
}

const char* kind_name(Kind k) {
    return k == Kind::image ? "image" : "video";
}

std::string idempotency_key(const Job& job) {
    return "file:" + std::to_string(job.file_id) + ":v" + std::to_string(job.version);
}

const char* priority_name(Priority p) {
    switch (p) {
    case Priority::images:
        return "images";
    case Priority::short_videos:
        return "short";
    case Priority::videos:
        return "videos";
    case Priority::long_videos:
        return "long";
    }
    return "videos";
}

Priority priority_of(const Job& job, const PriorityRules& rules) {
    if (job.kind == Kind::image) return Priority::images;
    if (job.duration_seconds > 0) {
        if (job.duration_seconds <= rules.short_video_seconds) return Priority::short_videos;
        if (job.duration_seconds > rules.long_video_seconds) return Priority::long_videos;
        return Priority::videos;
    }
    if (job.bytes > 0) {
        if (job.bytes <= rules.short_video_bytes) return Priority::short_videos;
        if (job.bytes > rules.long_video_bytes) return Priority::long_videos;
    }
    return Priority::videos;
}

} // namespace strata::transcoded
