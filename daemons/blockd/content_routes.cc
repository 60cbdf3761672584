#include "content_routes.hh"

#include "block_routes.hh"
#include "caller.hh"
#include "content_cache.hh"
#include "http_range.hh"
#include "io_pool.hh"
#include "manifest.hh"
#include "media_type.hh"

#include <algorithm>
#include <chrono>
#include <memory>
#include <unistd.h>

namespace strata::blockd {

namespace {

// Splits a streamed body into blocks as it arrives: memory stays at one chunk. Blocks
// already committed when an upload dies stay (content-addressed, unreferenced: GC's job).
class BlobSink : public http::BodySink {
public:
    // declared_type: the media type the uploader gave (?type=), or empty to detect it.
    BlobSink(BlockStore& blocks, BlockStore& manifests, IoPool& pool, std::string declared_type)
        : blocks_(blocks), manifests_(manifests), pipeline_(pool, kFlushDepth, &whole_),
          declared_type_(std::move(declared_type)) {}

    void data(std::string_view chunk) override {
        try {
            if (declared_type_.empty() && head_.size() < media_sniff_bytes)
                head_.append(chunk.substr(0, media_sniff_bytes - head_.size()));
            while (!chunk.empty()) {
                if (!writer_) writer_.emplace(blocks_.writer(/*defer_hash=*/true));
                std::size_t room = max_block_size - writer_->size();
                std::size_t n = std::min(room, chunk.size());
                writer_->append(chunk.substr(0, n));
                chunk.remove_prefix(n);
                if (writer_->size() == max_block_size) commit_block();
            }
        } catch (const BlockError& e) {
            throw to_http_error(e);
        }
    }

    http::Response finish() override {
        try {
            if (writer_ && writer_->size() > 0) commit_block();
            // Every block hashed and durable before the manifest names them.
            for (const auto& r : pipeline_.finish())
                manifest_.blocks.push_back({r.hash, r.size});
            auto whole = whole_.finish();
            if (!whole) throw BlockError(ErrorKind::io, "a block could not be read back");
            manifest_.sha256 = to_hex(*whole);
            manifest_.type = declared_type_.empty() ? detect_media_type(head_) : declared_type_;
            std::string encoded = manifest_.encode();
            std::string id = sha256_hex(encoded);
            manifests_.put(id, encoded);
            nlohmann::json blocks = nlohmann::json::array();
            for (const auto& b : manifest_.blocks)
                blocks.push_back({{"sha256", b.sha256}, {"size", b.size}});
            return http::Response::json(201, {{"id", id},
                                              {"size", manifest_.size},
                                              {"type", manifest_.type},
                                              {"sha256", manifest_.sha256},
                                              {"blocks", blocks}});
        } catch (const BlockError& e) {
            throw to_http_error(e);
        }
    }

private:
    // The block's hash, the whole content's hash (in block order) and the flush (fsync,
    // rename) run on the I/O pool while the loop goes on receiving: it only copies bytes.
    void commit_block() {
        SealedBlock sealed = writer_->seal();
        writer_.reset();
        manifest_.size += sealed.size();
        pipeline_.add(std::move(sealed));
    }

    // Blocks of one upload flushing at once: enough to keep the disk busy while the loop
    // receives the next 4 MiB, small enough that an abort waits for little.
    static constexpr std::size_t kFlushDepth = 4;

