/*
 * minilib.c - the few libc functions a freestanding clang build may call
 * on its own (struct copies and zeroing) in the bare-metal test image.
 */
#include <stddef.h>

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);

void *memset(void *d, int c, size_t n)
{
    volatile unsigned char *p = d;   /* volatile: not turned back into memset */
    while (n--)
        *p++ = (unsigned char)c;
    return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
    volatile unsigned char *p = d;
    const unsigned char *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}
