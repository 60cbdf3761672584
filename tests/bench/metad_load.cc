// Load driver of tests/bench/metad: one file-tree workload against strata-metad (HTTP/1.1 +
// JSON on its unix socket, one keep-alive connection per client thread: a minimal blocking
// client in the timed runs, libstrata's http_client for setup) or against PostgreSQL (libpq over
// its unix socket, one connection per thread, prepared statements), on the same schema of users,
// nodes, search terms and outbox events.
//
//   metad_load --target metad --socket PATH --mode setup|run [options]
//   metad_load --target pg --pg-socket-dir DIR --mode setup|run [options]
//
// setup (not timed): a user, FOLDERS folders "fNNN" under its root and FILES_PER_FOLDER files
// "fileMMMMM" in each (MMMMM numbers all files: folder k holds k*FPF .. k*FPF+FPF-1). metad is
// filled through its API by --clients threads; PostgreSQL with COPY. Prints "user=ID".
// run: --clients threads, each with its own connection and seeded RNG, draw the mix
//   40% stat by path of a random setup file (/fNNN/fileMMMMM)
//   40% list the first page (100) of a random folder
//   15% commit a new file into a random folder
//    5% rename a file this thread committed (half of them a move to another folder)
// (--mix STAT,LIST,COMMIT,RENAME sets other percentages, to look at one kind of op alone;
// the benchmark uses the default)
// for --warmup seconds (answers checked in full, nothing recorded), then --seconds timed.
// Renames only touch files committed during the run, so every stat finds its file; a rename
// drawn before the thread has committed anything commits instead. Every loop is bounded by
// time and by --max-ops per thread. Any unexpected answer counts as an error and makes the
// exit status 1. Last line: "SUMMARY ops=N seconds=S ops_per_s=X p50_ms=A p99_ms=B errors=E".
#include "http_client/client.hh"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <libpq-fe.h>
#include <malloc.h>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <poll.h>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <type_traits>
#include <unistd.h>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Options {
    std::string target; // "metad" or "pg"
    std::string mode;   // "setup" or "run"
    std::string socket; // metad's control socket
    std::string pg_dir; // PostgreSQL's socket directory
    std::string pg_port = "5432";
    std::string pg_db = "strata";
    std::string pg_user = "postgres";
    std::string block; // sha256 hex of the content block every new file references
    std::uint64_t block_size = 4096;
    std::uint64_t user = 0; // run: the user made by setup
    int clients = 16;
    int folders = 1000;
    int files_per_folder = 100;
    double seconds = 20;
    double warmup = 3;
    std::uint64_t seed = 1;
    std::uint64_t run_id = 0;           // makes new names unique across runs
    std::uint64_t max_ops = 20'000'000; // per thread
    int mix[4] = {40, 40, 15, 5};       // percent of stat, list, commit, rename
};

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr,
                 "metad_load: %s\n"
                 "usage: metad_load --target metad --socket PATH | --target pg --pg-socket-dir "
                 "DIR\n  --mode setup|run [--user ID] [--clients N] [--seconds S] [--warmup S]\n"
                 "  [--folders N] [--files-per-folder N] [--seed N] [--run-id N] [--max-ops N]\n"
                 "  [--mix STAT,LIST,COMMIT,RENAME]\n"
                 "  --block SHA256 [--block-size N] [--pg-port P]\n"
                 "  [--pg-db NAME] [--pg-user NAME]\n",
                 why);
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (i + 1 >= argc) usage(("missing value after " + a).c_str());
        std::string v = argv[++i];
        auto num = [&] {
            char* end = nullptr;
            unsigned long long n = std::strtoull(v.c_str(), &end, 10);
            if (v.empty() || *end) usage(("not a number: " + a + " " + v).c_str());
            return static_cast<std::uint64_t>(n);
        };
        auto real = [&] {
            char* end = nullptr;
            double d = std::strtod(v.c_str(), &end);
            if (v.empty() || *end || d < 0) usage(("not a duration: " + a + " " + v).c_str());
            return d;
        };
        if (a == "--target")
            o.target = v;
        else if (a == "--mode")
            o.mode = v;
        else if (a == "--socket")
            o.socket = v;
        else if (a == "--pg-socket-dir")
            o.pg_dir = v;
        else if (a == "--pg-port")
            o.pg_port = v;
        else if (a == "--pg-db")
            o.pg_db = v;
        else if (a == "--pg-user")
            o.pg_user = v;
        else if (a == "--block")
            o.block = v;
        else if (a == "--block-size")
            o.block_size = num();
        else if (a == "--user")
            o.user = num();
        else if (a == "--clients")
            o.clients = static_cast<int>(num());
        else if (a == "--folders")
            o.folders = static_cast<int>(num());
        else if (a == "--files-per-folder")
            o.files_per_folder = static_cast<int>(num());
        else if (a == "--seconds")
            o.seconds = real();
        else if (a == "--warmup")
            o.warmup = real();
        else if (a == "--seed")
            o.seed = num();
        else if (a == "--run-id")
            o.run_id = num();
        else if (a == "--max-ops")
            o.max_ops = num();
        else if (a == "--mix") {
            int sum = 0, k = 0;
            for (std::size_t pos = 0; k < 4; ++k) {
                char* end = nullptr;
                long pct = std::strtol(v.c_str() + pos, &end, 10);
                if (end == v.c_str() + pos || pct < 0 || pct > 100 || (k < 3 && *end != ',') ||
                    (k == 3 && *end))
                    usage(("--mix wants four percentages STAT,LIST,COMMIT,RENAME: " + v).c_str());
                o.mix[k] = static_cast<int>(pct);
                sum += o.mix[k];
                pos = static_cast<std::size_t>(end - v.c_str()) + 1;
            }
            if (sum != 100) usage(("--mix percentages add up to 100, not: " + v).c_str());
        } else
            usage(("unknown option " + a).c_str());
    }
    if (o.target != "metad" && o.target != "pg") usage("--target is metad or pg");
    if (o.mode != "setup" && o.mode != "run") usage("--mode is setup or run");
    if (o.target == "metad" && o.socket.empty()) usage("--target metad needs --socket");
    if (o.target == "pg" && o.pg_dir.empty()) usage("--target pg needs --pg-socket-dir");
    if (o.block.size() != 64) usage("--block takes the sha256 (64 hex) of the content block");
    if (o.mode == "run" && o.user == 0) usage("--mode run needs --user (printed by setup)");
    if (o.clients < 1 || o.clients > 256 || o.folders < 2 || o.folders > 1000 ||
        o.files_per_folder < 1 || o.files_per_folder > 100 || o.max_ops < 1)
        usage("--clients 1..256, --folders 2..1000, --files-per-folder 1..100");
    return o;
}

