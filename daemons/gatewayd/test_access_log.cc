// Unit tests of the access log: the JSON line (escaping of odd paths and user agents, bytes
// that are not UTF-8, nulls for what is unknown), the caller notes (never a credential), and
// the file writer (lines, reopen after a rename, the bound on what waits).
#include "access_log.hh"

#include <criterion/criterion.h>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

using namespace strata;
using namespace strata::gatewayd;

namespace {

nlohmann::json parse_line(const std::string& line) {
    cr_assert_eq(line.find('\n'), std::string::npos, "one line: %s", line.c_str());
    return nlohmann::json::parse(line); // throws (test fails) when not JSON
}

AccessRecord sample() {
    AccessRecord r;
    r.request_id = "abc";
    r.remote = "127.0.0.1";
    r.method = "GET";
    r.target = "/a";
    r.host = "example.test";
    r.status = 200;
    r.bytes = 12;
    return r;
}

std::vector<std::string> lines_of(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);)
        out.push_back(l);
    return out;
}

std::string temp_dir() {
    char tmpl[] = "/tmp/strata-access-log-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    return tmpl;
}

} // namespace

Test(access_log, fields_and_nulls) {
    auto r = sample();
    r.received = std::chrono::system_clock::time_point{} + std::chrono::milliseconds(1700000000123);
    auto j = parse_line(format_access_line(r));
    cr_assert_eq(j["time"], "2023-11-14T22:13:20.123Z");
    cr_assert_eq(j["request_id"], "abc");
    cr_assert_eq(j["remote"], "127.0.0.1");
    cr_assert_eq(j["method"], "GET");
    cr_assert_eq(j["path"], "/a");
    cr_assert_eq(j["host"], "example.test");
    cr_assert_eq(j["status"], 200);
    cr_assert_eq(j["bytes"], 12);
    cr_assert(j["duration_ms"].is_number());
    cr_assert(j["duration_ms"].get<double>() >= 0);
    cr_assert_eq(j["upstream"], "gateway");
    cr_assert(j["upstream_addr"].is_null());
    cr_assert(j["upstream_ms"].is_null());
    cr_assert(j["route"].is_null());
    cr_assert_eq(j["caller"], "anonymous");
    cr_assert(j["user"].is_null());
    cr_assert_eq(j["user_agent"], "");
    cr_assert(j["referer"].is_null());
    // The field order is fixed (readable with grep and cut as well).
    auto line = format_access_line(r);
    cr_assert_eq(line.find("{\"time\":"), 0u);
    cr_assert_lt(line.find("\"status\""), line.find("\"upstream\""));
}

Test(access_log, odd_bytes_are_escaped) {
    auto r = sample();
    r.target = "/a\"b\\c\n\r\t\x01?q=\"}{";
    r.user_agent = std::string("bot\"/1.0\x7f \x1b[31m") + '\0' + "x";
    r.referer = "http://x/\"";
    r.host = "h\nFAKE: line";
    auto line = format_access_line(r);
    auto j = parse_line(line);
    cr_assert_eq(j["path"], r.target);
    cr_assert_eq(j["user_agent"], r.user_agent);
    cr_assert_eq(j["referer"], *r.referer);
    cr_assert_eq(j["host"], r.host);
    cr_assert_eq(line.find('\x1b'), std::string::npos, "control bytes escaped");
}

Test(access_log, invalid_utf8_becomes_replacement) {
    auto r = sample();
    r.target = "/caf\xc3\xa9/\xff\xfe/\xc3";
    r.user_agent = "\xe2\x82";
    auto j = parse_line(format_access_line(r));
    cr_assert_eq(j["path"], "/caf\xc3\xa9/\xef\xbf\xbd\xef\xbf\xbd/\xef\xbf\xbd");
    cr_assert_eq(j["user_agent"], "\xef\xbf\xbd");
}

