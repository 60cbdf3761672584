#include "http/server.hh"

#include "http/chars.hh"
#include "http/head_check.hh"
#include "http/tls.hh"
#include "http/tls_tunnel.hh"

#include <algorithm>
#include <arpa/inet.h>
#include <cstring>
#include <fcntl.h>
#include <microhttpd.h>
#include <mutex>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <unordered_map>
#include <unordered_set>

namespace strata::http {

namespace {

using Clock = std::chrono::steady_clock;

// State of one request, kept in MHD's per-request pointer between handler calls.
struct Pending {
    Request request;
    Clock::time_point started = Clock::now();
    RouteMatch route;
    std::unique_ptr<BodySink> sink; // streaming routes; destroyed unfinished = aborted
    std::uint64_t limit = 0;        // body bytes allowed
    std::uint64_t received = 0;
    std::optional<Response> failed; // decided while the body was still coming
    // Routes that block (disk walks, whole-file reads) run on libuv's thread pool while the
    // connection is suspended; `offloaded` holds their answer once it is back on the loop.
    uv_work_t work{};
    MHD_Connection* connection = nullptr;
    std::optional<Response> offloaded;
    bool suspended = false;
    bool completed = false;           // MHD is done with the request (answered, or the client left)
    std::shared_ptr<Pending> self;    // keeps this alive while a worker uses it
    bool awaiting = false;            // an async route's Reply has not come back yet
    bool tunneled = false;            // a TLS upgrade carried by a TlsTunnel (still suspended)
    std::weak_ptr<Pending> weak_self; // what a TlsTunnel's release finds it by
    Server::Endpoint* endpoint = nullptr;
    Clock::time_point handler_started;
    std::uint64_t discarded = 0;
    std::uint64_t declared = 0; // Content-Length, when the request had one (within limit)
};

constexpr std::size_t kMaxDiscardBytes = 1 << 20;
// Room for request bodies in each connection's memory pool, beyond the headers: uploads
// arrive in chunks of about this size (8 KiB chunks cost a recv, a write and a loop turn each).

MHD_Result collect(void* cls, MHD_ValueKind, const char* key, const char* value) {
    static_cast<std::multimap<std::string, std::string, CaseLess>*>(cls)->emplace(key, value ? value
                                                                                             : "");
    return MHD_YES;
}

MHD_Result collect_query(void* cls, MHD_ValueKind, const char* key, const char* value) {
    static_cast<std::multimap<std::string, std::string>*>(cls)->emplace(key, value ? value : "");
    return MHD_YES;
}

// The peer of a unix-socket connection (nullopt over TCP): SO_PEERCRED gives the
// credentials of connect() time, so it is asked once per connection, not per request.
std::optional<PeerCredentials> peer_of_fd(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0 || ss.ss_family != AF_UNIX)
        return std::nullopt;
    ucred cred{};
    socklen_t clen = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0) return std::nullopt;
    return PeerCredentials{cred.pid, cred.uid, cred.gid};
}

// A TCP client's address in text ("192.0.2.1", "2001:db8::1"); "" when MHD has none.
std::string client_address(MHD_Connection* connection) {
    const MHD_ConnectionInfo* info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!info || !info->client_addr) return {};
    char text[INET6_ADDRSTRLEN] = {};
    const sockaddr* sa = info->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, text, sizeof text);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, text,
                  sizeof text);
    return text;
}

// What the server keeps per connection (MHD's socket context): the peer, asked once, the
// request-target of the request being read, and since when the connection has been waiting
// for a request's head (sweep() cuts off a head that takes longer than the idle timeout).
struct ConnectionContext {
    std::optional<PeerCredentials> peer;
    std::string target; // as sent: path and query, still percent-encoded
    int fd = -1;
    bool in_request = false;      // the head was complete: MHD's idle timeout governs the rest
    Clock::time_point head_since; // connected, or the previous request completed
};

ConnectionContext* context_of(MHD_Connection* connection) {
    const MHD_ConnectionInfo* info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? static_cast<ConnectionContext*>(info->socket_context) : nullptr;
}

// MHD_OPTION_URI_LOG_CALLBACK: the only place MHD shows the request-target before decoding
// it (a proxy forwards the query as sent: order and encoding matter to signed URLs). Called
// as each request's line is read, so the context holds the current request's target.
void* on_uri(void*, const char* uri, MHD_Connection* connection) {
    if (ConnectionContext* ctx = context_of(connection)) ctx->target = uri ? uri : "";
    return nullptr; // no request context yet: the access handler makes it
}

