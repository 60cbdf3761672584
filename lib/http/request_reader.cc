#include "http/request_reader.hh"

#include "http/chars.hh"
#include "http/head_check.hh"
#include "http/target.hh"

#include <http_parser.h>

namespace strata::http {

struct RequestReader::Parser {
    http_parser p{};
    http_parser_settings settings{};
    RequestReader* owner = nullptr;
    // For finding obs-folds (RFC 9112 5.2), which http_parser joins silently: where the
    // bytes of this feed() start, and whether those of the previous one ended at the start
    // of a line (after a LF, then only SP or HTAB).
    const char* data_begin = nullptr;
    bool prev_at_line_start = false;

    // A value piece is a folded continuation when only SP/HTAB stand between it and a LF.
    bool folded(const char* at) const {
        const char* q = at;
        while (q > data_begin && (q[-1] == ' ' || q[-1] == '\t'))
            --q;
        return q > data_begin ? q[-1] == '\n' : prev_at_line_start;
    }

    static RequestReader& of(http_parser* p) { return *static_cast<Parser*>(p->data)->owner; }

    // Every byte of the head counts against the header limit, whatever part it is in.
    static bool count(RequestReader& r, std::size_t n) {
        r.head_bytes_ += n;
        if (r.head_bytes_ <= r.max_head_) return true;
        r.fail(431, "request line and headers exceed the limit");
        return false;
    }

