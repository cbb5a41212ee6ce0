"""The host side below KVM: the VMM process's memory (mm) and its swap device."""
