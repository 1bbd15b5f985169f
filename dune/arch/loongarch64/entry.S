/*
 * entry.S - LoongArch64 guest exception vectors and the hypercall stub.
 *
 * la64_tlb_refill      TLBRENTRY (physical, runs in direct-address mode)
 * la64_exception_entry EENTRY (virtual, reached through the DMW window)
 * la64_hvcl            hvcl to KVM's user-mode hypercall service
 *
 * Both vectors must be 4 KiB aligned: EENTRY and TLBRENTRY ignore bits 11:0.
 */
#include "la64_regs.h"

    .section .text.la64_vectors, "ax"

/*
 * TLB refill.  The CPU saved the faulting PC and mode in TLBR* CSRs and
 * switched to direct-address mode, so this touches page tables by their
 * physical addresses.  lddir walks PGD -> PUD -> PMD (walker levels 4, 3, 1
 * as set in PWCL/PWCH; see la64_regs.h), ldpte loads the even and odd PTEs of the pair into
 * TLBRELO0/1, tlbfill writes a random TLB slot.  Unmapped addresses end in
 * PTE 0 (see pgtable.c), so the retried access raises page-invalid and the
 * general handler decides.  Only t0 is used; TLBRSAVE keeps it.
 */
    .p2align 12
    .globl la64_tlb_refill
    .type la64_tlb_refill, @function
la64_tlb_refill:
    csrwr   $t0, LA64_CSR_TLBRSAVE
    csrrd   $t0, LA64_CSR_PGD
    lddir   $t0, $t0, 4
    lddir   $t0, $t0, 3
    lddir   $t0, $t0, 1
    ldpte   $t0, 0
    ldpte   $t0, 1
    tlbfill
    csrrd   $t0, LA64_CSR_TLBRSAVE
    ertn
    .size la64_tlb_refill, . - la64_tlb_refill

/*
 * General exceptions.  Save every GPR and the exception CSRs into a
 * struct la64_frame and call la64_trap(frame).  The frame goes on the
 * exception stack [SAVE2, SAVE3), unless the interrupted sp is already
 * inside it (an exception taken inside a handler): then it nests below.
 * ERA and PRMD are restored from the frame, so a nested exception (which
 * overwrites the CSRs) cannot break the outer return, and C code may edit
 * frame->era (skip the syscall instruction, resume elsewhere).
 */
    .p2align 12
    .globl la64_exception_entry
    .type la64_exception_entry, @function
la64_exception_entry:
    csrwr   $sp, LA64_CSR_SAVE0         /* SAVE0 = interrupted sp */
    csrwr   $t0, LA64_CSR_SAVE1         /* SAVE1 = interrupted t0 */
    csrrd   $t0, LA64_CSR_SAVE0
    csrrd   $sp, LA64_CSR_SAVE3         /* top of the exception stack */
    bgeu    $t0, $sp, 1f                /* sp >= top: not on it */
    csrrd   $sp, LA64_CSR_SAVE2
    bltu    $t0, $sp, 2f                /* sp < base: not on it */
    move    $sp, $t0                    /* nested: continue below */
    b       1f
