// Text helpers for stratactl's tables.
#pragma once

#include <string>
#include <vector>

namespace strata::ctl {

// "45s", "12m03s", "5h02m", "3d04h".
std::string format_uptime(double seconds);

// Columns padded to the widest cell; the first row is the header.
std::string render_table(const std::vector<std::vector<std::string>>& rows);

} // namespace strata::ctl
