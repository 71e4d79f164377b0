/*
 * common/err.h: the error-message buffer every "char *err, size_t errlen"
 * function writes: one formatter, so a NULL or empty buffer is always
 * accepted and the message is always NUL-terminated (cut to fit).
 */
#ifndef MUS_COMMON_ERR_H
#define MUS_COMMON_ERR_H

#include <stddef.h>

/* Formats the message into err (errlen bytes). err may be NULL. */
void err_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
