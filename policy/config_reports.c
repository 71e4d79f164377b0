/*
 * policy/config_reports.c: the reports section (see config.h): where the
 * scheduled reports are archived and which periods are produced (daily,
 * weekly, monthly). Without an archive key the directory is "reports"
 * beside the store's file; with the store off there are none. It only
 * parses and validates; db/repsched.c writes the files.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config_load.h"

#define REPORTS_DIR_NAME  "reports"

static const struct word schedule_words[] = {
    { "daily", CONFIG_REPORTS_DAILY },
    { "weekly", CONFIG_REPORTS_WEEKLY },
    { "monthly", CONFIG_REPORTS_MONTHLY },
};

static int
h_archive(struct loader *ld, const struct key_def *def, void *base)
{
    config_reports_t *r = base;

    if (cl_path_off(ld, def, base) < 0)
        return -1;
    r->archive_default = false;
    return 0;
}

static int
item_schedule(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    config_reports_t *r = base;
    int v;

    (void)i;
    if (cl_get_word(ld, def->name, schedule_words,
                    sizeof(schedule_words) / sizeof(schedule_words[0]), &v) < 0)
        return -1;
    r->schedule |= (unsigned)v;
    return 0;
}

static int
h_schedule(struct loader *ld, const struct key_def *def, void *base)
{
    config_reports_t *r = base;

    r->schedule = 0;       /* the list replaces the default; [] = none */
    return cl_parse_list(ld, def, base, 8, item_schedule);
}

static const struct key_def reports_keys[] = {
    { "archive", h_archive, offsetof(config_reports_t, archive),
      sizeof(((config_reports_t *)0)->archive), NULL },
    { "schedule", h_schedule, 0, 0, NULL },
};

const struct section config_reports_section = CL_SECTION("in reports", reports_keys);

void
config_reports_defaults(config_reports_t *r)
{
    memset(r, 0, sizeof(*r));
    r->archive_default = true;
    r->schedule = CONFIG_REPORTS_DAILY | CONFIG_REPORTS_WEEKLY | CONFIG_REPORTS_MONTHLY;
}

int
config_reports_check(struct loader *ld, config_t *cfg)
{
    config_reports_t *r = &cfg->reports;
    const char *slash;
    size_t dir;
    int n;

    if (!r->archive_default)
        return 0;
    r->archive[0] = '\0';
    if (cfg->store.path[0] == '\0')
        return 0;
    slash = strrchr(cfg->store.path, '/');
    dir = slash != NULL ? (size_t)(slash - cfg->store.path) : 0;
    if (slash != NULL)
        n = snprintf(r->archive, sizeof(r->archive), "%.*s/%s", (int)(dir ? dir : 1),
                     dir ? cfg->store.path : "/", REPORTS_DIR_NAME);
    else
        n = snprintf(r->archive, sizeof(r->archive), "%s", REPORTS_DIR_NAME);
    if (n < 0 || (size_t)n >= sizeof(r->archive)) {
        r->archive[0] = '\0';
        return cl_fail(ld, ld->ev.start_mark, "store.path is too long for reports.archive beside it");
    }
    return 0;
}
