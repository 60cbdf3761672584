// libFuzzer target: the config loader on arbitrary TOML-ish input must report problems as
// config::Error and never crash, hang or throw anything else.
#include "config/config.hh"
#include "daemon/runtime.hh"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // The real schema of a daemon with every kind of key (lists, ranges, choices).
    static const strata::config::Schema schema = [] {
        auto s = strata::daemon::common_schema("/var/lib/strata/meta");
        s.string_list("public.listen", {"[::]:80"}, false, "listeners");
        s.boolean("public.enabled", true, true, "flag");
        // A daemon's own value check (as metad's events.sinks): its verdict becomes a problem.
        s.string_list("events.sinks", {}, false, "sinks",
                      [](const strata::config::Value& v) -> std::string {
                          for (const auto& item : std::get<std::vector<std::string>>(v))
                              if (item.find(' ') == std::string::npos)
                                  return "\"" + item + "\" is not \"NAME TARGET\"";
                          return "";
                      });
        return s;
    }();
    std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        auto c = strata::config::parse(schema, text, "fuzz.conf");
        (void)c.digest();
    } catch (const strata::config::Error& e) {
        for (const auto& p : e.problems())
            (void)p.to_string();
    }
    return 0;
}
