/*
 * kvm_counts.c - what a written page costs the hypervisor, counted, not
 * timed: KVM's own per-vCPU statistics (KVM_GET_STATS_FD) around a loop
 * that writes one byte to each of N clean pages, once per dirty source.
 * For docs/hardware-virtualization.md: under emulated SVM every time is
 * meaningless, but an exit is an exit.
 *
 *   tests/svm/kvm-counts [-n pages] [-r rounds]      (defaults 4096, 3)
 *
 * Rows: "untracked" (the same writes with no tracker: the floor), then
 * pte, kvm and wp.  Columns, per written page: VM exits, KVM page faults
 * fixed (pf_fixed) and write-protect faults the guest resolved itself
 * (wp's, in CPL0 mode) during the writes; per collect: exits, TLB flushes KVM
 * did (tlb_flush) and Dune's shootdown round trips.  The stats file is
 * read with a forwarded pread, whose own exit is subtracted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dirty.h"
#include "dune.h"
#include "dune_internal.h"

#define PG DUNE_PAGE_SIZE

enum { S_EXITS, S_PF_FIXED, S_TLB_FLUSH, NSTATS };
static const char *const stat_names[NSTATS] = { "exits", "pf_fixed", "tlb_flush" };

struct stats_fd {
    int fd;
    off_t off[NSTATS]; /* -1: the kernel has no such counter */
};

/* Find our counters among the vCPU's descriptors (read once, natively
 * named: "exits", "pf_fixed", "tlb_flush"). */
