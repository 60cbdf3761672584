#include "config/config.hh"

#include <criterion/criterion.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

using namespace strata;
namespace fs = std::filesystem;

namespace {

config::Schema schema() {
    config::Schema s;
    s.string("log.level", "info", true, "verbosity", {"debug", "info", "warning", "error"})
        .integer("http.max_body_bytes", 1024, 0, 4096, true, "body limit")
        .boolean("http.keepalive", true, false, "keep connections")
        .string_list("public.listen", {"[::]:80"}, false, "listeners")
        .string_list("events.sinks", {}, false, "sinks",
                     [](const config::Value& v) -> std::string {
                         for (const auto& item : std::get<std::vector<std::string>>(v))
                             if (item.find(' ') == std::string::npos)
                                 return "\"" + item + "\" is not \"NAME TARGET\"";
                         return "";
                     })
        .string("daemon.user", "_strata", false, "user");
    return s;
}

// A temporary directory removed at the end of the test, also when an assertion fails
// (Criterion runs each test in its own process, so the destructor runs on normal exit only;
// the fixture's teardown covers the failure path).
fs::path g_dir;

void make_dir() {
    char tmpl[] = "/tmp/strata-config-test-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    g_dir = tmpl;
}
void remove_dir() {
    std::error_code ec;
    fs::remove_all(g_dir, ec);
}

void write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
}

config::Problem first_problem(const std::string& text) {
    try {
        config::parse(schema(), text, "t.conf");
    } catch (const config::Error& e) {
        return e.problems().at(0);
    }
    cr_assert_fail("expected a config error for: %s", text.c_str());
    return {};
}

} // namespace

Test(config, defaults_when_empty) {
    auto c = config::parse(schema(), "", "t.conf");
    cr_assert_str_eq(c.string("log.level").c_str(), "info");
    cr_assert_eq(c.integer("http.max_body_bytes"), 1024);
    cr_assert(c.boolean("http.keepalive"));
    cr_assert_eq(c.string_list("public.listen").size(), 1u);
    cr_assert(c.origin("log.level") == "default");
}

Test(config, values_are_read) {
    auto c = config::parse(schema(),
                           "[log]\nlevel = \"debug\"\n[http]\nmax_body_bytes = 10\n"
                           "[public]\nlisten = [\"127.0.0.1:8080\", \"[::1]:8080\"]\n",
                           "t.conf");
    cr_assert_str_eq(c.string("log.level").c_str(), "debug");
    cr_assert_eq(c.integer("http.max_body_bytes"), 10);
    cr_assert_eq(c.string_list("public.listen").size(), 2u);
    cr_assert(c.origin("http.max_body_bytes") == "t.conf:4");
}

Test(config, unknown_key_names_position) {
    auto p = first_problem("[log]\nlevel = \"info\"\n  colour = true\n");
    cr_assert_str_eq(p.file.c_str(), "t.conf");
    cr_assert_eq(p.line, 3u);
    cr_assert_eq(p.column, 3u);
    cr_assert_str_eq(p.key.c_str(), "log.colour");
    std::string text = p.to_string(); // Criterion keeps the pointer past the full expression
    cr_assert_str_eq(text.c_str(), "t.conf:3:3: log.colour: unknown key");
}

Test(config, unknown_section) {
    auto p = first_problem("\n[logging]\nlevel = 1\n");
    cr_assert_eq(p.line, 2u);
    cr_assert_str_eq(p.key.c_str(), "logging");
    cr_assert_str_eq(p.message.c_str(), "unknown section");
}

Test(config, top_level_key_is_unknown) {
    auto p = first_problem("level = \"info\"\n");
    cr_assert_str_eq(p.key.c_str(), "level");
    cr_assert_eq(p.line, 1u);
}

Test(config, wrong_type_names_position) {
    auto p = first_problem("[http]\nmax_body_bytes = \"big\"\n");
    cr_assert_eq(p.line, 2u);
    cr_assert_eq(p.column, 18u);
    cr_assert_str_eq(p.key.c_str(), "http.max_body_bytes");
    cr_assert_str_eq(p.message.c_str(), "expected integer, got string");
}

Test(config, out_of_range) {
    auto p = first_problem("[http]\nmax_body_bytes = 5000\n");
    cr_assert_eq(p.line, 2u);
    cr_assert_str_eq(p.message.c_str(), "5000 is out of range 0..4096");
}

Test(config, bad_choice) {
    auto p = first_problem("[log]\nlevel = \"loud\"\n");
    cr_assert_str_eq(p.key.c_str(), "log.level");
    cr_assert(p.message.find("not one of: debug, info") != std::string::npos, "%s",
              p.message.c_str());
}

