/* The message and name of every error code, generated from SEQ_ERRNO_MAP. */
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>

const char *seq_strerror(int err)
{
    switch (err) {
    case SEQ_OK:
        return "success";
#define SEQ_ERR_MSG_(name, msg) \
    case SEQ_E##name:           \
        return msg;
        SEQ_ERRNO_MAP(SEQ_ERR_MSG_)
#undef SEQ_ERR_MSG_
    default:
        return "unknown error";
    }
}

const char *seq_errname(int err)
{
    switch (err) {
    case SEQ_OK:
        return "OK";
#define SEQ_ERR_NAME_(name, msg) \
    case SEQ_E##name:            \
        return "E" #name;
        SEQ_ERRNO_MAP(SEQ_ERR_NAME_)
#undef SEQ_ERR_NAME_
    default:
        return "EUNKNOWN";
    }
}

void seq_err_set(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || err_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}
