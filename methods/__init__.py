"""Training methods that are more than a loss on one batch, one module each (the contract: ``methods/base.py``).

A new method is one file here with one ``Method`` subclass and one line in ``REGISTRY``, its module's name; the
scripts take its flags, checks, views, network, loss and evaluations from it (docs/recipes.md: each method's values
and their sources).
"""
import importlib
import inspect

from methods.base import Method, linear_classifier, one_classifier

REGISTRY = (
    "bcl",
    "glmc",
    "lift",
    "ride",
    "sade",
)


def _method_of(module_name):
    """The one ``Method`` subclass that ``methods/<module_name>.py`` defines."""
    module = importlib.import_module(f"methods.{module_name}")
    found = [value for value in vars(module).values() if inspect.isclass(value) and issubclass(value, Method)
             and value.__module__ == module.__name__]
    if len(found) != 1:
        raise ImportError(f"methods/{module_name}.py must define one Method subclass, not {len(found)}")
    return found[0]


METHODS = {method.name: method for method in map(_method_of, REGISTRY)}
__all__ = ["METHODS", "REGISTRY", "Method", "flags", "get", "linear_classifier", "one_classifier"]


def get(name):
    """The ``Method`` subclass of ``--method name``, or None for no method (None or an unknown name)."""
    return METHODS.get(name) if name else None


def flags():
    """``{flag: (method, argparse keyword arguments)}`` of every method's own flags, in the registry's order."""
    return {flag: (method, options) for method in METHODS.values() for flag, options in method.flags.items()}
