/*
 * dirty-usable NAME - can the dirty-page source NAME be used here?  Exit 0
 * (yes) or 77 (no: the kernel or machine lacks it), the reason on stdout;
 * 2 for a name that is not a source.  For the shell suites, which run a
 * source's cases only where it exists and say why they skip the others.
 */
#include <stdio.h>

#include "dirty.h"

int main(int argc, char **argv)
{
    enum dirty_backend b;
    char why[300] = "usable";

    if (argc != 2 || dirty_backend_from_name(argv[1], &b) != 0) {
        fprintf(stderr, "usage: dirty-usable SOURCE (a dirty-page source's name)\n");
        return 2;
    }
    if (dirty_probe(b, why, sizeof why) != 0) {
        printf("%s\n", why);
        return 77;
    }
    printf("usable\n");
    return 0;
}
