/*
 * admin/views_ops.c: the documents of the operator's pages over the live
 * state and the archive (see views.h): the identity map searched and paged
 * (proxy/status.h's "map", the document `musctl map` prints), a headend's
 * connection test ("test NAME"), and the scheduled reports' files
 * (db/repsched.h's list of the reports.archive directory in force). Nothing
 * here writes, and nothing knows HTTP.
 */
#include "views.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../db/repsched.h"

/* Whether entry e matches the search q (NULL: everything). */
static bool
map_match(const json_t *e, const char *q)
{
    const char *name = json_string_value(json_object_get(e, "name"));
    const char *ip = json_string_value(json_object_get(e, "ip"));

    if (q == NULL || q[0] == '\0')
        return true;
    return (name != NULL && strcasestr(name, q) != NULL) ||
           (ip != NULL && strncmp(ip, q, strlen(q)) == 0);
}

json_t *
views_map(const view_env_t *env, const query_view_t *v, char *err, size_t errlen)
{
    json_t *map = status_request(env->src, "map"), *entries, *rows, *e, *doc;
    size_t i, matched = 0, total, first, pages;

    if (map == NULL || !json_is_array(entries = json_object_get(map, "entries"))) {
        const char *why = map ? json_string_value(json_object_get(map, "error")) : NULL;
        snprintf(err, errlen, "the identity map: %s",
                 why != NULL ? why : map != NULL ? "no entries" : "out of memory");
        json_decref(map);
        return NULL;
    }
    rows = json_array();
    total = json_array_size(entries);
    first = ((size_t)(v->page ? v->page : 1) - 1) * VIEWS_MAP_ROWS;
    json_array_foreach(entries, i, e) {
        if (!map_match(e, v->search))
            continue;
        if (matched >= first && matched < first + VIEWS_MAP_ROWS)
            json_array_append(rows, e);
        matched++;
    }
    pages = (matched + VIEWS_MAP_ROWS - 1) / VIEWS_MAP_ROWS;
    doc = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o}", "page", "map", "q",
                    v->search ? v->search : "", "page_number", (json_int_t)(v->page ? v->page : 1),
                    "page_rows", (json_int_t)VIEWS_MAP_ROWS, "pages", (json_int_t)pages,
                    "total", (json_int_t)total, "matched", (json_int_t)matched, "entries", rows);
    json_decref(map);
    if (doc == NULL)
        snprintf(err, errlen, "out of memory");
    return doc;
}

void
views_archive_dir(const view_env_t *env, char *out, size_t cap)
{
    cfgref_t *ref = env->src->get_cfg(env->src->cfg_arg);
    const config_t *cfg = ref->cfg;

    snprintf(out, cap, "%s", cfg->store.path[0] != '\0' ? cfg->reports.archive : "");
    cfgref_put(ref);
}

json_t *
views_archive(const view_env_t *env, char *err, size_t errlen)
{
    char dir[4096], why[REPSCHED_ERR_MAX];
    json_t *list, *doc;

    views_archive_dir(env, dir, sizeof(dir));
    if (dir[0] == '\0')
        return json_pack("{s:s, s:s, s:[], s:i}", "page", "archive", "dir", "", "files", "total",
                         0);
    list = repsched_list(dir, why, sizeof(why));
    if (list == NULL) {
        snprintf(err, errlen, "%s: %s", dir, why);
        return NULL;
    }
    doc = json_pack("{s:s, s:s, s:O, s:O}", "page", "archive", "dir", dir, "files",
                    json_object_get(list, "files"), "total", json_object_get(list, "total"));
    json_decref(list);
    if (doc == NULL)
        snprintf(err, errlen, "out of memory");
    return doc;
}

json_t *
views_headend_test(const view_env_t *env, const char *name, char *err, size_t errlen)
{
    char line[QUERY_HEADEND_MAX + 8];
    json_t *t;

    snprintf(line, sizeof(line), "test %s", name);
    t = status_request(env->src, line);
    if (t == NULL)
        snprintf(err, errlen, "out of memory");
    return t;
}