// A failed operation: a wrong status, a missing row, a transport error.
struct OpError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string folder_name(int k) {
    char b[16];
    std::snprintf(b, sizeof b, "f%03d", k);
    return b;
}

std::string file_name(int m) {
    char b[16];
    std::snprintf(b, sizeof b, "file%05d", m);
    return b;
}

std::string lower(std::string s) {
    for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// A name's search terms: its runs of ASCII letters and digits, lowercased, each once.
std::vector<std::string> terms_of(const std::string& name) {
    std::set<std::string> out;
    std::string cur;
    for (char c : name) {
        if (std::isalnum(static_cast<unsigned char>(c))) {
            cur += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        } else if (!cur.empty()) {
            out.insert(std::move(cur));
            cur.clear();
        }
    }
    if (!cur.empty()) out.insert(std::move(cur));
    return {out.begin(), out.end()};
}

// The terms as a PostgreSQL array literal (they are alphanumeric: nothing to quote).
std::string pg_array(const std::vector<std::string>& terms) {
    std::string s = "{";
    for (std::size_t i = 0; i < terms.size(); ++i)
        s += (i ? "," : "") + terms[i];
    return s + "}";
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// What both stores share once set up: the user, its root and its folders (index -> id).
struct Tree {
    std::uint64_t user = 0;
    std::uint64_t root = 0;
    std::vector<std::uint64_t> folders;
};

// A file this thread committed, where it is now.
struct Owned {
    std::uint64_t id;
    int folder;
    std::string name;
};

// One client's connection to a store; every call throws OpError on a failure. With `check`,
// answers are verified in full (names, row and item counts); without, only what is cheap.
class Session {
public:
    virtual ~Session() = default;
    virtual void stat(int folder, int file, bool check) = 0;
    virtual void list(int folder, bool check) = 0;
    virtual std::uint64_t commit(int folder, const std::string& name) = 0;
    virtual void rename(const Owned& f, const std::string& name, int to_folder) = 0;
};

// ---------------------------------------------------------------- metad

// The timed runs' HTTP client: one blocking keep-alive HTTP/1.1 connection, a request
// written with one send and its answer read by Content-Length, as wrk does. libcurl's
// general machinery (a poll per transfer, handle bookkeeping) cost several times the CPU of
// libpq on the PostgreSQL side, taken from the two cores the server under test runs on.
// Anything it does not expect (chunked bodies, a malformed head) is an error, never a guess.
class RawHttp {
public:
    struct Answer {
        int status = 0;
        std::string body;
        json parsed() const { return json::parse(body); }
    };

    explicit RawHttp(std::string path) : path_(std::move(path)) {}
    ~RawHttp() { disconnect(); }
    RawHttp(const RawHttp&) = delete;
    RawHttp& operator=(const RawHttp&) = delete;

    Answer request(const char* method, const std::string& target, const std::string& headers,
                   const std::string& body) {
        std::string req;
        req.reserve(256 + body.size());
        req.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: metad\r\n");
        req.append(headers);
        if (!body.empty() || std::strcmp(method, "GET") != 0)
            req.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
        req.append("\r\n").append(body);
        if (fd_ < 0) connect_socket();
        send_all(req);
        return read_answer();
    }

private:
    void connect_socket() {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) throw OpError(std::string("socket: ") + std::strerror(errno));
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        if (path_.size() >= sizeof a.sun_path) throw OpError(path_ + ": socket path too long");
        std::memcpy(a.sun_path, path_.c_str(), path_.size() + 1);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            int e = errno;
            disconnect();
            throw OpError("connect " + path_ + ": " + std::strerror(e));
        }
        buf_.clear();
    }
    void disconnect() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    void send_all(const std::string& data) {
        for (std::size_t off = 0; off < data.size();) {
            ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                int e = errno;
                disconnect();
                throw OpError(std::string("send: ") + std::strerror(e));
            }
            off += static_cast<std::size_t>(n);
        }
    }
    // Reads more into buf_; false at end of stream. It waits in poll(2) for POLLIN, as libpq
    // does, not in a blocking recv: a thread asleep in recv on a unix stream socket is woken
    // each time the server reads the request (the kernel announces write space on the same
    // wait queue), and every such needless wake-up is a context switch on the two CPUs the
    // server needs.
    bool fill() {
        char chunk[65536];
        for (;;) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, -1) < 0) {
                if (errno == EINTR) continue;
                throw OpError(std::string("poll: ") + std::strerror(errno));
            }
            ssize_t n = ::recv(fd_, chunk, sizeof chunk, MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw OpError(std::string("recv: ") + std::strerror(errno));
            buf_.append(chunk, static_cast<std::size_t>(n));
            return n > 0;
        }
    }
    Answer read_answer() {
        std::size_t head_end;
        while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos) {
            if (buf_.size() > 65536) fail("an answer head over 64 KiB");
            if (!fill()) fail("the server closed the connection before answering");
        }
        std::string_view head(buf_.data(), head_end);
        Answer a;
        if (head.size() < 12 || head.substr(0, 9) != "HTTP/1.1 ") fail("not an HTTP/1.1 answer");
        a.status = std::atoi(std::string(head.substr(9, 3)).c_str());
        std::size_t length = std::string::npos;
        bool close = false;
        for (std::size_t pos = head.find("\r\n"); pos != std::string_view::npos;) {
            std::size_t next = head.find("\r\n", pos + 2);
            std::string line = lower(std::string(head.substr(pos + 2, next == std::string_view::npos
                                                                          ? std::string_view::npos
                                                                          : next - pos - 2)));
            if (line.rfind("content-length:", 0) == 0)
                length = std::strtoull(line.c_str() + 15, nullptr, 10);
            else if (line.rfind("transfer-encoding:", 0) == 0)
                fail("a transfer-encoded answer (the bench client reads Content-Length only)");
            else if (line.rfind("connection:", 0) == 0 && line.find("close") != std::string::npos)
                close = true;
            pos = next;
        }
        if (length == std::string::npos) length = 0; // 204, 304: no body
        std::size_t total = head_end + 4 + length;
        while (buf_.size() < total)
            if (!fill()) fail("the server closed the connection inside an answer");
        a.body.assign(buf_, head_end + 4, length);
        buf_.erase(0, total);
        if (close) disconnect();
        return a;
    }
    [[noreturn]] void fail(const std::string& why) {
        disconnect();
        throw OpError(why);
    }

    std::string path_;
    int fd_ = -1;
    std::string buf_; // received, not yet consumed
};