ssize_t read_body(void* cls, std::uint64_t pos, char* buf, size_t max) {
    auto* reader = static_cast<std::shared_ptr<BodyReader>*>(cls);
    try {
        if (pos >= (*reader)->size()) return MHD_CONTENT_READER_END_OF_STREAM;
        size_t n = (*reader)->read(pos, std::span<char>(buf, max));
        return n > 0 ? static_cast<ssize_t>(n) : MHD_CONTENT_READER_END_WITH_ERROR;
    } catch (const std::exception&) {
        return MHD_CONTENT_READER_END_WITH_ERROR; // MHD closes the connection
    }
}

void free_reader(void* cls) {
    delete static_cast<std::shared_ptr<BodyReader>*>(cls);
}

// A body of pieces read on demand (the general server cannot sendfile several files).
class PiecesReader : public BodyReader {
public:
    explicit PiecesReader(std::vector<BodyPiece> pieces) : pieces_(std::move(pieces)) {
        for (const auto& p : pieces_) {
            starts_.push_back(size_);
            size_ += p.size();
        }
    }
    std::uint64_t size() const override { return size_; }
    std::size_t read(std::uint64_t offset, std::span<char> buf) override {
        auto it = std::upper_bound(starts_.begin(), starts_.end(), offset);
        std::size_t i = static_cast<std::size_t>(it - starts_.begin()) - 1;
        const BodyPiece& p = pieces_[i];
        std::uint64_t within = offset - starts_[i];
        std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), p.size() - within));
        if (!p.file) {
            std::memcpy(buf.data(), p.literal.data() + within, n);
            return n;
        }
        ssize_t got = ::pread(p.file->fd(), buf.data(), n, static_cast<off_t>(p.offset + within));
        if (got <= 0) throw std::runtime_error("short read of a response body file");
        return static_cast<std::size_t>(got);
    }

private:
    std::vector<BodyPiece> pieces_;
    std::vector<std::uint64_t> starts_;
    std::uint64_t size_ = 0;
};

MHD_Response* make_response(const Response& response) {
    if (response.has_pieces) {
        if (response.pieces.size() == 1 && response.pieces[0].file) {
            // One file slice: sendfile(2) by MHD, on a dup (MHD closes the fd it is given).
            const BodyPiece& p = response.pieces[0];
            int fd = ::fcntl(p.file->fd(), F_DUPFD_CLOEXEC, 0);
            if (fd < 0) return nullptr;
            MHD_Response* r = MHD_create_response_from_fd_at_offset64(p.length, fd, p.offset);
            if (!r) close(fd);
            return r;
        }
        auto* holder =
            new std::shared_ptr<BodyReader>(std::make_shared<PiecesReader>(response.pieces));
        MHD_Response* r = MHD_create_response_from_callback((*holder)->size(), 64 * 1024, read_body,
                                                            holder, free_reader);
        if (!r) delete holder;
        return r;
    }
    if (response.file) {
        // MHD sends with sendfile(2) where it can and closes the fd with the response.
        MHD_Response* r = MHD_create_response_from_fd_at_offset64(
            response.file->length, response.file->fd, response.file->offset);
        if (!r) close(response.file->fd);
        return r;
    }
    if (response.reader) {
        auto* holder = new std::shared_ptr<BodyReader>(response.reader);
        MHD_Response* r = MHD_create_response_from_callback(response.reader->size(), 64 * 1024,
                                                            read_body, holder, free_reader);
        if (!r) delete holder;
        return r;
    }
    return MHD_create_response_from_buffer(
        response.body.size(), const_cast<char*>(response.body.data()), MHD_RESPMEM_MUST_COPY);
}

MHD_Result send(MHD_Connection* connection, const Response& response) {
    MHD_Response* r = make_response(response);
    if (!r) return MHD_NO;
    for (const auto& [k, v] : response.headers)
        MHD_add_response_header(r, k.c_str(), v.c_str());
    MHD_Result rc = MHD_queue_response(connection, static_cast<unsigned>(response.status), r);
    MHD_destroy_response(r);
    return rc;
}

} // namespace

// Where async routes' Replies land, from any thread, for the loop to resume their
// connections. Shared with the Replies: once the endpoint closes, late ones are dropped.
struct Mailbox {
    std::mutex mu;
    bool open = true;
    uv_async_t* wake = nullptr;
    // A Reply made on the loop's own thread (the proxy's, from an upstream's answer) is
    // delivered at once: no eventfd write and read, no extra loop turn.
    std::thread::id loop_thread;
    struct Server::Endpoint* endpoint = nullptr; // valid while `open`
    std::vector<std::pair<std::shared_ptr<Pending>, Response>> replies;
};