Test(access_log, upstream_and_callers) {
    auto r = sample();
    note_upstream(r, "api", "http://127.0.0.1:9", 0.0125);
    auto j = parse_line(format_access_line(r));
    cr_assert_eq(j["upstream"], "api");
    cr_assert_eq(j["upstream_addr"], "http://127.0.0.1:9");
    cr_assert_float_eq(j["upstream_ms"].get<double>(), 12.5, 1e-9);

    note_caller(r, "st1.secret-token", true, false, 42, "user=42; session=7; scopes=");
    cr_assert_eq(r.caller, "session");
    cr_assert_eq(*r.user, "42");
    note_caller(r, "eyJ.secret", true, false, std::nullopt, "jwt; sub=alice%40x; iss=i; scopes=a");
    cr_assert_eq(r.caller, "jwt");
    cr_assert_eq(*r.user, "alice%40x");
    note_caller(r, "sk_notakey", false, true, std::nullopt, "anonymous");
    cr_assert_eq(r.caller, "api_key");
    cr_assert_not(r.user.has_value()); // unparsable key: no id, and never the token
    note_caller(r, "st1.unverified", false, true, std::nullopt, "anonymous");
    cr_assert_eq(r.caller, "unverified_session");
    note_caller(r, std::nullopt, false, false, std::nullopt, "anonymous");
    cr_assert_eq(r.caller, "anonymous");
    cr_assert_eq(format_access_line(r).find("secret"), std::string::npos);
}

Test(access_log, targets) {
    cr_assert_null(AccessLog::open("", 4096, nullptr).get());
    auto j = AccessLog::open("journal", 4096, nullptr);
    cr_assert_not_null(j.get());
    cr_assert_eq(j->target(), "journal");
    cr_assert_throw(AccessLog::open("relative/file", 4096, nullptr), std::runtime_error);
    cr_assert_throw(AccessLog::open("/nonexistent-dir-strata/x.log", 4096, nullptr),
                    std::runtime_error);
}

Test(access_log, file_lines_and_reopen) {
    auto dir = temp_dir();
    auto path = dir + "/access.log";
    metrics::Registry reg;
    auto& dropped = reg.counter("dropped_total", "");
    {
        FileAccessLog log(path, 1 << 20, &dropped);
        for (int i = 0; i < 100; ++i) {
            auto r = sample();
            r.request_id = "id" + std::to_string(i);
            log.write(r);
        }
        // Lines reach the file without waiting for the destructor.
        for (int i = 0; i < 200 && lines_of(path).size() < 100; ++i)
            usleep(10000);
        cr_assert_eq(lines_of(path).size(), 100u);
        cr_assert_eq(std::rename(path.c_str(), (path + ".1").c_str()), 0);
        log.reopen();
        auto r = sample();
        r.request_id = "after";
        log.write(r);
    }
    auto old = lines_of(path + ".1");
    auto now = lines_of(path);
    cr_assert_eq(old.size(), 100u);
    for (std::size_t i = 0; i < old.size(); ++i)
        cr_assert_eq(parse_line(old[i])["request_id"], "id" + std::to_string(i));
    cr_assert_eq(now.size(), 1u);
    cr_assert_eq(parse_line(now[0])["request_id"], "after");
    cr_assert(reg.render().find("dropped_total 0") != std::string::npos, "%s",
              reg.render().c_str());
    std::remove((path + ".1").c_str());
    std::remove(path.c_str());
    rmdir(dir.c_str());
}

Test(access_log, bounded_buffer_drops_and_counts) {
    // /dev/full: every write fails (a full disk); lines are counted, memory stays bounded.
    metrics::Registry reg;
    auto& dropped = reg.counter("dropped_total", "");
    {
        FileAccessLog log("/dev/full", 4096, &dropped);
        std::string line(1000, 'x');
        for (int i = 0; i < 50; ++i)
            log.append_line(line);
    }
    auto text = reg.render();
    cr_assert(text.find("dropped_total 50") != std::string::npos, "%s", text.c_str());
}