static int stats_open(struct stats_fd *s, int vcpu_fd)
{
    struct kvm_stats_header h;
    size_t dsz;
    char *descs;

    s->fd = ioctl(vcpu_fd, KVM_GET_STATS_FD, NULL);
    if (s->fd < 0)
        return -errno;
    if (pread(s->fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
        return -EIO;
    dsz = sizeof(struct kvm_stats_desc) + h.name_size;
    descs = calloc(h.num_desc, dsz);
    if (!descs)
        return -ENOMEM;
    if (pread(s->fd, descs, dsz * h.num_desc, h.desc_offset) != (ssize_t)(dsz * h.num_desc)) {
        free(descs);
        return -EIO;
    }
    for (int i = 0; i < NSTATS; i++) {
        s->off[i] = -1;
        for (unsigned j = 0; j < h.num_desc; j++) {
            struct kvm_stats_desc *d = (void *)(descs + j * dsz);
            if (!strcmp(d->name, stat_names[i]))
                s->off[i] = h.data_offset + d->offset;
        }
    }
    free(descs);
    return 0;
}

/* One forwarded pread per counter: each costs one exit of its own. */
static void stats_read(const struct stats_fd *s, uint64_t *v)
{
    for (int i = 0; i < NSTATS; i++) {
        v[i] = 0;
        if (s->off[i] >= 0 && pread(s->fd, &v[i], 8, s->off[i]) != 8)
            v[i] = 0;
    }
}

struct row {
    double exits_pp, pf_pp, guest_pf_pp, collect_exits, collect_flushes, collect_shootdowns;
    long reported;
};

static unsigned long shootdowns(void)
{
    struct dune_status st;

    dune_status(&st);
    return st.shootdowns;
}

/* wp's faults resolved by the guest's own #PF handler, without an exit. */
static unsigned long guest_faults(void)
{
    struct dune_status st;

    dune_status(&st);
    return st.wp_faults;
}

/* Writes, then a collect, each bracketed by counter reads.  A read of
 * the NSTATS counters costs NSTATS exits, counted in the next delta
 * (the pread's exit comes before the kernel reads the counter). */
static void measure(const struct stats_fd *s, struct dirty_tracker *t, char *mem, size_t n,
                    uint64_t *bitmap, struct row *out)
{
    uint64_t a[NSTATS], b[NSTATS], c[NSTATS];
    unsigned long sd0, sd1, g0, g1;

    g0 = guest_faults();
    stats_read(s, a);
    for (size_t i = 0; i < n; i++)
        mem[i * PG]++;
    stats_read(s, b);
    g1 = guest_faults();
    sd0 = shootdowns();
    out->reported = t ? dirty_collect(t, mem, n * PG, bitmap) : 0;
    sd1 = shootdowns();
    stats_read(s, c);
    out->exits_pp = (double)(b[S_EXITS] - a[S_EXITS] - NSTATS) / n;
    out->pf_pp = (double)(b[S_PF_FIXED] - a[S_PF_FIXED]) / n;
    out->guest_pf_pp = (double)(g1 - g0) / n;
    out->collect_exits = (double)(c[S_EXITS] - b[S_EXITS] - NSTATS);
    out->collect_flushes = (double)(c[S_TLB_FLUSH] - b[S_TLB_FLUSH]);
    out->collect_shootdowns = (double)(sd1 - sd0);
}

static void print_row(const char *name, const struct row *r, size_t n)
{
    printf("| %-9s | %10.3f | %13.3f | %14.3f | %6ld/%-6zu | %13.0f | %15.0f | %15.0f |\n", name,
           r->exits_pp, r->pf_pp, r->guest_pf_pp, r->reported, n, r->collect_exits,
           r->collect_flushes, r->collect_shootdowns);
}

int main(int argc, char **argv)
{
    size_t n = 4096;
    int rounds = 3, o, r;
    struct dune_status st;
    struct stats_fd s;
    uint64_t *bitmap;
    char *mem;

    while ((o = getopt(argc, argv, "n:r:")) != -1) {
        if (o == 'n')
            n = strtoul(optarg, NULL, 0);
        else if (o == 'r')
            rounds = atoi(optarg);
        else {
            fprintf(stderr, "usage: %s [-n pages] [-r rounds]\n", argv[0]);
            return 2;
        }
    }
    if (n == 0 || rounds < 1) {
        fprintf(stderr, "kvm-counts: -n and -r must be positive\n");
        return 2;
    }
    mem = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
               -1, 0);
    bitmap = calloc((n + 63) / 64, 8);
    if (mem == MAP_FAILED || !bitmap) {
        perror("kvm-counts");
        return 1;
    }
    memset(mem, 1, n * PG);
    if ((r = dune_enter(NULL)) < 0) {
        dune_status(&st);
        printf("kvm-counts: cannot enter Dune: %s\n", st.reason[0] ? st.reason : strerror(-r));
        return 77;
    }
    if ((r = stats_open(&s, dune_self->fd)) < 0) {
        printf("kvm-counts: no KVM statistics for the vCPU (KVM_GET_STATS_FD): %s\n",
               strerror(-r));
        return 77;
    }
    dune_status(&st);
    printf("kvm-counts: mode %s, %zu pages written per round, last of %d rounds%s\n",
           dune_mode_name(st.mode), n, rounds, s.off[S_TLB_FLUSH] < 0 ? " (no tlb_flush stat)" : "");
    printf("| source    | exits/page | pf_fixed/page | guest #PF/page | reported      | collect exits | "
           "KVM TLB flushes | Dune shootdowns |\n");
    printf("|-----------|------------|---------------|----------------|---------------|---------------|"
           "-----------------|-----------------|\n");
    {
        struct row row;
        for (int i = 0; i < rounds; i++)
            measure(&s, NULL, mem, n, bitmap, &row);
        print_row("untracked", &row, n);
    }
    static const enum dirty_backend dune_sources[] = {DIRTY_PTE, DIRTY_KVM, DIRTY_WP};
    for (size_t i = 0; i < sizeof dune_sources / sizeof dune_sources[0]; i++) {
        enum dirty_backend b = dune_sources[i];
        struct dirty_tracker *t;
        struct row row;

        if (dirty_open(b, &t) < 0) {
            printf("| %-9s | cannot run: %s\n", dirty_backend_name(b), dirty_last_error());
            continue;
        }
        /* No holding: every round re-arms every page, as a fresh cycle. */
        dirty_set_hold(t, 0);
        if (dirty_track(t, mem, n * PG) < 0) {
            printf("| %-9s | cannot track the range\n", dirty_backend_name(b));
            dirty_close(t);
            continue;
        }
        dirty_collect(t, mem, n * PG, bitmap);
        for (int i = 0; i < rounds; i++)
            measure(&s, t, mem, n, bitmap, &row);
        print_row(dirty_backend_name(b), &row, n);
        dirty_untrack(t, mem, n * PG);
        dirty_close(t);
    }
    dune_leave();
    return 0;
}
