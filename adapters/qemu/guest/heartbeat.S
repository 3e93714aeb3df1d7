/*
 * The heartbeat guest: a multiboot v1 ELF32 kernel (a few KiB) that QEMU boots with -kernel, so a
 * real VM runs without an OS image. Built at run time with GNU as/ld (cluster/qemu/guest.ts).
 *
 * Guest RAM, as seen through QMP (`xp /2wx 0x1f0000` or pmemsave):
 *   0x1f0000  heartbeat counter, incremented once per main-loop pass
 *   0x1f0004  marker 0xc0ffee00 (tells a booted guest from uninitialised RAM)
 *   2 MiB ..  FILL_MB MiB made non-zero once at boot (so migration must send them), then
 *             WS_MB MiB whose every page is written on every pass (dirtied memory), or with
 *             WALK > 0 only the next WALK pages of it per pass, walking round it (a steady dirty
 *             rate of WALK pages per pass that a throttled CPU slows down)
 *
 * Build-time knobs (--defsym): FILL_MB, WS_MB, WALK, DELAY (spin iterations per pass), HLT (1: wait for
 * the next timer tick each pass, so an idle guest costs almost no host CPU; 0: run flat out),
 * HZ (timer rate when HLT=1).
 *
 * ACPI power button: `system_powerdown` sets PM1 status bit 8 in the PIIX4 PM block (the `pc`
 * machine; its I/O base is read from the PM function's PCI config space, register 0x40, because
 * the firmware decides it); the guest sees the bit and powers off (S5 via PM1a_CNT), so a soft
 * shutdown behaves as with a real OS.
 */
        .ifndef FILL_MB
        .set FILL_MB, 0
        .endif
        .ifndef WS_MB
        .set WS_MB, 0
        .endif
        .ifndef WALK
        .set WALK, 0
        .endif
        .ifndef DELAY
        .set DELAY, 0
        .endif
        .ifndef HLT
        .set HLT, 1
        .endif
        .ifndef HZ
        .set HZ, 100
        .endif

        .set MB_MAGIC, 0x1BADB002
        .set MB_FLAGS, 0
        .set HEART, 0x1f0000
        .set REGION, 0x200000
        .set PIIX4_PM_PMBASE, 0x80000b40   /* config address: bus 0, device 1, function 3, reg 0x40 */

        .text
        .code32
        .globl _start
        .align 4
multiboot_header:
        .long MB_MAGIC
        .long MB_FLAGS
        .long -(MB_MAGIC + MB_FLAGS)

_start:
        cli
        /* The loader's GDT may be gone: use our own flat segments (code 0x08, data 0x10). */
        lgdt gdt_desc
        ljmp $0x08, $reload
reload:
        movw $0x10, %ax
        movw %ax, %ds
        movw %ax, %es
        movw %ax, %fs
        movw %ax, %gs
        movw %ax, %ss
        movl $stack_top, %esp

        movl $0, HEART
        movl $0xc0ffee00, HEART+4

        /* Every IDT gate points at one stub that acknowledges the PIC and returns. */
        movl $idt, %edi
        movl $irq_stub, %eax
        movl $256, %ecx
1:      movw %ax, (%edi)
        movw $0x08, 2(%edi)
        movw $0x8e00, 4(%edi)
        movl %eax, %edx
        shrl $16, %edx
        movw %dx, 6(%edi)
        addl $8, %edi
        loop 1b
        lidt idt_desc

        /* PICs: IRQs to vectors 0x20..0x2f (off the CPU exceptions); only IRQ0 (the PIT) unmasked. */
        movb $0x11, %al
        outb %al, $0x20
        outb %al, $0xa0
        movb $0x20, %al
        outb %al, $0x21
        movb $0x28, %al
        outb %al, $0xa1
        movb $0x04, %al
        outb %al, $0x21
        movb $0x02, %al
        outb %al, $0xa1
        movb $0x01, %al
        outb %al, $0x21
        outb %al, $0xa1
        movb $0xfe, %al
        outb %al, $0x21
        movb $0xff, %al
        outb %al, $0xa1

        /* PIT channel 0, rate generator at HZ. */
        movb $0x34, %al
        outb %al, $0x43
        movw $(1193182 / HZ), %ax
        outb %al, $0x40
        movb %ah, %al
        outb %al, $0x40

        /* Find the PM I/O base, enable the power-button event so system_powerdown latches it. */
        movl $PIIX4_PM_PMBASE, %eax
        movw $0xcf8, %dx
        outl %eax, %dx
        movw $0xcfc, %dx
        inl %dx, %eax
        andl $0xffc0, %eax
        movl %eax, pm_base
        leal 2(%eax), %edx
        movw $0x0100, %ax
        outw %ax, %dx

        /* Make FILL_MB MiB non-zero once (one dword per 4 KiB page is enough). */
        .if FILL_MB
        movl $REGION, %edi
        movl $(FILL_MB * 256), %ecx
2:      movl $0x5a5a5a5a, (%edi)
        addl $4096, %edi
        loop 2b
        .endif

main:
        .if HLT
        sti
        hlt
        cli
        .endif
        incl HEART

        /* Power button pressed? Then S5 (soft off): SLP_TYP 0 | SLP_EN. */
        movl pm_base, %edx
        inw %dx, %ax
        testw $0x0100, %ax
        jz 3f
        addl $4, %edx
        movw $0x2000, %ax
        outw %ax, %dx
3:
        .if WS_MB
        .if WALK
        /* Toggle CR0.WP (meaningless without paging) so that QEMU flushes its TLB: under tcg a
           page whose TLB entry is already dirty is not tracked again after a migration bitmap
           sync until the entry is refilled, and this guest never flushes on its own. */
        movl %cr0, %eax
        xorl $0x10000, %eax
        movl %eax, %cr0
        movl walk_at, %edi
        movl $WALK, %ecx
4:      incl (%edi)
        addl $4096, %edi
        cmpl $(REGION + (FILL_MB + WS_MB) * 0x100000), %edi
        jb 6f
        movl $(REGION + FILL_MB * 0x100000), %edi
6:      loop 4b
        movl %edi, walk_at
        .else
        movl $(REGION + FILL_MB * 0x100000), %edi
        movl $(WS_MB * 256), %ecx
4:      incl (%edi)
        addl $4096, %edi
        loop 4b
        .endif
        .endif

        .if DELAY
        movl $DELAY, %ecx
5:      loop 5b
        .endif
        jmp main

irq_stub:
        pushl %eax
        movb $0x20, %al
        outb %al, $0x20
        popl %eax
        iret

        .align 4
walk_at:
        .long REGION + FILL_MB * 0x100000

        .align 8
gdt:
        .quad 0
        .quad 0x00cf9a000000ffff
        .quad 0x00cf92000000ffff
gdt_desc:
        .word gdt_desc - gdt - 1
        .long gdt
idt_desc:
        .word 256 * 8 - 1
        .long idt

        .bss
        .align 16
pm_base:
        .long 0
idt:
        .space 256 * 8
        .space 4096
stack_top:
