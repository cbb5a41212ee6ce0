/*
 * The live guest: a CPL3 touching loop with CPL0 handlers, for the async PF
 * differential runs (asyncpf/live).  Position-dependent, linked at GUEST_CODE
 * (0x10000); the host builds page tables, GDT, TSS and IDT in Python
 * (asyncpf/live/layout.py) and enters at `kernel_entry` in 64-bit mode, CPL0,
 * IF=0.  Everything the guest sees is appended to the log at LOG (16-byte
 * records: u32 kind, u32 a, u64 b); it ends with `out %al, $0xf4` (0 = done,
 * anything else = a failure code).  The user loop ends with `ud2`.
 *
 * Rebuild (tests/test_live_guest.py checks the stored bytes where `as` exists):
 *   python -m asyncpf.live.guestcode --write
 *
 * The protocol it speaks (Documentation/virt/kvm/x86/msr.rst@v6.18,
 * kvm-unit-tests x86/asyncpf.c): #PF with CR2 = token and flags = 1 is
 * "page not present"; the page-ready interrupt carries the token in the
 * area's second word, the guest clears it, EOIs and writes 1 to
 * MSR_KVM_ASYNC_PF_ACK.
 */
	.set PARAMS,          0x9000
	.set P_BASE,          PARAMS + 0x00   /* u64 first touched gva */
	.set P_STRIDE,        PARAMS + 0x08   /* u64 bytes between touches */
	.set P_COUNT,         PARAMS + 0x10   /* u64 touches */
	.set P_PF_MODE,       PARAMS + 0x18   /* u64 0 wait for page-ready, 1 return at once (retry), 2 disable APF then return */
	.set P_X2APIC,        PARAMS + 0x20   /* u64 1 x2APIC (EOI by MSR 0x80b), 0 xAPIC (EOI by MMIO) */
	.set P_INT_VAL,       PARAMS + 0x28   /* u64 value for MSR_KVM_ASYNC_PF_INT, written if P_EN_VAL != 0 */
	.set P_EN_VAL,        PARAMS + 0x30   /* u64 value for MSR_KVM_ASYNC_PF_EN (0: the guest never writes it) */
	.set P_USER_STACK,    PARAMS + 0x38   /* u64 user rsp */
	.set P_LOG_COUNT,     PARAMS + 0x40   /* u64 records written so far */
	.set P_READY_TOKEN,   PARAMS + 0x48   /* u64 last token the page-ready handler saw */
	.set P_LOG_LIMIT,     PARAMS + 0x50   /* u64 a #PF that finds this many records stops the guest (code 0xe2) */
	.set P_MSR_COUNT,     PARAMS + 0x58   /* u64 MSR-table mode: write this many (msr, value) pairs, then stop */
	.set MSR_LIST,        0x9800          /* u32 msr, u32 pad, u64 value; at most 128 */
	.set AREA,            0xa000          /* struct kvm_vcpu_pv_apf_data, 64-byte aligned */
	.set LOG,             0xb000
	.set LOG_MAX,         0x500           /* records (20 KiB) */

	.set MSR_APIC_BASE,   0x1b
	.set MSR_X2APIC_EOI,  0x80b
	.set MSR_X2APIC_SVR,  0x80f
	.set MSR_APF_EN,      0x4b564d02
	.set MSR_APF_INT,     0x4b564d06
	.set MSR_APF_ACK,     0x4b564d07
	.set XAPIC_EOI,       0xfee000b0
	.set XAPIC_SVR,       0xfee000f0

	.set K_PF,    1       /* a = flags word, b = CR2 */
	.set K_IRQ,   2       /* a = vector, b = token word */
	.set K_ACK,   3       /* b = value written to MSR_KVM_ASYNC_PF_ACK */
	.set K_EXC,   4       /* a = vector, b = rip of the faulting instruction */
	.set K_DONE,  5       /* b = touches completed */
	.set K_WRMSR, 6       /* a = msr, b = value (a guest write of an async PF MSR) */

	.set USER_CS, 0x23
	.set USER_SS, 0x1b

	.text
	.code64
/* ---- CPL0 entry: APIC on, optional async PF enable, then iretq to the user loop ---- */
kernel_entry:
	mov P_MSR_COUNT, %r12
	test %r12, %r12
	jz 0f
	mov $MSR_LIST, %rbx             /* MSR-table mode: no APIC set-up, no user loop */
4:	mov (%rbx), %ecx
	mov 8(%rbx), %rax
	call log_wrmsr                  /* a refused write: #GP, gp_handler logs it and skips the wrmsr */
	add $16, %rbx
	dec %r12
	jnz 4b
	mov $0, %al
	jmp guest_exit
0:	cmpq $0, P_X2APIC
	je 1f
	mov $MSR_APIC_BASE, %ecx
	rdmsr
	or $0xc00, %eax                 /* global enable | x2APIC */
	wrmsr
	mov $MSR_X2APIC_SVR, %ecx
	mov $0x1ff, %eax
	xor %edx, %edx
	wrmsr
	jmp 2f
1:	mov $XAPIC_SVR, %rax
	movl $0x1ff, (%rax)
2:	mov P_EN_VAL, %rax
	test %rax, %rax
	jz 3f
	mov $MSR_APF_INT, %ecx
	mov P_INT_VAL, %rax
	call log_wrmsr
	mov $MSR_APF_EN, %ecx
	mov P_EN_VAL, %rax
	call log_wrmsr
3:	pushq $USER_SS
	pushq P_USER_STACK
	pushq $0x202                    /* IF */
	pushq $USER_CS
	lea user_entry(%rip), %rax
	push %rax
	iretq

