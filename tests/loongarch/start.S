/*
 * start.S - boot of the bare-metal LoongArch test image (QEMU -kernel).
 *
 * QEMU starts us at PLV0 in direct-address mode.  The image is linked at
 * the DMW0 alias of its load address, like the runtime expects: open the
 * two direct-mapped windows, jump to the linked address, turn paging on
 * (the PC stays valid: DMW0 translates it), clear .bss, run la64t_main.
 * Constants are spelled out here because la64_regs.h uses C suffixes.
 */
    .section .text.start, "ax"
    .globl _start
_start:
    li.d    $t0, 0x9000000000000011     /* DMW0: 0x9... -> PA, cached, PLV0 */
    csrwr   $t0, 0x180
    li.d    $t0, 0x8000000000000001     /* DMW1: 0x8... -> PA, uncached */
    csrwr   $t0, 0x181
    la.abs  $t0, 1f
    jirl    $zero, $t0, 0
1:  li.d    $t0, 0xb0                   /* CRMD: PLV0, IE=0, PG=1, cached */
    csrwr   $t0, 0x0
    la.abs  $sp, la64t_stack_top
    la.abs  $t0, __bss_start
    la.abs  $t1, __bss_end
2:  bgeu    $t0, $t1, 3f
    st.d    $zero, $t0, 0
    addi.d  $t0, $t0, 8
    b       2b
3:  bl      la64t_main
4:  idle    0
    b       4b
