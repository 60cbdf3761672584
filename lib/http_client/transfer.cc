#include "http_client/transfer.hh"

#include "http/chars.hh"
#include "http/ows.hh"
#include "strata_build_config.h"

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <mutex>
#include <sys/stat.h>

namespace strata::http_client::detail {

namespace {

using http::is_token;

// A header line as curl hands it over: with its CRLF.
std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return http::trim_ows(s);
}

template <class T>
void setopt(CURL* h, CURLoption opt, T value) {
    if (CURLcode rc = curl_easy_setopt(h, opt, value); rc != CURLE_OK) {
        throw Error(ErrorKind::internal,
                    fmt::format("curl_easy_setopt({}): {}", int(opt), curl_easy_strerror(rc)));
    }
}

long millis(std::chrono::milliseconds ms) {
    return ms.count() > 0 ? long(ms.count()) : 0L;
}

} // namespace

void global_init() {
    static std::once_flag once;
    static CURLcode rc = CURLE_OK;
    std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
    if (rc != CURLE_OK) {
        throw Error(ErrorKind::internal,
                    fmt::format("curl_global_init: {}", curl_easy_strerror(rc)));
    }
}

EasyPtr new_easy() {
    global_init();
    EasyPtr h(curl_easy_init());
    if (!h) throw Error(ErrorKind::internal, "curl_easy_init failed");
    return h;
}

void validate(const Request& r) {
    auto bad = [](std::string what) { return Error(ErrorKind::invalid_argument, what); };
    if (!is_token(r.method)) throw bad(fmt::format("invalid HTTP method \"{}\"", r.method));
    if (!r.path.starts_with('/')) {
        throw bad(fmt::format("request path \"{}\" must start with /", r.path));
    }
    for (unsigned char c : r.path) {
        if (c <= 0x20 || c >= 0x7f) {
            throw bad(fmt::format("request path \"{}\" has spaces or non-ASCII bytes; "
                                  "percent-encode them",
                                  r.path));
        }
    }
    for (const auto& [name, value] : r.headers) {
        if (!is_token(name)) throw bad(fmt::format("invalid header name \"{}\"", name));
        if (!http::no_line_break(value)) {
            throw bad(fmt::format("header {} has a line break or NUL in its value", name));
        }
    }
    if (r.timeout && r.timeout->count() < 0) throw bad("negative request timeout");
}

Transfer::Transfer(EasyPtr easy, const Target& target, const Options& options, Request request)
    : easy_(std::move(easy)), target_(target), options_(options), request_(std::move(request)) {
    CURL* h = easy_.get();
    curl_easy_reset(h); // keeps the connection cache: that is what makes the pool work
    url_ = target_.url(request_.path);
    user_agent_ =
        options_.user_agent.empty() ? std::string("strata/" STRATA_VERSION) : options_.user_agent;

    setopt(h, CURLOPT_URL, url_.c_str());
    if (target_.is_unix()) setopt(h, CURLOPT_UNIX_SOCKET_PATH, target_.socket_path().c_str());
    setopt(h, CURLOPT_NOSIGNAL, 1L); // threads: no SIGALRM for timeouts
    setopt(h, CURLOPT_HTTP_VERSION, long(CURL_HTTP_VERSION_1_1));
    setopt(h, CURLOPT_CONNECTTIMEOUT_MS, millis(options_.connect_timeout));
    setopt(h, CURLOPT_TIMEOUT_MS, millis(request_.timeout.value_or(options_.timeout)));
    setopt(h, CURLOPT_USERAGENT, user_agent_.c_str());
    setopt(h, CURLOPT_ERRORBUFFER, error_buffer_);
    setopt(h, CURLOPT_BUFFERSIZE, 65536L); // fewer callbacks for big bodies (default 16 KiB)
    setopt(h, CURLOPT_WRITEFUNCTION, &Transfer::on_body);
    setopt(h, CURLOPT_WRITEDATA, static_cast<void*>(this));
    setopt(h, CURLOPT_HEADERFUNCTION, &Transfer::on_header);
    setopt(h, CURLOPT_HEADERDATA, static_cast<void*>(this));
    if (options_.max_response_bytes > 0 && !request_.body_sink) {
        // Rejects early when Content-Length is known; on_body enforces it otherwise.
        setopt(h, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(options_.max_response_bytes));
    }

    const std::string& m = request_.method;
    bool sends_body = !request_.body.empty() || m == "POST" || m == "PUT" || m == "PATCH";
    if (m == "HEAD") {
        setopt(h, CURLOPT_NOBODY, 1L);
    } else if (request_.body_source) {
        setopt(h, CURLOPT_UPLOAD, 1L);
        setopt(h, CURLOPT_INFILESIZE_LARGE, curl_off_t(request_.body_size));
        setopt(h, CURLOPT_READFUNCTION, &Transfer::on_read);
        setopt(h, CURLOPT_READDATA, static_cast<void*>(this));
        setopt(h, CURLOPT_CUSTOMREQUEST, m.c_str()); // UPLOAD alone would send PUT
    } else if (sends_body) {
        setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request_.body.size()));
        setopt(h, CURLOPT_POSTFIELDS, request_.body.data());
        if (m != "POST") setopt(h, CURLOPT_CUSTOMREQUEST, m.c_str());
    } else if (m == "GET") {
        setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        setopt(h, CURLOPT_CUSTOMREQUEST, m.c_str());
    }

    auto append = [&](const std::string& line) {
        curl_slist* l = curl_slist_append(header_list_, line.c_str());
        if (!l) throw Error(ErrorKind::internal, "curl_slist_append failed");
        header_list_ = l;
    };
    // No "Expect: 100-continue" round trip for big bodies: the peers are our own daemons.
    append("Expect:");
    for (const auto& [name, value] : request_.headers) {
        append(value.empty() ? name + ";" : name + ": " + value); // "Name;" sends an empty value
    }
    setopt(h, CURLOPT_HTTPHEADER, header_list_);
}

