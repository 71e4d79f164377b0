/*
 * tests/unit/common/test_hex.c: hex digit values (common/hex.h) for every
 * char value: the 22 digits map to 0..15, everything else (the neighbours of
 * the ranges, 'g', NUL, bytes above 127) to -1.
 */
#include <criterion/criterion.h>

#include <limits.h>
#include <string.h>

#include "../../../common/hex.h"

Test(hex, digits)
{
    const char *lower = "0123456789abcdef", *upper = "0123456789ABCDEF";

    for (int i = 0; i < 16; i++) {
        cr_expect_eq(hex_digit(lower[i]), i, "'%c'", lower[i]);
        cr_expect_eq(hex_digit(upper[i]), i, "'%c'", upper[i]);
    }
}

Test(hex, every_other_char_is_minus_one)
{
    const char *digits = "0123456789abcdefABCDEF";
    int n_digits = 0;

    for (int v = CHAR_MIN; v <= CHAR_MAX; v++) {
        char c = (char)v;
        if (c != '\0' && strchr(digits, c) != NULL) {
            n_digits++;
            continue;
        }
        cr_expect_eq(hex_digit(c), -1, "char %d", v);
    }
    cr_expect_eq(n_digits, 22);
    cr_expect_eq(hex_digit('/'), -1);
    cr_expect_eq(hex_digit(':'), -1);
    cr_expect_eq(hex_digit('@'), -1);
    cr_expect_eq(hex_digit('G'), -1);
    cr_expect_eq(hex_digit('`'), -1);
    cr_expect_eq(hex_digit('g'), -1);
}