class MetadSession : public Session {
public:
    MetadSession(const Options& o, const Tree& t) : o_(o), tree_(t), client_(o.socket) {
        std::string caller = "X-Strata-Caller: user=" + std::to_string(t.user) + "\r\n";
        get_ = caller;
        send_ = caller + "Content-Type: application/json\r\n";
    }

    static strata::http_client::Options client_options() {
        strata::http_client::Options opts;
        opts.max_connections = 1; // one thread, one keep-alive connection
        opts.timeout = std::chrono::milliseconds(30000);
        return opts;
    }

    RawHttp::Answer call(const char* method, const std::string& path, const std::string& body,
                         int want) {
        RawHttp::Answer r;
        try {
            r = client_.request(method, path, body.empty() ? get_ : send_, body);
        } catch (const OpError& e) {
            throw OpError(std::string(method) + " " + path + ": " + e.what());
        }
        if (r.status != want)
            throw OpError(std::string(method) + " " + path + ": " + std::to_string(r.status) + " " +
                          r.body.substr(0, 300));
        return r;
    }

    void stat(int folder, int file, bool check) override {
        std::string name = file_name(file);
        auto r = call("GET", "/v1/stat?path=/" + folder_name(folder) + "/" + name, {}, 200);
        if (check && r.parsed().value("name", "") != name)
            throw OpError("stat answered another node: " + r.body);
    }

    void list(int folder, bool check) override {
        auto r = call(
            "GET", "/v1/nodes/" + std::to_string(tree_.folders.at(folder)) + "/children?limit=100",
            {}, 200);
        if (check) {
            auto j = r.parsed();
            std::size_t want = std::min(100, o_.files_per_folder);
            if (!j["items"].is_array() || j["items"].size() < want)
                throw OpError("short listing: " + r.body.substr(0, 300));
        }
    }

    std::uint64_t commit(int folder, const std::string& name) override {
        // The file's one block is in blockd already (the script stored it): metad checks it
        // there (POST /v1/blocks/missing) and records the file.
        json body = {{"parent", std::to_string(tree_.folders.at(folder))},
                     {"name", name},
                     {"blocks", json::array({o_.block})},
                     {"size", o_.block_size},
                     {"type", "text/plain"}};
        auto r = call("POST", "/v1/files", body.dump(), 201);
        return std::stoull(r.parsed().at("id").get<std::string>());
    }

