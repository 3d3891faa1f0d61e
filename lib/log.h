/* One line per event to stderr: level first, then key=value fields. */
#ifndef SEQ_LOG_H
#define SEQ_LOG_H

typedef enum { SEQ_LOG_DEBUG = 0, SEQ_LOG_INFO, SEQ_LOG_WARN, SEQ_LOG_ERROR, SEQ_LOG_OFF } seq_log_level;

void seq_log_set_level(seq_log_level level);
seq_log_level seq_log_get_level(void);
/* Parses "debug", "info", "warn", "error", "off"; returns -1 on anything else. */
int seq_log_level_parse(const char *name);

/* fmt continues the line after "LEVEL event=<event> ", e.g. "peer=%u err=%s". */
void seq_log(seq_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define SEQ_DEBUG(ev, ...) seq_log(SEQ_LOG_DEBUG, ev, __VA_ARGS__)
#define SEQ_INFO(ev, ...) seq_log(SEQ_LOG_INFO, ev, __VA_ARGS__)
#define SEQ_WARN(ev, ...) seq_log(SEQ_LOG_WARN, ev, __VA_ARGS__)
#define SEQ_ERROR(ev, ...) seq_log(SEQ_LOG_ERROR, ev, __VA_ARGS__)

#endif
