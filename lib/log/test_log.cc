#include "log/log.hh"

#include <criterion/criterion.h>
#include <cstdio>
#include <string>
#include <unistd.h>

using namespace strata;

// Captures what the logger writes to stderr during one test.
struct StderrCapture {
    FILE* file = std::tmpfile();
    int saved = dup(STDERR_FILENO);
    StderrCapture() {
        fflush(stderr);
        dup2(fileno(file), STDERR_FILENO);
    }
    std::string text() {
        fflush(stderr);
        std::string out;
        std::rewind(file);
        char buf[4096];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, file)) > 0)
            out.append(buf, n);
        return out;
    }
    ~StderrCapture() {
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        std::fclose(file);
    }
};

Test(log, parse_level_names) {
    cr_assert(log::parse_level("debug") == log::Level::debug);
    cr_assert(log::parse_level("warn") == log::Level::warning);
    cr_assert(log::parse_level("error") == log::Level::error);
    cr_assert(!log::parse_level("loud").has_value());
    cr_assert(log::level_name(log::Level::notice) == "notice");
}

Test(log, prefixed_sink_carries_priority) {
    StderrCapture cap;
    log::set_sink(log::Sink::prefixed);
    log::set_level(log::Level::info);
    log::warning("disk {} is full", "sda");
    log::write(log::Level::error, "boom", {{"CONFIG_FILE", "/x.conf"}});
    std::string out = cap.text();
    cr_assert_str_eq(out.c_str(), "<4>disk sda is full\n<3>boom CONFIG_FILE=/x.conf\n");
}

Test(log, level_filters_lower_priorities) {
    StderrCapture cap;
    log::set_sink(log::Sink::prefixed);
    log::set_level(log::Level::warning);
    log::info("hidden");
    log::debug("hidden too");
    log::error("shown");
    std::string out = cap.text();
    cr_assert_str_eq(out.c_str(), "<3>shown\n");
}

Test(log, console_sink_is_readable) {
    StderrCapture cap;
    log::set_sink(log::Sink::console);
    log::set_level(log::Level::debug);
    log::set_identity("strata-test");
    log::debug("hello {}", 42);
    std::string out = cap.text();
    cr_assert(out.find("strata-test[") != std::string::npos, "got: %s", out.c_str());
    cr_assert(out.find("] debug: hello 42\n") != std::string::npos, "got: %s", out.c_str());
    cr_assert(out.size() > 24 && out[4] == '-' && out[10] == 'T', "timestamp first: %s",
              out.c_str());
}