    void rename(const Owned& f, const std::string& name, int to_folder) override {
        json body = {{"name", name}};
        if (to_folder != f.folder) body["parent"] = std::to_string(tree_.folders.at(to_folder));
        call("PATCH", "/v1/nodes/" + std::to_string(f.id), body.dump(), 200);
    }

private:
    const Options& o_;
    const Tree& tree_;
    RawHttp client_;
    std::string get_, send_; // header lines
};

// The user, its root and its folders, as setup left them.
Tree metad_tree(const Options& o) {
    strata::http_client::Client c("unix:" + o.socket);
    strata::http_client::Headers h{{"X-Strata-Caller", "user=" + std::to_string(o.user)}};
    auto me = c.request("GET", "/v1/users/me", h);
    if (me.status != 200) throw OpError("GET /v1/users/me: " + me.body);
    Tree t;
    t.user = o.user;
    t.root = std::stoull(me.json().at("root").get<std::string>());
    t.folders.assign(o.folders, 0);
    std::string cursor;
    for (int page = 0; page < 100; ++page) {
        std::string path = "/v1/nodes/" + std::to_string(t.root) + "/children?limit=1000";
        if (!cursor.empty()) path += "&cursor=" + cursor;
        auto r = c.request("GET", path, h);
        if (r.status != 200) throw OpError("GET " + path + ": " + r.body.substr(0, 300));
        auto j = r.json();
        for (const auto& n : j["items"]) {
            const auto& name = n["name"].get_ref<const std::string&>();
            int k = -1;
            if (name.size() == 4 && name[0] == 'f') k = std::atoi(name.c_str() + 1);
            if (k >= 0 && k < o.folders) t.folders[k] = std::stoull(n["id"].get<std::string>());
        }
        if (j["next_cursor"].is_null()) break;
        cursor = j["next_cursor"].get<std::string>();
    }
    for (int k = 0; k < o.folders; ++k)
        if (!t.folders[k]) throw OpError("metad has no folder " + folder_name(k) + ": run setup");
    return t;
}

// Runs fn(i) for i in [0, n) on `clients` threads; the first failure is rethrown.
template <class F>
void parallel_for(int clients, int n, const char* what, F fn) {
    std::atomic<int> next{0};
    std::mutex mu;
    std::string failure;
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c)
        threads.emplace_back([&, c] {
            try {
                for (int i; (i = next.fetch_add(1)) < n;) {
                    fn(c, i);
                    if (c == 0 && i % 10000 == 0 && i)
                        std::fprintf(stderr, "  %s: %d/%d\n", what, i, n);
                }
            } catch (const std::exception& e) {
                std::lock_guard lock(mu);
                if (failure.empty()) failure = e.what();
                next.store(n);
            }
        });
    for (auto& t : threads)
        t.join();
    if (!failure.empty()) throw OpError(std::string(what) + ": " + failure);
}

void metad_setup(const Options& o) {
    strata::http_client::Client c("unix:" + o.socket);
    // An operator's call (root peer, no caller): the user that owns the tree.
    auto r = c.post_json(
        "/v1/admin/users",
        {{"name", "bench"}, {"email", "bench@example.com"}, {"password", "bench-password"}});
    if (r.status != 201) throw OpError("POST /v1/admin/users: " + r.body);
    Tree t;
    t.user = std::stoull(r.json().at("id").get<std::string>());
    t.root = std::stoull(r.json().at("root").get<std::string>());
    t.folders.assign(o.folders, 0);
    std::vector<std::unique_ptr<strata::http_client::Client>> clients;
    strata::http_client::Headers h{{"X-Strata-Caller", "user=" + std::to_string(t.user)},
                                   {"Content-Type", "application/json"}};
    for (int i = 0; i < o.clients; ++i)
        clients.push_back(std::make_unique<strata::http_client::Client>(
            "unix:" + o.socket, MetadSession::client_options()));
    auto t0 = Clock::now();
    parallel_for(o.clients, o.folders, "folders", [&](int c, int k) {
        json body = {{"parent", std::to_string(t.root)}, {"name", folder_name(k)}};
        auto r = clients[c]->request("POST", "/v1/folders", h, body.dump());
        if (r.status != 201) throw OpError("POST /v1/folders: " + r.body);
        t.folders[k] = std::stoull(r.json().at("id").get<std::string>());
    });
    std::vector<std::unique_ptr<MetadSession>> sessions;
    for (int i = 0; i < o.clients; ++i)
        sessions.push_back(std::make_unique<MetadSession>(o, t));
    int files = o.folders * o.files_per_folder;
    parallel_for(o.clients, files, "files",
                 [&](int c, int m) { sessions[c]->commit(m / o.files_per_folder, file_name(m)); });
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::fprintf(stderr, "metad setup: %d folders, %d files in %.1f s (%.0f commits/s)\n",
                 o.folders, files, s, (o.folders + files) / s);
    std::printf("user=%llu\n", static_cast<unsigned long long>(t.user));
}

// ---------------------------------------------------------------- PostgreSQL

