// Unit tests of the gateway's filters and transforms: address lists, header rules, CORS and
// compression (what each admits, refuses and writes).
#include "address_list.hh"
#include "compression.hh"
#include "cors.hh"
#include "header_rules.hh"

#include <criterion/criterion.h>
#include <stdexcept>
#include <string>
#include <zlib.h>

using namespace strata;
using namespace strata::gatewayd;

namespace {

std::string refusal(auto parse, std::string_view text) {
    try {
        parse(text);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

std::string gunzip(const std::string& in) {
    z_stream z{};
    inflateInit2(&z, 15 + 16);
    std::string out(1 << 20, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    int rc = inflate(&z, Z_FINISH);
    out.resize(z.total_out);
    inflateEnd(&z);
    cr_assert_eq(rc, Z_STREAM_END);
    return out;
}

} // namespace

Test(address_list, v4_v6_and_mapped) {
    auto l = AddressList::parse("10.0.0.0/8,192.0.2.7,2001:db8::/32");
    cr_assert_eq(l.size(), 3u);
    cr_assert(l.contains(*parse_address("10.255.0.1")));
    cr_assert(l.contains(*parse_address("::ffff:10.1.1.1"))); // IPv4 on an IPv6 socket
    cr_assert(l.contains(*parse_address("192.0.2.7")));
    cr_assert_not(l.contains(*parse_address("192.0.2.8")));
    cr_assert(l.contains(*parse_address("2001:db8:ffff::1")));
    cr_assert_not(l.contains(*parse_address("2001:db9::1")));
    cr_assert_not(l.contains(*parse_address("11.0.0.0")));
    auto odd = AddressList::parse("10.128.0.0/9,0.0.0.0/0");
    cr_assert(odd.contains(*parse_address("1.2.3.4")));
    cr_assert_not(odd.contains(*parse_address("::1"))); // 0.0.0.0/0 is every IPv4, no more
    cr_assert(AddressList::parse("::/0").contains(*parse_address("1.2.3.4")));
    auto nine = AddressList::parse("10.128.0.0/9");
    cr_assert(nine.contains(*parse_address("10.200.0.1")));
    cr_assert_not(nine.contains(*parse_address("10.127.255.255")));
}

Test(address_list, refusals) {
    auto p = [](std::string_view t) { return parse_cidr(t); };
    cr_assert(refusal(p, "10.0.0.1/8").find("past the prefix") != std::string::npos);
    cr_assert(refusal(p, "10.0.0.0/33").find("0-32") != std::string::npos);
    cr_assert(refusal(p, "::/129").find("0-128") != std::string::npos);
    cr_assert(refusal(p, "10.0.0.0/").find("0-32") != std::string::npos);
    cr_assert(refusal(p, "host.example").find("not an IPv4") != std::string::npos);
    cr_assert(refusal(p, "").find("not an IPv4") != std::string::npos);
    cr_assert(refusal([](std::string_view t) { return AddressList::parse(t); }, "10.0.0.0/8,")
                  .find("not an IPv4") != std::string::npos);
}

Test(address_list, filter) {
    AddressFilter f;
    cr_assert(f.admits("192.0.2.1"));
    f.deny = AddressList::parse("192.0.2.0/24");
    cr_assert_not(f.admits("192.0.2.1"));
    cr_assert(f.admits("198.51.100.1"));
    f.allow = AddressList::parse("192.0.0.0/8");
    cr_assert_not(f.admits("198.51.100.1")); // not allowed
    cr_assert(f.admits("192.1.0.1"));
    cr_assert_not(f.admits("192.0.2.9")); // deny wins over allow
    cr_assert(f.admits(""));              // a unix-socket client
    cr_assert_not(f.admits("garbage"));
}

Test(header_rules, apply_in_order) {
    auto sets = parse_header_rules({
        "a request add X-Api-Version 1",
        "a request rename X-Old X-New",
        "a request remove Cookie",
        "a response set Strict-Transport-Security max-age=63072000; includeSubDomains",
        "a response remove Server",
        "b response add X-Frame-Options DENY",
    });
    cr_assert_eq(sets.size(), 2u);
    cr_assert_eq(sets["a"].size(), 5u);
    http::Headers req{{"X-Old", "v1"}, {"x-old", "v2"}, {"Cookie", "c=1"}, {"Accept", "*/*"}};
    apply_header_rules(sets["a"], HeaderRule::Side::request, req);
    cr_assert_eq(req.count("X-Old"), 0u);
    cr_assert_eq(req.count("X-New"), 2u);
    cr_assert_eq(req.count("Cookie"), 0u);
    cr_assert_eq(req.find("X-Api-Version")->second, "1");
    cr_assert_eq(req.count("Strict-Transport-Security"), 0u); // response rules stay out
    http::Headers resp{{"Server", "x"}, {"Strict-Transport-Security", "old"}};
    apply_header_rules(sets["a"], HeaderRule::Side::response, resp);
    cr_assert_eq(resp.count("Server"), 0u);
    cr_assert_eq(resp.count("Strict-Transport-Security"), 1u);
    cr_assert_eq(resp.find("Strict-Transport-Security")->second,
                 "max-age=63072000; includeSubDomains");
}

Test(header_rules, refusals) {
    auto p = [](std::string_view t) { return parse_header_rule(t); };
    cr_assert(refusal(p, "a both add X 1").find("request or response") != std::string::npos);
    cr_assert(refusal(p, "a request frob X").find("add, set") != std::string::npos);
    cr_assert(refusal(p, "a request add X-Strata-Caller user=1").find("manages") !=
              std::string::npos);
    cr_assert(refusal(p, "a request rename X-A X-Request-Id").find("manages") != std::string::npos);
    cr_assert(refusal(p, "a response set Access-Control-Allow-Origin *").find("manages") !=
              std::string::npos);
    cr_assert(refusal(p, "a request add Content-Length 5").find("manages") != std::string::npos);
    cr_assert(refusal(p, "a request remove X-A extra").find("only the header") !=
              std::string::npos);
    cr_assert(refusal(p, "a request add X:A 1").find("token") != std::string::npos);
    cr_assert(refusal(p, "a request add X-A v\r\nInjected: 1").find("characters") !=
              std::string::npos);
    cr_assert(refusal(p, "").find("set's name") != std::string::npos);
}

Test(cors, origins_and_preflight) {
    auto [name, p] = parse_cors_policy(
        "web origins=https://app.example.com,https://*.example.org methods=GET,POST,PUT "
        "headers=Authorization,X-Custom expose=X-Request-Id credentials=true max_age=300");
    cr_assert_eq(name, "web");
    cr_assert(p.origin_allowed("https://app.example.com"));
    cr_assert(p.origin_allowed("HTTPS://APP.EXAMPLE.COM"));
    cr_assert(p.origin_allowed("https://a.b.example.org"));
    cr_assert_not(p.origin_allowed("https://example.org"));     // the bare domain is not *.
    cr_assert_not(p.origin_allowed("http://a.example.org"));    // other scheme
    cr_assert_not(p.origin_allowed("https://evilexample.org")); // not a subdomain
    cr_assert_not(p.origin_allowed("https://app.example.com.evil.test"));
    cr_assert_not(p.origin_allowed("https://a.example.org:8443")); // port not in the pattern
    cr_assert_not(p.origin_allowed("null"));

    auto ok = p.preflight("https://app.example.com", "PUT", "authorization, content-type");
    cr_assert_eq(ok.status, 204);
    cr_assert_eq(ok.headers.find("Access-Control-Allow-Origin")->second, "https://app.example.com");
    cr_assert_eq(ok.headers.find("Access-Control-Allow-Methods")->second, "GET, POST, PUT");
    cr_assert_eq(ok.headers.find("Access-Control-Allow-Headers")->second,
                 "authorization, content-type");
    cr_assert_eq(ok.headers.find("Access-Control-Allow-Credentials")->second, "true");
    cr_assert_eq(ok.headers.find("Access-Control-Max-Age")->second, "300");
    cr_assert_eq(p.preflight("https://evil.test", "GET", std::nullopt).status, 403);
    cr_assert_eq(p.preflight("https://app.example.com", "DELETE", std::nullopt).status, 403);
    cr_assert_eq(p.preflight("https://app.example.com", "GET", "X-Other").status, 403);

    http::Headers h{{"Access-Control-Allow-Origin", "*"}, {"Content-Type", "text/plain"}};
    p.decorate(h, "https://app.example.com");
    cr_assert_eq(h.count("Access-Control-Allow-Origin"), 1u); // the upstream's one replaced
    cr_assert_eq(h.find("Access-Control-Allow-Origin")->second, "https://app.example.com");
    cr_assert_eq(h.find("Access-Control-Expose-Headers")->second, "X-Request-Id");
    cr_assert_eq(h.find("Vary")->second, "Origin");
    http::Headers other{{"Access-Control-Allow-Origin", "*"}};
    p.decorate(other, "https://evil.test");
    cr_assert_eq(other.count("Access-Control-Allow-Origin"), 0u);
}

Test(cors, any_origin_and_refusals) {
    auto [name, any] = parse_cors_policy("pub origins=*");
    auto r = any.preflight("https://x.test", "GET", std::nullopt);
    cr_assert_eq(r.headers.find("Access-Control-Allow-Origin")->second, "*");
    auto p = [](std::string_view t) { return parse_cors_policy(t); };
    cr_assert(refusal(p, "x origins=* credentials=true").find("any site") != std::string::npos);
    cr_assert(refusal(p, "x methods=GET").find("needs origins") != std::string::npos);
    cr_assert(refusal(p, "x origins=app.example.com").find("scheme://") != std::string::npos);
    cr_assert(refusal(p, "x origins=https://a/b").find("scheme://") != std::string::npos);
    cr_assert(refusal(p, "x origins=* methods=get").find("upper-case") != std::string::npos);
    cr_assert(refusal(p, "x origins=* max_age=90000").find("max_age") != std::string::npos);
    cr_assert(refusal(p, "x origins=* frob=1").find("unknown") != std::string::npos);
    cr_assert(refusal(
                  [](std::string_view) {
                      return parse_cors_policies({"a origins=*", "a origins=*"});
                  },
                  "")
                  .find("twice") != std::string::npos);
}

Test(compression, negotiation) {
    cr_assert_eq(negotiate_coding(std::nullopt), Coding::identity);
    cr_assert_eq(negotiate_coding("gzip"), Coding::gzip);
    cr_assert_eq(negotiate_coding("gzip;q=0"), Coding::identity);
    cr_assert_eq(negotiate_coding("identity"), Coding::identity);
    cr_assert_eq(negotiate_coding("*"), brotli_available() ? Coding::br : Coding::gzip);
    cr_assert_eq(negotiate_coding("br;q=0.2, gzip;q=0.8"), Coding::gzip);
    cr_assert_eq(negotiate_coding("gzip, br"), brotli_available() ? Coding::br : Coding::gzip);
    cr_assert_eq(negotiate_coding("*;q=0, gzip;q=0.001"), Coding::gzip);
    cr_assert_eq(negotiate_coding("gzip;q=2"), Coding::identity); // malformed q: ignored
    cr_assert_eq(negotiate_coding("GZIP ; Q=0.5"), Coding::gzip);
}

Test(compression, compressible_types_whatever_their_case) {
    for (const char* t : {"text/html", "Text/HTML; charset=utf-8", " application/JSON ",
                          "image/svg+xml", "application/vnd.api+JSON", "application/atom+xml"})
        cr_assert(compressible_type(t), "%s", t);
    for (const char* t : {"image/jpeg", "application/octet-stream", "", "text", "json",
                          "application/jsonx", "video/mp4; codecs=avc1"})
        cr_assert_not(compressible_type(t), "%s", t);
}

Test(compression, compresses_what_it_should) {
    std::string json = "[";
    for (int i = 0; i < 500; ++i)
        json += "{\"id\":" + std::to_string(i) + ",\"name\":\"file\"},";
    json += "0]";
    http::Response r = http::Response::json(200, nlohmann::json::parse(json));
    r.headers.emplace("ETag", "\"v1\"");
    const std::string plain = r.body;
    cr_assert(compress_response(r, "GET", "gzip"));
    cr_assert_eq(r.headers.find("Content-Encoding")->second, "gzip");
    cr_assert_eq(r.headers.find("Vary")->second, "Accept-Encoding");
    cr_assert_eq(r.headers.find("ETag")->second, "W/\"v1\"");
    cr_assert_lt(r.body.size(), plain.size() / 4);
    cr_assert_eq(gunzip(r.body), plain);

    auto fresh = [&] { return http::Response::json(200, nlohmann::json::parse(json)); };
    auto head = fresh();
    cr_assert_not(compress_response(head, "HEAD", "gzip"));
    auto small = http::Response::json(200, {{"a", 1}});
    cr_assert_not(compress_response(small, "GET", "gzip"));
    cr_assert_eq(small.headers.count("Vary"), 1u); // it would have, had it been larger
    auto image = http::Response::text(200, std::string(5000, 'a'), "image/png");
    cr_assert_not(compress_response(image, "GET", "gzip"));
    cr_assert_eq(image.headers.count("Vary"), 0u);
    auto nt = fresh();
    nt.headers.emplace("Cache-Control", "public, no-transform");
    cr_assert_not(compress_response(nt, "GET", "gzip"));
    auto already = fresh();
    already.headers.emplace("Content-Encoding", "br");
    cr_assert_not(compress_response(already, "GET", "gzip"));
    auto partial = fresh();
    partial.status = 206;
    cr_assert_not(compress_response(partial, "GET", "gzip"));
    auto huge = fresh();
    cr_assert_not(compress_response(huge, "GET", "gzip", 1024, plain.size() - 1));
    cr_assert_eq(huge.body, plain); // over max_bytes: sent as it is
    auto none = fresh();
    cr_assert_not(compress_response(none, "GET", std::nullopt));
    cr_assert_eq(none.body, plain);
    if (brotli_available()) {
        auto b = fresh();
        cr_assert(compress_response(b, "GET", "br, gzip"));
        cr_assert_eq(b.headers.find("Content-Encoding")->second, "br");
        cr_assert_lt(b.body.size(), plain.size() / 4);
    }
}
