#include "text_file.hh"

#include "media.hh"

#include <fstream>
#include <sstream>

namespace strata::transcoded {

std::string read_text_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw MediaError("cannot read " + p.string(), false);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_text_file(const std::filesystem::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) throw MediaError("cannot write " + p.string(), false);
}

} // namespace strata::transcoded
