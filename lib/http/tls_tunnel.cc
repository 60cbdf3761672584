#include "http/tls_tunnel.hh"

#include <cerrno>
#include <gnutls/gnutls.h>
#include <sys/socket.h>
#include <unistd.h>

namespace strata::http {

namespace {

constexpr std::size_t kChunk = 16384;         // one TLS record's worth of plain bytes
constexpr std::size_t kBuffered = 256 * 1024; // per direction; reading stops above it

bool again(int e) {
    return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

// The owner's end of the socketpair, shared with the tunnel so that revoke() can close it
// once and the Upgraded's destructor does not close it again.
struct OwnerEnd {
    int fd = -1;
    std::function<void()> revoked;
    void close_fd() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
};

class OwnerUpgraded : public Upgraded {
public:
    explicit OwnerUpgraded(std::shared_ptr<OwnerEnd> end) : end_(std::move(end)) {}
    ~OwnerUpgraded() override { end_->close_fd(); } // the tunnel reads EOF and finishes
    int fd() const override { return end_->fd; }
    // Bytes libmicrohttpd read past the request head stay in its buffer, out of reach: a
    // client that sends before the 101 (RFC 6455 4.1 forbids it) loses them.
    std::string take_early_bytes() override { return {}; }
    void on_revoked(std::function<void()> f) override { end_->revoked = std::move(f); }

private:
    std::shared_ptr<OwnerEnd> end_;
};

class Tunnel final : public TlsTunnel, public std::enable_shared_from_this<Tunnel> {
public:
    Tunnel(uv_loop_t* loop, gnutls_session_t session, int client_fd, std::string head,
           std::function<void()> released)
        : loop_(loop), session_(session), client_fd_(client_fd), to_client_(std::move(head)),
          released_(std::move(released)) {}

    bool open() {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
            return false;
        inner_ = sv[0];
        owner_->fd = sv[1];
        if (uv_poll_init(loop_, &client_poll_, client_fd_) != 0) {
            ::close(inner_);
            inner_ = -1;
            owner_->close_fd();
            return false;
        }
        uv_poll_init(loop_, &inner_poll_, inner_);
        client_poll_.data = this;
        inner_poll_.data = this;
        handles_ = 2;
        self_ = shared_from_this();
        // GnuTLS may hold decrypted bytes already (they came with the request's records).
        pump(UV_READABLE | UV_WRITABLE, UV_WRITABLE);
        return true;
    }

    std::unique_ptr<Upgraded> take_upgraded() override {
        if (given_) return nullptr;
        given_ = true;
        return std::make_unique<OwnerUpgraded>(owner_);
    }

    void revoke() override {
        if (finished_) return;
        released_ = nullptr; // the server closes the connection itself
        auto f = std::move(owner_->revoked);
        if (f) f();
        owner_->close_fd();
        finish();
    }

private:
    static void on_client(uv_poll_t* h, int status, int events) {
        auto* self = static_cast<Tunnel*>(h->data);
        auto keep = self->shared_from_this();
        if (status < 0) return self->finish();
        self->pump(events, 0);
    }
    static void on_inner(uv_poll_t* h, int status, int events) {
        auto* self = static_cast<Tunnel*>(h->data);
        auto keep = self->shared_from_this();
        if (status < 0) return self->finish();
        self->pump(0, events);
    }

    // Reads what is readable into the other side's buffer, writes what is waiting, then
    // finishes or re-arms both polls.
    void pump(int client_events, int inner_events) {
        if (finished_) return;
        if ((client_events & (UV_READABLE | UV_DISCONNECT)) ||
            (recv_wants_write_ && (client_events & UV_WRITABLE)))
            read_client();
        if (inner_events & (UV_READABLE | UV_DISCONNECT)) read_inner();
        write_inner();
        if (!write_client()) return finish();
        if (client_eof_ && to_owner_.empty() && !inner_shut_) {
            ::shutdown(inner_, SHUT_WR); // the owner reads the end of the client's stream
            inner_shut_ = true;
        }
        if (inner_eof_ && to_client_.empty()) {
            // The owner is done: close_notify, best effort (the socket is non-blocking).
            if (!client_broken_) gnutls_bye(session_, GNUTLS_SHUT_WR);
            return finish();
        }
        if (client_broken_ || (client_eof_ && inner_eof_)) return finish();
        arm();
    }

    void read_client() {
        recv_wants_write_ = false;
        char buf[kChunk];
        while (!client_eof_ && to_owner_.size() < kBuffered) {
            ssize_t n = gnutls_record_recv(session_, buf, sizeof buf);
            if (n > 0) {
                to_owner_.append(buf, static_cast<std::size_t>(n));
                continue;
            }
            if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
                recv_wants_write_ = gnutls_record_get_direction(session_) == 1;
                return;
            }
            if (n < 0 && !gnutls_error_is_fatal(static_cast<int>(n))) continue; // e.g. alerts
            client_eof_ = true; // 0: close_notify; fatal: the stream is over too
            client_broken_ = n < 0;
        }
    }

    void read_inner() {
        char buf[kChunk];
        while (!inner_eof_ && to_client_.size() < kBuffered) {
            ssize_t n = ::recv(inner_, buf, sizeof buf, 0);
            if (n > 0) {
                to_client_.append(buf, static_cast<std::size_t>(n));
                continue;
            }
            if (n < 0 && again(errno)) return;
            inner_eof_ = true;
        }
    }

    // An owner's end that is gone drops what was for it; what it sent still goes out.
    void write_inner() {
        while (!to_owner_.empty()) {
            ssize_t n = ::send(inner_, to_owner_.data(), to_owner_.size(), MSG_NOSIGNAL);
            if (n < 0 && again(errno)) return;
            if (n <= 0) {
                to_owner_.clear();
                inner_eof_ = true;
                return;
            }
            to_owner_.erase(0, static_cast<std::size_t>(n));
        }
    }

    // false: the client's connection failed.
    bool write_client() {
        while (!to_client_.empty() && !client_broken_) {
            // After GNUTLS_E_AGAIN the same record is offered again, as GnuTLS requires.
            std::size_t size = sending_ ? sending_ : std::min(to_client_.size(), kChunk);
            ssize_t n = gnutls_record_send(session_, to_client_.data(), size);
            if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
                sending_ = size;
                return true;
            }
            sending_ = 0;
            if (n <= 0) {
                client_broken_ = true;
                return false;
            }
            to_client_.erase(0, static_cast<std::size_t>(n));
        }
        return true;
    }

