/*
 * la64_csr.h - inline accessors for CSRs and TLB instructions (guest only).
 * CSR numbers are instruction immediates, so these are macros.
 */
#ifndef LA64_CSR_H
#define LA64_CSR_H

#include <stdint.h>
#include "la64_regs.h"

#define la64_csr_read(csr) __extension__ ({                               \
    uint64_t v_;                                                          \
    __asm__ volatile("csrrd %0, %1" : "=r"(v_) : "i"(csr) : "memory");   \
    v_; })

#define la64_csr_write(csr, val) do {                                     \
    uint64_t v_ = (val);                                                  \
    __asm__ volatile("csrwr %0, %1" : "+r"(v_) : "i"(csr) : "memory");   \
} while (0)

static inline void la64_tlbsrch(void) { __asm__ volatile("tlbsrch" ::: "memory"); }
static inline void la64_tlbrd(void)   { __asm__ volatile("tlbrd" ::: "memory"); }
static inline void la64_tlbwr(void)   { __asm__ volatile("tlbwr" ::: "memory"); }
static inline void la64_tlbfill(void) { __asm__ volatile("tlbfill" ::: "memory"); }

/* invtlb op, asid, va: op must be a constant. */
#define la64_invtlb(op, asid, va)                                         \
    __asm__ volatile("invtlb %0, %1, %2"                                  \
                     :: "i"(op), "r"((uint64_t)(asid)), "r"((uint64_t)(va)) : "memory")

#endif