// A connection handed over after a 101 (upgrade.hh), until its owner drops it or the
// endpoint stops (revoke()).
struct UpgradedConnection;

struct Server::Endpoint {
    Server* server = nullptr;
    MHD_Daemon* mhd = nullptr;
    bool tls = false; // an HTTPS listener
    uv_poll_t poll{};
    uv_timer_t timer{};
    uv_async_t wake{};
    std::shared_ptr<Mailbox> mailbox = std::make_shared<Mailbox>();
    int open_handles = 0;
    int in_flight = 0; // offloaded handlers not yet back
    bool closed = false;
    std::vector<std::weak_ptr<Pending>> offloads; // to resume them all on close
    // Every open connection, for sweep(); a uv timer runs it once a second.
    std::unordered_set<ConnectionContext*> connections;
    uv_timer_t sweeper{};
    // 101 answers queued, their handlers waiting for MHD to send the head; and the
    // connections handed over, revoked when the endpoint closes (MHD would close them).
    std::unordered_map<MHD_Connection*, UpgradeHandler> upgrades;
    std::unordered_set<UpgradedConnection*> upgraded;
    // TLS upgrades carried outside MHD (tls_tunnel.hh), revoked when the endpoint closes.
    std::vector<std::weak_ptr<TlsTunnel>> tunnels;

