"""asyncpf: an executable specification of KVM asynchronous page faults."""

__version__ = "0.1.0"

from .abi import GENERATIONS, LEGACY, SEED, Generation, generation
from .sim import Environment, Event, Interrupt, Process

__all__ = ["__version__", "Environment", "Event", "Interrupt", "Process", "Generation", "GENERATIONS",
           "SEED", "LEGACY", "generation"]