    void arm() {
        int client = (!client_eof_ && to_owner_.size() < kBuffered ? UV_READABLE : 0) |
                     (!to_client_.empty() || recv_wants_write_ ? UV_WRITABLE : 0);
        int inner = (!inner_eof_ && to_client_.size() < kBuffered ? UV_READABLE : 0) |
                    (!to_owner_.empty() ? UV_WRITABLE : 0);
        if (client)
            uv_poll_start(&client_poll_, client, on_client);
        else
            uv_poll_stop(&client_poll_);
        if (inner)
            uv_poll_start(&inner_poll_, inner, on_inner);
        else
            uv_poll_stop(&inner_poll_);
    }

    // Stops watching both sockets at once (the client's may be closed by the server right
    // after `released`); this object goes when libuv has closed both handles.
    void finish() {
        if (finished_) return;
        finished_ = true;
        uv_close(reinterpret_cast<uv_handle_t*>(&client_poll_), on_closed);
        uv_close(reinterpret_cast<uv_handle_t*>(&inner_poll_), on_closed);
    }
    static void on_closed(uv_handle_t* h) {
        auto* self = static_cast<Tunnel*>(h->data);
        if (--self->handles_ > 0) return;
        ::close(self->inner_);
        self->inner_ = -1;
        auto released = std::move(self->released_);
        auto keep = std::move(self->self_);
        if (released) released();
    }

    uv_loop_t* loop_;
    gnutls_session_t session_;
    int client_fd_;
    int inner_ = -1;
    std::shared_ptr<OwnerEnd> owner_ = std::make_shared<OwnerEnd>();
    uv_poll_t client_poll_{};
    uv_poll_t inner_poll_{};
    int handles_ = 0;
    std::string to_client_; // plain bytes for the client (the 101 head first)
    std::string to_owner_;  // decrypted bytes for the owner
    std::size_t sending_ = 0;
    bool client_eof_ = false, client_broken_ = false, recv_wants_write_ = false;
    bool inner_eof_ = false, inner_shut_ = false;
    bool given_ = false, finished_ = false;
    std::function<void()> released_;
    std::shared_ptr<Tunnel> self_; // kept until both handles are closed
};

} // namespace

std::shared_ptr<TlsTunnel> TlsTunnel::start(uv_loop_t* loop, void* session, int client_fd,
                                            std::string head, std::function<void()> released) {
    auto t = std::make_shared<Tunnel>(loop, static_cast<gnutls_session_t>(session), client_fd,
                                      std::move(head), std::move(released));
    if (!t->open()) return nullptr;
    return t;
}

} // namespace strata::http
