/*
 * la64_regs.h - LoongArch64 privileged-architecture constants used by the
 * Dune guest runtime and by the host that boots it.
 *
 * Plain numbers only (no inline asm), so this header is usable from the
 * cross-compiled guest code, from assembly (entry.S) and from host C code
 * that computes CSR values for KVM_SET_ONE_REG.  Values follow the
 * LoongArch Reference Manual, volume 1, chapters 5-7.
 */
#ifndef LA64_REGS_H
#define LA64_REGS_H

/* ---- CSR numbers ------------------------------------------------------- */
#define LA64_CSR_CRMD      0x0    /* current mode: PLV, IE, DA, PG, DATF, DATM */
#define LA64_CSR_PRMD      0x1    /* mode before the exception */
#define LA64_CSR_EUEN      0x2    /* FPU/LSX/LASX enables */
#define LA64_CSR_ECFG      0x4    /* interrupt enables, vector spacing */
#define LA64_CSR_ESTAT     0x5    /* exception code, pending interrupts */
#define LA64_CSR_ERA       0x6    /* return address of the exception */
#define LA64_CSR_BADV      0x7    /* faulting virtual address */
#define LA64_CSR_BADI      0x8    /* faulting instruction word */
#define LA64_CSR_EENTRY    0xc    /* general exception entry (virtual) */
#define LA64_CSR_TLBIDX    0x10
#define LA64_CSR_TLBEHI    0x11
#define LA64_CSR_TLBELO0   0x12
#define LA64_CSR_TLBELO1   0x13
#define LA64_CSR_ASID      0x18
#define LA64_CSR_PGDL      0x19   /* page-table root for VA bit 63 == 0 */
#define LA64_CSR_PGDH      0x1a   /* page-table root for VA bit 63 == 1 */
#define LA64_CSR_PGD       0x1b   /* read-only: the root matching BADV */
#define LA64_CSR_PWCL      0x1c   /* page walk control, low levels */
#define LA64_CSR_PWCH      0x1d   /* page walk control, high levels */
#define LA64_CSR_STLBPS    0x1e   /* page size of the set-associative TLB */
#define LA64_CSR_SAVE0     0x30   /* scratch: interrupted sp on entry */
#define LA64_CSR_SAVE1     0x31   /* scratch: interrupted t0 on entry */
#define LA64_CSR_SAVE2     0x32   /* exception stack base (lowest address) */
#define LA64_CSR_SAVE3     0x33   /* exception stack top */
#define LA64_CSR_TLBRENTRY 0x88   /* TLB refill entry (physical) */
#define LA64_CSR_TLBRBADV  0x89
#define LA64_CSR_TLBRERA   0x8a
#define LA64_CSR_TLBRSAVE  0x8b   /* scratch for the refill handler */
#define LA64_CSR_TLBREHI   0x8e
#define LA64_CSR_DMW0      0x180
#define LA64_CSR_DMW1      0x181

/* ---- CRMD bits ---------------------------------------------------------- */
#define LA64_CRMD_PLV_MASK 0x3UL
#define LA64_CRMD_IE       (1UL << 2)
#define LA64_CRMD_DA       (1UL << 3)
#define LA64_CRMD_PG       (1UL << 4)
#define LA64_CRMD_DATF_CC  (1UL << 5)  /* fetches in DA mode: coherent cached */
#define LA64_CRMD_DATM_CC  (1UL << 7)  /* loads/stores in DA mode: cached */
/* PLV0, interrupts off, paging on: the mode the runtime runs in. */
#define LA64_CRMD_PAGING   (LA64_CRMD_PG | LA64_CRMD_DATF_CC | LA64_CRMD_DATM_CC)

/* ---- ESTAT exception codes (ESTAT bits 21:16) -------------------------- */
#define LA64_ESTAT_ECODE(estat) (((estat) >> 16) & 0x3fUL)
#define LA64_ECODE_INT  0x0
#define LA64_ECODE_PIL  0x1   /* page invalid for load */
#define LA64_ECODE_PIS  0x2   /* page invalid for store */
#define LA64_ECODE_PIF  0x3   /* page invalid for fetch */
#define LA64_ECODE_PME  0x4   /* page modification: store to a D=0 entry */
#define LA64_ECODE_PNR  0x5   /* page not readable */
#define LA64_ECODE_PNX  0x6   /* page not executable */
#define LA64_ECODE_PPI  0x7   /* page privilege illegal */
#define LA64_ECODE_ADE  0x8   /* address error (fetch or memory) */
#define LA64_ECODE_ALE  0x9   /* misaligned access */
#define LA64_ECODE_SYS  0xb   /* syscall instruction */
#define LA64_ECODE_BRK  0xc   /* break instruction */
#define LA64_ECODE_INE  0xd   /* instruction not defined */
#define LA64_ECODE_IPE  0xe   /* instruction privilege error */
#define LA64_ECODE_FPD  0xf   /* FPU disabled */
#define LA64_ECODE_FPE  0x12  /* floating-point exception */

/* ---- pages and page-table entries (PTE layout = TLBELO0/1) ------------ */
/* 16 KiB pages, Linux/LoongArch's default.  (QEMU 7.2 also maps guest
 * pages with a 16 KiB granule, so 4 KiB guest pages mistranslate there.) */
