#include "daemon/options.hh"
#include "daemon/runtime.hh"
#include "daemon/state_dir.hh"

#include <criterion/criterion.h>
#include <filesystem>
#include <vector>

using namespace strata;

namespace {
std::optional<daemon::Options> parse(std::vector<const char*> args) {
    args.insert(args.begin(), "strata-test");
    std::vector<char*> argv;
    for (auto* a : args)
        argv.push_back(const_cast<char*>(a));
    argv.push_back(nullptr);
    return daemon::parse_options(static_cast<int>(args.size()), argv.data(), "/etc/x.conf");
}
} // namespace

Test(daemon_options, defaults_and_flags) {
    auto o = parse({});
    cr_assert(o.has_value());
    cr_assert_str_eq(o->config_path.c_str(), "/etc/x.conf");
    o = parse({"--check-config", "--config", "/tmp/a.conf"});
    cr_assert(o && o->check_config);
    cr_assert_str_eq(o->config_path.c_str(), "/tmp/a.conf");
    o = parse({"-c", "/tmp/b.conf", "-V"});
    cr_assert(o && o->version);
    cr_assert_str_eq(o->config_path.c_str(), "/tmp/b.conf");
}

Test(daemon_options, usage_errors) {
    cr_assert(!parse({"--bogus"}).has_value());
    cr_assert(!parse({"--config"}).has_value());
    cr_assert(!parse({"extra"}).has_value());
}

Test(daemon_schema, state_dir_only_when_declared) {
    auto with = daemon::common_schema("/var/lib/strata/meta");
    auto without = daemon::common_schema("");
    cr_assert_not_null(with.find("daemon.state_dir"));
    cr_assert_null(without.find("daemon.state_dir"));
    cr_assert(with.find("log.level")->reloadable);
    cr_assert(!with.find("daemon.runtime_dir")->reloadable);
}

Test(daemon_state_dir, second_instance_is_refused) {
    char tmpl[] = "/tmp/strata-state-test-XXXXXX";
    std::string dir = std::string(mkdtemp(tmpl)) + "/nested/state";
    {
        daemon::StateDir first(dir, std::nullopt);
        cr_assert(std::filesystem::is_directory(dir));
        // flock is per open file description: a second open in the same process conflicts too.
        cr_assert_throw(daemon::StateDir(dir, std::nullopt), std::runtime_error);
    }
    daemon::StateDir again(dir, std::nullopt); // released with the first
    std::filesystem::remove_all(tmpl);
}
