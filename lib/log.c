/* The logger: level filter and line formatting. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static seq_log_level current_level = SEQ_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void seq_log_set_level(seq_log_level level) { current_level = level; }

seq_log_level seq_log_get_level(void) { return current_level; }

int seq_log_level_parse(const char *name)
{
    for (int i = 0; i <= SEQ_LOG_OFF; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void seq_log(seq_log_level level, const char *event, const char *fmt, ...)
{
    if (level < current_level || level >= SEQ_LOG_OFF)
        return;
    char line[1024];
    int n = snprintf(line, sizeof line, "%s event=%s ", level_names[level], event);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}
