#include "http_client/test_server.hh"

#include <arpa/inet.h>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace strata::http_client::testing {

namespace {

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

MHD_Result respond(MHD_Connection* c, unsigned status, const std::string& body,
                   std::initializer_list<std::pair<const char*, std::string>> headers = {}) {
    MHD_Response* r = MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()),
                                                      MHD_RESPMEM_MUST_COPY);
    for (const auto& [k, v] : headers)
        MHD_add_response_header(r, k, v.c_str());
    MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

std::string arg(MHD_Connection* c, const char* key) {
    const char* v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
    return v ? v : "";
}

std::string header(MHD_Connection* c, const char* key) {
    const char* v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, key);
    return v ? v : "";
}

MHD_Result on_request(void* cls, MHD_Connection* c, const char* url, const char* method,
                      const char*, const char* upload, size_t* upload_size, void** req_cls) {
    auto* server = static_cast<TestServer*>(cls);
    auto* body = static_cast<std::string*>(*req_cls);
    if (!body) { // first call: headers only
        *req_cls = new std::string;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        body->append(upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    server->requests_++;
    std::string path = url;
    if (path == "/echo") {
        return respond(c, 200, *body,
                       {{"Content-Type", "text/plain"},
                        {"X-Method", method},
                        {"X-Path", path},
                        {"X-Echo", header(c, "X-Test")},
                        {"X-Content-Type", header(c, "Content-Type")}});
    }
    if (path == "/slow") {
        auto until = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(std::atoi(arg(c, "ms").c_str()));
        while (std::chrono::steady_clock::now() < until && !server->stopping_) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return respond(c, 200, "slow");
    }
    if (path == "/big") {
        std::size_t n = std::strtoull(arg(c, "bytes").c_str(), nullptr, 10);
        std::string big(n, '\0');
        for (std::size_t i = 0; i < n; ++i)
            big[i] = char('a' + i % 26);
        return respond(c, 200, big);
    }
    if (path == "/json") {
        return respond(c, 200, R"({"hello":"world"})", {{"Content-Type", "application/json"}});
    }
    if (path == "/status") return respond(c, unsigned(std::atoi(arg(c, "code").c_str())), "");
    if (path == "/close") return respond(c, 200, "bye", {{"Connection", "close"}});
    return respond(c, 404, R"({"error":{"code":"not_found","message":"no route"}})");
}

void on_completed(void*, MHD_Connection*, void** req_cls, MHD_RequestTerminationCode) {
    delete static_cast<std::string*>(*req_cls);
    *req_cls = nullptr;
}

void on_connection(void* cls, MHD_Connection*, void**, MHD_ConnectionNotificationCode code) {
    if (code == MHD_CONNECTION_NOTIFY_STARTED) static_cast<TestServer*>(cls)->connections_++;
}

} // namespace

TempDir::TempDir() {
    // Short base: unix socket paths must fit in sun_path (108 bytes).
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(base && std::strlen(base) < 60 ? base : "/tmp") + "/strata-httpc-XXXXXX";
    if (!::mkdtemp(tmpl.data())) fail("mkdtemp");
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::unique_ptr<TestServer> TestServer::tcp() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, 64) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        ::close(fd);
        fail("bind 127.0.0.1:0");
    }
    std::unique_ptr<TestServer> s(new TestServer);
    s->target_ = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
    s->start(fd, false);
    return s;
}

std::unique_ptr<TestServer> TestServer::unix_socket(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ::unlink(path.c_str());
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0) {
        ::close(fd);
        fail("bind " + path);
    }
    std::unique_ptr<TestServer> s(new TestServer);
    s->socket_path_ = path;
    s->target_ = "unix:" + path;
    s->start(fd, true);
    return s;
}

void TestServer::start(int fd, bool is_unix) {
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;
    daemon_ =
        MHD_start_daemon(flags, 0, nullptr, nullptr, &on_request, this, MHD_OPTION_LISTEN_SOCKET,
                         fd, MHD_OPTION_NOTIFY_COMPLETED, &on_completed, nullptr,
                         MHD_OPTION_NOTIFY_CONNECTION, &on_connection, this, MHD_OPTION_END);
    if (!daemon_) {
        ::close(fd);
        if (is_unix) ::unlink(socket_path_.c_str());
        throw std::runtime_error("MHD_start_daemon failed");
    }
}

TestServer::~TestServer() {
    stopping_ = true;         // lets /slow handlers return so MHD can join their threads
    MHD_stop_daemon(daemon_); // also closes the listening socket
    if (!socket_path_.empty()) ::unlink(socket_path_.c_str());
}

void make_stale_socket(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail("bind " + path);
    ::close(fd); // the file stays: connecting to it is refused
}

int reserve_closed_port(int* port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    // Bound but not listening: the kernel answers SYNs with RST, and nobody else gets the port.
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        fail("bind");
    }
    *port = ntohs(addr.sin_port);
    return fd;
}

} // namespace strata::http_client::testing
