/*
 * checks.h - the guest checks of the QEMU test image, in order.  Shared by
 * the image (which prints one UART line per check) and the host harness
 * (one Check assertion per entry, so a check that never ran fails).
 */
LA64_CHECK(boot_paging,            "paging on at PLV0 with the runtime's vectors installed")
LA64_CHECK(refill_translates,      "refill walks 4 levels: every mapped VA reads its own frame")
LA64_CHECK(refill_tlb_entry,       "the TLB entry written by refill has the PTE's PPN, V=1, D=0")
LA64_CHECK(first_store_pme,        "a first store raises page-modify once and sets PTE.D")
LA64_CHECK(later_store_no_trap,    "later stores to a dirty page do not trap")
LA64_CHECK(collect_exact_once,     "read-and-clear returns exactly the written page, then nothing")
LA64_CHECK(store_traps_again,      "after read-and-clear a store to the cleaned page traps again")
LA64_CHECK(invtlb_no_stale_entry,  "after read-and-clear no TLB entry with D=1 remains")
LA64_CHECK(dirty_property,         "random stores, many rounds: read-and-clear returns exactly the written set")
LA64_CHECK(fault_unmapped_load,    "load from unmapped addresses reported: addr, read, MAPERR")
LA64_CHECK(fault_unmapped_store,   "store to an unmapped address reported: addr, write, MAPERR")
LA64_CHECK(fault_readonly_store,   "store to a read-only page reported ACCERR, D stays 0")
LA64_CHECK(late_map_retry,         "page mapped after a V=0 entry was cached: access retried, no fault")
LA64_CHECK(nested_pme_in_hook,     "a PME taken inside the fault handler nests on the exception stack")
LA64_CHECK(unmap_no_stale,         "after unmap + invtlb the old writable entry is gone")
LA64_CHECK(syscall_forward,        "syscall reaches the host call with nr/args; result in a0")
