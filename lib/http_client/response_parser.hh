// Incremental HTTP/1.1 response parser of AsyncClient: bytes go in as they arrive, the
// status, headers and body come out. It decides how the body is framed (RFC 9112 6.3) and
// whether the connection may carry another request; where a lax reading could let one
// response run into the next on a kept-alive connection it refuses instead: conflicting
// Content-Length values, bad chunk sizes, obs-fold, bare CR, a head over max_head bytes.
#pragma once

#include "http_client/message.hh"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace strata::http_client::detail {

class ResponseParser {
public:
    enum class State { head, body, done, error };
    // Receives body bytes (chunk framing removed); returns false to stop (State::error).
    using BodySink = std::function<bool(std::string_view)>;

    static constexpr std::size_t max_head = 64 * 1024;

    // Before each response. head_request: a HEAD has no body whatever the headers say.
    void reset(bool head_request);
    // Consumes bytes; returns how many. Fewer than given only when the response ended
    // (State::done: the rest belongs to nothing, the connection is not reused) or on error.
    std::size_t feed(std::string_view data, const BodySink& body);
    // The peer closed the connection: ends a body delimited by the close, else an error.
    void eof();

    State state() const { return state_; }
    bool started() const { return started_; } // any byte of a response arrived
    int status() const { return status_; }
    Headers& headers() { return headers_; }
    // Known once the head is parsed (Content-Length framing only).
    std::optional<std::uint64_t> content_length() const { return length_; }
    // The connection may carry the next request (HTTP/1.1 without "Connection: close", a
    // body framed by length or chunks).
    bool keep_alive() const { return keep_alive_; }
    const std::string& error() const { return error_; }

private:
    enum class Framing { none, length, chunked, until_close };
    enum class Chunk { size, data, data_end, trailer };
    bool fail(std::string why);
    bool parse_head(std::string_view head); // without the final empty line
    std::size_t feed_chunked(std::string_view data, const BodySink& body);

    State state_ = State::head;
    bool head_request_ = false;
    bool started_ = false;
    int status_ = 0;
    Headers headers_;
    std::string buffer_; // the head, or a chunk-size or trailer line, so far
    Framing framing_ = Framing::none;
    Chunk chunk_ = Chunk::size;
    std::optional<std::uint64_t> length_;
    std::uint64_t left_ = 0; // body or chunk bytes still to come
    bool keep_alive_ = false;
    std::string error_;
};

} // namespace strata::http_client::detail
