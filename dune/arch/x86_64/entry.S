/*
 * entry.S - the few instructions that cross between host and guest.
 *
 * Exception stubs run at guest CPL0 (emulated, ~1-2 us per instruction on a
 * paravirtual KVM), so each path is a handful of instructions: push the
 * vector, exit to the host with one `out`, and `iretq` through the frame the
 * host may have edited (to retry, to skip, or to enter a signal handler).
 */
#define DUNE_PORT_EXC 0xE0       /* as in x86.h */

    .text

/* Vectors 0-31, 16 bytes apart; an error code of 0 is pushed where the
 * CPU pushes none, so the host always sees [vector, error, rip, cs, rflags,
 * rsp, ss] at the exception stack pointer. */
.macro VEC n
    .balign 16
    .if (\n == 13)
    jmp dune_gp_entry
    .exitm
    .endif
    .if (\n == 14)
    jmp dune_pf_entry
    .exitm
    .endif
    .if (\n == 8) || ((\n >= 10) && (\n <= 14)) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
    .else
    pushq $0
    .endif
    pushq $\n
    jmp dune_exc_common
.endm

    .globl dune_exc_vectors
    .hidden dune_exc_vectors
    .balign 16
dune_exc_vectors:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    VEC \n
    .endr
    .globl dune_exc_vectors_end
    .hidden dune_exc_vectors_end
dune_exc_vectors_end:

dune_exc_common:
    outb %al, $DUNE_PORT_EXC
    addq $16, %rsp
    iretq

/*
 * CPL0 gate for CPL3-mode applications.  Software interrupts from guest
 * CPL3 are refused by some hypervisors (kvm_pvm raises #UD), but a
 * privileged instruction always raises #GP into our CPL0 handler.  So the
 * gate is `invlpg (%rdi)` executed at CPL3: the #GP handler recognises its
 * address, does the flush for real (rdi = 0: the whole TLB) and skips it.
 */
    .globl dune_gate
    .hidden dune_gate
    .type dune_gate, @function
dune_gate:
    .globl dune_gate_insn
    .hidden dune_gate_insn
dune_gate_insn:
    invlpg (%rdi)
    ret
    .size dune_gate, .-dune_gate

dune_gp_entry:                  /* [err, rip, cs, rflags, rsp, ss] */
    pushq %rax
    leaq dune_gate_insn(%rip), %rax
    cmpq %rax, 16(%rsp)
    popq %rax
    jne 3f
    addq $8, %rsp               /* drop the error code */
    testq %rdi, %rdi
    jz 1f
    invlpg (%rdi)
    jmp 2f
1:  pushq %rax
    movq %cr3, %rax
    movq %rax, %cr3
    popq %rax
2:  addq $3, (%rsp)             /* past the 3-byte invlpg */
    iretq
3:  pushq $13
    jmp dune_exc_common

/*
 * #PF: the write-protect tracker's faults (priv.c, dune_wp_read_protect)
 * are resolved here, in the guest, without an exit: a write to a present
 * page whose entry carries the mark (bit 9) gets W back and the mark
 * cleared, and the write is retried.  Only in CPL0 mode (dune_wp_fast),
 * where this runs natively; a paravirtual KVM emulates CPL0, and there the
 * exit below (and wp_fault_fix on the host) is as cheap.  Tables are
 * walked through the pool's fixed offset (gpa.c: hva = gpa + delta);
 * anything unexpected (not present, a huge page) takes the exit.
 */
#define PTE_ADDR_MASK 0x000ffffffffff000
    .globl dune_wp_fast, dune_pool_delta, dune_wp_fast_faults
    .hidden dune_wp_fast, dune_pool_delta, dune_wp_fast_faults
    .data
    .balign 8
dune_pool_delta:        .quad 0 /* pool HVA minus its GPA */
dune_wp_fast_faults:    .quad 0 /* faults resolved here */
dune_wp_fast:           .byte 0 /* CPL0 mode and the pool is set */
    .text