/* wrmsr(%ecx, %rax) and log it */
log_wrmsr:
	push %rax
	push %rcx
	mov %rax, %rdx
	shr $32, %rdx
	wrmsr
	pop %rcx
	pop %rax
	mov $K_WRMSR, %edi
	mov %ecx, %esi
	mov %rax, %rdx
	jmp log

/* append a record: kind %edi, a %esi, b %rdx; clobbers %r8, %r9 */
log:
	mov P_LOG_COUNT, %r8
	cmp $LOG_MAX, %r8
	jae 1f
	mov %r8, %r9
	shl $4, %r9
	add $LOG, %r9
	mov %edi, (%r9)
	mov %esi, 4(%r9)
	mov %rdx, 8(%r9)
	inc %r8
	mov %r8, P_LOG_COUNT
1:	ret

/* leave: out %al, $0xf4 with the code in %al; never returns */
guest_exit:
	out %al, $0xf4
	cli
1:	hlt
	jmp 1b

.macro SAVE
	push %rax
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %r8
	push %r9
.endm
.macro RESTORE
	pop %r9
	pop %r8
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rax
.endm

/* ---- #PF (vector 14, error code on the stack) ---- */
pf_handler:
	SAVE
	mov AREA, %esi                  /* flags word */
	mov %cr2, %rdx
	mov $K_PF, %edi
	call log
	mov P_LOG_COUNT, %rax
	cmp P_LOG_LIMIT, %rax
	jb 1f
	mov $0xe2, %al                  /* too many #PF: a fault loop */
	jmp guest_exit
1:	testl $1, AREA
	jnz 2f
	mov $0xe1, %al                  /* an ordinary #PF: this guest maps everything it touches */
	jmp guest_exit
2:	movl $0, AREA                   /* flags read: free the slot for the next not-present */
	mov %cr2, %rdx                  /* the token */
	mov P_PF_MODE, %rax
	cmp $1, %rax
	je 9f                           /* retry at once: the host sees a repeated fault */
	cmp $2, %rax
	jne 5f
	mov $MSR_APF_EN, %ecx           /* disable async PF with this fault outstanding */
	xor %eax, %eax
	call log_wrmsr
	jmp 9f
5:	cmp P_READY_TOKEN, %rdx         /* wait for this token's page-ready (it may have come already) */
	je 9f
	sti
	hlt
	cli
	jmp 5b
9:	RESTORE
	add $8, %rsp
	iretq

/* ---- #GP: in MSR-table mode a refused wrmsr (log it, skip the 2-byte instruction); else unexpected ---- */
gp_handler:
	cmpq $0, P_MSR_COUNT
	jne 1f
	pop %rax                        /* error code */
	mov $13, %esi
	jmp unexpected
1:	SAVE
	mov $K_EXC, %edi
	mov $13, %esi
	mov 8*8(%rsp), %rdx             /* rip, above 7 saved registers and the error code */
	call log
	addq $2, 8*8(%rsp)
	RESTORE
	add $8, %rsp
	iretq

/* ---- the page-ready vector ---- */
apf_irq_handler:
	SAVE
	mov AREA+4, %edx                /* token */
	mov %rdx, P_READY_TOKEN
	mov $K_IRQ, %edi
	movzbl P_INT_VAL, %esi          /* this handler is installed at that vector only */
	call log
	movl $0, AREA+4                 /* token read: free the slot */
	cmpq $0, P_X2APIC
	je 1f
	mov $MSR_X2APIC_EOI, %ecx
	xor %eax, %eax
	xor %edx, %edx
	wrmsr
	jmp 2f
1:	mov $XAPIC_EOI, %rax
	movl $0, (%rax)
2:	mov $MSR_APF_ACK, %ecx
	mov $1, %eax
	xor %edx, %edx
	wrmsr
	mov $K_ACK, %edi
	xor %esi, %esi
	mov $1, %edx
	call log
	RESTORE
	iretq

/* ---- #UD: `ud2` at user_exit ends the user loop (PVM refuses `int $n` from CPL3 with #UD) ---- */
exit_handler:
	lea user_exit(%rip), %rax
	cmp (%rsp), %rax
	je 1f
	mov $6, %esi
	jmp unexpected
1:	mov $K_DONE, %edi
	xor %esi, %esi
	mov %r12, %rdx                  /* the user loop's counter */
	call log
	mov $0, %al
	jmp guest_exit

/* ---- every other vector: log it and stop with 0xe0 ---- */
	.balign 16
exc_stubs:                              /* stub of vector v at exc_stubs + 16 * v */
	.set vec, 0
	.rept 32
	.if (vec == 8) || (vec >= 10 && vec <= 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	pop %rax                        /* error code */
	.endif
	mov $vec, %esi
	jmp unexpected
	.balign 16
	.set vec, vec + 1
	.endr
irq_stub:
	mov $0xff, %esi
unexpected:
	mov (%rsp), %rdx                /* rip */
	mov $K_EXC, %edi
	call log
	mov $0xe0, %al
	jmp guest_exit

/* ---- CPL3: touch P_COUNT pages from P_BASE every P_STRIDE bytes, then ud2 ---- */
user_entry:
	xor %r12, %r12
	mov P_BASE, %r13
	mov P_STRIDE, %r14
	mov P_COUNT, %r15
1:	cmp %r15, %r12
	jae user_exit
	mov %r12, %rax
	imul %r14, %rax
	add %r13, %rax
	movb (%rax), %bl                /* the touch: a read of an evicted file page */
	inc %r12
	jmp 1b
user_exit:
	ud2