// The schema mirrors metad's databases: users, nodes with names unique per folder ignoring
// case (folded_name), the search index of file names and the outbox of change events.
const char* const pg_schema = R"SQL(
CREATE TABLE users (
    id bigint PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    password text NOT NULL,
    root bigint NOT NULL,
    created bigint NOT NULL,
    disabled boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX users_name ON users (lower(name));
CREATE UNIQUE INDEX users_email ON users (lower(email));
CREATE SEQUENCE node_ids;
CREATE TABLE nodes (
    id bigint PRIMARY KEY DEFAULT nextval('node_ids'),
    owner bigint NOT NULL,
    parent bigint,
    name text NOT NULL,
    folded_name text NOT NULL,
    kind text NOT NULL,
    size bigint NOT NULL DEFAULT 0,
    media_type text,
    sha256 text,
    manifest text,
    state text NOT NULL,
    version bigint NOT NULL,
    created bigint NOT NULL,
    modified bigint NOT NULL
);
CREATE UNIQUE INDEX nodes_parent_name ON nodes (parent, folded_name);
CREATE TABLE search_terms (
    owner bigint NOT NULL,
    term text NOT NULL,
    node bigint NOT NULL,
    PRIMARY KEY (owner, term, node)
);
CREATE TABLE events (
    id bigserial PRIMARY KEY,
    type text NOT NULL,
    node bigint NOT NULL,
    payload jsonb NOT NULL
);
)SQL";

const char* const node_columns =
    "id, parent, name, kind, size, media_type, sha256, version, created, modified";

class Pg {
public:
    explicit Pg(const Options& o) {
        const char* keys[] = {"host", "port", "dbname", "user", "application_name", nullptr};
        const char* values[] = {o.pg_dir.c_str(),  o.pg_port.c_str(), o.pg_db.c_str(),
                                o.pg_user.c_str(), "metad_load",      nullptr};
        conn_ = PQconnectdbParams(keys, values, 0);
        if (PQstatus(conn_) != CONNECTION_OK) {
            std::string e = PQerrorMessage(conn_);
            PQfinish(conn_);
            throw OpError("PostgreSQL connect: " + e);
        }
        exec("SET statement_timeout = '30s'");
    }
    ~Pg() { PQfinish(conn_); }
    Pg(const Pg&) = delete;
    Pg& operator=(const Pg&) = delete;

    PGconn* conn() { return conn_; }

    struct Result {
        PGresult* r = nullptr;
        explicit Result(PGresult* p) : r(p) {}
        ~Result() { PQclear(r); }
        Result(const Result&) = delete;
        int rows() const { return PQntuples(r); }
        const char* at(int row, int col) const { return PQgetvalue(r, row, col); }
    };

    void exec(const char* sql) {
        Result r(PQexec(conn_, sql));
        auto s = PQresultStatus(r.r);
        if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
            throw OpError(std::string("PostgreSQL: ") + sql + ": " + PQerrorMessage(conn_));
    }

    void prepare(const char* name, const char* sql, int params) {
        Result r(PQprepare(conn_, name, sql, params, nullptr));
        if (PQresultStatus(r.r) != PGRES_COMMAND_OK)
            throw OpError(std::string("PostgreSQL prepare ") + name + ": " + PQerrorMessage(conn_));
    }

    // A prepared statement with text parameters; throws unless it succeeded.
    std::unique_ptr<Result> run(const char* name, std::initializer_list<const char*> params) {
        std::vector<const char*> p(params);
        auto r = std::make_unique<Result>(
            PQexecPrepared(conn_, name, static_cast<int>(p.size()), p.data(), nullptr, nullptr, 0));
        auto s = PQresultStatus(r->r);
        if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
            throw OpError(std::string("PostgreSQL ") + name + ": " + PQerrorMessage(conn_));
        return r;
    }

private:
    PGconn* conn_ = nullptr;
};

class PgSession : public Session {
public:
    PgSession(const Options& o, const Tree& t) : o_(o), tree_(t), pg_(o) {
        owner_ = std::to_string(t.user);
        root_ = std::to_string(t.root);
        std::string cols = node_columns;
        // Stat by path: one lookup per component, from the caller's root.
        pg_.prepare(
            "lookup",
            ("SELECT " + cols + " FROM nodes WHERE parent = $1 AND folded_name = $2").c_str(), 2);
        pg_.prepare(
            "list",
            ("SELECT " + cols + " FROM nodes WHERE parent = $1 ORDER BY folded_name LIMIT 100")
                .c_str(),
            1);
        // A new file goes into a folder of the caller's (checked in the same statement).
        pg_.prepare("insert_file",
                    "INSERT INTO nodes (owner, parent, name, folded_name, kind, size, media_type, "
                    "sha256, manifest, state, version, created, modified) "
                    "SELECT p.owner, p.id, $3, $4, 'file', $5, $6, $7, $8, 'ready', 1, $9, $9 "
                    "FROM nodes p WHERE p.id = $2 AND p.owner = $1 AND p.kind = 'folder' "
                    "RETURNING id",
                    9);
        pg_.prepare("insert_terms",
                    "INSERT INTO search_terms (owner, term, node) "
                    "SELECT $1, t, $3 FROM unnest($2::text[]) AS t",
                    3);
        pg_.prepare("delete_terms",
                    "DELETE FROM search_terms WHERE owner = $1 AND term = ANY($2::text[]) AND "
                    "node = $3",
                    3);
        pg_.prepare("insert_event",
                    "INSERT INTO events (type, node, payload) VALUES ($1, $2, $3::jsonb)", 3);
        // Rename/move in one statement that also answers the old name (whose terms go): the
        // node must be the caller's, the new parent a folder of the caller's.
        pg_.prepare("update_node",
                    "UPDATE nodes n SET name = $2, folded_name = $3, parent = $4, "
                    "version = n.version + 1, modified = $5 FROM nodes old "
                    "WHERE n.id = $1 AND old.id = n.id AND n.owner = $6 AND EXISTS "
                    "(SELECT 1 FROM nodes p WHERE p.id = $4 AND p.owner = $6 AND "
                    "p.kind = 'folder') RETURNING old.name, n.version",
                    6);
        manifest_ = "[\"" + o.block + "\"]";
        size_ = std::to_string(o.block_size);
    }

