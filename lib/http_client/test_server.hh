// Test helper (not part of libstrata): a real libmicrohttpd server on a unix socket or on
// 127.0.0.1, with a few routes, counting the connections it accepts.
//   /echo            body echoed; X-Method, X-Path, X-Echo (request's X-Test), X-Content-Type
//   /slow?ms=N       answers "slow" after N ms
//   /big?bytes=N     N bytes: "abcdefghijklmnopqrstuvwxyz" repeated
//   /json            {"hello":"world"} as application/json
//   /status?code=N   empty body with status N
//   /close           answers with "Connection: close"
#pragma once

#include <atomic>
#include <memory>
#include <string>

struct MHD_Daemon;

namespace strata::http_client::testing {

// A scratch directory, removed with its contents on destruction.
class TempDir {
public:
    TempDir();
    ~TempDir();
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

class TestServer {
public:
    static std::unique_ptr<TestServer> tcp();
    static std::unique_ptr<TestServer> unix_socket(const std::string& path);
    ~TestServer();

    // "http://127.0.0.1:PORT" or "unix:PATH"
    const std::string& target() const { return target_; }
    int connections() const { return connections_.load(); }
    int requests() const { return requests_.load(); }

    // Internal state shared with the MHD callbacks.
    std::atomic<int> connections_{0};
    std::atomic<int> requests_{0};
    std::atomic<bool> stopping_{false};

private:
    TestServer() = default;
    void start(int listen_fd, bool is_unix);

    MHD_Daemon* daemon_ = nullptr;
    std::string target_;
    std::string socket_path_;
};

// A unix socket file nobody listens on (a daemon that died without cleaning up).
void make_stale_socket(const std::string& path);
// A TCP port on 127.0.0.1 that refuses connections; the returned fd keeps it reserved.
int reserve_closed_port(int* port);

} // namespace strata::http_client::testing
