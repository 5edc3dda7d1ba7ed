"""Map the exit-reason names real traces print onto our exit taxonomy (DESIGN.md section 3).

Why a table per ISA: `kvm_exit` prints the reason with `__print_symbolic` over
`VMX_EXIT_REASONS` (arch/x86/include/uapi/asm/vmx.h, upper case) on Intel and over
`SVM_EXIT_REASONS` (arch/x86/include/uapi/asm/svm.h, lower case) on AMD, and
`perf kvm stat` uses the same tables. When a code has no name (`__print_symbolic`
falls back to `0x%lx`) or an old tool printed the raw number, we map the number.
The raw name is always kept by the caller, so `other` never loses information.
"""

from __future__ import annotations

from ..taxonomy import Exit

# Sentinel for AMD `msr`: read or write depends on EXITINFO1 (1 = WRMSR, 0 = RDMSR).
SVM_MSR = -2

# VMX_EXIT_REASONS names (Intel SDM Vol. 3 Appendix C) that our taxonomy splits out.
VMX_NAMES: dict[str, int] = {
    "EXTERNAL_INTERRUPT": Exit.INTR,
    "HLT": Exit.HALT,
    "MSR_WRITE": Exit.MSR_WRITE,
    "MSR_READ": Exit.MSR_READ,
    "PREEMPTION_TIMER": Exit.PREEMPTION_TIMER,
    "CPUID": Exit.CPUID,
    "PAUSE_INSTRUCTION": Exit.PAUSE,
    "EPT_VIOLATION": Exit.EPT_VIOLATION,
    "EPT_MISCONFIG": Exit.EPT_MISCONFIG,
}
# SVM_EXIT_REASONS names. `intr` is accepted as an alias of `interrupt` (older tools);
# `idle-halt` (SVM_EXIT_IDLE_HLT, 6.14+) is a HLT exit too; `npf` is AMD's EPT violation.
SVM_NAMES: dict[str, int] = {
    "interrupt": Exit.INTR,
    "intr": Exit.INTR,
    "hlt": Exit.HALT,
    "idle-halt": Exit.HALT,
    "msr": SVM_MSR,
    "cpuid": Exit.CPUID,
    "pause": Exit.PAUSE,
    "npf": Exit.EPT_VIOLATION,
}
# libtraceevent's kvm plugin (plugin_kvm.c SVM_EXIT_REASONS, what `trace-cmd report`
# prints on AMD) names SVM exits `EXIT_*`: EXIT_NPF is the npf exit, EXIT_MSR is RDMSR or
# WRMSR by EXITINFO1, EXIT_INTR the physical interrupt.
SVM_PLUGIN_NAMES: dict[str, int] = {
    "EXIT_INTR": Exit.INTR,
    "EXIT_HLT": Exit.HALT,
    "EXIT_IDLE_HLT": Exit.HALT,
    "EXIT_MSR": SVM_MSR,
    "EXIT_CPUID": Exit.CPUID,
    "EXIT_PAUSE": Exit.PAUSE,
    "EXIT_NPF": Exit.EPT_VIOLATION,
}
# Numeric basic exit reasons (Intel SDM Vol. 3 Appendix C).
VMX_CODES: dict[int, int] = {
    1: Exit.INTR,
    10: Exit.CPUID,
    12: Exit.HALT,
    31: Exit.MSR_READ,
    32: Exit.MSR_WRITE,
    40: Exit.PAUSE,
    48: Exit.EPT_VIOLATION,
    49: Exit.EPT_MISCONFIG,
    52: Exit.PREEMPTION_TIMER,
}
# SVM exit codes (AMD APM Vol. 2 Appendix C; arch/x86/include/uapi/asm/svm.h).
SVM_CODES: dict[int, int] = {
    0x060: Exit.INTR,
    0x072: Exit.CPUID,
    0x077: Exit.PAUSE,
    0x078: Exit.HALT,
    0x07C: SVM_MSR,
    0x0A6: Exit.HALT,
    0x400: Exit.EPT_VIOLATION,
}
# No VMX basic exit reason reaches 0x60 (the largest is below 0x50), so a number at or
# above it can only be an SVM code. Below it the ISA seen so far in the trace decides.
SVM_ONLY_FROM = 0x60

ISA_UNKNOWN = 0
ISA_VMX = 1
ISA_SVM = 2


def parse_code(raw: str) -> int | None:
    """The number in a numeric reason (`32`, `0x20`), or None when `raw` is a name."""
    try:
        if raw[:2] in ("0x", "0X"):
            return int(raw, 16)
        if raw.isdigit():
            return int(raw)
    except ValueError:
        return None
    return None


def classify_name(raw: str) -> tuple[int, int]:
    """(exit code or SVM_MSR, ISA it proves) for a reason name; numbers are not handled here.

    VMX may append flags after the name (`kvm_print_exit_reason` prints
    `FAILED_VMENTRY` etc. separated by spaces), so only the first word is looked up
    for upper-case names.
    """
    code = VMX_NAMES.get(raw)
    if code is not None:
        return code, ISA_VMX
    code = SVM_NAMES.get(raw)
    if code is not None:
        return code, ISA_SVM
    if raw.startswith("EXIT_"):
        return SVM_PLUGIN_NAMES.get(raw, Exit.OTHER), ISA_SVM
    # old kernels printed the VMX names in lower case (`external_interrupt`, `msr_write`);
    # `hlt`, `cpuid`, `pause`... are the same exit on both ISAs and matched above
    code = VMX_NAMES.get(raw.upper())
    if code is not None and raw.islower() and "_" in raw:
        return code, ISA_VMX
    first = raw.split(" ", 1)[0]
    code = VMX_NAMES.get(first)
    if code is not None:
        return code, ISA_VMX
    if first.isupper():
        return Exit.OTHER, ISA_VMX
    if first.islower():
        return Exit.OTHER, ISA_SVM
    return Exit.OTHER, ISA_UNKNOWN


def classify_code(number: int, isa: int) -> tuple[int, int]:
    """(exit code or SVM_MSR, ISA) for a numeric reason, given the ISA seen so far."""
    if number >= SVM_ONLY_FROM or isa == ISA_SVM:
        return SVM_CODES.get(number, Exit.OTHER), ISA_SVM
    return VMX_CODES.get(number, Exit.OTHER), isa


def classify_perf_stat(raw: str) -> int:
    """Exit code for a `perf kvm stat` VM-EXIT row name (same tables as kvm_exit).

    `perf kvm stat` has no EXITINFO1, so AMD `msr` cannot be split into read and
    write: it is counted as msr-write (what WRMSR-heavy timer workloads produce),
    and the caller warns.
    """
    number = parse_code(raw)
    if number is not None:
        code, _ = classify_code(number, ISA_UNKNOWN)
    else:
        code, _ = classify_name(raw)
    return Exit.MSR_WRITE if code == SVM_MSR else int(code)
