// Unit tests of Outbox against real HTTP receivers (libmicrohttpd on 127.0.0.1 or a unix
// socket): headers and body, aborted emits, retries after a failure, type filters, and
// events surviving a restart.
#include "lmdb/env.hh"
#include "outbox.hh"

#include <arpa/inet.h>
#include <chrono>
#include <condition_variable>
#include <criterion/criterion.h>
#include <cstring>
#include <deque>
#include <filesystem>
#include <microhttpd.h>
#include <mutex>
#include <netinet/in.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

using namespace strata;
using namespace strata::metad;
using nlohmann::json;
using std::chrono::milliseconds;
namespace fs = std::filesystem;

static fs::path g_dir;
static void make_dir() {
    char tmpl[] = "/tmp/strata-outbox-XXXXXX"; // short: unix socket paths must fit sun_path
    cr_assert(mkdtemp(tmpl));
    g_dir = tmpl;
}
static void remove_dir() {
    std::error_code ec;
    fs::remove_all(g_dir, ec);
}
TestSuite(outbox, .init = make_dir, .fini = remove_dir);

namespace {

struct Got {
    std::string path, key, content_type, body;
};

// An event receiver: records every request and answers the scripted statuses in order,
// then `fallback`.
class Receiver {
public:
    static std::unique_ptr<Receiver> tcp() {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
            ::listen(fd, 16) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            throw std::runtime_error("bind 127.0.0.1:0");
        auto r = std::unique_ptr<Receiver>(new Receiver);
        r->target_ = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
        r->start(fd);
        return r;
    }
    static std::unique_ptr<Receiver> unix_socket(const std::string& path) {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::listen(fd, 16) != 0)
            throw std::runtime_error("bind " + path);
        auto r = std::unique_ptr<Receiver>(new Receiver);
        r->target_ = "unix:" + path;
        r->start(fd);
        return r;
    }
    ~Receiver() { MHD_stop_daemon(daemon_); }

    const std::string& target() const { return target_; }
    void script(std::deque<unsigned> statuses, unsigned fallback = 200) {
        std::lock_guard lk(mu_);
        script_ = std::move(statuses);
        fallback_ = fallback;
    }
    // The requests so far once there are at least n, or after the timeout.
    std::vector<Got> wait_for(std::size_t n, milliseconds timeout = milliseconds(5000)) {
        std::unique_lock lk(mu_);
        cv_.wait_for(lk, timeout, [&] { return got_.size() >= n; });
        return got_;
    }

private:
    Receiver() = default;
    void start(int fd) {
        daemon_ =
            MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                             nullptr, nullptr, &on_request, this, MHD_OPTION_LISTEN_SOCKET, fd,
                             MHD_OPTION_NOTIFY_COMPLETED, &on_completed, nullptr, MHD_OPTION_END);
        if (!daemon_) throw std::runtime_error("MHD_start_daemon");
    }
    static std::string header(MHD_Connection* c, const char* name) {
        const char* v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
        return v ? v : "";
    }
    static MHD_Result on_request(void* cls, MHD_Connection* c, const char* url, const char*,
                                 const char*, const char* data, size_t* size, void** req) {
        auto* self = static_cast<Receiver*>(cls);
        auto* body = static_cast<std::string*>(*req);
        if (!body) { // headers only so far
            *req = new std::string;
            return MHD_YES;
        }
        if (*size > 0) {
            body->append(data, *size);
            *size = 0;
            return MHD_YES;
        }
        unsigned status;
        {
            std::lock_guard lk(self->mu_);
            self->got_.push_back(
                {url, header(c, "Idempotency-Key"), header(c, "Content-Type"), *body});
            status = self->fallback_;
            if (!self->script_.empty()) {
                status = self->script_.front();
                self->script_.pop_front();
            }
        }
        self->cv_.notify_all();
        MHD_Response* r = MHD_create_response_from_buffer(0, nullptr, MHD_RESPMEM_PERSISTENT);
        MHD_Result ret = MHD_queue_response(c, status, r);
        MHD_destroy_response(r);
        return ret;
    }
    static void on_completed(void*, MHD_Connection*, void** req, MHD_RequestTerminationCode) {
        delete static_cast<std::string*>(*req);
        *req = nullptr;
    }

    MHD_Daemon* daemon_ = nullptr;
    std::string target_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<Got> got_;
    std::deque<unsigned> script_;
    unsigned fallback_ = 200;
};

std::unique_ptr<lmdb::Env> open_env() {
    lmdb::EnvOptions o;
    o.max_dbs = 128;
    return std::make_unique<lmdb::Env>(g_dir / "db", o);
}

