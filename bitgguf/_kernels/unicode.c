/* Unicode helpers for the tokenizer; the category table is generated (gen_unicode_tables.py). */
#include "unicode.h"
#include "unicode_tables.h"

bg_ucat bg_unicode_cat(uint32_t cpt) {
    if (cpt > 0x10FFFF) return BG_UCAT_UNDEF;
    /* last range whose start <= cpt */
    size_t lo = 0, hi = BG_UCAT_N_RANGES;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (bg_ucat_start[mid] <= cpt) lo = mid; else hi = mid;
    }
    return (bg_ucat)bg_ucat_class[lo];
}

int bg_unicode_is_space(uint32_t c) {
    /* the White_Space property: short and stable since Unicode 4.1 (U+180E left it in 6.3) */
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

uint32_t bg_utf8_decode(const char *str, size_t n, size_t *pos) {
    const uint8_t *s = (const uint8_t *)str + *pos;
    size_t left = n - *pos;
    uint8_t c = s[0];
    /* the same acceptance rules as llama.cpp's unicode_cpt_from_utf8, so malformed text splits the same way */
    if (c < 0x80) { *pos += 1; return c; }
    if ((c & 0x40) == 0) goto bad;
    if ((c & 0x20) == 0) {
        if (left < 2 || (s[1] & 0xC0) != 0x80) goto bad;
        *pos += 2;
        return ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if ((c & 0x10) == 0) {
        if (left < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) goto bad;
        *pos += 3;
        return ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    if ((c & 0x08) == 0) {
        if (left < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) goto bad;
        uint32_t cpt = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
                       ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        if (cpt > 0x10FFFF) goto bad;
        *pos += 4;
        return cpt;
    }
bad:
    *pos += 1;
    return 0xFFFD;
}

int bg_utf8_encode(uint32_t cpt, char *out) {
    uint8_t *o = (uint8_t *)out;
    if (cpt <= 0x7F) { o[0] = (uint8_t)cpt; return 1; }
    if (cpt <= 0x7FF) {
        o[0] = (uint8_t)(0xC0 | (cpt >> 6));
        o[1] = (uint8_t)(0x80 | (cpt & 0x3F));
        return 2;
    }
    if (cpt > 0x10FFFF) cpt = 0xFFFD;
    if (cpt <= 0xFFFF) {
        o[0] = (uint8_t)(0xE0 | (cpt >> 12));
        o[1] = (uint8_t)(0x80 | ((cpt >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cpt & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cpt >> 18));
    o[1] = (uint8_t)(0x80 | ((cpt >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cpt >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (cpt & 0x3F));
    return 4;
}
