/*
 * trap.c - general-exception dispatch for the guest runtime.
 *
 * Resolved inside the guest, no VM exit:
 *   PME                    set the dirty bit (dirty.c)
 *   page invalid, PTE now  valid: the TLB held an entry cached before the
 *                          page was mapped; flush it and retry
 * Forwarded to the host:
 *   syscall                hypercall LA64_HC_SYSCALL with the frame
 *   everything else        a fault with SIGSEGV/SIGBUS/SIGILL/... meaning,
 *                          offered first to the fault hook
 */
#include "la64_guest.h"

#define SIGILL_ 4
#define SIGTRAP_ 5
#define SIGBUS_ 7
#define SIGFPE_ 8
#define SIGSEGV_ 11

la64_host_call_fn la64_host_call = la64_hvcl;
struct la64_stats la64_stats;
static la64_fault_hook_fn fault_hook;

void la64_set_fault_hook(la64_fault_hook_fn fn)
{
    fault_hook = fn;
}

static unsigned access_of(unsigned ecode)
{
    switch (ecode) {
    case LA64_ECODE_PIL: case LA64_ECODE_PNR: return LA64_ACC_READ;
    case LA64_ECODE_PIS: case LA64_ECODE_PME: return LA64_ACC_WRITE;
    case LA64_ECODE_PIF: case LA64_ECODE_PNX: return LA64_ACC_EXEC;
    default: return LA64_ACC_UNKNOWN;
    }
}

/* Map an exception the runtime cannot resolve to signal semantics. */
static void classify(unsigned ecode, struct la64_fault *info)
{
    info->access = access_of(ecode);
    switch (ecode) {
    case LA64_ECODE_PIL: case LA64_ECODE_PIS: case LA64_ECODE_PIF:
    case LA64_ECODE_ADE:
        info->sig = SIGSEGV_; info->code = LA64_SEGV_MAPERR; break;
    case LA64_ECODE_PME: case LA64_ECODE_PNR: case LA64_ECODE_PNX:
    case LA64_ECODE_PPI:
        info->sig = SIGSEGV_; info->code = LA64_SEGV_ACCERR; break;
    case LA64_ECODE_ALE:
        info->sig = SIGBUS_; info->code = LA64_BUS_ADRALN; break;
    case LA64_ECODE_BRK:
        info->sig = SIGTRAP_; info->code = LA64_TRAP_OTHER; break;
    case LA64_ECODE_FPE:
        info->sig = SIGFPE_; info->code = LA64_TRAP_OTHER; break;
    default:
        info->sig = SIGILL_; info->code = LA64_TRAP_OTHER; break;
    }
}

/* Hook first; then the host, which delivers the signal.  If the host
 * returns (it fixed the mapping, or a handler changed the context), the
 * instruction is retried. */
static void report_fault(struct la64_frame *f, unsigned ecode)
{
    struct la64_fault info = { .addr = f->badv, .era = f->era, .ecode = ecode };
    classify(ecode, &info);
    la64_stats.faults++;
    if (fault_hook && fault_hook(f, &info))
        return;
    long how = (long)(info.access | (info.code << 8) | ((unsigned)info.sig << 16));
    la64_host_call(LA64_HC_FAULT, (long)info.addr, how, (long)f->era, (long)ecode, 0);
}

/* Page invalid: either a stale V=0 entry for a page mapped since, or a
 * real fault. */
static void page_invalid(struct la64_frame *f, unsigned ecode)
{
    struct la64_pgtable *pt = la64_active_pt;
    uint64_t *ptep = pt ? la64_pt_lookup(pt, f->badv) : NULL;
    if (ptep && (*ptep & LA64_PTE_V)) {
        la64_tlb_flush_page(f->badv);
        la64_stats.invalid_retry++;
        return;
    }
    report_fault(f, ecode);
}

/* The host reads nr (a7) and a0..a5 from the frame and writes the result;
 * GPA == HVA under Dune, so it can use the frame's physical address. */
static void forward_syscall(struct la64_frame *f)
{
    la64_stats.syscalls++;
    f->regs[LA64_REG_A0] = (uint64_t)la64_host_call(
        LA64_HC_SYSCALL, (long)la64_virt_to_phys(f), 0, 0, 0, 0);
    f->era += 4;   /* resume after the syscall instruction */
}

void la64_trap(struct la64_frame *f)
{
    unsigned ecode = (unsigned)LA64_ESTAT_ECODE(f->estat);
    switch (ecode) {
    case LA64_ECODE_PME:
        if (la64_handle_page_modify(f) != 0)
            report_fault(f, ecode);
        break;
    case LA64_ECODE_PIL: case LA64_ECODE_PIS: case LA64_ECODE_PIF:
        page_invalid(f, ecode);
        break;
    case LA64_ECODE_SYS:
        forward_syscall(f);
        break;
    default:
        report_fault(f, ecode);
        break;
    }
}
