/*
 * policy/config_events.c: the configuration file as a stream of libyaml
 * events, one at a time, with aliases, anchors and tags refused, and the
 * messages of the whole loader: "name:line:column: message" at a node's
 * position, a value quoted safely, libyaml's own errors turned into the
 * same form. It does not know any key; the sections (config_load.h) and
 * config.c's document walk decide what the events mean.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <yaml.h>

#include "../common/err.h"
#include "config_load.h"

/* ---- messages ---- */

/* Records "name:line:column: message" (mark is 0-based) and returns -1. */
int
cl_fail(struct loader *ld, yaml_mark_t mark, const char *fmt, ...)
{
    char msg[CONFIG_ERR_LEN];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    err_set(ld->err, ld->errlen, "%s:%zu:%zu: %s", ld->name,
            mark.line + 1, mark.column + 1, msg);
    return -1;
}

/* Copies a value from the file into buf (SHOW_LEN bytes) for a message:
 * control characters become '?', long values are cut (on a UTF-8 boundary)
 * and end with "...". */
const char *
cl_show(char *buf, const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0' && i < SHOW_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (s[i] != '\0') {
        while (i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80)
            i--;
        memcpy(buf + i, "...", 4);
    } else {
        buf[i] = '\0';
    }
    return buf;
}

/* Line and column (0-based, in characters) of a byte offset of the input. */
static yaml_mark_t
offset_mark(const struct loader *ld, size_t offset)
{
    yaml_mark_t m = {0};

    if (offset > ld->len)
        offset = ld->len;
    for (size_t i = 0; i < offset; i++) {
        unsigned char c = (unsigned char)ld->data[i];
        if (c == '\n') {
            m.line++;
            m.column = 0;
        } else if ((c & 0xc0) != 0x80) {
            m.column++;
        }
    }
    m.index = offset;
    return m;
}

/* Turns libyaml's error state into a message. Returns -1. */
static int
syntax_error(struct loader *ld)
{
    const yaml_parser_t *p = &ld->parser;
    const char *problem = p->problem ? p->problem : "invalid YAML";

    switch (p->error) {
    case YAML_MEMORY_ERROR:
        err_set(ld->err, ld->errlen, "%s: out of memory while parsing", ld->name);
        return -1;
    case YAML_READER_ERROR:
        if (p->problem_value != -1)
            return cl_fail(ld, offset_mark(ld, p->problem_offset), "%s (#%X)",
                           problem, (unsigned)p->problem_value);
        return cl_fail(ld, offset_mark(ld, p->problem_offset), "%s", problem);
    case YAML_SCANNER_ERROR:
    case YAML_PARSER_ERROR:
        if (p->context)
            return cl_fail(ld, p->problem_mark, "%s (%s at line %zu column %zu)",
                           problem, p->context, p->context_mark.line + 1,
                           p->context_mark.column + 1);
        return cl_fail(ld, p->problem_mark, "%s", problem);
    default:
        return cl_fail(ld, p->mark, "%s", problem);
    }
}

/* ---- events ---- */

int
cl_next_event(struct loader *ld)
{
    const yaml_char_t *anchor = NULL, *tag = NULL;
    char q[SHOW_LEN];

    if (ld->have_ev) {
        yaml_event_delete(&ld->ev);
        ld->have_ev = false;
    }
    if (!yaml_parser_parse(&ld->parser, &ld->ev))
        return syntax_error(ld);
    ld->have_ev = true;

    switch (ld->ev.type) {
    case YAML_ALIAS_EVENT:
        return cl_fail(ld, ld->ev.start_mark, "aliases are not allowed ('*%s')",
                       cl_show(q, (const char *)ld->ev.data.alias.anchor));
    case YAML_SCALAR_EVENT:
        anchor = ld->ev.data.scalar.anchor;
        tag = ld->ev.data.scalar.tag;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ld->ev.data.sequence_start.anchor;
        tag = ld->ev.data.sequence_start.tag;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ld->ev.data.mapping_start.anchor;
        tag = ld->ev.data.mapping_start.tag;
        break;
    default:
        break;
    }
    if (anchor)
        return cl_fail(ld, ld->ev.start_mark, "anchors are not allowed ('&%s')",
                       cl_show(q, (const char *)anchor));
    if (tag)
        return cl_fail(ld, ld->ev.start_mark, "tags are not allowed ('%s')",
                       cl_show(q, (const char *)tag));
    return 0;
}

/* True for an empty plain scalar or "~"/"null": YAML's null. */
bool
cl_is_null(const yaml_event_t *e)
{
    const char *v;

    if (e->type != YAML_SCALAR_EVENT || e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    v = (const char *)e->data.scalar.value;
    return strcmp(v, "") == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

const char *
cl_kind_name(const yaml_event_t *e)
{
    switch (e->type) {
    case YAML_SCALAR_EVENT:
        return cl_is_null(e) ? "an empty value" : "a scalar";
    case YAML_SEQUENCE_START_EVENT:
        return "a list";
    case YAML_MAPPING_START_EVENT:
        return "a mapping";
    default:
        return "something else";
    }
}
