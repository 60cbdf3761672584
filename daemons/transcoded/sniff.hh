// Format sniffing on bytes already read, so the fuzz target and the header parser need no file.
#pragma once

#include "media.hh"

#include <cstddef>
#include <cstdint>
#include <span>

namespace strata::transcoded {

// How many leading bytes sniff_bytes looks at: MPEG-TS needs its second sync byte at 188.
inline constexpr std::size_t sniff_prefix_bytes = 189;

// The format from the file's first bytes; empty for no bytes, unknown when nothing matches.
MediaFormat sniff_bytes(std::span<const std::uint8_t> head);

} // namespace strata::transcoded
