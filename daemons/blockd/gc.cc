#include "gc.hh"

#include "manifest.hh"
#include "sha256.hh"

#include <algorithm>
#include <cstring>
#include <unistd.h>

namespace strata::blockd {

namespace {

int hex_value(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c - 'a' + 10;
}

std::int64_t unix_seconds(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

} // namespace

GarbageCollector::GarbageCollector(BlockStore& blocks, BlockStore& manifests,
                                   std::chrono::seconds grace, Clock clock)
    : blocks_(blocks), manifests_(manifests), grace_(grace), clock_(std::move(clock)) {
    if (grace_.count() < 0) throw std::invalid_argument("gc grace period must not be negative");
    if (!clock_) clock_ = [] { return std::chrono::system_clock::now(); };
}

std::size_t GarbageCollector::KeyHash::operator()(const Key& k) const noexcept {
    std::size_t h;
    std::memcpy(&h, k.data(), sizeof h); // SHA-256 bytes are already uniform
    return h;
}

GarbageCollector::Key GarbageCollector::key_of(std::string_view hex) {
    Key k{};
    for (std::size_t i = 0; i < k.size(); ++i)
        k[i] = static_cast<unsigned char>(hex_value(hex[2 * i]) << 4 | hex_value(hex[2 * i + 1]));
    return k;
}

void GarbageCollector::check_open(std::optional<std::uint64_t> epoch) const {
    if (sweeping_) throw GcError(GcError::Kind::sweeping, "the GC cycle is being swept");
    if (!running_) throw GcError(GcError::Kind::not_running, "no GC cycle is running");
    if (epoch && *epoch != epoch_)
        throw GcError(GcError::Kind::epoch_mismatch, "epoch " + std::to_string(*epoch) +
                                                         " is not the running cycle (" +
                                                         std::to_string(epoch_) + ")");
}

GcStart GarbageCollector::start() {
    std::lock_guard lock(mutex_);
    if (running_)
        throw GcError(GcError::Kind::running,
                      "GC cycle " + std::to_string(epoch_) + " is already running");
    started_at_ = clock_();
    auto secs = unix_seconds(started_at_);
    epoch_ = std::max<std::uint64_t>(epoch_ + 1, secs > 0 ? static_cast<std::uint64_t>(secs) : 0);
    running_ = true;
    marked_.clear();
    live_blocks_.clear();
    return {epoch_, started_at_};
}

GcMarkResult GarbageCollector::mark(const std::vector<std::string>& ids,
                                    std::optional<std::uint64_t> epoch) {
    for (const auto& id : ids)
        if (!is_valid_hash(id))
            throw BlockError(ErrorKind::invalid_hash, "invalid manifest id: " + id.substr(0, 80));
    {
        std::lock_guard lock(mutex_);
        check_open(epoch);
    }
    // Read the manifests without the lock (disk I/O); then merge under it.
    GcMarkResult result;
    std::vector<Key> found;
    KeySet blocks;
    for (const auto& id : ids) {
        auto info = manifests_.stat(id);
        if (!info) {
            result.unknown.push_back(id);
            continue;
        }
        found.push_back(key_of(id));
        auto m = load_manifest(manifests_, *info);
        if (!m) {
            result.damaged.push_back(id);
            continue;
        }
        for (const auto& b : m->blocks)
            if (is_valid_hash(b.sha256)) blocks.insert(key_of(b.sha256));
    }
    std::lock_guard lock(mutex_);
    check_open(epoch); // the cycle may have been aborted (or restarted) meanwhile
    for (const auto& k : found)
        if (marked_.insert(k).second) ++result.marked;
    live_blocks_.merge(blocks);
    result.total_marked = marked_.size();
    return result;
}

GcSweepResult GarbageCollector::sweep(bool dry_run, std::optional<std::uint64_t> epoch) {
    GcSweepResult r;
    KeySet marked, live;
    std::chrono::system_clock::time_point cutoff;
    {
        std::lock_guard lock(mutex_);
        check_open(epoch);
        sweeping_ = true;
        r.epoch = epoch_;
        cutoff = started_at_ - grace_;
        marked.swap(marked_);
        live.swap(live_blocks_);
    }
    r.dry_run = dry_run;
    auto finish = [&] {
        std::lock_guard lock(mutex_);
        sweeping_ = false;
        running_ = false;
    };

    try {
        auto note = [&](std::vector<std::string>& list, const std::string& id) {
            if (list.size() < max_listed)
                list.push_back(id);
            else
                r.truncated = true;
        };
        // Removes one victim unless it was rewritten/touched since it was seen.
        auto reap = [&](BlockStore& store, const BlockInfo& seen) -> bool {
            if (dry_run) return true;
            auto now = store.stat(seen.hash);
            if (!now || now->mtime > cutoff) return false;
            if (!store.remove(seen.hash)) return false;
            if (on_remove_) on_remove_(seen.hash);
            return true;
        };

        // Manifests: marked or young ones are live, and so are the blocks they list.
        std::vector<BlockInfo> dead;
        manifests_.for_each([&](const BlockInfo& info) {
            if (marked.count(key_of(info.hash))) {
                ++r.manifests_kept_marked;
            } else if (info.mtime > cutoff) {
                ++r.manifests_kept_grace;
                if (auto m = load_manifest(manifests_, info))
                    for (const auto& b : m->blocks)
                        if (is_valid_hash(b.sha256)) live.insert(key_of(b.sha256));
            } else {
                dead.push_back(info);
            }
        });
        for (const auto& info : dead) {
            if (!reap(manifests_, info)) {
                ++r.manifests_kept_grace;
                continue;
            }
            ++r.manifests_removed;
            r.bytes_freed += info.size;
            note(r.manifests, info.hash);
        }
        dead.clear();

        blocks_.for_each([&](const BlockInfo& info) {
            if (live.count(key_of(info.hash)))
                ++r.blocks_kept_live;
            else if (info.mtime > cutoff)
                ++r.blocks_kept_grace;
            else
                dead.push_back(info);
        });
        for (const auto& info : dead) {
            if (!reap(blocks_, info)) {
                ++r.blocks_kept_grace;
                continue;
            }
            ++r.blocks_removed;
            r.bytes_freed += info.size;
            note(r.blocks, info.hash);
        }
    } catch (...) {
        finish();
        throw;
    }
    std::lock_guard lock(mutex_);
    sweeping_ = false;
    running_ = false;
    last_sweep_ = r;
    last_sweep_->manifests.clear(); // status keeps the counts only
    last_sweep_->blocks.clear();
    return r;
}

bool GarbageCollector::abort() {
    std::lock_guard lock(mutex_);
    if (sweeping_) throw GcError(GcError::Kind::sweeping, "the GC cycle is being swept");
    bool was = running_;
    running_ = false;
    marked_.clear();
    live_blocks_.clear();
    return was;
}

GcStatus GarbageCollector::status() const {
    std::lock_guard lock(mutex_);
    GcStatus s;
    s.running = running_;
    s.sweeping = sweeping_;
    s.epoch = epoch_;
    if (epoch_) s.started_at = started_at_;
    s.marked = marked_.size();
    s.live_blocks = live_blocks_.size();
    s.grace = grace_;
    s.last_sweep = last_sweep_;
    return s;
}

// --- HTTP --------------------------------------------------------------------------------

namespace {

http::Error to_http(const GcError& e) {
    switch (e.kind()) {
    case GcError::Kind::running:
        return http::Error(409, "gc_running", e.what());
    case GcError::Kind::not_running:
        return http::Error(409, "gc_not_running", e.what());
    case GcError::Kind::sweeping:
        return http::Error(409, "gc_sweeping", e.what());
    case GcError::Kind::epoch_mismatch:
        return http::Error(409, "epoch_mismatch", e.what());
    }
    return http::Error(500, "internal", e.what());
}

// The body as a JSON object; an empty body counts as {}.
nlohmann::json body_object(const http::Request& req) {
    if (req.body.find_first_not_of(" \t\r\n") == std::string::npos) return nlohmann::json::object();
    auto body = req.json();
    if (!body.is_object()) throw http::Error(400, "bad_request", "expected a JSON object");
    return body;
}

std::optional<std::uint64_t> epoch_arg(const nlohmann::json& body) {
    auto it = body.find("epoch");
    if (it == body.end() || it->is_null()) return std::nullopt;
    if (!it->is_number_unsigned())
        throw http::Error(400, "bad_request", "\"epoch\" must be a non-negative integer");
    return it->get<std::uint64_t>();
}

nlohmann::json sweep_json(const GcSweepResult& r, bool lists) {
    nlohmann::json j = {{"epoch", r.epoch},
                        {"dry_run", r.dry_run},
                        {"manifests_removed", r.manifests_removed},
                        {"blocks_removed", r.blocks_removed},
                        {"bytes_freed", r.bytes_freed},
                        {"manifests_kept_marked", r.manifests_kept_marked},
                        {"manifests_kept_grace", r.manifests_kept_grace},
                        {"blocks_kept_live", r.blocks_kept_live},
                        {"blocks_kept_grace", r.blocks_kept_grace}};
    if (lists) {
        j["manifests"] = r.manifests;
        j["blocks"] = r.blocks;
        j["truncated"] = r.truncated;
    }
    return j;
}

} // namespace

void add_gc_routes(http::Router& router, GarbageCollector& gc) {
    router.post("/v1/gc/start", [&gc](http::Request&) {
        try {
            GcStart s = gc.start();
            return http::Response::json(200, {{"epoch", s.epoch},
                                              {"started_at", unix_seconds(s.started_at)},
                                              {"grace_seconds", gc.grace().count()}});
        } catch (const GcError& e) {
            throw to_http(e);
        }
    });
    // Mark reads up to max_mark_ids manifests and sweep walks both stores: off the loop.
    router.add_blocking("POST", "/v1/gc/mark", [&gc](http::Request& req) {
        auto body = body_object(req);
        auto it = body.find("manifests");
        if (it == body.end() || !it->is_array())
            throw http::Error(400, "bad_request", "expected {\"manifests\": [\"<id>\", ...]}");
        if (it->size() > GarbageCollector::max_mark_ids)
            throw http::Error(413, "too_many_ids",
                              "at most " + std::to_string(GarbageCollector::max_mark_ids) +
                                  " ids per call");
        std::vector<std::string> ids;
        ids.reserve(it->size());
        for (const auto& v : *it) {
            if (!v.is_string() || !is_valid_hash(v.get_ref<const std::string&>()))
                throw http::Error(
                    400, "invalid_id",
                    "manifest ids are 64 lowercase hex digits: " +
                        v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                            .substr(0, 80));
            ids.push_back(v.get<std::string>());
        }
        auto epoch = epoch_arg(body);
        try {
            GcMarkResult r = gc.mark(ids, epoch);
            return http::Response::json(200, {{"epoch", gc.status().epoch},
                                              {"marked", r.marked},
                                              {"total_marked", r.total_marked},
                                              {"unknown", r.unknown},
                                              {"damaged", r.damaged}});
        } catch (const GcError& e) {
            throw to_http(e);
        }
    });
    router.add_blocking("POST", "/v1/gc/sweep", [&gc](http::Request& req) {
        auto body = body_object(req);
        bool dry_run = false;
        if (auto it = body.find("dry_run"); it != body.end() && !it->is_null()) {
            if (!it->is_boolean())
                throw http::Error(400, "bad_request", "\"dry_run\" must be a boolean");
            dry_run = it->get<bool>();
        }
        auto epoch = epoch_arg(body);
        try {
            return http::Response::json(200, sweep_json(gc.sweep(dry_run, epoch), true));
        } catch (const GcError& e) {
            throw to_http(e);
        } catch (const BlockError& e) {
            throw http::Error(e.kind() == ErrorKind::disk_full ? 507 : 500, "gc_failed", e.what());
        }
    });
    router.post("/v1/gc/abort", [&gc](http::Request&) {
        try {
            auto epoch = gc.status().epoch;
            bool aborted = gc.abort();
            return http::Response::json(200, {{"aborted", aborted}, {"epoch", epoch}});
        } catch (const GcError& e) {
            throw to_http(e);
        }
    });
    router.get("/v1/gc", [&gc](http::Request&) {
        GcStatus s = gc.status();
        nlohmann::json j = {{"running", s.running},
                            {"sweeping", s.sweeping},
                            {"epoch", s.epoch},
                            {"started_at", nullptr},
                            {"marked", s.marked},
                            {"live_blocks", s.live_blocks},
                            {"grace_seconds", s.grace.count()},
                            {"last_sweep", nullptr}};
        if (s.started_at) j["started_at"] = unix_seconds(*s.started_at);
        if (s.last_sweep) j["last_sweep"] = sweep_json(*s.last_sweep, false);
        return http::Response::json(200, j);
    });
}

} // namespace strata::blockd
