/*
 * enter.c - the public entry points: enter, leave, status.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dune_internal.h"

unsigned long dune_native_children(void);

const char *dune_mode_name(enum dune_mode m)
{
    switch (m) {
    case DUNE_MODE_CPL0:
        return "cpl0";
    case DUNE_MODE_CPL3:
        return "cpl3";
    default:
        return "auto";
    }
}

static int resolve_mode(const struct dune_options *opts, enum dune_mode *out)
{
    enum dune_mode m = opts ? opts->mode : DUNE_MODE_AUTO;
    const char *env = getenv("DUNE_MODE");
    bool from_env = false;
    int r;

    if (m == DUNE_MODE_AUTO && env && *env) {
        from_env = true;
        if (!strcmp(env, "cpl0"))
            m = DUNE_MODE_CPL0;
        else if (!strcmp(env, "cpl3"))
            m = DUNE_MODE_CPL3;
        else if (strcmp(env, "auto")) {
            dune_set_error(-EINVAL, "DUNE_MODE=%s: expected auto, cpl0 or cpl3", env);
            return -EINVAL;
        }
    }
    if (m == DUNE_MODE_AUTO)
        m = arch_mode_auto();
    env = getenv("DUNE_FORK");
    if (env && !strcmp(env, "native"))
        dune_vm.fork_native = true;
    if (m != DUNE_MODE_CPL0 && m != DUNE_MODE_CPL3) {
        dune_set_error(-EINVAL, "unknown mode %d", (int)m);
        return -EINVAL;
    }
    if ((r = arch_mode_check(m, from_env)) < 0)
        return r;
    *out = m;
    return 0;
}

/* The first thread in picks the VM's mode and mirrors the address space.
 * Caller holds dune_vm.lock. */
static int prepare_vm_locked(enum dune_mode m)
{
    int r;

    if (dune_vm.mirrored) {
        if (dune_vm.mode == m)
            return 0;
        dune_set_error(-EINVAL, "the VM already runs in %s mode", dune_mode_name(dune_vm.mode));
        return -EINVAL;
    }
    dune_vm.mode = m;
    r = mirror_all();
    if (r < 0)
        dune_set_error(r, "cannot mirror the address space: %s", strerror(-r));
    else
        dune_vm.mirrored = true;
    return r;
}

/*
 * The VM, mirrored, and a vCPU for this thread, under one hold of the
 * lock: once the vCPU counts as a thread inside, nobody's last leave can
 * tear the VM down under us.  If we fail with nobody inside, the VM goes.
 */
static int take_vcpu(enum dune_mode m, struct dune_vcpu **out)
{
    int r;

    pthread_mutex_lock(&dune_vm.lock);
    r = vm_init_locked();
    if (r == 0)
        r = prepare_vm_locked(m);
    if (r == 0 && (r = vcpu_get_locked(out)) < 0)
        dune_set_error(r, "cannot create a vCPU: %s", strerror(-r));
    if (r < 0 && dune_vm.active_vcpus == 0)
        vm_teardown_locked();
    pthread_mutex_unlock(&dune_vm.lock);
    return r;
}

int dune_enter(const struct dune_options *opts)
{
    struct dune_vcpu *v;
    enum dune_mode m;
    int r;

    if (dune_self)
        return -EALREADY;
    if (opts && opts->flags)
        return -EINVAL;
    if ((r = resolve_mode(opts, &m)) < 0 || (r = take_vcpu(m, &v)) < 0)
        return r;
    r = arch_vcpu_setup(v);
    if (r < 0) {
        dune_set_error(r, "cannot set up the vCPU: %s", strerror(-r));
        vcpu_release(v);
        return r;
    }
    dune_log_init(); /* after the VM: its descriptor goes where the VM's went */
    dune_self = v;
    return arch_enter(v);
}

/* The hypercall brings the thread back natively (dune_self is NULL then);
 * only now is the vCPU's host stack free to hand over, or to unmap with
 * the VM if this was the last thread inside. */
int dune_leave(void)
{
    struct dune_vcpu *v = dune_self;
    int r;

    if (!v)
        return -ENOTCONN;
    r = arch_leave();
    if (r == 0) {
        tlb_batch_forget();
        vcpu_release(v);
    }
    return r;
}

int dune_active(void)
{
    return dune_self != NULL;
}

int dune_status(struct dune_status *st)
{
    memset(st, 0, sizeof *st);
    st->active = dune_self != NULL;
    st->mode = dune_vm.initialized ? dune_vm.mode : DUNE_MODE_AUTO;
    st->error = dune_vm.error;
    snprintf(st->reason, sizeof st->reason, "%s", dune_vm.reason);
    st->memslots = slots_count();
    st->syscalls = atomic_load(&dune_vm.syscalls);
    st->exits = atomic_load(&dune_vm.exits);
    st->faults = atomic_load(&dune_vm.faults);
    st->shootdowns = atomic_load(&dune_vm.shootdowns);
    st->vcpus = (unsigned)dune_vm.nvcpus;
    st->max_vcpus = dune_vm.max_vcpus > 0 ? (unsigned)dune_vm.max_vcpus : 0;
    st->wp_faults = pt_wp_fast_faults();
    st->wp_exits = atomic_load(&dune_vm.wp_exits);
    return 0;
}

/* One line for DUNE_VERBOSE=1, written without stdio (we may be on the
 * host side of a thread that is inside malloc); log.c decides where. */
void dune_print_summary(void)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf,
                     "dune: mode=%s memslots=%u syscalls=%lu exits=%lu faults=%lu vcpus=%d "
                     "(cap %d) native-children=%lu",
                     dune_mode_name(dune_vm.mode), slots_count(), atomic_load(&dune_vm.syscalls),
                     atomic_load(&dune_vm.exits), atomic_load(&dune_vm.faults), dune_vm.nvcpus,
                     dune_vm.max_vcpus, dune_native_children());

    if (n > 0)
        dune_log_line(DUNE_MSG_NOTE, buf, n < (int)sizeof buf ? (size_t)n : sizeof buf - 1);
}
