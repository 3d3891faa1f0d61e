/* Assertions that stay on in release builds: a broken invariant of our own code
 * is a programmer error and stops the process (TigerBeetle's rule). Bad input is
 * never asserted on; it is an error code. */
#ifndef SEQ_ASSERT_H
#define SEQ_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#define SEQ_ASSERT(cond)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "FATAL assertion failed: %s at %s:%d in %s\n",     \
                    #cond, __FILE__, __LINE__, __func__);                     \
            abort();                                                          \
        }                                                                     \
    } while (0)

#define SEQ_UNREACHABLE() SEQ_ASSERT(0 && "unreachable")

#define SEQ_MUST_CHECK __attribute__((warn_unused_result))

#endif
