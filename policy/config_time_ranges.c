/*
 * policy/config_time_ranges.c: the time_ranges section (see config.h): a
 * mapping of named ranges, each the days of the week and one span of hours
 * (HH:MM-HH:MM, local time, not across midnight) that a policy's category
 * rule may name. It only parses and validates; config.c resolves the names
 * rules use once the whole file is read, and policy/policy.c evaluates them.
 */
#include <stddef.h>
#include <string.h>

#include "config_load.h"

static const struct word day_words[] = {
    { "mon", 1 << 0 }, { "tue", 1 << 1 }, { "wed", 1 << 2 }, { "thu", 1 << 3 },
    { "fri", 1 << 4 }, { "sat", 1 << 5 }, { "sun", 1 << 6 },
};

static int
item_day(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    config_time_range_t *t = base;
    char q[SHOW_LEN];
    int v;

    (void)i;
    if (cl_get_word(ld, "day", day_words, sizeof(day_words) / sizeof(day_words[0]), &v) < 0)
        return -1;
    if (t->days & v)
        return cl_fail(ld, ld->ev.start_mark, "duplicate '%s' entry '%s'", def->name,
                       cl_show(q, (const char *)ld->ev.data.scalar.value));
    t->days = (uint8_t)(t->days | v);
    return 0;
}

static int
h_days(struct loader *ld, const struct key_def *def, void *base)
{
    config_time_range_t *t = base;
    yaml_mark_t start = ld->ev.start_mark;

    t->days = 0;
    if (cl_parse_list(ld, def, base, 7, item_day) < 0)
        return -1;
    if (t->days == 0)
        return cl_fail(ld, start, "'days' must not be empty");
    return 0;
}

/* "HH:MM" at s (5 characters); end allows 24:00. Minutes or -1. */
static int
hhmm(const char *s, bool end)
{
    int h, m;

    for (int i = 0; i < 5; i++)
        if (i == 2 ? s[i] != ':' : (s[i] < '0' || s[i] > '9'))
            return -1;
    h = (s[0] - '0') * 10 + (s[1] - '0');
    m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && (!end || m != 0)))
        return -1;
    return h * 60 + m;
}

static int
h_hours(struct loader *ld, const struct key_def *def, void *base)
{
    config_time_range_t *t = base;
    const char *text = NULL;
    char q[SHOW_LEN];
    int from, to;

    (void)def;
    if (cl_get_scalar(ld, "'hours'", &text) < 0)
        return -1;
    if (strlen(text) != 11 || text[5] != '-' || (from = hhmm(text, false)) < 0 ||
        (to = hhmm(text + 6, true)) < 0)
        return cl_fail(ld, ld->ev.start_mark,
                       "invalid hours '%s' (use HH:MM-HH:MM, e.g. 09:00-17:00; 24:00 ends the day)",
                       cl_show(q, text));
    if (from >= to)
        return cl_fail(ld, ld->ev.start_mark,
                       "hours '%s' must start before they end (a range cannot cross midnight)",
                       cl_show(q, text));
    t->from_min = (uint16_t)from;
    t->to_min = (uint16_t)to;
    return 0;
}

enum { TR_KEY_DAYS = 0, TR_KEY_HOURS };
static const struct key_def time_range_keys[] = {
    [TR_KEY_DAYS] = { "days", h_days, 0, 0, NULL },
    [TR_KEY_HOURS] = { "hours", h_hours, 0, 0, NULL },
};
static const struct section time_range_section = CL_SECTION("in a time range", time_range_keys);

/* A range's value: { days, hours }, both required. */
static int
time_range_value(struct loader *ld, void *items, size_t i)
{
    config_time_range_t *t = (config_time_range_t *)items + i;
    yaml_mark_t vstart = ld->ev.start_mark;
    uint64_t seen;

    if (ld->ev.type != YAML_MAPPING_START_EVENT)
        return cl_fail(ld, vstart, "time range '%s' must be a mapping { days, hours }, got %s",
                       t->name, cl_kind_name(&ld->ev));
    if (cl_parse_mapping(ld, &time_range_section, t, &seen) < 0)
        return -1;
    if (!(seen & (UINT64_C(1) << TR_KEY_DAYS)))
        return cl_fail(ld, vstart, "time range '%s' has no 'days'", t->name);
    if (!(seen & (UINT64_C(1) << TR_KEY_HOURS)))
        return cl_fail(ld, vstart, "time range '%s' has no 'hours'", t->name);
    return 0;
}

/* time_ranges: { name: { days: [...], hours: "HH:MM-HH:MM" }, ... } */
const struct cl_named_list config_time_ranges_list = {
    CL_NAMED("time range", config_time_range_t, name, CONFIG_MAX_TIME_RANGES),
    .shape = "name: { days, hours }", .name_what = "time range name", .value = time_range_value,
};
