// Unit tests of strata::blockd::GarbageCollector and its /v1/gc routes, called through
// http::Router::dispatch (no server). Each test runs on its own temporary directory; "old"
// content gets its mtime moved 48 h back with utimensat, so the grace period is tested
// without sleeping.

#include "gc.hh"
#include "manifest.hh"
#include "sha256.hh"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/stat.h>
#include <vector>

using namespace strata::blockd;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace http = strata::http;

static fs::path g_dir;

static void make_dir() {
    std::string tmpl = (fs::temp_directory_path() / "strata-gc-XXXXXX").string();
    cr_assert(mkdtemp(tmpl.data()) != nullptr, "mkdtemp failed");
    g_dir = tmpl;
}

static void remove_dir() {
    std::error_code ec;
    if (!g_dir.empty()) fs::remove_all(g_dir, ec);
}

TestSuite(gc, .init = make_dir, .fini = remove_dir);

namespace {

struct Env {
    BlockStore blocks{g_dir};
    BlockStore manifests{g_dir / "manifests"};
    GarbageCollector gc;
    http::Router router;
    explicit Env(std::chrono::seconds grace = 24h) : gc(blocks, manifests, grace) {
        add_gc_routes(router, gc);
    }

    std::string block(const std::string& data) {
        std::string h = sha256_hex(data);
        blocks.put(h, data);
        return h;
    }
    std::string manifest(const std::vector<std::string>& datas) {
        Manifest m;
        std::string whole;
        for (const auto& d : datas) {
            m.blocks.push_back({block(d), d.size()});
            m.size += d.size();
            whole += d;
        }
        m.sha256 = sha256_hex(whole);
        std::string enc = m.encode();
        std::string id = sha256_hex(enc);
        manifests.put(id, enc);
        return id;
    }

    http::Response call(const std::string& method, const std::string& path,
                        const std::string& body = "") {
        http::Request req;
        req.method = method;
        req.path = path;
        req.version = "HTTP/1.1";
        req.body = body;
        if (!body.empty()) req.headers.emplace("Content-Type", "application/json");
        return router.dispatch(req);
    }
    nlohmann::json ok(const std::string& method, const std::string& path,
                      const std::string& body = "") {
        auto r = call(method, path, body);
        cr_assert_eq(r.status, 200, "%s %s -> %d %s", method.c_str(), path.c_str(), r.status,
                     r.body.c_str());
        return nlohmann::json::parse(r.body);
    }
    nlohmann::json mark(const std::vector<std::string>& ids) {
        return ok("POST", "/v1/gc/mark", nlohmann::json{{"manifests", ids}}.dump());
    }
    nlohmann::json sweep(bool dry) {
        return ok("POST", "/v1/gc/sweep", nlohmann::json{{"dry_run", dry}}.dump());
    }
};

// Moves the mtime of every file under root 48 h back (content written "long ago").
void age_all(const fs::path& root) {
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= 48 * 3600;
    ts[1] = ts[0];
    for (auto& e : fs::recursive_directory_iterator(root))
        if (e.is_regular_file())
            cr_assert_eq(utimensat(AT_FDCWD, e.path().c_str(), ts, 0), 0, "utimensat");
}

} // namespace

Test(gc, live_content_kept_dead_removed_shared_block_kept) {
    Env env;
    std::string live = env.manifest({"alpha", "shared"});
    std::string dead = env.manifest({"beta", "shared"});
    std::string orphan = env.block("orphan block");
    age_all(g_dir);

    auto start = env.ok("POST", "/v1/gc/start");
    cr_assert(start["epoch"].get<std::uint64_t>() > 0);
    cr_assert(start.contains("started_at"));
    auto m = env.mark({live});
    cr_assert_eq(m["marked"], 1);
    cr_assert(m["unknown"].empty());

    auto s = env.sweep(false);
    cr_assert_eq(s["manifests_removed"], 1);
    cr_assert_eq(s["blocks_removed"], 2); // "beta" and the orphan
    cr_assert(s["bytes_freed"].get<std::uint64_t>() > 0);
    cr_assert_eq(s["manifests"][0], dead);

    cr_assert(env.manifests.has(live));
    cr_assert_not(env.manifests.has(dead));
    cr_assert(env.blocks.has(sha256_hex("alpha")));
    cr_assert(env.blocks.has(sha256_hex("shared")), "block shared with a live manifest kept");
    cr_assert_not(env.blocks.has(sha256_hex("beta")));
    cr_assert_not(env.blocks.has(orphan));

    auto st = env.ok("GET", "/v1/gc");
    cr_assert_eq(st["running"], false, "the sweep ends the cycle");
    cr_assert_eq(st["last_sweep"]["blocks_removed"], 2);
}

Test(gc, fresh_content_within_grace_kept) {
    Env env;
    std::string old_block = env.block("old unreferenced");
    age_all(g_dir);
    // Written "now": an upload in flight (blocks) and a committed but unmarked manifest.
    std::string fresh_block = env.block("fresh in flight");
    std::string fresh_manifest = env.manifest({"fresh file part"});

    env.ok("POST", "/v1/gc/start");
    auto s = env.sweep(false);
    cr_assert_eq(s["blocks_removed"], 1);
    cr_assert_eq(s["manifests_removed"], 0);
    cr_assert_eq(s["manifests_kept_grace"], 1);
    cr_assert_not(env.blocks.has(old_block));
    cr_assert(env.blocks.has(fresh_block));
    cr_assert(env.manifests.has(fresh_manifest));
    cr_assert(env.blocks.has(sha256_hex("fresh file part")));
}

