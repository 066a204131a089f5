"""Strain names: alias lookup and grouping for stratified analyses.

Pure functions over a :class:`~metaanalysis.studies.schema.StrainRegistry` (read by
:func:`metaanalysis.studies.load.load_registry`). Names follow the 2020 reclassification
of the genus *Lactobacillus* (Zheng et al. 2020, Int J Syst Evol Microbiol
70:2782-2858): e.g. *Lactobacillus rhamnosus* is now *Lacticaseibacillus
rhamnosus*. The registry keeps the former genus so that lookups by the old
name still work.

Grouping levels (``level=`` in :func:`group_label`):

``strain``
    registry keys (``LGG``), joined with ``+`` for mixtures;
``species``
    current ``Genus species`` names;
``genus``
    current genus names;
``mixture``
    ``single`` or ``multi`` (by the number of organisms in the product).

References
----------
Zheng J, Wittouck S, Salvetti E, et al. (2020). A taxonomic note on the genus
Lactobacillus. Int J Syst Evol Microbiol 70(4):2782-2858.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

# normalise_name lives with the schema, which validates aliases with it; this
# module imports the schema one way (the schema never imports this module).
from metaanalysis.studies.schema import (  # noqa: F401  (normalise_name re-exported)
    Intervention, StrainEntry, StrainRegistry, normalise_name,
)

Level = Literal["strain", "species", "genus", "mixture"]
LEVELS = ("strain", "species", "genus", "mixture")

#: Label used for organisms the paper does not name precisely enough.
UNSPECIFIED = "unspecified"

def _generated_names(entry: StrainEntry) -> list[str]:
    """Standard spellings of an entry: full and abbreviated genus, current and
    former genus, with and without the strain designation."""
    if entry.same_as is not None:
        return []  # a redirect: only its explicit aliases name it
    if entry.species is None:
        return [entry.genus]
    genera = [g for g in (entry.genus, entry.former_genus) if g]
    species = [entry.species] + ([entry.former_species] if entry.former_species else [])
    out = []
    for g in genera:
        for sp in species:
            for gname in (g, g[0] + "."):
                base = f"{gname} {sp}"
                if entry.subspecies and sp == entry.species:
                    bases = [f"{base} subsp. {entry.subspecies}"]
                else:
                    bases = [base]
                for b in bases:
                    out.append(f"{b} {entry.strain}" if entry.strain else b)
    if entry.strain:
        out.append(entry.strain)
    return out


def alias_index(registry: StrainRegistry) -> dict[str, str]:
    """Map every normalised alias to its registry key.

    Explicit aliases and keys always win. Generated spellings that would name
    two entries (e.g. a bare strain code shared by two species) are dropped
    rather than guessed.

    Parameters
    ----------
    registry : StrainRegistry

    Returns
    -------
    dict of str to str
        :func:`normalise_name` of each alias -> registry key.
    """
    index: dict[str, str] = {}
    for key, entry in registry.strains.items():
        for name in (key, *entry.aliases):
            index[normalise_name(name)] = key
    generated: dict[str, set[str]] = {}
    for key, entry in registry.strains.items():
        for name in _generated_names(entry):
            generated.setdefault(normalise_name(name), set()).add(key)
    for norm, keys in generated.items():
        if norm and norm not in index and len(keys) == 1:
            index[norm] = next(iter(keys))
    return index


def lookup(registry: StrainRegistry, name: str,
           index: Mapping[str, str] | None = None) -> str | None:
    """Registry key for a name as written in a paper, or ``None``.

    Tries the whole name, then the name without parenthesised parts, then
    each parenthesised part (so ``"L. rhamnosus GG (ATCC 53103)"`` and
    ``"LGG"`` both resolve).

    Parameters
    ----------
    registry : StrainRegistry
    name : str
        The organism as the paper writes it.
    index : mapping, optional
        :func:`alias_index` of ``registry``, when looking up many names.

    Returns
    -------
    str or None

    Examples
    --------
    >>> lookup(registry, "Lactobacillus GG")     # doctest: +SKIP
    'LGG'
    """
    idx = alias_index(registry) if index is None else index
    bracketed = re.findall(r"\(([^)]*)\)|\[([^\]]*)\]", name)
    candidates = [name, re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", name),
                  *(a or b for a, b in bracketed)]
    for cand in candidates:
        key = idx.get(normalise_name(cand))
        if key is not None:
            return key
    # "B. breve Bbi99": a species name followed by one of a strain entry's
    # aliases. Accept it when the species part names the same species.
    for cand in candidates:
        words = cand.split()
        for cut in range(1, len(words)):
            head = idx.get(normalise_name(" ".join(words[:cut])))
            tail = idx.get(normalise_name(" ".join(words[cut:])))
            if head is None or tail is None:
                continue
            h, t = registry.strains[head], registry.strains[registry.resolve(tail)]
            if h.strain is None and h.species_name == t.species_name:
                return tail
    return None


def species_label(entry: StrainEntry) -> str:
    """``Genus species`` under the current (2020) names; the genus alone for a genus-level entry.

    Parameters
    ----------
    entry : StrainEntry

    Returns
    -------
    str
    """
    return entry.species_name


def genus_label(entry: StrainEntry) -> str:
    """The current (2020) genus name.

    Parameters
    ----------
    entry : StrainEntry

    Returns
    -------
    str
    """
    return entry.genus


def mixture(intervention: Intervention) -> Literal["single", "multi", "unspecified"]:
    """``single`` for one organism, ``multi`` for a mixture.

    A product whose organisms are not named at all (every strain entry without a registry key)
    and whose count is not given (no ``n_strains``) is ``unspecified``: its one placeholder entry
    says nothing about how many organisms it holds.

    Parameters
    ----------
    intervention : Intervention

    Returns
    -------
    {"single", "multi", "unspecified"}
    """
    if intervention.n_strains is None and all(ref.registry is None for ref in intervention.strains):
        return UNSPECIFIED
    return "single" if intervention.strain_count == 1 else "multi"


def group_label(intervention: Intervention, registry: StrainRegistry, level: Level) -> str:
    """The stratum an intervention falls in at one grouping level.

    Mixtures get the sorted, de-duplicated ``+``-joined labels of their
    organisms; an organism without a registry key counts as ``unspecified``.

    Parameters
    ----------
    intervention : Intervention
    registry : StrainRegistry
    level : {"strain", "species", "genus", "mixture"}

    Returns
    -------
    str
    """
    if level not in LEVELS:
        raise ValueError(f"unknown level '{level}'; expected one of {', '.join(LEVELS)}")
    if level == "mixture":
        return mixture(intervention)
    labels = []
    for ref in intervention.strains:
        key = registry.resolve(ref.registry) if ref.registry else None
        entry = registry.strains.get(key) if key else None
        if entry is None:
            labels.append(UNSPECIFIED)
        elif level == "strain":
            labels.append(key)
        elif level == "species":
            labels.append(species_label(entry))
        else:
            labels.append(genus_label(entry))
    return "+".join(sorted(set(labels)))
