/* Unicode helpers for the tokenizer: UTF-8 decoding/encoding and codepoint classes.
 *
 * Classes follow llama.cpp's codepoint flags (one general-category family per codepoint plus a White_Space bit),
 * because its pre-tokenizers, and so its test vectors, are defined over exactly these. */
#ifndef BITGGUF_UNICODE_H
#define BITGGUF_UNICODE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    BG_UCAT_UNDEF = 0,      /* unassigned (Cn) */
    BG_UCAT_NUMBER = 1,     /* \p{N} */
    BG_UCAT_LETTER = 2,     /* \p{L} */
    BG_UCAT_SEPARATOR = 3,  /* \p{Z} */
    BG_UCAT_MARK = 4,       /* \p{M} */
    BG_UCAT_PUNCT = 5,      /* \p{P} */
    BG_UCAT_SYMBOL = 6,     /* \p{S} */
    BG_UCAT_CONTROL = 7     /* \p{C} other than Cn */
} bg_ucat;

/* Category class of a codepoint (BG_UCAT_UNDEF beyond U+10FFFF). */
bg_ucat bg_unicode_cat(uint32_t cpt);

/* 1 when the codepoint has the Unicode White_Space property (what \s means in the tokenizer regexes). */
int bg_unicode_is_space(uint32_t cpt);

/* Length of the UTF-8 sequence that a lead byte announces, from its high nibble (1 for stray continuation
 * bytes), as SentencePiece and llama.cpp split text into symbols. */
static inline size_t bg_utf8_len(uint8_t lead) {
    static const uint8_t lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[lead >> 4];
}

/* Decode one codepoint at s[*pos] (n bytes in all), advance *pos. Malformed input yields U+FFFD and advances
 * one byte. */
uint32_t bg_utf8_decode(const char *s, size_t n, size_t *pos);

/* Encode a codepoint into out (at least 4 bytes); returns the byte count. Invalid codepoints encode U+FFFD. */
int bg_utf8_encode(uint32_t cpt, char *out);

#endif
