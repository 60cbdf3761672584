#include "http_client/response_parser.hh"

#include "http/chars.hh"
#include "http/ows.hh"

#include <algorithm>
#include <charconv>

namespace strata::http_client::detail {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [&](char x, char y) { return lower(x) == lower(y); });
}

// Calls f on each comma-separated, trimmed, non-empty element of a list header.
template <class F>
void each_element(std::string_view v, F f) {
    while (!v.empty()) {
        auto comma = v.find(',');
        auto item = http::trim_ows(v.substr(0, comma));
        if (!item.empty()) f(item);
        if (comma == v.npos) break;
        v.remove_prefix(comma + 1);
    }
}

// Every CR of the head is followed by LF and every LF preceded by CR. Checked as: each LF
// (found by memchr) has a CR before it, and there are as many CRs as LFs, so no CR is left
// over. A byte-by-byte loop over each head cost more than parsing it.
bool only_crlf_line_ends(std::string_view head) {
    std::size_t lf = 0;
    for (std::size_t at = head.find('\n'); at != head.npos; at = head.find('\n', at + 1)) {
        if (at == 0 || head[at - 1] != '\r') return false;
        ++lf;
    }
    return static_cast<std::size_t>(std::count(head.begin(), head.end(), '\r')) == lf;
}

} // namespace

void ResponseParser::reset(bool head_request) {
    state_ = State::head;
    head_request_ = head_request;
    started_ = false;
    status_ = 0;
    headers_.clear();
    buffer_.clear();
    framing_ = Framing::none;
    chunk_ = Chunk::size;
    length_.reset();
    left_ = 0;
    keep_alive_ = false;
    error_.clear();
}

bool ResponseParser::fail(std::string why) {
    state_ = State::error;
    keep_alive_ = false;
    error_ = std::move(why);
    return false;
}

bool ResponseParser::parse_head(std::string_view head) {
    auto eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    // HTTP/1.1 200 OK (the reason may be empty, even without its space)
    if (line.size() < 12 || !line.starts_with("HTTP/1.") || (line[7] != '0' && line[7] != '1') ||
        line[8] != ' ' || line[9] < '1' || line[9] > '5' || line[10] < '0' || line[10] > '9' ||
        line[11] < '0' || line[11] > '9' || (line.size() > 12 && line[12] != ' '))
        return fail("malformed status line");
    const bool http11 = line[7] == '1';
    status_ = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    headers_.clear();
    headers_.reserve(16); // a typical head without regrowing (counting lines costs more)
    std::string_view rest = eol == head.npos ? std::string_view() : head.substr(eol + 2);
    bool close = false, keep = false, chunked = false, other_coding = false;
    bool transfer_encoding = false;
    length_.reset();
    while (!rest.empty()) {
        auto end = rest.find("\r\n");
        std::string_view field = rest.substr(0, end);
        rest = end == rest.npos ? std::string_view() : rest.substr(end + 2);
        if (field.empty()) return fail("empty header line");
        if (field.front() == ' ' || field.front() == '\t')
            return fail("obsolete line folding in a header");
        auto colon = field.find(':');
        if (colon == field.npos || colon == 0) return fail("header line without a name");
        std::string_view name = field.substr(0, colon);
        if (!http::is_token(name)) return fail("invalid header name");
        std::string_view value = http::trim_ows(field.substr(colon + 1));
        if (!http::field_value_chars(value)) return fail("control character in a header");
        if (iequals(name, "content-length")) {
            bool bad = false;
            each_element(value, [&](std::string_view v) {
                std::uint64_t n = 0;
                auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
                if (ec != std::errc() || p != v.data() + v.size() || (length_ && *length_ != n))
                    bad = true;
                length_ = n;
            });
            if (bad || !length_) return fail("invalid or conflicting Content-Length");
        } else if (iequals(name, "transfer-encoding")) {
            transfer_encoding = true;
            each_element(value, [&](std::string_view v) {
                // Only the last coding frames the body.
                chunked = iequals(v, "chunked");
                other_coding = other_coding || !chunked;
            });
        } else if (iequals(name, "connection")) {
            each_element(value, [&](std::string_view v) {
                if (iequals(v, "close")) close = true;
                if (iequals(v, "keep-alive")) keep = true;
            });
        }
        headers_.add(std::string(name), std::string(value));
    }
    keep_alive_ = http11 ? !close : keep && !close;
    if (status_ < 200) {
        if (status_ == 101) { // switched protocols: the connection is no longer HTTP
            keep_alive_ = false;
            framing_ = Framing::none;
        }
        return true;
    }
    if (head_request_ || status_ == 204 || status_ == 304) {
        framing_ = Framing::none;
        length_.reset();
    } else if (transfer_encoding) {
        // Both framings at once is how responses get smuggled: read it, do not reuse.
        if (length_) keep_alive_ = false;
        length_.reset();
        framing_ = chunked ? Framing::chunked : Framing::until_close;
        if (!chunked) keep_alive_ = false;
    } else if (length_) {
        framing_ = Framing::length;
        left_ = *length_;
    } else {
        framing_ = Framing::until_close;
        keep_alive_ = false;
    }
    return true;
}