    // MHD_OPTION_NOTIFY_CONNECTION: makes and frees the connection's context.
    static void on_connection(void* cls, MHD_Connection* connection, void** socket_context,
                              MHD_ConnectionNotificationCode code) {
        auto* self = static_cast<Endpoint*>(cls);
        auto** ctx = reinterpret_cast<ConnectionContext**>(socket_context);
        if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
            self->upgrades.erase(connection); // the client left before its 101 went out
            self->connections.erase(*ctx);
            delete *ctx;
            *ctx = nullptr;
            return;
        }
        const MHD_ConnectionInfo* info =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        *ctx = new ConnectionContext{info ? peer_of_fd(info->connect_fd) : std::nullopt,
                                     {},
                                     info ? info->connect_fd : -1,
                                     false,
                                     Clock::now()};
        self->connections.insert(*ctx);
    }

    // libmicrohttpd's timeout is an idle timeout: any byte received restarts it, so a client
    // that sends its head a byte at a time (slowloris) would hold a connection for ever.
    // A head still incomplete after the idle timeout (counted from connect, or from the end
    // of the previous request) has its connection shut down; MHD then sees the end of the
    // stream and closes it. Bodies are left to MHD's idle timeout (a stalled body is cut).
    void sweep() {
        if (!server) return;
        auto limit = std::chrono::seconds(server->limits_.idle_timeout_seconds);
        auto now = Clock::now();
        bool cut = false;
        for (ConnectionContext* c : connections)
            if (!c->in_request && c->fd >= 0 && now - c->head_since > limit) {
                ::shutdown(c->fd, SHUT_RDWR);
                c->fd = -1; // once; MHD closes the socket itself
                cut = true;
            }
        if (cut) run();
    }
    static void on_sweep(uv_timer_t* h) { static_cast<Endpoint*>(h->data)->sweep(); }

    std::vector<MHD_Connection*> suspended_connections() {
        std::vector<MHD_Connection*> out;
        for (auto& w : offloads)
            if (auto p = w.lock(); p && p->suspended && !p->completed) {
                p->suspended = false;
                out.push_back(p->connection);
            }
        offloads.clear();
        return out;
    }

    static MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url,
                                 const char* method, const char* version, const char* upload_data,
                                 size_t* upload_data_size, void** con_cls) {
        auto* self = static_cast<Endpoint*>(cls);
        auto* holder = static_cast<std::shared_ptr<Pending>*>(*con_cls);
        if (!holder) {
            // First call: headers are complete, no body seen yet. Answers decided now (no
            // route, too large, refused by a stream handler) go out before any body is read.
            holder = new std::shared_ptr<Pending>(std::make_shared<Pending>());
            *con_cls = holder;
            (*holder)->connection = connection;
            (*holder)->endpoint = self;
            (*holder)->weak_self = *holder;
            return self->begin(connection, **holder, url, method, version);
        }
        Pending* pending = holder->get();
        // Resumed by close() while its handler still runs (or its Reply is still to come).
        // A tunnel's connection resumes when the tunnel is done: MHD_NO closes it.
        if (pending->self || pending->awaiting || pending->tunneled) return MHD_NO;
        if (pending->offloaded) { // resumed: the worker's answer is ready
            Response r = std::move(*pending->offloaded);
            pending->offloaded.reset();
            return self->finish(connection, *pending, r);
        }
        if (*upload_data_size != 0) {
            bool ok = self->body(*pending, std::string_view(upload_data, *upload_data_size));
            *upload_data_size = 0;
            return ok ? MHD_YES : MHD_NO;
        }
        if (pending->route.blocking && !pending->failed) return self->offload(*holder);
        if (pending->route.async && !pending->failed) return self->start_async(*holder);
        return self->finish(connection, *pending, self->end(*pending));
    }

    // Runs a blocking route's handler (or a stream route's finish()) on the thread pool; the
    // connection waits suspended and the loop goes on serving everyone else.
    MHD_Result offload(const std::shared_ptr<Pending>& p) {
        p->self = p;
        p->work.data = p.get();
        p->suspended = true;
        p->handler_started = Clock::now();
        MHD_suspend_connection(p->connection);
        ++in_flight;
        std::erase_if(offloads, [](const std::weak_ptr<Pending>& w) { return w.expired(); });
        offloads.push_back(p);
        int rc = uv_queue_work(
            server->loop_, &p->work,
            [](uv_work_t* w) {
                auto* p = static_cast<Pending*>(w->data);
                p->offloaded = end(*p);
            },
            [](uv_work_t* w, int status) {
                auto* p = static_cast<Pending*>(w->data);
                std::shared_ptr<Pending> keep = std::move(p->self);
                auto* ep = p->endpoint;
                --ep->in_flight;
                if (status != 0 || !p->offloaded)
                    p->offloaded = Response::error(503, "unavailable", "the server is stopping");
                if (p->suspended && ep->mhd && !p->completed) {
                    p->suspended = false;
                    MHD_resume_connection(p->connection);
                    ep->run();
                }
                ep->maybe_delete();
            });
        if (rc != 0) {
            --in_flight;
            p->self.reset();
            p->suspended = false;
            MHD_resume_connection(p->connection);
            p->offloaded = Response::error(503, "unavailable", "cannot queue the request");
        }
        return MHD_YES;
    }

    // Runs an async route's handler on the loop; the connection waits suspended until its
    // Reply comes back through the mailbox (on_wake).
    MHD_Result start_async(const std::shared_ptr<Pending>& p) {
        p->suspended = true;
        p->awaiting = true;
        p->handler_started = Clock::now();
        MHD_suspend_connection(p->connection);
        std::erase_if(offloads, [](const std::weak_ptr<Pending>& w) { return w.expired(); });
        offloads.push_back(p);
        http::Reply reply([mb = mailbox, p](Response r) {
            if (std::this_thread::get_id() == mb->loop_thread) {
                // `open` and `endpoint` change only on this thread.
                if (mb->open) mb->endpoint->deliver(p, std::move(r));
                return;
            }
            std::lock_guard lock(mb->mu);
            if (!mb->open) return; // the endpoint closed: its connections are gone
            mb->replies.emplace_back(p, std::move(r));
            uv_async_send(mb->wake);
        });
        http::start_async(*p->route.async, p->request, reply);
        return MHD_YES;
    }

    static void on_wake(uv_async_t* h) {
        auto* self = static_cast<Endpoint*>(h->data);
        std::vector<std::pair<std::shared_ptr<Pending>, Response>> replies;
        {
            std::lock_guard lock(self->mailbox->mu);
            replies.swap(self->mailbox->replies);
        }
        // One MHD_run for the whole batch.
        const bool was = self->in_run;
        self->in_run = true;
        for (auto& [p, r] : replies)
            self->deliver(p, std::move(r));
        self->in_run = was;
        if (!was && self->run_again) self->run();
    }

    // An async route's answer, on the loop: its connection resumes and MHD runs to send it
    // (after the current MHD_run when the Reply came from inside one).
    void deliver(const std::shared_ptr<Pending>& p, Response r) {
        if (!p->awaiting) return;
        p->awaiting = false;
        if (!p->suspended || !mhd || p->completed) return;
        if (tls && r.upgrade && take_over_tls(*p, r)) return;
        p->offloaded = std::move(r);
        resume(*p);
    }
    // MHD goes on with a suspended connection: now, or after the MHD_run under way.
    void resume(Pending& p) {
        p.suspended = false;
        MHD_resume_connection(p.connection);
        if (in_run)
            run_again = true;
        else
            run();
    }

    MHD_Result begin(MHD_Connection* connection, Pending& p, const char* url, const char* method,
                     const char* version) {
        Request& req = p.request;
        req.method = method;
        req.path = url;
        req.version = version;
        MHD_get_connection_values(connection, MHD_HEADER_KIND, collect, &req.headers);
        MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, collect_query, &req.query);
        if (const ConnectionContext* ctx = context_of(connection)) {
            req.peer = ctx->peer;
            req.target = ctx->target;
        }
        if (!req.peer) req.remote_address = client_address(connection);
        req.tls = tls;
        if (ConnectionContext* ctx = context_of(connection)) ctx->in_request = true;
        // MHD's pool also holds the body read buffer (see serve()), so the header limit is
        // enforced here: request line plus "name: value\r\n" for every header.
        std::size_t head = req.method.size() + req.path.size() + req.version.size() + 4;
        for (const auto& [k, v] : req.headers)
            head += k.size() + v.size() + 4;
        if (head > server->limits_.max_header_bytes)
            return finish(connection, p,
                          Response::error(431, "headers_too_large",
                                          "request line and headers exceed the limit"));
        // Ambiguous framing or a malformed head: answered before any route or body, and the
        // connection closes (head_check.hh).
        if (auto bad = check_head(req)) return finish(connection, p, *bad);
        p.route = server->router_.resolve(req);
        if (p.route.error) return finish(connection, p, *p.route.error);
        p.limit = p.route.stream && p.route.stream_max_body ? p.route.stream_max_body
                                                            : server->limits_.max_body_bytes;
        if (auto cl = req.header("Content-Length")) {
            try {
                p.declared = std::stoull(std::string(*cl));
                if (p.declared > p.limit) return finish(connection, p, too_large());
            } catch (const std::exception&) {
                // MHD itself rejects malformed Content-Length with 400 before we get here.
            }
        }
        if (p.route.stream) {
            std::optional<Response> refused;
            try {
                p.sink = (*p.route.stream)(req);
            } catch (const Error& e) {
                refused = e.response();
            } catch (const std::exception& e) {
                refused = Response::error(500, "internal", e.what());
            }
            if (refused) return finish(connection, p, *refused);
        }
        return MHD_YES;
    }

    // Returns false to drop the connection (an over-limit body that keeps coming).
    bool body(Pending& p, std::string_view chunk) {
        if (p.failed) {
            // MHD accepts a response only before or after the body, so the rest is read and
            // dropped, so the client gets the answer (a disk that filled mid-upload: 507). A
            // body of known length, already checked against the limit, is read to its end;
            // otherwise up to kMaxDiscardBytes, past which the connection closes unanswered.
            p.discarded += chunk.size();
            return p.discarded <= kMaxDiscardBytes || p.received + p.discarded <= p.declared;
        }
        p.received += chunk.size();
        if (p.received > p.limit) {
            p.failed = too_large();
            p.sink.reset(); // aborts a partial upload
            p.request.body.clear();
            p.request.body.shrink_to_fit();
            return true;
        }
        if (!p.sink) {
            p.request.body.append(chunk);
            return true;
        }
        try {
            p.sink->data(chunk);
        } catch (const Error& e) {
            p.failed = e.response();
            p.sink.reset();
        } catch (const std::exception& e) {
            p.failed = Response::error(500, "internal", e.what());
            p.sink.reset();
        }
        return true;
    }

    static Response end(Pending& p) {
        if (p.failed) return std::move(*p.failed);
        if (p.sink) {
            Response r = guarded([&] { return p.sink->finish(); });
            p.sink.reset();
            return r;
        }
        return guarded([&] { return (*p.route.handler)(p.request); });
    }

    static Response too_large() {
        return Response::error(413, "payload_too_large", "request body exceeds the limit");
    }

    MHD_Result finish(MHD_Connection* connection, Pending& pending, const Response& response) {
        if (tls && response.upgrade) {
            // From inside MHD's callback: suspended first, so that MHD leaves the session
            // alone from now on (see take_over_tls).
            MHD_suspend_connection(connection);
            pending.suspended = true;
            std::erase_if(offloads, [](const std::weak_ptr<Pending>& w) { return w.expired(); });
            offloads.push_back(pending.weak_self);
            if (take_over_tls(pending, response)) return MHD_YES;
            pending.suspended = false;
            MHD_resume_connection(connection);
            return send(connection, Response::error(500, "internal", "cannot carry the upgrade"));
        }
        MHD_Result rc =
            response.upgrade ? send_upgrade(connection, response) : send(connection, response);
        if (server->observer_) {
            double seconds = std::chrono::duration<double>(Clock::now() - pending.started).count();
            bool bodyless = pending.request.method == "HEAD" || response.status == 304 ||
                            response.status == 204 || response.status < 200;
            server->observer_(Exchange{
                pending.request,
                pending.route.pattern ? *pending.route.pattern : std::string_view(),
                response.status, bodyless ? 0 : response.body_size(), seconds, pending.received});
        }
        return rc;
    }

    MHD_Result send_upgrade(MHD_Connection* connection, const Response& response);
    bool take_over_tls(Pending& pending, const Response& response);
    void observe(const Pending& pending, const Response& response) {
        if (!server->observer_) return;
        double seconds = std::chrono::duration<double>(Clock::now() - pending.started).count();
        server->observer_(Exchange{
            pending.request, pending.route.pattern ? *pending.route.pattern : std::string_view(),
            response.status, 0, seconds, pending.received});
    }
    static void on_upgraded(void* cls, MHD_Connection* connection, void*, const char* extra,
                            size_t extra_size, MHD_socket sock, MHD_UpgradeResponseHandle* urh);

    static void on_completed(void*, MHD_Connection* connection, void** con_cls,
                             MHD_RequestTerminationCode) {
        if (ConnectionContext* ctx = context_of(connection)) {
            ctx->in_request = false; // the next request's head is awaited from now
            ctx->head_since = Clock::now();
        }
        auto* holder = static_cast<std::shared_ptr<Pending>*>(*con_cls);
        if (holder) (*holder)->completed = true;
        delete holder; // a worker still running keeps its own reference
        *con_cls = nullptr;
    }

    // MHD is level-driven from its own epoll fd: run it, then ask when it needs us again.
    bool in_run = false, run_again = false;
    void run() {
        in_run = true;
        do {
            run_again = false;
            MHD_run(mhd);
        } while (run_again);
        in_run = false;
        MHD_UNSIGNED_LONG_LONG ms = 0;
        if (MHD_get_timeout(mhd, &ms) == MHD_YES)
            uv_timer_start(&timer, on_timer, ms, 0);
        else
            uv_timer_stop(&timer);
    }
    static void on_poll(uv_poll_t* h, int, int) { static_cast<Endpoint*>(h->data)->run(); }
    static void on_timer(uv_timer_t* h) { static_cast<Endpoint*>(h->data)->run(); }
    static void on_closed(uv_handle_t* h) {
        auto* self = static_cast<Endpoint*>(h->data);
        --self->open_handles;
        self->maybe_delete();
    }
    // Freed once libuv has closed both handles and no offloaded handler is still running.
    void maybe_delete() {
        if (closed && open_handles == 0 && in_flight == 0) delete this;
    }

    void close() {
        uv_poll_stop(&poll);
        uv_timer_stop(&timer);
        uv_timer_stop(&sweeper);
        revoke_upgraded();
        for (auto& w : tunnels)
            if (auto t = w.lock()) t->revoke();
        tunnels.clear();
        // MHD cannot stop with suspended connections: resume them, it then closes them all.
        for (MHD_Connection* c : suspended_connections())
            MHD_resume_connection(c);
        MHD_stop_daemon(mhd); // closes the listening socket and every connection
        mhd = nullptr;
        server = nullptr; // the Server may go before offloaded handlers come back
        closed = true;
        {
            std::lock_guard lock(mailbox->mu);
            mailbox->open = false; // Replies from now on are dropped, not sent to `wake`
            mailbox->replies.clear();
        }
        uv_close(reinterpret_cast<uv_handle_t*>(&poll), on_closed);
        uv_close(reinterpret_cast<uv_handle_t*>(&timer), on_closed);
        uv_close(reinterpret_cast<uv_handle_t*>(&wake), on_closed);
        uv_close(reinterpret_cast<uv_handle_t*>(&sweeper), on_closed);
    }
    void revoke_upgraded();
};

