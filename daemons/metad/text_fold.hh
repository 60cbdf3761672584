// Text folding for metad's search index: the index and the queries go through the same
// functions, so a term matches whatever a user types for it regardless of case or accents.
//
// Folding (ICU): invalid UTF-8 becomes U+FFFD, then NFD, full case folding, NFD again
// (folding can produce decomposable text, e.g. U+0130), nonspacing marks (Mn: accents)
// dropped, NFC. So "Straße" -> "strasse", "CAFÉ" -> "cafe", "ΟΔΟΣ" -> "οδοσ".
//
// Tokens are maximal runs of letters and decimal digits (spacing and enclosing marks stay
// with the letter before them, so Indic words are not torn apart); everything else
// separates: "IMG_2041.jpg" -> img, 2041, jpg. Scripts written without spaces (CJK) give
// one token per run; prefix matching in the index still finds their leading words.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace strata::metad {

// Longest token, in UTF-8 bytes; longer ones are cut at a code point boundary.
inline constexpr std::size_t max_token_bytes = 64;
// Only this much of an input is read: names are <= 255 bytes and queries short, and the cap
// keeps a hostile query cheap (and within ICU's int32 lengths).
inline constexpr std::size_t max_fold_input = 64 * 1024;

// The folded tokens of utf8 in order (repeats kept), at most max_tokens of them.
std::vector<std::string> search_tokens(std::string_view utf8, std::size_t max_tokens = 256);

// utf8 folded as a whole: the same folding as the tokens, but nothing is split off or cut.
// For a single token t of <= max_token_bytes, fold_term(t) is its token.
std::string fold_term(std::string_view utf8);

} // namespace strata::metad