std::size_t ResponseParser::feed(std::string_view data, const BodySink& body) {
    std::size_t used = 0;
    while (used < data.size() && state_ != State::done && state_ != State::error) {
        std::string_view in = data.substr(used);
        if (state_ == State::head) {
            started_ = true;
            const std::size_t before = buffer_.size();
            const std::size_t take = std::min(in.size(), max_head + 4 - before);
            std::string_view head;
            // A head that arrives whole (almost every one) is read where it is: copying it
            // and the body bytes after it into buffer_ first cost a copy per response.
            if (auto end = before == 0 ? in.substr(0, take).find("\r\n\r\n") : in.npos;
                end != in.npos) {
                used += end + 4;
                head = in.substr(0, end);
            } else {
                // Search only what is new, with three bytes of overlap for a split "\r\n\r\n".
                const std::size_t from = before >= 3 ? before - 3 : 0;
                buffer_.append(in.data(), take);
                auto found = buffer_.find("\r\n\r\n", from);
                if (found == std::string::npos) {
                    if (buffer_.size() >= max_head) {
                        fail("response head over 64 KiB");
                        return used + take;
                    }
                    if (auto cr = buffer_.find('\r', from); cr != std::string::npos &&
                                                            cr + 1 < buffer_.size() &&
                                                            buffer_[cr + 1] != '\n') {
                        fail("bare CR in the response head");
                        return used + take;
                    }
                    used += take;
                    continue;
                }
                used += found + 4 - before;
                head = std::string_view(buffer_.data(), found);
            }
            if (!only_crlf_line_ends(head)) {
                fail("bare CR or LF in the response head");
                return used;
            }
            if (!parse_head(head)) return used;
            buffer_.clear();
            if (status_ < 200 && status_ != 101) continue; // interim: the final head follows
            if (framing_ == Framing::none || (framing_ == Framing::length && left_ == 0)) {
                state_ = State::done;
                return used;
            }
            state_ = State::body;
            chunk_ = Chunk::size;
            continue;
        }
        // State::body
        if (framing_ == Framing::chunked) {
            used += feed_chunked(in, body);
            continue;
        }
        std::size_t n = in.size();
        if (framing_ == Framing::length)
            n = static_cast<std::size_t>(std::min<std::uint64_t>(n, left_));
        if (!body(in.substr(0, n))) {
            fail("the body was refused");
            return used + n;
        }
        used += n;
        if (framing_ == Framing::length && (left_ -= n) == 0) state_ = State::done;
    }
    return used;
}

std::size_t ResponseParser::feed_chunked(std::string_view in, const BodySink& body) {
    std::size_t used = 0;
    while (used < in.size() && state_ == State::body) {
        std::string_view rest = in.substr(used);
        if (chunk_ == Chunk::data) {
            auto n = static_cast<std::size_t>(std::min<std::uint64_t>(rest.size(), left_));
            if (!body(rest.substr(0, n))) {
                fail("the body was refused");
                return used + n;
            }
            used += n;
            if ((left_ -= n) == 0) chunk_ = Chunk::data_end;
            continue;
        }
        // A line: the chunk size, the CRLF after a chunk's data, or a trailer field.
        auto lf = rest.find('\n');
        std::size_t take = lf == rest.npos ? rest.size() : lf + 1;
        if (buffer_.size() + take > 4096) {
            fail("chunk line over 4 KiB");
            return used + take;
        }
        buffer_.append(rest.data(), take);
        used += take;
        if (lf == rest.npos) break;
        if (buffer_.size() < 2 || buffer_[buffer_.size() - 2] != '\r') {
            fail("chunk line without CRLF");
            return used;
        }
        std::string_view line(buffer_.data(), buffer_.size() - 2);
        if (chunk_ == Chunk::data_end) {
            if (!line.empty()) {
                fail("chunk data longer than its size");
                return used;
            }
            chunk_ = Chunk::size;
        } else if (chunk_ == Chunk::size) {
            std::string_view size = line.substr(0, line.find(';')); // extensions are ignored
            size = http::trim_ows(size);
            std::uint64_t n = 0;
            auto [p, ec] = std::from_chars(size.data(), size.data() + size.size(), n, 16);
            if (size.empty() || ec != std::errc() || p != size.data() + size.size()) {
                fail("invalid chunk size");
                return used;
            }
            left_ = n;
            chunk_ = n == 0 ? Chunk::trailer : Chunk::data;
        } else if (line.empty()) { // the end of the trailer section
            state_ = State::done;
        } // trailer fields are dropped: nothing here needs them
        buffer_.clear();
    }
    return used;
}

void ResponseParser::eof() {
    if (state_ == State::body && framing_ == Framing::until_close) {
        state_ = State::done;
        return;
    }
    if (state_ == State::head || state_ == State::body)
        fail(started_ ? "connection closed before the response was complete"
                      : "connection closed without a response");
}

} // namespace strata::http_client::detail
