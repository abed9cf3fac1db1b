"""Model families, one package each, registered by name (``model.family`` in conf/model).

Each package ``tunelab/families/<name>/`` exposes ``FAMILY``, a
:class:`~tunelab.families.base.Family`; :func:`family` imports only the one asked for.
Adding a family: copy a package, give it a name here and a ``conf/model/*.yaml`` that
sets ``family:`` to it.
"""

from __future__ import annotations

from importlib import import_module

from tunelab.families.base import Family

FAMILIES = ("melody_rnn", "music_transformer", "musenet", "music_vae", "jukebox", "performance_rnn")


def family(name: str) -> Family:
    """The :class:`Family` registered as ``name``.

    Raises:
        KeyError: no such family.
    """
    if name not in FAMILIES:
        raise KeyError(f"unknown model family {name!r}; choose one of {', '.join(FAMILIES)}")
    return import_module(f"tunelab.families.{name}").FAMILY


__all__ = ["FAMILIES", "Family", "family"]
