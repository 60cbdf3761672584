// Requests and responses as handlers see them, and the one error shape of every Strata API:
//   {"error":{"code":"not_found","message":"..."}}
#pragma once

#include "http/upgrade.hh"

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <utility>
#include <vector>

namespace strata::http {

// Case-insensitive header names, as HTTP wants: ASCII folding only (what strncasecmp does
// in the C locale, in the same order), inline, since every header lookup of every request
// runs it several times.
struct CaseLess {
    static constexpr unsigned char fold(unsigned char c) noexcept {
        return static_cast<unsigned char>(c - 'A') < 26u ? static_cast<unsigned char>(c | 0x20) : c;
    }
    bool operator()(std::string_view a, std::string_view b) const noexcept {
        std::size_t n = a.size() < b.size() ? a.size() : b.size();
        for (std::size_t i = 0; i < n; ++i) {
            unsigned char x = fold(static_cast<unsigned char>(a[i]));
            unsigned char y = fold(static_cast<unsigned char>(b[i]));
            if (x != y) return x < y;
        }
        return a.size() < b.size();
    }
    using is_transparent = void;
};

// Whether two header names (or tokens) are equal, ASCII case folded as by CaseLess.
constexpr bool equal_nocase(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (CaseLess::fold(static_cast<unsigned char>(a[i])) !=
            CaseLess::fold(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}
using Headers = std::multimap<std::string, std::string, CaseLess>;

// Who is on the other end of a unix socket (SO_PEERCRED).
struct PeerCredentials {
    pid_t pid;
    uid_t uid;
    gid_t gid;
};

struct Request {
    std::string method;
    std::string path;                              // decoded path, without the query
    std::multimap<std::string, std::string> query; // decoded query arguments
    std::string version;
    Headers headers;
    std::string body;
    std::map<std::string, std::string> params; // {name} segments of the matched route
    std::optional<PeerCredentials> peer;       // set for unix-socket connections
    std::string remote_address;                // TCP: the client's IP ("::1"); unix: empty
    std::string target; // the request-target as sent ("/a%20b?x=1"); may be empty (tests)
    bool tls = false;   // arrived on a TLS listener (Server::serve_tls)

    std::optional<std::string_view> header(std::string_view name) const;
    // Parses the body as JSON; throws http::Error 400 (bad_json) or 415 when not JSON.
    nlohmann::json json() const;
};

// A response body produced on demand (large content): the server asks for bytes from
// `offset` as the client takes them, so nothing is held in memory whole.
class BodyReader {
public:
    virtual ~BodyReader() = default;
    virtual std::uint64_t size() const = 0;
    // Fills up to buf.size() bytes at offset; returns how many (> 0 until the end), or
    // throws to abort the response (the connection is then closed).
    virtual std::size_t read(std::uint64_t offset, std::span<char> buf) = 0;
};

// A body sent straight from a file with sendfile(2). The server owns and closes fd.
struct FileBody {
    int fd = -1;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
};

// An open read-only file shared by responses (and caches of open files); closed with the
// last reference.
class OpenFile {
public:
    explicit OpenFile(int fd) noexcept : fd_(fd) {}
    ~OpenFile();
    OpenFile(const OpenFile&) = delete;
    OpenFile& operator=(const OpenFile&) = delete;
    int fd() const noexcept { return fd_; }

private:
    int fd_;
};

// One piece of a body made of pieces: literal bytes, or `length` bytes of `file` at `offset`.
struct BodyPiece {
    std::string literal;
    std::shared_ptr<const OpenFile> file; // null: the piece is `literal`
    std::uint64_t offset = 0;
    std::uint64_t length = 0;

    std::uint64_t size() const { return file ? length : literal.size(); }
};

struct Response {
    int status = 200;
    Headers headers;
    std::string body;                   // used when none of the three below is set
    std::shared_ptr<BodyReader> reader; // streamed body
    std::optional<FileBody> file;       // zero-copy body
    // A body of pieces in order (content spread over several files, multipart ranges): the
    // content server sends file pieces with sendfile(2), the general one reads them.
    std::vector<BodyPiece> pieces;
    bool has_pieces = false; // pieces is the body (it may be empty: a zero-length body)
    // With status 101: after the head the connection is handed over (upgrade.hh; the general
    // server only). Destroyed unused when the client leaves first.
    UpgradeHandler upgrade;

    // Bytes of the body, whatever its form.
    std::uint64_t body_size() const;

    static Response json(int status, const nlohmann::json& value);
    static Response text(int status, std::string body,
                         std::string content_type = "text/plain; charset=utf-8");
    static Response error(int status, std::string_view code, std::string_view message);
};

// Thrown by handlers (or helpers like Request::json) to answer with the error shape.
class Error : public std::runtime_error {
public:
    Error(int status, std::string code, const std::string& message)
        : std::runtime_error(message), status_(status), code_(std::move(code)) {}
    int status() const { return status_; }
    const std::string& code() const { return code_; }
    Response response() const { return Response::error(status_, code_, what()); }

private:
    int status_;
    std::string code_;
};

} // namespace strata::http
