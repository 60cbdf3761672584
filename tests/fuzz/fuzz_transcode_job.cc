// libFuzzer target: a job as metad would POST it to strata-transcoded (JSON), the same input
// as a metad event (POST /v1/events), job ids as an operator would type them, and playlist
// rewriting. Anything is refused with std::invalid_argument (MediaError for playlists) or
// accepted; an accepted job writes back to JSON that parses to the same job, in the same
// class; an event's job is a valid job.
#include "job.hh"
#include "job_queue.hh"
#include "publish.hh"

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

using namespace strata::transcoded;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    if (auto id = JobId::parse(in)) {
        if (id->str() != in) std::abort(); // one spelling per id
    }
    // Every URI line of a playlist gets an address; none is left behind.
    try {
        std::string out = rewrite_playlist(std::string(in), [](const std::string& uri) {
            return uri.size() % 7 == 0 ? std::string() : std::string(64, 'a');
        });
        for (std::size_t at = 0; at < out.size();) {
            std::size_t end = out.find('\n', at);
            std::string_view line(out.data() + at, end - at);
            if (!line.empty() && line[0] != '#' && line != std::string(64, 'a')) std::abort();
            at = end + 1;
        }
    } catch (const MediaError&) {
    }
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded()) return 0;
    try {
        if (auto e = job_of_event(j)) (void)parse_job(to_json(*e)); // must not throw
    } catch (const std::invalid_argument&) {
    }
    Job job;
    try {
        job = parse_job(j);
    } catch (const std::invalid_argument&) {
        return 0;
    }
    Job back = parse_job(to_json(job)); // must not throw
    if (back.file_id != job.file_id || back.version != job.version || back.kind != job.kind ||
        back.source != job.source || back.bytes != job.bytes ||
        back.duration_seconds != job.duration_seconds)
        std::abort();
    PriorityRules rules;
    if (priority_of(back, rules) != priority_of(job, rules)) std::abort();
    if (idempotency_key(job).empty()) std::abort();
    return 0;
}
