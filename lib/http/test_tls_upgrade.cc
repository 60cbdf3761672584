// Upgrades (101) on a TLS listener of the general server, carried by a TlsTunnel: a real
// GnuTLS client does the handshake, switches protocols on a plain and an async route, and
// pushes a megabyte through an echo; the server stopping with a tunnel open closes it.
#include "http/listen.hh"
#include "http/server.hh"
#include "http/tls.hh"

#include <atomic>
#include <criterion/criterion.h>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <netinet/in.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace strata;

namespace {

// A self-signed P-256 certificate for "localhost", written as PEM files.
std::pair<std::string, std::string> make_certificate(const std::string& dir) {
    gnutls_x509_privkey_t key;
    gnutls_x509_privkey_init(&key);
    gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                 GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
    gnutls_x509_crt_t crt;
    gnutls_x509_crt_init(&crt);
    gnutls_x509_crt_set_version(crt, 3);
    unsigned char serial[4] = {1, 2, 3, 4};
    gnutls_x509_crt_set_serial(crt, serial, sizeof serial);
    gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "localhost", 9);
    std::time_t now = std::time(nullptr);
    gnutls_x509_crt_set_activation_time(crt, now - 60);
    gnutls_x509_crt_set_expiration_time(crt, now + 3600);
    gnutls_x509_crt_set_key(crt, key);
    gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
    auto write = [&](const std::string& name, gnutls_datum_t d) {
        std::string path = dir + "/" + name;
        std::ofstream(path) << std::string(reinterpret_cast<char*>(d.data), d.size);
        gnutls_free(d.data);
        return path;
    };
    gnutls_datum_t c{}, k{};
    gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &c);
    gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &k);
    auto paths = std::make_pair(write("cert.pem", c), write("key.pem", k));
    gnutls_x509_crt_deinit(crt);
    gnutls_x509_privkey_deinit(key);
    return paths;
}

// Echoes what comes on the upgraded fd until the peer's end, on its own thread.
void echo(std::unique_ptr<http::Upgraded> u) {
    std::thread([u = std::move(u)] {
        std::string early = u->take_early_bytes();
        if (!early.empty()) (void)::send(u->fd(), early.data(), early.size(), MSG_NOSIGNAL);
        char buf[65536];
        for (;;) {
            pollfd p{u->fd(), POLLIN, 0};
            if (::poll(&p, 1, 10000) <= 0) return;
            ssize_t n = ::recv(u->fd(), buf, sizeof buf, 0);
            if (n == 0) return;
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) continue;
                return;
            }
            for (ssize_t off = 0; off < n;) {
                ssize_t w = ::send(u->fd(), buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
                if (w < 0 && errno == EAGAIN) {
                    pollfd q{u->fd(), POLLOUT, 0};
                    ::poll(&q, 1, 10000);
                    continue;
                }
                if (w <= 0) return;
                off += w;
            }
        }
    }).detach();
}

http::Response switching() {
    http::Response r;
    r.status = 101;
    r.headers.emplace("Upgrade", "echo");
    r.headers.emplace("Connection", "Upgrade");
    r.upgrade = echo;
    return r;
}

struct Fixture {
    std::string dir;
    uv_loop_t loop{};
    uv_async_t stop_async{};
    http::Router router;
    std::unique_ptr<http::Server> server;
    std::thread thread;
    int port = 0;

    Fixture() {
        char tmpl[] = "/tmp/strata-tls-upgrade-XXXXXX";
        dir = mkdtemp(tmpl);
        auto [cert, key] = make_certificate(dir);
        http::set_tls_certificate(http::TlsCertificate::load(cert, key));
        router.get("/echo", [](http::Request&) { return switching(); });
        router.add_async("GET", "/echo-later", [](http::Request&, http::Reply reply) {
            std::thread([reply] {
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
                reply(switching());
            }).detach();
        });
        uv_loop_init(&loop);
        server = std::make_unique<http::Server>(&loop, router, http::Limits{});
        int fd = http::listen_tcp("127.0.0.1:0");
        port = http::bound_port(fd);
        server->serve_tls(fd, http::tls_priorities("", "1.2"));
        stop_async.data = this;
        uv_async_init(&loop, &stop_async, [](uv_async_t* a) {
            auto* self = static_cast<Fixture*>(a->data);
            self->server->stop();
            uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
        });
        thread = std::thread([this] { uv_run(&loop, UV_RUN_DEFAULT); });
    }
    void stop() {
        if (!thread.joinable()) return;
        uv_async_send(&stop_async);
        thread.join();
    }
    ~Fixture() {
        stop();
        uv_run(&loop, UV_RUN_NOWAIT);
        uv_loop_close(&loop);
        std::filesystem::remove_all(dir);
    }
};

Fixture* g_fx;
void setup() {
    g_fx = new Fixture;
}
void teardown() {
    delete g_fx;
    g_fx = nullptr;
}