#define LA64_PAGE_SHIFT  14
#define LA64_PAGE_SIZE   (1UL << LA64_PAGE_SHIFT)
#define LA64_PTE_V       (1UL << 0)    /* valid: hardware */
#define LA64_PTE_D       (1UL << 1)    /* dirty: stores allowed without PME */
#define LA64_PTE_PLV3    (3UL << 2)    /* reachable from every PLV */
#define LA64_PTE_MAT_CC  (1UL << 4)    /* coherent cached memory */
#define LA64_PTE_G       (1UL << 6)    /* global (ignores ASID) */
#define LA64_PTE_P       (1UL << 7)    /* software: present */
#define LA64_PTE_W       (1UL << 8)    /* software: writes allowed */
#define LA64_PTE_NX      (1UL << 62)   /* not executable */
#define LA64_PTE_PPN_MASK 0x0000fffffffff000UL  /* PALEN 48 */

/* ---- 4-level tables: 4 KiB tables of 512 entries, 9 index bits each ---- */
/* PTE table: VA 22:14, PMD: 31:23, PUD: 40:32, PGD: 47:41.  Tables hold
 * physical addresses.  PWCL's Dir2 base field has only 5 bits (max 31),
 * so with 16 KiB pages the PUD and PGD levels use the walker's Dir3 and
 * Dir4 slots (6-bit fields in PWCH); Dir2 stays unused and the refill
 * handler runs lddir 4, 3, 1. */
#define LA64_PT_LEVELS   4
#define LA64_PT_ENTRIES  512
#define LA64_TABLE_SIZE  4096UL
#define LA64_PT_SHIFT(level) (LA64_PAGE_SHIFT + 9 * (level))  /* level 0 = PTE */
/* PWCL: PTbase 14, PTwidth 9, Dir1 (PMD) 23/9, Dir2 unused, 64-bit PTEs. */
#define LA64_PWCL_VALUE  (14UL | (9UL << 5) | (23UL << 10) | (9UL << 15))
/* PWCH: Dir3 (PUD) 32/9, Dir4 (PGD) 41/9. */
#define LA64_PWCH_VALUE  (32UL | (9UL << 6) | (41UL << 12) | (9UL << 18))

/* ---- TLBIDX ------------------------------------------------------------ */
#define LA64_TLBIDX_INDEX_MASK 0xffffUL
#define LA64_TLBIDX_PS_SHIFT   24
#define LA64_TLBIDX_NE         (1UL << 31)

/* ---- direct-mapped windows --------------------------------------------- */
/* DMW0: VA 0x9000_xxxx_xxxx_xxxx -> PA xxxx, cached, PLV0 only.  The
 * runtime reaches page tables, its own code and its exception stack
 * through this window, so none of them can take a TLB exception. */
#define LA64_DMW_CACHED_BASE   0x9000000000000000UL
#define LA64_DMW0_VALUE        (LA64_DMW_CACHED_BASE | (1UL << 4) | 1UL)
/* DMW1: VA 0x8000_... -> PA, strongly ordered uncached (device MMIO). */
#define LA64_DMW_UNCACHED_BASE 0x8000000000000000UL
#define LA64_DMW1_VALUE        (LA64_DMW_UNCACHED_BASE | 1UL)
#define LA64_PA_MASK           0x0000ffffffffffffUL

/* ---- invtlb operations -------------------------------------------------- */
#define LA64_INVTLB_ALL          0x0
#define LA64_INVTLB_ADDR_ASID_G  0x6  /* (G=1 or ASID match) and VA match */

/* ---- hvcl: KVM's user-mode hypercall service ---------------------------- */
/* The code field of "hvcl code" for KVM_HCALL_USER_SERVICE (vendor KVM = 1
 * in bits 15:8, service 2): KVM exits to user space with KVM_EXIT_HYPERCALL
 * and args[0..5] = a0..a5; run->hypercall.ret becomes the new a0. */
#define LA64_HVCL_USER_SERVICE   0x102
#define LA64_HVCL_INSN(code)     (0x002b8000U | (code))

/* Operations carried in a0 of our hypercalls. */
#define LA64_HC_SYSCALL  1   /* a1 = GPA of the exception frame */
#define LA64_HC_FAULT    2   /* a1 = address, a2 = access|code<<8|sig<<16, a3 = era */
#define LA64_HC_EXIT     3   /* a1 = status */

/* ---- exception frame layout (bytes), shared by entry.S and C ----------- */
#define LA64_FRAME_ERA    (32 * 8)
#define LA64_FRAME_PRMD   (33 * 8)
#define LA64_FRAME_ESTAT  (34 * 8)
#define LA64_FRAME_BADV   (35 * 8)
#define LA64_FRAME_BADI   (36 * 8)
#define LA64_FRAME_SIZE   (38 * 8)    /* 16-byte aligned */

/* GPR numbers. */
#define LA64_REG_RA  1
#define LA64_REG_SP  3
#define LA64_REG_A0  4
#define LA64_REG_A7  11
#define LA64_REG_T0  12

#endif