// Fast retries and polls so the tests take well under a second each.
OutboxOptions quick() {
    OutboxOptions o;
    o.backoff_base = milliseconds(20);
    o.backoff_max = milliseconds(100);
    o.request_timeout = milliseconds(2000);
    o.poll_interval = milliseconds(100);
    return o;
}

Event event(std::uint64_t id, std::string type) {
    return {id, std::move(type), 7, 8, 1700000000000, json{{"size", 5}}};
}

void emit(lmdb::Env& env, Outbox& o, const Event& e) {
    env.write([&](lmdb::Txn& t) { o.emit(t, e); });
}

// Waits until the sink has no event left and returns its stats.
SinkStats settled(const Outbox& o, std::size_t sink = 0) {
    SinkStats s;
    for (int i = 0; i < 200; ++i) {
        s = o.stats().at(sink);
        if (s.queue.ready + s.queue.delayed + s.queue.leased == 0) break;
        std::this_thread::sleep_for(milliseconds(10));
    }
    return s;
}

std::string id_of(const Got& g) {
    return json::parse(g.body).at("id").get<std::string>();
}

} // namespace

Test(outbox, delivers_with_idempotency_key) {
    auto rx = Receiver::tcp();
    auto env = open_env();
    OutboxOptions opts = quick();
    opts.poll_interval = std::chrono::seconds(1); // the production poll: wake() must beat it
    Outbox o(*env, {{.name = "notifyd", .target = rx->target()}}, opts);
    o.start();
    std::this_thread::sleep_for(milliseconds(100)); // let the thread go idle
    emit(*env, o, event(123, "file.created"));
    const auto woken = std::chrono::steady_clock::now();
    o.wake();
    auto got = rx->wait_for(1);
    cr_assert_eq(got.size(), 1u);
    cr_expect_lt(std::chrono::steady_clock::now() - woken, milliseconds(850), "woken at once");
    cr_expect_eq(got[0].path, "/v1/events");
    cr_expect_eq(got[0].key, "evt-123");
    cr_expect_eq(got[0].content_type, "application/json");
    json body = json::parse(got[0].body);
    cr_expect(body == (json{{"id", "123"},
                            {"type", "file.created"},
                            {"user", "7"},
                            {"node", "8"},
                            {"time", 1700000000000},
                            {"data", {{"size", 5}}}}),
              "body: %s", got[0].body.c_str());
    SinkStats s = settled(o);
    cr_expect_eq(s.name, "notifyd");
    cr_expect_eq(s.delivered, 1u);
    cr_expect_eq(s.failed, 0u);
    cr_expect_eq(s.queue.ready + s.queue.delayed + s.queue.leased + s.queue.dead, 0u, "acked");
}

Test(outbox, aborted_emit_delivers_nothing) {
    auto rx = Receiver::tcp();
    auto env = open_env();
    Outbox o(*env, {{.name = "n", .target = rx->target()}}, quick());
    o.start();
    {
        lmdb::Txn t = env->begin_write();
        o.emit(t, event(1, "file.created"));
        t.abort();
    }
    emit(*env, o, event(2, "file.created"));
    o.wake();
    cr_assert_eq(rx->wait_for(1).size(), 1u);
    auto got = rx->wait_for(2, milliseconds(300)); // a few polls: nothing else comes
    cr_assert_eq(got.size(), 1u);
    cr_expect_eq(got[0].key, "evt-2");
    cr_expect_eq(settled(o).delivered, 1u);
}

Test(outbox, failure_is_retried_then_acked) {
    auto rx = Receiver::tcp();
    rx->script({500});
    auto env = open_env();
    Outbox o(*env, {{.name = "n", .target = rx->target()}}, quick());
    o.start();
    emit(*env, o, event(5, "file.ready"));
    o.wake();
    auto got = rx->wait_for(2);
    cr_assert_eq(got.size(), 2u, "sent again after the 500");
    cr_expect(got[0].key == "evt-5" && got[1].key == "evt-5");
    cr_expect_eq(got[0].body, got[1].body);
    SinkStats s = settled(o);
    cr_expect_eq(s.delivered, 1u);
    cr_expect_eq(s.failed, 1u);
    cr_expect_eq(s.queue.ready + s.queue.delayed + s.queue.leased, 0u, "acked after the 200");
    cr_expect_eq(rx->wait_for(3, milliseconds(300)).size(), 2u, "and not sent a third time");
}

