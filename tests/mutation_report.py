"""The mutation score of the domain rules, from the results of ``mutmut run`` (``make mutation``).

Reads mutmut's per-file results under ``mutants/`` and writes ``docs/mutation-report.md``: per
module, how many mutants were killed by the unit tests, which survived (with the change), and
which are equivalent (listed in ``EQUIVALENT`` with the reason no test can tell them apart).
The score is killed / (mutants - equivalent). ``--save-before`` keeps the figures as the "before"
column of later reports (``docs/mutation-before.json``). Run from the repository root.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "docs" / "mutation-report.md"
BEFORE = REPO / "docs" / "mutation-before.json"
TARGET = 90.0

_CSV_MODE = (
    "pydantic serialises in python mode for every mode but 'json' (here None, 'XXjsonXX', 'JSON'), and "
    "manifest_csv writes str() of each value: for every ManifestPassenger field (UUID, date, str, the "
    "DocumentType StrEnum) str() of the python value is its JSON form (str(uuid), date.isoformat(), the "
    "enum's value, the text itself), so no manifest gives a different cell."
)
# Mutants no test can kill because the mutated program behaves the same; each with the reason.
EQUIVALENT: dict[str, str] = {
    # services/transport/domain.py
    "services.transport.domain.x_manifest_csv__mutmut_6": _CSV_MODE,
    "services.transport.domain.x_manifest_csv__mutmut_7": _CSV_MODE,
    "services.transport.domain.x_manifest_csv__mutmut_8": _CSV_MODE,
    "services.transport.domain.x_crossing_news__mutmut_23": (
        "news[-1] pairs a route checkpoint cp with recorded[cp.checkpoint_id], and the only mapping "
        "crossing_news is given (TransportStore, {r['checkpoint_id']: RecordedCrossing(**r)}) keys each "
        "crossing by its own checkpoint_id: the crossing's checkpoint_id and cp's are one value, so "
        "comparing either with the route's last post gives the same arrival."
    ),
}

# services/intake/domain.py and services/intake/duplicates.py
_MRZ_TITLE = (
    "the title of the ValidationError _at_mrz builds is never shown: _at_mrz is raised only inside "
    "PersonIn's model validator, and pydantic re-raises the errors of a ValidationError raised there "
    "under the title of the model being validated (PersonIn, RegisterCase, UpdateCase), keeping only "
    "their type, loc, msg and input"
)
_MRZ_EXCLUDED = (
    "TravelDocument (contracts.intake._Part, extra='ignore') drops a key it has no field for: the "
    "passport's mrz never reaches the event whether model_dump excludes it or not"
)
_ONE_SEPARATOR = (
    "split(': ') with maxsplit 1, 2 or none, and rsplit, give the same two parts: the only texts "
    "validate_against_today writes ('members.N.birth_date: is in the future', 'planned_travel_date: "
    "is in the past') hold ': ' exactly once"
)
_NO_STAGE_DEFAULT = (
    "the default of _STAGE.get is never read: every CaseStatus missing from _STAGE (ineligible, "
    "no_show, refused_at_border, withdrawn) is in _TERMINAL, which the `or` tests first "
    "(tests/unit/test_intake_rule_edges.py judges every status against every report)"
)
EQUIVALENT |= {
    **{f"services.intake.domain.x__at_mrz__mutmut_{n}": _MRZ_TITLE for n in (1, 5, 6, 7)},
    "services.intake.domain.x__at_mrz__mutmut_12": (
        "InitErrorDetails without input: pydantic-core takes a missing input as None, what it is given"
    ),
    **{f"services.intake.domain.x_build_case__mutmut_{n}": _MRZ_EXCLUDED for n in (43, 44, 45)},
    **{f"services.intake.domain.x_registration_problems__mutmut_{n}": _ONE_SEPARATOR for n in (19, 20, 22)},
    **{f"services.intake.domain.x_judge_report__mutmut_{n}": _NO_STAGE_DEFAULT for n in (33, 35, 36)},
    "services.intake.domain.x_judge_report__mutmut_37": (
        "> and >= differ only for a case at exactly the earliest stage a report needs without being one "
        "of the statuses it needs; every status at those stages (arrived for received, received for "
        "closed; departed, exit_cleared, entry_cleared, transit_incident for transit_incident) is one "
        "it needs, applied before this test"
    ),
    "services.intake.domain.x_erased_profile__mutmut_13": (
        "CaseProfiled.origin_city defaults to None: leaving out origin_city=None builds the same event"
    ),
    "services.intake.duplicates.x_lock_ids__mutmut_13": (
        "int.from_bytes reads big-endian by default since Python 3.11 (requires-python >= 3.11)"
    ),
}

EQUIVALENT |= {
    # corridor/mrz.py
    "corridor.mrz.x__letters__mutmut_14": (
        "accepting 'A'..'z' instead of 'A'..'Z' in a country code: _td3 and _td1 pass every character "
        "through char_value first, which lets through only 0-9, A-Z and '<', none of them between 'Z' and 'z'"
    ),
    "corridor.mrz.x_parse__mutmut_31": (
        "_td3 given joined[:45] as line one: the extra character is line two's first, which the "
        "alphabet check reads anyway, and _td3 reads line one only up to index 43"
    ),
    "corridor.mrz.x_parse__mutmut_43": (
        "_td1 given joined[:31] as line one: the extra character is line two's first, which the "
        "alphabet check reads anyway, and _td1 reads line one only up to index 29"
    ),
    "corridor.mrz.x_parse__mutmut_45": (
        "_td1 given joined[30:61] as line two: the extra character is line three's first, which the "
        "alphabet check reads anyway, and _td1 reads line two only up to index 29"
    ),
    "corridor.mrz.x__td3__mutmut_112": (
        "`line2[20] not in 'XXMFX<XX'`: one character is a substring of 'XXMFX<XX' exactly when it is "
        "one of M, F, X, <, as for 'MFX<'"
    ),
    "corridor.mrz.x__td1__mutmut_83": (
        "`line2[7] not in 'XXMFX<XX'`: one character is a substring of 'XXMFX<XX' exactly when it is "
        "one of M, F, X, <, as for 'MFX<'"
    ),
    "corridor.mrz.x__td3__mutmut_124": "line one of a TD3 zone is exactly 44 characters: [5:45] is [5:44]",
    "corridor.mrz.x__td1__mutmut_73": "line one of a TD1 zone is exactly 30 characters: [5:31] is [5:30]",
    "corridor.mrz.x__td1__mutmut_185": "line one of a TD1 zone is exactly 30 characters: [15:31] is [15:30]",
    "corridor.mrz.x__td3__mutmut_179": (
        "future=None for the birth date: _date reads `future` only as a truth value, and None is false like False"
    ),
    "corridor.mrz.x__td1__mutmut_148": (
        "future=None for the birth date: _date reads `future` only as a truth value, and None is false like False"
    ),
}

# services/operations/domain.py
_OPS_PROGRESS_FIRST = (
    "a vehicle's view built from its progress (its departure not read) has its case_ids and since "
    "set from the same event on the next lines, and departed_at is read only as the fallback of "
    "since, which a progress always sets: which value the constructor got never shows"
)
_OPS_PROGRESS_REBUILT = (
    "building a new view on every progress instead of updating the known one: the key fixes "
    "movement_id and vehicle_id, the progress then sets case_ids, checkpoint_id, stage and since, and "
    "the departure's departed_at, the only value lost, is read only as the fallback of since, which a "
    "progress always sets; replacing a dict entry keeps its place in the listing"
)
EQUIVALENT |= {
    "services.operations.domain.xǁBoardǁapply_status__mutmut_30": (
        "the members a new case's view is built with are overwritten on the next line by "
        "case.members = change.members, before anything reads them"
    ),
    **{
        f"services.operations.domain.xǁBoardǁapply_vehicle__mutmut_{n}": _OPS_PROGRESS_REBUILT
        for n in (15, 16)
    },
    **{
        f"services.operations.domain.xǁBoardǁapply_vehicle__mutmut_{n}": _OPS_PROGRESS_FIRST for n in (21, 22)
    },
}


_SAME_LENGTH = (
    "zip's strict only matters when its arguments differ in length: tabulate builds each key as one "
    "value per name in keys (tuple(... for k in keys)), so keys and key always have the same length"
)
EQUIVALENT |= {
    # services/reporting/domain.py
    **{f"services.reporting.domain.x_tabulate__mutmut_{n}": _SAME_LENGTH for n in (34, 37, 38)},
    "services.reporting.domain.x_suppress__mutmut_32": (
        "n > 0 and n > 1 differ only for a part of exactly 1 that is not hidden; a part is hidden when "
        "small(n, threshold), so a 1 escapes only when threshold <= 1, and then nothing is small, "
        "hidden is empty and the `len(hidden) == 1` branch holding this test is never entered"
    ),
    # services/border_clearance/domain.py
    "services.border_clearance.domain.x__normal__mutmut_2": (
        "_normal is only compared with _normal: joining the letters with 'XXXX' instead of '' puts a "
        "letter at every fifth character and nothing else varies, so two names give equal strings "
        "exactly when their letters are equal, as before"
    ),
}


def modules() -> list[Path]:
    found = sorted(REPO.glob("services/*/domain.py"))
    return [
        *found,
        Path("services/intake/duplicates.py"),
        Path("corridor/mrz.py"),
        Path("contracts/status.py"),
    ]


def results(path: Path) -> dict[str, str]:
    meta = REPO / "mutants" / (str(path) + ".meta")
    if not meta.is_file():
        raise SystemExit(f"no results for {path}: run `make mutation` first")
    codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    return {name: status_by_exit_code[code] for name, code in codes.items()}


def _count(value: float | int | None) -> int:
    """A count of a report row (only the score may be None or a float)."""
    return int(value or 0)


def main(argv: list[str]) -> int:
    rows: dict[str, dict[str, float | int | None]] = {}
    survivors: dict[str, list[str]] = {}
    for module in modules():
        relative = Path(module).relative_to(REPO) if Path(module).is_absolute() else Path(module)
        status = results(relative)
        counts = Counter(status.values())
        checked = {n: s for n, s in status.items() if s != "not checked"}
        equivalent = [n for n, s in checked.items() if s not in ("killed", "timeout") and n in EQUIVALENT]
        alive = sorted(
            n for n, s in checked.items() if s not in ("killed", "timeout") and n not in EQUIVALENT
        )
        judged = len(checked) - len(equivalent)
        killed = counts["killed"] + counts["timeout"]
        rows[str(relative)] = {
            "mutants": len(status),
            "checked": len(checked),
            "killed": killed,
            "timeout": counts["timeout"],
            "no tests": counts["no tests"],
            "equivalent": len(equivalent),
            "survived": len(alive),
            "score": round(100.0 * killed / judged, 1) if judged else None,
        }
        survivors[str(relative)] = alive
    if "--save-before" in argv:
        BEFORE.write_text(json.dumps(rows, indent=2) + "\n")
    before = json.loads(BEFORE.read_text()) if BEFORE.is_file() else {}
    REPORT.write_text(render(rows, before, survivors))
    total_killed = sum(_count(r["killed"]) for r in rows.values())
    total_judged = sum(_count(r["checked"]) - _count(r["equivalent"]) for r in rows.values())
    below = []
    for name, row in rows.items():
        judged = _count(row["checked"]) - _count(row["equivalent"])
        print(
            f"{name}: {row['score']} % ({row['killed']}/{judged} killed; {row['checked']}/{row['mutants']} checked)"
        )
        if row["score"] is None or float(row["score"]) < TARGET or row["checked"] != row["mutants"]:
            below.append(name)
    print(
        f"domain rules: {100.0 * total_killed / max(1, total_judged):.1f} % of the checked non-equivalent mutants killed"
    )
    print(f"report: {REPORT}")
    if below:
        print(f"below the {TARGET:.0f} % target or not fully checked: {', '.join(below)}")
        return 1
    return 0


def render(
    rows: dict[str, dict[str, float | int | None]],
    before: dict[str, dict[str, float | int | None]],
    survivors: dict[str, list[str]],
) -> str:
    lines = [
        "# Mutation score of the domain rules",
        "",
        f"Written by `make mutation` ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC): mutmut mutates each rule module one",
        "change at a time and runs the unit tests that reach the mutated function (`tests/unit`, no",
        "servers). Score: mutants killed (a test failed, or the run timed out) / (mutants checked -",
        f"equivalent). Target: at least {TARGET:.0f} % per module. A mutant in code no unit test reaches",
        '("no tests") counts as survived.',
        "",
        "| module | mutants | checked | killed (of which timeout) | no tests | equivalent | survived | score "
        "| before the new tests |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in rows.items():
        was = f"{before[name]['score']} %" if before.get(name, {}).get("score") is not None else "-"
        lines.append(
            f"| `{name}` | {r['mutants']} | {r['checked']} | {r['killed']} ({r['timeout']}) | {r['no tests']} "
            f"| {r['equivalent']} | {r['survived']} | {r['score']} % | {was} |"
        )
    lines += ["", "## Equivalent mutants", ""]
    if not EQUIVALENT:
        lines.append("None listed.")
    for name, why in sorted(EQUIVALENT.items()):
        lines.append(f"- `{name}`: {why}")
    lines += ["", "## Surviving mutants", ""]
    for module, names in survivors.items():
        if not names:
            continue
        lines += [f"### `{module}` ({len(names)})", ""]
        for name in names:
            lines += [f"`{name}`", "", "```diff", get_diff_for_mutant(name, path=module), "```", ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