Transfer::~Transfer() {
    if (easy_) curl_easy_reset(easy_.get()); // the handle dies with us; drop pointers first
    curl_slist_free_all(header_list_);
}

EasyPtr Transfer::release() {
    curl_easy_reset(easy_.get());
    return std::move(easy_);
}

size_t Transfer::on_read(char* buffer, size_t size, size_t n, void* self_ptr) {
    auto* self = static_cast<Transfer*>(self_ptr);
    try {
        long got = self->request_.body_source(buffer, size * n);
        return got < 0 ? CURL_READFUNC_ABORT : static_cast<size_t>(got);
    } catch (...) {
        return CURL_READFUNC_ABORT;
    }
}

size_t Transfer::on_body(char* data, size_t size, size_t n, void* self_ptr) {
    auto* self = static_cast<Transfer*>(self_ptr);
    size_t bytes = size * n;
    if (self->request_.body_sink) {
        try {
            return self->request_.body_sink(std::string_view(data, bytes)) ? bytes : 0;
        } catch (...) {
            return 0;
        }
    }
    std::string& body = self->response_.body;
    std::size_t limit = self->options_.max_response_bytes;
    if (limit > 0 && body.size() + bytes > limit) {
        self->too_large_ = true;
        return 0; // makes libcurl fail with CURLE_WRITE_ERROR
    }
    try {
        body.append(data, bytes);
    } catch (const std::bad_alloc&) {
        self->out_of_memory_ = true;
        return 0;
    }
    return bytes;
}

size_t Transfer::on_header(char* data, size_t size, size_t n, void* self_ptr) {
    auto* self = static_cast<Transfer*>(self_ptr);
    size_t bytes = size * n;
    std::string_view line(data, bytes);
    try {
        if (line.starts_with("HTTP/")) {
            self->response_.headers.clear(); // a new status line: drop interim (1xx) headers
        } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
            self->response_.headers.add(std::string(trim(line.substr(0, colon))),
                                        std::string(trim(line.substr(colon + 1))));
        }
    } catch (const std::bad_alloc&) {
        self->out_of_memory_ = true;
        return 0;
    }
    return bytes;
}

Result Transfer::finish(CURLcode code) {
    Result result;
    if (code == CURLE_OK) {
        long status = 0;
        curl_easy_getinfo(easy_.get(), CURLINFO_RESPONSE_CODE, &status);
        response_.status = int(status);
        result.response = std::move(response_);
    } else {
        result.error = classify(code);
    }
    return result;
}

std::string Transfer::describe() const {
    return fmt::format("{} {} on {}", request_.method, request_.path, target_.spec());
}

Error Transfer::classify(CURLcode code) const {
    std::string where = describe();
    std::string detail = error_buffer_[0] ? error_buffer_ : curl_easy_strerror(code);
    long os_errno = 0;
    curl_easy_getinfo(easy_.get(), CURLINFO_OS_ERRNO, &os_errno);
    auto err = [&](ErrorKind kind, std::string_view what) {
        return Error(kind, fmt::format("{}: {}", where, what));
    };

    switch (code) {
    case CURLE_OPERATION_TIMEDOUT: {
        long sent = 0; // request bytes written: zero means we never got connected
        curl_easy_getinfo(easy_.get(), CURLINFO_REQUEST_SIZE, &sent);
        if (sent == 0) {
            return err(ErrorKind::timeout, fmt::format("connect timed out after {} ms",
                                                       options_.connect_timeout.count()));
        }
        return err(ErrorKind::timeout,
                   fmt::format("timed out after {} ms",
                               request_.timeout.value_or(options_.timeout).count()));
    }
    case CURLE_COULDNT_CONNECT: {
        int e = int(os_errno);
        if (e == 0 && target_.is_unix()) {
            // libcurl did not record errno: look at the socket file ourselves.
            struct stat st;
            if (::stat(target_.socket_path().c_str(), &st) != 0) e = errno;
        }
        switch (e) {
        case ENOENT:
        case ENOTDIR:
            return err(ErrorKind::not_found,
                       target_.is_unix()
                           ? fmt::format("socket {} does not exist", target_.socket_path())
                           : std::string("not found"));
        case ECONNREFUSED:
            return err(ErrorKind::refused, "connection refused");
        case EACCES:
        case EPERM:
            return err(ErrorKind::permission_denied, "permission denied");
        case ETIMEDOUT:
            return err(ErrorKind::timeout, "connect timed out");
        default:
            return err(ErrorKind::connect, detail);
        }
    }
    case CURLE_COULDNT_RESOLVE_HOST:
        return err(ErrorKind::resolve, detail);
    case CURLE_FILESIZE_EXCEEDED:
        return err(ErrorKind::too_large,
                   fmt::format("response body larger than {} bytes", options_.max_response_bytes));
    case CURLE_WRITE_ERROR:
        if (too_large_) {
            return err(ErrorKind::too_large, fmt::format("response body larger than {} bytes",
                                                         options_.max_response_bytes));
        }
        return err(ErrorKind::internal, out_of_memory_ ? "out of memory" : detail);
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return err(ErrorKind::transfer, detail);
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return err(ErrorKind::bad_response, detail);
    case CURLE_URL_MALFORMAT:
        return err(ErrorKind::invalid_argument, detail);
    default:
        return err(ErrorKind::internal, detail);
    }
}

} // namespace strata::http_client::detail