Test(outbox, transport_error_is_retried) {
    auto env = open_env();
    auto sock = (g_dir / "late.sock").string();
    Outbox o(*env, {{.name = "n", .target = "unix:" + sock}}, quick());
    o.start();
    emit(*env, o, event(6, "file.ready"));
    o.wake();
    SinkStats s{};
    for (int i = 0; i < 200 && s.failed == 0; ++i) {
        std::this_thread::sleep_for(milliseconds(10));
        s = o.stats().at(0);
    }
    cr_assert_gt(s.failed, 0u, "nobody listens yet");
    auto rx = Receiver::unix_socket(sock); // the receiver comes up later
    auto got = rx->wait_for(1);
    cr_assert_eq(got.size(), 1u);
    cr_expect_eq(got[0].key, "evt-6");
    cr_expect_eq(settled(o).delivered, 1u);
}

Test(outbox, type_filter) {
    auto tcp = Receiver::tcp();
    auto unix_rx = Receiver::unix_socket((g_dir / "rx.sock").string());
    auto env = open_env();
    Outbox o(*env,
             {{.name = "files", .target = tcp->target(), .path = "/files", .types = {"file."}},
              {.name = "shares", .target = unix_rx->target(), .types = {"share."}},
              {.name = "all", .target = tcp->target(), .path = "/all"}},
             quick());
    o.start();
    emit(*env, o, event(1, "file.created"));
    emit(*env, o, event(2, "share.added"));
    emit(*env, o, event(3, "user.deleted"));
    o.wake();
    auto at_tcp = tcp->wait_for(4);
    auto at_unix = unix_rx->wait_for(1);
    // Nothing more arrives after a few polls.
    at_tcp = tcp->wait_for(5, milliseconds(300));
    at_unix = unix_rx->wait_for(2, milliseconds(1));
    std::vector<std::string> files, all;
    for (const Got& g : at_tcp)
        (g.path == "/files" ? files : all).push_back(id_of(g));
    std::sort(all.begin(), all.end());
    cr_expect(files == std::vector<std::string>{"1"}, "files: %zu", files.size());
    cr_expect(all == (std::vector<std::string>{"1", "2", "3"}), "all: %zu", all.size());
    cr_assert_eq(at_unix.size(), 1u);
    cr_expect_eq(id_of(at_unix[0]), "2");
    cr_expect_eq(at_unix[0].path, "/v1/events");
}

Test(outbox, events_survive_a_restart) {
    auto down = Receiver::tcp();
    down->script({}, 503);
    auto env = open_env();
    {
        Outbox o(*env, {{.name = "n", .target = down->target()}}, quick());
        o.start();
        emit(*env, o, event(1, "file.created"));
        o.wake();
        cr_assert_geq(down->wait_for(1).size(), 1u, "tried while the receiver fails");
        o.stop();
        emit(*env, o, event(2, "file.ready")); // never tried by this Outbox
    }
    env.reset();
    env = open_env();
    auto up = Receiver::tcp();
    Outbox o(*env, {{.name = "n", .target = up->target()}}, quick());
    SinkStats before = o.stats().at(0);
    cr_expect_eq(before.queue.ready + before.queue.delayed, 2u, "both events are on disk");
    o.start();
    o.wake();
    auto got = up->wait_for(2);
    cr_assert_eq(got.size(), 2u);
    std::vector<std::string> keys{got[0].key, got[1].key};
    std::sort(keys.begin(), keys.end());
    cr_expect(keys == (std::vector<std::string>{"evt-1", "evt-2"}));
    cr_expect_eq(settled(o).delivered, 2u);
}

Test(outbox, no_sinks_stores_nothing) {
    auto env = open_env();
    Outbox o(*env, {}, quick());
    auto named = [&] { return env->read([](lmdb::Txn& t) { return t.entries(lmdb::Dbi{}); }); };
    const std::size_t dbs = named();
    emit(*env, o, event(1, "file.created"));
    cr_expect_eq(named(), dbs, "no queue database created");
    cr_expect(o.stats().empty());
}

Test(outbox, rejects_bad_sinks) {
    auto env = open_env();
    auto throws = [&](std::vector<EventSink> sinks) {
        try {
            Outbox o(*env, std::move(sinks));
        } catch (const std::exception&) {
            return true;
        }
        return false;
    };
    const std::string t = "http://127.0.0.1:1";
    cr_expect(throws({{.name = "Bad", .target = t}}));
    cr_expect(throws({{.name = "", .target = t}}));
    cr_expect(throws({{.name = std::string(33, 'a'), .target = t}}));
    cr_expect(throws({{.name = "a", .target = t}, {.name = "a", .target = t}}));
    cr_expect(throws({{.name = "a", .target = t, .path = "v1/events"}}));
    cr_expect(throws({{.name = "a", .target = "ftp://x"}}));
    cr_expect(!throws({{.name = "notify-1", .target = t}}));
}