    void stat(int folder, int file, bool check) override {
        std::string fname = folder_name(folder), name = file_name(file);
        auto f = pg_.run("lookup", {root_.c_str(), fname.c_str()});
        if (f->rows() != 1) throw OpError("no folder /" + fname);
        std::string fid = f->at(0, 0);
        auto n = pg_.run("lookup", {fid.c_str(), name.c_str()});
        if (n->rows() != 1) throw OpError("no file /" + fname + "/" + name);
        if (check && name != n->at(0, 2)) throw OpError("stat found another node");
    }

    void list(int folder, bool check) override {
        std::string id = std::to_string(tree_.folders.at(folder));
        auto r = pg_.run("list", {id.c_str()});
        if (r->rows() < std::min(100, o_.files_per_folder)) throw OpError("short listing of " + id);
        (void)check;
    }

    // BEGIN; the node; its name's terms; the event; COMMIT (durable: synchronous_commit).
    std::uint64_t commit(int folder, const std::string& name) override {
        std::string parent = std::to_string(tree_.folders.at(folder));
        std::string folded = lower(name), ms = std::to_string(now_ms());
        std::string terms = pg_array(terms_of(name));
        std::string payload = json({{"parent", parent}, {"name", name}}).dump();
        return in_transaction([&] {
            auto r = pg_.run("insert_file", {owner_.c_str(), parent.c_str(), name.c_str(),
                                             folded.c_str(), size_.c_str(), "text/plain",
                                             o_.block.c_str(), manifest_.c_str(), ms.c_str()});
            if (r->rows() != 1) throw OpError("no folder " + parent);
            std::string id = r->at(0, 0);
            pg_.run("insert_terms", {owner_.c_str(), terms.c_str(), id.c_str()});
            pg_.run("insert_event", {"file.created", id.c_str(), payload.c_str()});
            return std::stoull(id);
        });
    }

    void rename(const Owned& f, const std::string& name, int to_folder) override {
        std::string id = std::to_string(f.id);
        std::string parent = std::to_string(tree_.folders.at(to_folder));
        std::string folded = lower(name), ms = std::to_string(now_ms());
        std::string terms = pg_array(terms_of(name));
        std::string payload = json({{"parent", parent}, {"name", name}}).dump();
        in_transaction([&] {
            auto r = pg_.run("update_node", {id.c_str(), name.c_str(), folded.c_str(),
                                             parent.c_str(), ms.c_str(), owner_.c_str()});
            if (r->rows() != 1) throw OpError("no node " + id + " or no folder " + parent);
            std::string old_terms = pg_array(terms_of(r->at(0, 0)));
            pg_.run("delete_terms", {owner_.c_str(), old_terms.c_str(), id.c_str()});
            pg_.run("insert_terms", {owner_.c_str(), terms.c_str(), id.c_str()});
            pg_.run("insert_event", {"node.moved", id.c_str(), payload.c_str()});
            return 0;
        });
    }

private:
    template <class F>
    std::invoke_result_t<F&> in_transaction(F fn) {
        pg_.exec("BEGIN");
        try {
            auto out = fn();
            pg_.exec("COMMIT");
            return out;
        } catch (...) {
            PQclear(PQexec(pg_.conn(), "ROLLBACK"));
            throw;
        }
    }

    const Options& o_;
    const Tree& tree_;
    Pg pg_;
    std::string owner_, root_, manifest_, size_;
};

// COPY rows in text format: tab-separated, \N for NULL (no value here needs escaping).
void pg_copy(Pg& pg, const char* sql, const std::string& rows) {
    Pg::Result start(PQexec(pg.conn(), sql));
    if (PQresultStatus(start.r) != PGRES_COPY_IN)
        throw OpError(std::string("PostgreSQL: ") + sql + ": " + PQerrorMessage(pg.conn()));
    if (PQputCopyData(pg.conn(), rows.data(), static_cast<int>(rows.size())) != 1 ||
        PQputCopyEnd(pg.conn(), nullptr) != 1)
        throw OpError(std::string("COPY: ") + PQerrorMessage(pg.conn()));
    Pg::Result end(PQgetResult(pg.conn()));
    if (PQresultStatus(end.r) != PGRES_COMMAND_OK)
        throw OpError(std::string("COPY: ") + PQerrorMessage(pg.conn()));
    while (PGresult* r = PQgetResult(pg.conn()))
        PQclear(r);
}

