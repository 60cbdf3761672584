// libFuzzer target: a job as metad would POST it to strata-transcoded (JSON), and job ids as
// an operator would type them. Anything is refused with std::invalid_argument or accepted;
// an accepted job writes back to JSON that parses to the same job, in the same class.
#include "job.hh"
#include "job_queue.hh"

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
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded()) return 0;
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
