// Incremental HTTP/1.1 request parsing for the content server (http_parser underneath):
// bytes in, whole requests (head and a small buffered body) out, one at a time, so
// pipelined requests are answered in order. Each head also passes http::check_head, the
// general server's smuggling checks, so both engines refuse the same requests.
// Independent of sockets, so it is unit tested and fuzzed on its own.
#pragma once

#include "http/message.hh"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace strata::http {

class RequestReader {
public:
    RequestReader(std::size_t max_header_bytes, std::size_t max_body_bytes);
    ~RequestReader();
    RequestReader(const RequestReader&) = delete;
    RequestReader& operator=(const RequestReader&) = delete;

    enum class State {
        need_more, // everything given was consumed; feed more
        complete,  // a request is ready: take() it, then feed() the rest
        error,     // malformed or over a limit: answer error_status() and close
    };

    // Parses from data and returns how many bytes were consumed: all of them unless a
    // request completed (the rest belongs to the next, pipelined one) or an error occurred.
    std::size_t feed(std::string_view data);
    State state() const noexcept { return state_; }

    // The complete request; the reader then waits for the next one.
    Request take();
    // Whether the connection may stay open after answering the taken request.
    bool keep_alive() const noexcept { return keep_alive_; }

    // For State::error: 400, 413, 431 or 501, and a sentence for the error body.
    int error_status() const noexcept { return error_status_; }
    const std::string& error_message() const noexcept { return error_message_; }
    // For State::error found by http::check_head (head_check.hh): its whole answer.
    const std::optional<Response>& rejection() const noexcept { return rejection_; }

    // The taken request asked for a protocol switch (Upgrade + Connection: upgrade): the
    // bytes after its head are not HTTP, so unless the answer is a 101 the connection closes.
    bool upgrade() const noexcept { return upgrade_; }
    // Once per request: the head asked for "Expect: 100-continue" and the body is still to
    // come, so the server sends an interim 100 before the client sends it.
    bool take_expect_continue() noexcept { return std::exchange(expect_continue_, false); }

    // Some bytes of a request have arrived and it is not complete (timeouts differ).
    bool mid_request() const noexcept { return started_; }

    void set_max_body_bytes(std::size_t bytes) noexcept { max_body_ = bytes; }

private:
    struct Parser; // http_parser and its callbacks
    friend struct Parser;
    void fail(int status, std::string message);
    bool commit_header();
    bool check_head();

    std::unique_ptr<Parser> parser_;
    std::size_t max_head_;
    std::size_t max_body_;
    State state_ = State::need_more;
    Request request_;
    std::string url_, field_, value_;
    bool in_value_ = false;
    bool head_done_ = false; // header fields from now on are trailers
    bool started_ = false;
    bool keep_alive_ = false;
    std::size_t head_bytes_ = 0;
    int error_status_ = 0;
    std::string error_message_;
    std::optional<Response> rejection_;
    bool upgrade_ = false;
    bool expect_continue_ = false;
};

} // namespace strata::http
