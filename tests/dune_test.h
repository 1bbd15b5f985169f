/*
 * dune_test.h - what the Dune Check suites share.
 */
#ifndef DUNE_TEST_H
#define DUNE_TEST_H

#include <check.h>

#include "dune.h"

/* Enter Dune or fail the test with the reason dune_status() gives. */
static inline void enter(void)
{
    struct dune_status st;
    int r = dune_enter(NULL);

    dune_status(&st);
    ck_assert_msg(r == 0, "dune_enter: %d (%s)", r, st.reason);
}

#endif