void pg_setup(const Options& o) {
    auto t0 = Clock::now();
    Pg pg(o);
    pg.exec(pg_schema);
    // Ids: 1 the root, 2.. the folders, then the files; the sequence continues after them.
    const std::uint64_t user = 1, root = 1;
    std::int64_t ms = now_ms();
    std::string t = "\t", msv = std::to_string(ms);
    std::string nodes, terms, events;
    nodes += "1\t1\t\\N\t\t\tfolder\t0\t\\N\t\\N\t\\N\tready\t1\t" + msv + "\t" + msv + "\n";
    for (int k = 0; k < o.folders; ++k) {
        std::string id = std::to_string(2 + k), name = folder_name(k);
        nodes += id + t + "1\t1\t" + name + t + name + "\tfolder\t0\t\\N\t\\N\t\\N\tready\t1\t" +
                 msv + t + msv + "\n";
        events += "folder.created\t" + id + "\t{\"parent\": \"1\", \"name\": \"" + name + "\"}\n";
    }
    std::uint64_t next = 2 + o.folders;
    std::string manifest = "[\"" + o.block + "\"]", size = std::to_string(o.block_size);
    for (int m = 0; m < o.folders * o.files_per_folder; ++m, ++next) {
        std::string id = std::to_string(next), name = file_name(m);
        std::string parent = std::to_string(2 + m / o.files_per_folder);
        nodes += id + "\t1\t" + parent + t + name + t + name + "\tfile\t" + size +
                 "\ttext/plain\t" + o.block + t + manifest + "\tready\t1\t" + msv + t + msv + "\n";
        for (const auto& term : terms_of(name))
            terms += "1\t" + term + t + id + "\n";
        events += "file.created\t" + id + "\t{\"parent\": \"" + parent + "\", \"name\": \"" + name +
                  "\"}\n";
    }
    pg.exec("BEGIN");
    pg.exec(
        ("INSERT INTO users VALUES (1, 'bench', 'bench@example.com', 'x', 1, " + msv + ", false)")
            .c_str());
    pg_copy(pg, "COPY nodes FROM STDIN", nodes);
    pg_copy(pg, "COPY search_terms FROM STDIN", terms);
    pg_copy(pg, "COPY events (type, node, payload) FROM STDIN", events);
    pg.exec(("SELECT setval('node_ids', " + std::to_string(next) + ")").c_str());
    pg.exec("COMMIT");
    pg.exec("VACUUM ANALYZE");
    pg.exec("CHECKPOINT");
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::fprintf(stderr, "PostgreSQL setup: %d folders, %d files in %.1f s\n", o.folders,
                 o.folders * o.files_per_folder, s);
    (void)root;
    std::printf("user=%llu\n", static_cast<unsigned long long>(user));
}

Tree pg_tree(const Options& o) {
    Pg pg(o);
    Tree t;
    t.user = o.user;
    std::string uid = std::to_string(o.user);
    pg.prepare("root", "SELECT root FROM users WHERE id = $1", 1);
    auto r = pg.run("root", {uid.c_str()});
    if (r->rows() != 1) throw OpError("PostgreSQL has no user " + uid + ": run setup");
    t.root = std::stoull(r->at(0, 0));
    std::string root = std::to_string(t.root);
    pg.prepare("folders", "SELECT id, name FROM nodes WHERE parent = $1 AND kind = 'folder'", 1);
    auto f = pg.run("folders", {root.c_str()});
    t.folders.assign(o.folders, 0);
    for (int i = 0; i < f->rows(); ++i) {
        std::string name = f->at(i, 1);
        int k = -1;
        if (name.size() == 4 && name[0] == 'f') k = std::atoi(name.c_str() + 1);
        if (k >= 0 && k < o.folders) t.folders[k] = std::stoull(f->at(i, 0));
    }
    for (int k = 0; k < o.folders; ++k)
        if (!t.folders[k]) throw OpError("PostgreSQL has no folder " + folder_name(k));
    return t;
}

// ---------------------------------------------------------------- the timed run

enum Op { op_stat, op_list, op_commit, op_rename, op_count };
const char* const op_names[op_count] = {"stat", "list", "commit", "rename"};

struct ThreadResult {
    std::vector<std::uint32_t> lat_us[op_count]; // timed ops only, microseconds
    std::uint64_t errors = 0, warmup_ops = 0, substituted = 0;
    std::string first_error;
    Clock::time_point last_end{};
};

double percentile(std::vector<std::uint32_t>& v, double p) {
    if (v.empty()) return 0;
    std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(p * v.size()));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
    return v[i] / 1000.0; // ms
}