.macro WALK shift
    movq %rax, %rcx
    shrq $\shift, %rcx
    andq $511, %rcx
    addq dune_pool_delta(%rip), %rdx
    movq (%rdx,%rcx,8), %rdx
    testq $1, %rdx              /* present */
    jz 8f
    testq $0x80, %rdx           /* a huge page: not ours */
    jnz 8f
    movabsq $PTE_ADDR_MASK, %rcx
    andq %rcx, %rdx
.endm

dune_pf_entry:                  /* [err, rip, cs, rflags, rsp, ss] */
    testb $1, dune_wp_fast(%rip)
    jz 9f
    pushq %rax
    movq 8(%rsp), %rax
    andq $3, %rax
    cmpq $3, %rax               /* a write (2) to a present page (1) */
    popq %rax
    jne 9f
    pushq %rax
    pushq %rcx
    pushq %rdx
    pushq %rsi
    movq %cr2, %rax
    movq %rax, %rsi             /* for the invlpg */
    movq %cr3, %rdx
    movabsq $PTE_ADDR_MASK, %rcx
    andq %rcx, %rdx
    WALK 39
    WALK 30
    WALK 21
    movq %rax, %rcx
    shrq $12, %rcx
    andq $511, %rcx
    addq dune_pool_delta(%rip), %rdx
    leaq (%rdx,%rcx,8), %rdx    /* the leaf entry */
    movq (%rdx), %rax
1:  testq $1, %rax
    jz 8f
    btq $9, %rax                /* DUNE_PTE_WP */
    jnc 8f
    /* W back and the mark gone in one step: the collector may be taking
     * W away at the same moment (compare-and-swap there too). */
    movq %rax, %rcx
    orq $2, %rcx
    btrq $9, %rcx
    lock cmpxchgq %rcx, (%rdx)  /* rax: the entry we saw, or the new one */
    jne 1b
    invlpg (%rsi)
    lock incq dune_wp_fast_faults(%rip)
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rax
    addq $8, %rsp               /* the error code */
    iretq
8:  popq %rsi
    popq %rdx
    popq %rcx
    popq %rax
9:  pushq $14
    jmp dune_exc_common

/* Everything above runs at CPL0 or is a gate: signals are not delivered
 * to a guest interrupted there. */
    .globl dune_enter_trampoline_start
    .hidden dune_enter_trampoline_start
dune_enter_trampoline_start:

/* int dune_enter_trampoline(uintptr_t *save_rsp, uintptr_t host_stack_top,
 *                           struct dune_vcpu *v)
 * Saves the callee-saved registers on the caller's stack, records the stack
 * pointer and continues on the host stack in dune_host_start(v).  The guest
 * later resumes at dune_enter_resume with that stack and rax = 0, so the
 * call returns 0 inside the guest. */
    .globl dune_enter_trampoline
    .hidden dune_enter_trampoline
    .type dune_enter_trampoline, @function
dune_enter_trampoline:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    movq %rdx, %rdi
    call dune_host_start
    ud2
    .globl dune_enter_resume
    .hidden dune_enter_resume
dune_enter_resume:
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size dune_enter_trampoline, .-dune_enter_trampoline

/* int arch_leave(void): the guest half of dune_leave().  The host turns
 * the hypercall into a native jump back to the instruction after `syscall`
 * with the same stack and callee-saved registers. */
    .globl arch_leave
    .hidden arch_leave
    .type arch_leave, @function
arch_leave:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq $0x44550001, %rax       /* DUNE_HC_LEAVE */
    syscall
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size arch_leave, .-arch_leave

/* void arch_native_resume(const struct arch_regs *r): load every register
 * of r (a struct kvm_regs) natively and jump to r->rip.  rip and rflags are staged just below
 * the target's red zone, then `ret $128` pops rip and lands rsp exactly on
 * r->rsp. */
    .globl arch_native_resume
    .hidden arch_native_resume
    .type arch_native_resume, @function
