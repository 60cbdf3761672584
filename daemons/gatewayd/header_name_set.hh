// A small fixed set of header names, asked about every header of every proxied message:
// a length check first, then an ASCII case-insensitive compare, with no allocation and no
// tree walk (a std::set of a dozen names cost more than the rest of the filtering).
#pragma once

#include "http/message.hh"

#include <initializer_list>
#include <string_view>
#include <vector>

namespace strata::gatewayd {

class HeaderNameSet {
public:
    HeaderNameSet(std::initializer_list<std::string_view> names) : names_(names) {}

    bool contains(std::string_view name) const noexcept {
        for (std::string_view n : names_)
            if (http::equal_nocase(n, name)) return true;
        return false;
    }

private:
    std::vector<std::string_view> names_; // literals: they outlive the set
};

} // namespace strata::gatewayd
