"""asyncpf: an executable specification of KVM asynchronous page faults."""

from .abi import GENERATIONS, LEGACY, SEED, Generation, generation
from .sim import Environment, Event, Interrupt, Process

__all__ = ["Environment", "Event", "Interrupt", "Process", "Generation", "GENERATIONS",
           "SEED", "LEGACY", "generation"]