struct UpgradedConnection : Upgraded {
    Server::Endpoint* endpoint;
    MHD_UpgradeResponseHandle* urh;
    int sock;
    std::string early;
    std::function<void()> revoked;
    bool open = true;

    UpgradedConnection(Server::Endpoint* ep, MHD_UpgradeResponseHandle* h, int fd, std::string e)
        : endpoint(ep), urh(h), sock(fd), early(std::move(e)) {
        endpoint->upgraded.insert(this);
    }
    ~UpgradedConnection() override {
        if (!open) return;
        endpoint->upgraded.erase(this);
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        // MHD closes the socket in its next run: soon, not from inside the owner's callback.
        if (endpoint->mhd) uv_timer_start(&endpoint->timer, Server::Endpoint::on_timer, 0, 0);
    }
    int fd() const override { return sock; }
    std::string take_early_bytes() override { return std::move(early); }
    void on_revoked(std::function<void()> f) override { revoked = std::move(f); }
    // The endpoint stops: MHD marks the socket closed (closing it later, in stop), then the
    // owner stops watching it. `this` may be gone once the callback returns.
    void revoke() {
        open = false;
        auto f = std::move(revoked);
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        if (f) f();
    }
};

MHD_Result Server::Endpoint::send_upgrade(MHD_Connection* connection, const Response& response) {
    MHD_Response* r = MHD_create_response_for_upgrade(&Endpoint::on_upgraded, this);
    if (!r) return MHD_NO;
    for (const auto& [k, v] : response.headers)
        MHD_add_response_header(r, k.c_str(), v.c_str());
    MHD_Result rc = MHD_queue_response(connection, 101, r);
    MHD_destroy_response(r);
    if (rc == MHD_YES) upgrades[connection] = response.upgrade;
    return rc;
}

