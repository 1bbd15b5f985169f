/*
 * dirty_bits.c - page bitmaps: 1 bit per page, LSB first.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "dirty_tracker.h"

void dirty_bits_set_range(uint64_t *b, size_t from, size_t to)
{
    for (size_t i = from; i < to;) {
        if (i % 64 == 0 && to - i >= 64) {
            b[i / 64] = ~0ULL;
            i += 64;
        } else {
            dirty_bit_set(b, i++);
        }
    }
}

void dirty_bits_set_range_atomic(_Atomic uint64_t *b, size_t from, size_t to)
{
    while (from < to) {
        size_t w = from / 64, lo = from % 64;
        size_t hi = (to - w * 64 >= 64) ? 64 : to - w * 64;
        uint64_t mask = (hi == 64 ? ~0ULL : (1ULL << hi) - 1) & ~((1ULL << lo) - 1);
        atomic_fetch_or(&b[w], mask);
        from = w * 64 + hi;
    }
}

long dirty_bits_count(const uint64_t *b, size_t n)
{
    long c = 0;
    for (size_t w = 0; w < n / 64; w++)
        c += __builtin_popcountll(b[w]);
    if (n % 64)
        c += __builtin_popcountll(b[n / 64] & ((1ULL << (n % 64)) - 1));
    return c;
}

void dirty_bits_take(_Atomic uint64_t *src, size_t first, size_t n, uint64_t *dst)
{
    if (first % 64 == 0) {
        for (size_t w = 0; w < DIRTY_WORDS(n); w++) {
            uint64_t mask = (n - w * 64 >= 64) ? ~0ULL : (1ULL << (n - w * 64)) - 1;
            dst[w] |= atomic_fetch_and(&src[first / 64 + w], ~mask) & mask;
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t j = first + i;
        uint64_t bit = 1ULL << (j % 64);
        if (atomic_load_explicit(&src[j / 64], memory_order_relaxed) & bit) {
            if (atomic_fetch_and(&src[j / 64], ~bit) & bit)
                dirty_bit_set(dst, i);
        }
    }
}

void dirty_bits_or_from(const uint64_t *src, size_t first, size_t n, uint64_t *dst)
{
    if (first % 64 == 0) {
        for (size_t w = 0; w < DIRTY_WORDS(n); w++) {
            uint64_t v = src[first / 64 + w];
            if (w == n / 64 && n % 64)
                v &= (1ULL << (n % 64)) - 1;
            dst[w] |= v;
        }
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (dirty_bit_get(src, first + i))
            dirty_bit_set(dst, i);
}
