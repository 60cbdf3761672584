// strata-metad: the metadata server on LMDB: users, credentials, each user's tree of folders
// and files (committed through blockd), sharing, public links, search, follows and feeds,
// and the event outbox. The API is listed in routes.hh, file_routes.hh, share_routes.cc and
// social_routes.cc, and documented in strata-metad(8).
#include "auth/password.hh"
#include "auth/session_token.hh"
#include "backup_routes.hh"
#include "daemon/runtime.hh"
#include "feeds.hh"
#include "file_routes.hh"
#include "http_client/error.hh"
#include "http_client/target.hh"
#include "log/log.hh"
#include "meta_store.hh"
#include "metrics/metrics.hh"
#include "outbox.hh"
#include "routes.hh"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>

namespace {

using namespace strata;

std::unique_ptr<metad::MetaStore> g_store;
// blockd on the loop, for commits; destroyed when the loop stops (stop()).
std::unique_ptr<http_client::AsyncClient> g_blockd_async;

// "NAME TARGET [TYPE-PREFIX...]" -> a sink; throws std::invalid_argument.
metad::EventSink parse_sink(const std::string& spec) {
    std::istringstream in(spec);
    metad::EventSink sink;
    if (!(in >> sink.name >> sink.target))
        throw std::invalid_argument("events.sinks: \"" + spec + "\" is not \"NAME TARGET ...\"");
    for (std::string t; in >> t;)
        sink.types.push_back(t);
    return sink;
}

// The events.sinks list as start() will build it: "" or why it cannot be used.
std::string check_sinks_config(const config::Value& v) {
    try {
        std::vector<metad::EventSink> sinks;
        for (const auto& spec : std::get<std::vector<std::string>>(v))
            sinks.push_back(parse_sink(spec));
        metad::check_sinks(sinks);
        return "";
    } catch (const std::invalid_argument& e) {
        std::string_view why = e.what();
        for (std::string_view prefix : {"events.sinks: ", "outbox: "})
            if (why.starts_with(prefix)) why.remove_prefix(prefix.size());
        return std::string(why);
    }
}

void extend_schema(config::Schema& s) {
    s.integer("meta.node_id", 0, 0, 1023, false,
              "snowflake node id of this metad (unique among metad instances)");
    s.integer("meta.max_map_bytes", 1099511627776LL, 1048576, 17592186044416LL, false,
              "largest size the LMDB map may grow to; writes past it get 507");
    s.integer("meta.commit_nice", -10, -20, 19, false,
              "nice value of the thread that commits every write (0: the process's)");
    s.string("auth.session_key_file", "/etc/strata/session.key", false,
             "Ed25519 seed (64 hex digits) that signs session tokens; missing: logins get 503");
    s.integer("auth.session_ttl_seconds", 2592000, 60, 31536000, false,
              "lifetime of a session token");
    s.string("auth.password_cost", "interactive", false, "Argon2id cost of new password hashes",
             {"interactive", "minimal"});
    s.string("blockd.socket", "unix:/run/strata/blockd.sock", false,
             "where blockd listens: file commits check and verify content there", {},
             [](const config::Value& v) -> std::string {
                 try {
                     http_client::Target::parse(std::get<std::string>(v));
                     return "";
                 } catch (const http_client::Error& e) {
                     return e.what();
                 }
             });
    s.integer("blockd.verify_timeout_seconds", 600, 1, 86400, false,
              "longest blockd may take to verify (hash, scan) a file being committed");
    s.integer("files.max_upload_bytes", 17179869184LL, 1, 1099511627776LL, false,
              "largest one-shot upload (POST /v1/upload); larger bodies get 413");
    s.integer("files.content_url_ttl_seconds", 600, 10, 604800, false,
              "lifetime of the signed content URLs downloads redirect to");
    s.string("files.content_url_base", "", false,
             "put before the signed URLs' /c/ path: \"\" (relative to the host the client "
             "asked) or an origin such as https://cdn.example.org",
             {}, [](const config::Value& v) -> std::string {
                 const auto& b = std::get<std::string>(v);
                 if (b.empty()) return "";
                 if (!(b.starts_with("http://") || b.starts_with("https://")) || b.ends_with("/") ||
                     b.find_first_of(" \t\r\n?#") != std::string::npos)
                     return "must be \"\" or http(s)://HOST[:PORT][/PATH] without a trailing /";
                 return "";
             });
    s.string_list("files.process_types", {}, false,
                  "media types committed as \"processing\" (a transcode follows), e.g. video/*");
    s.string_list("events.sinks", {}, false,
                  "where events are delivered: \"NAME TARGET [TYPE-PREFIX...]\", e.g. "
                  "\"notifyd unix:/run/strata/notifyd.sock\"",
                  check_sinks_config);
    s.integer("feeds.max_entries", 1000, 10, 100000, false,
              "entries kept per feed (the oldest are dropped)");
}

// Gauges read at scrape time, straight from the store (one read transaction each).
void add_store_metrics(metrics::Registry& m, metad::MetaStore& store) {
    m.gauge_callback("strata_metad_users", "Users",
                     [&store] { return double(store.counts().users); });
    m.gauge_callback("strata_metad_nodes", "Files and folders (trash included)",
                     [&store] { return double(store.counts().nodes); });
    m.gauge_callback("strata_metad_map_bytes", "Size of the LMDB memory map",
                     [&store] { return double(store.counts().map_bytes); });
    m.counter_callback("strata_metad_group_commits_total",
                       "Durable write batches (one fsync'ed LMDB commit each)",
                       [&store] { return double(store.write_batches()); });
    m.gauge_callback("strata_metad_fanout_pending", "Feed fan-out jobs not done yet", [&store] {
        auto c = store.feeds().queue().counts();
        return double(c.ready + c.delayed + c.leased);
    });
    m.gauge_callback("strata_metad_outbox_pending", "Events not delivered yet (all sinks)",
                     [&store] {
                         double n = 0;
                         if (auto* o = store.outbox())
                             for (const auto& s : o->stats())
                                 n += double(s.queue.ready + s.queue.delayed + s.queue.leased);
                         return n;
                     });
    m.gauge_callback("strata_metad_outbox_dead", "Events dead-lettered (all sinks)", [&store] {
        double n = 0;
        if (auto* o = store.outbox())
            for (const auto& s : o->stats())
                n += double(s.queue.dead);
        return n;
    });
}

void start(daemon::Runtime& rt) {
    const auto& cfg = rt.config();
    metad::StoreOptions so;
    so.node_id = static_cast<std::uint32_t>(cfg.integer("meta.node_id"));
    so.max_map_bytes = static_cast<std::size_t>(cfg.integer("meta.max_map_bytes"));
    for (const auto& spec : cfg.string_list("events.sinks"))
        so.sinks.push_back(parse_sink(spec));
    so.feed_max_entries = static_cast<std::size_t>(cfg.integer("feeds.max_entries"));
    so.process_types = cfg.string_list("files.process_types");
    so.commit_nice = static_cast<int>(cfg.integer("meta.commit_nice"));
    g_store = std::make_unique<metad::MetaStore>(rt.state_dir()->path() + "/db", std::move(so));
    if (int e = g_store->commit_nice_error())
        log::warning("the commit thread keeps its nice value, not meta.commit_nice = {}: {} (it "
                     "needs LimitNICE= or CAP_SYS_NICE; writes wait longer on busy CPUs)",
                     cfg.integer("meta.commit_nice"), std::strerror(e));
    metad::AuthOptions auth;
    const auto& key_file = cfg.string("auth.session_key_file");
    if (std::filesystem::exists(key_file)) {
        auto signer =
            std::make_shared<auth::SessionSigner>(auth::SessionSigner::from_seed_file(key_file));
        auto verifier = std::make_shared<auth::SessionVerifier>();
        verifier->add_public_key_hex(signer->public_key_hex());
        auth.signer = signer;
        auth.verifier = verifier;
    } else {
        log::notice("no session key at {}: logins are off", key_file);
    }
    auth.session_ttl_seconds = cfg.integer("auth.session_ttl_seconds");
    auth.password_cost = cfg.string("auth.password_cost") == "minimal" ? auth::minimal_cost()
                                                                       : auth::interactive_cost();
    metad::FileOptions files;
    files.blockd = std::make_shared<http_client::Client>(cfg.string("blockd.socket"));
    g_blockd_async =
        std::make_unique<http_client::AsyncClient>(rt.loop(), cfg.string("blockd.socket"));
    files.blockd_async = g_blockd_async.get();
    files.verify_timeout = std::chrono::seconds(cfg.integer("blockd.verify_timeout_seconds"));
    files.max_upload_bytes = static_cast<std::uint64_t>(cfg.integer("files.max_upload_bytes"));
    files.content_url_ttl = std::chrono::seconds(cfg.integer("files.content_url_ttl_seconds"));
    files.content_url_base = cfg.string("files.content_url_base");
    files.spool_dir = rt.state_dir()->path() + "/uploads";
    std::filesystem::create_directories(files.spool_dir);
    metad::add_routes(rt.control_router(), *g_store, std::move(auth), std::move(files));
    g_store->start_workers();
    add_store_metrics(rt.metrics(), *g_store);
    metad::add_backup_routes(rt.control_router(), *g_store, rt.state_dir()->path());
}

} // namespace

int main(int argc, char** argv) {
    // Writes that still wait on the thread pool for their group commit (trash, shares,
    // uploads...): enough threads that many clients' writes share one fsync (libuv reads
    // this before its pool starts).
    setenv("UV_THREADPOOL_SIZE", "64", 0);
    static const daemon::Spec spec{
        .name = "metad",
        .summary = "Strata metadata server on LMDB.",
        .state_dir = "/var/lib/strata/meta",
        .extend_schema = extend_schema,
        .start = start,
        .stop = [](daemon::Runtime&) { g_blockd_async.reset(); },
        // Control requests are small JSON; one-shot uploads stream through in 32 KiB reads.
        .http_body_buffer_bytes = 32 * 1024,
    };
    return daemon::main(argc, argv, spec);
}
