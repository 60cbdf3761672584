#include "file_routes.hh"

#include "log/log.hh"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

namespace strata::metad {

using namespace route_util;

namespace {

constexpr std::size_t kMaxBlocks = 262144;      // 1 TiB of 4 MiB blocks
constexpr std::size_t kMissingQueryMax = 10000; // blockd's limit per /v1/blocks/missing
// SHA-256 of no bytes: an empty file is the one empty block.
constexpr const char* kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

bool is_hash(std::string_view h) {
    return h.size() == 64 && h.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

std::string sha256_hex(std::string_view data) {
    unsigned char out[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(out, reinterpret_cast<const unsigned char*>(data.data()), data.size());
    return auth::to_hex(std::string_view(reinterpret_cast<char*>(out), sizeof out));
}

// "type/subtype" of RFC 9110 token characters, lowercased; nullopt otherwise.
std::optional<std::string> media_type_of(std::string_view s) {
    static constexpr std::string_view tchar = "abcdefghijklmnopqrstuvwxyz0123456789!#$&^_.+-";
    std::string t(s);
    for (char& c : t)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    auto slash = t.find('/');
    if (t.size() > 127 || slash == std::string::npos || slash == 0 || slash + 1 == t.size() ||
        t.find_first_not_of(tchar, 0) != slash ||
        t.find_first_not_of(tchar, slash + 1) != std::string::npos)
        return std::nullopt;
    return t;
}

http::Response missing_response(const std::vector<std::string>& missing) {
    return http::Response::json(
        409,
        {{"error",
          {{"code", "missing_blocks"},
           {"message", std::to_string(missing.size()) +
                           " blocks are not stored yet: PUT them to blockd, then commit again"}}},
         {"missing", missing}});
}

http::Error blockd_error(const http_client::Response& r, const char* what) {
    std::string code = "blockd_error",
                message = std::string(what) + ": blockd answered " + std::to_string(r.status);
    try {
        auto j = nlohmann::json::parse(r.body);
        code = j["error"]["code"].get<std::string>();
        message = j["error"]["message"].get<std::string>();
    } catch (const std::exception&) {
    }
    // Limits and refusals are the client's to know; anything else is a gateway problem.
    int status = r.status == 413 || r.status == 415 || r.status == 400 ? r.status : 502;
    return http::Error(status, code, message);
}

http_client::Client& blockd_of(const FileOptions& fo) {
    if (!fo.blockd)
        throw http::Error(503, "blockd_not_configured",
                          "file commits need blockd.socket (see metad.conf(5))");
    return *fo.blockd;
}

// What blockd says of the content: verified (hash, type, malware scan) and its manifest
// stored. Cached per (blocks, declared type): content is immutable.
struct Verdict {
    Verified v;
    bool fresh = false; // verified now (remember it), not from the cache
};

// blockd's answer to POST /v1/verify, as a Verified; 422 for malware.
Verified verified_of(const http_client::Response& r) {
    auto j = r.json();
    if (j["scan"]["verdict"] == "infected")
        throw http::Error(422, "infected",
                          "the content contains malware (" +
                              j["scan"].value("signature", std::string("unknown")) + ")");
    return Verified{j["size"], j["sha256"], j["media_type"], j.value("manifest", std::string()),
                    j["scan"]["verdict"]};
}

struct CommitRequest {
    FileCommit file;
    std::vector<std::string> blocks;
    std::optional<std::uint64_t> size;
    std::string sha256, type;
};

CommitRequest parse_commit(const http::Request& req) {
    auto j = body_object(req);
    CommitRequest c;
    auto parent = id_of(j.value("parent", json()));
    if (!parent) throw http::Error(400, "bad_request", "\"parent\" must be a folder id");
    c.file.parent = *parent;
    c.file.name = string_field(j, "name");
    c.file.tags = string_list(j, "tags");
    c.blocks = string_list(j, "blocks");
    if (c.blocks.size() > kMaxBlocks)
        throw http::Error(413, "too_many_blocks", "a file has at most 262144 blocks");
    for (const auto& h : c.blocks)
        if (!is_hash(h))
            throw http::Error(400, "invalid_hash", "block hashes are 64 lowercase hex digits");
    if (c.blocks.empty()) c.blocks.push_back(kEmptySha256);
    if (j.contains("size")) {
        if (!j["size"].is_number_unsigned())
            throw http::Error(400, "bad_request", "\"size\" is a byte count");
        c.size = j["size"].get<std::uint64_t>();
    }
    c.sha256 = string_field(j, "sha256", false);
    if (!c.sha256.empty() && !is_hash(c.sha256))
        throw http::Error(400, "invalid_hash", "\"sha256\" is 64 lowercase hex digits");
    if (auto t = string_field(j, "type", false); !t.empty()) {
        auto mt = media_type_of(t);
        if (!mt) throw http::Error(400, "bad_type", "\"type\" is a media type like image/png");
        c.type = *mt;
    }
    return c;
}

// The caller may add to the folder: checked before any work with blockd (and again in the
// write transaction).
void check_parent(Context& ctx, std::uint64_t caller, std::uint64_t parent) {
    Role role = Role::none;
    Node p = ctx.store.stat(Principal{caller}, parent, &role);
    if (p.trashed) throw http::Error(404, "not_found", "no such file or folder");
    if (p.kind != NodeKind::folder)
        throw http::Error(400, "not_a_folder", "the parent is not a folder");
    if (role < Role::write) throw http::Error(403, "forbidden", "the folder is read-only for you");
}

// The commit protocol: blockd lists missing blocks (the client uploads them and commits
// again), verifies the rest and stores the manifest; metad records the file. No thread
// waits: blockd is asked from the loop (AsyncClient), the record joins the group commit,
// and the answer leaves from the commit thread.
class CommitFlow : public std::enable_shared_from_this<CommitFlow> {
public:
    CommitFlow(std::shared_ptr<Context> ctx, const FileOptions& fo, std::uint64_t caller,
               CommitRequest c, http::Reply reply)
        : ctx_(std::move(ctx)), fo_(fo), caller_(caller), c_(std::move(c)),
          reply_(std::move(reply)) {
        std::string key;
        for (const auto& b : c_.blocks)
            key += b + "\n";
        key_ = sha256_hex(key + c_.type);
    }

    void start() { check_missing(false); }

private:
    http_client::AsyncClient& blockd() {
        if (!fo_.blockd_async)
            throw http::Error(503, "blockd_not_configured",
                              "file commits need blockd.socket (see metad.conf(5))");
        return *fo_.blockd_async;
    }

    // Runs one step of the flow (on the loop); what it throws is the answer.
    template <class F>
    void step(F&& fn) {
        try {
            fn();
        } catch (...) {
            reply_(async_answer(std::current_exception(), [] { return http::Response(); }));
        }
    }

    static void check_transport(const http_client::Result& r) {
        if (r.error)
            throw http::Error(502, "blockd_unavailable", std::string("blockd: ") + r.error->what());
    }

    // again: after a verify that found a block gone (GC between the two calls).
    void check_missing(bool again) {
        again_ = again;
        missing_.clear();
        next_ = 0;
        ask_missing();
    }

    void ask_missing() {
        if (next_ >= c_.blocks.size()) return after_missing();
        auto from = c_.blocks.begin() + static_cast<std::ptrdiff_t>(next_);
        std::size_t n = std::min(c_.blocks.size() - next_, kMissingQueryMax);
        json part = {
            {"blocks", std::vector<std::string>(from, from + static_cast<std::ptrdiff_t>(n))}};
        next_ += n;
        blockd().post_json("/v1/blocks/missing", part, [self = shared_from_this()](auto r) {
            self->step([&] {
                check_transport(r);
                if (r.response.status != 200) throw blockd_error(r.response, "checking blocks");
                const json answer = r.response.json();
                for (const auto& h : answer.at("missing"))
                    self->missing_.push_back(h.template get<std::string>());
                self->ask_missing();
            });
        });
    }

    void after_missing() {
        if (!missing_.empty()) return reply_(missing_response(missing_));
        if (again_) throw blockd_error(verify_answer_, "verifying"); // a 404 of nothing gone
        if (auto cached = guarded_store([&] { return ctx_->store.verified(key_); }))
            return record(*cached, false);
        json body = {{"blocks", c_.blocks}, {"manifest", true}};
        if (!c_.type.empty()) body["type"] = c_.type;
        http_client::Request req;
        req.method = "POST";
        req.path = "/v1/verify";
        req.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
        req.body = body.dump();
        req.timeout = fo_.verify_timeout;
        blockd().request(std::move(req), [self = shared_from_this()](http_client::Result r) {
            self->step([&] {
                check_transport(r);
                if (r.response.status == 404) { // a block went between the two calls (GC)
                    self->verify_answer_ = std::move(r.response);
                    return self->check_missing(true);
                }
                if (r.response.status != 200) throw blockd_error(r.response, "verifying");
                self->record(verified_of(r.response), true);
            });
        });
    }

    void record(const Verified& v, bool fresh) {
        if (c_.size && *c_.size != v.size)
            throw http::Error(400, "size_mismatch",
                              "the blocks hold " + std::to_string(v.size) + " bytes, not " +
                                  std::to_string(*c_.size));
        if (!c_.sha256.empty() && c_.sha256 != v.sha256)
            throw http::Error(400, "hash_mismatch", "the content's SHA-256 is " + v.sha256);
        FileCommit f = c_.file;
        f.size = v.size;
        f.sha256 = v.sha256;
        f.media_type = c_.type.empty() ? v.media_type : c_.type;
        f.manifest = v.manifest;
        f.scan = v.scan;
        if (fresh) f.verified_key = key_;
        guarded_store([&] {
            ctx_->store.commit_file_async(
                caller_, std::move(f), [reply = reply_](Node n, std::exception_ptr e) {
                    reply(async_answer(e, [&] { return node_response(201, n, Role::owner); }));
                });
        });
    }

    std::shared_ptr<Context> ctx_;
    const FileOptions& fo_;
    std::uint64_t caller_;
    CommitRequest c_;
    http::Reply reply_;
    std::string key_;
    std::vector<std::string> missing_;
    std::size_t next_ = 0;
    bool again_ = false;
    http_client::Response verify_answer_;
};

void commit(const std::shared_ptr<Context>& ctx, const FileOptions& fo, http::Request& req,
            http::Reply reply) {
    std::uint64_t caller = ctx->caller(req, "files:write");
    CommitRequest c = parse_commit(req);
    guarded_store([&] {
        check_name(c.file.name);
        check_parent(*ctx, caller, c.file.parent);
    });
    std::make_shared<CommitFlow>(ctx, fo, caller, std::move(c), std::move(reply))->start();
}

// One-shot upload: the body goes to an unlinked spool file (O_TMPFILE) as it arrives, then,
// off the loop, to blockd's POST /v1/blobs, then to /v1/verify, then it is committed.
class UploadSink : public http::BodySink {
public:
    UploadSink(std::shared_ptr<Context> ctx, const FileOptions& fo, std::uint64_t caller,
               FileCommit file, std::string type)
        : ctx_(std::move(ctx)), fo_(fo), caller_(caller), file_(std::move(file)),
          type_(std::move(type)) {
        fd_ = ::open(fo_.spool_dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd_ < 0)
            throw http::Error(507, "insufficient_storage",
                              std::string("cannot spool the upload: ") + std::strerror(errno));
        // The name is taken now (409 before the body), and the upload shows in listings.
        try {
            id_ = ctx_->store.begin_upload(caller_, file_.parent, file_.name).id;
        } catch (const StoreError& e) {
            ::close(fd_); // a throwing constructor runs no destructor
            throw http::Error(e.status(), e.code(), e.what());
        }
    }
    ~UploadSink() override {
        if (fd_ >= 0) ::close(fd_);
        // Aborted (client gone, limit hit) or failed: the placeholder goes.
        if (id_ && !done_) {
            try {
                ctx_->store.abort_upload(id_);
            } catch (const std::exception& e) {
                log::warning("removing the placeholder of an aborted upload: {}", e.what());
            }
        }
    }

    void data(std::string_view chunk) override {
        while (!chunk.empty()) {
            ssize_t n = ::write(fd_, chunk.data(), chunk.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0)
                throw http::Error(errno == ENOSPC ? 507 : 500, "spool_failed",
                                  std::string("spooling the upload: ") + std::strerror(errno));
            size_ += static_cast<std::uint64_t>(n);
            chunk.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    http::Response finish() override {
        return guarded_store([&]() -> http::Response {
            http_client::Request r;
            r.method = "POST";
            r.path = "/v1/blobs";
            if (!type_.empty()) r.path += "?type=" + type_;
            r.headers.set("Content-Type", "application/octet-stream");
            r.timeout = fo_.verify_timeout;
            r.body_size = size_;
            off_t offset = 0;
            r.body_source = [this, &offset](char* buf, std::size_t cap) -> long {
                ssize_t n = ::pread(fd_, buf, cap, offset);
                if (n < 0) return -1;
                offset += n;
                return static_cast<long>(n);
            };
            http_client::Response stored;
            try {
                stored = blockd_of(fo_).request(std::move(r));
            } catch (const http_client::Error& e) {
                throw http::Error(502, "blockd_unavailable", std::string("blockd: ") + e.what());
            }
            if (stored.status != 201) throw blockd_error(stored, "storing the upload");
            std::string manifest = stored.json()["id"];
            http_client::Response verified;
            try {
                verified =
                    blockd_of(fo_).post_json("/v1/verify", {{"id", manifest}}, fo_.verify_timeout);
            } catch (const http_client::Error& e) {
                throw http::Error(502, "blockd_unavailable", std::string("blockd: ") + e.what());
            }
            if (verified.status != 200) throw blockd_error(verified, "verifying the upload");
            Verified v = verified_of(verified);
            FileCommit f = file_;
            f.size = v.size;
            f.sha256 = v.sha256;
            f.media_type = type_.empty() ? v.media_type : type_;
            f.manifest = manifest;
            f.scan = v.scan;
            Node n = ctx_->store.finish_upload(caller_, id_, f);
            done_ = true;
            return node_response(201, n, Role::owner);
        });
    }

private:
    std::shared_ptr<Context> ctx_;
    const FileOptions& fo_;
    std::uint64_t caller_;
    FileCommit file_;
    std::string type_;
    int fd_ = -1;
    std::uint64_t size_ = 0;
    std::uint64_t id_ = 0; // the placeholder node
    bool done_ = false;
};

} // namespace

void add_tree_routes(http::Router& router, const std::shared_ptr<Context>& ctx, FileOptions files) {
    auto fo = std::make_shared<const FileOptions>(std::move(files));

    // Writes wait for their group commit (an fsync): off the loop.
    router.add_blocking("POST", "/v1/folders", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:write");
        auto j = body_object(req);
        auto parent = id_of(j.value("parent", json()));
        if (!parent) throw http::Error(400, "bad_request", "\"parent\" must be an id");
        return guarded_store([&] {
            return node_response(
                201, ctx->store.create_folder(caller, *parent, string_field(j, "name")));
        });
    });
    router.add_async("POST", "/v1/files", [ctx, fo](http::Request& req, http::Reply reply) {
        commit(ctx, *fo, req, std::move(reply));
    });
    router.add_stream(
        "POST", "/v1/upload",
        [ctx, fo](http::Request& req) -> std::unique_ptr<http::BodySink> {
            std::uint64_t caller = ctx->caller(req, "files:write");
            auto q = [&](const char* k) {
                auto it = req.query.find(k);
                return it == req.query.end() ? std::string() : it->second;
            };
            auto parent = id_of(json(q("parent")));
            if (!parent) throw http::Error(400, "bad_request", "?parent= must be a folder id");
            FileCommit f;
            f.parent = *parent;
            f.name = q("name");
            std::string type;
            if (!q("type").empty()) {
                auto t = media_type_of(q("type"));
                if (!t) throw http::Error(400, "bad_type", "?type= is a media type");
                type = *t;
            }
            blockd_of(*fo);
            // Refused before a byte of the body is read: bad name, no access, name taken
            // (the sink's placeholder).
            return std::make_unique<UploadSink>(ctx, *fo, caller, std::move(f), std::move(type));
        },
        fo->max_upload_bytes, /*blocking_finish=*/true);

    router.get("/v1/nodes/{id}", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:read");
        return guarded_store([&] {
            Role role = Role::none;
            Node n = ctx->store.stat(Principal{caller}, path_id(req), &role);
            return node_response(200, n, role);
        });
    });
    router.get("/v1/stat", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:read");
        auto it = req.query.find("path");
        if (it == req.query.end()) throw http::Error(400, "bad_request", "expected ?path=/...");
        return guarded_store([&] {
            return node_response(200, ctx->store.stat_path(caller, it->second), Role::owner);
        });
    });
    router.get("/v1/nodes/{id}/children", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:read");
        std::size_t limit = limit_param(req);
        std::string cursor = cursor_param(req);
        return guarded_store([&] {
            return children_response(ctx->store, Principal{caller}, path_id(req), cursor, limit);
        });
    });
    // Parsed on the loop; the write joins the next group commit and answers from there, so
    // no thread waits for the fsync.
    router.add_async("PATCH", "/v1/nodes/{id}", [ctx](http::Request& req, http::Reply reply) {
        std::uint64_t caller = ctx->caller(req, "files:write");
        auto j = body_object(req);
        std::optional<std::string> name;
        std::optional<std::uint64_t> parent;
        std::optional<std::vector<std::string>> tags;
        if (j.contains("name")) name = string_field(j, "name");
        if (j.contains("parent")) {
            parent = id_of(j["parent"]);
            if (!parent) throw http::Error(400, "bad_request", "\"parent\" must be an id");
        }
        if (j.contains("tags")) tags = string_list(j, "tags");
        std::uint64_t if_match = if_match_param(req);
        guarded_store([&] {
            ctx->store.update_async(caller, path_id(req), name, parent, if_match, tags,
                                    [reply](Node n, std::exception_ptr e) {
                                        reply(
                                            async_answer(e, [&] { return node_response(200, n); }));
                                    });
        });
    });
    router.add_blocking("DELETE", "/v1/nodes/{id}", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:write");
        std::uint64_t if_match = if_match_param(req);
        return guarded_store(
            [&] { return node_response(200, ctx->store.trash(caller, path_id(req), if_match)); });
    });
    router.add_blocking("POST", "/v1/nodes/{id}/restore", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:write");
        std::optional<std::string> name;
        if (!req.body.empty()) {
            auto j = body_object(req);
            if (j.contains("name")) name = string_field(j, "name");
        }
        return guarded_store([&] {
            return node_response(200, ctx->store.restore(caller, path_id(req), name), Role::owner);
        });
    });
    router.get("/v1/trash", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:read");
        std::size_t limit = limit_param(req);
        std::string cursor = cursor_param(req);
        return guarded_store(
            [&] { return page_response(ctx->store.list_trash(caller, cursor, limit)); });
    });
    router.add_blocking("DELETE", "/v1/trash/{id}", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:write");
        return guarded_store([&] {
            return http::Response::json(200, {{"removed", ctx->store.purge(caller, path_id(req))}});
        });
    });
    router.add_blocking("DELETE", "/v1/trash", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:write");
        return guarded_store([&] {
            return http::Response::json(200, {{"removed", ctx->store.empty_trash(caller)}});
        });
    });
    // Processing results, from transcoded (same uid as metad) or an operator.
    router.add_blocking("PUT", "/v1/nodes/{id}/processing", [ctx](http::Request& req) {
        require_operator(req);
        auto j = body_object(req);
        auto state = file_state_of(string_field(j, "state"));
        if (!state) throw http::Error(400, "bad_state", "state is ready, failed or processing");
        return guarded_store([&] {
            return node_response(200,
                                 ctx->store.set_file_state(path_id(req), *state,
                                                           j.value("renditions", json::array()),
                                                           j.value("processing", json())));
        });
    });
    add_download_routes(router, ctx, fo);
}

} // namespace strata::metad
