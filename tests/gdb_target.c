/*
 * gdb_target.c - the program tests/check_dune_gdb.sh debugs: a function
 * to break in, a local to print, a loop to step through.  With an
 * argument it loops that many times, slowly, for a debugger to attach.
 */
/* Whatever CFLAGS say: the transcript steps line by line and prints locals. */
#pragma GCC optimize("O0")

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int square(int x)
{
    int y = x * x;
    return y;
}

int main(int argc, char **argv)
{
    int loops = argc > 1 ? atoi(argv[1]) : 3;
    int total = 0;

    for (int i = 1; i <= loops; i++) {
        total += square(i);
        if (argc > 1)
            usleep(20000);
    }
    printf("total %d\n", total);
    return 0;
}
