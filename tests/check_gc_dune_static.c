/* A statically linked program, for gc-dune-run's "cannot preload" message
 * (tests/check_gc_dune.sh). */
#include <stdio.h>

int main(void)
{
    puts("static program ran");
    return 0;
}
