/*
 * common/log.h: the daemon log. Leveled, timestamped lines on stderr, safe to
 * call from any thread (one write(2) per line). It is not the access log
 * (proxy/accesslog.h) and never receives secrets: callers must not pass them.
 */
#ifndef MUS_COMMON_LOG_H
#define MUS_COMMON_LOG_H

enum log_level {
    LOG_LVL_ERROR = 0,
    LOG_LVL_WARN,
    LOG_LVL_INFO,
    LOG_LVL_DEBUG,
};

/* Maximum length of one log line, longer lines are truncated. */
#define LOG_LINE_MAX 2048

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info" or "debug"; returns -1 on anything else. */
int log_level_parse(const char *name, enum log_level *out);
const char *log_level_str(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) \
    do { if (log_get_level() >= LOG_LVL_DEBUG) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

#endif