    Parser() {
        settings.on_message_begin = [](http_parser* p) {
            RequestReader& r = of(p);
            r.request_ = Request{};
            r.url_.clear();
            r.field_.clear();
            r.value_.clear();
            r.in_value_ = false;
            r.head_done_ = false;
            r.head_bytes_ = 0;
            r.started_ = true;
            r.upgrade_ = false;
            r.expect_continue_ = false;
            return 0;
        };
        settings.on_url = [](http_parser* p, const char* at, size_t n) {
            RequestReader& r = of(p);
            if (!count(r, n)) return -1;
            r.url_.append(at, n);
            return 0;
        };
        settings.on_header_field = [](http_parser* p, const char* at, size_t n) {
            RequestReader& r = of(p);
            // A field name may arrive in several calls: ": " and CRLF count once per field.
            bool new_field = r.in_value_ || r.field_.empty();
            if (!count(r, n + (new_field ? 4 : 0))) return -1;
            if (r.in_value_ && !r.commit_header()) return -1;
            r.field_.append(at, n);
            return 0;
        };
        settings.on_header_value = [](http_parser* p, const char* at, size_t n) {
            RequestReader& r = of(p);
            if (!count(r, n)) return -1;
            // A line starting with whitespace could hide a header from whoever reads the
            // head differently (a fold before "Transfer-Encoding"): refused, not joined.
            if (n > 0 && static_cast<Parser*>(p->data)->folded(at)) {
                r.fail(400, "obsolete line folding in a header");
                return -1;
            }
            r.value_.append(at, n);
            r.in_value_ = true;
            return 0;
        };
        settings.on_headers_complete = [](http_parser* p) {
            RequestReader& r = of(p);
            if (!r.field_.empty() && !r.commit_header()) return -1;
            r.head_done_ = true;
            r.request_.method = http_method_str(static_cast<http_method>(p->method));
            r.request_.version =
                "HTTP/" + std::to_string(p->http_major) + "." + std::to_string(p->http_minor);
            return r.check_head() ? 0 : -1;
        };
        settings.on_body = [](http_parser* p, const char* at, size_t n) {
            RequestReader& r = of(p);
            if (r.request_.body.size() + n > r.max_body_) {
                r.fail(413, "request body exceeds the limit");
                return -1;
            }
            r.request_.body.append(at, n);
            return 0;
        };
        settings.on_message_complete = [](http_parser* p) {
            RequestReader& r = of(p);
            if (!r.field_.empty() && !r.commit_header()) return -1; // the last trailer
            r.keep_alive_ = http_should_keep_alive(p) != 0;
            r.state_ = State::complete;
            r.started_ = false;
            http_parser_pause(p, 1); // one request at a time: the rest waits for take()
            return 0;
        };
    }
};

RequestReader::RequestReader(std::size_t max_header_bytes, std::size_t max_body_bytes)
    : parser_(std::make_unique<Parser>()), max_head_(max_header_bytes), max_body_(max_body_bytes) {
    http_parser_init(&parser_->p, HTTP_REQUEST);
    parser_->p.data = parser_.get();
    parser_->owner = this;
}

RequestReader::~RequestReader() = default;

void RequestReader::fail(int status, std::string message) {
    if (state_ == State::error) return; // the first reason wins
    state_ = State::error;
    error_status_ = status;
    error_message_ = std::move(message);
}

bool RequestReader::commit_header() {
    // RFC 9110 5.6.2 tokens: http_parser (built lenient) lets a space into a field name, and
    // "Content-Length : 5" read one way here and another way by a proxy is request smuggling
    // (RFC 9112 5.1: answer 400).
    bool ok = is_token(field_);
    if (!ok)
        fail(400, "malformed header field name");
    else if (!head_done_) // trailers come after the checks: they never become headers
        request_.headers.emplace(std::move(field_), std::move(value_));
    field_.clear();
    value_.clear();
    in_value_ = false;
    return ok;
}

// The checks once the head is complete, most fundamental first; false after fail().
bool RequestReader::check_head() {
    const http_parser& p = parser_->p;
    if (p.http_major != 1) {
        fail(505, "only HTTP/1.0 and HTTP/1.1 are served");
        return false;
    }
    // Before the target: CONNECT's is an authority ("host:443"), not a path.
    if (p.method == HTTP_CONNECT) {
        fail(501, "CONNECT is not served");
        return false;
    }
    upgrade_ = p.upgrade != 0;
    auto target = parse_target(url_);
    if (!target) {
        fail(400, "malformed request target");
        return false;
    }
    request_.path = std::move(target->path);
    request_.query = std::move(target->query);
    request_.target = url_;
    // The general server's checks (Host count included: RFC 9112 3.2), before the body
    // limit, as there.
    if (auto refused = http::check_head(request_)) {
        fail(refused->status, "refused by the head checks");
        rejection_ = std::move(refused);
        return false;
    }
    if ((p.flags & F_CONTENTLENGTH) && p.content_length > max_body_) {
        fail(413, "request body exceeds the limit");
        return false;
    }
    bool body_follows = (p.flags & F_CHUNKED) || ((p.flags & F_CONTENTLENGTH) && p.content_length);
    if (p.http_minor >= 1 && body_follows)
        if (auto expect = request_.header("Expect");
            expect && equal_nocase(*expect, "100-continue"))
            expect_continue_ = true;
    return true;
}

std::size_t RequestReader::feed(std::string_view data) {
    if (state_ != State::need_more || data.empty()) return 0;
    parser_->data_begin = data.data();
    std::size_t n = http_parser_execute(&parser_->p, &parser_->settings, data.data(), data.size());
    {
        std::string_view used = data.substr(0, n);
        std::size_t last = used.find_last_not_of(" \t");
        if (last != std::string_view::npos) parser_->prev_at_line_start = used[last] == '\n';
    }
    auto err = HTTP_PARSER_ERRNO(&parser_->p);
    if (state_ == State::complete || state_ == State::error) return n;
    if (err != HPE_OK) {
        if (err == HPE_HEADER_OVERFLOW)
            fail(431, "request line and headers exceed the limit");
        else
            fail(400, std::string("malformed request: ") + http_errno_description(err));
        return n;
    }
    // "GET /\r\n" is a whole HTTP/0.9 request, which http_parser would wait on as the start
    // of a 1.x head: refused at once, not left hanging.
    if (started_ && !head_done_ && parser_->p.http_major == 0 && parser_->p.http_minor == 9) {
        fail(400, "HTTP/0.9 requests are not served");
        return n;
    }
    return n;
}

Request RequestReader::take() {
    Request r = std::move(request_);
    request_ = Request{};
    if (state_ == State::complete) {
        state_ = State::need_more;
        http_parser_pause(&parser_->p, 0);
    }
    return r;
}

} // namespace strata::http
