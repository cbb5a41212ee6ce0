"""Live differential runs: scripted guest programs on this host's /dev/kvm and on the model, compared.

``asyncpf live`` (:mod:`asyncpf.live.cli`) is the door; :mod:`asyncpf.live.runner`
runs one program end to end.  The real side: :mod:`kvmapi` (ioctls),
:mod:`guestcode` and ``guest.S`` (the guest), :mod:`layout`, :mod:`backing`
(evicted file-backed memory), :mod:`tracefs`, :mod:`realrun`,
:mod:`realtrace`; the model side: :mod:`modelguest`, :mod:`modelrun`; both
reduced by :mod:`observe` and judged by :mod:`compare` (and
:mod:`msrtable` for the MSR table).  Stored captures: ``data/live``
(:mod:`record`).  Simulation glue and test harness, not kernel twins.
"""