arch_native_resume:
    movq 48(%rdi), %rax          /* target rsp */
    subq $144, %rax
    movq 136(%rdi), %rcx         /* rflags */
    movq %rcx, 0(%rax)
    movq 128(%rdi), %rcx         /* rip */
    movq %rcx, 8(%rax)
    movq %rax, %rsp
    movq 0(%rdi), %rax
    movq 8(%rdi), %rbx
    movq 16(%rdi), %rcx
    movq 24(%rdi), %rdx
    movq 32(%rdi), %rsi
    movq 56(%rdi), %rbp
    movq 64(%rdi), %r8
    movq 72(%rdi), %r9
    movq 80(%rdi), %r10
    movq 88(%rdi), %r11
    movq 96(%rdi), %r12
    movq 104(%rdi), %r13
    movq 112(%rdi), %r14
    movq 120(%rdi), %r15
    movq 40(%rdi), %rdi
    popfq
    ret $128
    .size arch_native_resume, .-arch_native_resume

/* long arch_host_clone(const struct dune_syscall *sc, void *ctx)
 * Performs the guest's clone/clone3/fork/vfork natively.  The parent gets
 * the result; the child continues in dune_clone_child(ctx, child_rsp) on a
 * stack below the child's own (never on the red zone). */
    .globl arch_host_clone
    .hidden arch_host_clone
    .type arch_host_clone, @function
arch_host_clone:
    pushq %r12
    pushq %rbx
    movq %rsi, %r12
    movq %rdi, %rbx
    movq 0(%rbx), %rax           /* sc->nr */
    movq 8(%rbx), %rdi           /* sc->args[0..5] */
    movq 16(%rbx), %rsi
    movq 24(%rbx), %rdx
    movq 32(%rbx), %r10
    movq 40(%rbx), %r8
    movq 48(%rbx), %r9
    syscall
    testq %rax, %rax
    jz 1f
    popq %rbx
    popq %r12
    ret
1:  movq %r12, %rdi
    movq %rsp, %rsi
    leaq -1024(%rsp), %rsp
    andq $-16, %rsp
    call dune_clone_child
    ud2
    .size arch_host_clone, .-arch_host_clone

/*
 * long arch_forward_syscall(const struct dune_syscall *sc, const volatile int *deliverable)
 * Performs the guest's syscall natively, unless a signal the guest does
 * not block is already queued: then the call is not made and -512 says so
 * (the caller delivers the signal first and lets the guest re-execute the
 * syscall, as if the signal had come just before it).  A signal landing
 * between the check and `syscall` is caught by the host handler, which
 * moves rip to dune_fwd_intr; one landing during the call interrupts it
 * (our host handler has no SA_RESTART).  So a blocking call never waits on
 * a signal that was already taken.
 */
    .globl arch_forward_syscall
    .hidden arch_forward_syscall
    .type arch_forward_syscall, @function
arch_forward_syscall:
    movq %rdi, %r11
    movq 0(%r11), %rax           /* sc->nr */
    movq 8(%r11), %rdi           /* sc->args[0], [2..5]; [1] after the check */
    movq 24(%r11), %rdx
    movq 32(%r11), %r10
    movq 40(%r11), %r8
    movq 48(%r11), %r9
    .globl dune_fwd_check
    .hidden dune_fwd_check
dune_fwd_check:
    cmpl $0, (%rsi)
    jne dune_fwd_intr
    movq 16(%r11), %rsi
    syscall
    .globl dune_fwd_done
    .hidden dune_fwd_done
dune_fwd_done:
    ret
    .globl dune_fwd_intr
    .hidden dune_fwd_intr
dune_fwd_intr:
    movq $-512, %rax
    ret
    .size arch_forward_syscall, .-arch_forward_syscall

/* void arch_run_on_stack(void *arg, uintptr_t stack_top, void (*fn)(void *)) */
    .globl arch_run_on_stack
    .hidden arch_run_on_stack
    .type arch_run_on_stack, @function
arch_run_on_stack:
    movq %rsi, %rsp
    andq $-16, %rsp
    call *%rdx
    ud2
    .size arch_run_on_stack, .-arch_run_on_stack

    .section .note.GNU-stack,"",@progbits
