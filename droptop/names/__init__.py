"""Raw kernel values -> names: the BTF reader, the reason resolver, explanations.

Everything here reads the running kernel (or a given BTF file); nothing is guessed
from a version number, and a value without a name is shown raw.
"""