void Server::Endpoint::on_upgraded(void* cls, MHD_Connection* connection, void*, const char* extra,
                                   size_t extra_size, MHD_socket sock,
                                   MHD_UpgradeResponseHandle* urh) {
    auto* self = static_cast<Endpoint*>(cls);
    auto it = self->upgrades.find(connection);
    if (ConnectionContext* ctx = context_of(connection))
        ctx->fd = -1; // no longer HTTP: sweep() must not cut it
    if (it == self->upgrades.end()) {
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        return;
    }
    UpgradeHandler handler = std::move(it->second);
    self->upgrades.erase(it);
    auto up = std::make_unique<UpgradedConnection>(self, urh, sock,
                                                   std::string(extra ? extra : "", extra_size));
    try {
        handler(std::move(up));
    } catch (const std::exception&) {
        // the handler's Upgraded, if it was not kept, closed the connection
    }
}

void Server::Endpoint::revoke_upgraded() {
    upgrades.clear();
    std::vector<UpgradedConnection*> live(upgraded.begin(), upgraded.end());
    upgraded.clear();
    for (UpgradedConnection* u : live)
        u->revoke();
}

// libmicrohttpd 0.9.75 carries upgraded TLS connections through 4-byte buffers (see
// tls_tunnel.hh): the connection stays suspended in MHD, which then leaves its GnuTLS
// session alone, and a TlsTunnel sends the 101 and carries the bytes both ways. When the
// tunnel is done the connection resumes and on_request closes it (MHD_NO).
bool Server::Endpoint::take_over_tls(Pending& pending, const Response& response) {
    MHD_Connection* connection = pending.connection;
    const MHD_ConnectionInfo* session =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    const MHD_ConnectionInfo* fd =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!session || !session->tls_session || !fd) return false;
    std::string head = "HTTP/1.1 101 Switching Protocols\r\n";
    for (const auto& [k, v] : response.headers) {
        if (!is_token(k) || !no_line_break(v)) continue; // never split the head
        if (strcasecmp(k.c_str(), "content-length") == 0 ||
            strcasecmp(k.c_str(), "transfer-encoding") == 0 || strcasecmp(k.c_str(), "date") == 0)
            continue;
        head += k + ": " + v + "\r\n";
    }
    head += "\r\n";
    std::weak_ptr<Pending> weak = pending.weak_self;
    auto tunnel = TlsTunnel::start(server->loop_, session->tls_session, fd->connect_fd,
                                   std::move(head), [this, weak] {
                                       auto p = weak.lock();
                                       if (!p || !p->suspended || !mhd || p->completed) return;
                                       resume(*p);
                                   });
    if (!tunnel) return false;
    pending.tunneled = true;
    if (ConnectionContext* ctx = context_of(connection)) ctx->fd = -1; // not HTTP: never swept
    std::erase_if(tunnels, [](const std::weak_ptr<TlsTunnel>& w) { return w.expired(); });
    tunnels.push_back(tunnel);
    observe(pending, response);
    UpgradeHandler handler = response.upgrade;
    try {
        handler(tunnel->take_upgraded());
    } catch (const std::exception&) {
        // the handler's Upgraded, if it was not kept, closed its end: the tunnel finishes
    }
    return true;
}

