#include "config/schema.hh"

#include <fmt/format.h>
#include <stdexcept>

namespace strata::config {

Schema& Schema::add(Key key) {
    if (key.name.find('.') == std::string::npos)
        throw std::logic_error("config key must be section.key: " + key.name);
    auto name = key.name;
    keys_.insert_or_assign(std::move(name), std::move(key));
    return *this;
}

Schema& Schema::boolean(std::string name, bool def, bool reloadable, std::string doc) {
    return add({.name = std::move(name),
                .type = Type::boolean,
                .default_value = def,
                .reloadable = reloadable,
                .doc = std::move(doc)});
}

Schema& Schema::integer(std::string name, std::int64_t def, std::int64_t min, std::int64_t max,
                        bool reloadable, std::string doc) {
    return add({.name = std::move(name),
                .type = Type::integer,
                .default_value = def,
                .min = min,
                .max = max,
                .reloadable = reloadable,
                .doc = std::move(doc)});
}

Schema& Schema::string(std::string name, std::string def, bool reloadable, std::string doc,
                       std::vector<std::string> choices,
                       std::function<std::string(const Value&)> check) {
    return add({.name = std::move(name),
                .type = Type::string,
                .default_value = std::move(def),
                .choices = std::move(choices),
                .reloadable = reloadable,
                .doc = std::move(doc),
                .check = std::move(check)});
}

Schema& Schema::string_list(std::string name, std::vector<std::string> def, bool reloadable,
                            std::string doc, std::function<std::string(const Value&)> check) {
    return add({.name = std::move(name),
                .type = Type::string_list,
                .default_value = std::move(def),
                .reloadable = reloadable,
                .doc = std::move(doc),
                .check = std::move(check)});
}

const Key* Schema::find(const std::string& name) const {
    auto it = keys_.find(name);
    return it == keys_.end() ? nullptr : &it->second;
}

bool Schema::has_section(const std::string& section) const {
    auto prefix = section + ".";
    auto it = keys_.lower_bound(prefix);
    return it != keys_.end() && it->first.compare(0, prefix.size(), prefix) == 0;
}

std::string_view type_name(Type type) {
    switch (type) {
    case Type::boolean:
        return "boolean";
    case Type::integer:
        return "integer";
    case Type::string:
        return "string";
    case Type::string_list:
        return "array of strings";
    }
    return "?";
}

namespace {
std::string quote(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            if (c < 0x20 || c == 0x7f)
                out += fmt::format("\\u{:04X}", c);
            else
                out += static_cast<char>(c);
        }
    }
    return out + "\"";
}
} // namespace

std::string render(const Value& value) {
    struct Visitor {
        std::string operator()(bool b) const { return b ? "true" : "false"; }
        std::string operator()(std::int64_t i) const { return std::to_string(i); }
        std::string operator()(const std::string& s) const { return quote(s); }
        std::string operator()(const std::vector<std::string>& list) const {
            std::string out = "[";
            for (size_t i = 0; i < list.size(); ++i)
                out += (i ? ", " : "") + quote(list[i]);
            return out + "]";
        }
    };
    return std::visit(Visitor{}, value);
}

} // namespace strata::config
