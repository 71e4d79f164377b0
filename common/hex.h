/*
 * common/hex.h: the value of one hexadecimal digit, for parsers (HTTP chunk
 * sizes, certificate pins). Inline, header only, ASCII only: no locale, no
 * allocation, no formatting (writers keep their own "0123456789abcdef").
 */
#ifndef MUS_COMMON_HEX_H
#define MUS_COMMON_HEX_H

/* 0..15 for '0'-'9', 'a'-'f' and 'A'-'F'; -1 for any other char. */
static inline int
hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
