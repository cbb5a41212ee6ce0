"""A second arch beside x86: PPC Book3S's interrupt delivery and wake-up, on the generic run/block/wake code.

See :mod:`asyncpf.host.ppc.book3s`.
"""
