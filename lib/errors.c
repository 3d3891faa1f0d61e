/* The message and name of every error code, generated from SEQ_ERRNO_MAP. */
#include "errors.h"

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