Server::Server(uv_loop_t* loop, const Router& router, Limits limits)
    : loop_(loop), router_(router), limits_(limits) {}

Server::~Server() {
    stop();
}

void Server::serve(int listen_fd) {
    start(listen_fd, nullptr);
}

void Server::serve_tls(int listen_fd, const std::string& priorities) {
    if (!MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK2)) {
        close(listen_fd);
        throw std::runtime_error("this libmicrohttpd cannot serve TLS (no GnuTLS "
                                 "certificate callback)");
    }
    start(listen_fd, &priorities);
}

void Server::start(int listen_fd, const std::string* tls_priorities) {
    auto ep = std::make_unique<Endpoint>();
    ep->server = this;
    ep->tls = tls_priorities != nullptr;
    // The options every listener has, then those of TLS (MHD_start_daemon is variadic).
    auto start_mhd = [&](unsigned flags, auto... more) {
        return MHD_start_daemon(
            flags | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE, 0, nullptr,
            nullptr, &Endpoint::on_request, ep.get(), MHD_OPTION_LISTEN_SOCKET, listen_fd,
            MHD_OPTION_CONNECTION_LIMIT, static_cast<unsigned>(limits_.connection_limit),
            MHD_OPTION_CONNECTION_TIMEOUT, static_cast<unsigned>(limits_.idle_timeout_seconds),
            MHD_OPTION_CONNECTION_MEMORY_LIMIT,
            static_cast<size_t>(limits_.max_header_bytes + limits_.body_buffer_bytes),
            MHD_OPTION_CONNECTION_MEMORY_INCREMENT, limits_.body_buffer_bytes / 2,
            MHD_OPTION_NOTIFY_COMPLETED, &Endpoint::on_completed, nullptr,
            MHD_OPTION_NOTIFY_CONNECTION, &Endpoint::on_connection, ep.get(),
            MHD_OPTION_URI_LOG_CALLBACK, &on_uri, nullptr, more..., MHD_OPTION_END);
    };
    if (tls_priorities)
        ep->mhd =
            start_mhd(MHD_USE_TLS, MHD_OPTION_HTTPS_CERT_CALLBACK2, tls_certificate_callback(),
                      MHD_OPTION_HTTPS_PRIORITIES, tls_priorities->c_str());
    else
        ep->mhd = start_mhd(0);
    if (!ep->mhd)
        throw std::runtime_error("libmicrohttpd cannot serve on fd " + std::to_string(listen_fd) +
                                 (ep->tls ? " with TLS" : ""));
    const MHD_DaemonInfo* info = MHD_get_daemon_info(ep->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info) {
        MHD_stop_daemon(ep->mhd);
        throw std::runtime_error("libmicrohttpd has no epoll fd");
    }
    uv_poll_init(loop_, &ep->poll, info->epoll_fd);
    uv_timer_init(loop_, &ep->timer);
    uv_async_init(loop_, &ep->wake, &Endpoint::on_wake);
    ep->poll.data = ep.get();
    ep->timer.data = ep.get();
    ep->wake.data = ep.get();
    ep->mailbox->wake = &ep->wake;
    ep->mailbox->loop_thread = std::this_thread::get_id(); // serve() runs on the loop's thread
    ep->mailbox->endpoint = ep.get();
    uv_timer_init(loop_, &ep->sweeper);
    ep->sweeper.data = ep.get();
    ep->open_handles = 4;
    uv_poll_start(&ep->poll, UV_READABLE, &Endpoint::on_poll);
    uv_timer_start(&ep->sweeper, &Endpoint::on_sweep, 1000, 1000);
    endpoints_.push_back(std::move(ep));
}

void Server::set_max_body_bytes(std::size_t bytes) {
    limits_.max_body_bytes = bytes;
}
void Server::set_observer(RequestObserver observer) {
    observer_ = std::move(observer);
}

void Server::stop() {
    // Endpoints free themselves once libuv has closed their handles.
    for (auto& ep : endpoints_)
        ep.release()->close();
    endpoints_.clear();
}

} // namespace strata::http