2:  csrrd   $sp, LA64_CSR_SAVE3
1:  addi.d  $sp, $sp, -LA64_FRAME_SIZE
    st.d    $ra,  $sp, 1 * 8
    st.d    $tp,  $sp, 2 * 8
    st.d    $a0,  $sp, 4 * 8
    st.d    $a1,  $sp, 5 * 8
    st.d    $a2,  $sp, 6 * 8
    st.d    $a3,  $sp, 7 * 8
    st.d    $a4,  $sp, 8 * 8
    st.d    $a5,  $sp, 9 * 8
    st.d    $a6,  $sp, 10 * 8
    st.d    $a7,  $sp, 11 * 8
    st.d    $t1,  $sp, 13 * 8
    st.d    $t2,  $sp, 14 * 8
    st.d    $t3,  $sp, 15 * 8
    st.d    $t4,  $sp, 16 * 8
    st.d    $t5,  $sp, 17 * 8
    st.d    $t6,  $sp, 18 * 8
    st.d    $t7,  $sp, 19 * 8
    st.d    $t8,  $sp, 20 * 8
    st.d    $r21, $sp, 21 * 8
    st.d    $fp,  $sp, 22 * 8
    st.d    $s0,  $sp, 23 * 8
    st.d    $s1,  $sp, 24 * 8
    st.d    $s2,  $sp, 25 * 8
    st.d    $s3,  $sp, 26 * 8
    st.d    $s4,  $sp, 27 * 8
    st.d    $s5,  $sp, 28 * 8
    st.d    $s6,  $sp, 29 * 8
    st.d    $s7,  $sp, 30 * 8
    st.d    $s8,  $sp, 31 * 8
    st.d    $zero, $sp, 0
    csrrd   $t0, LA64_CSR_SAVE0
    st.d    $t0, $sp, 3 * 8
    csrrd   $t0, LA64_CSR_SAVE1
    st.d    $t0, $sp, 12 * 8
    csrrd   $t0, LA64_CSR_ERA
    st.d    $t0, $sp, LA64_FRAME_ERA
    csrrd   $t0, LA64_CSR_PRMD
    st.d    $t0, $sp, LA64_FRAME_PRMD
    csrrd   $t0, LA64_CSR_ESTAT
    st.d    $t0, $sp, LA64_FRAME_ESTAT
    csrrd   $t0, LA64_CSR_BADV
    st.d    $t0, $sp, LA64_FRAME_BADV
    csrrd   $t0, LA64_CSR_BADI
    st.d    $t0, $sp, LA64_FRAME_BADI

    move    $a0, $sp
    bl      la64_trap

    ld.d    $t0, $sp, LA64_FRAME_ERA
    csrwr   $t0, LA64_CSR_ERA
    ld.d    $t0, $sp, LA64_FRAME_PRMD
    csrwr   $t0, LA64_CSR_PRMD
    ld.d    $ra,  $sp, 1 * 8
    ld.d    $tp,  $sp, 2 * 8
    ld.d    $a0,  $sp, 4 * 8
    ld.d    $a1,  $sp, 5 * 8
    ld.d    $a2,  $sp, 6 * 8
    ld.d    $a3,  $sp, 7 * 8
    ld.d    $a4,  $sp, 8 * 8
    ld.d    $a5,  $sp, 9 * 8
    ld.d    $a6,  $sp, 10 * 8
    ld.d    $a7,  $sp, 11 * 8
    ld.d    $t0,  $sp, 12 * 8
    ld.d    $t1,  $sp, 13 * 8
    ld.d    $t2,  $sp, 14 * 8
    ld.d    $t3,  $sp, 15 * 8
    ld.d    $t4,  $sp, 16 * 8
    ld.d    $t5,  $sp, 17 * 8
    ld.d    $t6,  $sp, 18 * 8
    ld.d    $t7,  $sp, 19 * 8
    ld.d    $t8,  $sp, 20 * 8
    ld.d    $r21, $sp, 21 * 8
    ld.d    $fp,  $sp, 22 * 8
    ld.d    $s0,  $sp, 23 * 8
    ld.d    $s1,  $sp, 24 * 8
    ld.d    $s2,  $sp, 25 * 8
    ld.d    $s3,  $sp, 26 * 8
    ld.d    $s4,  $sp, 27 * 8
    ld.d    $s5,  $sp, 28 * 8
    ld.d    $s6,  $sp, 29 * 8
    ld.d    $s7,  $sp, 30 * 8
    ld.d    $s8,  $sp, 31 * 8
    ld.d    $sp,  $sp, 3 * 8
    ertn
    .size la64_exception_entry, . - la64_exception_entry

/*
 * long la64_hvcl(op, a1, a2, a3, a4, a5): hvcl with KVM's user-service
 * code; arguments are already in a0..a5 and the host's answer comes back
 * in a0.  Needs the LVZ extension (a real 3A5000/3A6000 under KVM); under
 * TCG the instruction does not exist.
 */
    .text
    .globl la64_hvcl
    .type la64_hvcl, @function
la64_hvcl:
    .word   LA64_HVCL_INSN(LA64_HVCL_USER_SERVICE)
    jr      $ra
    .size la64_hvcl, . - la64_hvcl
