#include "http/listen.hh"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <netdb.h>
#include <netinet/in.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <system_error>
#include <unistd.h>
#include <utility>

namespace strata::http {

namespace {
[[noreturn]] void fail(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

// Closes the fd unless release() was called: no leak on the error paths.
struct FdGuard {
    int fd;
    ~FdGuard() {
        if (fd >= 0) close(fd);
    }
    int release() { return std::exchange(fd, -1); }
};

sockaddr_un unix_address(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path)
        throw std::runtime_error(path + ": socket path too long");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

bool someone_listens(const sockaddr_un& addr) {
    FdGuard probe{socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    if (probe.fd < 0) return false;
    return connect(probe.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
}
} // namespace

int listen_unix(const std::string& path, mode_t mode, gid_t gid) {
    sockaddr_un addr = unix_address(path);
    struct stat st {};
    if (lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) throw std::runtime_error(path + ": exists and is not a socket");
        if (someone_listens(addr))
            throw std::runtime_error(path + ": another process is serving this socket");
        unlink(path.c_str());
    }
    FdGuard fd{socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
    if (fd.fd < 0) fail("socket(AF_UNIX)");
    // Create the file with the final mode: no window where it is wider than asked.
    mode_t old = umask(~mode & 0777);
    int rc = bind(fd.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    umask(old);
    if (rc != 0) fail("bind " + path);
    if (gid != static_cast<gid_t>(-1) && chown(path.c_str(), static_cast<uid_t>(-1), gid) != 0)
        fail("chown " + path);
    if (listen(fd.fd, SOMAXCONN) != 0) fail("listen " + path);
    return fd.release();
}

int listen_tcp(const std::string& address) {
    auto colon = address.rfind(':');
    if (colon == std::string::npos) throw std::runtime_error(address + ": expected HOST:PORT");
    std::string host = address.substr(0, colon);
    std::string port = address.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    if (host == "*") host.clear();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    int gai = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
    if (gai != 0) throw std::runtime_error(address + ": " + gai_strerror(gai));
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
    // With no host, prefer the IPv6 wildcard (dual stack) like "[::]:port".
    addrinfo* pick = res;
    for (addrinfo* a = res; host.empty() && a; a = a->ai_next)
        if (a->ai_family == AF_INET6) pick = a;
    FdGuard fd{socket(pick->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
    if (fd.fd < 0) fail("socket " + address);
    int one = 1, zero = 0;
    setsockopt(fd.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (pick->ai_family == AF_INET6)
        setsockopt(fd.fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd.fd, pick->ai_addr, pick->ai_addrlen) != 0) fail("bind " + address);
    if (listen(fd.fd, SOMAXCONN) != 0) fail("listen " + address);
    return fd.release();
}

int bound_port(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -1;
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    return -1;
}

} // namespace strata::http
