// The declared shape of a daemon's configuration: every key, its type, default, range and doc.
// A key is named "section.key" and lives in a TOML table [section].
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace strata::config {

enum class Type { boolean, integer, string, string_list };

using Value = std::variant<bool, std::int64_t, std::string, std::vector<std::string>>;

struct Key {
    std::string name; // "section.key"
    Type type = Type::string;
    Value default_value;
    std::int64_t min = std::numeric_limits<std::int64_t>::min(); // integers only
    std::int64_t max = std::numeric_limits<std::int64_t>::max();
    std::vector<std::string> choices; // strings only; empty = any string
    bool reloadable = false;          // applied by SIGHUP; otherwise needs a restart
    std::string doc;                  // one line, shown in etc/ files and man pages
    // A daemon's own rule for a well-typed value (e.g. the syntax of list items): why the
    // value is refused, or "" when it is fine. Checked at load, so --check-config and a
    // reload refuse what the daemon would refuse at start.
    std::function<std::string(const Value&)> check;
};

class Schema {
public:
    Schema& add(Key key);
    Schema& boolean(std::string name, bool def, bool reloadable, std::string doc);
    Schema& integer(std::string name, std::int64_t def, std::int64_t min, std::int64_t max,
                    bool reloadable, std::string doc);
    Schema& string(std::string name, std::string def, bool reloadable, std::string doc,
                   std::vector<std::string> choices = {},
                   std::function<std::string(const Value&)> check = nullptr);
    Schema& string_list(std::string name, std::vector<std::string> def, bool reloadable,
                        std::string doc, std::function<std::string(const Value&)> check = nullptr);

    const Key* find(const std::string& name) const;
    bool has_section(const std::string& section) const;
    const std::map<std::string, Key>& keys() const { return keys_; }

private:
    std::map<std::string, Key> keys_;
};

std::string_view type_name(Type type);
// TOML rendering of a value, as it would appear right of "key = ".
std::string render(const Value& value);

} // namespace strata::config
