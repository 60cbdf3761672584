// strata-blockd: block server (content-addressed chunks) and, later, CDN edge cache.
// This release stores blocks and whole files (blobs) and serves files with ETag, conditional
// and Range requests, on top of the common daemon runtime; verification (type, malware scan),
// signed URLs, GC, the S3 API and the edge cache are not implemented yet.
#include "block_routes.hh"
#include "content_cache.hh"
#include "content_routes.hh"
#include "daemon/runtime.hh"
#include "gc.hh"
#include "io_pool.hh"
#include "log/log.hh"
#include "verify.hh"

#include <filesystem>
#include <memory>

namespace {

using namespace strata;

std::unique_ptr<blockd::BlockStore> g_blocks;
std::unique_ptr<blockd::BlockStore> g_manifests; // manifests are content-addressed too
http::Router g_public;
std::unique_ptr<blockd::GarbageCollector> g_gc;
std::unique_ptr<blockd::IoPool> g_io;
std::unique_ptr<blockd::ContentCache> g_cache;

void extend_schema(config::Schema& s) {
    s.integer("store.io_threads", 4, 1, 64, false,
              "threads that flush uploaded blocks to disk (fsync, rename) off the event loop");
    s.integer("upload.max_blob_bytes", 17179869184LL, 0, 1099511627776LL, false,
              "largest body of POST /v1/blobs; larger ones get 413");
    s.integer("content.cached_manifests", 65536, 0, 16777216, false,
              "decoded manifests kept in memory for serving (LRU; about 400 bytes each)");
    s.integer("content.open_blocks", 1024, 0, 65536, false,
              "block files kept open for serving (LRU; each holds one file descriptor)");
    s.string("content.cache_control", "public, max-age=31536000, immutable", true,
             "Cache-Control of /v1/content/ responses");
    s.integer("verify.max_bytes", 17179869184LL, 0, 1099511627776LL, false,
              "largest content POST /v1/verify accepts (413 above; 0: no limit)");
    s.string_list("verify.allowed_types", {}, false,
                  "media types POST /v1/verify accepts (\"image/*\" allowed; empty: any)");
    s.string("verify.clamav_db_dir", "/var/lib/clamav", false,
             "ClamAV signature directory; missing or empty: scan verdict \"unavailable\"");
    s.integer("gc.grace_seconds", 86400, 0, 31536000, false,
              "GC never removes blocks or manifests younger than cycle start minus this");
    s.string_list("public.listen", {}, false,
                  "TCP listeners (host:port) for signed /c/ links; empty: none");
    s.string("signing.key_file", "/etc/strata/blockd-url.key", false,
             "HMAC key (32+ bytes) for signed /c/ URLs; missing: signed URLs are off");
}

void start(daemon::Runtime& rt) {
    const auto& root = rt.state_dir()->path();
    g_blocks = std::make_unique<blockd::BlockStore>(root);
    g_manifests = std::make_unique<blockd::BlockStore>(root + "/manifests");
    blockd::add_block_routes(rt.control_router(), *g_blocks, rt.metrics());
    g_gc = std::make_unique<blockd::GarbageCollector>(
        *g_blocks, *g_manifests, std::chrono::seconds(rt.config().integer("gc.grace_seconds")));
    blockd::add_gc_routes(rt.control_router(), *g_gc);
    std::shared_ptr<const blockd::UrlSigner> signer;
    const auto& key_file = rt.config().string("signing.key_file");
    if (std::filesystem::exists(key_file)) {
        signer = std::make_shared<blockd::UrlSigner>(blockd::UrlSigner::from_file(key_file));
    } else {
        log::notice("no URL signing key at {}: signed /c/ URLs are off", key_file);
    }
    blockd::ContentOptions options{
        static_cast<std::uint64_t>(rt.config().integer("upload.max_blob_bytes")),
        [&rt] { return rt.config().string("content.cache_control"); }, signer};
    g_io = std::make_unique<blockd::IoPool>(
        static_cast<unsigned>(rt.config().integer("store.io_threads")));
    g_cache = std::make_unique<blockd::ContentCache>(
        *g_blocks, *g_manifests,
        static_cast<std::size_t>(rt.config().integer("content.cached_manifests")),
        static_cast<std::size_t>(rt.config().integer("content.open_blocks")));
    g_gc->on_remove([](std::string_view hash) { g_cache->forget(hash); });
    blockd::add_content_routes(rt.control_router(), *g_blocks, *g_manifests, *g_cache, *g_io,
                               options);
    auto max_verify = static_cast<std::uint64_t>(rt.config().integer("verify.max_bytes"));
    const auto& db_dir = rt.config().string("verify.clamav_db_dir");
    auto scanner = blockd::Scanner::load_if_present(db_dir, max_verify);
    if (!scanner)
        log::notice("no ClamAV signatures in {}: malware scan verdicts are \"unavailable\"",
                    db_dir);
    blockd::add_verify_routes(
        rt.control_router(), *g_blocks, *g_manifests,
        {max_verify, rt.config().string_list("verify.allowed_types"), scanner});
    const auto& listen = rt.config().string_list("public.listen");
    if (!listen.empty()) {
        blockd::add_public_routes(g_public, *g_cache, options);
        rt.add_listener("public", listen, g_public, daemon::Runtime::Engine::content);
    }
}

} // namespace

int main(int argc, char** argv) {
    static const daemon::Spec spec{
        .name = "blockd",
        .summary = "Strata block server and CDN edge cache.",
        .state_dir = "/var/lib/strata/blocks",
        .extend_schema = extend_schema,
        .start = start,
    };
    return daemon::main(argc, argv, spec);
}
