// The job model and the priority job queue on a real LMDB environment (fake clock).
#include "job_queue.hh"

#include <atomic>
#include <criterion/criterion.h>
#include <filesystem>
#include <string>

using namespace strata;
using namespace strata::transcoded;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

fs::path g_dir;
std::atomic<std::int64_t> g_now{1'800'000'000'000};

void setup() {
    std::string tmpl = (fs::temp_directory_path() / "strata-jobs-XXXXXX").string();
    cr_assert(mkdtemp(tmpl.data()));
    g_dir = tmpl;
}
void teardown() {
    std::error_code ec;
    fs::remove_all(g_dir, ec);
}

queue::Options options() {
    queue::Options o;
    o.visibility_timeout = 30s;
    o.max_attempts = 3;
    o.backoff_base = 1s;
    o.backoff_max = 10s;
    o.clock = [] { return queue::TimePoint(std::chrono::milliseconds(g_now.load())); };
    return o;
}

Job video(std::uint64_t file, double seconds, std::uint64_t bytes = 0) {
    return Job{file, 1, Kind::video, "sha256:" + std::to_string(file), bytes, seconds};
}
Job image(std::uint64_t file) {
    return Job{file, 1, Kind::image, "sha256:i" + std::to_string(file), 1000, 0};
}

std::string parse_error(const std::string& text) {
    try {
        parse_job(nlohmann::json::parse(text));
        return "";
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
}

} // namespace

TestSuite(jobs, .init = setup, .fini = teardown);

Test(jobs, parse_and_write_back) {
    auto j = parse_job(nlohmann::json::parse(
        R"({"file_id":42,"version":3,"kind":"video","source":"sha256:ab","bytes":7,"duration_seconds":20.5})"));
    cr_assert(j.file_id == 42 && j.version == 3 && j.kind == Kind::video &&
              j.source == "sha256:ab" && j.bytes == 7 && j.duration_seconds == 20.5);
    cr_assert(parse_job(to_json(j)).duration_seconds == 20.5);
    cr_assert_eq(idempotency_key(j), "file:42:v3");
}

Test(jobs, refuses_what_is_not_a_job) {
    cr_assert_neq(parse_error("[]"), "");
    cr_assert(parse_error(R"({"version":1,"kind":"image","source":"a"})").find("file_id") !=
              std::string::npos);
    cr_assert(
        parse_error(R"({"file_id":0,"version":1,"kind":"image","source":"a"})").find("positive") !=
        std::string::npos);
    cr_assert(parse_error(R"({"file_id":-4,"version":1,"kind":"image","source":"a"})") != "");
    cr_assert(
        parse_error(R"({"file_id":1,"version":1,"kind":"audio","source":"a"})").find("kind") !=
        std::string::npos);
    cr_assert(
        parse_error(R"({"file_id":1,"version":1,"kind":"image","source":""})").find("source") !=
        std::string::npos);
    cr_assert(parse_error(R"({"file_id":1,"version":1,"kind":"image","source":"a b"})") != "");
    cr_assert(parse_error(R"({"file_id":1,"version":1,"kind":"image","source":"a","bytes":-1})")
                  .find("bytes") != std::string::npos);
    cr_assert(parse_error(
                  R"({"file_id":1,"version":1,"kind":"video","source":"a","duration_seconds":"x"})")
                  .find("duration") != std::string::npos);
    cr_assert(parse_error(R"({"file_id":1,"version":1,"kind":"image","source":"a","extra":1})")
                  .find("unknown field extra") != std::string::npos);
}

Test(jobs, priority_classes) {
    PriorityRules r;
    cr_assert(priority_of(image(1), r) == Priority::images);
    cr_assert(priority_of(video(1, 30), r) == Priority::short_videos);
    cr_assert(priority_of(video(1, 300), r) == Priority::videos);
    cr_assert(priority_of(video(1, 3600), r) == Priority::long_videos);
    cr_assert(priority_of(video(1, 0, 10 << 20), r) == Priority::short_videos, "by size");
    cr_assert(priority_of(video(1, 0, 1ull << 30), r) == Priority::long_videos, "by size");
    cr_assert(priority_of(video(1, 0, 0), r) == Priority::videos, "nothing known");
    for (const char* s : {"images.1", "short.7", "videos.12", "long.3"})
        cr_assert_eq(JobId::parse(s)->str(), s);
    for (const char* s : {"images", "images.", "images.0", "images.x", "other.1", "long.1x", "",
                          "short.06", "short.+6"})
        cr_assert(!JobId::parse(s), "%s", s);
}

Test(jobs, leased_by_class_then_fifo_and_submitted_once) {
    lmdb::Env env(g_dir);
    JobQueue q(env, options());
    auto long1 = q.submit(video(1, 3600));
    auto short1 = q.submit(video(2, 10));
    auto img1 = q.submit(image(3));
    auto short2 = q.submit(video(4, 20));
    auto img2 = q.submit(image(5));
    auto again = q.submit(video(2, 10));
    cr_assert_eq(again.str(), short1.str(), "the same file version is one job");
    std::vector<std::string> order;
    while (auto l = q.lease()) {
        order.push_back(l->id.str());
        cr_assert(q.done(*l));
    }
    std::vector<std::string> want = {img1.str(), img2.str(), short1.str(), short2.str(),
                                     long1.str()};
    cr_assert(order == want, "images first, then short videos, then long ones, FIFO within");
    auto c = q.counts();
    for (auto& k : c)
        cr_assert(k.ready == 0 && k.leased == 0 && k.dead == 0 && k.delayed == 0);
}

Test(jobs, retry_backoff_dead_letter_cancel_and_retry) {
    lmdb::Env env(g_dir);
    JobQueue q(env, options());
    auto id = q.submit(video(9, 100));
    for (int attempt = 1; attempt <= 3; ++attempt) {
        auto l = q.lease();
        cr_assert(l && l->id.str() == id.str() && l->lease.attempt == std::uint32_t(attempt));
        cr_assert(q.failed(*l, "pipeline crashed"));
        cr_assert(!q.lease(), "backing off");
        g_now += 20'000;
    }
    auto info = q.find(id);
    cr_assert(info && info->state == queue::State::dead && info->last_error == "pipeline crashed");
    cr_assert_eq(q.dead().size(), 1u);
    cr_assert_eq(q.dead()[0].job.file_id, 9u);
    cr_assert(q.retry(id));
    auto l = q.lease();
    cr_assert(l && l->lease.attempt == 1u, "retry resets the attempts");
    cr_assert(!q.cancel(id), "a running job is not cancelled here");
    cr_assert(q.failed_for_good(*l, "not a video: text/plain"));
    info = q.find(id);
    cr_assert(info && info->state == queue::State::dead &&
              info->last_error == "not a video: text/plain");
    cr_assert(q.cancel(id), "a dead job can be cancelled");
    cr_assert(!q.find(id));
    auto pending = q.submit(image(10));
    cr_assert(q.cancel(pending));
    cr_assert(!q.lease());
}

Test(jobs, durable_across_reopening) {
    std::string id;
    {
        lmdb::Env env(g_dir);
        JobQueue q(env, options());
        id = q.submit(video(11, 5)).str();
    }
    lmdb::Env env(g_dir);
    JobQueue q(env, options());
    auto l = q.lease();
    cr_assert(l && l->id.str() == id && l->job.file_id == 11u);
}
