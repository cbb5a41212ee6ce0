"""The paravirtual guest: a small kernel (tasks, scheduler, tick) and its side of async PF."""