// A blocking GnuTLS client (the certificate is not verified: the test made it).
struct Client {
    int fd = -1;
    gnutls_session_t s = nullptr;
    gnutls_certificate_credentials_t cred = nullptr;
    explicit Client(int port) {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        cr_assert_eq(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        timeval tv{10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        gnutls_certificate_allocate_credentials(&cred);
        gnutls_init(&s, GNUTLS_CLIENT);
        gnutls_set_default_priority(s);
        gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
        gnutls_server_name_set(s, GNUTLS_NAME_DNS, "localhost", 9);
        gnutls_transport_set_int(s, fd);
        int rc;
        do
            rc = gnutls_handshake(s);
        while (rc < 0 && !gnutls_error_is_fatal(rc));
        cr_assert_eq(rc, 0, "handshake: %s", gnutls_strerror(rc));
    }
    ~Client() {
        gnutls_deinit(s);
        gnutls_certificate_free_credentials(cred);
        ::close(fd);
    }
    void send(const std::string& data) {
        for (std::size_t off = 0; off < data.size();) {
            ssize_t n = gnutls_record_send(s, data.data() + off,
                                           std::min<std::size_t>(16384, data.size() - off));
            cr_assert_gt(n, 0, "send: %s", gnutls_strerror(static_cast<int>(n)));
            off += static_cast<std::size_t>(n);
        }
    }
    // Up to n bytes, or fewer at the end of the stream (or a timeout).
    std::string recv(std::size_t n) {
        std::string out;
        char buf[16384];
        while (out.size() < n) {
            ssize_t got = gnutls_record_recv(s, buf, std::min(sizeof buf, n - out.size()));
            if (got == GNUTLS_E_AGAIN || got == GNUTLS_E_INTERRUPTED) break; // SO_RCVTIMEO
            if (got <= 0) break;
            out.append(buf, static_cast<std::size_t>(got));
        }
        return out;
    }
    std::string head() {
        std::string h;
        char c;
        while (h.find("\r\n\r\n") == std::string::npos && gnutls_record_recv(s, &c, 1) == 1)
            h += c;
        return h;
    }
};

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>((i * 131 + i / 4099) & 0xff);
    return s;
}

void echo_through(const char* path) {
    Client c(g_fx->port);
    c.send(std::string("GET ") + path +
           " HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n");
    std::string head = c.head();
    cr_assert(head.rfind("HTTP/1.1 101 ", 0) == 0, "%s", head.c_str());
    cr_assert(head.find("Upgrade: echo\r\n") != std::string::npos, "%s", head.c_str());
    c.send("ping");
    cr_assert_eq(c.recv(4), "ping");
    std::string big = pattern(1 << 20);
    std::thread writer([&] { c.send(big); });
    std::string back = c.recv(big.size());
    writer.join();
    cr_assert_eq(back.size(), big.size());
    cr_assert(back == big, "the megabyte came back changed");
    gnutls_bye(c.s, GNUTLS_SHUT_WR); // the echo sees the end, drops its end: the tunnel closes
    cr_assert_eq(c.recv(1), "", "the connection ends after the client's close_notify");
}

} // namespace

TestSuite(tls_upgrade, .init = setup, .fini = teardown, .timeout = 60);

Test(tls_upgrade, a_plain_route_switches_and_echoes_a_megabyte) {
    echo_through("/echo");
}

Test(tls_upgrade, an_async_route_switches_and_echoes_a_megabyte) {
    echo_through("/echo-later");
}

Test(tls_upgrade, several_tunnels_at_once_and_the_listener_serves_on) {
    std::vector<std::thread> ts;
    std::atomic<int> ok{0};
    for (int i = 0; i < 4; ++i)
        ts.emplace_back([&ok, i] {
            Client c(g_fx->port);
            c.send("GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: echo\r\n"
                   "Connection: Upgrade\r\n\r\n");
            if (c.head().rfind("HTTP/1.1 101 ", 0) != 0) return;
            std::string msg = pattern(50000 + static_cast<std::size_t>(i));
            c.send(msg);
            if (c.recv(msg.size()) == msg) ++ok;
        });
    for (auto& t : ts)
        t.join();
    cr_assert_eq(ok.load(), 4);
    Client c(g_fx->port);
    c.send("GET /missing HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    std::string head = c.head();
    cr_assert(head.rfind("HTTP/1.1 404 ", 0) == 0, "%s", head.c_str());
}

Test(tls_upgrade, stopping_the_server_closes_an_open_tunnel) {
    Client c(g_fx->port);
    c.send("GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n");
    cr_assert(c.head().rfind("HTTP/1.1 101 ", 0) == 0);
    c.send("still here");
    cr_assert_eq(c.recv(10), "still here");
    auto t0 = std::chrono::steady_clock::now();
    g_fx->stop();
    cr_assert_eq(c.recv(1), "", "the tunnel is closed by the stop");
    cr_assert_lt(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}