Test(config, list_element_type) {
    auto p = first_problem("[public]\nlisten = [\"a\", 3]\n");
    cr_assert_eq(p.line, 2u);
    cr_assert_eq(p.column, 16u);
    cr_assert_str_eq(p.key.c_str(), "public.listen");
}

Test(config, a_daemons_own_check_refuses_a_value_at_its_position) {
    auto p = first_problem("[events]\n\nsinks = [\"a unix:/x\", \"lonely\"]\n");
    cr_assert_eq(p.line, 3u);
    cr_assert_str_eq(p.key.c_str(), "events.sinks");
    cr_assert_str_eq(p.message.c_str(), "\"lonely\" is not \"NAME TARGET\"");
    auto ok = config::parse(schema(), "[events]\nsinks = [\"a unix:/x\"]\n", "t.conf");
    cr_assert_eq(ok.string_list("events.sinks").size(), 1u);
    // Defaults are not checked: the daemon's own default is fine by construction.
    cr_assert(config::parse(schema(), "", "t.conf").string_list("events.sinks").empty());
}

Test(config, syntax_error_has_position) {
    auto p = first_problem("[log]\nlevel = \"info\n");
    cr_assert_eq(p.line, 2u);
    cr_assert(p.column > 0);
    cr_assert(p.key.empty());
}

Test(config, all_problems_reported_at_once) {
    try {
        config::parse(schema(), "[log]\nlevel = 3\n[http]\nbogus = 1\n", "t.conf");
        cr_assert_fail("no error");
    } catch (const config::Error& e) {
        cr_assert_eq(e.problems().size(), 2u);
        std::string what = e.what();
        cr_assert(what.find("t.conf:2:9: log.level:") != std::string::npos, "%s", what.c_str());
        cr_assert(what.find("t.conf:4:1: http.bogus: unknown key") != std::string::npos, "%s",
                  what.c_str());
    }
}

Test(config, dropins_merge_in_lexical_order, .init = make_dir, .fini = remove_dir) {
    auto main_file = g_dir / "metad.conf";
    write(main_file, "[log]\nlevel = \"warning\"\n[http]\nmax_body_bytes = 1\n");
    write(g_dir / "metad.conf.d" / "20-b.conf", "[log]\nlevel = \"error\"\n");
    write(g_dir / "metad.conf.d" / "10-a.conf", "[log]\nlevel = \"debug\"\n");
    write(g_dir / "metad.conf.d" / "30-ignored.conf.dpkg-old", "[log]\nlevel = 7\n");
    auto c = config::load(schema(), main_file);
    cr_assert_str_eq(c.string("log.level").c_str(), "error");
    cr_assert_eq(c.integer("http.max_body_bytes"), 1);
    cr_assert_eq(c.files().size(), 3u);
    cr_assert(c.origin("log.level").find("20-b.conf:2") != std::string::npos);
}

Test(config, dropin_error_names_dropin_file, .init = make_dir, .fini = remove_dir) {
    auto main_file = g_dir / "x.conf";
    write(main_file, "");
    write(g_dir / "x.conf.d" / "a.conf", "[http]\nmax_body_bytes = -1\n");
    try {
        config::load(schema(), main_file);
        cr_assert_fail("no error");
    } catch (const config::Error& e) {
        std::string want = (g_dir / "x.conf.d" / "a.conf").string() + ":2:18: http.max_body_bytes:";
        cr_assert(std::string(e.what()).find(want) == 0, "%s", e.what());
    }
}

Test(config, missing_file_is_an_error, .init = make_dir, .fini = remove_dir) {
    try {
        config::load(schema(), g_dir / "nope.conf");
        cr_assert_fail("no error");
    } catch (const config::Error& e) {
        cr_assert(std::string(e.what()).find("nope.conf: cannot read:") != std::string::npos);
    }
}

Test(config, digest_follows_effective_values) {
    auto a = config::parse(schema(), "", "a.conf");
    auto b = config::parse(schema(), "[log]\nlevel = \"info\"\n", "b.conf");
    auto c = config::parse(schema(), "[log]\nlevel = \"debug\"\n", "c.conf");
    std::string da = a.digest(), db = b.digest(), dc = c.digest();
    cr_assert_str_eq(da.c_str(), db.c_str());
    cr_assert_str_neq(da.c_str(), dc.c_str());
    cr_assert_eq(da.size(), 7u + 64u);
    auto changed = c.changed_keys(a);
    cr_assert_eq(changed.size(), 1u);
    cr_assert_str_eq(changed[0].c_str(), "log.level");
}
