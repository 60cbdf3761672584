#include "block_routes.hh"

#include "caller.hh"

#include <memory>

namespace strata::blockd {

namespace {

// Bounds one negotiation request: 10,000 hashes is a 40 GiB file in 4 MiB blocks.
constexpr std::size_t kMaxMissingQuery = 10000;

struct Counters {
    metrics::Counter& stored;
    metrics::Counter& deduplicated;
    metrics::Counter& bytes_in;
};

// Streams a PUT body into a BlockWriter; the temp file goes away if the request dies.
class BlockSink : public http::BodySink {
public:
    BlockSink(BlockWriter writer, std::string hash, Counters& counters)
        : writer_(std::move(writer)), hash_(std::move(hash)), counters_(counters) {}

    void data(std::string_view chunk) override {
        try {
            writer_.append(chunk);
        } catch (const BlockError& e) {
            throw to_http_error(e);
        }
    }

    http::Response finish() override {
        PutResult r;
        try {
            r = writer_.commit(hash_);
        } catch (const BlockError& e) {
            throw to_http_error(e);
        }
        counters_.bytes_in.inc(static_cast<double>(r.size));
        (r.stored ? counters_.stored : counters_.deduplicated).inc();
        return http::Response::json(r.stored ? 201 : 200,
                                    {{"sha256", r.hash}, {"size", r.size}, {"stored", r.stored}});
    }

private:
    BlockWriter writer_;
    std::string hash_;
    Counters& counters_;
};

} // namespace

http::Error to_http_error(const BlockError& e) {
    switch (e.kind()) {
    case ErrorKind::invalid_hash:
        return http::Error(400, "invalid_hash", e.what());
    case ErrorKind::hash_mismatch:
        return http::Error(400, "hash_mismatch", e.what());
    case ErrorKind::too_large:
        return http::Error(413, "payload_too_large", e.what());
    case ErrorKind::disk_full:
        return http::Error(507, "insufficient_storage", e.what());
    case ErrorKind::io:
        break;
    }
    return http::Error(500, "io_error", e.what());
}

void add_block_routes(http::Router& router, BlockStore& store, metrics::Registry& metrics) {
    auto counters = std::make_shared<Counters>(Counters{
        metrics.counter("strata_blockd_blocks_stored_total", "Blocks written by PUT"),
        metrics.counter("strata_blockd_blocks_deduplicated_total",
                        "PUTs of a block that was already stored"),
        metrics.counter("strata_blockd_upload_bytes_total", "Bytes received in stored blocks"),
    });
    router.add_stream(
        "PUT", "/v1/blocks/{sha256}",
        [&store, counters](http::Request& req) -> std::unique_ptr<http::BodySink> {
            require_scope(req, "files:write"); // before any byte is read
            const std::string& hash = req.params.at("sha256");
            try {
                store.block_path(hash); // validates before any byte is read
                return std::make_unique<BlockSink>(store.writer(), hash, *counters);
            } catch (const BlockError& e) {
                throw to_http_error(e);
            }
        },
        max_block_size, /*blocking_finish=*/true);

    router.post("/v1/blocks/missing", [&store](http::Request& req) {
        require_scope(req, "files:read");
        auto body = req.json();
        if (!body.is_object() || !body.contains("blocks") || !body["blocks"].is_array())
            throw http::Error(400, "bad_request", "expected {\"blocks\": [\"<sha256>\", ...]}");
        const auto& list = body["blocks"];
        if (list.size() > kMaxMissingQuery)
            throw http::Error(413, "too_many_blocks",
                              "at most " + std::to_string(kMaxMissingQuery) + " hashes per query");
        std::vector<std::string> hashes;
        hashes.reserve(list.size());
        for (const auto& h : list) {
            if (!h.is_string()) throw http::Error(400, "invalid_hash", "hashes must be strings");
            hashes.push_back(h.get<std::string>());
        }
        try {
            return http::Response::json(200, {{"missing", store.missing(hashes)}});
        } catch (const BlockError& e) {
            throw to_http_error(e);
        }
    });
}

} // namespace strata::blockd
