"""Regenerate the broken-file corpus from the valid fixture.

Run from the repository root::

    python tests/data/broken/_generate.py

Each case copies tests/data/studies_ok/Fictional2024.yaml, sets ``id`` to the
case name (so the id matches the file name), and applies one edit that breaks
exactly one rule. tests/studies/test_validate.py asserts the exact ``FILE:LINE: path``
of the problem each file produces; regenerating must not change them (the
edits are deterministic).
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURE = HERE.parent / "studies_ok" / "Fictional2024.yaml"

DERIVED = '{method: other, formula: "broken on purpose (test fixture)"}'


def sub(old: str, new: str, count: int = 1):
    def edit(text: str) -> str:
        assert old in text, f"fixture text not found: {old!r}"
        return text.replace(old, new, count)
    return edit


def chain(*edits):
    def edit(text: str) -> str:
        for e in edits:
            text = e(text)
        return text
    return edit


# name -> edit of the fixture text (str -> str), or raw bytes
CASES = {
    "yaml_syntax": sub("flags: [derived_n]", "flags: [derived_n"),
    "unknown_field": sub("    n_randomised: {value: 30, quote: q1}\n    n_analysed:\n",
                         "    n_randomized: {value: 30, quote: q1}\n    n_analysed:\n"),
    "missing_field": sub("    role: control\n", ""),
    "wrong_type": sub("    timepoint_weeks: 8\n    timepoint_label", "    timepoint_weeks: eight\n    timepoint_label"),
    "bare_number": sub("    n_randomised: {value: 30, quote: q1}\n    n_analysed: {value: 27",
                       "    n_randomised: 30\n    n_analysed: {value: 27"),
    "sd_zero": sub("        sd: {value: 14.9, quote: q1}",
                   f"        sd: {{value: 0, derived: {DERIVED}}}"),
    "n_zero": sub("        n: {value: 27, quote: q1}\n        mean: {value: 36.3",
                  f"        n: {{value: 0, derived: {DERIVED}}}\n        mean: {{value: 36.3"),
    "events_gt_n": sub("        events: {value: 8, quote: q1}",
                       f"        events: {{value: 28, derived: {DERIVED}}}"),
    "n_analysed_gt_randomised": sub("    n_analysed: {value: 27, quote: q1}",
                                    f"    n_analysed: {{value: 31, derived: {DERIVED}}}"),
    "ci_excludes_estimate": sub("      estimate: {value: 9.5, quote: q3}",
                                f"      estimate: {{value: 20, derived: {DERIVED}}}"),
    "percent_out_of_range": sub("        events: {value: 8, quote: q1}\n",
                                "        events: {value: 8, quote: q1}\n"
                                f"        percent: {{value: 130, derived: {DERIVED}}}\n"),
    "p_out_of_range": sub("      p: {value: 0.022, quote: q1}",
                          f"      p: {{value: 1.5, derived: {DERIVED}}}"),
    "excluded_no_reason": sub("status: included", "status: excluded"),
    "unknown_arm": sub("      probiotic:\n        n: {value: 27, quote: q1}\n        mean",
                       "      probiotc:\n        n: {value: 27, quote: q1}\n        mean"),
    "unknown_quote": sub("    name: \"L. rhamnosus GG\"\n    n_randomised: {value: 30, quote: q1}",
                         "    name: \"L. rhamnosus GG\"\n    n_randomised: {value: 30, quote: q9}"),
    "unknown_strain": sub("          registry: LGG", "          registry: LGGG"),
    "id_mismatch": None,  # handled below: the id is left as in the fixture
    "no_provenance": sub("        mean: {value: 27.4, quote: q1}", "        mean: {value: 27.5, quote: q1}"),
    "nonfinite": sub("        sd: {value: 12.7, quote: q1}", "        sd: {value: .inf, quote: q1}"),
    "huge_number": sub("      dose_cfu_per_day: {value: 1.0e+10, quote: q2}",
                       f"      dose_cfu_per_day: {{value: 1.0e+300, derived: {DERIVED}}}"),
    "huge_integer": sub("year: 2024", "year: 123456789012345678901234567890123"),
    "duplicate_key": sub("design: parallel\n", "design: parallel\ncountry: Elsewhere\n"),
    "python_tag": sub("funding: null", "funding: !!python/object/apply:os.system [\"echo hi\"]"),
    "two_documents": lambda t: t + "---\nid: another\n",
    "merge_key": sub("rob:\n  tool: RoB2\n", "rob:\n  <<: {tool: RoB2}\n"),
    "placeholder": sub('citation: "Doe J', 'citation: "<<FILL: citation>> Doe J'),
    "ci_level_percent": sub("      ci_level: 0.95", "      ci_level: 95"),
    "missing_flag": sub("design: parallel", "design: crossover"),
    "secondary_mismatch": sub("    kind: primary abstract\n    secondary: false",
                              "    kind: secondary review table\n    secondary: false"),
    "events_in_final_scale": sub("    outcome_label: \"mild AD at 8 weeks\"\n    timepoint_weeks: 8\n    scale: events",
                                 "    outcome_label: \"mild AD at 8 weeks\"\n    timepoint_weeks: 8\n    scale: final"),
}

RAW = {
    "empty": b"",
    "comments_only": b"# nothing here yet\n\n",
    "binary_junk": bytes(range(256)) * 4,
    "top_level_list": b"- Fictional2024\n- another\n",
    "yaml_bomb": (b"a: &a [x, x, x, x, x, x, x, x, x]\n"
                  + b"".join(b"%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n"
                             % ((98 + i,) * 2 + (97 + i,) * 9) for i in range(8))),
    "deep_nesting": b"schema_version: 1\nid: deep_nesting\nx: " + b"[" * 60 + b"]" * 60 + b"\n",
}


def main() -> None:
    fixture = FIXTURE.read_text(encoding="utf-8")
    # the registry the broken files are checked against (same folder)
    (HERE / "strains.yaml").write_text((FIXTURE.parent / "strains.yaml").read_text("utf-8"),
                                       encoding="utf-8")
    for name, edit in CASES.items():
        text = fixture
        if name != "id_mismatch":
            text = text.replace("id: Fictional2024", f"id: {name}", 1)
            text = edit(text)
        (HERE / f"{name}.yaml").write_text(text, encoding="utf-8")
    for name, raw in RAW.items():
        (HERE / f"{name}.yaml").write_bytes(raw)
    # not UTF-8: a Latin-1 byte inside a quote
    text = fixture.replace("id: Fictional2024", "id: not_utf8", 1)
    raw = text.encode("utf-8").replace("Hanifin".encode(), b"Hanif\xefn")
    (HERE / "not_utf8.yaml").write_bytes(raw)


if __name__ == "__main__":
    main()