    BlockStore& blocks_;
    BlockStore& manifests_;
    OrderedHash whole_;       // fed by the pipeline's workers, so declared before it
    CommitPipeline pipeline_; // declared before writer_: an abort waits for flushes first
    std::optional<BlockWriter> writer_;
    Manifest manifest_;
    std::string declared_type_;
    std::string head_; // the first bytes, for libmagic
};

std::optional<std::string_view> header(const http::Request& r, std::string_view name) {
    return r.header(name);
}

// Content-Type of the stored type, and what keeps browsers from guessing another one or
// running uploaded documents and scripts on this origin.
void add_type_headers(http::Response& r, const std::string& type, bool with_type = true) {
    if (with_type) r.headers.emplace("Content-Type", type);
    r.headers.emplace("X-Content-Type-Options", "nosniff");
    if (is_active_media_type(type))
        r.headers.emplace("Content-Security-Policy", "sandbox; default-src 'none'");
}

// Appends the content bytes [first, last] as file pieces, one per block touched.
void add_content_pieces(http::Response& r, ContentCache& cache, const CachedContent& content,
                        std::uint64_t first, std::uint64_t last) {
    std::uint64_t block_start = 0;
    for (const auto& b : content.manifest.blocks) {
        std::uint64_t block_end = block_start + b.size; // exclusive
        if (block_end > first && block_start <= last) {
            auto file = cache.block(b.sha256);
            if (!file)
                throw http::Error(500, "missing_block",
                                  "block " + b.sha256 + " of " + content.id + " is missing");
            std::uint64_t from = std::max(first, block_start) - block_start;
            std::uint64_t to = std::min(last + 1, block_end) - block_start;
            r.pieces.push_back(http::BodyPiece{{}, std::move(file), from, to - from});
        }
        if (block_end > last) break;
        block_start = block_end;
    }
}

http::Response serve(const http::Request& req, ContentCache& cache, const ContentOptions& options) {
    const std::string& id = req.params.at("id");
    if (!is_valid_hash(id))
        throw http::Error(400, "invalid_id", "content ids are 64 lowercase hex digits");
    std::shared_ptr<const CachedContent> content;
    switch (cache.content(id, content)) {
    case ContentCache::Lookup::found:
        break;
    case ContentCache::Lookup::missing:
        throw http::Error(404, "not_found", "no content " + id);
    case ContentCache::Lookup::damaged:
        throw http::Error(500, "bad_manifest", "manifest " + id + " is damaged");
    }
    const std::string& etag = content->etag;
    const std::time_t modified = content->modified;
    const std::string& type = content->type;
    auto common = [&](http::Response& r) {
        r.headers.emplace("ETag", etag);
        r.headers.emplace("Last-Modified", content->last_modified);
        r.headers.emplace("Cache-Control", options.cache_control());
        r.headers.emplace("Accept-Ranges", "bytes");
    };

    switch (evaluate(header(req, "If-Match"), header(req, "If-None-Match"),
                     header(req, "If-Modified-Since"), header(req, "If-Unmodified-Since"), etag,
                     modified, true)) {
    case Precondition::not_modified: {
        http::Response r;
        r.status = 304;
        common(r);
        return r;
    }
    case Precondition::failed:
        throw http::Error(412, "precondition_failed", "a precondition header does not hold");
    case Precondition::proceed:
        break;
    }

    const std::uint64_t size = content->manifest.size;
    RangeResult range;
    if (auto h = header(req, "Range")) {
        auto if_range = header(req, "If-Range");
        if (!if_range || if_range_allows(*if_range, etag, modified)) range = parse_range(*h, size);
    }
    if (range.status == RangeStatus::unsatisfiable) {
        auto r = http::Response::error(416, "range_not_satisfiable",
                                       "no requested range overlaps the content");
        r.headers.emplace("Content-Range", unsatisfied_range(size));
        common(r);
        return r;
    }

    // The body is file pieces straight from the blocks (sendfile on the content engine).
    http::Response r;
    common(r);
    r.has_pieces = true;
    if (range.status != RangeStatus::satisfiable || range.ranges.size() == 1) {
        bool partial = range.status == RangeStatus::satisfiable;
        r.status = partial ? 206 : 200;
        add_type_headers(r, type);
        if (partial) r.headers.emplace("Content-Range", content_range(range.ranges[0], size));
        if (size == 0) return r;
        ByteRange span = partial ? range.ranges[0] : ByteRange{0, size - 1};
        add_content_pieces(r, cache, *content, span.first, span.last);
        return r;
    }
    std::string boundary = multipart_boundary();
    for (const auto& part : range.ranges) {
        r.pieces.push_back(http::BodyPiece{multipart_part_header(boundary, type, part, size)});
        add_content_pieces(r, cache, *content, part.first, part.last);
    }
    r.pieces.push_back(http::BodyPiece{multipart_trailer(boundary)});
    r.status = 206;
    r.headers.emplace("Content-Type", multipart_content_type(boundary));
    add_type_headers(r, type, /*with_type=*/false);
    return r;
}

} // namespace

namespace {

void add_signed_route(http::Router& router, ContentCache& cache,
                      std::shared_ptr<const ContentOptions> opts) {
    router.get("/c/{id}", [&cache, opts](http::Request& req) {
        if (!opts->signer)
            throw http::Error(503, "signing_not_configured",
                              "signed URLs need signing.key_file (see blockd.conf(5))");
        auto arg = [&](const char* name) {
            auto it = req.query.find(name);
            return it == req.query.end() ? std::string_view() : std::string_view(it->second);
        };
        switch (
            opts->signer->verify(req.params.at("id"), arg("exp"), arg("sig"), std::time(nullptr))) {
        case UrlSigner::Verdict::ok:
            break;
        case UrlSigner::Verdict::expired:
            throw http::Error(403, "expired", "this link has expired");
        case UrlSigner::Verdict::bad_signature:
            throw http::Error(403, "bad_signature", "this link's signature is not valid");
        case UrlSigner::Verdict::malformed:
            throw http::Error(400, "bad_link", "expected /c/ID?exp=UNIX_SECONDS&sig=HEX");
        }
        return serve(req, cache, *opts);
    });
}

} // namespace

void add_public_routes(http::Router& router, ContentCache& cache, const ContentOptions& options) {
    router.get("/healthz", [](http::Request&) {
        return http::Response::json(200, {{"status", "ok"}});
    });
    add_signed_route(router, cache, std::make_shared<ContentOptions>(options));
}

void add_content_routes(http::Router& router, BlockStore& blocks, BlockStore& manifests,
                        ContentCache& cache, IoPool& pool, ContentOptions options) {
    auto opts = std::make_shared<ContentOptions>(std::move(options));
    router.add_stream(
        "POST", "/v1/blobs",
        [&blocks, &manifests, &pool](http::Request& req) -> std::unique_ptr<http::BodySink> {
            require_scope(req, "files:write");
            std::string type;
            if (auto it = req.query.find("type"); it != req.query.end()) {
                auto t = normalize_media_type(it->second);
                if (!t)
                    throw http::Error(400, "bad_type",
                                      "type must be a media type such as video/mp4");
                type = *t;
            }
            return std::make_unique<BlobSink>(blocks, manifests, pool, std::move(type));
        },
        opts->max_blob_bytes, /*blocking_finish=*/true);
    // Walks both trees: O(blocks); fine for an operator's command, not for a hot path.
    router.add_blocking("GET", "/v1/blocks/stats", [&blocks, &manifests](http::Request&) {
        Stats physical = blocks.stats();
        std::uint64_t files = 0, logical = 0;
        manifests.for_each([&](const BlockInfo& info) {
            if (auto m = load_manifest(manifests, info)) {
                ++files;
                logical += m->size;
            }
        });
        double ratio = physical.bytes ? static_cast<double>(logical) / physical.bytes : 1.0;
        return http::Response::json(200, {{"blocks", physical.blocks},
                                          {"bytes", physical.bytes},
                                          {"files", files},
                                          {"logical_bytes", logical},
                                          {"dedupe_ratio", ratio}});
    });
    router.get("/v1/content/{id}",
               [&cache, opts](http::Request& req) { return serve(req, cache, *opts); });
    add_signed_route(router, cache, opts);
    router.post("/v1/sign", [opts](http::Request& req) {
        if (!opts->signer)
            throw http::Error(503, "signing_not_configured",
                              "signed URLs need signing.key_file (see blockd.conf(5))");
        auto body = req.json();
        if (!body.is_object() || !body.contains("id") || !body["id"].is_string() ||
            !is_valid_hash(body["id"].get<std::string>()))
            throw http::Error(400, "invalid_id",
                              "expected {\"id\": \"<64 hex>\", \"ttl\": SECONDS}");
        if (body.contains("ttl") && !body["ttl"].is_number_integer())
            throw http::Error(400, "bad_ttl", "ttl must be an integer number of seconds");
        std::int64_t ttl = body.value("ttl", std::int64_t{3600});
        if (ttl < 1 || ttl > 31536000)
            throw http::Error(400, "bad_ttl", "ttl must be 1..31536000 seconds");
        std::int64_t expires = static_cast<std::int64_t>(std::time(nullptr)) + ttl;
        std::string id = body["id"].get<std::string>();
        return http::Response::json(
            200, {{"url", opts->signer->url(id, expires)}, {"expires", expires}});
    });
}

} // namespace strata::blockd
