#include "config/config.hh"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <fstream>
#include <sodium.h>
#include <sstream>
#include <toml++/toml.h>

namespace strata::config {

std::string Problem::to_string() const {
    std::string where = file;
    if (line) where += fmt::format(":{}:{}", line, column);
    return key.empty() ? fmt::format("{}: {}", where, message)
                       : fmt::format("{}: {}: {}", where, key, message);
}

namespace {
std::string join_problems(const std::vector<Problem>& problems) {
    std::string out;
    for (const auto& p : problems)
        out += (out.empty() ? "" : "\n") + p.to_string();
    return out;
}
} // namespace

Error::Error(std::vector<Problem> problems)
    : std::runtime_error(join_problems(problems)), problems_(std::move(problems)) {}

const Value& Config::value(const std::string& key) const {
    auto it = values_.find(key);
    if (it == values_.end()) throw std::out_of_range("no such config key: " + key);
    return it->second;
}
bool Config::boolean(const std::string& key) const {
    return std::get<bool>(value(key));
}
std::int64_t Config::integer(const std::string& key) const {
    return std::get<std::int64_t>(value(key));
}
const std::string& Config::string(const std::string& key) const {
    return std::get<std::string>(value(key));
}
const std::vector<std::string>& Config::string_list(const std::string& key) const {
    return std::get<std::vector<std::string>>(value(key));
}

std::string Config::origin(const std::string& key) const {
    auto it = origins_.find(key);
    return it == origins_.end() ? "default" : it->second;
}

std::string Config::dump() const {
    std::string out;
    for (const auto& [key, v] : values_)
        out += fmt::format("{} = {}\n", key, render(v));
    return out;
}

std::string Config::digest() const {
    std::string text = dump();
    if (sodium_init() < 0) throw std::runtime_error("libsodium cannot initialise");
    unsigned char hash[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(hash, reinterpret_cast<const unsigned char*>(text.data()), text.size());
    std::string hex = "sha256:";
    for (unsigned char b : hash)
        hex += fmt::format("{:02x}", b);
    return hex;
}

std::vector<std::string> Config::changed_keys(const Config& other) const {
    std::vector<std::string> out;
    for (const auto& [key, v] : values_) {
        auto it = other.values_.find(key);
        if (it == other.values_.end() || it->second != v) out.push_back(key);
    }
    return out;
}

// Applies parsed TOML documents, one after the other, on top of the schema defaults.
class Loader {
public:
    explicit Loader(const Schema& schema) : schema_(schema) {
        for (const auto& [name, key] : schema.keys())
            config_.values_[name] = key.default_value;
    }

    void apply_text(std::string_view text, const std::string& file) {
        config_.files_.push_back(file);
        toml::table doc;
        try {
            doc = toml::parse(text, file);
        } catch (const toml::parse_error& e) {
            const auto& where = e.source().begin;
            problems_.push_back({file, where.line, where.column, "", std::string(e.description())});
            return;
        }
        walk(doc, "", file);
    }

    void apply_file(const std::filesystem::path& path) {
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            problems_.push_back(
                {path.string(), 0, 0, "", fmt::format("cannot read: {}", std::strerror(errno))});
            return;
        }
        std::ostringstream buf;
        buf << in.rdbuf();
        apply_text(buf.str(), path.string());
    }

    Config finish() {
        if (!problems_.empty()) throw Error(std::move(problems_));
        return std::move(config_);
    }

private:
    void problem(const std::string& file, const toml::source_region& where, std::string key,
                 std::string message) {
        problems_.push_back(
            {file, where.begin.line, where.begin.column, std::move(key), std::move(message)});
    }

    void walk(const toml::table& table, const std::string& prefix, const std::string& file) {
        for (const auto& [k, node] : table) {
            std::string name =
                prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
            if (const Key* key = schema_.find(name)) {
                set(*key, node, k.source(), file);
            } else if (node.is_table() && prefix.empty() && schema_.has_section(name)) {
                walk(*node.as_table(), name, file);
            } else if (node.is_table()) {
                problem(file, k.source(), name, "unknown section");
            } else {
                problem(file, k.source(), name, "unknown key");
            }
        }
    }

    void set(const Key& key, const toml::node& node, const toml::source_region& key_pos,
             const std::string& file) {
        const auto& pos = node.source().begin.line ? node.source() : key_pos;
        auto wrong_type = [&] {
            problem(file, pos, key.name,
                    fmt::format("expected {}, got {}", type_name(key.type), toml_type(node)));
        };
        Value value;
        switch (key.type) {
        case Type::boolean:
            if (!node.is_boolean()) return wrong_type();
            value = node.as_boolean()->get();
            break;
        case Type::integer: {
            if (!node.is_integer()) return wrong_type();
            std::int64_t v = node.as_integer()->get();
            if (v < key.min || v > key.max)
                return problem(file, pos, key.name,
                               fmt::format("{} is out of range {}..{}", v, key.min, key.max));
            value = v;
            break;
        }
        case Type::string: {
            if (!node.is_string()) return wrong_type();
            const std::string& s = node.as_string()->get();
            if (!key.choices.empty() &&
                std::find(key.choices.begin(), key.choices.end(), s) == key.choices.end()) {
                std::string allowed;
                for (const auto& c : key.choices)
                    allowed += (allowed.empty() ? "" : ", ") + c;
                return problem(file, pos, key.name,
                               fmt::format("\"{}\" is not one of: {}", s, allowed));
            }
            value = s;
            break;
        }
        case Type::string_list: {
            if (!node.is_array()) return wrong_type();
            std::vector<std::string> list;
            for (const auto& item : *node.as_array()) {
                if (!item.is_string())
                    return problem(file, item.source().begin.line ? item.source() : pos, key.name,
                                   fmt::format("expected array of strings, found an element of "
                                               "type {}",
                                               toml_type(item)));
                list.push_back(item.as_string()->get());
            }
            value = std::move(list);
            break;
        }
        }
        if (key.check) {
            if (std::string why = key.check(value); !why.empty())
                return problem(file, pos, key.name, why);
        }
        config_.values_[key.name] = std::move(value);
        config_.origins_[key.name] = fmt::format("{}:{}", file, pos.begin.line);
    }

    static std::string_view toml_type(const toml::node& node) {
        switch (node.type()) {
        case toml::node_type::table:
            return "table";
        case toml::node_type::array:
            return "array";
        case toml::node_type::string:
            return "string";
        case toml::node_type::integer:
            return "integer";
        case toml::node_type::floating_point:
            return "float";
        case toml::node_type::boolean:
            return "boolean";
        case toml::node_type::date:
            return "date";
        case toml::node_type::time:
            return "time";
        case toml::node_type::date_time:
            return "date-time";
        default:
            return "nothing";
        }
    }

    const Schema& schema_;
    Config config_;
    std::vector<Problem> problems_;
};

std::vector<std::filesystem::path> dropin_files(const std::filesystem::path& file) {
    std::vector<std::filesystem::path> out;
    std::filesystem::path dir = file;
    dir += ".d";
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) return out;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        // Like systemd: only *.conf, so editor backups and dpkg leftovers are ignored.
        if (entry.path().extension() == ".conf" && !entry.is_directory())
            out.push_back(entry.path());
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.filename() < b.filename(); });
    return out;
}

Config load(const Schema& schema, const std::filesystem::path& file) {
    Loader loader(schema);
    loader.apply_file(file);
    for (const auto& dropin : dropin_files(file))
        loader.apply_file(dropin);
    return loader.finish();
}

Config parse(const Schema& schema, std::string_view text, std::string_view name) {
    Loader loader(schema);
    loader.apply_text(text, std::string(name));
    return loader.finish();
}

} // namespace strata::config