Test(gc, old_block_of_fresh_manifest_kept) {
    Env env;
    std::string b = env.block("deduped block");
    age_all(g_dir);
    std::string id = env.manifest({"deduped block"}); // new manifest, old (deduped) block
    env.ok("POST", "/v1/gc/start");
    auto s = env.sweep(false);
    cr_assert_eq(s["blocks_removed"], 0);
    cr_assert(env.blocks.has(b));
    cr_assert(env.manifests.has(id));
}

Test(gc, grace_uses_injected_clock) {
    // Nothing is aged: with a clock 2 days ahead and 1 h of grace, everything is old.
    BlockStore blocks(g_dir), manifests(g_dir / "manifests");
    std::string h = sha256_hex("x");
    blocks.put(h, "x");
    GarbageCollector gc(blocks, manifests, 1h,
                        [] { return std::chrono::system_clock::now() + 48h; });
    gc.start();
    auto r = gc.sweep(false);
    cr_assert_eq(r.blocks_removed, 1);
    cr_assert_not(blocks.has(h));

    blocks.put(h, "x");
    GarbageCollector gc2(blocks, manifests, 72h,
                         [] { return std::chrono::system_clock::now() + 48h; });
    gc2.start();
    cr_assert_eq(gc2.sweep(false).blocks_kept_grace, 1);
    cr_assert(blocks.has(h));
}

Test(gc, dry_run_removes_nothing) {
    Env env;
    std::string dead = env.manifest({"one", "two"});
    age_all(g_dir);
    env.ok("POST", "/v1/gc/start");
    auto s = env.sweep(true);
    cr_assert_eq(s["dry_run"], true);
    cr_assert_eq(s["manifests_removed"], 1);
    cr_assert_eq(s["blocks_removed"], 2);
    cr_assert_eq(s["manifests"].size(), 1);
    cr_assert_eq(s["blocks"].size(), 2);
    cr_assert(env.manifests.has(dead));
    cr_assert(env.blocks.has(sha256_hex("one")));
    cr_assert(env.blocks.has(sha256_hex("two")));
    cr_assert_eq(env.ok("GET", "/v1/gc")["running"], false);
}

Test(gc, double_start_409) {
    Env env;
    env.ok("POST", "/v1/gc/start");
    auto r = env.call("POST", "/v1/gc/start");
    cr_assert_eq(r.status, 409);
    cr_assert(r.body.find("gc_running") != std::string::npos);
    auto st = env.ok("GET", "/v1/gc");
    cr_assert_eq(st["running"], true);
    // After abort a new cycle gets a larger epoch.
    auto e1 = st["epoch"].get<std::uint64_t>();
    cr_assert_eq(env.ok("POST", "/v1/gc/abort")["aborted"], true);
    cr_assert(env.ok("POST", "/v1/gc/start")["epoch"].get<std::uint64_t>() > e1);
}

Test(gc, mark_or_sweep_without_start_409) {
    Env env;
    std::string id = env.manifest({"a"});
    auto r = env.call("POST", "/v1/gc/mark", nlohmann::json{{"manifests", {id}}}.dump());
    cr_assert_eq(r.status, 409);
    cr_assert(r.body.find("gc_not_running") != std::string::npos);
    cr_assert_eq(env.call("POST", "/v1/gc/sweep", R"({"dry_run":false})").status, 409);
    // A stale epoch (cycle lost to a restart) is refused too.
    auto e = env.ok("POST", "/v1/gc/start")["epoch"].get<std::uint64_t>();
    auto stale = nlohmann::json{{"manifests", {id}}, {"epoch", e - 1}}.dump();
    cr_assert_eq(env.call("POST", "/v1/gc/mark", stale).status, 409);
}

Test(gc, invalid_id_400_unknown_reported) {
    Env env;
    std::string id = env.manifest({"a"});
    env.ok("POST", "/v1/gc/start");
    for (const char* body : {R"({"manifests":["../../etc/passwd"]})", R"({"manifests":[42]})",
                             R"({"manifests":"x"})", R"({"nope":[]})", R"([1,2])", "not json"}) {
        auto r = env.call("POST", "/v1/gc/mark", body);
        cr_assert_eq(r.status, 400, "%s -> %d", body, r.status);
    }
    std::string upper(64, 'A');
    auto r = env.call("POST", "/v1/gc/mark", nlohmann::json{{"manifests", {id, upper}}}.dump());
    cr_assert_eq(r.status, 400);
    cr_assert_eq(env.ok("GET", "/v1/gc")["marked"], 0, "nothing marked by a rejected call");

    std::string unknown(64, 'e');
    auto m = env.mark({id, unknown, id});
    cr_assert_eq(m["marked"], 1);
    cr_assert_eq(m["unknown"].size(), 1);
    cr_assert_eq(m["unknown"][0], unknown);
    cr_assert_eq(env.ok("GET", "/v1/gc")["marked"], 1);
}

Test(gc, mark_list_bounded_413) {
    Env env;
    env.ok("POST", "/v1/gc/start");
    std::vector<std::string> ids(GarbageCollector::max_mark_ids + 1, std::string(64, 'a'));
    auto r = env.call("POST", "/v1/gc/mark", nlohmann::json{{"manifests", ids}}.dump());
    cr_assert_eq(r.status, 413);
}

Test(gc, damaged_manifest_kept_when_marked) {
    Env env;
    std::string text = "not a manifest";
    std::string id = sha256_hex(text);
    env.manifests.put(id, text);
    age_all(g_dir);
    env.ok("POST", "/v1/gc/start");
    auto m = env.mark({id});
    cr_assert_eq(m["damaged"].size(), 1);
    env.sweep(false);
    cr_assert(env.manifests.has(id));
}