int run(const Options& o) {
    Tree tree = o.target == "metad" ? metad_tree(o) : pg_tree(o);
    std::vector<ThreadResult> results(o.clients);
    std::latch ready(o.clients + 1), go(1);
    Clock::time_point measure_start, deadline; // written before `go` opens
    std::atomic<int> failed_connect{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < o.clients; ++c)
        threads.emplace_back([&, c] {
            ThreadResult& res = results[c];
            std::unique_ptr<Session> s;
            try {
                if (o.target == "metad")
                    s = std::make_unique<MetadSession>(o, tree);
                else
                    s = std::make_unique<PgSession>(o, tree);
            } catch (const std::exception& e) {
                res.first_error = e.what();
                failed_connect.fetch_add(1);
            }
            ready.count_down();
            go.wait();
            if (!s) return;
            std::mt19937_64 rng(o.seed * 1000003 + o.run_id * 7919 + static_cast<unsigned>(c));
            std::uniform_int_distribution<int> pct(0, 99), folder(0, o.folders - 1),
                file(0, o.folders * o.files_per_folder - 1);
            std::vector<Owned> own;
            std::uint64_t seq = 0;
            for (std::uint64_t i = 0; i < o.max_ops; ++i) {
                auto t0 = Clock::now();
                if (t0 >= deadline) break;
                bool timed = t0 >= measure_start;
                int p = pct(rng);
                const int* m = o.mix;
                Op op = p < m[0]                 ? op_stat
                        : p < m[0] + m[1]        ? op_list
                        : p < m[0] + m[1] + m[2] ? op_commit
                                                 : op_rename;
                if (op == op_rename && own.empty()) {
                    op = op_commit; // nothing of this thread's to rename yet
                    res.substituted += timed;
                }
                try {
                    switch (op) {
                    case op_stat: {
                        int m = file(rng);
                        s->stat(m / o.files_per_folder, m, !timed);
                        break;
                    }
                    case op_list:
                        s->list(folder(rng), !timed);
                        break;
                    case op_commit: {
                        int k = folder(rng);
                        std::string name = "note-" + std::to_string(o.run_id) + "-" +
                                           std::to_string(c) + "-" + std::to_string(++seq) + ".txt";
                        own.push_back({s->commit(k, name), k, name});
                        break;
                    }
                    case op_rename: {
                        auto& f =
                            own[std::uniform_int_distribution<std::size_t>(0, own.size() - 1)(rng)];
                        int to = f.folder;
                        if (pct(rng) < 50) { // a move: another folder
                            to = folder(rng);
                            if (to == f.folder) to = (to + 1) % o.folders;
                        }
                        std::string name = "moved-" + std::to_string(o.run_id) + "-" +
                                           std::to_string(c) + "-" + std::to_string(++seq) + ".txt";
                        s->rename(f, name, to);
                        f.folder = to;
                        f.name = name;
                        break;
                    }
                    default:
                        break;
                    }
                } catch (const std::exception& e) {
                    if (!res.errors++) res.first_error = e.what();
                }
                auto t1 = Clock::now();
                if (timed) {
                    auto us = std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0);
                    res.lat_us[op].push_back(
                        static_cast<std::uint32_t>(std::min<std::int64_t>(us.count(), UINT32_MAX)));
                    res.last_end = t1;
                } else {
                    ++res.warmup_ops;
                }
            }
        });
    ready.arrive_and_wait();
    auto start = Clock::now();
    measure_start = start + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(o.warmup));
    deadline = measure_start + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(o.seconds));
    go.count_down();
    for (auto& t : threads)
        t.join();

    std::vector<std::uint32_t> all, per[op_count];
    std::uint64_t errors = 0, warmup_ops = 0, substituted = 0;
    Clock::time_point end = measure_start;
    for (auto& r : results) {
        for (int op = 0; op < op_count; ++op) {
            per[op].insert(per[op].end(), r.lat_us[op].begin(), r.lat_us[op].end());
            all.insert(all.end(), r.lat_us[op].begin(), r.lat_us[op].end());
        }
        errors += r.errors;
        warmup_ops += r.warmup_ops;
        substituted += r.substituted;
        end = std::max(end, r.last_end);
        if (!r.first_error.empty())
            std::fprintf(stderr, "metad_load: error: %s\n", r.first_error.c_str());
    }
    double secs = std::chrono::duration<double>(end - measure_start).count();
    double rate = secs > 0 ? all.size() / secs : 0;
    std::printf("%s: %d clients, warm-up %.0f s (%llu ops), timed %.2f s\n", o.target.c_str(),
                o.clients, o.warmup, static_cast<unsigned long long>(warmup_ops), secs);
    for (int op = 0; op < op_count; ++op) {
        std::size_t n = per[op].size();
        double p50 = percentile(per[op], 0.50), p99 = percentile(per[op], 0.99);
        std::printf("  %-6s %8zu ops (%4.1f%%)  p50 %7.3f ms  p99 %7.3f ms\n", op_names[op], n,
                    all.empty() ? 0.0 : 100.0 * n / all.size(), p50, p99);
    }
    if (substituted)
        std::printf("  (%llu renames drawn before the thread had a file became commits)\n",
                    static_cast<unsigned long long>(substituted));
    double p50 = percentile(all, 0.50), p99 = percentile(all, 0.99);
    std::printf("SUMMARY ops=%zu seconds=%.3f ops_per_s=%.1f p50_ms=%.3f p99_ms=%.3f errors=%llu\n",
                all.size(), secs, rate, p50, p99, static_cast<unsigned long long>(errors));
    return errors || failed_connect.load() ? 1 : 0;
}

} // namespace

int main(int argc, char** argv) {
    // The driver shares the machine's CPUs with the server it measures: glibc's default of
    // handing freed memory back to the kernel after every large response (madvise, then page
    // faults on the next one, with TLB shootdowns across the client threads) cost it a fifth
    // of its CPU time. Keep the memory instead.
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    mallopt(M_TOP_PAD, 16 << 20);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    Options o = parse(argc, argv);
    try {
        if (o.mode == "setup") {
            if (o.target == "metad")
                metad_setup(o);
            else
                pg_setup(o);
            return 0;
        }
        return run(o);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "metad_load: %s\n", e.what());
        return 1;
    }
}
