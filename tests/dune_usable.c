/*
 * dune-usable - the shell suites' way of asking dune_test.h's question:
 * can Dune be used here?  Exit 0 (yes), 77 (no: skip) or 1 (it should
 * work and does not: fail); the reason on stdout.  See tests/dune_usable.sh.
 */
#include "dune_test.h"

int main(void)
{
    char why[300] = "usable";
    int r = dune_test_usable(why, sizeof why);

    printf("%s\n", why);
    return r;
}
